/**
 * fsck: re-hash every stored chunk and manifest. Corrupt ones are moved aside (quarantine)
 * so nothing reads them as valid again; the result lists them. Also checks that every
 * pointer the caller names has its manifest and chunks, to report missing content.
 */
import fs from 'node:fs';
import path from 'node:path';
import { hashBytes } from '../hashing/blake3.js';
import { Manifest } from '../manifest/manifest.js';
import type { Pointer } from '../manifest/pointer.js';
import { CODEC_NONE, CODEC_ZSTD } from './pack-format.js';
import { decompress } from './compression.js';
import type { ChunkStore, ChunkLocation } from './chunk-store.js';

export interface FsckProblem {
  kind: 'chunk-corrupt' | 'manifest-corrupt' | 'manifest-missing' | 'chunk-missing';
  id: string;
  detail: string;
  /** Paths of pointers affected (for missing content). */
  paths?: string[];
}

export interface FsckResult {
  chunksChecked: number;
  bytesChecked: number;
  manifestsChecked: number;
  problems: FsckProblem[];
  quarantined: string[];
  /**
   * Chunks the named pointers need that are not stored here because a remote verifiably
   * holds them (fetched straight into the working tree, or pruned): not a problem, they
   * are fetched again when needed.
   */
  remoteHeldChunks: number;
}

async function verifyStored(store: ChunkStore, idRaw: Buffer, loc: ChunkLocation): Promise<string | null> {
  let data: Buffer;
  try {
    data = store.readStored(loc);
  } catch (e) {
    return `unreadable: ${(e as Error).message}`;
  }
  if (loc.codec === CODEC_ZSTD) {
    try {
      data = await decompress(data);
    } catch {
      return 'zstd data does not decode';
    }
  } else if (loc.codec !== CODEC_NONE) return `unknown codec ${loc.codec}`;
  if (data.length !== loc.rawLength) return 'wrong length';
  if (!hashBytes(data).equals(idRaw)) return 'bytes do not match the id';
  return null;
}

export async function fsckStore(
  store: ChunkStore,
  pointers: { path: string; pointer: Pointer }[],
  opts: { onProgress?: (bytes: number, total: number) => void; quarantine?: boolean } = {},
): Promise<FsckResult> {
  const quarantine = opts.quarantine ?? true;
  const res: FsckResult = { chunksChecked: 0, bytesChecked: 0, manifestsChecked: 0, problems: [], quarantined: [], remoteHeldChunks: 0 };
  const qdir = path.join(store.dir, 'quarantine');
  fs.mkdirSync(qdir, { recursive: true });
  const total = (store.db.prepare('SELECT coalesce(sum(stored_len), 0) FROM chunks').pluck().get() as number) || 0;
  const rows = store.db.prepare('SELECT id, pack, offset, stored_len AS storedLength, raw_len AS rawLength, codec FROM chunks ORDER BY pack, offset').iterate() as IterableIterator<ChunkLocation & { id: Buffer }>;
  const bad: { id: Buffer; loc: ChunkLocation; reason: string }[] = [];
  for (const row of rows) {
    const reason = await verifyStored(store, row.id, row);
    res.chunksChecked++;
    res.bytesChecked += row.storedLength;
    opts.onProgress?.(res.bytesChecked, total);
    if (reason) bad.push({ id: Buffer.from(row.id), loc: row, reason });
  }
  const del = store.db.prepare('DELETE FROM chunks WHERE id = ?');
  const note = store.db.prepare('INSERT INTO quarantine(id, kind, reason, at) VALUES (?, ?, ?, ?)');
  for (const b of bad) {
    const hex = b.id.toString('hex');
    res.problems.push({ kind: 'chunk-corrupt', id: hex, detail: b.reason });
    if (!quarantine) continue;
    try {
      fs.writeFileSync(path.join(qdir, `${hex}.chunk`), store.readStored(b.loc));
    } catch {
      /* unreadable: nothing to keep */
    }
    store.db.transaction(() => {
      del.run(b.id);
      note.run(hex, 'chunk', b.reason, Date.now());
    }).immediate();
    res.quarantined.push(hex);
  }

  const goodManifests = new Map<string, Manifest>();
  for (const id of [...store.listManifestIds()]) {
    res.manifestsChecked++;
    let reason: string | null = null;
    try {
      goodManifests.set(id, Manifest.parse(store.getManifestBytes(id)));
    } catch (e) {
      reason = (e as Error).message;
    }
    if (reason) {
      res.problems.push({ kind: 'manifest-corrupt', id, detail: reason });
      if (quarantine) {
        store.quarantineManifest(id, path.join(qdir, `${id}.manifest`), () => note.run(id, 'manifest', reason, Date.now()));
        res.quarantined.push(id);
      }
    }
  }

  const heldSeen = new Set<string>();
  const byManifest = new Map<string, string[]>();
  for (const p of pointers) {
    const list = byManifest.get(p.pointer.manifest) ?? [];
    list.push(p.path);
    byManifest.set(p.pointer.manifest, list);
  }
  for (const [id, paths] of byManifest) {
    const m = goodManifests.get(id);
    if (!m) {
      res.problems.push({ kind: 'manifest-missing', id, detail: 'manifest not in the local store', paths });
      continue;
    }
    let missing = 0;
    let first = '';
    for (let i = 0; i < m.chunkCount; i++) {
      const idRaw = m.idRawAt(i);
      if (store.locate(idRaw)) continue;
      if (store.isRemoteHeld(idRaw)) {
        const k = idRaw.toString('latin1');
        if (!heldSeen.has(k)) {
          heldSeen.add(k);
          res.remoteHeldChunks++;
        }
        continue;
      }
      if (!missing) first = m.idAt(i);
      missing++;
    }
    if (missing) res.problems.push({ kind: 'chunk-missing', id: first, detail: `${missing} chunk(s) of manifest ${id} not in the local store`, paths });
  }
  return res;
}
