/**
 * Worker-thread entry of FdReader (fd-reader.ts): reads a descriptor with blocking reads,
 * as fast as the writer fills it, into a ring of shared memory, and tells the main thread
 * where each read landed (control words and messages: fd-reader-ring.ts). It says when it
 * is up, then waits until the main thread, which read until then, says where to go on.
 *
 * A read that follows a big read starts on a 4 KiB boundary of the ring (the kernel's copy
 * into user memory is several times slower into unaligned memory on the EPYC machines
 * measured); one that follows a small read starts right after it. A read never wraps: near
 * the end of the ring it starts again at the beginning.
 */
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { pipeReadable } from '../native-addon.js';
import { CTL_AT, CTL_GO, CTL_RELEASED, CTL_STOP, CTL_TAKEN, CTL_WAITING, ringUsed, type FdReaderData, type FdReaderMessage } from './fd-reader-ring.js';

if (parentPort) {
  const port = parentPort;
  const { fd, ring, skip, ringSize, readSize, control } = workerData as FdReaderData;
  const ctl = new Int32Array(control);
  const mem = Buffer.from(ring, skip, ringSize);
  const stopped = (): boolean => Atomics.load(ctl, CTL_STOP) !== 0;
  // the main thread read until now: wait to be told where it stopped
  port.postMessage({ op: 'ready' } satisfies FdReaderMessage);
  while (Atomics.load(ctl, CTL_GO) === 0 && !stopped()) Atomics.wait(ctl, CTL_GO, 0, 1000);
  let at = Atomics.load(ctl, CTL_AT); // next read's offset in the ring
  let taken = Atomics.load(ctl, CTL_TAKEN); // ring bytes handed over (wraps like CTL_RELEASED)
  while (!stopped()) {
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
      const released = Atomics.load(ctl, CTL_RELEASED);
      if (((taken - released) | 0) + want <= ringSize || stopped()) break;
      Atomics.store(ctl, CTL_WAITING, 1);
      if (Atomics.load(ctl, CTL_RELEASED) === released) Atomics.wait(ctl, CTL_RELEASED, released, 1000);
      Atomics.store(ctl, CTL_WAITING, 0);
    }
    if (stopped()) break;
    const view = mem.subarray(at, at + want);
    let n: number;
    try {
      n = fs.readSync(fd, view, 0, want, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' || code === 'EINTR') {
        Atomics.wait(ctl, CTL_STOP, 0, 1); // someone made the descriptor non-blocking: poll gently
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
    const used = ringUsed(at, n, ringSize);
    taken = (taken + used) | 0;
    port.postMessage({ op: 'data', start: at, length: n, used } satisfies FdReaderMessage);
    at += used;
    if (at >= ringSize) at = 0;
  }
}
