/**
 * Worker-thread entry of FdReader (fd-reader.ts): reads a descriptor with blocking reads,
 * as fast as the writer fills it, into a ring of shared memory, and tells the main thread
 * where each read landed. Control words (Int32Array over a SharedArrayBuffer, byte counts
 * wrap around at 2^32): [0] bytes the main thread has released, [1] stop flag, [2] 1 while
 * this thread waits for room (the main thread wakes it only then).
 *
 * A read that follows a big read starts on a 4 KiB boundary of the ring (the kernel's copy
 * into user memory is several times slower into unaligned memory on the EPYC machines
 * measured); one that follows a small read starts right after it. A read never wraps: near
 * the end of the ring it starts again at the beginning.
 */
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { pipeReadable } from '../native-addon.js';

export type FdReaderMessage =
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

if (parentPort) {
  const port = parentPort;
  const { fd, ring, skip, ringSize, readSize, control } = workerData as FdReaderData;
  const ctl = new Int32Array(control);
  const mem = Buffer.from(ring, skip, ringSize);
  let at = 0; // next read's offset in the ring
  let taken = 0; // ring bytes handed over (wraps like ctl[0])
  const stopped = (): boolean => Atomics.load(ctl, 1) !== 0;
  for (;;) {
    let want = Math.min(readSize, ringSize - at);
    if (want < readSize) {
      // too little room before the end: the rest of the ring is skipped
      taken = (taken + (ringSize - at)) | 0;
      port.postMessage({ op: 'data', start: at, length: 0, used: ringSize - at } satisfies FdReaderMessage);
      at = 0;
      want = readSize;
    }
    // wait until the main thread has released room for this read
    for (;;) {
      const released = Atomics.load(ctl, 0);
      if (((taken - released) | 0) + want <= ringSize || stopped()) break;
      Atomics.store(ctl, 2, 1);
      if (Atomics.load(ctl, 0) === released) Atomics.wait(ctl, 0, released, 1000);
      Atomics.store(ctl, 2, 0);
    }
    if (stopped()) break;
    const view = mem.subarray(at, at + want);
    let n: number;
    try {
      n = fs.readSync(fd, view, 0, want, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' || code === 'EINTR') {
        Atomics.wait(ctl, 1, 0, 1); // someone made the descriptor non-blocking: poll gently
        continue;
      }
      port.postMessage({ op: 'error', message: (err as Error).message, code } satisfies FdReaderMessage);
      break;
    }
    if (n === 0) {
      port.postMessage({ op: 'end' } satisfies FdReaderMessage);
      break;
    }
    // what the writer has put in the pipe meanwhile joins this read (fewer, bigger hand-overs)
    for (let more = pipeReadable(fd) ?? 0; more > 0 && n < want; more = pipeReadable(fd) ?? 0) {
      try {
        const k = fs.readSync(fd, view, n, Math.min(more, want - n), null);
        if (k <= 0) break;
        n += k;
      } catch {
        break; // the next blocking read reports it
      }
    }
    // A big read rounds its end up to a page, so the next read starts aligned; a small one
    // (git's request/answer traffic: a pointer, a flush) takes exactly its bytes. Rounding
    // every read up to a page made 1,000 small smudge requests fill the 16 MiB ring while
    // they held far less than the consumer's `keep` bytes, so nothing was ever released and
    // the checkout hung. This way a read takes at most twice its bytes of ring, which keeps
    // FdReader's bound (the ring holds keep + three reads).
    const used = n >= PAGE ? Math.min(ringSize - at, Math.ceil((at + n) / PAGE) * PAGE - at) : n;
    taken = (taken + used) | 0;
    port.postMessage({ op: 'data', start: at, length: n, used } satisfies FdReaderMessage);
    at += used;
    if (at >= ringSize) at = 0;
  }
}
