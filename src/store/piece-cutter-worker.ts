/**
 * Worker-thread entry of CutWorker (cut-pipeline.ts): two threads in a row over the slots
 * of the SharedArrayBuffer they were given.
 *
 *   main --begin/push/finish/abort--> cut --begin/cuts/abort--> hash --batch--> main
 *
 * - `cut` finds the pieces of each pushed slot (PieceCutter without hashing) and sends
 *   their offsets on, with where the slot's bytes are;
 * - `hash` hashes each piece and, piece by piece, the whole stream (the file id), with
 *   BLAKE3, and sends main the finished batch; the last one carries the file id.
 * Each thread handles its messages in order, and all of the hash thread's come from the
 * cut thread, so they stay in stream order. Every message names its stream, so what
 * belongs to an aborted stream is dropped.
 *
 * Slot lifetime: the hash thread reads a slot when its `cuts` arrive, and may read the
 * slot before it again for a piece that spans both; main reuses a slot only after a
 * batch's doneUpTo has passed its end (cut-pipeline.ts), by which time both threads are
 * done with it.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type { ChunkerParams } from '../chunking/chunker.js';
import type { StreamHasher } from '../hashing/blake3.js';
import { leafHasher } from '../hashing/tree-cv.js';
import { hashPieces, PieceCutter, type CutBatch, type Region } from './piece-cutter.js';

/** main -> cut */
export type CutRequest =
  | { op: 'begin'; stream: number; params: ChunkerParams; forced?: Float64Array; preferred?: Float64Array }
  | { op: 'push'; stream: number; slot: number; length: number }
  | { op: 'finish'; stream: number }
  | { op: 'abort' };

/** cut -> hash */
type HashRequest =
  | { op: 'begin'; stream: number }
  | { op: 'cuts'; stream: number; slot: number; start: number; length: number; batch: CutBatch; final: boolean }
  | { op: 'abort' };

/** hash (or cut, for its own failures) -> main */
export type CutReply = { op: 'batch'; stream: number; batch: CutBatch; final: boolean; fileId?: string; leaves?: Uint8Array } | { op: 'error'; stream: number; message: string };

export interface CutWorkerData {
  role: 'cut' | 'hash';
  shared: SharedArrayBuffer;
  /** where slot 0 starts in `shared` (page-aligned) */
  skip: number;
  slotSize: number;
  /** cut: where to send cuts; hash: where they come from */
  link: MessagePort;
}

function transferList(b: CutBatch): ArrayBuffer[] {
  return [b.starts.buffer, b.lengths.buffer, b.flags.buffer, b.ids.buffer] as ArrayBuffer[];
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function runCut(main: MessagePort, toHash: MessagePort, slot: (n: number, length: number) => Buffer): void {
  let cutter: PieceCutter | null = null;
  let stream = 0;
  let start = 0;
  const fail = (err: unknown): void => {
    cutter = null;
    main.postMessage({ op: 'error', stream, message: message(err) } satisfies CutReply);
  };
  main.on('message', (m: CutRequest) => {
    if (m.op === 'abort') {
      cutter = null;
      toHash.postMessage({ op: 'abort' } satisfies HashRequest);
      return;
    }
    if (m.op === 'begin') {
      stream = m.stream;
      start = 0;
      try {
        cutter = new PieceCutter(m.params, m.forced && m.preferred ? { forced: m.forced, preferred: m.preferred } : undefined, false);
      } catch (err) {
        return fail(err);
      }
      toHash.postMessage({ op: 'begin', stream } satisfies HashRequest);
      return;
    }
    if (m.stream !== stream || !cutter) return;
    try {
      if (m.op === 'push') {
        const batch = cutter.push(slot(m.slot, m.length));
        toHash.postMessage({ op: 'cuts', stream, slot: m.slot, start, length: m.length, batch, final: false } satisfies HashRequest, transferList(batch));
        start += m.length;
      } else {
        const batch = cutter.finish();
        cutter = null;
        toHash.postMessage({ op: 'cuts', stream, slot: -1, start, length: 0, batch, final: true } satisfies HashRequest, transferList(batch));
      }
    } catch (err) {
      fail(err);
    }
  });
}

function runHash(main: MessagePort, fromCut: MessagePort, slot: (n: number, length: number) => Buffer): void {
  let hasher: StreamHasher | null = null;
  let leaves: () => Buffer | null = () => null;
  let stream = 0;
  /** the slots pieces may still need, in stream order (trimmed by each batch's doneUpTo) */
  let held: Region[] = [];
  fromCut.on('message', (m: HashRequest) => {
    if (m.op === 'abort') {
      hasher = null;
      held = [];
      return;
    }
    if (m.op === 'begin') {
      stream = m.stream;
      const file = leafHasher();
      hasher = file.hasher;
      leaves = file.leaves;
      held = [];
      return;
    }
    if (m.stream !== stream || !hasher) return;
    try {
      if (!m.final) held.push({ start: m.start, bytes: slot(m.slot, m.length) });
      // pieces cover the stream in order without gaps: the file id is their bytes' hash
      hashPieces(m.batch, held, hasher);
      while (held.length && held[0]!.start + held[0]!.bytes.length <= m.batch.doneUpTo) held.shift();
      const reply: CutReply = { op: 'batch', stream, batch: m.batch, final: m.final };
      if (m.final) {
        reply.fileId = hasher.digestHex();
        const l = leaves();
        if (l && l.length) reply.leaves = new Uint8Array(l);
        hasher = null;
        held = [];
      }
      main.postMessage(reply, transferList(m.batch));
    } catch (err) {
      hasher = null;
      main.postMessage({ op: 'error', stream, message: message(err) } satisfies CutReply);
    }
  });
}

if (parentPort) {
  const { role, shared, skip, slotSize, link } = workerData as CutWorkerData;
  const slot = (n: number, length: number): Buffer => Buffer.from(shared, skip + n * slotSize, length);
  if (role === 'cut') runCut(parentPort, link, slot);
  else runHash(parentPort, link, slot);
}
