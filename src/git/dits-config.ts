/**
 * Dits settings from git config (repo, then global): the one typed reader of every `dits.*`
 * key. Tunables are read once per command and passed down as parameters.
 *
 * Values follow Git's own rules (git-config(1), "Values"):
 * - booleans: `true/yes/on/1` and `false/no/off/0`, any case; a key with no `=` at all means
 *   true, an empty value means false;
 * - sizes: a number with an optional k/M/G/T suffix (`64k`, `32M`, `1.5G`);
 * - integers: decimal digits, within the setting's range.
 * A value that fits none of its forms is an error naming the key and the forms accepted,
 * never a silent default (`dits.fsync yes` used to mean off, `dits.concurrency abc` 8).
 */
import { runGit } from './exec.js';
import { DitsUserError } from '../errors.js';
import { DEFAULT_CHUNKER_PARAMS, type ChunkerParams } from '../chunking/params.js';

export interface DitsSettings {
  chunker: ChunkerParams;
  /** Files up to this size go through Git's smudge pipe; larger ones are written by Dits. */
  smudgeInlineMax: number;
  /**
   * Content smudge reads ahead of Git in a checkout, at most (dits.smudgeReadAhead, bytes;
   * 0: none, every file read when Git asks for it; filter/delayed-smudge.ts).
   */
  smudgeReadAhead: number;
  /** Smaller files are not read ahead (dits.smudgeDelayMin; filter/delayed-smudge.ts). */
  smudgeDelayMin: number;
  /** The filter process starts writing big files while Git checks out (dits.earlyWrite; worktree/early-write.ts). */
  earlyWrite: boolean;
  /** Media-aware cutting for MP4/MOV. */
  mediaAware: boolean;
  /** fsync packs before indexing them (dits.fsync). */
  durable: boolean;
  /** Pack writes bypass the page cache (dits.directWrite; store/direct-appender.ts). */
  directWrite: boolean;
  /** Target size of packs sent to remotes (dits.packSize); undefined: the transfer default. */
  packSize?: number;
  /** Transfers in flight at once (dits.concurrency, default 8). */
  concurrency: number;
}

export const DEFAULT_SMUDGE_INLINE_MAX = 32 * 1024 * 1024;
/**
 * Off by default: on a quiet 2-core machine, reading 4 MiB files ahead made a checkout of
 * 200 of them slower (wall 1.28x, CPU 1.34x, six alternating pairs) and doubled the filter's
 * memory; it helped only when other work kept the cores busy.
 */
export const DEFAULT_SMUDGE_READ_AHEAD = 0;
/**
 * A delay costs Git one more request and answer per file, which pays only when reading the
 * file takes longer: measured, 200 x 4 MiB check out 1.7x faster delayed, 1,000 x 256 KiB
 * slightly slower.
 */
export const DEFAULT_SMUDGE_DELAY_MIN = 1024 * 1024;

/** "64k", "32M", "1.5G", "4096" -> bytes; null when the text is not a size. */
export function parseByteSize(v: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(v.trim());
  if (!m) return null;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.round(Number(m[1]) * mult);
}

/**
 * A git config key as Git compares it: section and name are case-insensitive, a subsection
 * (the middle of `dits.s3.pathStyle`) is not.
 */
export function canonicalKey(key: string): string {
  const first = key.indexOf('.');
  const last = key.lastIndexOf('.');
  if (first < 0) return key.toLowerCase();
  return key.slice(0, first).toLowerCase() + key.slice(first, last) + key.slice(last).toLowerCase();
}

function badValue(key: string, value: string | null, what: string, accepted: string, example: string): DitsUserError {
  const shown = value === null ? '(no value)' : `'${value}'`;
  return new DitsUserError('bad-config', `git config ${key} = ${shown} is not ${what}`, {
    hint: `${key} accepts ${accepted}: fix it with \`git config ${key} ${example}\` or remove it with \`git config --unset ${key}\``,
  });
}

export const BOOLEAN_FORMS = 'true/yes/on/1 or false/no/off/0';

/** Git's boolean rules; `null` is a key written with no `=` (true). Throws naming the key. */
export function parseConfigBool(key: string, value: string | null): boolean {
  if (value === null) return true;
  const v = value.trim().toLowerCase();
  if (v === 'true' || v === 'yes' || v === 'on' || v === '1') return true;
  if (v === 'false' || v === 'no' || v === 'off' || v === '0' || v === '') return false;
  throw badValue(key, value, 'a boolean', BOOLEAN_FORMS, 'true');
}

/** A whole number in [min, max]. */
export function parseConfigInt(key: string, value: string | null, min: number, max: number, example = min): number {
  const forms = `a whole number from ${min} to ${max}`;
  if (value === null || !/^\s*[+-]?\d+\s*$/.test(value)) throw badValue(key, value, 'a whole number', forms, String(example));
  const n = Number(value);
  if (n < min || n > max) throw badValue(key, value, `within ${min}..${max}`, forms, String(example));
  return n;
}

/** A size in bytes (k/M/G/T suffixes), at least `min`. */
export function parseConfigSize(key: string, value: string | null, min = 1): number {
  const forms = 'a number of bytes with an optional k/M/G/T suffix (e.g. 64k, 32M, 1.5G)';
  const n = value === null ? null : parseByteSize(value);
  if (n === null) throw badValue(key, value, 'a size', forms, '64k');
  if (n < min) throw badValue(key, value, `a size of at least ${min} bytes`, forms, '64k');
  return n;
}

/**
 * The `dits.*` entries of git config, read with one `git config` call. Keys are looked up as
 * Git does (case-insensitive section and name); the last value of a repeated key wins.
 */
export class DitsConfig {
  /** canonical key -> value; null for a key written with no `=`. */
  private readonly entries: Map<string, string | null>;
  /** canonical key -> every value, in config order (multi-valued keys such as dits.tier.keepHot). */
  private readonly every: Map<string, (string | null)[]>;

  constructor(entries: Iterable<[string, string | null]>) {
    this.entries = new Map();
    this.every = new Map();
    for (const [k, v] of entries) {
      const key = canonicalKey(k);
      this.entries.set(key, v);
      const all = this.every.get(key);
      if (all) all.push(v);
      else this.every.set(key, [v]);
    }
  }

  /** Parses `git config -z --get-regexp` output: `key\nvalue\0`, or `key\0` for no value. */
  static fromGitOutput(out: string): DitsConfig {
    const entries: [string, string | null][] = [];
    for (const rec of out.split('\0')) {
      if (rec === '') continue;
      const nl = rec.indexOf('\n');
      entries.push(nl < 0 ? [rec, null] : [rec.slice(0, nl), rec.slice(nl + 1)]);
    }
    return new DitsConfig(entries);
  }

  has(key: string): boolean {
    return this.entries.has(canonicalKey(key));
  }

  /** The raw value (null: no `=`), or undefined when unset. */
  raw(key: string): string | null | undefined {
    return this.entries.get(canonicalKey(key));
  }

  /** Every value of a multi-valued key, in config order (empty when unset). */
  all(key: string): (string | null)[] {
    return [...(this.every.get(canonicalKey(key)) ?? [])];
  }

  string(key: string): string | undefined {
    const v = this.raw(key);
    if (v === null) throw badValue(key, v, 'set to anything', 'a text value', '<value>');
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.raw(key);
    return v === undefined ? fallback : parseConfigBool(key, v);
  }

  int(key: string, fallback: number, range: { min: number; max: number }): number {
    const v = this.raw(key);
    return v === undefined ? fallback : parseConfigInt(key, v, range.min, range.max, fallback);
  }

  size(key: string, fallback: number, min?: number): number;
  size(key: string, fallback?: undefined): number | undefined;
  size(key: string, fallback?: number, min = 1): number | undefined {
    const v = this.raw(key);
    return v === undefined ? fallback : parseConfigSize(key, v, min);
  }

  /** One of `choices` (compared case-insensitively). */
  oneOf<T extends string>(key: string, choices: readonly T[], fallback: T): T {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    const hit = choices.find((c) => v !== null && c.toLowerCase() === v.trim().toLowerCase());
    if (hit === undefined) throw badValue(key, v, `one of ${choices.join(', ')}`, `one of ${choices.join(', ')}`, fallback);
    return hit;
  }
}

/** Every `dits.*` setting of the repository at `cwd` (and the global config). */
export async function readDitsConfig(cwd: string): Promise<DitsConfig> {
  const r = await runGit(['config', '-z', '--get-regexp', '^dits\\.'], { cwd, allowFail: true });
  return DitsConfig.fromGitOutput(r.stdout.toString('utf8'));
}

export function ditsSettingsFrom(config: DitsConfig): DitsSettings {
  return {
    chunker: {
      minSize: config.size('dits.chunkMin', DEFAULT_CHUNKER_PARAMS.minSize),
      avgSize: config.size('dits.chunkAvg', DEFAULT_CHUNKER_PARAMS.avgSize),
      maxSize: config.size('dits.chunkMax', DEFAULT_CHUNKER_PARAMS.maxSize),
    },
    smudgeInlineMax: config.size('dits.smudgeInlineMax', DEFAULT_SMUDGE_INLINE_MAX),
    smudgeReadAhead: config.size('dits.smudgeReadAhead', DEFAULT_SMUDGE_READ_AHEAD, 0),
    smudgeDelayMin: config.size('dits.smudgeDelayMin', DEFAULT_SMUDGE_DELAY_MIN, 0),
    earlyWrite: config.bool('dits.earlyWrite', true),
    mediaAware: config.bool('dits.mediaAware', true),
    durable: config.bool('dits.fsync', false),
    directWrite: config.bool('dits.directWrite', true),
    packSize: config.size('dits.packSize'),
    concurrency: config.int('dits.concurrency', 8, { min: 1, max: 64 }),
  };
}

export async function readDitsSettings(cwd: string): Promise<DitsSettings> {
  return ditsSettingsFrom(await readDitsConfig(cwd));
}
