/**
 * Mirror sync: makes a second Dits remote (the mirror) hold everything the primary holds,
 * copying only what the mirror lacks, streamed and verified, in an order that keeps the
 * mirror a consistent remote at every instant (DESIGN invariant 4):
 *
 *   1. read the primary's refs (before its listing, so the listing holds all they need)
 *   2. one listing of `v1/` per side; the plan is the difference (dry run stops here)
 *   3. v1/format.json, then packs: each `.pack` streamed through a PackVerifier against its
 *      `.idx` (the index checked by its name first), then the `.idx` (an .idx names a
 *      complete pack); a `.pack` already there at the right size only gets its `.idx`
 *   4. manifests (checked by id), after every pack; git bundles (checked by their sha256
 *      name); variant records, location tables (not one that names a pack not copied),
 *      tier and access records
 *   5. the refs object last, by compare-and-swap (putIf against the mirror's etag), only if
 *      nothing its content may need was left out, and never over a mirror that is ahead
 *   6. with `delete`: what the mirror holds and the primary does not, only where provably
 *      unneeded (see planDeletes)
 *
 * A sync killed anywhere leaves the mirror an older consistent remote; the next one copies
 * the rest (every put is atomic and content-addressed keys are immutable, so nothing is
 * copied twice or half). Frozen packs (archived on the primary) and corrupt ones are listed,
 * not copied, and the rest goes on; the refs then stay where they were.
 *
 * Memory: the two listings, plus per pack in flight one entry of its stream and its index.
 */
import { createHash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { DitsUserError } from '../errors.js';
import { hashHex } from '../hashing/blake3.js';
import { Manifest } from '../manifest/manifest.js';
import { parseVariantRecord } from '../manifest/variant-record.js';
import { decodePackIndex, type PackIndexEntry } from '../remote/content/pack-index.js';
import { indexKey, OBJECTS_PREFIX, packKey, parsePackKey } from '../remote/content/layout.js';
import { LOCATIONS_PREFIX, locationTablePackIds } from '../remote/content/location-table.js';
import { runLimited } from '../remote/content/push-content.js';
import { checkFormat, FORMAT_KEY, parseRefState, REFS_KEY, type RefState } from '../remote/remote-state.js';
import { isFrozenError } from '../tier/tier-storage.js';
import type { ObjectStorage } from '../transfer/object-storage.js';
import { DEFAULT_RETRY_POLICY, realRetryDeps, withRetry, type RetryDeps, type RetryPolicy } from '../transfer/retry.js';
import { isRetryable } from '../transfer/storage-error.js';
import type { TransferProgress } from '../transfer/transfer-queue.js';
import { PackCorruptError, PackVerifier, packSizeOf } from './pack-verifier.js';

/**
 * Objects only ever read and written by compare-and-swap (putIf / getVersioned): never
 * copied from a listing. The refs are copied last, by CAS; the access summary is a fold of
 * access records the primary recomputes, so it is not mirrored.
 */
export const VERSIONED_KEYS: ReadonlySet<string> = new Set([REFS_KEY, 'v1/access/summary.json']);

const GIT_PREFIX = 'v1/git/';
const VARIANTS_PREFIX = 'v1/variants/';

export interface MirrorSyncOptions {
  dryRun?: boolean;
  /** Delete what the mirror holds and the primary does not (only what is provably unneeded). */
  delete?: boolean;
  /** Objects copied at once (default 8, as dits.concurrency). Packs past `largePackBytes` go one at a time. */
  concurrency?: number;
  /** Packs at least this big are copied one at a time (S3 buffers multipart parts: default 64 MiB). */
  largePackBytes?: number;
  onProgress?: (p: TransferProgress) => void;
  retry?: RetryPolicy;
  retryDeps?: RetryDeps;
  now?: () => number;
}

export type NotCopiedReason = 'frozen' | 'corrupt' | 'missing' | 'failed';

export interface NotCopied {
  key: string;
  reason: NotCopiedReason;
  message: string;
}

export type RefsOutcome =
  /** the mirror's refs now equal the primary's */
  | 'updated'
  | 'unchanged'
  /** something the refs may need was not copied: the mirror keeps its older refs */
  | 'held-back'
  /** the mirror's refs name git data the primary's do not (pushed to directly, or a newer sync won): left alone */
  | 'mirror-ahead'
  | 'would-update'
  /** the primary has no refs (an empty remote) */
  | 'none';

export interface MirrorPlanCounts {
  packs: number;
  indexes: number;
  manifests: number;
  bundles: number;
  other: number;
  bytes: number;
}

export interface MirrorSyncResult {
  from: string;
  to: string;
  dryRun: boolean;
  /** what was copied (dry run: what would be) */
  copied: MirrorPlanCounts;
  notCopied: NotCopied[];
  /** manifests and variant records not copied because content they name was not copied */
  heldBack: string[];
  refs: RefsOutcome;
  deleted: string[];
  /** mirror-only objects kept under --delete because nothing proves them unneeded */
  keptOnMirror: number;
  seconds: number;
}

export class MirrorUnreachableError extends DitsUserError {
  constructor(location: string, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super('mirror-unreachable', `the mirror at ${location} cannot be reached: ${why}`, {
      hint: 'check the mirror URL (`git dits mirror ls`), the network and the credentials; nothing was changed on the primary, run the sync again when the mirror is back',
      cause,
    });
  }
}

interface Plan {
  format: boolean;
  /** packs to copy (with their .idx), or only the .idx when the .pack is there already */
  packs: { packId: string; size: number; idxSize: number; indexOnly: boolean }[];
  manifests: { key: string; id: string; size: number }[];
  bundles: { key: string; size: number }[];
  variants: { key: string; size: number }[];
  other: { key: string; size: number }[];
  mirrorOnly: { key: string; size: number }[];
}

async function listSide(storage: ObjectStorage): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const o of storage.list('v1/')) if (!VERSIONED_KEYS.has(o.key)) out.set(o.key, o.size);
  return out;
}

function manifestIdOf(key: string): string | null {
  if (!key.startsWith(OBJECTS_PREFIX)) return null;
  const m = /^([0-9a-f]{2})\/([0-9a-f]{62})$/.exec(key.slice(OBJECTS_PREFIX.length));
  return m ? m[1]! + m[2]! : null;
}

function planCopy(primary: Map<string, number>, mirror: Map<string, number>): Plan {
  const plan: Plan = { format: false, packs: [], manifests: [], bundles: [], variants: [], other: [], mirrorOnly: [] };
  const lacks = (key: string, size: number): boolean => mirror.get(key) !== size;
  for (const [key, size] of primary) {
    const pk = parsePackKey(key);
    if (pk) {
      // a pack travels with its index: only complete pairs (an .idx names a complete pack)
      if (pk.kind !== 'idx') continue;
      const packSize = primary.get(packKey(pk.packId));
      if (packSize === undefined) continue;
      const needPack = lacks(packKey(pk.packId), packSize);
      if (needPack || lacks(key, size)) plan.packs.push({ packId: pk.packId, size: packSize, idxSize: size, indexOnly: !needPack });
      continue;
    }
    if (!lacks(key, size)) continue;
    const mid = manifestIdOf(key);
    if (key === FORMAT_KEY) plan.format = true;
    else if (mid) plan.manifests.push({ key, id: mid, size });
    else if (key.startsWith(GIT_PREFIX)) plan.bundles.push({ key, size });
    else if (key.startsWith(VARIANTS_PREFIX)) plan.variants.push({ key, size });
    else plan.other.push({ key, size });
  }
  for (const [key, size] of mirror) if (!primary.has(key)) plan.mirrorOnly.push({ key, size });
  return plan;
}

/** A transform that passes bytes on, holding the last piece back until `check` approves the whole. */
class HoldLast extends Transform {
  private held: Buffer | null = null;
  failure: Error | null = null;
  constructor(
    private readonly onData: (b: Buffer) => void,
    private readonly check: () => string | null,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, done: TransformCallback): void {
    this.onData(chunk);
    if (this.held) this.push(this.held);
    this.held = chunk;
    done();
  }
  override _flush(done: TransformCallback): void {
    const why = this.check();
    if (why) {
      this.failure = Object.assign(new Error(why), { code: 'pack-corrupt' });
      return done(this.failure);
    }
    if (this.held) this.push(this.held);
    done();
  }
}

export class Progress {
  private done = 0;
  private items = 0;
  private readonly start: number;
  constructor(
    private readonly total: number,
    private readonly totalItems: number,
    private readonly cb: ((p: TransferProgress) => void) | undefined,
    private readonly now: () => number,
  ) {
    this.start = now();
  }
  add(bytes: number, item = false): void {
    this.done += bytes;
    if (item) this.items++;
    if (!this.cb) return;
    const secs = Math.max((this.now() - this.start) / 1000, 0.001);
    const rate = this.done / secs;
    this.cb({ doneBytes: this.done, totalBytes: this.total, doneItems: this.items, totalItems: this.totalItems, failedItems: 0, rateBytesPerSec: rate, etaSec: rate > 0 ? (this.total - this.done) / rate : null });
  }
}

/**
 * Copies `key` from `from` to `to` as a stream through `checker` (which may reject it),
 * retrying faults of either side; a rejection by the checker or a frozen source is final.
 */
export async function copyStream(
  from: ObjectStorage,
  to: ObjectStorage,
  key: string,
  size: number | undefined,
  checker: () => Transform & { readonly failure: Error | null },
  ctx: CopyContext,
): Promise<void> {
  let rejected: Error | null = null;
  await withRetry(
    async () => {
      const src: Readable = await from.get(key);
      const check = checker();
      let counted = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _e, done) {
          counted += chunk.length;
          ctx.progress.add(chunk.length);
          done(null, chunk);
        },
      });
      src.on('error', (e) => check.destroy(e));
      check.on('error', (e) => {
        if (check.failure) rejected = check.failure;
        counter.destroy(e);
      });
      const body = src.pipe(check).pipe(counter);
      try {
        await to.put(key, () => body, size === undefined ? {} : { size });
      } catch (err) {
        ctx.progress.add(-counted);
        src.destroy();
        throw rejected ?? err;
      }
      if (rejected) throw rejected;
    },
    ctx.retry,
    ctx.retryDeps,
    { retryable: (e) => rejected === null && !isFrozenError(e) && isRetryable(e) },
  );
}

function classify(err: unknown): { reason: NotCopiedReason; message: string } {
  const message = err instanceof Error ? err.message : String(err);
  if (isFrozenError(err)) return { reason: 'frozen', message };
  if (err instanceof PackCorruptError || (err as { code?: string }).code === 'pack-corrupt') return { reason: 'corrupt', message };
  if ((err as { code?: string }).code === 'storage-not-found') return { reason: 'missing', message };
  return { reason: 'failed', message };
}

/** Reads and checks a pack's index by its name; throws PackCorruptError when it does not verify. */
export async function readPackIndex(storage: ObjectStorage, packId: string): Promise<PackIndexEntry[]> {
  const bytes = await storage.getBuffer(indexKey(packId));
  if (hashHex(bytes) !== packId) throw new PackCorruptError(indexKey(packId), 'its bytes do not match its name');
  try {
    return decodePackIndex(bytes);
  } catch (err) {
    throw new PackCorruptError(indexKey(packId), (err as Error).message);
  }
}

export interface CopyContext {
  retry: RetryPolicy;
  retryDeps: RetryDeps;
  progress: Progress;
}

/** A context for copyPack / copyStream outside a sync (fsck's repair). */
export function copyContext(o: { retry?: RetryPolicy; retryDeps?: RetryDeps; onProgress?: (p: TransferProgress) => void; totalBytes?: number } = {}): CopyContext {
  return { retry: o.retry ?? DEFAULT_RETRY_POLICY, retryDeps: o.retryDeps ?? realRetryDeps, progress: new Progress(o.totalBytes ?? 0, 0, o.onProgress, Date.now) };
}

/**
 * Copies one pack: its index checked by name, the pack's listed size checked against the
 * index, the pack streamed through a PackVerifier, then the index.
 */
export async function copyPack(
  from: ObjectStorage,
  to: ObjectStorage,
  p: { packId: string; size: number; indexOnly: boolean },
  ctx: CopyContext,
): Promise<void> {
  const idxBytes = await withRetry(() => from.getBuffer(indexKey(p.packId)), ctx.retry, ctx.retryDeps);
  if (hashHex(idxBytes) !== p.packId) throw new PackCorruptError(indexKey(p.packId), 'its bytes do not match its name');
  let entries: PackIndexEntry[];
  try {
    entries = decodePackIndex(idxBytes);
  } catch (err) {
    throw new PackCorruptError(indexKey(p.packId), (err as Error).message);
  }
  const expected = packSizeOf(entries);
  if (p.size !== expected) throw new PackCorruptError(packKey(p.packId), `${p.size} bytes, its index says ${expected}`);
  if (!p.indexOnly) {
    await copyStream(from, to, packKey(p.packId), p.size, () => new PackVerifier(packKey(p.packId), entries), ctx);
  }
  await withRetry(() => to.put(indexKey(p.packId), idxBytes), ctx.retry, ctx.retryDeps);
  ctx.progress.add(idxBytes.length, true);
}

/** Chunk ids (hex) of packs that were not copied, or null when some index could not be read. */
async function chunksOf(from: ObjectStorage, packIds: string[]): Promise<Set<string> | null> {
  const out = new Set<string>();
  for (const id of packIds) {
    try {
      for (const e of await readPackIndex(from, id)) out.add(e.idRaw.toString('hex'));
    } catch {
      return null;
    }
  }
  return out;
}

function refsNeed(state: RefState | null): Set<string> {
  return new Set(state ? state.bundles.map((b) => b.key) : []);
}

/** Whether `mirror`'s git data is all named by `primary` too (so replacing it loses nothing). */
function mirrorBehind(mirror: RefState, primary: RefState): boolean {
  const have = refsNeed(primary);
  return mirror.bundles.every((b) => have.has(b.key));
}

/**
 * Copies to `to` everything `from` holds that `to` lacks (see the file comment). Throws
 * MirrorUnreachableError when the mirror cannot be reached (nothing is changed anywhere),
 * and the storage's own errors when the primary cannot be read.
 */
export async function syncMirror(from: ObjectStorage, to: ObjectStorage, opts: MirrorSyncOptions = {}): Promise<MirrorSyncResult> {
  const now = opts.now ?? Date.now;
  const started = now();
  const retry = opts.retry ?? DEFAULT_RETRY_POLICY;
  const retryDeps = opts.retryDeps ?? realRetryDeps;
  const concurrency = Math.max(1, opts.concurrency ?? 8);
  const largePack = opts.largePackBytes ?? 64 * 1024 * 1024;

  try {
    await to.checkAccess?.();
  } catch (err) {
    throw new MirrorUnreachableError(to.location, err);
  }
  if (!(await checkFormat(from))) {
    throw new DitsUserError('no-such-remote', `there is no Dits remote at ${from.location} to mirror`, { hint: 'check the primary remote (`--from <remote>`, or dits.remote / origin)' });
  }
  // 1. the primary's refs before its listing: everything they name is then in the listing
  const primaryRefs = await from.getVersioned(REFS_KEY);
  const primaryState = primaryRefs ? parseRefState(primaryRefs.body, from.location) : null;
  // 2. one listing per side
  const [primaryList, mirrorRead] = await Promise.all([
    listSide(from),
    listSide(to).then(
      (v) => ({ ok: true as const, v }),
      (e: unknown) => ({ ok: false as const, e }),
    ),
  ]);
  if (!mirrorRead.ok) throw new MirrorUnreachableError(to.location, mirrorRead.e);
  const plan = planCopy(primaryList, mirrorRead.v);

  const counts: MirrorPlanCounts = { packs: 0, indexes: 0, manifests: 0, bundles: 0, other: 0, bytes: 0 };
  const planned: MirrorPlanCounts = {
    packs: plan.packs.filter((p) => !p.indexOnly).length,
    indexes: plan.packs.length,
    manifests: plan.manifests.length,
    bundles: plan.bundles.length,
    other: plan.other.length + plan.variants.length + (plan.format ? 1 : 0),
    bytes:
      plan.packs.reduce((n, p) => n + (p.indexOnly ? 0 : p.size) + p.idxSize, 0) +
      [...plan.manifests, ...plan.bundles, ...plan.variants, ...plan.other].reduce((n, o) => n + o.size, 0) +
      (plan.format ? (primaryList.get(FORMAT_KEY) ?? 0) : 0),
  };
  const result: MirrorSyncResult = {
    from: from.location,
    to: to.location,
    dryRun: Boolean(opts.dryRun),
    copied: counts,
    notCopied: [],
    heldBack: [],
    refs: 'none',
    deleted: [],
    keptOnMirror: 0,
    seconds: 0,
  };
  const mirrorRefs = await to.getVersioned(REFS_KEY).catch((e: unknown) => {
    throw new MirrorUnreachableError(to.location, e);
  });
  const refsEqual = (primaryRefs === null && mirrorRefs === null) || (primaryRefs !== null && mirrorRefs !== null && primaryRefs.body.equals(mirrorRefs.body));

  if (opts.dryRun) {
    result.copied = planned;
    result.refs = primaryRefs === null ? 'none' : refsEqual ? 'unchanged' : 'would-update';
    if (opts.delete) result.deleted = planDeletes(plan, primaryState, mirrorRefs ? parseRefState(mirrorRefs.body, to.location) : null, primaryList).map((o) => o.key);
    result.seconds = (now() - started) / 1000;
    return result;
  }

  const progress = new Progress(planned.bytes, planned.indexes + planned.manifests + planned.bundles + planned.other, opts.onProgress, now);
  const ctx = { retry, retryDeps, progress };
  const fail = (key: string, err: unknown): void => {
    if (err instanceof MirrorUnreachableError) throw err;
    result.notCopied.push({ key, ...classify(err) });
  };

  // 3. the format, then packs (large ones one at a time), each .pack before its .idx
  if (plan.format) {
    const body = await withRetry(() => from.getBuffer(FORMAT_KEY), retry, retryDeps);
    await withRetry(() => to.put(FORMAT_KEY, body), retry, retryDeps);
    counts.other++;
    counts.bytes += body.length;
    progress.add(body.length, true);
  }
  const copyOne = async (p: Plan['packs'][number]): Promise<void> => {
    try {
      await copyPack(from, to, p, ctx);
      if (!p.indexOnly) {
        counts.packs++;
        counts.bytes += p.size;
      }
      counts.indexes++;
      counts.bytes += p.idxSize;
    } catch (err) {
      fail(p.indexOnly ? indexKey(p.packId) : packKey(p.packId), err);
    }
  };
  await runLimited(plan.packs.filter((p) => p.indexOnly || p.size < largePack), concurrency, copyOne);
  await runLimited(plan.packs.filter((p) => !p.indexOnly && p.size >= largePack), 1, copyOne);

  // 4. manifests, after every pack; those naming a chunk of a pack not copied are held back
  const failedPacks = result.notCopied.map((n) => parsePackKey(n.key)?.packId).filter((x): x is string => Boolean(x));
  const missingChunks = failedPacks.length ? await chunksOf(from, failedPacks) : new Set<string>();
  const heldManifests = new Set<string>();
  await runLimited(plan.manifests, concurrency, async (m) => {
    try {
      const bytes = await withRetry(() => from.getBuffer(m.key), retry, retryDeps);
      if (hashHex(bytes) !== m.id) throw Object.assign(new Error(`${m.key} is corrupt: its bytes do not match its id`), { code: 'pack-corrupt' });
      if (missingChunks === null || (missingChunks.size > 0 && needsAny(bytes, missingChunks))) {
        heldManifests.add(m.id);
        result.heldBack.push(m.key);
        return;
      }
      await withRetry(() => to.put(m.key, bytes), retry, retryDeps);
      counts.manifests++;
      counts.bytes += bytes.length;
      progress.add(bytes.length, true);
    } catch (err) {
      fail(m.key, err);
    }
  });

  // git bundles, checked against their sha256 name
  await runLimited(plan.bundles, concurrency, async (b) => {
    const want = /([0-9a-f]{64})\.bundle$/.exec(b.key)?.[1];
    try {
      await copyStream(from, to, b.key, b.size, () => {
        const h = createHash('sha256');
        return new HoldLast((c) => h.update(c), () => (want && h.digest('hex') !== want ? `${b.key} is corrupt: its bytes do not match its name` : null));
      }, ctx);
      counts.bundles++;
      counts.bytes += b.size;
      progress.add(0, true);
    } catch (err) {
      fail(b.key, err);
    }
  });

  // variant records (after the manifests they name), then tier, access and any other records
  await runLimited([...plan.variants, ...plan.other], concurrency, async (o) => {
    try {
      const bytes = await withRetry(() => from.getBuffer(o.key), retry, retryDeps);
      // a location table never names a pack the mirror lacks (a reader would take it, find
      // no pack and fall back): held back with the packs that were not copied
      if (o.key.startsWith(LOCATIONS_PREFIX) && failedPacks.length && namesAny(bytes, failedPacks)) {
        result.heldBack.push(o.key);
        return;
      }
      if (o.key.startsWith(VARIANTS_PREFIX) && (heldManifests.size || missingChunks === null)) {
        let named: string | undefined;
        try {
          named = parseVariantRecord(JSON.parse(bytes.toString('utf8')))?.manifest;
        } catch {
          named = undefined;
        }
        if (named && heldManifests.has(named)) {
          result.heldBack.push(o.key);
          return;
        }
      }
      await withRetry(() => to.put(o.key, bytes), retry, retryDeps);
      counts.other++;
      counts.bytes += bytes.length;
      progress.add(bytes.length, true);
    } catch (err) {
      fail(o.key, err);
    }
  });

  // 5. refs last, by compare-and-swap
  result.refs = await copyRefs(to, primaryRefs, primaryState, mirrorRefs, result, primaryList);

  // 6. deletes, only once the mirror's refs are the primary's
  if (opts.delete && (result.refs === 'updated' || result.refs === 'unchanged') && result.notCopied.length === 0) {
    const state = primaryState;
    const victims = planDeletes(plan, state, state, primaryList);
    result.keptOnMirror = plan.mirrorOnly.length - victims.length;
    for (const v of victims) {
      await withRetry(() => to.delete(v.key), retry, retryDeps);
      result.deleted.push(v.key);
    }
  } else if (opts.delete) result.keptOnMirror = plan.mirrorOnly.length;
  result.seconds = (now() - started) / 1000;
  return result;
}

function needsAny(manifestBytes: Buffer, chunks: Set<string>): boolean {
  let m: Manifest;
  try {
    m = Manifest.parse(manifestBytes);
  } catch {
    return true;
  }
  for (let i = 0; i < m.chunkCount; i++) if (chunks.has(m.idAt(i))) return true;
  return false;
}

async function copyRefs(
  to: ObjectStorage,
  primaryRefs: { body: Buffer } | null,
  primaryState: RefState | null,
  mirrorRefs: { body: Buffer; etag: string } | null,
  result: MirrorSyncResult,
  primaryList: Map<string, number>,
): Promise<RefsOutcome> {
  if (primaryRefs === null || primaryState === null) return 'none';
  if (result.notCopied.length || result.heldBack.length) return 'held-back';
  // every bundle the refs name must be on the primary (and so now on the mirror)
  if (primaryState.bundles.some((b) => !primaryList.has(b.key))) {
    for (const b of primaryState.bundles) if (!primaryList.has(b.key)) result.notCopied.push({ key: b.key, reason: 'missing', message: `the primary's refs name ${b.key}, which it does not hold` });
    return 'held-back';
  }
  let current = mirrorRefs;
  for (let attempt = 0; attempt < 20; attempt++) {
    if (current && current.body.equals(primaryRefs.body)) return attempt === 0 ? 'unchanged' : 'updated';
    if (current && !mirrorBehind(parseRefState(current.body, to.location), primaryState)) return 'mirror-ahead';
    const r = await to.putIf(REFS_KEY, primaryRefs.body, current ? { etag: current.etag } : 'absent');
    if (r.ok) return 'updated';
    // another writer (a second sync) moved them: look again
    current = await to.getVersioned(REFS_KEY);
  }
  throw new DitsUserError('mirror-refs-contended', `the refs on ${to.location} kept changing during the sync`, { hint: 'another sync or push is running against the mirror; run the sync again' });
}

/** Whether location table `bytes` names one of `packs` (an unreadable table counts as yes). */
function namesAny(bytes: Buffer, packs: readonly string[]): boolean {
  try {
    const named = new Set(locationTablePackIds(bytes));
    return packs.some((p) => named.has(p));
  } catch {
    return true;
  }
}

/**
 * What `--delete` may remove from the mirror: objects the primary does not hold and that
 * neither side's refs need: git bundles named by neither ref state, and tier, access and
 * variant records. Mirror-only packs and manifests are kept: proving them unneeded takes
 * the git trees of every ref of both sides. Order: records, then bundles.
 */
function planDeletes(plan: Plan, primary: RefState | null, mirror: RefState | null, primaryList: Map<string, number>): { key: string }[] {
  const need = new Set([...refsNeed(primary), ...refsNeed(mirror)]);
  const out: { key: string }[] = [];
  for (const o of plan.mirrorOnly) {
    if (primaryList.has(o.key)) continue;
    if (parsePackKey(o.key) || manifestIdOf(o.key) || o.key === FORMAT_KEY) continue;
    if (o.key.startsWith(GIT_PREFIX) && need.has(o.key)) continue;
    out.push(o);
  }
  return out.sort((a, b) => Number(a.key.startsWith(GIT_PREFIX)) - Number(b.key.startsWith(GIT_PREFIX)));
}
