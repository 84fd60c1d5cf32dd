/**
 * Remote-held chunks: chunks whose bytes are not kept in the local store because a remote
 * verifiably holds them (the table remote_held, schema in store-db.ts). A clone that fetched
 * them straight into the working tree, or a prune that checked the remote copy, records
 * them; adding content dedups against them, fsck does not call them missing, and reads of
 * them go to the remote (ensureLocal). ChunkStore is the facade (it takes the writer lease
 * before recording).
 */
import type { StoreDb } from './store-db.js';

export class RemoteHeld {
  private readonly stmts;
  /** Whether any chunk is remote-held (skips the per-chunk query when none is). */
  private any: boolean | null = null;

  constructor(private readonly db: StoreDb) {
    this.stmts = {
      has: db.prepare('SELECT 1 FROM remote_held WHERE id = ?').pluck(),
      add: db.prepare('INSERT OR REPLACE INTO remote_held(id, remote, raw_len, at) VALUES (?, ?, ?, ?)'),
      any: db.prepare('SELECT EXISTS(SELECT 1 FROM remote_held)').pluck(),
    };
  }

  /** Whether any chunk is remote-held at all (asked once, until the records change). */
  anyHeld(): boolean {
    this.any ??= this.stmts.any.get() === 1;
    return this.any;
  }

  has(idRaw: Buffer): boolean {
    return this.anyHeld() && this.stmts.has.get(idRaw) !== undefined;
  }

  /** The remote recorded as holding this chunk, if any. */
  heldBy(idRaw: Buffer): string | undefined {
    if (!this.has(idRaw)) return undefined;
    return this.db.prepare('SELECT remote FROM remote_held WHERE id = ?').pluck().get(idRaw) as string | undefined;
  }

  /** Records chunks that `remote` was just seen to hold, in one write transaction. */
  mark(chunks: readonly { idRaw: Buffer; rawLength: number }[], remote: string): void {
    const now = Date.now();
    this.db.transaction(() => {
      for (const c of chunks) this.stmts.add.run(c.idRaw, remote, c.rawLength, now);
    }).immediate();
    this.any = true;
  }

  /** Forgets the chunks recorded before `cutoff` (ms) that `keep` rejects; returns how many. */
  drop(keep: (idRaw: Buffer) => boolean, cutoff: number): number {
    const drop: Buffer[] = [];
    for (const id of this.db.prepare('SELECT id FROM remote_held WHERE at <= ?').pluck().iterate(cutoff) as IterableIterator<Buffer>) if (!keep(id)) drop.push(id);
    if (drop.length) {
      const del = this.db.prepare('DELETE FROM remote_held WHERE id = ?');
      this.db.transaction(() => {
        for (const id of drop) del.run(id);
      }).immediate();
    }
    this.any = null;
    return drop.length;
  }

  /** Chunks held only by a remote (not stored here): how many, and their plain size. */
  stats(): { chunks: number; rawBytes: number } {
    const r = this.db
      .prepare('SELECT count(*) AS n, coalesce(sum(raw_len), 0) AS b FROM remote_held r WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = r.id)')
      .get() as { n: number; b: number };
    return { chunks: r.n, rawBytes: r.b };
  }

  /** stats per remote name. */
  byRemote(): { remote: string; chunks: number; rawBytes: number }[] {
    return this.db
      .prepare('SELECT remote, count(*) AS chunks, coalesce(sum(raw_len), 0) AS rawBytes FROM remote_held r WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = r.id) GROUP BY remote ORDER BY remote')
      .all() as { remote: string; chunks: number; rawBytes: number }[];
  }
}
