/**
 * When each local chunk was last used, for local cache tiering (prune.ts). Kept in the local
 * store's SQLite as `chunk_last_used(id, at)`; a chunk without a row counts as used when it
 * was added (`chunks.added_at`).
 *
 * ChunkUsageTracker hooks ChunkStore.getChunk (`store.onChunkRead`) and writes in batches:
 * a read costs one Map update; every `flushEvery` distinct chunks (and on flush/detach) one
 * transaction writes them. Attach it where content is read for the user (checkout,
 * materialize, mount); call detach() (or flush()) before the store closes.
 */
import type { ChunkStore } from '../../store/chunk-store.js';

/** Records that these chunks were used at `at` (ms since the epoch); keeps the latest time. */
export function markChunksUsed(store: ChunkStore, ids: Iterable<Buffer>, at: number): void {
  store.recordChunkUse(Array.from(ids, (id) => [id, at] as const));
}

export interface ChunkUsageTrackerOptions {
  now?: () => number;
  /** distinct chunks held before a write (default 4096) */
  flushEvery?: number;
}

export class ChunkUsageTracker {
  private pending = new Map<string, number>();
  private readonly now: () => number;
  private readonly flushEvery: number;
  private previous: ChunkStore['onChunkRead'] = null;
  private attached = false;

  constructor(
    readonly store: ChunkStore,
    opts: ChunkUsageTrackerOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.flushEvery = opts.flushEvery ?? 4096;
  }

  /** Starts recording reads through store.getChunk (chains any hook already set). */
  attach(): this {
    if (this.attached) return this;
    this.previous = this.store.onChunkRead;
    const prev = this.previous;
    this.store.onChunkRead = (idRaw) => {
      this.touch(idRaw);
      prev?.(idRaw);
    };
    this.attached = true;
    return this;
  }

  touch(idRaw: Buffer): void {
    this.pending.set(idRaw.toString('latin1'), this.now());
    if (this.pending.size >= this.flushEvery) this.flush();
  }

  flush(): void {
    if (this.pending.size === 0) return;
    const rows = this.pending;
    this.pending = new Map();
    this.store.recordChunkUse(Array.from(rows, ([k, at]) => [Buffer.from(k, 'latin1'), at] as const));
  }

  /** Writes what is pending and unhooks. */
  detach(): void {
    this.flush();
    if (this.attached) this.store.onChunkRead = this.previous;
    this.attached = false;
  }
}

/** Attaches a tracker to the store's read path; detach() it before closing the store. */
export function trackChunkUsage(store: ChunkStore, opts: ChunkUsageTrackerOptions = {}): ChunkUsageTracker {
  return new ChunkUsageTracker(store, opts).attach();
}
