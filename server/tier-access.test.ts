import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAccessTracker } from './access-tracker.js';
import { createRepo } from './admin.js';
import { openServerDb, type ServerDb } from './db.js';
import { accessEntriesOf, tierCatalogFile } from './tier-access.js';

let db: ServerDb;
beforeEach(() => {
  db = openServerDb(':memory:');
  createRepo(db, 'team/film');
  createRepo(db, 'team/doc');
});
afterEach(() => db.close());

describe('accessEntriesOf', () => {
  it("turns one repository's recorded reads into AccessEntry values, page by page", () => {
    let now = new Date('2026-05-01T00:00:00.000Z');
    const tracker = createAccessTracker(db, { clock: () => now });
    for (let i = 0; i < 25; i++) tracker.recordAccess('team/film', i % 2 ? 'pack' : 'file', `id${String(i).padStart(2, '0')}`);
    tracker.recordAccess('team/doc', 'pack', 'other');
    tracker.flush();
    now = new Date('2026-06-01T00:00:00.000Z');
    tracker.recordAccess('team/film', 'pack', 'id01');
    tracker.close();
    const entries = [...accessEntriesOf(db, 'team/film', 4)];
    expect(entries.length).toBe(25);
    expect(new Set(entries.map((e) => e.id)).size).toBe(25);
    expect(entries.find((e) => e.id === 'id01')).toEqual({ kind: 'pack', id: 'id01', at: Date.parse('2026-06-01T00:00:00.000Z') });
    expect(entries.find((e) => e.id === 'id00')).toEqual({ kind: 'file', id: 'id00', at: Date.parse('2026-05-01T00:00:00.000Z') });
    expect([...accessEntriesOf(db, 'team/doc')]).toEqual([{ kind: 'pack', id: 'other', at: Date.parse('2026-05-01T00:00:00.000Z') }]);
    expect([...accessEntriesOf(db, 'nobody/here')]).toEqual([]);
  });
});

describe('tierCatalogFile', () => {
  it('is <dataDir>/tier/<owner>/<repo>.sqlite', () => {
    expect(tierCatalogFile('/srv/dits', 'team/film')).toBe('/srv/dits/tier/team/film.sqlite');
  });
});
