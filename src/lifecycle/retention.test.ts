import { describe, expect, it } from 'vitest';
import { isoWeek, planRetention, type RetentionItem } from './retention.js';

const H = 3600e3;
const D = 24 * H;
const T0 = Date.UTC(2026, 11, 6, 12, 30); // Sunday 2026-12-06 12:30 UTC

/** Taken in the order of their times (the oldest first), unless `seqs` says otherwise. */
function items(times: number[], seqs?: number[]): RetentionItem[] {
  const order = [...times].sort((a, b) => a - b);
  return times.map((time, i) => ({ id: `s${i}`, time, seq: seqs?.[i] ?? order.indexOf(time) + 1 }));
}

const ids = (xs: { id: string }[]): string[] => xs.map((x) => x.id).sort();

describe('planRetention (restic forget semantics)', () => {
  it('keeps the newest snapshot of each hour, counting only hours that have one', () => {
    // three per hour for five hours, one hour in the middle empty
    const times = [0, 1, 3, 4, 5].flatMap((h) => [0, 10, 20].map((m) => T0 - h * H - m * 60e3));
    const plan = planRetention(items(times), { hourly: 3, daily: 0, weekly: 0, monthly: 0 });
    // the 3 latest hours with snapshots are 0, 1 and 3 (2 is empty and does not count): newest of each
    expect(ids(plan.keep.map((k) => k.item))).toEqual(['s0', 's3', 's6']);
    expect(plan.remove).toHaveLength(12);
  });

  it('combines rules: one snapshot kept for several reasons counts for each', () => {
    const times = Array.from({ length: 10 }, (_, d) => T0 - d * D);
    const plan = planRetention(items(times), { hourly: 2, daily: 3, weekly: 0, monthly: 0 });
    const kept = new Map(plan.keep.map((k) => [k.item.id, k.reasons]));
    expect([...kept.keys()].sort()).toEqual(['s0', 's1', 's2']);
    expect(kept.get('s0')).toEqual(['hourly', 'daily', 'last taken']);
    expect(kept.get('s1')).toEqual(['hourly', 'daily']);
    expect(kept.get('s2')).toEqual(['daily']);
  });

  it('keeps weekly by ISO week and monthly by calendar month (UTC)', () => {
    const times = Array.from({ length: 90 }, (_, d) => T0 - d * D);
    const plan = planRetention(items(times), { hourly: 0, daily: 0, weekly: 4, monthly: 3 });
    const weekly = plan.keep.filter((k) => k.reasons.includes('weekly')).map((k) => new Date(k.item.time).toISOString().slice(0, 10));
    // T0 is a Sunday: the newest of each week is that week's Sunday
    expect(weekly).toEqual(['2026-12-06', '2026-11-29', '2026-11-22', '2026-11-15']);
    const monthly = plan.keep.filter((k) => k.reasons.includes('monthly')).map((k) => new Date(k.item.time).toISOString().slice(0, 10));
    expect(monthly).toEqual(['2026-12-06', '2026-11-30', '2026-10-31']);
  });

  it('a snapshot from the future is kept, and so is the last one taken whatever its clock said', () => {
    // s0..s4 hourly; s5 taken next by a machine whose clock is a year ahead; s6 taken last by one a day behind
    const times = [...Array.from({ length: 5 }, (_, h) => T0 - (4 - h) * H), T0 + 365 * D, T0 - D];
    const plan = planRetention(items(times, [1, 2, 3, 4, 5, 6, 7]), { hourly: 1, daily: 0, weekly: 0, monthly: 0 });
    const kept = new Map(plan.keep.map((k) => [k.item.id, k.reasons]));
    expect(kept.get('s5')).toEqual(['hourly']); // newest by time
    expect(kept.get('s6')).toEqual(['last taken']); // newest by taking
    expect(kept.size).toBe(2);
  });

  it('with every count 0 only the last one taken is kept; an empty list is an empty plan', () => {
    const plan = planRetention(items([T0, T0 - H, T0 - 2 * H]), { hourly: 0, daily: 0, weekly: 0, monthly: 0 });
    expect(ids(plan.keep.map((k) => k.item))).toEqual(['s0']);
    expect(planRetention([], { hourly: 1, daily: 1, weekly: 1, monthly: 1 })).toEqual({ keep: [], remove: [] });
  });

  it('isoWeek follows ISO 8601 across year ends', () => {
    expect(isoWeek(Date.UTC(2026, 0, 1))).toBe(202601); // Thursday
    expect(isoWeek(Date.UTC(2027, 0, 1))).toBe(202653); // Friday: last week of 2026
    expect(isoWeek(Date.UTC(2024, 11, 30))).toBe(202501); // Monday: first week of 2025
    expect(isoWeek(Date.UTC(2026, 11, 6))).toBe(202649); // Sunday
    expect(isoWeek(Date.UTC(2026, 11, 7))).toBe(202650); // Monday
  });
});
