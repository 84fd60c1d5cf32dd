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
 *   3. a candidate counts only if the synced remote index lists it, and then only once its
 *      bytes on the remote are verified (DESIGN.md invariant 4: the last local copy goes only
 *      after the remote copy is proved). With `verify: 'bytes'` (the default) every candidate
 *      is read back: the candidates of each remote pack, in pack order, coalesced into ranged
 *      reads of exactly their entries (adjacent entries in one request, never a byte between
 *      them), each entry head checked against the index and each chunk decoded and hashed to
 *      its id. With `verify: 'size'` (the user's explicit choice) a HEAD per remote pack checks
 *      only that it exists with the size its index implies.
 *      A chunk that fails is not dropped: it is reported per remote pack (failedRemotePacks),
 *      and its damaged copy is forgotten by the remote index (RemoteIndex.forgetChunks), so a
 *      push or `pushChunks` uploads it again and fetch never picks that copy. A pack the sync
 *      finds gone or changed in size is reported the same way for the candidates it held.
 *   `dryRun` stops before step 3's reads: the plan then says what verification would read
 *   (verifyBytes, verifyRequests) and `verified` is false.
 * applyPrune: rewrites each affected local pack without the planned chunks (ChunkStore
 *   .rewritePack: crash-safe; chunks added since the plan are kept) and records them as
 *   remote-held (ChunkStore.markRemoteHeld), so fsck does not call them missing and adding
 *   them again does not store them again. It refuses a plan that was not verified.
 *
 * Manifests are never pruned (DESIGN.md invariant 5), only chunks; nor are the chunks that
 * hold pieces of large manifests (ChunkStore's manifest_pieces table).
 */
import type { Readable } from 'node:stream';
import { Manifest } from '../../manifest/manifest.js';
import type { ChunkStore } from '../../store/chunk-store.js';
import { ENTRY_HEAD_SIZE, PACK_HEADER_SIZE, encodeEntryHead } from '../../store/pack-format.js';
import type { ObjectStorage } from '../../transfer/object-storage.js';
import { TransferError, type TransferProgress, type TransferQueueOptions } from '../../transfer/transfer-queue.js';
import { checkStoredChunk } from './chunk-verify.js';
import { ensureUsageTable } from './chunk-usage.js';
import { coalesce, DEFAULT_MAX_RANGE_BYTES } from './fetch-content.js';
import { packKey } from './layout.js';
import { runLimited } from './push-content.js';
import type { RemoteChunkLocation } from './remote-index.js';
import { StreamCursor } from './stream-cursor.js';
import { openSession, syncSession } from './sync-remote-index.js';

export type PruneVerify = 'bytes' | 'size';

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
  /**
   * How the remote copy of each chunk to drop is proved before it may go: 'bytes' (default)
   * reads every one back and hashes it; 'size' only checks each remote pack's size (HEAD).
   */
  verify?: PruneVerify;
  /** plan only: no verification reads (the plan says what they would read) */
  dryRun?: boolean;
  /** largest ranged read of the verification (default 64 MiB) */
  maxRangeBytes?: number;
  concurrency?: number;
  queueOptions?: TransferQueueOptions;
  /** progress of the reads (verification reads a byte for every byte dropped) */
  onProgress?: (progress: TransferProgress) => void;
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

export interface FailedRemotePack {
  packKey: string;
  /** why (the first failure seen in that pack) */
  reason: string;
  /** chunks to drop whose copy in this pack failed: kept locally */
  chunks: number;
  /** their ids */
  ids: Buffer[];
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
  /** candidates kept because the remote index does not list them (never pushed there) */
  notOnRemote: number;
  verify: PruneVerify;
  /** whether the remote copies were checked (false for a dry run: the plan is what would be checked) */
  verified: boolean;
  /** what verification reads (or would read): bytes of ranged reads and requests (ranged GETs, or HEADs with 'size') */
  verifyBytes: number;
  verifyRequests: number;
  /** remote packs whose candidates all verified */
  verifiedRemotePacks: number;
  /** remote packs that failed, with how many candidates each kept local */
  failedRemotePacks: FailedRemotePack[];
  /** storage requests made */
  requests: number;
}

interface Candidate {
  id: Buffer;
  pack: number;
  bytes: number;
  remote: RemoteChunkLocation;
}

/** One ranged read of verification: candidates adjacent in one remote pack. */
interface VerifyRange {
  packId: string;
  start: number;
  /** inclusive */
  end: number;
  chunks: Candidate[];
}

export async function planPrune(store: ChunkStore, storage: ObjectStorage, opts: PrunePlanOptions): Promise<PrunePlan> {
  const now = opts.now ?? Date.now();
  const verify: PruneVerify = opts.verify ?? 'bytes';
  store.commit();
  ensureUsageTable(store.db);
  const session = openSession(storage, store, opts.remoteName, opts);
  // packs the listing shows gone or changed: which chunks they held (to report those kept)
  const lostReasons = new Map<string, string>();
  const lostChunks = new Map<string, string>(); // chunk id (latin1) -> pack id
  await syncSession(session, (packId, reason) => {
    lostReasons.set(packId, reason);
    const ids = session.index.packChunkIds(packId);
    for (const id of ids) lostChunks.set(id.toString('latin1'), packId);
    session.index.forgetChunks(packId, ids); // remembered as damaged: reported again until repaired
  });
  const { index } = session;

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
  const failures = new Map<string, FailedRemotePack>();
  const fail = (key: string, reason: string, id: Buffer): void => {
    let f = failures.get(key);
    if (!f) failures.set(key, (f = { packKey: key, reason, chunks: 0, ids: [] }));
    f.chunks++;
    f.ids.push(id);
  };
  let notOnRemote = 0;
  for (const r of rows) {
    const old = r.lastUsed < cutoff;
    if (!old && remaining <= cap) break; // ordered by last use: nothing later qualifies
    if (keep.has(r.id.toString('latin1'))) continue;
    const remote = index.lookup(r.id);
    if (!remote) {
      const lost = lostChunks.get(r.id.toString('latin1'));
      const damaged = lost ? undefined : index.damagedPack(r.id);
      if (lost) fail(packKey(lost), lostReasons.get(lost)!, r.id);
      else if (damaged) fail(packKey(damaged), 'read back damaged earlier (no good copy uploaded since)', r.id);
      else notOnRemote++;
      continue;
    }
    const bytes = ENTRY_HEAD_SIZE + r.storedLength;
    candidates.push({ id: r.id, pack: r.pack, bytes, remote });
    remaining -= bytes;
  }

  // the verification: per remote pack, its candidates in pack order, adjacent ones in one read
  const byRemotePack = new Map<string, Candidate[]>();
  for (const c of candidates) {
    let list = byRemotePack.get(c.remote.packId);
    if (!list) byRemotePack.set(c.remote.packId, (list = []));
    list.push(c);
  }
  const ranges: VerifyRange[] = [];
  let verifyBytes = 0;
  if (verify === 'bytes') {
    for (const [packId, list] of byRemotePack) {
      const entries = list.map((c) => ({ offset: c.remote.offset, storedLength: c.remote.storedLength, c })).sort((a, b) => a.offset - b.offset);
      for (const run of coalesce(entries, opts.maxRangeBytes ?? DEFAULT_MAX_RANGE_BYTES, 0)) {
        const start = run[0]!.offset - ENTRY_HEAD_SIZE;
        const last = run[run.length - 1]!;
        const end = last.offset + last.storedLength - 1;
        ranges.push({ packId, start, end, chunks: run.map((e) => e.c) });
        verifyBytes += end - start + 1;
      }
    }
  }
  const verifyRequests = verify === 'bytes' ? ranges.length : byRemotePack.size;

  const good = new Set<Candidate>();
  if (opts.dryRun) for (const c of candidates) good.add(c);
  else if (verify === 'bytes') {
    const results = await Promise.allSettled(ranges.map((r) => readBack(session, r)));
    const failed = results.find((s) => s.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason; // nothing dropped
    for (let i = 0; i < ranges.length; i++) {
      const r = ranges[i]!;
      const outcome = (results[i] as PromiseFulfilledResult<ReadBack>).value;
      for (const c of outcome.good) good.add(c);
      for (const b of outcome.bad) fail(packKey(r.packId), b.reason, b.c.id);
      if (outcome.bad.length) index.forgetChunks(r.packId, outcome.bad.map((b) => b.c.id));
    }
  } else {
    await runLimited([...byRemotePack], opts.concurrency ?? 8, async ([packId, list]) => {
      const head = await session.storage.head(packKey(packId));
      const expected = list[0]!.remote.packSize;
      const reason = !head ? 'is missing on the remote' : head.size !== expected ? `has ${head.size} bytes on the remote, its index says ${expected}` : null;
      for (const c of list) {
        if (reason) fail(packKey(packId), reason, c.id);
        else good.add(c);
      }
    });
  }

  const byLocalPack = new Map<number, PrunePackPlan>();
  let chunks = 0;
  let freedBytes = 0;
  const badPacks = new Set([...failures.keys()]);
  for (const c of candidates) {
    if (!good.has(c)) continue;
    let p = byLocalPack.get(c.pack);
    if (!p) byLocalPack.set(c.pack, (p = { pack: c.pack, drop: [], keep: 0, freedBytes: 0 }));
    p.drop.push(c.id);
    p.freedBytes += c.bytes;
    chunks++;
    freedBytes += c.bytes;
  }
  const chunkBytes = freedBytes;
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
    verify,
    verified: !opts.dryRun,
    verifyBytes,
    verifyRequests,
    verifiedRemotePacks: [...byRemotePack.keys()].filter((id) => !badPacks.has(packKey(id))).length,
    failedRemotePacks: [...failures.values()],
    requests: session.storage.requests,
  };
}

interface ReadBack {
  good: Candidate[];
  bad: { c: Candidate; reason: string }[];
}

/**
 * Reads one verification range and checks each chunk in it. A range with a bad chunk is read
 * once more (the queue's rule for a failed `verify`: a flaky network is not a damaged remote);
 * what the last attempt found is the outcome. Errors other than a missing pack or a range past
 * its end are thrown (prune then drops nothing).
 */
async function readBack(session: ReturnType<typeof openSession>, r: VerifyRange): Promise<ReadBack> {
  let last: ReadBack | undefined;
  try {
    return await session.queue.download<ReadBack>({
      key: packKey(r.packId),
      range: { start: r.start, end: r.end },
      size: r.end - r.start + 1,
      consume: async (body) => (last = await checkRange(body, r)),
      verify: (outcome) => {
        if (outcome.bad.length) throw new Error(`chunk ${outcome.bad[0]!.c.id.toString('hex')} ${outcome.bad[0]!.reason}`);
      },
    });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (err instanceof TransferError && code === 'transfer-verify-failed' && last) return last;
    if (code === 'storage-bad-range') return { good: [], bad: r.chunks.map((c) => ({ c, reason: 'lies past the end of the pack (the pack is shorter than its index)' })) };
    if (code === 'storage-not-found') return { good: [], bad: r.chunks.map((c) => ({ c, reason: 'is missing on the remote' })) };
    throw err;
  }
}

async function checkRange(body: Readable, r: VerifyRange): Promise<ReadBack> {
  const cursor = new StreamCursor(body);
  const out: ReadBack = { good: [], bad: [] };
  const expected = Buffer.allocUnsafe(ENTRY_HEAD_SIZE);
  try {
    for (let i = 0; i < r.chunks.length; i++) {
      const c = r.chunks[i]!;
      const loc = c.remote;
      await cursor.skip(loc.offset - ENTRY_HEAD_SIZE - r.start - cursor.position);
      // cursor reads are views valid until the next read: compare the head before reading on
      const head = await cursor.read(ENTRY_HEAD_SIZE);
      encodeEntryHead({ idRaw: c.id, codec: loc.codec, rawLength: loc.rawLength, storedLength: loc.storedLength }, expected, 0);
      const headOk = head.equals(expected);
      const data = head.length === ENTRY_HEAD_SIZE ? await cursor.read(loc.storedLength) : Buffer.alloc(0);
      if (data.length < loc.storedLength) {
        for (const rest of r.chunks.slice(i)) out.bad.push({ c: rest, reason: 'is cut short (the pack ends early)' });
        break;
      }
      if (!headOk) {
        out.bad.push({ c, reason: 'has an entry head that does not match the pack index' });
        continue;
      }
      const bad = await checkStoredChunk(c.id, loc.codec, loc.rawLength, data);
      if (bad) out.bad.push({ c, reason: bad });
      else out.good.push(c);
    }
  } finally {
    await cursor.close();
    body.destroy();
  }
  return out;
}

export interface PruneResult {
  chunks: number;
  packsRewritten: number;
  /** bytes of local pack files before minus after */
  freedBytes: number;
}

/**
 * Drops the planned chunks: each affected local pack is rewritten without them. Run it right
 * after planPrune (the plan's remote verification is what makes dropping safe); a dry-run
 * plan is refused.
 */
export function applyPrune(store: ChunkStore, plan: PrunePlan): PruneResult {
  if (!plan.verified) throw new Error('applyPrune: the plan was not verified (a dry run); run planPrune without dryRun');
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
    }).immediate();
    chunks += r.dropped;
    packsRewritten++;
  }
  return { chunks, packsRewritten, freedBytes: before - store.stats().packBytes };
}
