/**
 * Who is using the store: one row per process that writes to it (or dedups against it),
 * and one per pack being written, in the store's SQLite (tables: store-db.ts):
 *
 *   store_writers(id, kind, pid, host, proc_start, since, ended_at)
 *       kind 'write': a process that stores content or looks up what is stored to skip
 *       storing it (from its first such call until its store is closed: ended_at);
 *       kind 'gc': a running gc (one at a time).
 *   pack_writers(pack, writer)
 *       a pack being appended to, until its writer closes it with every row committed
 *       ("sealed"). A row left behind (the writer died, or gave up after a failed write)
 *       marks a partial pack: bytes past its last indexed chunk belong to nobody.
 *
 * The rows are written in SQLite transactions, so gc, which checks them in the same write
 * transaction in which it deletes index rows, either sees a writer or runs entirely before
 * that writer's first lookup (see gc.ts).
 *
 * A writer is alive while its process is: same host, the pid answers signal 0, and the
 * process started when the row says (/proc/<pid>/stat, so a reused pid is not taken for
 * it). A row from another host is taken as alive: nothing here can tell.
 */
import fs from 'node:fs';
import os from 'node:os';

export interface WriterLease {
  id: number;
  kind: 'write' | 'gc';
  pid: number;
  host: string;
  procStart: string | null;
  since: number;
  endedAt: number | null;
}

/** The kernel's start time of a process (clock ticks since boot), or null where there is no /proc. */
export function processStartToken(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: count from the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null; // field 22 overall: starttime
  } catch {
    return null;
  }
}

let ownToken: string | null | undefined;

/** This process's identity for a lease row. */
export function ownIdentity(): { pid: number; host: string; procStart: string | null } {
  if (ownToken === undefined) ownToken = processStartToken(process.pid);
  return { pid: process.pid, host: os.hostname(), procStart: ownToken };
}

/** Whether the process that took `lease` may still be running (see the file comment). */
export function leaseProcessAlive(lease: Pick<WriterLease, 'pid' | 'host' | 'procStart'>): boolean {
  if (lease.host !== os.hostname()) return true;
  try {
    process.kill(lease.pid, 0);
  } catch (err) {
    if ((err as { code?: string }).code === 'ESRCH') return false;
    // EPERM: it exists, owned by someone else
  }
  if (lease.procStart !== null) {
    const now = processStartToken(lease.pid);
    if (now !== null && now !== lease.procStart) return false; // the pid was reused
  }
  return true;
}

type Db = import('better-sqlite3').Database;

/** Records this process as a writer (or gc); returns the row id. */
export function takeLease(db: Db, kind: 'write' | 'gc'): number {
  const me = ownIdentity();
  return Number(
    db.prepare('INSERT INTO store_writers(kind, pid, host, proc_start, since) VALUES (?, ?, ?, ?, ?)').run(kind, me.pid, me.host, me.procStart, Date.now()).lastInsertRowid,
  );
}

/**
 * Ends a lease: the row goes, unless a gc is running, which must learn that this writer
 * ended while it listed what is reachable (the row then stays, with ended_at, until a gc
 * that began after it removes it).
 */
export function endLease(db: Db, id: number): void {
  db.transaction(() => {
    const gcRunning = db.prepare(`SELECT EXISTS(SELECT 1 FROM store_writers WHERE kind = 'gc' AND ended_at IS NULL AND id != ?)`).pluck().get(id) === 1;
    if (gcRunning) db.prepare('UPDATE store_writers SET ended_at = ? WHERE id = ? AND ended_at IS NULL').run(Date.now(), id);
    else db.prepare('DELETE FROM store_writers WHERE id = ?').run(id);
  }).immediate();
}

/** Removes a lease row (gc: of a writer or gc that is gone). */
export function dropLease(db: Db, id: number): void {
  db.prepare('DELETE FROM store_writers WHERE id = ?').run(id);
}

export function listLeases(db: Db): WriterLease[] {
  return (
    db.prepare('SELECT id, kind, pid, host, proc_start AS procStart, since, ended_at AS endedAt FROM store_writers').all() as WriterLease[]
  );
}

/** Packs being written (or left partial), with their writer's row. */
export function listPackWriters(db: Db): Map<number, number> {
  const rows = db.prepare('SELECT pack, writer FROM pack_writers').all() as { pack: number; writer: number }[];
  return new Map(rows.map((r) => [r.pack, r.writer]));
}
