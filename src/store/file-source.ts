/**
 * Reads a file as a stream of buffers with one read always in flight, so disk reads
 * overlap chunking and hashing. Two buffers alternate: a yielded buffer stays valid until
 * the consumer asks for the next one (the consumer must not keep it past that).
 */
import { open } from 'node:fs/promises';

export async function* readFileBuffers(file: string, bufferSize = 4 * 1024 * 1024): AsyncGenerator<Buffer> {
  const fh = await open(file, 'r');
  try {
    const bufs = [Buffer.allocUnsafe(bufferSize), Buffer.allocUnsafe(bufferSize)];
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
