/**
 * Reads a file as a stream of buffers with one read always in flight, so disk reads
 * overlap chunking and hashing. Two buffers alternate: a yielded buffer stays valid until
 * the consumer asks for the next one (the consumer must not keep it past that).
 */
import { open } from 'node:fs/promises';
import { allocAligned } from './aligned-buffer.js';

export async function* readFileBuffers(file: string, bufferSize = 4 * 1024 * 1024): AsyncGenerator<Buffer> {
  const fh = await open(file, 'r');
  try {
    // page-aligned: reads from offset 0 on are then page to page (see aligned-buffer.ts)
    const bufs = [allocAligned(bufferSize), allocAligned(bufferSize)];
    let i = 0;
    let pending = fh.read(bufs[0]!, 0, bufferSize, null);
    for (;;) {
      const { bytesRead } = await pending;
      if (bytesRead === 0) return;
      const cur = bufs[i]!.subarray(0, bytesRead);
      i ^= 1;
      pending = fh.read(bufs[i]!, 0, bufferSize, null);
      yield cur;
    }
  } finally {
    await fh.close();
  }
}

/**
 * A file as a ByteSource for ingest (reads straight into ingest's buffers, no copy).
 * The caller closes it.
 */
export async function openFileSource(file: string): Promise<{ read(buf: Buffer): Promise<number>; close(): Promise<void> }> {
  const fh = await open(file, 'r');
  return {
    async read(buf: Buffer): Promise<number> {
      let n = 0;
      // a regular file returns short reads only at its end; fill the buffer anyway
      while (n < buf.length) {
        const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
        if (bytesRead === 0) break;
        n += bytesRead;
      }
      return n;
    },
    close: () => fh.close(),
  };
}
