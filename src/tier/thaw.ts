/**
 * Carrying out a thaw plan (thaw-plan.ts): one RestoreObject per frozen pack, the request
 * recorded at `v1/tier/thaws/<id>.json`, progress from HEAD's `x-amz-restore`, and a wait
 * that polls until every pack is readable.
 *
 * Paying once: the provider is the judge of what is under way (S3 answers 409
 * RestoreAlreadyInProgress, or 200 for a finished restore, and charges neither), so two
 * people thawing the same file at once make one restore, and a re-run after a cut network
 * asks only for the packs whose restore did not start (the plan HEADs them first).
 */
import { randomBytes } from 'node:crypto';
import type { ObjectStorage } from '../transfer/object-storage.js';
import { isUserError } from '../errors.js';
import type { RestoreEstimate } from './prices.js';
import type { RestoreRequestResult, TierStorage } from './tier-storage.js';
import { needsRestore, type RetrievalTier } from './tiers.js';
import type { ThawPlan, ThawPack, PackThawState } from './thaw-plan.js';
import type { TimeRange } from './time-range.js';

export const THAWS_PREFIX = 'v1/tier/thaws/';

export interface ThawRecord {
  v: 1;
  id: string;
  /** when it was asked (the asking machine's clock), ms since epoch */
  at: number;
  by: string;
  tier: RetrievalTier;
  days: number;
  paths: string[];
  ranges?: Record<string, TimeRange>;
  packs: { packId: string; storageClass: string; size: number; result: RestoreRequestResult | 'failed' }[];
  /** the estimates for the chosen retrieval tier, one per storage class */
  estimate: RestoreEstimate[];
}

export function thawKey(id: string): string {
  return `${THAWS_PREFIX}${id}.json`;
}

/** A sortable, unique id: UTC time to the second, then 8 random hex digits. */
export function newThawId(now: number): string {
  const d = new Date(now).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${d}-${randomBytes(4).toString('hex')}`;
}

export interface RestoreFailure {
  packId: string;
  code: string;
  message: string;
}

export interface StartThawResult {
  record: ThawRecord;
  /** what the provider answered per pack asked */
  started: number;
  alreadyRunning: number;
  alreadyRestored: number;
  notArchived: number;
  failed: RestoreFailure[];
  /** false when the record could not be written (the restores asked are under way anyway) */
  recorded: boolean;
}

export interface StartThawOptions {
  tier: RetrievalTier;
  days: number;
  by: string;
  now?: number;
  concurrency?: number;
  onPack?: (done: number, total: number) => void;
}

/**
 * Asks a restore of every pack of the plan that is frozen, then writes the record. A pack
 * the provider refuses is reported in `failed` (the others go on); an error that is not
 * the provider's answer about one object (the network gone) stops the run after the
 * requests in flight, and is thrown: a re-run plans again and asks only what is missing.
 */
export async function startThaw(storage: ObjectStorage & TierStorage, plan: ThawPlan, opts: StartThawOptions): Promise<StartThawResult> {
  const now = opts.now ?? Date.now();
  const frozen = plan.packs.filter((p) => p.state === 'frozen');
  const results = new Map<string, RestoreRequestResult | 'failed'>();
  const failed: RestoreFailure[] = [];
  let fatal: unknown = null;
  let next = 0;
  let done = 0;
  const limit = opts.concurrency ?? 8;
  await Promise.all(
    Array.from({ length: Math.min(limit, frozen.length) }, async () => {
      while (next < frozen.length && fatal === null) {
        const p = frozen[next++]!;
        try {
          results.set(p.packId, await storage.requestRestore(p.key, { days: opts.days, tier: opts.tier }));
        } catch (err) {
          if (refusal(err)) {
            results.set(p.packId, 'failed');
            failed.push({ packId: p.packId, code: (err as { code: string }).code, message: (err as Error).message });
          } else fatal ??= err;
        }
        opts.onPack?.(++done, frozen.length);
      }
    }),
  );
  const count = (r: RestoreRequestResult): number => [...results.values()].filter((v) => v === r).length;
  const record: ThawRecord = {
    v: 1,
    id: newThawId(now),
    at: now,
    by: opts.by,
    tier: opts.tier,
    days: opts.days,
    paths: plan.files.map((f) => f.path),
    packs: plan.packs.map((p) => ({ packId: p.packId, storageClass: p.storageClass, size: p.size, result: results.get(p.packId) ?? stateAsResult(p.state) })),
    estimate: plan.estimates.filter((e) => e.tier === opts.tier),
  };
  const ranges = plan.files.filter((f) => f.range);
  if (ranges.length) record.ranges = Object.fromEntries(ranges.map((f) => [f.path, f.range!]));
  let recorded = false;
  if (fatal === null && results.size > 0) {
    // the record is written after the requests: what it lists was asked
    await storage.put(thawKey(record.id), Buffer.from(JSON.stringify(record, null, 2) + '\n'), { contentType: 'application/json' });
    recorded = true;
  }
  if (fatal !== null) throw fatal;
  return { record, started: count('started'), alreadyRunning: count('in-progress'), alreadyRestored: count('restored'), notArchived: count('not-archived'), failed, recorded };
}

function stateAsResult(s: PackThawState): RestoreRequestResult {
  return s === 'restoring' ? 'in-progress' : s === 'restored' ? 'restored' : 'not-archived';
}

/**
 * The provider's refusal of one restore (a user-facing storage error with an HTTP status
 * that is the provider's answer), as opposed to a network that is gone or unreachable.
 */
function refusal(err: unknown): boolean {
  if (!isUserError(err)) return false;
  const e = err as { retryable?: boolean; status?: number; code: string };
  if (e.code === 'storage-unreachable' || e.code === 'storage-network') return false;
  return typeof e.status === 'number' && e.status >= 400 && e.status < 500;
}

export interface PackProgress {
  packId: string;
  key: string;
  storageClass: string;
  size: number;
  state: PackThawState | 'gone';
  expiry?: number;
}

/** Where each pack stands now, from HEAD (the provider's view; the local clock plays no part). */
export async function packProgress(storage: ObjectStorage & TierStorage, packs: readonly Pick<ThawPack, 'packId' | 'key' | 'size' | 'storageClass'>[], concurrency = 16): Promise<PackProgress[]> {
  const out: PackProgress[] = new Array(packs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, packs.length) }, async () => {
      while (next < packs.length) {
        const i = next++;
        const p = packs[i]!;
        const s = await storage.tierState(p.key);
        let state: PackProgress['state'];
        if (s === null) state = 'gone';
        else if (!needsRestore(storage.tierProfile, s.storageClass)) state = 'readable';
        else if (s.restore === null) state = 'frozen';
        else state = s.restore.ongoing ? 'restoring' : 'restored';
        const row: PackProgress = { packId: p.packId, key: p.key, storageClass: s?.storageClass ?? p.storageClass, size: p.size, state };
        if (s?.restore?.expiry !== undefined) row.expiry = s.restore.expiry;
        out[i] = row;
      }
    }),
  );
  return out;
}

export function isReadable(p: PackProgress): boolean {
  return p.state === 'readable' || p.state === 'restored';
}

export interface WaitOptions {
  /** between two HEAD rounds (default 60 s; tests pass a few ms) */
  intervalMs?: number;
  onProgress?: (packs: PackProgress[]) => void;
  signal?: AbortSignal;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * Polls until every pack is readable. A pack that is frozen again (its restore refused,
 * or its copy expired before we got to it) ends the wait with it in the result, as does a
 * pack gone from the remote: the caller says what to do.
 */
export async function waitForThaw(storage: ObjectStorage & TierStorage, packs: readonly Pick<ThawPack, 'packId' | 'key' | 'size' | 'storageClass'>[], opts: WaitOptions = {}): Promise<{ ready: boolean; packs: PackProgress[] }> {
  const sleep = opts.sleep ?? defaultSleep;
  for (;;) {
    const now = await packProgress(storage, packs);
    opts.onProgress?.(now);
    if (now.every(isReadable)) return { ready: true, packs: now };
    if (now.some((p) => p.state === 'frozen' || p.state === 'gone')) return { ready: false, packs: now };
    await sleep(opts.intervalMs ?? 60_000, opts.signal);
  }
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason);
    }, { once: true });
  });
}

/** Every thaw record on the remote, newest first (a damaged one is skipped). */
export async function listThaws(storage: ObjectStorage): Promise<ThawRecord[]> {
  const keys: string[] = [];
  for await (const o of storage.list(THAWS_PREFIX)) if (o.key.endsWith('.json')) keys.push(o.key);
  const out: ThawRecord[] = [];
  for (const k of keys) {
    try {
      const r = JSON.parse((await storage.getBuffer(k)).toString('utf8')) as ThawRecord;
      if (r && r.v === 1 && Array.isArray(r.packs)) out.push(r);
    } catch (err) {
      if ((err as { code?: string }).code === 'storage-not-found') continue;
      if (err instanceof SyntaxError) continue;
      throw err;
    }
  }
  return out.sort((a, b) => b.id.localeCompare(a.id));
}

export async function readThaw(storage: ObjectStorage, id: string): Promise<ThawRecord | null> {
  try {
    return JSON.parse((await storage.getBuffer(thawKey(id))).toString('utf8')) as ThawRecord;
  } catch (err) {
    if ((err as { code?: string }).code === 'storage-not-found') return null;
    throw err;
  }
}

export interface ThawOverview {
  id: string;
  at: number;
  by: string;
  tier: RetrievalTier;
  paths: string[];
  packs: number;
  bytes: number;
  restored: number;
  restoring: number;
  /** packs of the record that are frozen again or were never restored (refused, expired) */
  frozen: number;
  /** the earliest expiry of its restored copies (the provider's clock), ms since epoch */
  expiresAt?: number;
}

/**
 * The thaws recorded on a remote and where each stands, for `git dits tier status`
 * ("thaws in progress, restored copies about to expire"): one HEAD per pack of each
 * record, newest record first. Records whose packs are all gone are left out.
 */
export async function thawOverview(storage: ObjectStorage & TierStorage, opts: { limit?: number } = {}): Promise<ThawOverview[]> {
  const out: ThawOverview[] = [];
  for (const r of (await listThaws(storage)).slice(0, opts.limit ?? 50)) {
    const progress = await packProgress(storage, r.packs.map((p) => ({ ...p, key: `v1/packs/${p.packId}.pack` })));
    if (progress.length && progress.every((p) => p.state === 'gone')) continue;
    const expiries = progress.map((p) => p.expiry).filter((e): e is number => e !== undefined);
    const row: ThawOverview = {
      id: r.id,
      at: r.at,
      by: r.by,
      tier: r.tier,
      paths: r.paths,
      packs: progress.length,
      bytes: r.packs.reduce((s, p) => s + p.size, 0),
      restored: progress.filter(isReadable).length,
      restoring: progress.filter((p) => p.state === 'restoring').length,
      frozen: progress.filter((p) => p.state === 'frozen').length,
    };
    if (expiries.length) row.expiresAt = Math.min(...expiries);
    out.push(row);
  }
  return out;
}
