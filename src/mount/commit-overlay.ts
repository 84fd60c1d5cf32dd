/**
 * `git dits commit-mount`: the overlay of a writable mount as a new commit on top of the
 * mounted one, made in a temporary index (GIT_INDEX_FILE, as lifecycle/snapshot.ts does); a
 * working tree that has the branch checked out is then fast-forwarded to it (git merge
 * --ff-only there: its index and files follow, local changes to other files stay, and a
 * file changed both there and in the commit makes it refuse, changing nothing).
 *
 * Plan: the merged view (revision + overlay) is walked; a path the view shows from the
 * revision is left as it is in the index; a path that is gone is removed; a path from the
 * overlay is staged:
 * - not written (renamed or chmod only): the revision's blob (a pointer stays a pointer);
 * - a tracked file written in place with the repository's chunker sizes, plain or a media
 *   container whose cut plan is the same in the base and the new bytes: partial re-chunk
 *   (partial-rechunk.ts): the old chunks are kept outside the changed stretches, the chunks
 *   around them cut again (with the plan);
 * - any other file the attributes give to Dits (new, or a container whose structure moved):
 *   a full ingest of its bytes as the view shows them, with the container's cut plan;
 * - other files: a git blob of their bytes.
 * The new file id: from the old version's 4 MiB leaves (a side file kept at ingest) and the
 * leaves the edit touched or a size change moved (edited-file-id.ts); else from every byte
 * of the new version (see partial-rechunk.ts), read from the view (the
 * unchanged chunks from the store, verified). The bytes read for it are reported apart
 * from those cut again.
 *
 * Where the commit goes: the branch HEAD names when the mounted commit is still its tip
 * (compare-and-swap on the ref), else the branch given with `branch` (created at the new
 * commit, or moved if it points at the mounted commit). A branch that moved on since the
 * mount is refused: the user merges, nothing is overwritten.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DitsUserError } from '../errors.js';
import { runGit } from '../git/exec.js';
import { readDitsSettings } from '../git/dits-config.js';
import type { RepoPaths } from '../git/repo.js';
import { Manifest, ManifestBuilder } from '../manifest/manifest.js';
import { encodePointer, parsePointer } from '../manifest/pointer.js';
import { ChunkStore } from '../store/chunk-store.js';
import { ingest, type ByteSource } from '../store/ingest.js';
import { BlobReader } from './blob-reader.js';
import { MountedRevision } from './mounted-revision.js';
import { readMounts, readRecord } from './mount-point.js';
import { Overlay, overlayDir, type OverlayFile } from './overlay.js';
import { rechunkPartially } from './partial-rechunk.js';
import { editedFileId } from './edited-file-id.js';
import { RamCache } from './ram-cache.js';
import { RemoteSource, type NamedStorage } from './remote-source.js';
import { loadRevisionTree, type TreeFile } from './revision-tree.js';
import { WritableRevision } from './writable-revision.js';
import { LiveMount } from './live-control.js';
import { preparePatches, settlePatches, undoPatches, type PatchCandidate } from './worktree-patch.js';
import { processAlive } from '../process-alive.js';
import type { MediaAnalysis } from '../filter/dits-filter.js';
import type { RandomAccessReader } from '../media/random-access-reader.js';
import { analyzeReaderForIngest } from '../filter/media-analysis.js';
import type { CutPlan } from '../store/piece-cutter.js';

export interface OverlayChange {
  path: string;
  kind: 'added' | 'modified' | 'deleted' | 'renamed' | 'mode';
  /** For renamed: where it came from. */
  from?: string;
  size?: number;
  /** Changed byte ranges of a modified file ([start, end) pairs). */
  ranges?: [number, number][];
}

/** The changes of an overlay over its revision, for `git dits mount --status`. */
export function listChanges(overlay: Overlay): OverlayChange[] {
  const tree = overlay.tree;
  const view = new Map<string, ReturnType<Overlay['resolve']>>();
  const walk = (dir: string): void => {
    for (const name of overlay.list(dir)) {
      const p = `${dir === '/' ? '' : dir}/${name}`;
      const r = overlay.resolve(p);
      if (!r) continue;
      if (r.node.kind === 'dir') walk(p);
      else view.set(p, r);
    }
  };
  walk('/');
  const out: OverlayChange[] = [];
  const movedFrom = new Set<string>();
  for (const [p, r] of view) {
    if (!r || r.from === 'base') continue;
    if (r.node.kind === 'link') {
      const size = Buffer.byteLength(r.node.target);
      out.push({ path: p, kind: tree.nodes.has(p) ? 'modified' : 'added', size, ranges: [[0, size]] });
      continue;
    }
    const f = r.node as OverlayFile;
    const ranges = f.written.map((w) => [w.start, w.end] as [number, number]);
    if (f.base === null) out.push({ path: p, kind: 'added', size: f.size, ranges });
    else if (f.base !== p) {
      movedFrom.add(f.base);
      out.push({ path: p, kind: 'renamed', from: f.base, size: f.size, ...(ranges.length || f.size !== f.baseLen ? { ranges } : {}) });
    } else {
      const b = tree.nodes.get(p);
      const same = ranges.length === 0 && b && b.kind !== 'dir' && b.size === f.size && f.baseLen === f.size;
      // moved away and back, or chmod to the mode it had: no change
      if (same && (b.kind === 'link' || (b.mode === '100755') === ((f.mode & 0o111) !== 0))) continue;
      out.push({ path: p, kind: same ? 'mode' : 'modified', size: f.size, ranges });
    }
  }
  for (const [p, n] of tree.nodes) {
    if (n.kind === 'dir' || view.has(p)) continue;
    if (!movedFrom.has(p)) out.push({ path: p, kind: 'deleted' });
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : 1));
}

export interface CommitMountOptions {
  repo: RepoPaths;
  /** The mounted commit (the overlay's key). */
  commit: string;
  message: string;
  /** A branch to commit to instead of HEAD's. */
  branch?: string;
  openStorages: () => Promise<NamedStorage[]>;
}

export interface CommitMountResult {
  commit: string;
  ref: string;
  changes: OverlayChange[];
  /** Per tracked file written: how it was stored and what was read. */
  files: { path: string; how: 'partial' | 'full' | 'git' | 'unchanged'; bytesCut: number; bytesHashed: number; newBytes: number; chunksReused: number; chunksCut: number }[];
  /** The working tree where the branch is checked out, fast-forwarded to the commit; null when none is. */
  worktree: string | null;
  /** A live writable mount that was paused for the commit: where, and why it could not show the commit (or null). */
  mount?: { at: string; error: string | null };
}

/** The working tree (main or linked) that has `ref` checked out, if any. */
async function worktreeOf(cwd: string, ref: string): Promise<string | null> {
  const r = await runGit(['worktree', 'list', '--porcelain'], { cwd, allowFail: true });
  if (r.exitCode !== 0) return null;
  let at: string | null = null;
  for (const line of r.stdout.toString('utf8').split('\n')) {
    if (line.startsWith('worktree ')) at = line.slice('worktree '.length);
    else if (line === `branch ${ref}` && at && fs.existsSync(at)) return at;
    else if (line === 'bare') at = null;
  }
  return null;
}

/** The environment of a git command on the user's own index (not commit-mount's temporary one). */
function withoutIndex(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.GIT_INDEX_FILE;
  delete env.GIT_DIR;
  delete env.GIT_WORK_TREE;
  return env;
}

/** The branch the commit goes to, checked against the mounted commit (see the file comment). */
async function targetRef(cwd: string, commit: string, branch: string | undefined): Promise<{ ref: string; old: string | null }> {
  if (branch) {
    const ref = branch.startsWith('refs/') ? branch : `refs/heads/${branch}`;
    const ok = await runGit(['check-ref-format', ref], { cwd, allowFail: true });
    if (ok.exitCode !== 0) throw new DitsUserError('bad-branch', `'${branch}' is not a valid branch name`, { exitCode: 2 });
    const cur = await runGit(['rev-parse', '--verify', '--quiet', ref], { cwd, allowFail: true });
    const at = cur.exitCode === 0 ? cur.stdout.toString('utf8').trim() : null;
    if (at !== null && at !== commit) {
      throw new DitsUserError('base-moved', `branch ${branch} points at ${at.slice(0, 12)}, not at the mounted commit ${commit.slice(0, 12)}`, { hint: 'name a new branch with --branch <name>, then merge it' });
    }
    return { ref, old: at };
  }
  const head = await runGit(['symbolic-ref', '-q', 'HEAD'], { cwd, allowFail: true });
  const ref = head.exitCode === 0 ? head.stdout.toString('utf8').trim() : null;
  const tip = ref ? await runGit(['rev-parse', '--verify', '--quiet', ref], { cwd, allowFail: true }) : null;
  const at = tip && tip.exitCode === 0 ? tip.stdout.toString('utf8').trim() : null;
  if (!ref || at !== commit) {
    throw new DitsUserError(
      'base-moved',
      ref ? `the mounted commit ${commit.slice(0, 12)} is not the tip of ${ref.replace('refs/heads/', '')} (now ${at ? at.slice(0, 12) : 'unborn'})` : `HEAD is detached: there is no current branch to commit the mount to`,
      { hint: 'commit it to a branch of its own with --branch <name> (created at the new commit), then merge that branch' },
    );
  }
  return { ref, old: at };
}

/** Reads the view of one path as a ByteSource (for a full ingest). */
function viewSource(w: WritableRevision, p: string, fd: number, size: number): ByteSource {
  let at = 0;
  return {
    async read(buf: Buffer): Promise<number> {
      const want = Math.min(buf.length, size - at);
      if (want <= 0) return 0;
      const n = await w.read(p, fd, buf, want, at);
      if (n < 0) throw new Error(`reading ${p.slice(1)} from the mount's view failed (errno ${-n})`);
      at += n;
      return n;
    },
  };
}

export async function commitOverlay(o: CommitMountOptions): Promise<CommitMountResult> {
  const dir = overlayDir(o.repo.ditsDir, o.commit);
  if (!Overlay.exists(dir)) throw new DitsUserError('overlay-empty', `nothing was written to the mount of ${o.commit.slice(0, 12)}: there is nothing to commit`);
  // a mount still being written would change the overlay under the commit: it is paused
  // (its writers wait) for the commit, then shows the new commit (live-control.ts)
  let live: LiveMount | null = null;
  let liveAt: string | null = null;
  for (const m of readMounts()) {
    if (m.fsType !== 'fuse.dits') continue;
    const rec = readRecord(o.repo.ditsDir, m.mountPoint);
    if (rec?.writable && rec.commit === o.commit) {
      if (!rec.control || !processAlive(rec.pid)) {
        throw new DitsUserError('mount-busy', `${m.mountPoint} is mounted writable on ${o.commit.slice(0, 12)} and may still be written`, { hint: `unmount it first (\`git dits umount ${m.mountPoint}\`: the overlay is kept), then commit-mount, then mount again` });
      }
      live = await LiveMount.pause(rec.control, m.mountPoint);
      liveAt = m.mountPoint;
      break;
    }
  }
  try {
    const r = await commitQuiet(o, dir, live !== null);
    if (live) {
      const err = await live.rebase(r.commit);
      r.mount = { at: liveAt!, error: err };
    }
    return r;
  } catch (err) {
    await live?.resume();
    throw err;
  } finally {
    live?.close();
  }
}

/** The commit, with nothing writing to the overlay (unmounted, or a live mount paused). */
async function commitQuiet(o: CommitMountOptions, dir: string, live: boolean): Promise<CommitMountResult> {
  const cwd = o.repo.workTree;
  const target = await targetRef(cwd, o.commit, o.branch);
  const tree = await loadRevisionTree(cwd, o.commit);
  const overlay = Overlay.open(dir, tree);
  const changes = listChanges(overlay);
  if (changes.length === 0) {
    // written and undone (a file made then removed, say): nothing to commit, nothing to keep
    if (live) overlay.close();
    else overlay.destroy();
    throw new DitsUserError('overlay-empty', `what was written to the mount of ${o.commit.slice(0, 12)} leaves its files as they were: there is nothing to commit`, { hint: 'the overlay was cleared' });
  }
  const settings = await readDitsSettings(cwd);
  const store = ChunkStore.open(o.repo.ditsDir, { create: true, durable: settings.durable });
  const blobs = new BlobReader(cwd);
  const ro = new MountedRevision(tree, { deps: { store, cache: null, ram: new RamCache(64 << 20), remote: new RemoteSource(o.openStorages) }, blobs, log: () => {} });
  const w = new WritableRevision(ro, overlay);
  const tmpIndex = path.join(o.repo.gitDir, `dits-commit-mount-index.${process.pid}.${randomBytes(4).toString('hex')}`);
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_INDEX_FILE: tmpIndex };
  const files: CommitMountResult['files'] = [];
  try {
    await runGit(['read-tree', o.commit], { cwd, env });
    const staged: string[] = [];
    const removed: string[] = [];
    /** big files written in place: their working-tree copy may be patched (worktree-patch.ts) */
    const patchable: PatchCandidate[] = [];
    const ditsPaths = new Set<string>();
    const writtenPaths = changes.filter((c) => c.kind !== 'deleted').map((c) => c.path.slice(1));
    if (writtenPaths.length) {
      const r = await runGit(['check-attr', '--cached', '-z', '--stdin', 'filter'], { cwd, env, input: writtenPaths.join('\0') + '\0' });
      const f = r.stdout.toString('utf8').split('\0');
      for (let i = 0; i + 2 < f.length; i += 3) if (f[i + 2] === 'dits') ditsPaths.add(f[i]!);
    }
    for (const c of changes) {
      const rel = c.path.slice(1);
      if (c.kind === 'deleted') {
        removed.push(rel);
        continue;
      }
      if (c.kind === 'renamed') removed.push(c.from!.slice(1));
      const r = overlay.resolve(c.path)!;
      if (r.from === 'overlay' && r.node.kind === 'link') {
        const blob = Buffer.from(r.node.target);
        const oid = (await runGit(['hash-object', '-w', '--no-filters', '--stdin'], { cwd, input: blob })).stdout.toString('utf8').trim();
        staged.push(`120000 ${oid}\t${rel}`);
        files.push({ path: rel, how: 'git', bytesCut: 0, bytesHashed: blob.length, newBytes: blob.length, chunksReused: 0, chunksCut: 0 });
        continue;
      }
      const f = r.node as OverlayFile;
      const baseNode = f.base ? tree.nodes.get(f.base) : undefined;
      const gitMode = baseNode?.kind === 'link' ? '120000' : f.mode & 0o111 ? '100755' : '100644';
      if (baseNode && baseNode.kind !== 'dir' && f.written.length === 0 && f.size === baseNode.size && f.baseLen === baseNode.size) {
        staged.push(`${gitMode} ${baseNode.blobOid}\t${rel}`);
        files.push({ path: rel, how: 'unchanged', bytesCut: 0, bytesHashed: 0, newBytes: 0, chunksReused: 0, chunksCut: 0 });
        continue;
      }
      const fd = w.open(c.path, 0);
      try {
        let blob: Buffer;
        // tracked by the attributes the commit has, or a Dits pointer already (its attributes
        // may live only in a working tree): never a multi-GiB git blob
        if (ditsPaths.has(rel) || (baseNode?.kind === 'file' && baseNode.pointer)) {
          const res = await storeTracked(store, w, c.path, fd, f, baseNode?.kind === 'file' ? baseNode : undefined, settings.chunker, settings.mediaAware);
          files.push({ path: rel, ...res.stats });
          blob = res.pointer;
          const pointer = parsePointer(blob);
          if (c.kind === 'modified' && f.base === c.path && baseNode?.kind === 'file' && pointer) {
            // what differs: the writes, and what a truncation below the old size cut (zeros now, or written again)
            const cut = f.baseLen < baseNode.size ? [{ start: f.baseLen, end: Math.min(f.size, baseNode.size) }] : [];
            patchable.push({ rel, pointer, oldSize: baseNode.size, written: [...f.written, ...cut], read: viewRange(w, c.path) });
          }
        } else {
          const buf = Buffer.alloc(f.size);
          const n = await w.read(c.path, fd, buf, f.size, 0);
          if (n !== f.size) throw new Error(`reading ${rel} from the mount's view failed (${n})`);
          blob = buf;
          files.push({ path: rel, how: 'git', bytesCut: 0, bytesHashed: f.size, newBytes: f.size, chunksReused: 0, chunksCut: 0 });
        }
        const oid = (await runGit(['hash-object', '-w', '--no-filters', '--stdin'], { cwd, input: blob })).stdout.toString('utf8').trim();
        staged.push(`${gitMode} ${oid}\t${rel}`);
      } finally {
        w.release(fd);
      }
    }
    store.commit();
    const zero = '0'.repeat(o.repo.hashAlgo === 'sha256' ? 64 : 40);
    const info = [...removed.filter((p) => !staged.some((s) => s.endsWith(`\t${p}`))).map((p) => `0 ${zero}\t${p}`), ...staged];
    if (info.length) await runGit(['update-index', '-z', '--index-info'], { cwd, env, input: info.join('\0') + '\0' });
    const newTree = (await runGit(['write-tree'], { cwd, env })).stdout.toString('utf8').trim();
    const commit = (await runGit(['commit-tree', newTree, '-p', o.commit, '-F', '-'], { cwd, input: o.message })).stdout.toString('utf8').trim();
    const checkedOut = await worktreeOf(cwd, target.ref);
    if (checkedOut) {
      // the branch is checked out: a fast-forward there moves it and brings its index and
      // files along (git's own checks and hooks: a file changed there and in the commit is
      // not overwritten), so `git status` does not show the mount's change undone
      const patches = await preparePatches(checkedOut, o.commit, patchable);
      let ff: Awaited<ReturnType<typeof runGit>>;
      try {
        ff = await runGit(['merge', '--ff-only', '--quiet', commit], { cwd: checkedOut, env: withoutIndex(), allowFail: true });
      } catch (err) {
        undoPatches(patches);
        throw err;
      }
      if (ff.exitCode === 0) settlePatches(patches);
      else undoPatches(patches);
      if (ff.exitCode !== 0) {
        const why = (ff.stderr.trim().split('\n').find((l) => /error|fatal/i.test(l)) ?? `git merge --ff-only exited ${ff.exitCode}`).replace(/^(error|fatal): /, '');
        const moved = /not possible to fast-forward|diverg/i.test(why);
        throw new DitsUserError(
          moved ? 'base-moved' : 'worktree-busy',
          moved
            ? `${target.ref} moved while the commit was made; nothing was changed (the overlay is kept)`
            : `${target.ref} is checked out at ${checkedOut}, whose files cannot take the commit (${why}); nothing was changed (the overlay is kept)`,
          { hint: moved ? `the commit is ${commit}: \`git branch <name> ${commit.slice(0, 12)}\` keeps it, or run commit-mount again with --branch <name>` : `commit or stash those changes there and run commit-mount again, or commit the mount to a branch of its own with --branch <name>` },
        );
      }
    } else {
      // compare-and-swap: a branch that moved meanwhile is not overwritten
      const cas = await runGit(['update-ref', '-m', 'dits commit-mount', target.ref, commit, target.old ?? zero], { cwd, allowFail: true });
      if (cas.exitCode !== 0) {
        throw new DitsUserError('base-moved', `${target.ref} moved while the commit was made; nothing was changed (the overlay is kept)`, { hint: `the commit is ${commit}: \`git branch <name> ${commit.slice(0, 12)}\` keeps it, or run commit-mount again with --branch <name>` });
      }
    }
    await w.close();
    // every change is in the commit (a live mount removes its overlay itself when it rebases)
    if (!live) overlay.destroy();
    return { commit, ref: target.ref, changes, files, worktree: checkedOut };
  } finally {
    await w.close().catch(() => {});
    blobs.close();
    store.close();
    fs.rmSync(tmpIndex, { force: true });
  }
}

/** Stores one tracked file as the view shows it; its pointer and how it was done. */
async function storeTracked(
  store: ChunkStore,
  w: WritableRevision,
  p: string,
  fd: number,
  f: OverlayFile,
  base: TreeFile | undefined,
  params: { minSize: number; avgSize: number; maxSize: number },
  mediaAware: boolean,
): Promise<{ pointer: Buffer; stats: Omit<CommitMountResult['files'][number], 'path'> }> {
  let old: Manifest | null = null;
  if (base?.pointer) {
    try {
      old = Manifest.parse(store.getManifestBytes(base.pointer.manifest));
    } catch {
      old = null; // not local: a full ingest reads the view (fetching the content)
    }
  }
  // what `git dits add` would find in these bytes (media-aware cutting), read through the view
  let analysis: MediaAnalysis | null = null;
  if (mediaAware) {
    try {
      analysis = await analyzeReaderForIngest(viewReader(w, p, fd, f.size));
    } catch {
      analysis = null; // as add: a parse failure is plain chunking
    }
  }
  const c = old?.header.chunker;
  const sameChunker = c && c.min === params.minSize && c.avg === params.avgSize && c.max === params.maxSize;
  const noPlan = !analysis?.cutPlan || (analysis.cutPlan.forced.length === 0 && analysis.cutPlan.preferred.length === 0);
  let partial = Boolean(old && sameChunker && old.header.media === null && !analysis?.media && noPlan);
  let plan: CutPlan | undefined;
  if (old && sameChunker && !partial && analysis && f.base && base) {
    // a container: cut again around the edit only if the base version's bytes give the same
    // plan (the structure did not move) and its manifest was cut with one (partial-rechunk.ts)
    const was = await analyzeBase(w, f.base, base.size);
    const sameMedia = (old.header.media === null) === !was?.media && (old.header.mediaFallback ?? null) === (was?.fallback ?? null);
    if (was && sameMedia && samePlan(was.cutPlan, analysis.cutPlan)) {
      partial = true;
      plan = analysis.cutPlan;
    }
  }
  if (old && partial) {
    const builder = new ManifestBuilder();
    let newBytes = 0;
    const changed = f.written.map((r) => ({ start: r.start, end: r.end }));
    if (f.baseLen < old.header.size) changed.push({ start: f.baseLen, end: Math.max(f.baseLen, Math.min(f.size, old.header.size)) });
    const res = await rechunkPartially(
      {
        old,
        newSize: f.size,
        changed,
        params,
        // about one chunk at a time: the cuts usually line up again within a chunk or two
        window: params.maxSize,
        plan,
        read: async (offset, length) => {
          const b = Buffer.allocUnsafe(length);
          const n = await w.read(p, fd, b, length, offset);
          if (n !== length) throw new Error(`reading ${p.slice(1)} from the mount's view failed (${n})`);
          return b;
        },
        onNewChunk: async (id, data) => {
          const r = store.putChunks(id, [data]);
          const put = r instanceof Promise ? await r : r;
          newBytes += put.bytes;
        },
      },
      builder,
    );
    // the file id: from the old version's 4 MiB leaves and the changed ones when it can
    // (edited-file-id.ts), else every byte of the new version (see partial-rechunk.ts for why)
    const { oid, bytesHashed } = await editedFileId({
      ditsDir: store.dir,
      base: { oid: old.header.oid, size: old.header.size },
      newSize: f.size,
      changed,
      read: (buf, offset, length) => w.read(p, fd, buf, length, offset),
    });
    const enc = builder.encode({ oid, chunker: { algorithm: 'fastcdc-2020', min: params.minSize, avg: params.avgSize, max: params.maxSize }, media: plan ? analysis?.media ?? null : null, mediaFallback: analysis?.fallback });
    await store.commitAsync({ id: enc.id, bytes: enc.bytes });
    return {
      pointer: encodePointer({ oid, size: f.size, manifest: enc.id }),
      stats: { how: 'partial', bytesCut: res.bytesRead, bytesHashed, newBytes, chunksReused: res.chunksReused, chunksCut: res.chunksCut },
    };
  }
  const r = await ingest(store, viewSource(w, p, fd, f.size), { params, cutPlan: analysis?.cutPlan, media: analysis?.media ?? null, mediaFallback: analysis?.fallback });
  return { pointer: r.pointerBytes, stats: { how: 'full', bytesCut: f.size, bytesHashed: f.size, newBytes: r.newBytes, chunksReused: 0, chunksCut: r.header.chunkCount } };
}

/** What the container analysis finds in the base version's bytes (the mounted revision's), or null. */
async function analyzeBase(w: WritableRevision, basePath: string, size: number): Promise<MediaAnalysis | null> {
  const fd = w.ro.open(basePath, 0);
  if (fd < 0) return null;
  try {
    return await analyzeReaderForIngest({
      size,
      async read(offset: number, length: number): Promise<Buffer> {
        const want = Math.max(0, Math.min(length, size - offset));
        const b = Buffer.allocUnsafe(want);
        const n = await w.ro.read(fd, b, want, offset);
        if (n < 0) throw new Error(`reading ${basePath.slice(1)} from the mounted revision failed (errno ${-n})`);
        return b.subarray(0, n);
      },
    });
  } catch {
    return null;
  } finally {
    w.ro.release(fd);
  }
}

function samePlan(a: CutPlan | undefined, b: CutPlan | undefined): boolean {
  const eq = (x: ArrayLike<number>, y: ArrayLike<number>): boolean => {
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  };
  const none = { forced: [], preferred: [] };
  return eq((a ?? none).forced, (b ?? none).forced) && eq((a ?? none).preferred, (b ?? none).preferred);
}

/** Bytes of one path as the view shows them (its own handle per call). */
function viewRange(w: WritableRevision, p: string): (offset: number, length: number) => Promise<Buffer> {
  return async (offset, length) => {
    const fd = w.open(p, 0);
    if (fd < 0) throw new Error(`opening ${p.slice(1)} in the mount's view failed (errno ${-fd})`);
    try {
      const b = Buffer.allocUnsafe(length);
      const n = await w.read(p, fd, b, length, offset);
      if (n !== length) throw new Error(`reading ${p.slice(1)} from the mount's view failed (${n})`);
      return b;
    } finally {
      w.release(fd);
    }
  };
}

/** Random access to the view of one file, for the container parser. */
function viewReader(w: WritableRevision, p: string, fd: number, size: number): RandomAccessReader {
  return {
    size,
    async read(offset: number, length: number): Promise<Buffer> {
      const want = Math.max(0, Math.min(length, size - offset));
      const b = Buffer.allocUnsafe(want);
      const n = await w.read(p, fd, b, want, offset);
      if (n < 0) throw new Error(`reading ${p.slice(1)} from the mount's view failed (errno ${-n})`);
      return b.subarray(0, n);
    },
  };
}
