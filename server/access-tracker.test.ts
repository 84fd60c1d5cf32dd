import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAccessTracker, type TrackerTimers } from './access-tracker.js';
import { createRepo, deleteRepo, serverStatus } from './admin.js';
import { openServerDb, type ServerDb } from './db.js';

/** Timers the test fires by hand. */
function manualTimers() {
  const intervals: { fn: () => void; ms: number; cleared: boolean }[] = [];
  const deferred: (() => void)[] = [];
  const timers: TrackerTimers = {
    setInterval(fn, ms) {
      const h = { fn, ms, cleared: false };
      intervals.push(h);
      return h;
    },
    clearInterval(h) {
      (h as { cleared: boolean }).cleared = true;
    },
    defer(fn) {
      deferred.push(fn);
    },
  };
  return {
    timers,
    intervals,
    deferred,
    tick() {
      for (const i of intervals) if (!i.cleared) i.fn();
    },
    runDeferred() {
      for (const fn of deferred.splice(0)) fn();
    },
  };
}

let db: ServerDb;
let now: Date;
const rows = () => db.stmt('SELECT r.name AS repo, kind, object_id, last_read_at, read_count FROM access JOIN repos r ON r.id = repo_id ORDER BY r.name, kind, object_id').all();

beforeEach(() => {
  db = openServerDb(':memory:');
  now = new Date('2026-05-01T00:00:00.000Z');
  createRepo(db, 'team/film');
  createRepo(db, 'team/doc');
});
afterEach(() => db.close());

describe('access tracker', () => {
  it('buffers reads in memory and writes them on the timer, merged per object', () => {
    const t = manualTimers();
    const tracker = createAccessTracker(db, { clock: () => now, flushIntervalMs: 1234, timers: t.timers });
    expect(t.intervals[0]!.ms).toBe(1234);
    tracker.recordAccess('team/film', 'pack', 'p1');
    tracker.recordAccess('team/film', 'pack', 'p1');
    now = new Date('2026-05-01T00:00:09.000Z');
    tracker.recordAccess('team/film', 'pack', 'p1');
    tracker.recordAccess('team/film', 'file', 'f1');
    tracker.recordAccess('team/doc', 'pack', 'p1');
    expect(rows()).toEqual([]);
    expect(tracker.pending).toBe(3);

    t.tick();
    expect(tracker.pending).toBe(0);
    expect(rows()).toEqual([
      { repo: 'team/doc', kind: 'pack', object_id: 'p1', last_read_at: '2026-05-01T00:00:09.000Z', read_count: 1 },
      { repo: 'team/film', kind: 'file', object_id: 'f1', last_read_at: '2026-05-01T00:00:09.000Z', read_count: 1 },
      { repo: 'team/film', kind: 'pack', object_id: 'p1', last_read_at: '2026-05-01T00:00:09.000Z', read_count: 3 },
    ]);

    // a later batch adds to the count and moves last_read_at forward, never back
    now = new Date('2026-05-02T00:00:00.000Z');
    tracker.recordAccess('team/film', 'pack', 'p1');
    t.tick();
    expect(rows()).toContainEqual({ repo: 'team/film', kind: 'pack', object_id: 'p1', last_read_at: '2026-05-02T00:00:00.000Z', read_count: 4 });
    tracker.close();
  });

  it('flushes when the buffer reaches its size threshold, deferred out of the caller', () => {
    const t = manualTimers();
    const tracker = createAccessTracker(db, { clock: () => now, maxPending: 3, timers: t.timers });
    tracker.recordAccess('team/film', 'pack', 'a');
    tracker.recordAccess('team/film', 'pack', 'b');
    expect(t.deferred).toHaveLength(0);
    tracker.recordAccess('team/film', 'pack', 'c');
    tracker.recordAccess('team/film', 'pack', 'd');
    expect(t.deferred).toHaveLength(1); // scheduled once
    expect(rows()).toHaveLength(0); // not inside recordAccess
    t.runDeferred();
    expect(rows()).toHaveLength(4);
    expect(tracker.pending).toBe(0);
    tracker.close();
  });

  it('flushes on close, stops its timer and ignores later reads', () => {
    const t = manualTimers();
    const tracker = createAccessTracker(db, { clock: () => now, timers: t.timers });
    tracker.recordAccess('team/film', 'file', 'x');
    tracker.close();
    expect(t.intervals[0]!.cleared).toBe(true);
    expect(rows()).toHaveLength(1);
    tracker.recordAccess('team/film', 'file', 'y');
    expect(tracker.pending).toBe(0);
    expect(serverStatus(db).repos.find((r) => r.name === 'team/film')).toMatchObject({ trackedObjects: 1, lastReadAt: now.toISOString() });
  });

  it('drops reads of deleted repositories and keeps a failed batch for the next try', () => {
    const t = manualTimers();
    const errors: unknown[] = [];
    const tracker = createAccessTracker(db, { clock: () => now, timers: t.timers, onError: (e) => errors.push(e) });
    tracker.recordAccess('team/doc', 'file', 'gone');
    deleteRepo(db, 'team/doc');
    tracker.recordAccess('team/film', 'file', 'kept');
    // make the write fail once: another connection would hold the lock; here, a trigger
    db.sqlite.exec(`CREATE TEMP TRIGGER fail BEFORE INSERT ON access BEGIN SELECT RAISE(ABORT, 'disk full'); END`);
    t.tick();
    expect(errors).toHaveLength(1);
    expect(tracker.pending).toBe(2);
    db.sqlite.exec('DROP TRIGGER fail');
    tracker.recordAccess('team/film', 'file', 'kept');
    t.tick();
    expect(rows()).toEqual([{ repo: 'team/film', kind: 'file', object_id: 'kept', last_read_at: now.toISOString(), read_count: 2 }]);
    tracker.close();
  });
});
