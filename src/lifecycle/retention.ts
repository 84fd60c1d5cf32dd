/**
 * Which snapshots a retention policy keeps: restic's `forget` semantics, as a pure plan.
 *
 * Snapshots are taken newest first (by their recorded time). For each rule with a count
 * left (hourly, daily, weekly, monthly), a snapshot whose bucket (its hour, day, ISO week,
 * month) differs from the bucket of the last snapshot that rule kept is kept, and the
 * rule's count goes down by one. So the newest snapshot of each bucket is kept, and only
 * buckets that hold a snapshot count: 24 hourly means the 24 latest hours that have a
 * snapshot, not the last 24 hours of the clock. Buckets are in UTC, so the answer does
 * not depend on the machine's time zone.
 *
 * Clocks that disagree: the order is the recorded time, so a snapshot "from the future"
 * is the newest and is kept by every rule; on top of restic, the last snapshot taken (the
 * highest sequence number, whatever its clock said) is always kept, so a wrong clock on
 * one machine can never make prune delete the work just saved.
 */

export interface RetentionPolicy {
  hourly: number;
  daily: number;
  weekly: number;
  monthly: number;
}

/** The seed's numbers (restic's usual ones). */
export const DEFAULT_RETENTION: RetentionPolicy = { hourly: 24, daily: 7, weekly: 4, monthly: 12 };

export interface RetentionItem {
  id: string;
  /** Recorded time, milliseconds since the epoch. */
  time: number;
  /** Order of taking (higher: taken later); ties are broken by time, then id. */
  seq: number;
}

export type KeepReason = 'hourly' | 'daily' | 'weekly' | 'monthly' | 'last taken';

export interface RetentionPlan<T extends RetentionItem> {
  keep: { item: T; reasons: KeepReason[] }[];
  remove: T[];
}

/** ISO 8601 week of a UTC date, as year * 100 + week (the week's year may differ from the date's). */
export function isoWeek(ms: number): number {
  const d = new Date(ms);
  const day = (d.getUTCDay() + 6) % 7; // Monday 0
  const thursday = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - day + 3);
  const year = new Date(thursday).getUTCFullYear();
  const week = 1 + Math.floor((thursday - Date.UTC(year, 0, 1)) / (7 * 86400e3));
  return year * 100 + week;
}

const BUCKETS: Record<Exclude<KeepReason, 'last taken'>, (ms: number) => number> = {
  hourly: (ms) => Math.floor(ms / 3600e3),
  daily: (ms) => Math.floor(ms / 86400e3),
  weekly: isoWeek,
  monthly: (ms) => new Date(ms).getUTCFullYear() * 12 + new Date(ms).getUTCMonth(),
};

/** The plan for one group of snapshots (one worktree's): items in any order. */
export function planRetention<T extends RetentionItem>(items: readonly T[], policy: RetentionPolicy): RetentionPlan<T> {
  const sorted = [...items].sort((a, b) => b.time - a.time || b.seq - a.seq || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const lastTaken = [...items].sort((a, b) => b.seq - a.seq || b.time - a.time || (a.id < b.id ? 1 : -1))[0];
  const left: Record<string, number> = { ...policy };
  const lastBucket: Record<string, number | undefined> = {};
  const plan: RetentionPlan<T> = { keep: [], remove: [] };
  for (const item of sorted) {
    const reasons: KeepReason[] = [];
    for (const rule of Object.keys(BUCKETS) as (keyof typeof BUCKETS)[]) {
      if (left[rule]! <= 0) continue;
      const bucket = BUCKETS[rule](item.time);
      if (bucket === lastBucket[rule]) continue;
      lastBucket[rule] = bucket;
      left[rule]!--;
      reasons.push(rule);
    }
    if (item === lastTaken) reasons.push('last taken');
    if (reasons.length) plan.keep.push({ item, reasons });
    else plan.remove.push(item);
  }
  return plan;
}
