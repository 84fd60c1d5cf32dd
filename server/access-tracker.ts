/**
 * Access tracking for lifecycle work (tiering decides what is cold by when it was last
 * read). Reads call `recordAccess`, which only updates an in-memory map; the map is
 * written to SQLite in one transaction per batch: every `flushIntervalMs`, as soon as
 * `maxPending` distinct objects are waiting (deferred, never inside the caller's
 * request), and on `close()`. A crash loses at most one interval of access times,
 * which only makes content look slightly colder than it is.
 */
import type { ServerDb } from './db.js';

export type AccessKind = 'pack' | 'file';

export interface AccessTracker {
  recordAccess(repo: string, kind: AccessKind, id: string): void;
  /** Writes everything buffered now; returns how many distinct objects were written. */
  flush(): number;
  /** Stops the timer and flushes. Later recordAccess calls are ignored. */
  close(): void;
  /** Distinct objects waiting to be written. */
  readonly pending: number;
}

export interface TrackerTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  /** Runs `fn` soon, after the current request's work. */
  defer(fn: () => void): void;
}

export interface AccessTrackerOptions {
  clock: () => Date;
  flushIntervalMs?: number;
  maxPending?: number;
  timers?: TrackerTimers;
  /** Called when a background flush fails; the batch stays buffered for the next try. */
  onError?: (err: unknown) => void;
}

const nodeTimers: TrackerTimers = {
  setInterval(fn, ms) {
    const h = setInterval(fn, ms);
    h.unref();
    return h;
  },
  clearInterval(h) {
    clearInterval(h as NodeJS.Timeout);
  },
  defer(fn) {
    setImmediate(fn);
  },
};

interface Pending {
  repo: string;
  kind: AccessKind;
  id: string;
  count: number;
  last: string;
}

export function createAccessTracker(db: ServerDb, opts: AccessTrackerOptions): AccessTracker {
  const timers = opts.timers ?? nodeTimers;
  const maxPending = opts.maxPending ?? 10_000;
  let buffer = new Map<string, Pending>();
  let closed = false;
  let flushScheduled = false;

  const background = (): void => {
    flushScheduled = false;
    try {
      flush();
    } catch (err) {
      opts.onError?.(err);
    }
  };
  const handle = timers.setInterval(background, opts.flushIntervalMs ?? 5_000);

  function flush(): number {
    if (buffer.size === 0) return 0;
    const batch = buffer;
    buffer = new Map();
    try {
      db.tx(() => {
        const repoIds = new Map<string, number | undefined>();
        const upsert = db.stmt(
          `INSERT INTO access (repo_id, kind, object_id, last_read_at, read_count) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (repo_id, kind, object_id) DO UPDATE SET
             last_read_at = MAX(last_read_at, excluded.last_read_at),
             read_count = read_count + excluded.read_count`,
        );
        for (const p of batch.values()) {
          let repoId = repoIds.get(p.repo);
          if (!repoIds.has(p.repo)) {
            repoId = (db.stmt('SELECT id FROM repos WHERE name = ?').get(p.repo) as { id: number } | undefined)?.id;
            repoIds.set(p.repo, repoId);
          }
          if (repoId === undefined) continue; // deleted since the read
          upsert.run(repoId, p.kind, p.id, p.last, p.count);
        }
      });
    } catch (err) {
      // put the batch back, merged with anything recorded meanwhile
      for (const [key, p] of batch) merge(key, p);
      throw err;
    }
    return batch.size;
  }

  function merge(key: string, p: Pending): void {
    const cur = buffer.get(key);
    if (cur === undefined) buffer.set(key, p);
    else {
      cur.count += p.count;
      if (p.last > cur.last) cur.last = p.last;
    }
  }

  return {
    recordAccess(repo, kind, id) {
      if (closed) return;
      if (kind !== 'pack' && kind !== 'file') throw new TypeError(`unknown access kind ${String(kind)}`);
      const key = `${repo}\0${kind}\0${id}`;
      merge(key, { repo, kind, id, count: 1, last: opts.clock().toISOString() });
      if (buffer.size >= maxPending && !flushScheduled) {
        flushScheduled = true;
        timers.defer(background);
      }
    },
    flush,
    close() {
      if (closed) return;
      closed = true;
      timers.clearInterval(handle);
      flush();
    },
    get pending() {
      return buffer.size;
    },
  };
}
