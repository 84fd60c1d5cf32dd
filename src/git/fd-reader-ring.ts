/**
 * The ring shared by FdReader (fd-reader.ts) and its reading thread (fd-reader-worker.ts):
 * what the thread is given, what it says, its control words and how much ring a read takes.
 *
 * Control words (Int32Array over a SharedArrayBuffer; byte counts wrap around at 2^32):
 * [CTL_RELEASED] bytes the main thread has released, [CTL_STOP] stop flag, [CTL_WAITING] 1
 * while the thread waits for room (the main thread wakes it only then), [CTL_GO] 1 once the
 * thread may read, from ring offset [CTL_AT] with [CTL_TAKEN] ring bytes handed over so
 * far (the main thread read until then).
 */
export const CTL_RELEASED = 0;
export const CTL_STOP = 1;
export const CTL_WAITING = 2;
export const CTL_GO = 3;
export const CTL_AT = 4;
export const CTL_TAKEN = 5;
export const CTL_WORDS = 6;

export type FdReaderMessage =
  /** the thread is up and waits for CTL_GO */
  | { op: 'ready' }
  /** `length` bytes at `start` of the ring; `used` ring bytes this read takes up (with alignment) */
  | { op: 'data'; start: number; length: number; used: number }
  | { op: 'end' }
  | { op: 'error'; message: string; code?: string };

export interface FdReaderData {
  fd: number;
  ring: SharedArrayBuffer;
  /** page-aligned start of the ring within `ring` */
  skip: number;
  ringSize: number;
  readSize: number;
  control: SharedArrayBuffer;
}

const PAGE = 4096;

/**
 * Ring bytes taken by a read of `n` bytes at `start`. A big read rounds its end up to a
 * page, so the next read starts aligned (the kernel's copy into user memory is several
 * times slower into unaligned memory on the EPYC machines measured); a small one (git's
 * request/answer traffic: a pointer, a flush) takes exactly its bytes. Rounding every read
 * up to a page made 1,000 small smudge requests fill the 16 MiB ring while they held far
 * less than the consumer's `keep` bytes, so nothing was ever released and the checkout
 * hung. This way a read takes at most twice its bytes of ring, which keeps FdReader's
 * bound (the ring holds keep + three reads).
 */
export function ringUsed(start: number, n: number, ringSize: number): number {
  return n >= PAGE ? Math.min(ringSize - start, Math.ceil((start + n) / PAGE) * PAGE - start) : n;
}
