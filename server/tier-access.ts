/**
 * The reads the server recorded (its `access` table, written by access-tracker.ts), as
 * the tier reaper's AccessEntry values for one repository: `runReaper(..., { access })`.
 * Read a page at a time in key order, so a repository with millions of rows is never
 * held whole and no statement stays open while the tracker writes.
 */
import path from 'node:path';
import type { AccessEntry } from '../src/tier/catalog.js';
import type { ServerDb } from './db.js';

/** Where the reaper keeps a repository's tier catalog: `<dataDir>/tier/<owner>/<repo>.sqlite`. */
export function tierCatalogFile(dataDir: string, repo: string): string {
  return `${path.join(dataDir, 'tier', ...repo.split('/'))}.sqlite`;
}

export function* accessEntriesOf(db: ServerDb, repo: string, pageSize = 10_000): Iterable<AccessEntry> {
  const repoId = (db.stmt('SELECT id FROM repos WHERE name = ?').get(repo) as { id: number } | undefined)?.id;
  if (repoId === undefined) return;
  const page = db.stmt(
    `SELECT kind, object_id, last_read_at FROM access WHERE repo_id = ? AND (kind > ? OR (kind = ? AND object_id > ?))
     ORDER BY kind, object_id LIMIT ?`,
  );
  let kind = '';
  let id = '';
  for (;;) {
    const rows = page.all(repoId, kind, kind, id, pageSize) as { kind: 'pack' | 'file'; object_id: string; last_read_at: string }[];
    for (const r of rows) {
      const at = Date.parse(r.last_read_at);
      if (Number.isFinite(at)) yield { kind: r.kind, id: r.object_id, at };
    }
    if (rows.length < pageSize) return;
    kind = rows[rows.length - 1]!.kind;
    id = rows[rows.length - 1]!.object_id;
  }
}
