/**
 * The tier policy of a repository: after how long without a use a pack goes warm, cold,
 * deep; what must stay hot; how long a pack waits between being marked and being moved.
 *
 * git config (all optional):
 *   dits.tier.warmAfter = 30d     dits.tier.coldAfter = 6m     dits.tier.deepAfter = 2y
 *     (durations: <n>h, <n>d, <n>w, <n>m = 30 days, <n>y = 365 days; `never` keeps a tier out)
 *   dits.tier.keepHot = <pattern> (multi-valued: a path glob, `branch:<name>`, `tag:<glob>`;
 *     default: the remote's default branch's current files)
 *   dits.tier.grace = 24h         dits.tier.mode = copy | lifecycle    dits.tier.schedule = 03:00
 */
import { DitsUserError } from '../errors.js';
import type { DitsConfig } from '../git/dits-config.js';

export interface TierPolicy {
  warmAfterDays: number;
  coldAfterDays: number;
  deepAfterDays: number;
  /** keep-hot patterns as configured; empty: the default branch's current files */
  keepHot: string[];
  graceMs: number;
  mode: 'copy' | 'lifecycle';
  /** 'HH:MM' (UTC) of the server's nightly run */
  schedule: string;
}

export const DAY_MS = 86_400_000;

export const DEFAULT_POLICY: Readonly<TierPolicy> = {
  warmAfterDays: 30,
  coldAfterDays: 180,
  deepAfterDays: 730,
  keepHot: [],
  graceMs: DAY_MS,
  mode: 'copy',
  schedule: '03:00',
};

const UNIT_MS: Record<string, number> = { s: 1000, min: 60_000, h: 3_600_000, d: DAY_MS, w: 7 * DAY_MS, m: 30 * DAY_MS, y: 365 * DAY_MS };

/** `30d`, `6m` (months of 30 days), `2y`, `12h`, `0`; `never` is Infinity. Null when unreadable. */
export function parseTierDuration(v: string): number | null {
  const s = v.trim().toLowerCase();
  if (s === 'never') return Infinity;
  if (s === '0') return 0;
  const m = /^(\d+(?:\.\d+)?)\s*(s|min|h|d|w|m|y)$/.exec(s);
  if (!m) return null;
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

function duration(config: DitsConfig, key: string, fallbackMs: number): number {
  const raw = config.raw(key);
  if (raw === undefined) return fallbackMs;
  const ms = raw === null ? null : parseTierDuration(raw);
  if (ms === null) {
    throw new DitsUserError('bad-config', `${key} = ${raw ?? '(no value)'} is not a duration`, {
      hint: `use e.g. \`git config ${key} 30d\` (h, d, w, m = 30 days, y = 365 days, or never)`,
    });
  }
  return ms;
}

/** The policy from git config; bad values are a `bad-config` user error naming the key. */
export function readTierPolicy(config: DitsConfig): TierPolicy {
  const warm = duration(config, 'dits.tier.warmAfter', DEFAULT_POLICY.warmAfterDays * DAY_MS) / DAY_MS;
  const cold = duration(config, 'dits.tier.coldAfter', DEFAULT_POLICY.coldAfterDays * DAY_MS) / DAY_MS;
  const deep = duration(config, 'dits.tier.deepAfter', DEFAULT_POLICY.deepAfterDays * DAY_MS) / DAY_MS;
  if (!(warm <= cold && cold <= deep)) {
    throw new DitsUserError('bad-config', `the tier ages must grow: warmAfter ${warm} d, coldAfter ${cold} d, deepAfter ${deep} d`, {
      hint: 'set dits.tier.warmAfter <= dits.tier.coldAfter <= dits.tier.deepAfter (e.g. 30d, 6m, 2y)',
    });
  }
  const keepHot = config
    .all('dits.tier.keepHot')
    .filter((v): v is string => v !== null)
    .map((v) => v.trim())
    .filter(Boolean);
  for (const p of keepHot) {
    if (/^(branch|tag):$/.test(p)) {
      throw new DitsUserError('bad-config', `dits.tier.keepHot = ${p} names no ${p.slice(0, -1)}`, { hint: 'e.g. `git config --add dits.tier.keepHot branch:main` or `tag:v*`' });
    }
  }
  const schedule = config.string('dits.tier.schedule') ?? DEFAULT_POLICY.schedule;
  if (!/^([01]\d|2[0-3]):[0-5]\d$/.test(schedule)) {
    throw new DitsUserError('bad-config', `dits.tier.schedule = ${schedule} is not a time of day`, { hint: 'use HH:MM in UTC, e.g. 03:00' });
  }
  return {
    warmAfterDays: warm,
    coldAfterDays: cold,
    deepAfterDays: deep,
    keepHot,
    graceMs: duration(config, 'dits.tier.grace', DEFAULT_POLICY.graceMs),
    mode: config.oneOf('dits.tier.mode', ['copy', 'lifecycle'] as const, 'copy'),
    schedule,
  };
}
