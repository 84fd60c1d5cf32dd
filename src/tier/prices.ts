/**
 * What storage and restores cost, and how long restores take: a price table and the
 * arithmetic over it. The shipped table is AWS S3's us-east-1 list prices as AWS
 * published them (dated in `asOf`: check before relying on it); `dits.tier.priceTable`
 * (or the server's `--price-table`) names a JSON file of the same shape to use instead.
 *
 * Units: dollars; sizes in bytes, billed in GiB (AWS's "GB" is 2^30 bytes); storage per
 * GiB-month (30 days); requests per 1,000. Every figure Dits prints about cost comes from
 * these functions, so "the estimate equals the table's arithmetic" is testable.
 */
import { readFileSync } from 'node:fs';
import { DitsUserError } from '../errors.js';
import type { RetrievalTier } from './tiers.js';

export interface ClassPrice {
  /** $ per GiB-month */
  storagePerGiBMonth: number;
  /** deleted or moved out earlier than this many days: the remaining days are billed */
  minStorageDays: number;
  /** objects smaller than this are billed as this size (STANDARD_IA, GLACIER_IR: 128 KiB) */
  minObjectBytes: number;
  /** billed per archived object on top of its size: `own` bytes at this class's price, `standard` at STANDARD's */
  overheadBytes: { own: number; standard: number };
  /** $ per 1,000 PUT/COPY/lifecycle transitions into this class */
  transitionPer1000: number;
  /** $ per GiB read (STANDARD_IA, GLACIER_IR); 0 for STANDARD */
  readPerGiB: number;
  /** true: a GET needs a finished restore first */
  needsRestore: boolean;
}

export interface RestorePrice {
  perGiB: number;
  per1000Requests: number;
  /** typical time until the restored copy is readable, in hours [fastest, slowest] */
  hours: [number, number];
}

export interface PriceTable {
  provider: string;
  region: string;
  currency: string;
  /** when these prices were taken from the provider's page */
  asOf: string;
  source: string;
  classes: Record<string, ClassPrice>;
  /** per archive class, per retrieval tier offered there */
  restore: Record<string, Partial<Record<RetrievalTier, RestorePrice>>>;
}

const KIB = 1024;
export const GIB = 1024 ** 3;
const DAYS_PER_MONTH = 30;

/** AWS S3 us-east-1 list prices (first 50 TB tier). */
export const AWS_US_EAST_1: PriceTable = {
  provider: 'aws',
  region: 'us-east-1',
  currency: 'USD',
  asOf: '2026-01-15',
  source: 'https://aws.amazon.com/s3/pricing/ (list prices, us-east-1, first 50 TB per month)',
  classes: {
    STANDARD: { storagePerGiBMonth: 0.023, minStorageDays: 0, minObjectBytes: 0, overheadBytes: { own: 0, standard: 0 }, transitionPer1000: 0.005, readPerGiB: 0, needsRestore: false },
    STANDARD_IA: { storagePerGiBMonth: 0.0125, minStorageDays: 30, minObjectBytes: 128 * KIB, overheadBytes: { own: 0, standard: 0 }, transitionPer1000: 0.01, readPerGiB: 0.01, needsRestore: false },
    GLACIER_IR: { storagePerGiBMonth: 0.004, minStorageDays: 90, minObjectBytes: 128 * KIB, overheadBytes: { own: 0, standard: 0 }, transitionPer1000: 0.02, readPerGiB: 0.03, needsRestore: false },
    GLACIER: { storagePerGiBMonth: 0.0036, minStorageDays: 90, minObjectBytes: 0, overheadBytes: { own: 32 * KIB, standard: 8 * KIB }, transitionPer1000: 0.03, readPerGiB: 0, needsRestore: true },
    DEEP_ARCHIVE: { storagePerGiBMonth: 0.00099, minStorageDays: 180, minObjectBytes: 0, overheadBytes: { own: 32 * KIB, standard: 8 * KIB }, transitionPer1000: 0.05, readPerGiB: 0, needsRestore: true },
  },
  restore: {
    GLACIER: {
      expedited: { perGiB: 0.03, per1000Requests: 10, hours: [1 / 60, 5 / 60] },
      standard: { perGiB: 0.01, per1000Requests: 0.05, hours: [3, 5] },
      bulk: { perGiB: 0, per1000Requests: 0, hours: [5, 12] },
    },
    DEEP_ARCHIVE: {
      standard: { perGiB: 0.02, per1000Requests: 0.1, hours: [0, 12] },
      bulk: { perGiB: 0.0025, per1000Requests: 0.025, hours: [0, 48] },
    },
  },
};

/** Folder tiers cost nothing Dits knows of; restores from an archive folder (any tier named in dits.tier.archive) are a local copy. */
export const FOLDER_PRICES: PriceTable = {
  provider: 'folder',
  region: 'local',
  currency: 'USD',
  asOf: '2026-01-15',
  source: 'local folders: no provider charges',
  classes: Object.fromEntries(
    ['hot', 'warm', 'cold', 'deep'].map((c) => [c, { storagePerGiBMonth: 0, minStorageDays: 0, minObjectBytes: 0, overheadBytes: { own: 0, standard: 0 }, transitionPer1000: 0, readPerGiB: 0, needsRestore: false }]),
  ),
  // an archive folder's restore is a local copy: free, in about the time the copy takes
  restore: Object.fromEntries(
    ['warm', 'cold', 'deep'].map((c) => [c, Object.fromEntries((['expedited', 'standard', 'bulk'] as const).map((t) => [t, { perGiB: 0, per1000Requests: 0, hours: [0, 1 / 60] as [number, number] }]))]),
  ),
};

function num(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`${where} must be a number >= 0`);
  return v;
}

/** Checks a table read from JSON; throws a user error naming the first bad field. */
export function validatePriceTable(raw: unknown, file = 'price table'): PriceTable {
  try {
    if (typeof raw !== 'object' || raw === null) throw new Error('not a JSON object');
    const t = raw as Record<string, unknown>;
    for (const f of ['provider', 'region', 'currency', 'asOf', 'source']) if (typeof t[f] !== 'string') throw new Error(`${f} must be a string`);
    if (typeof t.classes !== 'object' || t.classes === null) throw new Error('classes must be an object');
    for (const [name, c] of Object.entries(t.classes as Record<string, Record<string, unknown>>)) {
      for (const f of ['storagePerGiBMonth', 'minStorageDays', 'minObjectBytes', 'transitionPer1000', 'readPerGiB']) num(c[f], `classes.${name}.${f}`);
      const o = c.overheadBytes as Record<string, unknown> | undefined;
      num(o?.own, `classes.${name}.overheadBytes.own`);
      num(o?.standard, `classes.${name}.overheadBytes.standard`);
      if (typeof c.needsRestore !== 'boolean') throw new Error(`classes.${name}.needsRestore must be true or false`);
    }
    if (!('STANDARD' in (t.classes as object)) && t.provider !== 'folder') throw new Error('classes.STANDARD is missing');
    if (typeof t.restore !== 'object' || t.restore === null) throw new Error('restore must be an object');
    for (const [cls, tiers] of Object.entries(t.restore as Record<string, Record<string, Record<string, unknown>>>)) {
      for (const [tier, p] of Object.entries(tiers)) {
        if (!['expedited', 'standard', 'bulk'].includes(tier)) throw new Error(`restore.${cls}.${tier}: unknown retrieval tier`);
        num(p.perGiB, `restore.${cls}.${tier}.perGiB`);
        num(p.per1000Requests, `restore.${cls}.${tier}.per1000Requests`);
        const h = p.hours as unknown[];
        if (!Array.isArray(h) || h.length !== 2) throw new Error(`restore.${cls}.${tier}.hours must be [fastest, slowest]`);
        num(h[0], `restore.${cls}.${tier}.hours[0]`);
        num(h[1], `restore.${cls}.${tier}.hours[1]`);
      }
    }
    return raw as PriceTable;
  } catch (err) {
    throw new DitsUserError('bad-price-table', `${file}: ${(err as Error).message}`, {
      hint: 'fix the file, or unset dits.tier.priceTable to use the shipped AWS us-east-1 table',
    });
  }
}

/** The shipped table, or the JSON file `file` (git config dits.tier.priceTable). */
export function loadPriceTable(file?: string): PriceTable {
  if (file === undefined || file === '') return AWS_US_EAST_1;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new DitsUserError('bad-price-table', `cannot read the price table ${file}: ${(err as Error).message}`, {
      hint: 'check dits.tier.priceTable, or unset it to use the shipped AWS us-east-1 table',
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new DitsUserError('bad-price-table', `${file} is not JSON: ${(err as Error).message}`, { hint: 'fix the file or unset dits.tier.priceTable' });
  }
  return validatePriceTable(parsed, file);
}

function classPrice(table: PriceTable, storageClass: string): ClassPrice {
  const c = table.classes[storageClass];
  if (c === undefined) {
    throw new DitsUserError('unknown-storage-class', `the price table (${table.provider} ${table.region}) has no prices for ${storageClass}`, {
      hint: 'add the class to the table named by dits.tier.priceTable, or choose a class it lists',
    });
  }
  return c;
}

/** Billed bytes of `objects` objects totalling `bytes` in a class (minimum sizes and archive overhead included). */
export function billedBytes(table: PriceTable, storageClass: string, bytes: number, objects: number): { own: number; standard: number } {
  const c = classPrice(table, storageClass);
  // a minimum object size applies per object; callers pass sizes in aggregate, so the
  // minimum is applied to the average object (exact when the objects are alike, as packs are)
  const avg = objects > 0 ? bytes / objects : 0;
  const own = objects > 0 ? Math.max(avg, c.minObjectBytes) * objects : bytes;
  return { own: own + c.overheadBytes.own * objects, standard: c.overheadBytes.standard * objects };
}

/** $ per month to keep `objects` objects totalling `bytes` in `storageClass`. */
export function monthlyStorageCost(table: PriceTable, storageClass: string, bytes: number, objects: number): number {
  const c = classPrice(table, storageClass);
  const b = billedBytes(table, storageClass, bytes, objects);
  const std = b.standard === 0 ? 0 : classPrice(table, 'STANDARD').storagePerGiBMonth;
  return (b.own / GIB) * c.storagePerGiBMonth + (b.standard / GIB) * std;
}

/** $ to move `objects` objects into `storageClass` (one COPY or transition request each). */
export function transitionCost(table: PriceTable, storageClass: string, objects: number): number {
  return (objects / 1000) * classPrice(table, storageClass).transitionPer1000;
}

/**
 * $ billed for leaving `storageClass` after `daysStored` days, when that is less than the
 * class's minimum duration: the remaining days at the class's storage price.
 */
export function earlyDeletionCharge(table: PriceTable, storageClass: string, bytes: number, objects: number, daysStored: number): number {
  const c = classPrice(table, storageClass);
  const remaining = c.minStorageDays - Math.max(0, daysStored);
  if (remaining <= 0) return 0;
  const b = billedBytes(table, storageClass, bytes, objects);
  return (b.own / GIB) * c.storagePerGiBMonth * (remaining / DAYS_PER_MONTH);
}

export interface RestoreEstimate {
  storageClass: string;
  tier: RetrievalTier;
  bytes: number;
  requests: number;
  /** $ for the bytes retrieved */
  retrieval: number;
  /** $ for the restore requests */
  requestCost: number;
  /** $ for keeping the restored copy `days` days (billed as STANDARD) */
  restoredCopy: number;
  total: number;
  hours: [number, number];
}

/** Restore tiers offered for a class (empty when it needs no restore). */
export function restoreTiers(table: PriceTable, storageClass: string): RetrievalTier[] {
  return Object.keys(table.restore[storageClass] ?? {}) as RetrievalTier[];
}

/**
 * What restoring `requests` objects totalling `bytes` from `storageClass` at retrieval
 * `tier` costs, with the restored copy kept `days` days. Throws when the class does not
 * offer that tier (Deep Archive has no expedited).
 */
export function restoreCost(table: PriceTable, storageClass: string, tier: RetrievalTier, bytes: number, requests: number, days: number): RestoreEstimate {
  const p = table.restore[storageClass]?.[tier];
  if (p === undefined) {
    const offered = restoreTiers(table, storageClass);
    throw new DitsUserError('restore-tier-unavailable', `${storageClass} offers no ${tier} retrieval`, {
      hint: offered.length ? `use --tier ${offered.join(' or --tier ')}` : `${storageClass} needs no restore`,
    });
  }
  const retrieval = (bytes / GIB) * p.perGiB;
  const requestCost = (requests / 1000) * p.per1000Requests;
  const std = table.classes.STANDARD?.storagePerGiBMonth ?? 0;
  const restoredCopy = (bytes / GIB) * std * (days / DAYS_PER_MONTH);
  return { storageClass, tier, bytes, requests, retrieval, requestCost, restoredCopy, total: retrieval + requestCost + restoredCopy, hours: p.hours };
}

/** "$12.34" (cents), "$0.0042" below a cent, "<$0.0001" below that (never an exponent), "$0" for nothing. */
export function formatDollars(v: number): string {
  if (v === 0) return '$0';
  if (v < 0.0001) return '<$0.0001';
  if (v < 0.01) return `$${v.toPrecision(2)}`;
  return `$${v.toFixed(2)}`;
}

/** "1-5 min", "3-5 h", "within 48 h". */
export function formatHours([lo, hi]: [number, number]): string {
  const unit = (h: number): string => (h < 1 ? `${Math.round(h * 60)} min` : `${Math.round(h * 10) / 10} h`);
  if (hi < 1) return `${Math.round(lo * 60)}-${Math.round(hi * 60)} min`;
  if (lo === 0) return `within ${unit(hi)}`;
  return `${Math.round(lo * 10) / 10}-${unit(hi)}`;
}
