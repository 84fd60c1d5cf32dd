/**
 * Random-access byte sources for the container parser.
 *
 * The parser never streams a file: it reads box headers and sample tables at known
 * offsets. Everything it reads goes through a `RandomAccessReader`, so the same code
 * runs over a file on disk, a buffer in a test, or (later) a ranged remote read.
 *
 * Contract: `read(offset, length)` returns exactly `length` bytes, or fewer only when
 * the range passes the end of the source (then it returns what exists). It never
 * returns bytes from outside the requested range. The caller owns the returned buffer.
 */
import { open } from 'node:fs/promises';

export interface RandomAccessReader {
  /** Total size of the source in bytes. */
  readonly size: number;
  read(offset: number, length: number): Promise<Buffer>;
}

export interface ClosableReader extends RandomAccessReader {
  close(): Promise<void>;
}

/** Opens a file for positional reads. The caller must `close()` it. */
export async function openFileReader(path: string): Promise<ClosableReader> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    return {
      size,
      async read(offset: number, length: number): Promise<Buffer> {
        const wanted = clampLength(size, offset, length);
        const buffer = Buffer.allocUnsafe(wanted);
        let filled = 0;
        while (filled < wanted) {
          const { bytesRead } = await handle.read(buffer, filled, wanted - filled, offset + filled);
          if (bytesRead === 0) break; // the file shrank under us: return what we have
          filled += bytesRead;
        }
        return filled === wanted ? buffer : buffer.subarray(0, filled);
      },
      close: () => handle.close(),
    };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/**
 * A file of `size` bytes whose first `head.length` bytes are already in memory (the clean
 * filter has them from git's pipe): the file is opened only for a read past them, so telling
 * that a file is not a container costs no open. Reads from `head` are copies.
 */
export function headFirstReader(path: string, head: Buffer, size: number): ClosableReader {
  let file: Promise<ClosableReader> | null = null;
  return {
    size,
    async read(offset: number, length: number): Promise<Buffer> {
      const wanted = clampLength(size, offset, length);
      if (offset + wanted <= head.length) return Buffer.from(head.subarray(offset, offset + wanted));
      file ??= openFileReader(path);
      return (await file).read(offset, length);
    },
    async close(): Promise<void> {
      const f = await file?.catch(() => null);
      await f?.close();
    },
  };
}

/** A reader over bytes already in memory (tests, small inputs). No copy is made. */
export function bufferReader(bytes: Uint8Array): RandomAccessReader {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    size: buffer.length,
    async read(offset: number, length: number): Promise<Buffer> {
      const wanted = clampLength(buffer.length, offset, length);
      return buffer.subarray(offset, offset + wanted);
    },
  };
}

/**
 * A reader that serves `[base, base + bytes.length)` from memory and everything else
 * from `fallback`. The parser uses it to load a whole `moov` box with one read.
 */
export function windowedReader(fallback: RandomAccessReader, base: number, bytes: Buffer): RandomAccessReader {
  const end = base + bytes.length;
  return {
    size: fallback.size,
    async read(offset: number, length: number): Promise<Buffer> {
      if (offset >= base && offset + length <= end) return bytes.subarray(offset - base, offset - base + length);
      return fallback.read(offset, length);
    },
  };
}

function clampLength(size: number, offset: number, length: number): number {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new RangeError(`invalid read range ${offset}+${length}`);
  }
  return Math.max(0, Math.min(length, size - offset));
}
