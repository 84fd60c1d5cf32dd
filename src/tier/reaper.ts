/**
 * One reaper run: sync the catalog, take the storage's clock, plan, apply. What
 * `git dits tier apply` runs (after publishing keep-hot from its git refs) and what the
 * server schedules per repository (keep-hot computed from the repository's stored git data
 * and united with the published `v1/tier/keep-hot.json`: server/tier-keep-hot.ts).
 *
 * Time: the plan's `now` is the storage's clock (LastModified of a probe object), not this
 * machine's: a client clock years ahead would otherwise make every pack look unused. The
 * difference is reported, and a dry run (which writes nothing, so cannot probe) refuses a
 * clock behind the storage's newest upload.
 */
import type { ObjectStorage } from '../transfer/object-storage.js';
import { applyTierPlan, storageClock, type ApplyOptions, type ApplyResult } from './apply.js';
import { TierCatalog, type AccessEntry } from './catalog.js';
import { pendingKey, syncCatalog, type SyncSummary } from './catalog-sync.js';
import { readGraduationRecords } from './graduated.js';
import { readPublishedKeepHot } from './keep-hot.js';
import { planTiers, type TierPlan } from './plan.js';
import type { TierPolicy } from './policy.js';
import { AWS_US_EAST_1, FOLDER_PRICES, type PriceTable } from './prices.js';
import type { TierStorage } from './tier-storage.js';

export interface ReaperOptions {
  access?: AsyncIterable<AccessEntry> | Iterable<AccessEntry>;
  prices?: PriceTable;
  /** this machine's clock (default Date.now()) */
  now?: number;
  /** default: the published keep-hot.json (none published: nothing may move) */
  keepHotManifests?: ReadonlySet<string>;
  /**
   * the keep-hot list is the default one (no pattern configured: the default branch's
   * current files), which does not hold graduated file versions hot; default: true when the
   * published list is used and names no pattern, false when `keepHotManifests` is given
   */
  keepHotIsDefault?: boolean;
  /** plan only: no probe, no marks, no moves */
  dryRun?: boolean;
  apply?: Omit<ApplyOptions, 'now' | 'dryRun' | 'mode'>;
  concurrency?: number;
  /** pack indexes read by the sync so far, of those new */
  onSyncProgress?: (done: number, total: number) => void;
  /** the plan, before anything is applied (for a progress total) */
  onPlan?: (plan: TierPlan) => void;
}

export interface ReaperResult {
  sync: SyncSummary;
  plan: TierPlan;
  apply: ApplyResult | null;
  clock: { client: number; storage: number | null; skewMs: number | null };
  /** graduation records (v1/tier/graduated/): how many were used, and those ignored (`<key>: <why>`) */
  graduation: { records: number; unreadable: string[] };
}

/** Skews above this are said in the plan's notes. */
export const CLOCK_NOTE_MS = 5 * 60_000;

export function defaultPrices(storage: TierStorage): PriceTable {
  return storage.tierProfile.name === 'folder' ? FOLDER_PRICES : AWS_US_EAST_1;
}

/** A run on an open catalog. */
export async function reapOnce(storage: ObjectStorage & TierStorage, catalog: TierCatalog, policy: TierPolicy, opts: ReaperOptions = {}): Promise<ReaperResult> {
  const client = opts.now ?? Date.now();
  const profile = storage.tierProfile;
  const sync = await syncCatalog(storage, catalog, { access: opts.access, now: client, concurrency: opts.concurrency, onProgress: opts.onSyncProgress });
  let storageNow: number | null = null;
  if (!opts.dryRun && profile.classes !== null) storageNow = await storageClock(storage, client);
  const now = storageNow ?? client;
  // keep-hot: given (a client computes it from git), else the list a client published; with
  // neither, nothing is known to be needed now, so nothing may move (the plan is still shown)
  const published = opts.keepHotManifests ? null : await readPublishedKeepHot(storage);
  const keepHot = opts.keepHotManifests ?? published?.manifests ?? null;
  const keepHotIsDefault = opts.keepHotIsDefault ?? (published !== null && published.patterns.length === 0);
  // repositories graduated (git dits graduate): their packs go warm by their last change
  const graduation = await readGraduationRecords(storage);
  const plan = planTiers(catalog, policy, profile, opts.prices ?? defaultPrices(storage), {
    now,
    keepHotManifests: keepHot ?? new Set<string>(),
    graduated: graduation.records,
    keepHotIsDefault,
  });
  for (const u of graduation.unreadable) plan.notes.push(`graduation record ${u}: ignored (its packs are planned by age)`);
  const skew = storageNow === null ? null : client - storageNow;
  if (skew !== null) {
    catalog.setMeta('clock_skew', JSON.stringify({ at: client, skewMs: skew }));
    if (Math.abs(skew) > CLOCK_NOTE_MS) plan.notes.push(`this machine's clock is ${formatSkew(skew)} ${skew > 0 ? 'ahead of' : 'behind'} the storage's: the storage's time was used`);
  } else if (plan.tiered) {
    // a dry run cannot probe the storage's clock: say what the last run here measured
    const last = catalog.meta('clock_skew');
    const seen = last === undefined ? null : (JSON.parse(last) as { at: number; skewMs: number });
    if (seen && Math.abs(seen.skewMs) > CLOCK_NOTE_MS) {
      plan.notes.push(`at the last \`tier apply\` here (${new Date(seen.at).toISOString().slice(0, 10)}) this machine's clock was ${formatSkew(seen.skewMs)} ${seen.skewMs > 0 ? 'ahead of' : 'behind'} the storage's; this plan uses this machine's clock (apply uses the storage's)`);
    }
  }
  const keepHotUnknown = keepHot === null && plan.tiered;
  if (keepHotUnknown) {
    plan.notes.push('no keep-hot list is published on this remote (v1/tier/keep-hot.json): nothing was marked or moved; run `git dits tier apply` once from a clone to publish it');
  }
  opts.onPlan?.(plan);
  const apply = opts.dryRun || keepHotUnknown ? null : await applyTierPlan(storage, catalog, plan, { ...opts.apply, now, mode: policy.mode });
  // markers of packs deleted since (gc): a pack pushed again later starts with no mark
  if (!opts.dryRun) for (const id of sync.orphanMarkers) await storage.delete(pendingKey(id));
  return { sync, plan, apply, clock: { client, storage: storageNow, skewMs: skew }, graduation: { records: graduation.records.length, unreadable: graduation.unreadable } };
}

function formatSkew(ms: number): string {
  const a = Math.abs(ms);
  if (a >= 86_400_000 * 2) return `${Math.round(a / 86_400_000)} days`;
  if (a >= 3_600_000) return `${Math.round(a / 3_600_000)} h`;
  return `${Math.round(a / 60_000)} min`;
}

/**
 * For the server's schedule: one run over a repository's storage with its catalog file
 * (`<dataDir>/tier/<owner>/<repo>.sqlite`) and the reads the server recorded
 * (server/tier-access.ts turns its `access` rows into AccessEntry).
 */
export async function runReaper(
  storage: ObjectStorage & TierStorage,
  catalogFile: string,
  policy: TierPolicy,
  opts: ReaperOptions = {},
): Promise<ReaperResult> {
  const catalog = TierCatalog.open(catalogFile);
  try {
    return await reapOnce(storage, catalog, policy, opts);
  } finally {
    catalog.close();
  }
}
