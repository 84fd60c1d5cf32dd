import { ChunkPool } from './chunk-pool.js';

/**
 * Buffers of chunks let go, kept for the next chunks from a remote (chunk-pool.ts), at
 * most: within the 64 MiB of --memory set aside for evicted chunks not freed yet.
 */
const POOL_LIMIT = 32 << 20;

/**
 * Verified chunks (and small blobs) kept in memory within a byte budget, least recently
 * used dropped first. Only bytes already verified against their id are put here, so a hit
 * is served as it is. A Map iterates in insertion order: a hit is moved to the end, and
 * the first key is the least recently used. A chunk's buffer from `pool` that leaves is
 * retired to it (used again once no read can hold it).
 */
export class RamCache {
  private readonly map = new Map<string, Buffer>();
  private used = 0;
  readonly pool = new ChunkPool(POOL_LIMIT);

  constructor(readonly budget: number) {}

  get(key: string): Buffer | undefined {
    const b = this.map.get(key);
    if (b !== undefined) {
      this.map.delete(key);
      this.map.set(key, b);
    }
    return b;
  }

  put(key: string, b: Buffer): void {
    if (b.length > this.budget / 4) return; // one entry never pushes out most of the cache
    const old = this.map.get(key);
    if (old !== undefined) {
      this.map.delete(key);
      this.used -= old.length;
      if (old !== b) this.pool.retire(old);
    }
    this.map.set(key, b);
    this.used += b.length;
    while (this.used > this.budget) {
      const [k, v] = this.map.entries().next().value as [string, Buffer];
      this.map.delete(k);
      this.used -= v.length;
      this.pool.retire(v);
    }
  }

  get bytes(): number {
    return this.used;
  }

  clear(): void {
    this.map.clear();
    this.used = 0;
  }
}
