/**
 * Reads recorded by the clients of a direct remote (`dits::file://`, `dits::s3://`): with no
 * Dits server in between, nobody else sees which packs and file versions are read, and the
 * reaper decides what is cold by when it was last read. (Reads through a server are
 * recorded by the server: server/access-tracker.ts.)
 *
 * Client side, per command run (AccessRecorder):
 * - `record(kind, id)` costs a Map lookup: the first read of an id in this run is queued
 *   for the journal, later ones are dropped (one time per id and run is all the reaper
 *   needs). The read path never waits: the journal lines are written after the current
 *   tick, in the background.
 * - The journal: one file per process under `.git/dits/tier/access/<remote>/`, appended a
 *   batch (one tick's reads) at a time, named `<pid>-<random>.open` while its process
 *   writes it and `.closed` once closed. A written line is in the kernel's cache: a killed
 *   process loses nothing, at worst it is sent late. fdatasync (for a machine that loses
 *   power) runs at most once every FSYNC_INTERVAL_MS and at close (one per batch would be
 *   hundreds of syncs in a large fetch, each taking a thread the fetch's own I/O uses).
 * - `flush(storage)`: closes this process's journal, claims every finished journal of the
 *   remote (its own, those of earlier runs, those left by crashed processes: `.open` whose
 *   process is gone) by renaming it to `<pid>-<random>.sending` (a rename: two flushers
 *   never claim the same file), uploads ONE record object `v1/access/<yyyymmdd>/<16 hex>.json`
 *   with everything claimed, and only then deletes the claimed files. A failed upload
 *   releases them (`.closed` again); a flusher killed midway leaves `.sending` files that
 *   the next flush takes once their process is gone (a record sent twice folds to the same).
 *
 * Remote side: `readAccessRecords` yields every entry of the records and of the compacted
 * summary, 16 shards `v1/access/summary/<first hex digit of the id>.json` (so no one object
 * holds every id ever read: a million packs make shards of a few MB); `compactAccessRecords`
 * folds records older than a while into the shards with a compare-and-swap (putIf) and
 * deletes a record only after the shards holding it were written, so two compactors at once
 * lose nothing (the loser of a CAS reads the winner's shard and folds again; folding is a
 * max per id).
 *
 * Record object: `{ v: 1, client, at, packs: { <packId>: <ms> }, files: { <manifestId>: <ms> } }`.
 * Summary: `{ v: 1, at, packs, files }` (the latest read of every id ever recorded).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { hashHex } from '../hashing/blake3.js';
import type { ObjectStorage } from '../transfer/object-storage.js';

// One read: a pack (`v1/packs/<id>.pack`) or a file version (manifest id), at ms since epoch (catalog.ts owns it).
import type { AccessEntry } from './catalog.js';
import { processAlive } from '../process-alive.js';
export type { AccessEntry };

export type AccessKind = AccessEntry['kind'];

/** What the read paths call: must return at once and never throw. */
export interface AccessSink {
  record(kind: AccessKind, id: string): void;
}

export const ACCESS_PREFIX = 'v1/access/';
/** Summary shards `v1/access/summary/<0-f>.json`, by the first hex digit of the id. */
export const ACCESS_SUMMARY_PREFIX = 'v1/access/summary/';

const ID = /^[0-9a-f]{64}$/;
const JOURNAL_OPEN = '.open';
const JOURNAL_CLOSED = '.closed';
const JOURNAL_SENDING = '.sending';
/** Least time between two fdatasyncs of a journal while it is written. */
const FSYNC_INTERVAL_MS = 1000;

export interface AccessRecord {
  v: 1;
  client: string;
  at: number;
  packs: Record<string, number>;
  files: Record<string, number>;
}

/** `v1/access/<yyyymmdd>/<16 hex>.json` for a record written at `at` (UTC day). */
export function accessRecordKey(at: number, random = randomBytes(8).toString('hex')): string {
  const d = new Date(at);
  const day = `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}${String(d.getUTCDate()).padStart(2, '0')}`;
  return `${ACCESS_PREFIX}${day}/${random}.json`;
}

const RECORD_KEY = /^v1\/access\/\d{8}\/[0-9a-f]{16}\.json$/;

export function isAccessRecordKey(key: string): boolean {
  return RECORD_KEY.test(key);
}

/** The journal folder of the remote at `location` (a hash of it: a remote renamed or re-pointed keeps apart). */
export function journalDir(ditsDir: string, location: string): string {
  return path.join(ditsDir, 'tier', 'access', hashHex(Buffer.from(location, 'utf8')).slice(0, 16));
}

/** Parses journal text: `p <id> <ms>` / `f <id> <ms>` lines; a torn or foreign line is skipped. */
export function parseJournal(text: string, into: { packs: Map<string, number>; files: Map<string, number> }): void {
  for (const line of text.split('\n')) {
    const [k, id, ms] = line.split(' ');
    if ((k !== 'p' && k !== 'f') || id === undefined || !ID.test(id) || ms === undefined || !/^\d{1,15}$/.test(ms)) continue;
    const map = k === 'p' ? into.packs : into.files;
    const at = Number(ms);
    if ((map.get(id) ?? -1) < at) map.set(id, at);
  }
}

export interface AccessRecorderOptions {
  /** ms since epoch (tests set it) */
  clock?: () => number;
  /** the client id written into records (default: one kept in .git/dits/tier/client-id) */
  client?: string;
}

export interface FlushResult {
  /** the record object written, null when there was nothing to send */
  key: string | null;
  packs: number;
  files: number;
  /** journals sent (this run's and those of earlier runs or crashed processes) */
  journals: number;
}

export class AccessRecorder implements AccessSink {
  private readonly seen = new Map<string, number>();
  private lines: string[] = [];
  private scheduled = false;
  private fd: number | null = null;
  private file: string | null = null;
  /** the chain of background journal writes (each waits for the one before) */
  private writing: Promise<void> = Promise.resolve();
  private closed = false;
  private lastSync = 0;
  private writeError: unknown = null;
  private readonly clock: () => number;

  private constructor(
    readonly dir: string,
    private readonly ditsDir: string,
    private readonly opts: AccessRecorderOptions,
  ) {
    this.clock = opts.clock ?? Date.now;
  }

  /** A recorder for reads of the remote at `location` (its journal under `ditsDir`). */
  static open(ditsDir: string, location: string, opts: AccessRecorderOptions = {}): AccessRecorder {
    return new AccessRecorder(journalDir(ditsDir, location), ditsDir, opts);
  }

  /** Distinct reads recorded by this process so far. */
  get count(): number {
    return this.seen.size;
  }

  record(kind: AccessKind, id: string): void {
    if (this.closed) return;
    const key = kind === 'pack' ? `p ${id}` : `f ${id}`;
    if (this.seen.has(key)) return;
    const at = this.clock();
    this.seen.set(key, at);
    this.lines.push(`${key} ${at}\n`);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.writeBatch());
    }
  }

  private writeBatch(): void {
    this.scheduled = false;
    if (this.lines.length === 0) return;
    const text = this.lines.join('');
    this.lines = [];
    this.writing = this.writing.then(() => this.append(text)).catch((err: unknown) => {
      // kept for close(): the reads stay in `seen` and go into the record directly
      this.writeError ??= err;
    });
  }

  private async append(text: string): Promise<void> {
    if (this.fd === null) {
      await fs.promises.mkdir(this.dir, { recursive: true });
      this.file = path.join(this.dir, `${process.pid}-${randomBytes(6).toString('hex')}${JOURNAL_OPEN}`);
      this.fd = fs.openSync(this.file, 'a');
    }
    const fd = this.fd;
    const buf = Buffer.from(text, 'utf8');
    await new Promise<void>((resolve, reject) => fs.write(fd, buf, 0, buf.length, null, (err) => (err ? reject(err) : resolve())));
    const now = Date.now();
    if (now - this.lastSync >= FSYNC_INTERVAL_MS) {
      this.lastSync = now;
      await this.sync(fd);
    }
  }

  private sync(fd: number): Promise<void> {
    return new Promise<void>((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
  }

  /** Writes what is queued and closes this process's journal (renamed `.closed`). Records made later are ignored. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.writeBatch();
    await this.writing;
    if (this.fd !== null) {
      await this.sync(this.fd).catch((err: unknown) => {
        this.writeError ??= err;
      });
      fs.closeSync(this.fd);
      this.fd = null;
      const done = this.file!.slice(0, -JOURNAL_OPEN.length) + JOURNAL_CLOSED;
      fs.renameSync(this.file!, done);
      this.file = done;
    }
  }

  /**
   * Sends everything journalled for this remote (this run's reads and any left by earlier
   * runs) as one record object, then deletes the journals sent. Throws when the upload
   * fails (the journals stay for the next flush).
   */
  async flush(storage: ObjectStorage): Promise<FlushResult> {
    await this.close();
    const claimed = claimJournals(this.dir);
    const entries = { packs: new Map<string, number>(), files: new Map<string, number>() };
    for (const f of claimed) {
      try {
        parseJournal(fs.readFileSync(f, 'utf8'), entries);
      } catch {
        // gone meanwhile (another flusher finished it): nothing to add
      }
    }
    if (this.writeError !== null) {
      // the journal could not be written (disk full?): send this run's reads straight away
      for (const [key, at] of this.seen) {
        const [k, id] = key.split(' ') as [string, string];
        const map = k === 'p' ? entries.packs : entries.files;
        if ((map.get(id) ?? -1) < at) map.set(id, at);
      }
      this.writeError = null;
    }
    const result: FlushResult = { key: null, packs: entries.packs.size, files: entries.files.size, journals: claimed.length };
    if (entries.packs.size + entries.files.size > 0) {
      const at = this.clock();
      const rec: AccessRecord = { v: 1, client: this.opts.client ?? clientId(this.ditsDir), at, packs: Object.fromEntries(entries.packs), files: Object.fromEntries(entries.files) };
      const key = accessRecordKey(at);
      try {
        await storage.put(key, Buffer.from(JSON.stringify(rec)), { contentType: 'application/json' });
      } catch (err) {
        // released for the next flush (this process's or any other's)
        for (const f of claimed) {
          try {
            fs.renameSync(f, f.slice(0, -JOURNAL_SENDING.length) + JOURNAL_CLOSED);
          } catch {
            // gone: nothing to release
          }
        }
        throw err;
      }
      result.key = key;
    }
    for (const f of claimed) fs.rmSync(f, { force: true });
    return result;
  }
}

/**
 * Renames every journal of `dir` that no live process writes or sends to a `.sending` name
 * of this process; returns the claimed paths. A rename is atomic: of two flushers, one wins
 * each file.
 */
function claimJournals(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const name of names) {
    const pid = Number(name.split('-')[0]);
    const takeable =
      name.endsWith(JOURNAL_CLOSED) ||
      ((name.endsWith(JOURNAL_OPEN) || name.endsWith(JOURNAL_SENDING)) && pid !== process.pid && !processAlive(pid));
    if (!takeable) continue;
    const to = path.join(dir, `${process.pid}-${randomBytes(6).toString('hex')}${JOURNAL_SENDING}`);
    try {
      fs.renameSync(path.join(dir, name), to);
      out.push(to);
    } catch {
      // another flusher took it
    }
  }
  return out;
}

/** This clone's client id (16 hex, made once): tells records of different machines apart. */
export function clientId(ditsDir: string): string {
  const file = path.join(ditsDir, 'tier', 'client-id');
  try {
    const id = fs.readFileSync(file, 'utf8').trim();
    if (/^[0-9a-f]{16}$/.test(id)) return id;
  } catch {
    // none yet
  }
  const id = randomBytes(8).toString('hex');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${id}\n`);
  return id;
}

/** A record or summary body; null when it is not one (ignored by readers, kept by compaction). */
export function parseAccessRecord(bytes: Buffer): { at: number; packs: Record<string, number>; files: Record<string, number> } | null {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
  const r = raw as Partial<AccessRecord>;
  if (typeof r !== 'object' || r === null || r.v !== 1 || typeof r.at !== 'number') return null;
  const clean = (o: unknown): Record<string, number> => {
    const out: Record<string, number> = {};
    if (typeof o !== 'object' || o === null) return out;
    for (const [id, at] of Object.entries(o)) if (ID.test(id) && typeof at === 'number' && Number.isFinite(at)) out[id] = at;
    return out;
  };
  return { at: r.at, packs: clean(r.packs), files: clean(r.files) };
}

function* entriesOf(rec: { packs: Record<string, number>; files: Record<string, number> }): Iterable<AccessEntry> {
  for (const [id, at] of Object.entries(rec.packs)) yield { kind: 'pack', id, at };
  for (const [id, at] of Object.entries(rec.files)) yield { kind: 'file', id, at };
}

/** The summary shard holding an id: its first hex digit (16 shards, each about 1/16 of every id ever read). */
export function summaryKey(shard: string): string {
  return `${ACCESS_SUMMARY_PREFIX}${shard}.json`;
}

const SHARDS = '0123456789abcdef'.split('');

/**
 * Every read recorded on the remote: the records, then the summary shards. In that order so
 * a compaction running meanwhile loses nothing for this reader: a record it cannot read any
 * more was deleted after the summary shards holding it were written, and those are read
 * last. An id may come more than once (take the latest `at`). Memory: one object at a time.
 */
export async function* readAccessRecords(storage: ObjectStorage): AsyncIterable<AccessEntry> {
  const keys: string[] = [];
  for await (const o of storage.list(ACCESS_PREFIX)) if (isAccessRecordKey(o.key)) keys.push(o.key);
  for (const key of keys) {
    let bytes: Buffer;
    try {
      bytes = await storage.getBuffer(key);
    } catch (err) {
      if ((err as { code?: string }).code === 'storage-not-found') continue; // folded and deleted meanwhile
      throw err;
    }
    const rec = parseAccessRecord(bytes);
    if (rec) yield* entriesOf(rec);
  }
  for (const shard of SHARDS) {
    const summary = await storage.getVersioned(summaryKey(shard));
    const rec = summary ? parseAccessRecord(summary.body) : null;
    if (rec) yield* entriesOf(rec);
  }
}

export interface CompactResult {
  /** records folded into the summary */
  folded: number;
  /** records deleted (folded ones; fewer only if some were deleted by another compactor) */
  deleted: number;
  /** compare-and-swap attempts lost to another writer of a summary shard */
  conflicts: number;
}

/**
 * Folds the records written more than `olderThanMs` ago into the summary shards, one shard at
 * a time (putIf CAS; a lost race reads that shard again and folds again: folding is a max
 * per id), then deletes them. A record is deleted only after every shard holding its
 * entries was written; a record that does not parse is left alone. Memory: the old records'
 * entries and one shard.
 */
export async function compactAccessRecords(
  storage: ObjectStorage,
  opts: { olderThanMs: number; now?: number; maxAttempts?: number },
): Promise<CompactResult> {
  const now = opts.now ?? Date.now();
  const maxAttempts = opts.maxAttempts ?? 8;
  let conflicts = 0;
  // the old records' entries, by shard
  const byShard = new Map<string, { packs: [string, number][]; files: [string, number][] }>();
  const folded: string[] = [];
  for await (const o of storage.list(ACCESS_PREFIX)) {
    if (!isAccessRecordKey(o.key)) continue;
    let bytes: Buffer;
    try {
      bytes = await storage.getBuffer(o.key);
    } catch (err) {
      if ((err as { code?: string }).code === 'storage-not-found') continue; // another compactor folded it
      throw err;
    }
    const rec = parseAccessRecord(bytes);
    if (!rec || now - rec.at < opts.olderThanMs) continue;
    for (const kind of ['packs', 'files'] as const) {
      for (const [id, at] of Object.entries(rec[kind])) {
        let s = byShard.get(id[0]!);
        if (!s) byShard.set(id[0]!, (s = { packs: [], files: [] }));
        s[kind].push([id, at]);
      }
    }
    folded.push(o.key);
  }
  if (folded.length === 0) return { folded: 0, deleted: 0, conflicts };
  for (const [shard, add] of byShard) {
    for (let attempt = 1; ; attempt++) {
      const current = await storage.getVersioned(summaryKey(shard));
      const base = current ? parseAccessRecord(current.body) : null;
      const packs = new Map(Object.entries(base?.packs ?? {}));
      const files = new Map(Object.entries(base?.files ?? {}));
      for (const [id, at] of add.packs) if ((packs.get(id) ?? -1) < at) packs.set(id, at);
      for (const [id, at] of add.files) if ((files.get(id) ?? -1) < at) files.set(id, at);
      const body = Buffer.from(JSON.stringify({ v: 1, at: now, packs: Object.fromEntries(packs), files: Object.fromEntries(files) }));
      const r = await storage.putIf(summaryKey(shard), body, current ? { etag: current.etag } : 'absent');
      if (r.ok) break;
      conflicts++;
      if (attempt >= maxAttempts) throw new Error(`the access summary ${summaryKey(shard)} on ${storage.location} kept changing (${attempt} attempts): try again`);
    }
  }
  // only now is every folded record held by the summary: delete them
  let deleted = 0;
  for (const key of folded) {
    await storage.delete(key);
    deleted++;
  }
  return { folded: folded.length, deleted, conflicts };
}

/**
 * The recorder for reads of a remote, or null when nothing is to be recorded here: a remote
 * through a Dits server (`https://`, `http://`: the server records what it hands out), or
 * `dits.tier.recordAccess = false`.
 */
export function accessRecorderFor(ditsDir: string, url: string, location: string, config: { bool(key: string, dflt: boolean): boolean }): AccessRecorder | null {
  if (/^https?:\/\//i.test(url)) return null;
  if (!config.bool('dits.tier.recordAccess', true)) return null;
  return AccessRecorder.open(ditsDir, location);
}

/**
 * Longest a command waits at its end for its access record to go up. A healthy PUT of a few
 * KiB takes well under a second; past this the command ends anyway and the journal, claimed
 * by a process that is then gone, is sent by the next flush.
 */
export const ACCESS_SEND_WAIT_MS = 3000;

/** Waits for `sent` (which must not reject) at most `ms`. */
export async function waitForSend(sent: Promise<unknown>, ms = ACCESS_SEND_WAIT_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([sent, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/**
 * Runs `fn` with the recorder for reads of `storage` (undefined where nothing is recorded),
 * then sends what it recorded, waiting at most `sendWaitMs` for it. The send never fails the
 * caller: a failed or slow one stays in the journal for the next flush. `config`: the
 * settings already read, else they are read here.
 */
export async function recordingReads<T>(
  repo: { ditsDir: string; workTree: string },
  url: string,
  storage: ObjectStorage,
  fn: (access: AccessSink | undefined) => Promise<T>,
  config?: { bool(key: string, dflt: boolean): boolean },
  sendWaitMs = ACCESS_SEND_WAIT_MS,
): Promise<T> {
  const { readDitsConfig } = await import('../git/dits-config.js');
  const recorder = accessRecorderFor(repo.ditsDir, url, storage.location, config ?? (await readDitsConfig(repo.workTree)));
  try {
    return await fn(recorder ?? undefined);
  } finally {
    if (recorder) await waitForSend(recorder.flush(storage).catch(() => undefined), sendWaitMs);
  }
}
