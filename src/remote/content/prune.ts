/**
 * Local cache tiering: drop local chunks that a remote verifiably holds, oldest use first,
 * so a laptop keeps recent work and the rest comes back on demand (ensureLocal).
 *
 * planPrune (read and verify, no local change):
 *   1. sync the remote index (one listing), then walk local chunks by last use (chunk-usage.ts;
 *      a chunk never read counts from when it was added);
 *   2. a chunk is a candidate if last used before `now - olderThanMs`, or while the store is
 *      still above `maxLocalBytes` (least recently used first); chunks of `keepManifestIds`
 *      never are;
 *   3. a candidate counts only if the synced remote index lists it, and its remote pack then
 *      passes: HEAD says it exists with the size the listing gave, and `samplePerPack` of
 *      its candidate chunks, re-downloaded by ranged reads, decode and hash to their ids.
 *      A pack that fails drops all its chunks from the plan (reported, never pruned).
 * applyPrune: rewrites each affected local pack without the planned chunks (ChunkStore
 *   .rewritePack: crash-safe; chunks added since the plan are kept) and records them as
 *   remote-held (ChunkStore.markRemoteHeld), so fsck does not call them missing and adding
 *   them again does not store them again.
 *
 * Manifests are never pruned (DESIGN.md invariant 5), only chunks; nor are the chunks that
 * hold pieces of large manifests (ChunkStore's manifest_pieces table).
 */
import { Manifest } from '../../manifest/manifest.js';
import type { ChunkStore } from '../../store/chunk-store.js';
import { ENTRY_HEAD_SIZE, PACK_HEADER_SIZE, encodeEntryHead } from '../../store/pack-format.js';
import type { ObjectStorage } from '../../transfer/object-storage.js';
import type { TransferQueueOptions } from '../../transfer/transfer-queue.js';
import { checkStoredChunk } from './chunk-verify.js';
import { ensureUsageTable } from './chunk-usage.js';
import { packKey } from './layout.js';
import { runLimited } from './push-content.js';
import type { RemoteChunkLocation } from './remote-index.js';
import { openSession, syncSession } from './sync-remote-index.js';

export interface PrunePlanOptions {
  remoteName: string;
  /** chunks last used longer ago than this are dropped */
  olderThanMs?: number;
  /** then least recently used chunks are dropped until local chunks take at most this */
  maxLocalBytes?: number;
  /** ms since the epoch (default Date.now()) */
  now?: number;
  /** chunks of these manifests are kept whatever their age (e.g. the checked-out files) */
  keepManifestIds?: Iterable<string>;
  /** chunks re-downloaded and verified per remote pack (default 2) */
  samplePerPack?: number;
  random?: () => number;
  concurrency?: number;
  queueOptions?: TransferQueueOptions;
}

export interface PrunePackPlan {
  /** local pack id (ChunkStore's packs table) */
  pack: number;
  /** chunk ids to drop from it */
  drop: Buffer[];
  /** chunks that stay in it */
  keep: number;
  freedBytes: number;
}

export interface PrunePlan {
  remoteName: string;
  location: string;
  now: number;
  packs: PrunePackPlan[];
  chunks: number;
  freedBytes: number;
  /** bytes of local chunk entries before and after applying */
  localBytesBefore: number;
  localBytesAfter: number;
  /** candidates kept because the remote does not (verifiably) hold them */
  notOnRemote: number;
  /** remote packs checked (HEAD and sampled chunks) */
  verifiedRemotePacks: number;
  /** remote packs that failed the check; their chunks stay local */
  failedRemotePacks: { packKey: string; reason: string }[];
  requests: number;
}

interface Candidate {
  id: Buffer;
  pack: number;
  bytes: number;
  remote: RemoteChunkLocation;
}

export async function planPrune(store: ChunkStore, storage: ObjectStorage, opts: PrunePlanOptions): Promise<PrunePlan> {
  const now = opts.now ?? Date.now();
  const random = opts.random ?? Math.random;
  const samplePerPack = opts.samplePerPack ?? 2;
  store.commit();
  ensureUsageTable(store.db);
  const session = openSession(storage, store, opts.remoteName, opts);
  await syncSession(session);
  const { index, queue } = session;

  const keep = new Set<string>();
  for (const id of opts.keepManifestIds ?? []) {
    const m = Manifest.parse(store.getManifestBytes(id));
    for (let i = 0; i < m.chunkCount; i++) keep.add(m.idRawAt(i).toString('latin1'));
  }

  // Chunks holding pieces of large manifests (ChunkStore's manifest_pieces) stay: manifests stay hot.
  const hasPieces = store.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'manifest_pieces'").pluck().get() !== undefined;
  const notPiece = hasPieces ? 'WHERE c.id NOT IN (SELECT chunk FROM manifest_pieces)' : '';
  const total = store.db.prepare('SELECT coalesce(sum(stored_len), 0) + count(*) * ? AS b FROM chunks').get(ENTRY_HEAD_SIZE) as { b: number };
  let remaining = total.b;
  const cutoff = opts.olderThanMs === undefined ? -Infinity : now - opts.olderThanMs;
  const cap = opts.maxLocalBytes ?? Infinity;
  const rows = store.db
    .prepare(
      `SELECT c.id AS id, c.pack AS pack, c.stored_len AS storedLength, max(c.added_at, coalesce(u.at, 0)) AS lastUsed
       FROM chunks c LEFT JOIN chunk_last_used u ON u.id = c.id ${notPiece} ORDER BY lastUsed ASC`,
    )
    .iterate() as IterableIterator<{ id: Buffer; pack: number; storedLength: number; lastUsed: number }>;
  const candidates: Candidate[] = [];
  let notOnRemote = 0;
  for (const r of rows) {
    const old = r.lastUsed < cutoff;
    if (!old && remaining <= cap) break; // ordered by last use: nothing later qualifies
    if (keep.has(r.id.toString('latin1'))) continue;
    const remote = index.lookup(r.id);
    if (!remote) {
      notOnRemote++;
      continue;
    }
    const bytes = ENTRY_HEAD_SIZE + r.storedLength;
    candidates.push({ id: r.id, pack: r.pack, bytes, remote });
    remaining -= bytes;
  }

  // verify each remote pack the plan relies on
  const byRemotePack = new Map<string, Candidate[]>();
  for (const c of candidates) {
    let list = byRemotePack.get(c.remote.packId);
    if (!list) byRemotePack.set(c.remote.packId, (list = []));
    list.push(c);
  }
  const failedRemotePacks: { packKey: string; reason: string }[] = [];
  const failed = new Set<string>();
  await runLimited([...byRemotePack], opts.concurrency ?? 8, async ([packId, list]) => {
    const key = packKey(packId);
    const reason = await checkRemotePack(session.storage, queue, key, list, samplePerPack, random).catch((err: unknown) => `could not be checked: ${(err as Error).message}`);
    if (reason) {
      failed.add(packId);
      failedRemotePacks.push({ packKey: key, reason });
    }
  });

  const byLocalPack = new Map<number, PrunePackPlan>();
  let chunks = 0;
  let freedBytes = 0;
  let chunkBytes = 0;
  for (const c of candidates) {
    if (failed.has(c.remote.packId)) {
      notOnRemote++;
      continue;
    }
    let p = byLocalPack.get(c.pack);
    if (!p) byLocalPack.set(c.pack, (p = { pack: c.pack, drop: [], keep: 0, freedBytes: 0 }));
    p.drop.push(c.id);
    p.freedBytes += c.bytes;
    chunks++;
    freedBytes += c.bytes;
    chunkBytes += c.bytes;
  }
  const count = store.db.prepare('SELECT count(*) FROM chunks WHERE pack = ?').pluck();
  for (const p of byLocalPack.values()) {
    p.keep = (count.get(p.pack) as number) - p.drop.length;
    if (p.keep === 0) p.freedBytes += PACK_HEADER_SIZE;
  }
  return {
    remoteName: opts.remoteName,
    location: storage.location,
    now,
    packs: [...byLocalPack.values()],
    chunks,
    freedBytes,
    localBytesBefore: total.b,
    localBytesAfter: total.b - chunkBytes,
    notOnRemote,
    verifiedRemotePacks: byRemotePack.size - failed.size,
    failedRemotePacks,
    requests: session.storage.requests,
  };
}

/** null when the remote pack exists with the expected size and sampled chunks verify; else why not. */
async function checkRemotePack(
  storage: ObjectStorage,
  queue: ReturnType<typeof openSession>['queue'],
  key: string,
  list: Candidate[],
  samples: number,
  random: () => number,
): Promise<string | null> {
  const head = await storage.head(key);
  if (!head) return 'is missing on the remote';
  if (head.size !== list[0]!.remote.packSize) return `has ${head.size} bytes on the remote, its index says ${list[0]!.remote.packSize}`;
  const picks = new Set<number>();
  const want = Math.min(samples, list.length);
  while (picks.size < want) picks.add(Math.floor(random() * list.length) % list.length);
  for (const i of picks) {
    const c = list[i]!;
    const r = c.remote;
    const bytes = await queue.downloadBuffer({ key, range: { start: r.offset - ENTRY_HEAD_SIZE, end: r.offset + r.storedLength - 1 } });
    const expected = Buffer.allocUnsafe(ENTRY_HEAD_SIZE);
    encodeEntryHead({ idRaw: c.id, codec: r.codec, rawLength: r.rawLength, storedLength: r.storedLength }, expected, 0);
    if (bytes.length !== ENTRY_HEAD_SIZE + r.storedLength || !bytes.subarray(0, ENTRY_HEAD_SIZE).equals(expected)) return `chunk ${c.id.toString('hex')} does not read back as indexed`;
    const bad = await checkStoredChunk(c.id, r.codec, r.rawLength, bytes.subarray(ENTRY_HEAD_SIZE));
    if (bad) return `chunk ${c.id.toString('hex')} read back corrupt: ${bad}`;
  }
  return null;
}

export interface PruneResult {
  chunks: number;
  packsRewritten: number;
  /** bytes of local pack files before minus after */
  freedBytes: number;
}

/**
 * Drops the planned chunks: each affected local pack is rewritten without them. Run it right
 * after planPrune (the plan's remote verification is what makes dropping safe).
 */
export function applyPrune(store: ChunkStore, plan: PrunePlan): PruneResult {
  ensureUsageTable(store.db);
  const packExists = store.db.prepare('SELECT 1 FROM packs WHERE id = ?').pluck();
  const forget = store.db.prepare('DELETE FROM chunk_last_used WHERE id = ?');
  const before = store.stats().packBytes;
  let chunks = 0;
  let packsRewritten = 0;
  for (const p of plan.packs) {
    if (packExists.get(p.pack) === undefined) continue; // replaced since the plan (gc): skipped
    const drop = new Set(p.drop.map((id) => id.toString('latin1')));
    const held = p.drop.flatMap((idRaw) => {
      const loc = store.locate(idRaw);
      return loc ? [{ idRaw, rawLength: loc.rawLength }] : [];
    });
    const r = store.rewritePack(p.pack, (id) => !drop.has(id.toString('latin1')));
    // still content of this repository: new versions dedup against it (ChunkStore.putChunk)
    store.markRemoteHeld(held, plan.remoteName);
    store.db.transaction(() => {
      for (const id of p.drop) forget.run(id);
    })();
    chunks += r.dropped;
    packsRewritten++;
  }
  return { chunks, packsRewritten, freedBytes: before - store.stats().packBytes };
}
