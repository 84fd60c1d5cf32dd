/**
 * Which stored version a file handed to the diff drivers is, and its readable summary:
 * what `git log -p`, `git show` (textconv) and `git diff` (the diff command) print for a
 * tracked file.
 *
 * Git hands the drivers a file, not a blob id, and what is in it varies:
 * - the pointer, for content bigger than `dits.smudgeInlineMax` or not in the store;
 * - the real content: git smudges the blobs it writes to temp files (so every stored file
 *   under the inline limit arrives as its bytes), and it hands over the working-tree file
 *   itself when that is up to date with the index;
 * - a damaged pointer, or a file that was never added.
 * The version is found from the pointer; else from the index entry of an up-to-date
 * working-tree file; else by hashing the content (its BLAKE3 is the file id) and finding a
 * manifest with that file id in the local store. Summaries carry the file id and the
 * manifest id, and for MP4/MOV the metadata tags, so two different versions never render
 * the same (a metadata-only change shows which tags changed).
 */
import fs from 'node:fs';
import path from 'node:path';
import { runGit } from '../git/exec.js';
import { readIndexEntries } from '../git/index-file.js';
import { findRepo, isDitsInitialised, type RepoPaths } from '../git/repo.js';
import { StreamHasher } from '../hashing/blake3.js';
import { Manifest, MANIFEST_MAGIC } from '../manifest/manifest.js';
import { looksLikePointer, MAX_POINTER_SIZE, parsePointer, pointerDamage, type Pointer } from '../manifest/pointer.js';
import { formatStructure } from '../media/format-structure.js';
import type { MediaStructure } from '../media/media-structure.js';
import { readMp4Tags } from '../media/mp4-tags.js';
import { openFileReader, type RandomAccessReader } from '../media/random-access-reader.js';
import { ChunkStore } from '../store/chunk-store.js';
import { formatBytes } from './context.js';

export interface Version {
  /** The pointer of this version, when it is known. */
  pointer: Pointer | null;
  /** Content size in bytes (the pointer's size, or the file's). */
  size: number;
  /** BLAKE3 file id: the pointer's, or hashed from the content. */
  fileId: string | null;
  manifest: Manifest | null;
  /** Set for a damaged pointer: what is wrong with it. */
  damage?: string;
  /** Metadata tags (MP4/MOV); null when not such a file; undefined when its content is not here. */
  tags: Record<string, string> | null | undefined;
}

export interface IdentifyOptions {
  repo: RepoPaths | null;
  store: ChunkStore | null;
  /** The blob id git named for this side (the diff command gets one), when known. */
  blobHex?: string;
}

/**
 * Content up to this size is hashed to find its version. Git hands over real content up to
 * `dits.smudgeInlineMax` (32 MiB by default) or a modified working-tree file; hashing a
 * bigger one on every `git diff` would cost seconds for nothing: such a file is not yet
 * added, and its summary says so without an id (so it still differs from any stored one).
 */
const HASH_MAX = 512 * 1024 * 1024;

function readHead(file: string, n: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    return buf.subarray(0, fs.readSync(fd, buf, 0, n, 0));
  } finally {
    fs.closeSync(fd);
  }
}

async function blobPointer(cwd: string, oid: string): Promise<Pointer | null> {
  if (!/^[0-9a-f]{40,64}$/.test(oid) || /^0+$/.test(oid)) return null;
  const r = await runGit(['cat-file', 'blob', oid], { cwd, allowFail: true });
  return r.exitCode === 0 && r.stdout.length <= MAX_POINTER_SIZE ? parsePointer(r.stdout) : null;
}

/** The index's pointer for a working-tree file that is up to date with it (git hands those over as they are). */
async function indexPointer(repo: RepoPaths, file: string, st: fs.Stats): Promise<Pointer | null> {
  const rel = path.relative(repo.workTree, path.resolve(file));
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return null;
  const posix = rel.split(path.sep).join('/');
  const e = readIndexEntries(repo.gitDir, repo.hashAlgo).find((x) => x.stage === 0 && x.path === posix);
  if (!e || e.size !== st.size % 2 ** 32 || e.mtime.seconds !== Math.floor(st.mtimeMs / 1000)) return null;
  const p = await blobPointer(repo.workTree, e.oid);
  return p && p.size === st.size ? p : null;
}

async function hashFile(file: string): Promise<string> {
  const h = new StreamHasher();
  for await (const piece of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) h.update(piece as Buffer);
  return h.digestHex();
}

/**
 * Which file each stored manifest is of (`<manifest id> <file id> <size>` lines), kept in
 * the store's tmp folder so that a `git log -p` over many files reads each manifest's
 * header once, not once per file shown. Only a cache: checked against the store on use,
 * rebuilt if it goes.
 */
function fileIdCachePath(store: ChunkStore): string {
  return path.join(store.dir, 'tmp', 'manifest-file-ids');
}

function readFileIdCache(file: string): Map<string, string> {
  const map = new Map<string, string>();
  let text = '';
  try {
    text = fs.readFileSync(file, 'latin1');
  } catch {
    return map;
  }
  for (const line of text.split('\n')) {
    const sp = line.indexOf(' ');
    if (sp === 64) map.set(line.slice(0, 64), line.slice(65));
  }
  return map;
}

/** `<file id> <size>` from a manifest's header, read without the chunk table; '-' when unreadable. */
function headerKey(store: ChunkStore, id: string): string {
  try {
    const fixed = store.manifestHead(id, 16);
    if (!fixed || fixed.length < 16 || !fixed.subarray(0, 8).equals(MANIFEST_MAGIC)) return '-';
    const len = fixed.readUInt32LE(12);
    if (len > 16 * 1024 * 1024) return '-';
    const head = store.manifestHead(id, 16 + len);
    if (!head || head.length < 16 + len) return '-';
    const h = JSON.parse(head.subarray(16).toString('utf8')) as { oid?: unknown; size?: unknown };
    return typeof h.oid === 'string' && typeof h.size === 'number' ? `${h.oid} ${h.size}` : '-';
  } catch {
    return '-';
  }
}

/** A stored manifest of the file with this id and size (its header names the file id). */
function findManifest(store: ChunkStore, fileId: string, size: number): string | null {
  const want = `${fileId} ${size}`;
  const cacheFile = fileIdCachePath(store);
  const cache = readFileIdCache(cacheFile);
  const verified = (id: string): boolean => {
    try {
      const m = Manifest.parse(store.getManifestBytes(id));
      return m.header.oid === fileId && m.header.size === size;
    } catch {
      return false;
    }
  };
  for (const [id, key] of cache) if (key === want && verified(id)) return id;
  let found: string | null = null;
  let added = false;
  for (const id of store.listManifestIds()) {
    if (cache.has(id)) continue;
    const key = headerKey(store, id);
    cache.set(id, key);
    added = true;
    if (key === want && found === null && verified(id)) found = id;
  }
  if (added) {
    try {
      const tmp = `${cacheFile}.${process.pid}`;
      fs.mkdirSync(path.dirname(cacheFile), { recursive: true });
      fs.writeFileSync(tmp, [...cache].map(([id, key]) => `${id} ${key}\n`).join(''));
      fs.renameSync(tmp, cacheFile);
    } catch {
      /* only a cache */
    }
  }
  return found;
}

/** The stored content of `manifest` as a random-access source (chunks read from the store, verified). */
function manifestReader(store: ChunkStore, manifest: Manifest): RandomAccessReader {
  const starts: number[] = [];
  for (const c of manifest.chunks()) starts.push(c.offset);
  const cache = new Map<number, Buffer>();
  const chunk = async (i: number): Promise<Buffer> => {
    let data = cache.get(i);
    if (data === undefined) {
      data = await store.getChunk(manifest.idRawAt(i));
      if (cache.size >= 8) cache.delete(cache.keys().next().value!);
      cache.set(i, data);
    }
    return data;
  };
  return {
    size: manifest.header.size,
    async read(offset, length) {
      const end = Math.min(offset + length, manifest.header.size);
      const parts: Buffer[] = [];
      let lo = 0;
      let hi = starts.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1;
        if (starts[mid]! <= offset) lo = mid;
        else hi = mid - 1;
      }
      for (let i = lo, at = offset; at < end && i < starts.length; i++) {
        const data = await chunk(i);
        const from = at - starts[i]!;
        const to = Math.min(data.length, end - starts[i]!);
        if (to > from) {
          parts.push(data.subarray(from, to));
          at = starts[i]! + to;
        }
      }
      return Buffer.concat(parts);
    },
  };
}

async function tagsOfFile(file: string): Promise<Record<string, string> | null> {
  const reader = await openFileReader(file);
  try {
    return await readMp4Tags(reader);
  } finally {
    await reader.close();
  }
}

/**
 * The repository at `cwd` and its store, when there are both (textconv and the diff driver
 * also run outside one, or before `git dits init`: they describe what the file itself says).
 * The caller closes the store.
 */
export async function openRepoAndStore(cwd: string): Promise<{ repo: RepoPaths | null; store: ChunkStore | null }> {
  let repo: RepoPaths | null = null;
  try {
    repo = await findRepo(cwd);
    return { repo, store: isDitsInitialised(repo) ? ChunkStore.open(repo.ditsDir) : null };
  } catch {
    return { repo, store: null };
  }
}

/** Which version `file` is (see the top of this file). */
export async function identifyVersion(cwd: string, file: string, opts: IdentifyOptions): Promise<Version> {
  const st = fs.statSync(file);
  const head = readHead(file, MAX_POINTER_SIZE + 1);
  let pointer = st.size <= MAX_POINTER_SIZE ? parsePointer(head) : null;
  let contentHere = pointer === null;
  if (pointer === null && looksLikePointer(head)) {
    const damage = pointerDamage(head, st.size <= MAX_POINTER_SIZE) ?? 'not a valid pointer';
    return { pointer: null, size: st.size, fileId: st.size <= HASH_MAX ? await hashFile(file) : null, manifest: null, damage, tags: null };
  }
  let fileId: string | null = pointer?.oid ?? null;
  if (pointer === null && opts.blobHex !== undefined) pointer = await blobPointer(cwd, opts.blobHex);
  if (pointer === null && opts.repo !== null) pointer = await indexPointer(opts.repo, file, st).catch(() => null);
  if (pointer === null && st.size <= HASH_MAX) {
    fileId = await hashFile(file);
    const manifestId = opts.store === null ? null : findManifest(opts.store, fileId, st.size);
    if (manifestId !== null) pointer = { oid: fileId, size: st.size, manifest: manifestId };
  }
  let manifest: Manifest | null = null;
  if (pointer !== null && opts.store !== null) {
    try {
      manifest = Manifest.parse(opts.store.getManifestBytes(pointer.manifest));
    } catch {
      manifest = null;
    }
  }
  let tags: Version['tags'];
  if (contentHere) tags = await tagsOfFile(file).catch(() => null);
  else if (manifest !== null && opts.store !== null) {
    tags = await readMp4Tags(manifestReader(opts.store, manifest)).catch(() => undefined);
    // chunks not here (pruned, lazy clone): the reader failed, not the container
    if (tags === null && manifest.header.media && !contentPresentFor(opts.store, manifest)) tags = undefined;
  }
  return { pointer, size: pointer?.size ?? st.size, fileId: pointer?.oid ?? fileId, manifest, tags };
}

function contentPresentFor(store: ChunkStore, manifest: Manifest): boolean {
  for (let i = 0; i < manifest.chunkCount; i++) if (!store.hasChunk(manifest.idRawAt(i))) return false;
  return true;
}

function tagLines(tags: Version['tags']): string[] {
  if (tags === null) return [];
  if (tags === undefined) return ['metadata tags: not read (the content is not in the local store)'];
  const keys = Object.keys(tags).sort();
  if (keys.length === 0) return ['metadata tags: none'];
  return [`metadata tags: ${keys.length}`, ...keys.map((k) => `  ${k}: ${tags[k]}`)];
}

/** The readable summary of one version (what textconv prints, what `git log -p` compares). */
export function describeVersion(v: Version): string[] {
  const size = `${formatBytes(v.size)} (${v.size} bytes)`;
  if (v.damage !== undefined) {
    return [`damaged Dits pointer (${v.damage}), ${size}`, `text id: ${v.fileId === null ? 'not computed' : `blake3:${v.fileId}`}`, 'restore it from a commit where it is whole, or re-add the real file'];
  }
  if (v.pointer === null) {
    const id = v.fileId === null ? `not computed (over ${formatBytes(HASH_MAX)})` : `blake3:${v.fileId}`;
    return [`file content, ${size}, not stored by Dits (not yet added)`, `file id: ${id}`, ...tagLines(v.tags)];
  }
  const lines = [`Dits file, ${size}`, `file id: blake3:${v.pointer.oid}`];
  if (!v.manifest) {
    lines.push(`manifest id: blake3:${v.pointer.manifest} (not in the local store)`);
    return lines;
  }
  lines.push(`manifest id: blake3:${v.pointer.manifest}`);
  const h = v.manifest.header;
  lines.push(`chunks: ${h.chunkCount} (FastCDC ${formatBytes(h.chunker.min)}/${formatBytes(h.chunker.avg)}/${formatBytes(h.chunker.max)})`);
  if (h.media) lines.push(...formatStructure(h.media as unknown as MediaStructure).split('\n'));
  else if (h.mediaFallback) lines.push(`container: plain chunking (${h.mediaFallback})`);
  lines.push(...tagLines(v.tags));
  return lines;
}

/** Which metadata tags changed between two versions, one line each ([] when none, or not known on a side). */
export function describeTagChanges(a: Version['tags'], b: Version['tags']): string[] {
  if (a === undefined || b === undefined) return a === b ? [] : ['metadata tags: not read on one side (content not in the local store)'];
  if (a === null && b === null) return [];
  const x = a ?? {};
  const y = b ?? {};
  const lines: string[] = [];
  for (const k of [...new Set([...Object.keys(x), ...Object.keys(y)])].sort()) {
    if (x[k] === y[k]) continue;
    if (x[k] === undefined) lines.push(`tag ${k} added: ${y[k]}`);
    else if (y[k] === undefined) lines.push(`tag ${k} removed (was ${x[k]})`);
    else lines.push(`tag ${k}: ${x[k]} -> ${y[k]}`);
  }
  return lines;
}
