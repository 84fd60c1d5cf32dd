/**
 * TieredFolderStorage: an ObjectStorage and TierStorage over folders, one per tier: the
 * hot root (the remote folder, or a server repository's folder) and a folder for each
 * other tier that is configured (`dits.tier.folder.warm|cold|deep`, or the server's
 * `--tier-folder`). Every folder holds the same relative keys as the root. A tier named in
 * `archive` (`dits.tier.archive = deep`) is like tape: its objects are read only through a
 * restored copy in `<archive folder>/.dits-restored/<key>`, made by `requestRestore`, whose
 * file mtime is its expiry; without one a read throws FrozenObjectError.
 *
 * Where an object is: the warmest folder that has it (hot, warm, cold, deep). Writes
 * (`put`, `putIf`) go to the hot root; `delete` removes every copy.
 *
 * A move (`setStorageClass`) never loses the object:
 *   1. the readable copy is copied into `<target>/.dits-tmp/` (same file system as the
 *      target), fsync'd, its size checked and, for packs (`*.pack`), its BLAKE3 read back
 *      and compared with the BLAKE3 of the bytes read from the source;
 *   2. renamed to its key in the target folder (the folder fsync'd): from here both copies
 *      exist, and readers find the warmer one;
 *   3. only then the other copies are unlinked.
 * Killed between 2 and 3, both copies stay; the listing reports the object once (the
 * warmer copy), and the next move of the key verifies the copy already in the target
 * against the source before unlinking anything (a copy there that differs, say a corrupt
 * one, is replaced, and the source stays until the fresh copy is verified). A full or
 * unwritable target fails in step 1 and leaves the source untouched. The source's mtime
 * (the upload time `listTiered` reports) is kept on the copy.
 *
 * Tier folders must exist (a NAS share that is not mounted must not be mistaken for an
 * empty folder on the local disk), unless `createFolders` (the server makes one per
 * repository inside the tier folders it was given).
 */
import { randomBytes } from 'node:crypto';
import type { Dirent, Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { DitsUserError, errnoCode } from '../errors.js';
import { StreamHasher } from '../hashing/blake3.js';
import { FileStorage, type FileStorageOptions } from '../transfer/file-storage.js';
import { compareKeys } from '../transfer/memory-storage.js';
import {
  assertValidKey,
  assertValidPrefix,
  readStreamToBuffer,
  type ByteRange,
  type ListedObject,
  type ObjectInfo,
  type ObjectStorage,
  type PutBody,
  type PutIfResult,
  type PutOptions,
  type VersionedObject,
} from '../transfer/object-storage.js';
import { StorageError } from '../transfer/storage-error.js';
import { FrozenObjectError, type ObjectTierState, type RestoreRequestResult, type TieredObject, type TierStorage } from './tier-storage.js';
import { isTier, providerProfile, TIERS, type ProviderProfile, type RetrievalTier, type Tier } from './tiers.js';

export { parseTierList } from '../transfer/storage-url.js';

const RESTORED_DIR = '.dits-restored';
const TMP_DIR = '.dits-tmp';
const COPY_CHUNK = 1024 * 1024;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface TierFolderMap {
  /** The folder of each tier other than hot (the hot tier is the root). */
  folders: Partial<Record<Exclude<Tier, 'hot'>, string>>;
  /** Tiers whose folder needs a restore step before a read (like tape). */
  archive?: readonly Tier[];
}

/** Points where a test can stop or break a move (fault injection, explicit in the test). */
export interface TierFolderFaults {
  /** Before each chunk is written to a copy's temp file (throw ENOSPC here: a full target). */
  beforeWrite?(target: Tier | 'restored', key: string): void | Promise<void>;
  /** After a copy is written and fsync'd, before it is verified (corrupt it here). */
  afterCopy?(tempPath: string, key: string): void | Promise<void>;
  /** After the copy is in place in the target, before the source is unlinked (throw here: a move killed midway). */
  beforeUnlink?(key: string, target: Tier): void | Promise<void>;
}

export interface TieredFolderOptions extends TierFolderMap {
  file?: FileStorageOptions;
  /** Create missing tier folders (server: per-repository folders inside given tier folders). Default false. */
  createFolders?: boolean;
  /** ms since epoch (default Date.now): restore expiries. */
  clock?: () => number;
  faults?: TierFolderFaults;
}

interface Place {
  tier: Tier;
  root: string;
}

interface Found extends Place {
  file: string;
  st: Stats;
}

export class TieredFolderStorage implements ObjectStorage, TierStorage {
  readonly location: string;
  readonly tierProfile: ProviderProfile;
  private readonly hot: FileStorage;
  /** hot first, then warm, cold, deep: the order a read looks in */
  private readonly places: Place[];
  private readonly stores = new Map<Tier, FileStorage>();
  private readonly archive: ReadonlySet<Tier>;
  private readonly clock: () => number;
  private readonly faults: TierFolderFaults;
  private readonly createFolders: boolean;
  private readonly fsyncWrites: boolean;
  /** keys whose restore step runs in this process */
  private readonly restoring = new Set<string>();

  constructor(rootDir: string, options: TieredFolderOptions) {
    const root = path.resolve(rootDir);
    this.hot = new FileStorage(root, options.file);
    this.places = [{ tier: 'hot', root }];
    this.stores.set('hot', this.hot);
    for (const t of TIERS) {
      if (t === 'hot') continue;
      const dir = options.folders[t];
      if (dir === undefined) continue;
      const place = { tier: t, root: path.resolve(dir) };
      if (this.places.some((p) => p.root === place.root)) {
        throw new DitsUserError('bad-config', `the ${t} tier folder ${place.root} is also the folder of another tier`, {
          hint: 'give each tier its own folder (dits.tier.folder.<tier>), none of them the remote folder itself',
        });
      }
      this.places.push(place);
      this.stores.set(t, new FileStorage(place.root, options.file));
    }
    for (const t of options.archive ?? []) {
      if (t === 'hot' || options.folders[t as Exclude<Tier, 'hot'>] === undefined) {
        throw new DitsUserError('bad-config', `dits.tier.archive names ${t}, which has no tier folder`, { hint: 'set dits.tier.folder.<tier> for it, or leave it out of dits.tier.archive' });
      }
    }
    this.archive = new Set(options.archive ?? []);
    this.tierProfile = providerProfile('folder', { archiveTiers: [...this.archive] });
    this.location = `${root} (tiers: ${this.places.map((p) => `${p.tier}${this.archive.has(p.tier) ? ' (archive)' : ''} ${p.root}`).join(', ')})`;
    this.clock = options.clock ?? Date.now;
    this.faults = options.faults ?? {};
    this.createFolders = options.createFolders ?? false;
    this.fsyncWrites = options.file?.fsync ?? true;
  }

  /** The folder of `tier` (the root for hot), or undefined when none is configured. */
  folderOf(tier: Tier): string | undefined {
    return this.places.find((p) => p.tier === tier)?.root;
  }

  async checkAccess(): Promise<void> {
    await this.hot.checkAccess();
  }

  // ---- ObjectStorage ----

  put(key: string, body: PutBody, opts?: PutOptions): Promise<{ etag: string }> {
    return this.hot.put(key, body, opts);
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    assertValidKey(key);
    // twice: a move towards hot renames into a folder the first look had already passed
    for (let attempt = 0; attempt < 2; attempt++) {
      for (const place of this.places) {
        if (this.archive.has(place.tier)) {
          const restored = await this.validRestored(place, key);
          if (restored !== null) {
            try {
              return await this.restoredStore(place).get(key, range);
            } catch (err) {
              if ((err as StorageError).code !== 'storage-not-found') throw err;
            }
          }
          if ((await statFile(fileOf(place.root, key))) !== null) throw new FrozenObjectError(key, place.tier);
          continue;
        }
        try {
          return await this.stores.get(place.tier)!.get(key, range);
        } catch (err) {
          if ((err as StorageError).code !== 'storage-not-found') throw err;
        }
      }
    }
    // not found: say so, unless a tier folder is missing (a share not mounted), where it may be
    for (const place of this.places.slice(1)) {
      if ((await statFile(place.root, true))?.isDirectory()) continue;
      throw new StorageError('tier-folder-missing', `${key} is not in ${this.places[0]!.root}, and the ${place.tier} tier folder ${place.root} is missing: it may be there`, {
        key,
        hint: `mount the share or create the folder (dits.tier.folder.${place.tier}), then run again`,
      });
    }
    throw new StorageError('storage-not-found', `No object ${key} in ${this.location}`, { key });
  }

  async getBuffer(key: string, range?: ByteRange): Promise<Buffer> {
    return readStreamToBuffer(await this.get(key, range));
  }

  async head(key: string): Promise<ObjectInfo | null> {
    assertValidKey(key);
    for (const place of this.places) {
      const info = await this.stores.get(place.tier)!.head(key);
      if (info !== null) return info;
    }
    return null;
  }

  async *list(prefix: string): AsyncIterable<ListedObject> {
    for (const obj of await this.listMerged(prefix)) yield { key: obj.key, size: obj.size, storageClass: obj.storageClass };
  }

  /** Removes every copy: each tier's, and restored ones. */
  async delete(key: string): Promise<void> {
    assertValidKey(key);
    for (const place of this.places) {
      await this.stores.get(place.tier)!.delete(key);
      if (this.archive.has(place.tier)) await this.restoredStore(place).delete(key);
    }
  }

  putIf(key: string, body: Buffer, expected: { etag: string } | 'absent'): Promise<PutIfResult> {
    return this.hot.putIf(key, body, expected);
  }

  getVersioned(key: string): Promise<VersionedObject | null> {
    return this.hot.getVersioned(key);
  }

  // ---- TierStorage ----

  async *listTiered(prefix: string): AsyncIterable<TieredObject> {
    yield* await this.listMerged(prefix);
  }

  async tierState(key: string): Promise<ObjectTierState | null> {
    assertValidKey(key);
    const found = await this.locate(key);
    const first = found[0];
    if (first === undefined) return null;
    let restore: ObjectTierState['restore'] = null;
    if (this.archive.has(first.tier)) {
      const restored = await this.validRestored(first, key);
      if (restored !== null) restore = { ongoing: false, expiry: Math.floor(restored.mtimeMs) };
      else if (this.restoring.has(key)) restore = { ongoing: true };
    }
    return { size: first.st.size, storageClass: first.tier, restore };
  }

  async setStorageClass(key: string, storageClass: string, opts: { size: number }): Promise<void> {
    assertValidKey(key);
    if (!isTier(storageClass)) {
      throw new DitsUserError('bad-config', `${storageClass} is not a tier of a folder remote`, { hint: `use one of ${TIERS.join(', ')}` });
    }
    const target = this.places.find((p) => p.tier === storageClass);
    if (target === undefined) {
      throw new DitsUserError('tier-unsupported', `${this.location} has no folder for the ${storageClass} tier`, {
        hint: `set one with \`git config dits.tier.folder.${storageClass} <dir>\` (the server: --tier-folder ${storageClass}=<dir>)`,
      });
    }
    const found = await this.locate(key);
    const inTarget = found.find((f) => f.tier === target.tier);
    const others = found.filter((f) => f.tier !== target.tier);
    if (others.length === 0) {
      if (inTarget === undefined) throw new StorageError('storage-not-found', `No object ${key} in ${this.location}`, { key });
      return; // already there, and only there
    }
    // the copy to read from: the warmest readable one (an archive copy only through its restored copy)
    let source: { file: string; st: Stats } | null = null;
    for (const f of others) {
      if (!this.archive.has(f.tier)) {
        source = f;
        break;
      }
      const restored = await this.validRestored(f, key);
      if (restored !== null) {
        source = { file: fileOf(path.join(f.root, RESTORED_DIR), key), st: restored };
        break;
      }
    }
    if (source === null) throw new FrozenObjectError(key, others[0]!.tier);
    if (source.st.size !== opts.size) {
      throw new StorageError('storage-size-mismatch', `${key} is ${source.st.size} bytes in ${this.location}, ${opts.size} were expected`, { key });
    }
    await this.ensureFolder(target);
    const hashed = key.endsWith('.pack');
    let copyIsGood = false;
    if (inTarget !== undefined && inTarget.st.size === source.st.size) {
      // left by a move killed before its unlink: verify it before trusting it
      copyIsGood = !hashed || (await hashFile(inTarget.file)) === (await hashFile(source.file));
    }
    if (!copyIsGood) await this.copyInto(source.file, source.st, target.root, key, target.tier, { hashed });
    await this.faults.beforeUnlink?.(key, target.tier);
    for (const f of others) {
      await unlinkIfPresent(f.file);
      if (this.archive.has(f.tier)) await unlinkIfPresent(fileOf(path.join(f.root, RESTORED_DIR), key));
      await fsyncDir(path.dirname(f.file));
    }
  }

  /**
   * The restore step of an archive folder: copies the archived object into
   * `<archive>/.dits-restored/<key>` (verified as a move is) with an expiry `days` from now.
   * 'started' when it made the copy (it is readable on return), 'restored' when a copy
   * existed (its expiry moves to now + days), 'not-archived' for an object readable now.
   */
  async requestRestore(key: string, opts: { days: number; tier: RetrievalTier }): Promise<RestoreRequestResult> {
    assertValidKey(key);
    if (!Number.isSafeInteger(opts.days) || opts.days < 1) {
      throw new DitsUserError('bad-argument', `a restore needs a whole number of days, at least 1 (got ${opts.days})`, { hint: 'e.g. --days 7' });
    }
    // one restore step per key at a time in this process: a second request meanwhile is told it runs
    if (this.restoring.has(key)) return 'in-progress';
    this.restoring.add(key);
    try {
      const first = (await this.locate(key))[0];
      if (first === undefined) throw new StorageError('storage-not-found', `No object ${key} in ${this.location}`, { key });
      if (!this.archive.has(first.tier)) return 'not-archived';
      const expiry = this.clock() + opts.days * DAY_MS;
      const restoredRoot = path.join(first.root, RESTORED_DIR);
      if ((await this.validRestored(first, key)) !== null) {
        await fs.utimes(fileOf(restoredRoot, key), new Date(), utimeOf(expiry));
        return 'restored';
      }
      await this.copyInto(first.file, first.st, restoredRoot, key, 'restored', { hashed: key.endsWith('.pack'), mtimeMs: expiry });
      return 'started';
    } finally {
      this.restoring.delete(key);
    }
  }

  /**
   * Removes restored copies whose expiry has passed, each only when its archive copy is
   * still there with the same size (so the restored copy is never the last one). Returns
   * how many it removed. `tier apply` calls it.
   */
  async removeExpiredRestores(now = this.clock()): Promise<number> {
    let removed = 0;
    for (const place of this.places) {
      if (!this.archive.has(place.tier)) continue;
      const restoredRoot = path.join(place.root, RESTORED_DIR);
      for (const obj of await walkFiles(restoredRoot, '')) {
        if (Math.floor(obj.st.mtimeMs) > now) continue;
        const archived = await statFile(fileOf(place.root, obj.key));
        if (archived === null || archived.size !== obj.st.size) continue;
        await unlinkIfPresent(fileOf(restoredRoot, obj.key));
        removed += 1;
      }
    }
    return removed;
  }

  // ---- internals ----

  /** Every copy of `key`, warmest first. */
  private async locate(key: string): Promise<Found[]> {
    const out: Found[] = [];
    for (const place of this.places) {
      const file = fileOf(place.root, key);
      const st = await statFile(file);
      if (st !== null) out.push({ ...place, file, st });
    }
    return out;
  }

  /** The restored copy of `key` in an archive place, when it exists and has not expired. */
  private async validRestored(place: Place, key: string): Promise<Stats | null> {
    const st = await statFile(fileOf(path.join(place.root, RESTORED_DIR), key));
    return st !== null && Math.floor(st.mtimeMs) > this.clock() ? st : null;
  }

  private restoredStore(place: Place): FileStorage {
    return new FileStorage(path.join(place.root, RESTORED_DIR), { fsync: this.fsyncWrites });
  }

  private async listMerged(prefix: string): Promise<TieredObject[]> {
    assertValidPrefix(prefix);
    const seen = new Map<string, TieredObject>();
    for (const place of this.places) {
      for (const obj of await walkFiles(place.root, prefix)) {
        if (!seen.has(obj.key)) seen.set(obj.key, { key: obj.key, size: obj.st.size, lastModified: Math.floor(obj.st.mtimeMs), storageClass: place.tier });
      }
    }
    return [...seen.values()].sort((a, b) => compareKeys(a.key, b.key));
  }

  private async ensureFolder(place: Place): Promise<void> {
    const st = await statFile(place.root, true);
    if (st?.isDirectory()) return;
    if (this.createFolders && st === null) {
      await fs.mkdir(place.root, { recursive: true });
      return;
    }
    throw new StorageError('tier-folder-missing', `The ${place.tier} tier folder ${place.root} does not exist (or is not a folder)`, {
      hint: `create it or mount the share, then run again (set by dits.tier.folder.${place.tier}); nothing was moved`,
    });
  }

  /**
   * Copies `from` to `<root>/<key>`: temp file in `<root>/.dits-tmp/`, fsync, size and (for
   * packs) BLAKE3 checked against the bytes read from the source, then renamed into place
   * and the folder fsync'd. On any failure the temp file is removed; the source is never
   * touched here.
   */
  private async copyInto(from: string, fromSt: Stats, root: string, key: string, target: Tier | 'restored', opts: { hashed: boolean; mtimeMs?: number }): Promise<void> {
    const tmpDir = path.join(root, TMP_DIR);
    await fs.mkdir(tmpDir, { recursive: true }).catch((err: unknown) => {
      throw writeError(err, root, key);
    });
    const tmp = path.join(tmpDir, `${randomBytes(12).toString('hex')}.tmp`);
    try {
      const sourceHash = opts.hashed ? new StreamHasher() : null;
      const src = await fs.open(from, 'r');
      try {
        const dst = await fs.open(tmp, 'wx');
        try {
          const buf = Buffer.allocUnsafe(COPY_CHUNK);
          let copied = 0;
          for (;;) {
            const { bytesRead } = await src.read(buf, 0, COPY_CHUNK, copied);
            if (bytesRead === 0) break;
            const chunk = buf.subarray(0, bytesRead);
            sourceHash?.update(chunk);
            await this.faults.beforeWrite?.(target, key);
            for (let off = 0; off < bytesRead; ) off += (await dst.write(chunk, off, bytesRead - off)).bytesWritten;
            copied += bytesRead;
          }
          if (this.fsyncWrites) await dst.sync();
        } finally {
          await dst.close();
        }
      } finally {
        await src.close();
      }
      await this.faults.afterCopy?.(tmp, key);
      const written = await fs.stat(tmp);
      if (written.size !== fromSt.size) {
        throw new StorageError('tier-copy-mismatch', `The copy of ${key} in ${root} has ${written.size} bytes, the source ${fromSt.size}: nothing was moved`, { key, retryable: true });
      }
      if (sourceHash !== null && (await hashFile(tmp)) !== sourceHash.digestHex()) {
        throw new StorageError('tier-copy-mismatch', `The copy of ${key} in ${root} does not read back as the bytes written: nothing was moved`, {
          key,
          retryable: true,
          hint: 'check the target disk or share (`dmesg`, the NAS logs); the object stays where it was',
        });
      }
      await fs.utimes(tmp, fromSt.atime, utimeOf(opts.mtimeMs ?? fromSt.mtimeMs));
      const dest = fileOf(root, key);
      await fs.mkdir(path.dirname(dest), { recursive: true });
      await fs.rename(tmp, dest);
      await fsyncDir(path.dirname(dest));
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err instanceof StorageError || err instanceof DitsUserError ? err : writeError(err, root, key);
    }
  }
}

/**
 * A file time in seconds for utimes that reads back, floored to whole ms, as `ms`: half a
 * millisecond in, clear of the float rounding a Date or `ms / 1000` meets on the way to
 * nanoseconds (times here are compared and reported in whole ms).
 */
function utimeOf(ms: number): number {
  return (Math.floor(ms) + 0.5) / 1000;
}

function fileOf(root: string, key: string): string {
  return path.join(root, ...key.split('/'));
}

async function statFile(file: string, allowDir = false): Promise<Stats | null> {
  try {
    const st = await fs.stat(file);
    return st.isFile() || (allowDir && st.isDirectory()) ? st : null;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return null;
    throw err;
  }
}

async function unlinkIfPresent(file: string): Promise<void> {
  try {
    await fs.unlink(file);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT' && errnoCode(err) !== 'ENOTDIR') throw err;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch {
    // some file systems (and platforms) cannot fsync a folder: the rename stands regardless
  } finally {
    await handle?.close();
  }
}

async function hashFile(file: string): Promise<string> {
  const hasher = new StreamHasher();
  const handle = await fs.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(COPY_CHUNK);
    for (let pos = 0; ; ) {
      const { bytesRead } = await handle.read(buf, 0, COPY_CHUNK, pos);
      if (bytesRead === 0) break;
      hasher.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return hasher.digestHex();
}

/** Files under `root` whose key starts with `prefix`, `.dits-*` names skipped. */
async function walkFiles(root: string, prefix: string): Promise<{ key: string; st: Stats }[]> {
  const out: { key: string; st: Stats }[] = [];
  const walk = async (baseKey: string): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await fs.readdir(baseKey === '' ? root : fileOf(root, baseKey), { withFileTypes: true });
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return;
      throw err;
    }
    for (const entry of entries) {
      if (entry.name.startsWith('.dits-')) continue;
      const key = baseKey === '' ? entry.name : `${baseKey}/${entry.name}`;
      if (entry.isDirectory()) {
        if (prefix.startsWith(`${key}/`) || `${key}/`.startsWith(prefix)) await walk(key);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        const st = await statFile(fileOf(root, key));
        if (st !== null) out.push({ key, st });
      }
    }
  };
  await walk('');
  return out;
}

function writeError(err: unknown, root: string, key: string): StorageError {
  const code = errnoCode(err);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new StorageError('tier-folder-full', `No space left in ${root} to move ${key}: nothing was moved`, {
      cause: err,
      hint: 'free space there (or give the tier a bigger folder), then run again',
    });
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new StorageError('tier-folder-unwritable', `Cannot write in ${root} (${code}) to move ${key}: nothing was moved`, {
      cause: err,
      hint: 'give this user write access to the tier folder (or mount it read-write), then run again',
    });
  }
  return new StorageError('tier-move-failed', `Moving ${key} into ${root} failed: ${(err as Error)?.message ?? String(err)}; nothing was moved`, { cause: err, retryable: true });
}

/** "warm=/a,cold=/b" (the server's --tier-folder) to a folder map. */
export function parseTierFolderArg(text: string): TierFolderMap['folders'] {
  const folders: TierFolderMap['folders'] = {};
  for (const part of text.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const eq = part.indexOf('=');
    const tier = eq < 0 ? part : part.slice(0, eq).trim();
    const dir = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (!isTier(tier) || tier === 'hot' || dir === '') {
      throw new DitsUserError('bad-option-value', `--tier-folder ${JSON.stringify(part)} is not <tier>=<dir> with tier warm, cold or deep`, {
        hint: 'e.g. --tier-folder warm=/mnt/nas/warm,deep=/mnt/tape',
      });
    }
    folders[tier] = path.resolve(dir);
  }
  return folders;
}
