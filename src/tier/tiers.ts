/**
 * Storage tiers: hot → warm → cold → deep, and what each one is on a provider.
 *
 * A tier is Dits' word for how far content has gone from immediate use; a storage class
 * is what the provider calls the place it rests (AWS `STANDARD_IA`, a folder on a NAS).
 * A provider profile says which class each tier maps to, and which classes need a
 * restore before a read (Glacier Flexible Retrieval, Deep Archive, a tape-like archive
 * folder). Providers with a single class (Backblaze B2, Cloudflare R2, Wasabi) have no
 * map: tiering says so and does nothing there.
 *
 * Only bulk media content (packs) ever leaves hot: manifests, git data, refs, pack
 * indexes and variants (proxies, posters, sprites) stay hot (DESIGN invariant 5).
 */
import { DitsUserError } from '../errors.js';

export type Tier = 'hot' | 'warm' | 'cold' | 'deep';
export const TIERS: readonly Tier[] = ['hot', 'warm', 'cold', 'deep'];

/** Retrieval speeds a restore can be asked for (AWS names). */
export type RetrievalTier = 'expedited' | 'standard' | 'bulk';
export const RETRIEVAL_TIERS: readonly RetrievalTier[] = ['expedited', 'standard', 'bulk'];

/** 0 for hot … 3 for deep: larger is colder. */
export function tierRank(t: Tier): number {
  return TIERS.indexOf(t);
}

export function isTier(s: string): s is Tier {
  return (TIERS as readonly string[]).includes(s);
}

export function colder(a: Tier, b: Tier): Tier {
  return tierRank(a) >= tierRank(b) ? a : b;
}

export type ProviderName = 'aws' | 'b2' | 'r2' | 'wasabi' | 'folder' | 'generic';

export interface ProviderProfile {
  name: ProviderName;
  /** The storage class of each tier; null when the provider has one class (nothing to move). */
  classes: Readonly<Record<Tier, string>> | null;
  /** Classes whose objects must be restored before a GET answers. */
  archive: ReadonlySet<string>;
  /** Every class the provider offers (for validating overrides). */
  known: readonly string[];
  /** Said to the user when there is nothing to do here, or how the profile was chosen. */
  note?: string;
}

/** The class an object without one reports (S3 omits StorageClass for STANDARD on HEAD). */
export const DEFAULT_CLASS = 'STANDARD';

const AWS_CLASSES = ['STANDARD', 'STANDARD_IA', 'GLACIER_IR', 'GLACIER', 'DEEP_ARCHIVE'] as const;
const AWS_DEFAULT: Record<Tier, string> = { hot: 'STANDARD', warm: 'STANDARD_IA', cold: 'GLACIER_IR', deep: 'DEEP_ARCHIVE' };

/** Folder classes are the tier names themselves (see tier-folders.ts). */
const FOLDER_CLASSES: Record<Tier, string> = { hot: 'hot', warm: 'warm', cold: 'cold', deep: 'deep' };

const SINGLE_CLASS: Record<Exclude<ProviderName, 'aws' | 'folder'>, string> = {
  b2: 'Backblaze B2 has one storage class: tiering has nothing to move on this remote',
  r2: 'Cloudflare R2 offers no archive class that Dits can use: tiering has nothing to move on this remote',
  wasabi: 'Wasabi has one storage class: tiering has nothing to move on this remote',
  generic:
    'this S3-compatible endpoint is not known to offer storage classes: tiering does nothing here. If it speaks AWS storage classes, set `git config dits.tier.provider aws`',
};

/**
 * The profile of `name`. `overrides` replaces the class of some tiers (git config
 * `dits.tier.class.<tier>`, e.g. cold = GLACIER for Flexible Retrieval); `archiveFolders`
 * names the folder tiers that need a restore step (folder profile only).
 */
export function providerProfile(
  name: ProviderName,
  opts: { overrides?: Partial<Record<Tier, string>>; archiveTiers?: readonly Tier[] } = {},
): ProviderProfile {
  if (name === 'aws') {
    const classes = { ...AWS_DEFAULT };
    for (const t of TIERS) {
      const c = opts.overrides?.[t];
      if (c === undefined) continue;
      const up = c.toUpperCase();
      if (!(AWS_CLASSES as readonly string[]).includes(up)) {
        throw new DitsUserError('bad-config', `dits.tier.class.${t} = ${c} is not an AWS storage class`, {
          hint: `use one of ${AWS_CLASSES.join(', ')}`,
        });
      }
      classes[t] = up;
    }
    if (classes.hot !== 'STANDARD') {
      throw new DitsUserError('bad-config', `the hot tier must be STANDARD (got ${classes.hot})`, {
        hint: 'manifests, git data and proxies live in STANDARD; unset dits.tier.class.hot',
      });
    }
    return { name, classes, archive: new Set(['GLACIER', 'DEEP_ARCHIVE']), known: AWS_CLASSES };
  }
  if (name === 'folder') {
    return { name, classes: FOLDER_CLASSES, archive: new Set(opts.archiveTiers ?? []), known: TIERS };
  }
  return { name, classes: null, archive: new Set(), known: [DEFAULT_CLASS], note: SINGLE_CLASS[name] };
}

/** The provider an S3 endpoint belongs to: none given (AWS itself) or a known host. */
export function detectProvider(endpoint: string | undefined): ProviderName {
  if (endpoint === undefined || endpoint === '') return 'aws';
  let host: string;
  try {
    host = new URL(endpoint).hostname.toLowerCase();
  } catch {
    return 'generic';
  }
  if (host.endsWith('.amazonaws.com')) return 'aws';
  if (host.endsWith('.backblazeb2.com')) return 'b2';
  if (host.endsWith('.r2.cloudflarestorage.com')) return 'r2';
  if (host.endsWith('.wasabisys.com')) return 'wasabi';
  return 'generic';
}

export function isProviderName(s: string): s is ProviderName {
  return ['aws', 'b2', 'r2', 'wasabi', 'folder', 'generic'].includes(s);
}

/**
 * The tier a class stands for under `profile`: the coldest tier mapped to it (so with
 * cold = deep = DEEP_ARCHIVE an object there counts as deep). A class the map does not
 * name (set by hand, or GLACIER while cold is GLACIER_IR) counts by AWS's order.
 */
export function tierOfClass(profile: ProviderProfile, storageClass: string | undefined): Tier {
  const cls = storageClass === undefined || storageClass === '' ? DEFAULT_CLASS : storageClass;
  if (profile.classes === null) return 'hot';
  let found: Tier | null = null;
  for (const t of TIERS) if (profile.classes[t] === cls) found = t;
  if (found !== null) return found;
  switch (cls) {
    case 'STANDARD':
    case 'REDUCED_REDUNDANCY':
    case 'INTELLIGENT_TIERING':
      return 'hot';
    case 'STANDARD_IA':
    case 'ONEZONE_IA':
      return 'warm';
    case 'GLACIER_IR':
    case 'GLACIER':
      return 'cold';
    case 'DEEP_ARCHIVE':
      return 'deep';
    default:
      return 'hot';
  }
}

/** True when objects of this class need a restore before they can be read. */
export function needsRestore(profile: ProviderProfile, storageClass: string | undefined): boolean {
  return storageClass !== undefined && profile.archive.has(storageClass);
}
