/**
 * Fetching content from a remote into the local store:
 *
 * - fetchManifests: manifests by id from v1/objects/, each verified (BLAKE3 of the bytes is
 *   the id) before it is stored. The lazy mode needs manifests without content.
 * - fetchContent: manifests, then every chunk of them not in the local store.
 * - ensureLocal: the same for any mix of manifest ids and chunk ids; the checkout path and
 *   lazy reads call it before materializing, so content pruned from the local store (prune.ts)
 *   comes back transparently.
 *
 * Chunks are fetched with ranged GETs of remote packs: the wanted chunks of a pack, in pack
 * order, are coalesced into ranges (gaps up to `maxGapBytes` read through, at most
 * `maxRangeBytes` a range), each range one item of the TransferQueue. A range's stream is
 * parsed as it arrives: each entry's head must match the index, each chunk is decoded and
 * verified against its id, then stored (putStoredChunk) and committed once the range is
 * done. Memory: one chunk at a time per range in flight.
 *
 * A chunk that does not verify (twice: the queue downloads a failing range once more) fails
 * with RemotePackCorruptError (code `remote-pack-corrupt`) naming the pack key and chunk;
 * everything that did verify, in that range and in all others, is kept.
 *
 * Frozen packs (an archive storage class without a finished restore: the storage throws
 * FrozenObjectError at once, never after a timeout) do not stop the fetch: their chunks are
 * fetched from another copy where the remote has one, everything else is fetched as usual,
 * and the packs still needed are listed in `result.frozen` (with `allowFrozen`; else a
 * FrozenContentError after the rest was fetched). Nothing of a frozen chunk is ever stored.
 *
 * Reads are reported to `access` (tier/access-records.ts): each pack read and each manifest
 * read, or whose content was fetched. The sink returns at once; nothing here waits on it.
 */
import { DitsUserError } from '../../errors.js';
import { hashHex } from '../../hashing/blake3.js';
import { Manifest } from '../../manifest/manifest.js';
import type { ChunkStore } from '../../store/chunk-store.js';
import { CODEC_NONE, ENTRY_HEAD_SIZE, encodeEntryHead } from '../../store/pack-format.js';
import { decompress } from '../../store/compression.js';
import type { ObjectStorage } from '../../transfer/object-storage.js';
import type { RemoteChunkLocation } from '../../store/remote-index.js';
import { TransferError, type TransferProgress, type TransferQueueOptions } from '../../transfer/transfer-queue.js';
import { isFrozenError } from '../../tier/tier-storage.js';
import { checkStoredChunk } from './chunk-verify.js';
import { manifestKey, packKey } from './layout.js';
import { openSession, syncSession, type ContentSession } from './sync-remote-index.js';
import { StreamCursor } from './stream-cursor.js';

/**
 * Largest ranged GET by default: a whole remote pack. Fewer, larger requests fetched a
 * gigabyte from s3rver in 3.8-4.2 s against 4.7-5.1 s with 16 MiB ranges (8 at a time).
 */
export const DEFAULT_MAX_RANGE_BYTES = 64 * 1024 * 1024;
/** Smallest range the default sizing goes down to (see rangeSizeFor). */
const MIN_AUTO_RANGE_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_GAP_BYTES = 256 * 1024;
/** Chunks planned at once (about 1 GiB of 64 KiB chunks: bounds the plan's memory). */
const BATCH_CHUNKS = 16384;

export interface FetchContentOptions {
  remoteName: string;
  /** requests in flight at once (default 8) */
  concurrency?: number;
  onProgress?: (progress: TransferProgress) => void;
  /** largest ranged GET (default: the wanted bytes over the concurrency, between 4 and 64 MiB) */
  maxRangeBytes?: number;
  /** unwanted bytes between two wanted chunks read through rather than split (default 256 KiB) */
  maxGapBytes?: number;
  /**
   * When to list the remote's packs first: 'auto' (default) only if some wanted chunk is not
   * in the cached remote index; 'always'; 'never' (trust the cache).
   */
  sync?: 'auto' | 'always' | 'never';
  /**
   * Plan only: missing manifests are still fetched (small, and needed to know the chunks),
   * chunks are not; `chunks`, `bytes` and `estimatedRequests` say what a real run would move.
   */
  dryRun?: boolean;
  queueOptions?: TransferQueueOptions;
  /**
   * Called with each chunk fetched, once verified, in plain form (a view valid only during
   * the call): lets a checkout write files as the content arrives (store/assemble.ts).
   */
  chunkSink?: (idRaw: Buffer, plain: Buffer) => Promise<void> | null | void;
  /**
   * With `chunkSink`: whether a chunk the sink took must also be stored locally (default:
   * yes). A chunk not stored is recorded as held by this remote (ChunkStore.markRemoteHeld):
   * it was just downloaded from there and verified.
   */
  storeChunk?: (idRaw: Buffer) => boolean;
  /** Chunks the caller already obtained elsewhere (not fetched, counted as local). */
  have?: (idRaw: Buffer) => boolean;
  /** Where reads of the remote are recorded (packs and file versions); never waited on. */
  access?: AccessSinkLike;
  /**
   * true: chunks only in frozen packs are listed in `result.frozen` and the fetch succeeds
   * with everything else; false (default): FrozenContentError once everything else is fetched.
   */
  allowFrozen?: boolean;
}

/** tier/access-records.ts AccessSink: returns at once, never throws. */
export interface AccessSinkLike {
  record(kind: 'pack' | 'file', id: string): void;
}

/** A remote pack that is frozen (archive class, no finished restore) and holds wanted chunks found nowhere else. */
export interface FrozenPack {
  packId: string;
  key: string;
  /** the class the storage reported, when it did */
  storageClass: string | undefined;
  /** the .pack's size (what a restore retrieves) */
  bytes: number;
  /** the wanted chunks (hex) that only this pack (or other frozen ones) holds */
  chunks: string[];
}

export interface FetchContentResult {
  manifests: number;
  chunks: number;
  /** chunks wanted that were already local */
  chunksLocal: number;
  /** bytes downloaded (manifests and pack ranges); for a dry run, including the ranges it would read */
  bytes: number;
  /** storage requests made; for a dry run, those made plus the ranged GETs a real run would make */
  requests: number;
  /** ranged GETs of chunks made (or, for a dry run, to make) */
  rangeRequests: number;
  dryRun: boolean;
  /** frozen packs holding wanted chunks that no readable copy has (allowFrozen; else empty) */
  frozen: FrozenPack[];
}

export interface CorruptChunk {
  packKey: string;
  chunkId: string;
  reason: string;
}

export class RemotePackCorruptError extends DitsUserError {
  constructor(
    readonly location: string,
    readonly corrupt: CorruptChunk[],
  ) {
    const first = corrupt[0]!;
    const more = corrupt.length > 1 ? ` (and ${corrupt.length - 1} more chunk${corrupt.length > 2 ? 's' : ''})` : '';
    super('remote-pack-corrupt', `remote pack ${first.packKey} on ${location} is corrupt: chunk ${first.chunkId} ${first.reason}${more}`, {
      hint: 'the rest of the content was fetched; push the affected files again from a machine that still has them (the next push re-uploads missing or damaged chunks), or restore the pack from a backup',
    });
    this.name = 'RemotePackCorruptError';
  }
}

export class RemoteContentMissingError extends DitsUserError {
  constructor(
    readonly location: string,
    readonly missing: { kind: 'manifest' | 'chunk'; id: string }[],
  ) {
    const first = missing[0]!;
    const more = missing.length > 1 ? ` (and ${missing.length - 1} more)` : '';
    super('remote-content-missing', `${first.kind} ${first.id} is not on ${location}${more}`, {
      hint: 'push it from a machine that has it (`git push` uploads content first), or check that this is the right remote',
    });
    this.name = 'RemoteContentMissingError';
  }
}

/** Content that is only in frozen packs: everything else was fetched. */
export class FrozenContentError extends DitsUserError {
  constructor(
    readonly location: string,
    readonly frozen: FrozenPack[],
  ) {
    const chunks = frozen.reduce((n, f) => n + f.chunks.length, 0);
    super('storage-frozen', `${chunks} chunk(s) are only in ${frozen.length} frozen pack(s) on ${location} (${frozen[0]!.key}${frozen[0]!.storageClass ? `, ${frozen[0]!.storageClass}` : ''}${frozen.length > 1 ? ', ...' : ''}): they must be restored before they can be read`, {
      hint: 'everything else was fetched; see what a restore costs and start it with `git dits thaw <path>`',
    });
    this.name = 'FrozenContentError';
  }
}

function normalizeIds(ids: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const id of ids) out.add(id.toLowerCase());
  return [...out];
}

export interface FetchManifestsOptions {
  concurrency?: number;
  onProgress?: (progress: TransferProgress) => void;
  /** records the manifests as present on this remote in the local cache */
  remoteName?: string;
  queueOptions?: TransferQueueOptions;
  /** where manifest reads are recorded (tier/access-records.ts) */
  access?: AccessSinkLike;
}

/** Downloads the manifests not in the local store; each verified before it is stored. */
export async function fetchManifests(storage: ObjectStorage, store: ChunkStore, ids: Iterable<string>, opts: FetchManifestsOptions = {}): Promise<FetchContentResult> {
  const session = openSession(storage, store, opts.remoteName ?? '', opts);
  const r = await fetchManifestsIn(session, normalizeIds(ids), !!opts.remoteName, opts.access);
  return { manifests: r.fetched, chunks: 0, chunksLocal: 0, bytes: r.bytes, requests: session.storage.requests, rangeRequests: 0, dryRun: false, frozen: [] };
}

async function fetchManifestsIn(session: ContentSession, ids: string[], remember: boolean, access?: AccessSinkLike): Promise<{ fetched: number; bytes: number }> {
  const { store, queue } = session;
  const missing: { kind: 'manifest'; id: string }[] = [];
  const errors: unknown[] = [];
  let fetched = 0;
  let bytes = 0;
  const want = ids.filter((id) => !store.hasManifest(id));
  await Promise.all(
    want.map((id) =>
      queue
        .downloadBuffer({
          key: manifestKey(id),
          verify: (data) => {
            if (hashHex(data) !== id) throw new Error(`manifest ${id} does not hash to its id`);
          },
        })
        .then((data) => {
          store.putManifest(id, data);
          access?.record('file', id);
          fetched++;
          bytes += data.length;
        })
        .catch((err: unknown) => {
          if ((err as { code?: string }).code === 'storage-not-found') missing.push({ kind: 'manifest', id });
          else if (err instanceof TransferError && err.code === 'transfer-verify-failed') {
            errors.push(new DitsUserError('remote-manifest-corrupt', `manifest ${manifestKey(id)} on ${session.storage.location} is corrupt (its bytes do not match its id)`, {
              hint: 'push it again from a machine that has it',
              cause: err,
            }));
          } else errors.push(err);
        }),
    ),
  );
  if (remember) session.index.addManifests(ids.filter((id) => store.hasManifest(id) && !missing.some((m) => m.id === id)));
  if (errors.length) throw errors[0];
  if (missing.length) throw new RemoteContentMissingError(session.storage.location, missing);
  return { fetched, bytes };
}

/** Manifests (if missing), then every chunk of them not in the local store. */
export async function fetchContent(storage: ObjectStorage, store: ChunkStore, manifestIds: Iterable<string>, opts: FetchContentOptions): Promise<FetchContentResult> {
  return ensureLocal(storage, store, { manifestIds }, opts);
}

/**
 * Makes the given content local: manifests by id (with all their chunks) and single chunks
 * by id (hex or 32 raw bytes). Fetches only what is missing; cheap when all is local (no
 * request at all).
 */
export async function ensureLocal(
  storage: ObjectStorage,
  store: ChunkStore,
  what: { manifestIds?: Iterable<string>; chunkIds?: Iterable<string | Buffer> },
  opts: FetchContentOptions,
): Promise<FetchContentResult> {
  const session = openSession(storage, store, opts.remoteName, opts);
  const manifestIds = normalizeIds(what.manifestIds ?? []);
  const access = opts.dryRun ? undefined : opts.access;
  const m = await fetchManifestsIn(session, manifestIds, true, access);
  const result: FetchContentResult = { manifests: m.fetched, chunks: 0, chunksLocal: 0, bytes: m.bytes, requests: 0, rangeRequests: 0, dryRun: !!opts.dryRun, frozen: [] };
  const state: FetchState = { synced: opts.sync === 'never', corrupt: [], missing: [], frozen: new Map() };
  let wanted = 0;

  const seen = new Set<string>();
  let batch: Buffer[] = [];
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const r = await fetchChunksIn(session, batch, opts, state);
    result.chunks += r.chunks;
    result.bytes += r.bytes;
    result.rangeRequests += r.ranges;
    batch = [];
  };
  const want = async (idRaw: Buffer): Promise<void> => {
    const key = idRaw.toString('base64');
    if (seen.has(key)) return;
    seen.add(key);
    if (store.hasChunk(idRaw) || opts.have?.(idRaw)) {
      result.chunksLocal++;
      return;
    }
    batch.push(Buffer.from(idRaw));
    wanted++;
    if (batch.length >= BATCH_CHUNKS) await flush();
  };
  if (opts.sync === 'always') await syncOnce(session, state);
  for (const id of what.chunkIds ?? []) {
    const idRaw = typeof id === 'string' ? Buffer.from(id, 'hex') : id;
    if (idRaw.length !== 32) throw new DitsUserError('bad-chunk-id', `not a chunk id: ${typeof id === 'string' ? id : id.toString('hex')}`);
    await want(idRaw);
  }
  for (const id of manifestIds) {
    const manifest = Manifest.parse(store.getManifestBytes(id));
    const before = wanted;
    for (let i = 0; i < manifest.chunkCount; i++) await want(manifest.idRawAt(i));
    if (wanted > before) access?.record('file', id); // its content is read from the remote
  }
  await flush();
  // a dry run: the requests made to plan plus the ranged reads a real run would add
  result.requests = session.storage.requests + (opts.dryRun ? result.rangeRequests : 0);
  if (state.corrupt.length) throw new RemotePackCorruptError(storage.location, state.corrupt);
  if (state.missing.length) throw new RemoteContentMissingError(storage.location, state.missing.map((id) => ({ kind: 'chunk' as const, id })));
  result.frozen = [...state.frozen.values()].filter((f) => f.chunks.length > 0);
  if (result.frozen.length && !opts.allowFrozen) throw new FrozenContentError(storage.location, result.frozen);
  return result;
}

interface FetchState {
  synced: boolean;
  corrupt: CorruptChunk[];
  missing: string[];
  /** packs found frozen in this fetch (never asked again), with the chunks nothing else holds */
  frozen: Map<string, FrozenPack>;
}

async function syncOnce(session: ContentSession, state: FetchState): Promise<void> {
  if (state.synced) return;
  state.synced = true;
  await syncSession(session);
}

interface RangeEntry {
  idRaw: Buffer;
  offset: number;
  storedLength: number;
  rawLength: number;
  codec: number;
}

interface RangeOutcome {
  stored: number;
  /** chunks verified and handed to the sink only (not stored locally) */
  held: number;
  bytes: number;
  corrupt: CorruptChunk[];
}

/** Fetches chunks known to be absent locally. */
async function fetchChunksIn(session: ContentSession, ids: Buffer[], opts: FetchContentOptions, state: FetchState): Promise<{ chunks: number; bytes: number; ranges: number }> {
  const { index, store, queue } = session;
  const maxGap = opts.maxGapBytes ?? DEFAULT_MAX_GAP_BYTES;
  // a copy in a pack not found frozen in this fetch (the first copy when none is known frozen)
  const locate = (idRaw: Buffer): RemoteChunkLocation | undefined => {
    const loc = index.lookup(idRaw);
    if (!loc || state.frozen.size === 0 || !state.frozen.has(loc.packId)) return loc;
    return index.locations(idRaw).find((l) => !state.frozen.has(l.packId)) ?? loc;
  };
  let located = ids.map((idRaw) => ({ idRaw, loc: locate(idRaw) }));
  if (located.some((l) => !l.loc) && !state.synced) {
    await syncOnce(session, state);
    located = located.map((l) => (l.loc ? l : { idRaw: l.idRaw, loc: locate(l.idRaw) }));
  }
  let wantedBytes = 0;
  for (const l of located) if (l.loc) wantedBytes += l.loc.storedLength;
  const maxRange = opts.maxRangeBytes ?? rangeSizeFor(wantedBytes, opts.concurrency ?? 8);
  const byPack = new Map<string, RangeEntry[]>();
  const packSizes = new Map<string, number>();
  for (const { idRaw, loc } of located) {
    if (!loc) {
      state.missing.push(idRaw.toString('hex'));
      continue;
    }
    const frozen = state.frozen.get(loc.packId);
    if (frozen) {
      frozen.chunks.push(idRaw.toString('hex')); // every copy is in a frozen pack
      continue;
    }
    packSizes.set(loc.packId, loc.packSize);
    let list = byPack.get(loc.packId);
    if (!list) byPack.set(loc.packId, (list = []));
    list.push({ idRaw, offset: loc.offset, storedLength: loc.storedLength, rawLength: loc.rawLength, codec: loc.codec });
  }
  located = [];

  let chunks = 0;
  let bytes = 0;
  let ranges = 0;
  // chunks verified and handed to the sink without a local copy (hex -> id), also those of a
  // range that failed later on: they are on the remote, verified
  const held = new Map<string, { idRaw: Buffer; rawLength: number }>();
  const absent = (idRaw: Buffer): boolean => !store.hasChunk(idRaw) && !held.has(idRaw.toString('hex'));
  const jobs: Promise<void>[] = [];
  // chunks of ranges whose pack answered "frozen": asked again from another copy, if any
  const again: Buffer[] = [];
  for (const [packId, entries] of byPack) {
    entries.sort((a, b) => a.offset - b.offset);
    const key = packKey(packId);
    for (const range of coalesce(entries, maxRange, maxGap)) {
      const start = range[0]!.offset - ENTRY_HEAD_SIZE;
      const last = range[range.length - 1]!;
      const end = last.offset + last.storedLength - 1;
      ranges++;
      if (opts.dryRun) {
        chunks += range.length;
        bytes += end - start + 1;
        continue;
      }
      jobs.push(
        queue
          .download<RangeOutcome>({
            key,
            range: { start, end },
            consume: (body) => consumeRange(store, key, body, start, range, opts.chunkSink, opts.storeChunk, held),
            verify: (r) => {
              if (r.corrupt.length) throw new Error(`chunk ${r.corrupt[0]!.chunkId} ${r.corrupt[0]!.reason}`);
            },
          })
          .then(
            (r) => {
              chunks += r.stored + r.held;
              bytes += end - start + 1;
              opts.access?.record('pack', packId);
            },
            (err: unknown) => {
              const code = (err as { code?: string }).code;
              if (isFrozenError(err)) {
                if (!state.frozen.has(packId)) {
                  const storageClass = (err as { storageClass?: string }).storageClass;
                  state.frozen.set(packId, { packId, key, storageClass, bytes: packSizes.get(packId) ?? 0, chunks: [] });
                }
                for (const e of range) if (absent(e.idRaw)) again.push(e.idRaw);
                return;
              }
              if (err instanceof TransferError && err.code === 'transfer-verify-failed') {
                for (const e of range) if (absent(e.idRaw)) state.corrupt.push({ packKey: key, chunkId: e.idRaw.toString('hex'), reason: describeCause(err) });
                return;
              }
              if (code === 'storage-bad-range') {
                for (const e of range) if (absent(e.idRaw)) state.corrupt.push({ packKey: key, chunkId: e.idRaw.toString('hex'), reason: 'lies past the end of the pack (the pack is shorter than its index)' });
                return;
              }
              if (code === 'storage-not-found') {
                index.removePack(packId); // gone from the remote: the cache was stale
                for (const e of range) state.missing.push(e.idRaw.toString('hex'));
                return;
              }
              throw err;
            },
          )
          .finally(() => store.commitAsync()),
      );
    }
  }
  const settled = await Promise.allSettled(jobs);
  await store.commitAsync();
  store.markRemoteHeld([...held.values()], opts.remoteName);
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  if (again.length) {
    // each round adds at least one pack to state.frozen, which is never asked again: this ends
    const r = await fetchChunksIn(session, again, opts, state);
    chunks += r.chunks;
    bytes += r.bytes;
    ranges += r.ranges;
  }
  return { chunks, bytes, ranges };
}

function describeCause(err: TransferError): string {
  const cause = (err as { cause?: unknown }).cause;
  const msg = cause instanceof Error ? cause.message : String(cause ?? err.message);
  // the verify message starts with "chunk <id> "; the reason follows
  return msg.replace(/^chunk [0-9a-f]{64} /, '');
}

/** Ranges big enough for few requests, small enough that every request slot has work. */
export function rangeSizeFor(wantedBytes: number, concurrency: number): number {
  const even = Math.ceil(wantedBytes / Math.max(1, concurrency));
  return Math.min(DEFAULT_MAX_RANGE_BYTES, Math.max(MIN_AUTO_RANGE_BYTES, even));
}

/** Splits pack-ordered entries into ranges of at most maxRange bytes with gaps up to maxGap. */
export function coalesce<T extends { offset: number; storedLength: number }>(entries: readonly T[], maxRange: number, maxGap: number): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let curStart = 0;
  let curEnd = 0; // exclusive
  for (const e of entries) {
    const s = e.offset - ENTRY_HEAD_SIZE;
    const t = e.offset + e.storedLength;
    if (cur.length && s - curEnd <= maxGap && t - curStart <= maxRange && s >= curEnd) {
      cur.push(e);
      curEnd = t;
      continue;
    }
    if (cur.length) out.push(cur);
    cur = [e];
    curStart = s;
    curEnd = t;
  }
  if (cur.length) out.push(cur);
  return out;
}

/** Parses one range's stream; stores each chunk that verifies. Safe to run again. */
async function consumeRange(
  store: ChunkStore,
  key: string,
  body: import('node:stream').Readable,
  start: number,
  entries: RangeEntry[],
  sink?: (idRaw: Buffer, plain: Buffer) => Promise<void> | null | void,
  storeChunk?: (idRaw: Buffer) => boolean,
  held?: Map<string, { idRaw: Buffer; rawLength: number }>,
): Promise<RangeOutcome> {
  const cursor = new StreamCursor(body);
  const outcome: RangeOutcome = { stored: 0, held: 0, bytes: 0, corrupt: [] };
  const expected = Buffer.allocUnsafe(ENTRY_HEAD_SIZE);
  try {
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      const headAt = e.offset - ENTRY_HEAD_SIZE - start;
      await cursor.skip(headAt - cursor.position);
      // cursor reads are views valid until the next read: compare the head before reading on
      const head = await cursor.read(ENTRY_HEAD_SIZE);
      encodeEntryHead({ idRaw: e.idRaw, codec: e.codec, rawLength: e.rawLength, storedLength: e.storedLength }, expected, 0);
      const headOk = head.equals(expected);
      const data = head.length === ENTRY_HEAD_SIZE ? await cursor.read(e.storedLength) : Buffer.alloc(0);
      const idHex = e.idRaw.toString('hex');
      if (data.length < e.storedLength) {
        for (const rest of entries.slice(i)) outcome.corrupt.push({ packKey: key, chunkId: rest.idRaw.toString('hex'), reason: 'is cut short (the pack ends early)' });
        break;
      }
      if (!headOk) {
        outcome.corrupt.push({ packKey: key, chunkId: idHex, reason: 'has an entry head that does not match the pack index' });
        continue;
      }
      const bad = await checkStoredChunk(e.idRaw, e.codec, e.rawLength, data);
      if (bad) {
        outcome.corrupt.push({ packKey: key, chunkId: idHex, reason: bad });
        continue;
      }
      if (sink && held && storeChunk && !storeChunk(e.idRaw)) {
        if (!held.has(idHex)) {
          held.set(idHex, { idRaw: e.idRaw, rawLength: e.rawLength });
          outcome.held++;
        }
      } else if (store.putStoredChunk(e.idRaw, e.codec, e.rawLength, data, true)) outcome.stored++;
      outcome.bytes += data.length;
      if (sink) {
        const sinkWait = sink(e.idRaw, e.codec === CODEC_NONE ? data : await decompress(data));
        if (sinkWait) await sinkWait;
      }
      const wait = store.backpressure();
      if (wait) await wait;
    }
  } finally {
    await cursor.close();
    body.destroy();
  }
  return outcome;
}
