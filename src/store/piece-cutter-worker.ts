/**
 * Worker-thread entry of CutWorker (cut-pipeline.ts), in one of two roles over the slots
 * of the SharedArrayBuffer it was given:
 * - `cut`: runs a PieceCutter; one `batch` reply per push and one (final) for finish;
 * - `hash`: the whole stream's BLAKE3 (the file id); one `hashed` reply per push, one
 *   `digest` for finish.
 * Messages are handled in order; every reply names the stream it belongs to, so replies
 * to an aborted stream can be told apart.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ChunkerParams } from '../chunking/chunker.js';
import { StreamHasher } from '../hashing/blake3.js';
import { PieceCutter, type CutBatch } from './piece-cutter.js';

export type CutRequest =
  | { op: 'begin'; stream: number; params: ChunkerParams; forced?: Float64Array; preferred?: Float64Array }
  | { op: 'push'; stream: number; slot: number; length: number }
  | { op: 'finish'; stream: number }
  | { op: 'abort' };

export type CutReply =
  | { op: 'batch'; stream: number; batch: CutBatch; final: boolean }
  | { op: 'hashed'; stream: number; slot: number }
  | { op: 'digest'; stream: number; hex: string; length: number }
  | { op: 'error'; stream: number; message: string };

export interface CutWorkerData {
  role: 'cut' | 'hash';
  shared: SharedArrayBuffer;
  /** where slot 0 starts in `shared` (page-aligned) */
  skip: number;
  slotSize: number;
}

function transferList(b: CutBatch): ArrayBuffer[] {
  return [b.starts.buffer, b.lengths.buffer, b.flags.buffer, b.ids.buffer] as ArrayBuffer[];
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

if (parentPort) {
  const port = parentPort;
  const { role, shared, skip, slotSize } = workerData as CutWorkerData;
  const slot = (n: number, length: number): Buffer => Buffer.from(shared, skip + n * slotSize, length);
  let cutter: PieceCutter | null = null;
  let hasher: StreamHasher | null = null;
  let stream = 0;
  let failed = false;
  const fail = (err: unknown): void => {
    failed = true;
    cutter = null;
    hasher = null;
    port.postMessage({ op: 'error', stream, message: message(err) } satisfies CutReply);
  };
  port.on('message', (m: CutRequest) => {
    if (m.op === 'abort') {
      cutter = null;
      hasher = null;
      return;
    }
    if (m.op === 'begin') {
      stream = m.stream;
      failed = false;
      try {
        if (role === 'cut') cutter = new PieceCutter(m.params, m.forced && m.preferred ? { forced: m.forced, preferred: m.preferred } : undefined);
        else hasher = new StreamHasher();
      } catch (err) {
        fail(err);
      }
      return;
    }
    if (m.stream !== stream || failed) return;
    try {
      if (role === 'hash') {
        if (!hasher) return;
        if (m.op === 'push') {
          hasher.update(slot(m.slot, m.length));
          port.postMessage({ op: 'hashed', stream, slot: m.slot } satisfies CutReply);
        } else {
          port.postMessage({ op: 'digest', stream, hex: hasher.digestHex(), length: hasher.length } satisfies CutReply);
          hasher = null;
        }
        return;
      }
      if (!cutter) return;
      const batch = m.op === 'push' ? cutter.push(slot(m.slot, m.length)) : cutter.finish();
      if (m.op === 'finish') cutter = null;
      port.postMessage({ op: 'batch', stream, batch, final: m.op === 'finish' } satisfies CutReply, transferList(batch));
    } catch (err) {
      fail(err);
    }
  });
}
