import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRepo } from './admin.js';
import { openServerDb, type ServerDb } from './db.js';
import { silentLogger } from './logger.js';
import { dueDay, parseScheduleTime, startTierScheduler, type TierScheduler } from './tier-scheduler.js';

let db: ServerDb;
let now: Date;
let reaped: string[];
let sched: TierScheduler | null;
const start = (reap: (repo: string, signal: AbortSignal) => Promise<unknown> = async (r) => void reaped.push(r)) => {
  sched = startTierScheduler(db, { at: '03:00', clock: () => now, checkEveryMs: 3_600_000, reap, logger: silentLogger });
  return sched;
};

beforeEach(() => {
  db = openServerDb(':memory:');
  now = new Date(Date.UTC(2026, 11, 6, 2, 59));
  reaped = [];
  sched = null;
  createRepo(db, 'team/film');
  createRepo(db, 'team/doc');
});
afterEach(async () => {
  await sched?.stop();
  db.close();
});

describe('the reaper schedule', () => {
  it('parses HH:MM and off, refuses anything else', () => {
    expect(parseScheduleTime('03:00')).toEqual({ hour: 3, minute: 0 });
    expect(parseScheduleTime('23:59')).toEqual({ hour: 23, minute: 59 });
    expect(parseScheduleTime('off')).toBeNull();
    expect(() => parseScheduleTime('25:00')).toThrow(/HH:MM/);
    expect(() => parseScheduleTime('nightly')).toThrow(/HH:MM/);
  });

  it('a round is due from its time until the next day at that time', () => {
    const t = { hour: 3, minute: 0 };
    expect(dueDay(new Date(Date.UTC(2026, 11, 6, 2, 59)), t)).toBe('2026-12-05');
    expect(dueDay(new Date(Date.UTC(2026, 11, 6, 3, 0)), t)).toBe('2026-12-06');
    expect(dueDay(new Date(Date.UTC(2027, 0, 1, 1, 0)), t)).toBe('2026-12-31');
  });

  it('runs every repository once a night, never twice for a day, and catches up after downtime', async () => {
    const s = start();
    // a new server: nothing at start-up, the first round is the next 03:00
    await s.tick();
    expect(reaped).toEqual([]);
    now = new Date(Date.UTC(2026, 11, 6, 2, 59, 59));
    await s.tick();
    expect(reaped).toEqual([]);
    now = new Date(Date.UTC(2026, 11, 6, 3, 0, 1));
    await s.tick();
    await s.tick();
    expect(reaped.sort()).toEqual(['team/doc', 'team/film']);
    // a restart the same night remembers the round (settings table)
    await s.stop();
    reaped = [];
    const again = start();
    await again.tick();
    expect(reaped).toEqual([]);
    // a clock set back a day repeats nothing
    now = new Date(Date.UTC(2026, 11, 5, 4, 0));
    await again.tick();
    expect(reaped).toEqual([]);
  });

  it('a failing repository does not stop the others, and the round still completes', async () => {
    const s = start(async (r) => {
      if (r === 'team/doc') throw new Error('S3 down');
      reaped.push(r);
    });
    await s.tick();
    now = new Date(Date.UTC(2026, 11, 6, 3, 0));
    await s.tick();
    expect(reaped).toEqual(['team/film']);
    expect((db.stmt("SELECT value FROM settings WHERE key = 'tier.lastRound'").get() as { value: string }).value).toBe('2026-12-06');
  });

  it('stopped midway, the day stays undone so the next start runs it', async () => {
    let release!: () => void;
    const s = start(
      (r, signal) =>
        new Promise((resolve, reject) => {
          reaped.push(r);
          release = () => resolve(undefined);
          signal.addEventListener('abort', () => reject(new Error('aborted')));
        }),
    );
    await s.tick();
    now = new Date(Date.UTC(2026, 11, 6, 3, 0));
    const round = s.tick();
    await new Promise((r) => setImmediate(r));
    expect(reaped).toHaveLength(1);
    await s.stop();
    await round;
    expect((db.stmt("SELECT value FROM settings WHERE key = 'tier.lastRound'").get() as { value: string }).value).toBe('2026-12-05');
    void release;
  });

  it('off schedules nothing', async () => {
    sched = startTierScheduler(db, { at: 'off', clock: () => now, reap: async (r) => void reaped.push(r), logger: silentLogger });
    await sched.tick();
    expect(reaped).toEqual([]);
  });
});
