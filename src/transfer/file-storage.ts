/**
 * FileStorage: an ObjectStorage in a local directory (a local disk or a NAS mount), the
 * embedded default remote `dits::file:///path`.
 *
 * Layout: key `a/b/c` is the file `<root>/a/b/c`. Bookkeeping lives in names starting
 * with `.dits-`, which keys may not use: `<root>/.dits-tmp/` for writes in progress and
 * `<dir>/.dits-lock.<name>` for the lock of a versioned object.
 *
 * Atomicity: every write goes to a temp file in `<root>/.dits-tmp/` (same file system),
 * is flushed with fsync, then renamed over the final name, so a reader opens either the
 * old inode or the new one, never a half-written file; a crash leaves at most a stray temp
 * file. The etag is derived from the inode, size and mtime (nanoseconds) of the file: every
 * write creates a new inode, so the etag changes on every write without hashing content.
 *
 * Compare-and-swap (putIf): a lock file serialises writers of one key. It is created
 * exclusively: its content is written to a draft file opened with O_EXCL, then hard-linked
 * to the lock name; link() fails when the name exists, atomically, also on NFS (where
 * O_EXCL alone was historically unreliable), and the lock is never seen half-written; under the lock the writer compares the etag,
 * writes a temp file and renames it into place, then removes the lock. Readers never lock.
 * A lock whose owner is dead is broken: at once when the owner ran on this host and its
 * pid no longer exists, otherwise after this process has seen the same lock owner for
 * `staleLockMs` of its own clock (so clocks of other machines do not matter). Breaking
 * renames the lock to a unique name and checks it was the stale one before deleting it.
 * Safety then rests on a lock holder finishing its few-millisecond critical section well
 * within `staleLockMs`; the holder re-reads its lock just before the rename and gives up
 * if it lost it.
 */
import { randomBytes } from 'node:crypto';
import type { BigIntStats, Dirent, Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { errnoCode } from '../errors.js';
import {
  assertValidKey,
  assertValidPrefix,
  assertValidRange,
  readStreamToBuffer,
  type ByteRange,
  type ListedObject,
  type ObjectInfo,
  type ObjectStorage,
  type PutBody,
  type PutIfResult,
  type PutOptions,
  type VersionedObject,
} from './object-storage.js';
import { compareKeys } from './memory-storage.js';
import { StorageError } from './storage-error.js';

export interface FileStorageOptions {
  /** fsync each written file before it becomes visible (default true). */
  fsync?: boolean;
  /** How long a lock owner may be seen unchanged before its lock counts as abandoned. */
  staleLockMs?: number;
  /** Injected for tests. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Host name written into locks; tests use another to simulate a remote holder. */
  host?: string;
}

interface LockContent {
  owner: string;
  host: string;
  pid: number;
  time: number;
}

const TMP_DIR = '.dits-tmp';
const LOCK_PREFIX = '.dits-lock.';

export class FileStorage implements ObjectStorage {
  readonly root: string;
  readonly location: string;
  private readonly fsyncWrites: boolean;
  private readonly staleLockMs: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly host: string;

  constructor(rootDir: string, options: FileStorageOptions = {}) {
    this.root = path.resolve(rootDir);
    this.location = this.root;
    this.fsyncWrites = options.fsync ?? true;
    this.staleLockMs = options.staleLockMs ?? 30_000;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.host = options.host ?? hostname();
  }

  async checkAccess(): Promise<void> {
    try {
      const st = await fs.stat(this.root);
      if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      await fs.access(this.root, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        throw new StorageError('storage-root-missing', `The remote folder ${this.root} does not exist (or is not a folder)`, {
          cause: err,
          hint: 'Check the path in the remote URL (`git remote -v`); for a new remote create the folder first (mkdir -p), or mount the share.',
        });
      }
      throw this.mapError(err, '.');
    }
  }

  async put(key: string, body: PutBody, opts: PutOptions = {}): Promise<{ etag: string }> {
    assertValidKey(key);
    const tmp = await this.writeTemp(key, body, opts.size);
    try {
      await this.renameIntoPlace(tmp.path, this.pathOf(key), key);
    } catch (err) {
      await fs.rm(tmp.path, { force: true });
      throw err;
    }
    return { etag: tmp.etag };
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    assertValidKey(key);
    assertValidRange(range);
    const handle = await this.openForRead(key);
    try {
      const size = (await handle.stat()).size;
      const bounds = this.resolveRange(key, size, range);
      if (bounds && bounds.end < bounds.start) {
        await handle.close();
        return Readable.from([]);
      }
      return handle.createReadStream(bounds ? { start: bounds.start, end: bounds.end } : {});
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async getBuffer(key: string, range?: ByteRange): Promise<Buffer> {
    return readStreamToBuffer(await this.get(key, range));
  }

  async head(key: string): Promise<ObjectInfo | null> {
    assertValidKey(key);
    try {
      const st = await fs.stat(this.pathOf(key), { bigint: true });
      if (!st.isFile()) return null;
      return { size: Number(st.size), etag: etagOf(st) };
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return null;
      throw this.mapError(err, key);
    }
  }

  async *list(prefix: string): AsyncIterable<ListedObject> {
    assertValidPrefix(prefix);
    // Walk only the deepest folder the prefix names, then filter by the string prefix.
    const slash = prefix.lastIndexOf('/');
    const baseKey = slash < 0 ? '' : prefix.slice(0, slash);
    const found: ListedObject[] = [];
    await this.walk(baseKey, prefix, found);
    found.sort((a, b) => compareKeys(a.key, b.key));
    yield* found;
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    try {
      await fs.unlink(this.pathOf(key));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return;
      throw this.mapError(err, key);
    }
  }

  async putIf(key: string, body: Buffer, expected: { etag: string } | 'absent'): Promise<PutIfResult> {
    assertValidKey(key);
    const target = this.pathOf(key);
    const lock = await this.acquireLock(key);
    try {
      const current = await this.head(key);
      const matches = expected === 'absent' ? current === null : current !== null && current.etag === expected.etag;
      if (!matches) return { ok: false, current: current ? { etag: current.etag } : null };
      const tmp = await this.writeTemp(key, body, body.length);
      try {
        if (!(await this.stillHolds(lock))) {
          throw new StorageError('storage-lock-lost', `Lost the lock on ${key} in ${this.location} (it was broken as stale)`, {
            key,
            retryable: true,
            hint: 'Another process judged this lock abandoned; the update was not written. Retry.',
          });
        }
        await this.renameIntoPlace(tmp.path, target, key);
      } catch (err) {
        await fs.rm(tmp.path, { force: true });
        throw err;
      }
      return { ok: true, etag: tmp.etag };
    } finally {
      await this.releaseLock(lock);
    }
  }

  async getVersioned(key: string): Promise<VersionedObject | null> {
    assertValidKey(key);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.pathOf(key), 'r');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return null;
      throw this.mapError(err, key);
    }
    try {
      // One open file is one inode: body and etag belong to the same version.
      const st = await handle.stat({ bigint: true });
      const body = await handle.readFile();
      return { body, etag: etagOf(st) };
    } finally {
      await handle.close();
    }
  }

  // ---- internals ----

  private pathOf(key: string): string {
    return path.join(this.root, ...key.split('/'));
  }

  private async openForRead(key: string): Promise<fs.FileHandle> {
    try {
      return await fs.open(this.pathOf(key), 'r');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR' || errnoCode(err) === 'EISDIR') {
        throw new StorageError('storage-not-found', `No object ${key} in ${this.location}`, { key });
      }
      throw this.mapError(err, key);
    }
  }

  private resolveRange(key: string, size: number, range: ByteRange | undefined): ByteRange | undefined {
    if (!range) return undefined;
    if (range.start >= size) {
      throw new StorageError('storage-bad-range', `Range ${range.start}-${range.end} starts past the end of ${key} (${size} bytes)`, { key });
    }
    return { start: range.start, end: Math.min(range.end, size - 1) };
  }

  /** Writes the body to a fresh temp file; returns its path and the etag it will keep. */
  private async writeTemp(key: string, body: PutBody, expectedSize: number | undefined): Promise<{ path: string; etag: string }> {
    const dir = path.join(this.root, TMP_DIR);
    try {
      await fs.mkdir(dir, { recursive: true });
    } catch (err) {
      throw this.mapError(err, key);
    }
    const tmpPath = path.join(dir, `${randomBytes(12).toString('hex')}.tmp`);
    try {
      const handle = await fs.open(tmpPath, 'wx');
      try {
        if (Buffer.isBuffer(body)) await handle.writeFile(body);
        else {
          const source = body();
          try {
            for await (const chunk of source) {
              const data = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
              for (let off = 0; off < data.length; ) off += (await handle.write(data, off)).bytesWritten;
            }
          } finally {
            source.destroy();
          }
        }
        if (this.fsyncWrites) await handle.sync();
      } finally {
        await handle.close();
      }
      const st = await fs.stat(tmpPath, { bigint: true });
      if (expectedSize !== undefined && Number(st.size) !== expectedSize) {
        throw new StorageError('storage-size-mismatch', `Body for ${key} had ${st.size} bytes, ${expectedSize} were announced`, { key });
      }
      return { path: tmpPath, etag: etagOf(st) };
    } catch (err) {
      await fs.rm(tmpPath, { force: true });
      throw err instanceof StorageError ? err : this.mapError(err, key);
    }
  }

  private async renameIntoPlace(from: string, to: string, key: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await fs.mkdir(path.dirname(to), { recursive: true });
        await fs.rename(from, to);
        return;
      } catch (err) {
        // a concurrent delete may remove the folder between mkdir and rename
        if (errnoCode(err) === 'ENOENT' && attempt < 3) continue;
        if (errnoCode(err) === 'EISDIR' || errnoCode(err) === 'ENOTDIR' || errnoCode(err) === 'EEXIST') throw keyConflict(key, this.root, err);
        throw this.mapError(err, key);
      }
    }
  }

  private async walk(baseKey: string, prefix: string, out: ListedObject[]): Promise<void> {
    const dir = baseKey === '' ? this.root : this.pathOf(baseKey);
    let entries: Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return;
      throw this.mapError(err, baseKey);
    }
    for (const entry of entries) {
      if (entry.name.startsWith('.dits-')) continue;
      const key = baseKey === '' ? entry.name : `${baseKey}/${entry.name}`;
      if (entry.isDirectory()) {
        // descend only where keys below can still match the prefix
        if (prefix.startsWith(`${key}/`) || `${key}/`.startsWith(prefix)) await this.walk(key, prefix, out);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        try {
          const st: Stats = await fs.stat(path.join(dir, entry.name));
          out.push({ key, size: st.size });
        } catch (err) {
          if (errnoCode(err) !== 'ENOENT') throw this.mapError(err, key); // deleted meanwhile: skip
        }
      }
    }
  }

  private lockPathOf(key: string): string {
    const file = this.pathOf(key);
    return path.join(path.dirname(file), LOCK_PREFIX + path.basename(file));
  }

  private async acquireLock(key: string): Promise<{ path: string; owner: string }> {
    const lockPath = this.lockPathOf(key);
    const owner = randomBytes(12).toString('hex');
    const content: LockContent = { owner, host: this.host, pid: process.pid, time: this.now() };
    let watched: { owner: string; since: number } | undefined;
    for (let attempt = 0; ; attempt++) {
      // Write the lock's content aside, then link it into place: link() fails with EEXIST
      // when a lock exists (O_EXCL semantics, NFS-safe) and a lock is never seen half-written.
      if (await this.tryCreateLock(lockPath, content, key)) return { path: lockPath, owner };
      const holder = await readLock(lockPath);
      if (holder) {
        if (watched?.owner !== holder.owner) watched = { owner: holder.owner, since: this.now() };
        const deadHere = holder.host === this.host && !processExists(holder.pid);
        const quietTooLong = this.now() - watched.since >= this.staleLockMs;
        if (deadHere || quietTooLong) {
          await breakLock(lockPath, holder.owner);
          continue;
        }
      }
      await this.sleep(Math.min(50, 2 + attempt * 2) * (0.5 + Math.random()));
    }
  }

  private async tryCreateLock(lockPath: string, content: LockContent, key: string): Promise<boolean> {
    const draft = `${lockPath}.draft-${content.owner}`;
    try {
      await fs.mkdir(path.dirname(lockPath), { recursive: true });
      await fs.writeFile(draft, JSON.stringify(content), { flag: 'wx' });
      await fs.link(draft, lockPath);
      return true;
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') return false;
      throw this.mapError(err, key);
    } finally {
      await fs.rm(draft, { force: true });
    }
  }

  private async stillHolds(lock: { path: string; owner: string }): Promise<boolean> {
    return (await readLock(lock.path))?.owner === lock.owner;
  }

  private async releaseLock(lock: { path: string; owner: string }): Promise<void> {
    if (await this.stillHolds(lock)) await fs.rm(lock.path, { force: true });
  }

  private mapError(err: unknown, key: string): StorageError {
    if (err instanceof StorageError) return err;
    const code = errnoCode(err);
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      return new StorageError('storage-access-denied', `Permission denied writing or reading ${key} under ${this.root} (${code})`, {
        key,
        cause: err,
        hint: 'Check that you may read and write this folder (owner, mode, read-only mount).',
      });
    }
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      return new StorageError('storage-full', `No space left for ${key} under ${this.root}`, { key, cause: err, hint: 'Free space on that disk, then re-run.' });
    }
    if (code === 'EIO' || code === 'ESTALE' || code === 'ETIMEDOUT' || code === 'EAGAIN' || code === 'EBUSY') {
      return new StorageError('storage-io', `I/O error on ${key} under ${this.root} (${code})`, { key, cause: err, retryable: true });
    }
    return new StorageError('storage-io', `File storage error on ${key} under ${this.root}: ${(err as Error)?.message ?? String(err)}`, {
      key,
      cause: err,
    });
  }
}

function keyConflict(key: string, root: string, cause: unknown): StorageError {
  return new StorageError('storage-key-conflict', `Cannot store ${key} under ${root}: the key is also a folder of other keys, or one of its folders is a key`, {
    key,
    cause,
    hint: 'A key may not be both an object and a prefix folder of other keys (like git refs a/b and a/b/c).',
  });
}

function etagOf(st: BigIntStats): string {
  return `${st.ino.toString(36)}-${st.size.toString(36)}-${st.mtimeNs.toString(36)}`;
}

async function readLock(lockPath: string): Promise<LockContent | null> {
  try {
    const parsed = JSON.parse(await fs.readFile(lockPath, 'utf8')) as LockContent;
    return typeof parsed.owner === 'string' ? parsed : null;
  } catch {
    // missing, or caught between create and write: treat as no readable owner yet
    return null;
  }
}

/** Removes a lock only if it is still the one judged stale (`owner`). */
async function breakLock(lockPath: string, owner: string): Promise<void> {
  const aside = `${lockPath}.broken-${randomBytes(6).toString('hex')}`;
  try {
    await fs.rename(lockPath, aside);
  } catch {
    return; // someone else broke or released it
  }
  const taken = await readLock(aside);
  if (taken?.owner !== owner) {
    // We grabbed a fresh lock by mistake: put it back unless a new one already exists.
    await fs.link(aside, lockPath).catch(() => undefined);
  }
  await fs.rm(aside, { force: true });
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}
