/**
 * Sizes of the repositories a server holds, for `git dits server status`:
 *
 * - stored: the bytes in the repository's storage (packs, pack indexes, manifests, refs),
 *   from one listing of it;
 * - logical: the sum of the file sizes its manifests describe, i.e. what the content would
 *   take stored once per file version with no chunk-level dedup;
 * - dedup ratio: logical / stored (compression also counts; above 1 means saved space).
 *
 * Cost: one listing per repository, plus, for each manifest not seen before, one small
 * ranged read of its header (manifests are immutable, so their sizes are cached in the
 * `manifest_sizes` table; a second status reads no manifest). Reads are bounded by
 * `concurrency`. A repository whose storage fails is reported with its error, not thrown.
 *
 * Also where the server keeps content (`storage` in the `settings` table), written by
 * startServer so the CLI, which runs on the data dir alone, opens the same back end.
 */
import { MANIFEST_MAGIC } from '../src/manifest/manifest.js';
import { OBJECTS_PREFIX, PACKS_PREFIX } from '../src/remote/content/layout.js';
import type { ObjectStorage } from '../src/transfer/object-storage.js';
import type { ServerDb } from './db.js';
import type { StorageBackend } from './storage-backend.js';

export interface RepoSize {
  name: string;
  /** bytes of every object in the repository's storage */
  storedBytes: number;
  objects: number;
  /** of which pack bodies */
  packBytes: number;
  packs: number;
  manifests: number;
  /** file sizes the manifests describe, summed */
  logicalBytes: number;
  /** logicalBytes / storedBytes; null for an empty storage */
  dedupRatio: number | null;
  /** manifests whose size could not be read (damaged, or a read error) */
  unreadManifests: number;
  /** the storage could not be listed */
  error?: string;
}

export interface MeasureOptions {
  /** only these repositories (default: all) */
  repos?: readonly string[];
  /** manifest header reads in flight per repository (default 8) */
  concurrency?: number;
}

/** Bytes read first from a manifest: its 16-byte preamble and (usually all of) its JSON header. */
const HEADER_PROBE_BYTES = 4096;

/** The file size a manifest describes, from its header only (not its chunk table). */
export async function readManifestFileSize(storage: ObjectStorage, key: string): Promise<number> {
  let head = await storage.getBuffer(key, { start: 0, end: HEADER_PROBE_BYTES - 1 });
  if (head.length < 16 || !head.subarray(0, 8).equals(MANIFEST_MAGIC)) throw new Error(`${key} is not a dits manifest`);
  const headerLen = head.readUInt32LE(12);
  if (16 + headerLen > head.length) head = await storage.getBuffer(key, { start: 0, end: 16 + headerLen - 1 });
  if (16 + headerLen > head.length) throw new Error(`${key}: manifest header runs past its end`);
  const header = JSON.parse(head.toString('utf8', 16, 16 + headerLen)) as { size?: unknown };
  if (typeof header.size !== 'number' || !Number.isSafeInteger(header.size) || header.size < 0) throw new Error(`${key}: manifest header has no size`);
  return header.size;
}

/** `v1/objects/ab/cdef…` -> `abcdef…` (a 64-hex manifest id), else null. */
function manifestIdOf(key: string): string | null {
  if (!key.startsWith(OBJECTS_PREFIX)) return null;
  const id = key.slice(OBJECTS_PREFIX.length).replace('/', '');
  return /^[0-9a-f]{64}$/.test(id) ? id : null;
}

async function measureOne(db: ServerDb, repo: { id: number; name: string }, storage: ObjectStorage, concurrency: number): Promise<RepoSize> {
  const size: RepoSize = { name: repo.name, storedBytes: 0, objects: 0, packBytes: 0, packs: 0, manifests: 0, logicalBytes: 0, dedupRatio: null, unreadManifests: 0 };
  const manifests: { id: string; key: string }[] = [];
  for await (const o of storage.list('')) {
    size.storedBytes += o.size;
    size.objects++;
    if (o.key.startsWith(PACKS_PREFIX) && o.key.endsWith('.pack')) {
      size.packBytes += o.size;
      size.packs++;
    }
    const id = manifestIdOf(o.key);
    if (id !== null) manifests.push({ id, key: o.key });
  }
  size.manifests = manifests.length;
  const cached = new Map<string, number>();
  const select = db.stmt('SELECT manifest_id, file_size FROM manifest_sizes WHERE repo_id = ?');
  for (const row of select.all(repo.id) as { manifest_id: string; file_size: number }[]) cached.set(row.manifest_id, row.file_size);
  const missing = manifests.filter((m) => !cached.has(m.id));
  const insert = db.stmt('INSERT OR REPLACE INTO manifest_sizes (repo_id, manifest_id, file_size) VALUES (?, ?, ?)');
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < missing.length) {
      const m = missing[next++]!;
      try {
        const fileSize = await readManifestFileSize(storage, m.key);
        cached.set(m.id, fileSize);
        insert.run(repo.id, m.id, fileSize);
      } catch {
        size.unreadManifests++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, missing.length)) }, worker));
  for (const m of manifests) size.logicalBytes += cached.get(m.id) ?? 0;
  size.dedupRatio = size.storedBytes === 0 ? null : size.logicalBytes / size.storedBytes;
  return size;
}

/** Stored and logical sizes of each repository (in name order). */
export async function measureRepoSizes(db: ServerDb, backend: StorageBackend, opts: MeasureOptions = {}): Promise<RepoSize[]> {
  let repos = db.stmt('SELECT id, name FROM repos ORDER BY name').all() as { id: number; name: string }[];
  if (opts.repos !== undefined) {
    const wanted = new Set(opts.repos);
    repos = repos.filter((r) => wanted.has(r.name));
  }
  const concurrency = opts.concurrency ?? 8;
  const out: RepoSize[] = [];
  for (const repo of repos) {
    try {
      out.push(await measureOne(db, repo, await backend.forRepo(repo.name), concurrency));
    } catch (err) {
      out.push({ name: repo.name, storedBytes: 0, objects: 0, packBytes: 0, packs: 0, manifests: 0, logicalBytes: 0, dedupRatio: null, unreadManifests: 0, error: (err as Error).message ?? String(err) });
    }
  }
  return out;
}

/** Records where the server keeps content: an `s3://` URL, or null for `<dataDir>/repos/`. */
export function recordStorageLocation(db: ServerDb, storage: string | null): void {
  db.stmt("INSERT INTO settings (key, value) VALUES ('storage', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(storage);
}

/** What recordStorageLocation last wrote: an `s3://` URL, null for the data dir, undefined if never recorded. */
export function recordedStorageLocation(db: ServerDb): string | null | undefined {
  const row = db.stmt("SELECT value FROM settings WHERE key = 'storage'").get() as { value: string | null } | undefined;
  return row === undefined ? undefined : row.value;
}

