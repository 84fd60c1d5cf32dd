/**
 * Checkout modes: a tracked video path shows its original, or its proxy (the light file
 * `git dits proxy make` recorded for that original file id, src/proxy/store-variant.ts) in
 * the original's place. Git's index and every commit keep the ORIGINAL's pointer whatever
 * the working tree shows: the clean filter knows a proxy's bytes and answers the original's
 * pointer (proxy-clean.ts), so `git status` stays clean.
 *
 * State, per working tree (`<git dir>/dits/checkout-modes.json`, replaced atomically):
 *   paths[path].mode    the mode chosen for the path (`git dits checkout --mode`); a path
 *                       without one follows `dits.checkoutMode` (default: original)
 *   paths[path].shown   set while a proxy is in the working tree there: which proxy, for
 *                       which original, and the file as written (size, inode, mtime), so it
 *                       is known again without reading it
 *   parked[fileId]      a file moved out of the way by a switch, in `<git dir>/dits/parked/<fileId>`,
 *                       with its stat at parking time
 *
 * A switch costs no copy when both versions are here: the displaced file gets a second name
 * in parked/ (a hard link), the other one is renamed over the path (an atomic replace: the
 * path always holds one of the two), and its parked name disappears with that rename. A
 * parked file whose stat no longer matches its record is used only if its bytes still hash
 * to its file id; else the version is written from the store, or (an original whose content
 * is not here) the path gets the original's pointer and the normal checkout fetches it.
 *
 * Nothing is lost by a crash at any point: the record is written before any rename, a
 * parked name is only added (never the only name removed), and a rerun finds each path
 * holding either version by its stat or its bytes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { errnoCode } from '../errors.js';
import { batchRead, blobOid } from '../git/cat-file.js';
import { compareEntryStat, readIndexEntries, type IndexEntrySummary } from '../git/index-file.js';
import type { RepoPaths } from '../git/repo.js';
import { StreamHasher } from '../hashing/blake3.js';
import { encodePointer, type Pointer } from '../manifest/pointer.js';
import type { ChunkStore } from '../store/chunk-store.js';
import { contentPresent, loadManifest, writeContent } from '../store/materialize.js';
import { readWorktreePointer, refreshIndex } from '../worktree/materialize-worktree.js';
import type { VariantRecord } from '../manifest/variant-record.js';
import {
  defaultCheckoutMode,
  modeOf,
  parkedDir,
  readModes,
  sameStamp,
  stampOf,
  writeModes,
  type CheckoutMode,
  type CheckoutModes,
  type ParkedFile,
  type PathMode,
} from './checkout-state.js';

export * from './checkout-state.js';

/** The ok proxy a checkout shows: the one made with `recipe` if given and there, else the newest (as store-variant.ts pickVariant). */
function pickProxy(store: ChunkStore, original: string, recipe?: string): VariantRecord | undefined {
  const ok = store.variantsOf(original, 'proxy').filter((v) => v.status === 'ok');
  return (recipe !== undefined ? ok.find((v) => v.recipe === recipe) : undefined) ?? ok[0];
}

/** The BLAKE3 file id of a file's bytes (read in 4 MiB pieces). */
export async function hashFileId(file: string): Promise<string> {
  const h = new StreamHasher();
  const fh = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return h.digestHex();
}

/**
 * Test-only crash points (`DITS_TEST_CRASH_AT=<name>`): the process kills itself there, as a
 * power cut would stop it, so the end-to-end tests can show a rerun loses nothing.
 */
function crashPoint(name: string): void {
  if (process.env.DITS_TEST_CRASH_AT === name) process.kill(process.pid, 'SIGKILL');
}

/** What a working-tree path holds, as far as a switch cares. */
export type Held =
  | { kind: 'missing' }
  | { kind: 'pointer' }
  | { kind: 'original' }
  | { kind: 'proxy'; proxy: string }
  /** anything else: edited by the user (an edited proxy among them); never touched */
  | { kind: 'changed'; fileId: string | null };

export interface TrackedEntry {
  path: string;
  /** the index's blob: the original's pointer */
  blobOid: string;
  pointer: Pointer;
}

/**
 * What `rel` holds: known by stat when it is the proxy last written there or matches the
 * index's stat data (the original as git last saw it), else by hashing its bytes.
 */
export async function heldAt(repo: RepoPaths, store: ChunkStore, e: TrackedEntry, state: PathMode | undefined, indexEntry: IndexEntrySummary | undefined): Promise<Held> {
  const file = path.join(repo.workTree, e.path);
  let st: fs.BigIntStats;
  try {
    st = fs.lstatSync(file, { bigint: true });
  } catch {
    return { kind: 'missing' };
  }
  if (!st.isFile()) return { kind: 'changed', fileId: null };
  // an edited proxy (or a proxy) already staged: the index no longer holds the original
  if (store.proxyDerived.byFileId(e.pointer.oid) || store.variantOwner(e.pointer.oid)) return { kind: 'changed', fileId: null };
  if (st.size <= 1024n) {
    const wp = readWorktreePointer(file);
    if (wp) return wp.pointer.oid === e.pointer.oid ? { kind: 'pointer' } : { kind: 'changed', fileId: null };
  }
  const shown = state?.shown && state.shown.original === e.pointer.oid ? state.shown : undefined;
  if (shown && sameStamp(shown.stamp, st)) return { kind: 'proxy', proxy: shown.proxy };
  if (!shown && indexEntry && Number(st.size) === e.pointer.size && compareEntryStat(indexEntry, st, { hashAlgo: repo.hashAlgo, indexMtimeSeconds: 0 }) === 'clean') return { kind: 'original' };
  const fileId = await hashFileId(file);
  if (fileId === e.pointer.oid) return { kind: 'original' };
  const owner = store.variantOwner(fileId);
  if (owner && owner.original === e.pointer.oid) return { kind: 'proxy', proxy: fileId };
  return { kind: 'changed', fileId };
}

/**
 * The parked file of `fileId` if it still holds those bytes (its recorded stat, else its
 * hash, says so); a parked file that does not is removed (nothing else names it: it is no
 * version of anything). Returns its path, or null.
 */
async function usableParked(gitDir: string, modes: CheckoutModes, fileId: string, size: number): Promise<string | null> {
  const file = path.join(parkedDir(gitDir), fileId);
  let st: fs.BigIntStats;
  try {
    st = fs.lstatSync(file, { bigint: true });
  } catch {
    delete modes.parked[fileId];
    return null;
  }
  if (st.isFile() && Number(st.size) === size && sameStamp(modes.parked[fileId]?.stamp, st)) return file;
  if (st.isFile() && Number(st.size) === size && (await hashFileId(file)) === fileId) return file;
  fs.rmSync(file, { force: true });
  delete modes.parked[fileId];
  return null;
}

/** Gives the file at `file` a second name, parked/<fileId> (a hard link; a copy where links fail), and records it. */
function park(gitDir: string, modes: CheckoutModes, file: string, fileId: string, manifest: string): void {
  const dir = parkedDir(gitDir);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.park-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    try {
      fs.linkSync(file, tmp);
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK' && code !== 'ENOTSUP') throw err;
      fs.copyFileSync(file, tmp, fs.constants.COPYFILE_EXCL); // another file system: a copy, still never a loss
    }
    fs.renameSync(tmp, path.join(dir, fileId));
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  modes.parked[fileId] = { manifest, stamp: stampOf(fs.statSync(path.join(dir, fileId), { bigint: true })), at: Date.now() };
}

/** Writes stored content into a new temp file in parked/ (verified chunk by chunk), for a rename into place. */
async function writeFromStore(gitDir: string, store: ChunkStore, p: Pointer): Promise<string> {
  const dir = parkedDir(gitDir);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.write-${process.pid}-${randomBytes(4).toString('hex')}`);
  await writeContent(store, p, loadManifest(store, p), tmp, { started: Date.now(), mode: 0o644 });
  return tmp;
}

/** Gives `src` the permission bits of the file it replaces (git records the executable bit). */
function keepMode(dest: string, src: string): void {
  try {
    const want = fs.statSync(dest).mode & 0o777;
    if ((fs.statSync(src).mode & 0o777) !== want) fs.chmodSync(src, want);
  } catch {
    /* nothing there: the default mode */
  }
}

/** Renames `src` over `dest` (atomic); across file systems, a copy to a temp beside `dest` first. */
function moveInto(src: string, dest: string): void {
  try {
    fs.renameSync(src, dest);
  } catch (err) {
    if (errnoCode(err) !== 'EXDEV') throw err;
    const tmp = path.join(path.dirname(dest), `.${path.basename(dest).slice(0, 100)}.dits-${randomBytes(4).toString('hex')}`);
    try {
      fs.copyFileSync(src, tmp, fs.constants.COPYFILE_EXCL);
      fs.renameSync(tmp, dest);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    fs.rmSync(src, { force: true });
  }
}

export interface SwitchReport {
  mode: CheckoutMode;
  /** how: `parked` renamed back from parked/ (no copy), `store` written from the local store, `pointer` the original's pointer written, its content to fetch */
  switched: { path: string; how: 'parked' | 'store' | 'pointer' }[];
  /** already showing that mode */
  already: string[];
  /** no ok proxy is recorded for the original there: stays original */
  noProxy: string[];
  /** a proxy is recorded but its content is not in the local store */
  proxyNotLocal: string[];
  /** the file was changed in the working tree (an edited proxy among them): left alone */
  changed: string[];
  /** deleted from the working tree: left alone */
  missing: string[];
  /** changed files kept as versions of their own (keepChanged) */
  kept: string[];
}

interface Plan {
  e: TrackedEntry;
  src: string;
  how: 'parked' | 'store' | 'pointer';
  /** the parked record `src` consumes */
  parkedId?: string;
  state: PathMode;
}

/**
 * Switches the given tracked paths to `mode` and remembers it for each. Paths are changed
 * only when they hold exactly one of the two versions; the index's stat data is refreshed
 * for those that were, so `git status` stays clean. Paths left as the original's pointer
 * (`how: 'pointer'`) are for the caller to finish (finishCheckout fetches and writes them).
 */
export async function switchCheckoutMode(
  repo: RepoPaths,
  store: ChunkStore,
  entries: TrackedEntry[],
  mode: CheckoutMode,
  opts: {
    recipe?: string;
    /**
     * original only: a changed file at a path that showed a proxy is kept as it is, as a new
     * version of its own (not an edit of the proxy): the path leaves proxy mode and the
     * file's mark as derived from a proxy is dropped, so it can be committed and pushed.
     */
    keepChanged?: boolean;
  } = {},
): Promise<SwitchReport> {
  const report: SwitchReport = { mode, switched: [], already: [], noProxy: [], proxyNotLocal: [], changed: [], missing: [], kept: [] };
  const modes = readModes(repo.gitDir);
  let index = new Map<string, IndexEntrySummary>();
  try {
    index = new Map(readIndexEntries(repo.gitDir, repo.hashAlgo).filter((x) => x.stage === 0).map((x) => [x.path, x]));
  } catch {
    /* a split or sparse index: files are known by their bytes instead */
  }
  const plans: Plan[] = [];
  // paths already in the mode asked: their stat data are refreshed too (a run killed between
  // its renames and the index update left them looking modified)
  const verified: TrackedEntry[] = [];
  const made: string[] = []; // temps written from the store, removed if the switch fails before using them
  try {
    try {
      for (const e of entries) {
        if (index.get(e.path)?.skipWorktree) continue; // outside a sparse checkout: no file to show
        const state = modes.paths[e.path];
        const held = await heldAt(repo, store, e, state, index.get(e.path));
        const file = path.join(repo.workTree, e.path);
        // a path that showed a proxy and was emptied (an edited proxy moved away) gets its original back
        const emptied = held.kind === 'missing' && mode === 'original' && state?.shown?.original === e.pointer.oid;
        if (held.kind === 'missing' && !emptied) report.missing.push(e.path);
        else if (held.kind === 'changed' && mode === 'original' && opts.keepChanged) {
          const fileId = held.fileId ?? (await hashFileId(file));
          store.proxyDerived.delete(fileId);
          modes.paths[e.path] = { mode };
          report.kept.push(e.path);
        } else if (held.kind === 'changed') report.changed.push(e.path);
        else if (mode === 'proxy') {
          if (held.kind === 'proxy') {
            report.already.push(e.path);
            verified.push(e);
            modes.paths[e.path] = { mode, shown: state?.shown ?? { original: e.pointer.oid, proxy: held.proxy, stamp: stampOf(fs.statSync(file, { bigint: true })) } };
            continue;
          }
          modes.paths[e.path] = { mode };
          const rec = pickProxy(store, e.pointer.oid, opts.recipe);
          if (!rec || !rec.fileId || rec.size === undefined || !rec.manifest) {
            report.noProxy.push(e.path);
            continue;
          }
          const proxyPointer: Pointer = { oid: rec.fileId, size: rec.size, manifest: rec.manifest };
          let src = await usableParked(repo.gitDir, modes, rec.fileId, rec.size);
          let how: Plan['how'] = 'parked';
          if (!src) {
            if (!contentPresent(store, rec.manifest)) {
              report.proxyNotLocal.push(e.path);
              continue;
            }
            src = await writeFromStore(repo.gitDir, store, proxyPointer);
            made.push(src);
            how = 'store';
          }
          if (held.kind === 'original') park(repo.gitDir, modes, file, e.pointer.oid, e.pointer.manifest);
          const stamp = stampOf(fs.statSync(src, { bigint: true }));
          plans.push({ e, src, how, parkedId: how === 'parked' ? rec.fileId : undefined, state: { mode, shown: { original: e.pointer.oid, proxy: rec.fileId, stamp } } });
        } else {
          modes.paths[e.path] = { mode };
          if (held.kind === 'pointer') {
            report.switched.push({ path: e.path, how: 'pointer' }); // the caller writes it, as a checkout does
            continue;
          }
          if (held.kind !== 'proxy' && held.kind !== 'missing') {
            report.already.push(e.path);
            verified.push(e);
            continue;
          }
          let src = await usableParked(repo.gitDir, modes, e.pointer.oid, e.pointer.size);
          let how: Plan['how'] = 'parked';
          if (!src) {
            if (contentPresent(store, e.pointer.manifest)) {
              src = await writeFromStore(repo.gitDir, store, e.pointer);
              how = 'store';
            } else {
              // the original is not here: its pointer goes in, and the normal checkout fetches it
              src = path.join(parkedDir(repo.gitDir), `.pointer-${process.pid}-${randomBytes(4).toString('hex')}`);
              fs.mkdirSync(path.dirname(src), { recursive: true });
              fs.writeFileSync(src, await pointerBlob(repo, e));
              how = 'pointer';
            }
            made.push(src);
          }
          if (held.kind === 'proxy') park(repo.gitDir, modes, file, held.proxy, store.variantOwner(held.proxy)?.manifest ?? '');
          plans.push({ e, src, how, parkedId: how === 'parked' ? e.pointer.oid : undefined, state: { mode } });
        }
      }
    } catch (err) {
      writeModes(repo.gitDir, modes); // files parked so far keep their records
      throw err;
    }
    // the record first: parked names and what each path will show
    for (const p of plans) modes.paths[p.e.path] = p.state;
    writeModes(repo.gitDir, modes);
    crashPoint('switch-recorded');
    const updates: { path: string; stat: fs.BigIntStats; expectedOid: string }[] = [];
    for (const e of verified) {
      const st = fs.statSync(path.join(repo.workTree, e.path), { bigint: true });
      const x = index.get(e.path);
      if (!x || compareEntryStat(x, st, { hashAlgo: repo.hashAlgo, indexMtimeSeconds: 0 }) !== 'clean') updates.push({ path: e.path, stat: st, expectedOid: e.blobOid });
    }
    for (const p of plans) {
      const file = path.join(repo.workTree, p.e.path);
      keepMode(file, p.src);
      moveInto(p.src, file);
      if (p.parkedId) delete modes.parked[p.parkedId];
      updates.push({ path: p.e.path, stat: fs.statSync(file, { bigint: true }), expectedOid: p.e.blobOid });
      report.switched.push({ path: p.e.path, how: p.how });
      crashPoint('switch-moved-one');
    }
    writeModes(repo.gitDir, modes);
    if (updates.length) await refreshIndex(repo, updates);
  } finally {
    for (const f of made) fs.rmSync(f, { force: true }); // (those moved into place are gone already)
  }
  return report;
}

/** The exact pointer blob the index holds for `e` (re-encoded when that gives the same blob). */
async function pointerBlob(repo: RepoPaths, e: TrackedEntry): Promise<Buffer> {
  const bytes = encodePointer(e.pointer);
  if ((await blobOid(bytes, repo.hashAlgo)) === e.blobOid) return bytes;
  const got = (await batchRead(repo.workTree, [e.blobOid])).get(e.blobOid);
  if (!got) throw new Error(`the index's blob ${e.blobOid} for ${e.path} cannot be read`);
  return got;
}

/**
 * For a checkout that is writing the files git left as pointers (finishCheckout): the paths
 * whose mode is proxy get their proxy instead of the original, when one is recorded and its
 * content is here (from parked/ by a rename, else from the store). Returns the paths written
 * that way and those whose proxy is recorded but not local (left as pointers: their
 * originals are not downloaded). Every other path is the caller's, as before.
 */
export async function writeProxiesForCheckout(
  repo: RepoPaths,
  store: ChunkStore,
  items: { path: string; pointer: Pointer }[],
  opts: {
    /**
     * Makes the proxies of these originals local (records and content, e.g. from the
     * remotes), before any is written; those still not local after it are `notLocal`.
     */
    fetchProxies?: (originals: string[]) => Promise<void>;
  } = {},
): Promise<{ written: string[]; notLocal: string[] }> {
  const res = { written: [] as string[], notLocal: [] as string[] };
  // no proxy here and none to fetch: nothing to choose
  if (items.length === 0 || (!store.hasVariants() && !opts.fetchProxies)) return res;
  const modes = readModes(repo.gitDir);
  const fallback = await defaultCheckoutMode(repo.workTree);
  const want = items.filter((i) => modeOf(modes, i.path, fallback) === 'proxy');
  let dirty = false;
  for (const i of items) {
    // the path holds a pointer again: whatever proxy was shown there is gone
    if (modes.paths[i.path]?.shown) {
      const mode = modes.paths[i.path]!.mode;
      modes.paths[i.path] = mode ? { mode } : {};
      dirty = true;
    }
  }
  if (want.length === 0) {
    if (dirty) writeModes(repo.gitDir, modes);
    return res;
  }
  if (opts.fetchProxies) {
    const missing = want.filter((i) => {
      const rec = pickProxy(store, i.pointer.oid);
      return !rec?.manifest || !contentPresent(store, rec.manifest);
    });
    if (missing.length) await opts.fetchProxies([...new Set(missing.map((i) => i.pointer.oid))]);
  }
  const updates: { path: string; stat: fs.BigIntStats; expectedOid: string }[] = [];
  try {
    for (const i of want) {
      const rec = pickProxy(store, i.pointer.oid);
      if (!rec || !rec.fileId || rec.size === undefined || !rec.manifest) continue; // no proxy: the original, as usual
      const file = path.join(repo.workTree, i.path);
      const wp = readWorktreePointer(file);
      if (!wp || wp.pointer.oid !== i.pointer.oid) continue;
      let src = await usableParked(repo.gitDir, modes, rec.fileId, rec.size);
      if (!src) {
        if (!contentPresent(store, rec.manifest)) {
          res.notLocal.push(i.path);
          continue;
        }
        src = await writeFromStore(repo.gitDir, store, { oid: rec.fileId, size: rec.size, manifest: rec.manifest });
      } else delete modes.parked[rec.fileId];
      const stamp = stampOf(fs.statSync(src, { bigint: true }));
      modes.paths[i.path] = { ...(modes.paths[i.path]?.mode ? { mode: modes.paths[i.path]!.mode } : {}), shown: { original: i.pointer.oid, proxy: rec.fileId, stamp } };
      writeModes(repo.gitDir, modes);
      try {
        keepMode(file, src);
        moveInto(src, file);
      } catch (err) {
        fs.rmSync(src, { force: true });
        throw err;
      }
      updates.push({ path: i.path, stat: fs.statSync(file, { bigint: true }), expectedOid: await blobOid(wp.bytes, repo.hashAlgo) });
      res.written.push(i.path);
      dirty = false;
    }
  } finally {
    if (dirty) writeModes(repo.gitDir, modes);
    if (updates.length) await refreshIndex(repo, updates);
  }
  return res;
}

/**
 * Whether `rel`, where a proxy of `originalFileId` was shown, holds it still ('proxy', by the
 * recorded stat, else by its bytes when the size is the proxy's), holds something else
 * ('edited': an edited proxy, or any other file written there), or shows no proxy (null).
 */
export async function proxyStateAt(repo: RepoPaths, modes: CheckoutModes, rel: string, originalFileId: string): Promise<'proxy' | 'edited' | null> {
  const shown = modes.paths[rel]?.shown;
  if (!shown || shown.original !== originalFileId) return null;
  let st: fs.BigIntStats;
  try {
    st = fs.lstatSync(path.join(repo.workTree, rel), { bigint: true });
  } catch {
    return null;
  }
  if (sameStamp(shown.stamp, st)) return 'proxy';
  if (!st.isFile()) return 'edited';
  if (Number(st.size) === shown.stamp.size && (await hashFileId(path.join(repo.workTree, rel))) === shown.proxy) return 'proxy';
  return readWorktreePointer(path.join(repo.workTree, rel)) ? null : 'edited';
}

/** Every file in parked/ with its record (null for a file parked by a run that crashed before writing one). */
export function listParked(gitDir: string, modes: CheckoutModes): { fileId: string; file: string; record: ParkedFile | null; temp: boolean; st: fs.Stats }[] {
  const dir = parkedDir(gitDir);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out = [];
  for (const name of names) {
    const file = path.join(dir, name);
    try {
      const st = fs.lstatSync(file);
      out.push({ fileId: name, file, record: modes.parked[name] ?? null, temp: name.startsWith('.'), st });
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

export interface ParkedPlan {
  /** parked files no tracked path of this working tree can switch back to, whose content is safe elsewhere */
  drop: { name: string; file: string; bytes: number }[];
  /** unused, but kept: their content is neither in the local store nor known on a remote (the parked file may be its last copy) */
  keptLastCopy: string[];
}

/** Whether every chunk of a manifest is in the local store or recorded as held by a remote. */
function contentSafe(store: ChunkStore, manifestId: string): boolean {
  if (!manifestId || !store.hasManifest(manifestId)) return false;
  if (contentPresent(store, manifestId)) return true;
  let m;
  try {
    m = loadManifest(store, { oid: '', size: 0, manifest: manifestId });
  } catch {
    return false;
  }
  for (let i = 0; i < m.chunkCount; i++) {
    const id = m.idRawAt(i);
    if (!store.locate(id) && !store.isRemoteHeld(id)) return false;
  }
  return true;
}

/**
 * For gc: the parked files of this working tree that no tracked path uses (`used`: the file
 * ids of the originals in the index and of their proxies) and whose content is kept
 * elsewhere (the local store, or chunks a remote is recorded to hold). Temps left by a killed
 * switch go after an hour.
 */
export function planParkedDrop(gitDir: string, store: ChunkStore, used: ReadonlySet<string>, now = Date.now()): ParkedPlan {
  const modes = readModes(gitDir);
  const plan: ParkedPlan = { drop: [], keptLastCopy: [] };
  for (const p of listParked(gitDir, modes)) {
    const bytes = p.st.blocks * 512;
    if (p.temp) {
      if (now - p.st.mtimeMs > 3600_000) plan.drop.push({ name: p.fileId, file: p.file, bytes });
      continue;
    }
    if (used.has(p.fileId)) continue;
    const manifest = p.record?.manifest || store.variantOwner(p.fileId)?.manifest || '';
    if (contentSafe(store, manifest)) plan.drop.push({ name: p.fileId, file: p.file, bytes });
    else plan.keptLastCopy.push(p.fileId);
  }
  return plan;
}

export function applyParkedDrop(gitDir: string, plan: ParkedPlan): number {
  const modes = readModes(gitDir);
  let freed = 0;
  for (const d of plan.drop) {
    fs.rmSync(d.file, { force: true, recursive: true });
    delete modes.parked[d.name];
    freed += d.bytes;
  }
  if (plan.drop.length) writeModes(gitDir, modes);
  return freed;
}
