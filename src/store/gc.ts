/**
 * Garbage collection of the local store, planned first (pure over the index), then applied.
 * Live = every chunk of every manifest the caller says is reachable. Anything younger than
 * the grace period is kept too, so a `git add` running at the same time (chunks stored,
 * pointer not yet in the index) never loses content.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Manifest } from '../manifest/manifest.js';
import { ENTRY_HEAD_SIZE } from './pack-format.js';
import type { ChunkStore } from './chunk-store.js';

export interface GcPlan {
  liveManifests: number;
  deadManifests: string[];
  /** Packs whose chunks are all dead: deleted. */
  deletePacks: { pack: number; chunks: number; bytes: number }[];
  /** Packs with some dead chunks: rewritten with the live ones. */
  rewritePacks: { pack: number; deadChunks: number; deadBytes: number; liveChunks: number }[];
  /** Pack files on disk that the index does not know (left by a crash). */
  orphanPackFiles: string[];
  freedBytes: number;
  deadChunks: number;
  /** Chunks added after this time (ms) are kept whatever their liveness. */
  cutoff: number;
}

export function planGc(store: ChunkStore, liveManifestIds: Iterable<string>, opts: { graceMs: number; now?: number }): GcPlan {
  const now = opts.now ?? Date.now();
  const cutoff = now - opts.graceMs;
  const live = new Set(liveManifestIds);
  const db = store.db;
  db.exec('CREATE TEMP TABLE IF NOT EXISTS gc_live(id BLOB PRIMARY KEY) WITHOUT ROWID; DELETE FROM gc_live;');
  const ins = db.prepare('INSERT OR IGNORE INTO gc_live(id) VALUES (?)');
  const deadManifests: string[] = [];
  for (const id of [...store.listManifestIds()]) {
    let young = false;
    try {
      young = fs.statSync(store.manifestPath(id)).mtimeMs > cutoff;
    } catch {
      continue;
    }
    if (!live.has(id) && !young) {
      deadManifests.push(id);
      continue;
    }
    live.add(id);
  }
  db.transaction(() => {
    for (const id of live) {
      let m: Manifest;
      try {
        m = Manifest.parse(store.getManifestBytes(id));
      } catch {
        continue; // not local (lazy) or corrupt: fsck's business
      }
      for (let i = 0; i < m.chunkCount; i++) ins.run(m.idRawAt(i));
      for (const piece of store.manifestPieceIds(id)) ins.run(piece);
    }
  })();
  const perPack = db
    .prepare(
      `SELECT p.id AS pack,
              count(c.id) AS total,
              sum(CASE WHEN l.id IS NULL AND c.added_at <= ? THEN 1 ELSE 0 END) AS dead,
              sum(CASE WHEN l.id IS NULL AND c.added_at <= ? THEN c.stored_len + ${ENTRY_HEAD_SIZE} ELSE 0 END) AS deadBytes,
              p.created_at AS created
         FROM packs p LEFT JOIN chunks c ON c.pack = p.id LEFT JOIN gc_live l ON l.id = c.id
        GROUP BY p.id`,
    )
    .all(cutoff, cutoff) as { pack: number; total: number; dead: number; deadBytes: number; created: number }[];
  const plan: GcPlan = { liveManifests: live.size, deadManifests, deletePacks: [], rewritePacks: [], orphanPackFiles: [], freedBytes: 0, deadChunks: 0, cutoff };
  const known = new Set<string>();
  for (const p of perPack) {
    const file = store.packPath(p.pack);
    known.add(path.basename(file));
    if (p.total === 0) {
      if (p.created <= cutoff) plan.deletePacks.push({ pack: p.pack, chunks: 0, bytes: fileSize(file) });
      continue;
    }
    if (!p.dead) continue;
    plan.deadChunks += p.dead;
    if (p.dead === p.total) plan.deletePacks.push({ pack: p.pack, chunks: p.total, bytes: fileSize(file) });
    else plan.rewritePacks.push({ pack: p.pack, deadChunks: p.dead, deadBytes: p.deadBytes, liveChunks: p.total - p.dead });
  }
  const packDir = path.join(store.dir, 'packs');
  for (const f of fs.readdirSync(packDir)) {
    if (f.endsWith('.pack') && !known.has(f)) {
      const full = path.join(packDir, f);
      if (fs.statSync(full).mtimeMs <= cutoff) plan.orphanPackFiles.push(f);
    }
  }
  plan.freedBytes =
    plan.deletePacks.reduce((a, p) => a + p.bytes, 0) +
    plan.rewritePacks.reduce((a, p) => a + p.deadBytes, 0) +
    plan.orphanPackFiles.reduce((a, f) => a + fileSize(path.join(packDir, f)), 0);
  return plan;
}

function fileSize(f: string): number {
  try {
    return fs.statSync(f).size;
  } catch {
    return 0;
  }
}

export function applyGc(store: ChunkStore, plan: GcPlan): void {
  const isLive = store.db.prepare('SELECT 1 FROM gc_live WHERE id = ?').pluck();
  const addedAt = store.db.prepare('SELECT added_at FROM chunks WHERE id = ?').pluck();
  // A pack whose chunks are all dead is rewritten to nothing: deleted with its rows.
  for (const p of [...plan.rewritePacks.map((r) => r.pack), ...plan.deletePacks.map((d) => d.pack)]) {
    store.rewritePack(p, (id) => isLive.get(id) !== undefined || (addedAt.get(id) as number) > plan.cutoff);
  }
  const unpiece = store.db.prepare('DELETE FROM manifest_pieces WHERE manifest = ?');
  for (const id of plan.deadManifests) {
    fs.rmSync(store.manifestPath(id), { force: true });
    unpiece.run(id);
  }
  for (const f of plan.orphanPackFiles) fs.rmSync(path.join(store.dir, 'packs', f), { force: true });
  // records of remote-held chunks nothing reachable needs any more
  store.dropRemoteHeld((id) => isLive.get(id) !== undefined, plan.cutoff);
}
