/**
 * One git-remote-dits run: the handlers behind the helper protocol, over one storage.
 *
 * push  : resolve sources, refuse non-fast-forwards, upload content (chunks and manifests
 *         the remote lacks), then one bundle of the new git objects, then the ref state by
 *         compare-and-swap. A lost race re-reads the state: refs someone else moved are
 *         refused with "fetch first", the rest retried, so no commit is ever lost.
 *         A first push creates the remote (v1/format.json first).
 * list  : for a fetch, clone or ls-remote, a file or S3 location with no remote is an error.
 * fetch : set the repository up for Dits if needed (deps.prepareRepo), then apply, in push
 *         order, the bundles whose tips are missing here. Shallow and partial clones are
 *         refused (there is no shallow bundle to send, and git would not say so itself).
 * Content is fetched later, when a checkout needs it (see worktree/remote-content).
 */
import fs from 'node:fs';
import path from 'node:path';
import { DitsUserError } from '../errors.js';
import { runGit } from '../git/exec.js';
import { resolvePointers } from '../git/pointers.js';
import { MAX_POINTER_SIZE } from '../manifest/pointer.js';
import type { ObjectStorage } from '../transfer/object-storage.js';
import { applyMissingBundles, createBundle, hasObject, presentObjects } from './git-bundles.js';
import type { PushOutcome, PushSpec, RefAdvert, RemoteHelperHandlers } from './helper-protocol.js';
import { checkFormat, encodeRefState, readRefState, REFS_KEY, writeFormat, type RefState } from './remote-state.js';

export interface ContentPushResult {
  manifests: number;
  chunks: number;
  bytes: number;
  requests: number;
}

/** The content side, injected (implemented over remote/content). */
export interface ContentPusher {
  /** `from`: where the manifests come from (a path and pointer blob for each, the commits pushed), for errors that name a file and revision */
  push(manifestIds: string[], opts: { dryRun: boolean; from?: PushedManifests }): Promise<ContentPushResult>;
}

export interface SessionDeps {
  /** The repository (GIT_DIR of the helper's environment; cwd for git commands). */
  cwd: string;
  /** Null outside a repository (`git ls-remote dits::...` run anywhere): only list works. */
  gitDir: string | null;
  storage: ObjectStorage;
  content: () => Promise<ContentPusher>;
  log: (line: string) => void;
  /**
   * Server remotes only: the pre-push lock check. Called once per push, before anything
   * is uploaded; resolves to a checker giving, for one ref's changed paths, the refusal
   * message (files locked by someone else: who and since when), or null.
   */
  lockCheck?: () => Promise<(changedPaths: string[]) => string | null>;
  /**
   * File and S3 remotes: a location with no Dits remote in it (no v1/format.json) is an
   * error when listed for a fetch, clone or ls-remote (a typo in the path would otherwise
   * clone as an empty repository); a push creates it. Server remotes say themselves when
   * a repository does not exist, and a created one is empty until its first push.
   */
  requireExisting?: boolean;
  /**
   * Called once before the first fetch, before git checks anything out: sets the
   * repository up for Dits (filter config, store, hooks) where that was not done, so a
   * clone on a machine that never ran `git dits install` checks out real files.
   */
  prepareRepo?: () => Promise<void>;
  /**
   * Called at a fetch that brings new objects, run alongside the bundles: warms what the
   * checkout after it needs from the remote (warm-index.ts). Its failure fails nothing.
   */
  warmContent?: () => Promise<void>;
}

/** The options git sends for --depth, --shallow-since, --shallow-exclude and --deepen. */
const SHALLOW_OPTIONS = new Set(['depth', 'deepen-since', 'deepen-not', 'deepen-relative']);

export interface PushedManifests {
  /** manifest id -> a path it is at, and the pointer blob there */
  paths: Map<string, string>;
  blobs: Map<string, string>;
  tips: string[];
  exclude: string[];
}

/** Manifest ids of every pointer reachable from `tips` but not from `exclude`. */
export async function manifestsBetween(cwd: string, tips: string[], exclude: string[]): Promise<{ ids: string[]; paths: Map<string, string>; blobs: Map<string, string> }> {
  if (tips.length === 0) return { ids: [], paths: new Map(), blobs: new Map() };
  const r = await runGit(['rev-list', '--objects', `--filter=blob:limit=${MAX_POINTER_SIZE + 1}`, '--stdin'], {
    cwd,
    input: [...tips, ...exclude.map((e) => `^${e}`)].join('\n') + '\n',
  });
  const entries: { oid: string; path: string; mode: string }[] = [];
  for (const line of r.stdout.toString('utf8').split('\n')) {
    const sp = line.indexOf(' ');
    if (sp > 0) entries.push({ oid: line.slice(0, sp), path: line.slice(sp + 1), mode: '100644' });
  }
  const pointers = await resolvePointers(cwd, entries);
  const paths = new Map<string, string>();
  const blobs = new Map<string, string>();
  for (const p of pointers) {
    if (paths.has(p.pointer.manifest)) continue;
    paths.set(p.pointer.manifest, p.path);
    blobs.set(p.pointer.manifest, p.blobOid);
  }
  return { ids: [...paths.keys()], paths, blobs };
}

/**
 * Paths a push of `newOid` changes: against the remote's old tip when there is one; for a
 * new ref, against the merge base with an existing remote tip (the one giving the fewest
 * changes), else every file of `newOid`.
 */
export async function changedPaths(cwd: string, old: string | undefined, newOid: string, remoteTips: string[]): Promise<string[]> {
  const diff = async (base: string): Promise<string[]> =>
    splitZ((await runGit(['diff', '--name-only', '--no-renames', '-z', base, newOid], { cwd })).stdout);
  if (old !== undefined) return diff(old);
  let best: string[] | null = null;
  for (const tip of new Set(remoteTips)) {
    const r = await runGit(['merge-base', tip, newOid], { cwd, allowFail: true });
    const base = r.stdout.toString('utf8').trim();
    if (r.exitCode !== 0 || !base) continue;
    const paths = await diff(base);
    if (best === null || paths.length < best.length) best = paths;
  }
  return best ?? splitZ((await runGit(['ls-tree', '-r', '--name-only', '-z', newOid], { cwd })).stdout);
}

/**
 * A promise started now and awaited later: `value()` gives its result or throws its error;
 * `result()` gives the result or null, never throws (for clean-up after another failure).
 * Its rejection is never unhandled meanwhile.
 */
function settle<T>(p: Promise<T>): { value: () => Promise<T>; result: () => Promise<T | null> } {
  const done = p.then(
    (v) => ({ ok: true as const, v }),
    (e: unknown) => ({ ok: false as const, e }),
  );
  return {
    value: async () => {
      const r = await done;
      if (!r.ok) throw r.e;
      return r.v;
    },
    result: async () => {
      const r = await done;
      return r.ok ? r.v : null;
    },
  };
}

function splitZ(buf: Buffer): string[] {
  return buf.toString('utf8').split('\0').filter(Boolean);
}

/** Compare-and-swap rounds before a push gives up (each re-reads the refs). */
const MAX_REF_ATTEMPTS = 100;

export class RemoteSession implements RemoteHelperHandlers {
  private dryRun = false;
  private cached: RefState | null = null;
  /** The shallow option git asked for (`depth 1`, ...), refused at the next list or fetch. */
  private shallow: string | null = null;
  /** The object filter of a partial clone (`blob:none`, ...), refused at the fetch. */
  private partial: string | null = null;
  private prepared = false;
  /**
   * What `list for-push` read (format check, ref state and its etag), used by the push that
   * follows in the same run instead of reading it again: a ref moved meanwhile fails the
   * compare-and-swap, which re-reads the state, as any race does.
   */
  private listedForPush: { exists: boolean; state: RefState; etag: string | null } | null = null;

  constructor(private readonly deps: SessionDeps) {}

  option(name: string, value: string): 'ok' | 'unsupported' | { error: string } {
    if (name === 'dry-run') {
      this.dryRun = value === 'true';
      return 'ok';
    }
    // `git clone` ignores an "unsupported" or "error" answer to these and makes a full
    // clone without a word: accept them here and refuse the fetch itself (refuseUnsupportedFetch).
    if (SHALLOW_OPTIONS.has(name)) {
      this.shallow = `${name} ${value}`.trim();
      return 'ok';
    }
    // Likewise `--filter` (a partial clone): the repository would then ask its promisor
    // remote for every object this helper's own git commands look up, starting this helper
    // again without end.
    if (name === 'filter') {
      this.partial = value;
      return 'ok';
    }
    if (name === 'verbosity' || name === 'progress' || name === 'followtags') return 'ok';
    return 'unsupported';
  }

  private async state(): Promise<{ state: RefState; etag: string | null }> {
    const refsRead = settle(readRefState(this.deps.storage));
    try {
      await checkFormat(this.deps.storage);
    } catch (err) {
      await refsRead.result();
      throw err;
    }
    const s = await refsRead.value();
    this.cached = s.state;
    return s;
  }

  private refuseUnsupportedFetch(): void {
    if (this.partial !== null) {
      throw new DitsUserError('partial-clone-unsupported', `partial clones and fetches (--filter) are not supported by Dits remotes (git asked for filter ${this.partial})`, {
        hint: 'clone or fetch without --filter: big files are already kept out of Git (Git holds pointers); `git clone -c dits.fetchMode=lazy ...` leaves their content on the remote until a file is read',
        exitCode: 2,
      });
    }
    if (this.shallow === null) return;
    throw new DitsUserError('shallow-unsupported', `shallow clones and fetches (--depth, --shallow-since, --shallow-exclude, --deepen) are not supported by Dits remotes (git asked for ${this.shallow})`, {
      hint: 'clone or fetch without --depth: the git history of a Dits repository is small, its media content is fetched apart from it; `git clone -c dits.fetchMode=lazy ...` leaves the content on the remote until a file is read',
      exitCode: 2,
    });
  }

  private async prepareOnce(): Promise<void> {
    if (this.prepared || !this.deps.prepareRepo) return;
    this.prepared = true;
    await this.deps.prepareRepo();
  }

  private gitDir(): string {
    if (this.deps.gitDir === null) throw new DitsUserError('not-a-repo', 'this needs a Git repository', { hint: 'run it inside a clone' });
    return this.deps.gitDir;
  }

  async list(forPush = false): Promise<RefAdvert[]> {
    if (!forPush) this.refuseUnsupportedFetch();
    // the format and the refs are read at once (two independent reads, one round trip); the
    // format's verdict comes first, as if it had been read first
    const refsRead = settle(readRefState(this.deps.storage));
    let exists: boolean;
    try {
      exists = await checkFormat(this.deps.storage);
    } catch (err) {
      await refsRead.result();
      throw err;
    }
    if (!exists && !forPush && this.deps.requireExisting) {
      await refsRead.result();
      throw new DitsUserError('no-such-remote', `there is no Dits remote at ${this.deps.storage.location}`, {
        hint: 'check the path or URL for a typo (a Dits remote holds v1/format.json and v1/refs, written by the first push); to create a new remote, push to it: `git push <remote> main`',
      });
    }
    const { state, etag } = await refsRead.value();
    this.cached = state;
    this.listedForPush = forPush ? { exists, state, etag } : null;
    // A clone of an empty remote asks for no fetch: set a brand-new repository up here
    // (one without any ref of its own), so its first `git add` stores pointers too.
    if (!forPush && Object.keys(state.refs).length === 0 && this.deps.gitDir !== null && this.deps.prepareRepo) {
      const own = await runGit(['for-each-ref', '--count=1', '--format=x'], { cwd: this.deps.cwd, allowFail: true });
      if (own.exitCode === 0 && own.stdout.length === 0) await this.prepareOnce();
    }
    const out: RefAdvert[] = Object.entries(state.refs)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, value]) => ({ name, value }));
    if (state.head && state.refs[state.head]) out.push({ name: 'HEAD', value: `@${state.head}` });
    return out;
  }

  async fetch(wants: { oid: string; name: string }[]): Promise<void> {
    const { cwd } = this.deps;
    this.refuseUnsupportedFetch();
    await this.prepareOnce();
    const state = this.cached ?? (await this.state()).state;
    // one look (one git process) for the wanted objects and every bundle's tips: a bundle
    // whose tips are all here is skipped
    const present = await presentObjects(cwd, [...new Set([...wants.map((w) => w.oid), ...state.bundles.flatMap((b) => b.tips)])]);
    if (wants.every((w) => present.has(w.oid))) return;
    const warming = this.deps.warmContent ? settle(this.deps.warmContent()) : null;
    try {
      await this.applyBundles(state, present);
    } finally {
      await warming?.result();
    }
    const after = await presentObjects(cwd, wants.map((w) => w.oid));
    const still = wants.filter((w) => !after.has(w.oid));
    if (still.length) throw new DitsUserError('remote-corrupt', `the remote does not hold the objects of ${still.map((w) => w.name).join(', ')}`, { hint: 'the remote was damaged; push again from a clone that has these commits' });
  }

  /** Applies, in push order, the bundles whose tips are not all in `present`. */
  private async applyBundles(state: RefState, present: Set<string>): Promise<void> {
    await applyMissingBundles(this.deps.cwd, this.deps.storage, state.bundles, present, path.join(this.gitDir(), 'dits', 'tmp'));
  }

  async push(specs: PushSpec[]): Promise<PushOutcome[]> {
    const { cwd, storage } = this.deps;
    const listed = this.listedForPush;
    this.listedForPush = null;
    const exists = listed ? listed.exists : await checkFormat(storage);
    let { state, etag } = listed ?? (await readRefState(storage));
    const outcomes = new Map<string, string | null>();
    const plans: { spec: PushSpec; newOid: string | null; expectedOld: string | undefined }[] = [];

    for (const spec of specs) {
      let newOid: string | null = null;
      if (spec.src) {
        const r = await runGit(['rev-parse', '--verify', '--quiet', spec.src], { cwd, allowFail: true });
        newOid = r.stdout.toString('utf8').trim();
        if (r.exitCode !== 0 || !newOid) {
          outcomes.set(spec.dst, 'src refspec does not match any object');
          continue;
        }
      }
      const old = state.refs[spec.dst];
      const reason = newOid ? await this.refuse(old, newOid, spec) : null;
      if (reason) {
        outcomes.set(spec.dst, reason);
        continue;
      }
      plans.push({ spec, newOid, expectedOld: old });
    }

    const remoteTips = Object.values(state.refs);
    const have = await presentObjects(cwd, remoteTips);
    const exclude = remoteTips.filter((t) => have.has(t));

    // 0. locks (server remotes): refuse refs whose changes touch files locked by someone else
    if (this.deps.lockCheck && plans.some((p) => p.newOid)) {
      const check = await this.deps.lockCheck();
      for (const p of plans) {
        if (!p.newOid) continue;
        const refusal = check(await changedPaths(cwd, p.expectedOld !== undefined && have.has(p.expectedOld) ? p.expectedOld : undefined, p.newOid, exclude));
        if (refusal) {
          this.deps.log(`error: ${p.spec.dst}: ${refusal}`);
          outcomes.set(p.spec.dst, refusal.split('\n').map((l) => l.trim()).filter(Boolean).join(' ')); // one protocol line
        }
      }
      plans.splice(0, plans.length, ...plans.filter((p) => !outcomes.has(p.spec.dst)));
    }

    const tips = [...new Set(plans.map((p) => p.newOid).filter((o): o is string => Boolean(o)))];

    // A first push creates the remote before its content, so an interrupted one leaves an
    // empty remote to push to again, not a location that lists as no remote at all.
    if (!exists && !this.dryRun && plans.length > 0) await writeFormat(storage);

    // While the content uploads: the bundle of the new git objects is written here (it is
    // uploaded only after the content), and the storage settles what its first ref update
    // needs (S3: the compare-and-swap mode, probed and recorded once per remote).
    const bundling = tips.length > 0 && !this.dryRun ? settle(createBundle(cwd, path.join(this.gitDir(), 'dits', 'tmp'), tips, exclude)) : null;
    const casReady = plans.length > 0 && !this.dryRun && storage.prepareVersioned ? settle(storage.prepareVersioned(REFS_KEY)) : null;
    let bundle: RefState['bundles'][number] | null = null;
    try {
      if (tips.length > 0) {
        // 1. content
        const { ids, paths, blobs } = await manifestsBetween(cwd, tips, exclude);
        const content = await this.deps.content();
        const res = await content.push(ids, { dryRun: this.dryRun, from: { paths, blobs, tips, exclude } });
        if (res.chunks || res.manifests) this.deps.log(`dits: ${this.dryRun ? 'would upload' : 'uploaded'} ${res.manifests} file version(s), ${res.chunks} new chunk(s), ${res.bytes} bytes`);
      }
      if (this.dryRun) return specs.map((s) => ({ dst: s.dst, error: outcomes.get(s.dst) ?? null }));

      // 2. git objects (named by their hash: a PUT of a bundle already there rewrites the same bytes)
      const b = bundling ? await bundling.value() : null;
      if (b) {
        const key = `v1/git/${b.sha256}.bundle`;
        await storage.put(key, () => fs.createReadStream(b.file), { size: b.size });
        bundle = { key, tips, prereqs: exclude, size: b.size };
      }
      await casReady?.value();
    } finally {
      const b = await bundling?.result();
      if (b) fs.rmSync(b.file, { force: true });
      await casReady?.result(); // a push that failed leaves no probe request behind in flight
    }

    // 3. refs, by compare-and-swap
    for (let attempt = 0; ; attempt++) {
      const next: RefState = { ...state, refs: { ...state.refs }, bundles: [...state.bundles] };
      const accepted: string[] = [];
      for (const p of plans) {
        if (outcomes.has(p.spec.dst) && outcomes.get(p.spec.dst) !== null) continue;
        const current = next.refs[p.spec.dst];
        if (current !== p.expectedOld && !p.spec.force) {
          outcomes.set(p.spec.dst, 'fetch first');
          continue;
        }
        if (p.newOid) next.refs[p.spec.dst] = p.newOid;
        else delete next.refs[p.spec.dst];
        accepted.push(p.spec.dst);
      }
      if (accepted.length === 0) break;
      if (bundle && !next.bundles.some((b) => b.key === bundle!.key)) next.bundles.push(bundle);
      if (!next.head || !next.refs[next.head]) {
        const branch = accepted.find((d) => d.startsWith('refs/heads/') && next.refs[d]) ?? Object.keys(next.refs).find((d) => d.startsWith('refs/heads/'));
        next.head = branch ?? null;
      }
      const r = await storage.putIf(REFS_KEY, encodeRefState(next), etag === null ? 'absent' : { etag });
      if (r.ok) {
        for (const d of accepted) outcomes.set(d, null);
        break;
      }
      if (attempt >= MAX_REF_ATTEMPTS) {
        for (const d of accepted) outcomes.set(d, `the remote is too busy (ref update raced ${MAX_REF_ATTEMPTS} times); try again`);
        break;
      }
      // Someone else updated the refs meanwhile: back off a little (jittered, so many
      // pushers to different branches spread out), re-read, and try again.
      await new Promise((r) => setTimeout(r, Math.random() * 20 * Math.min(attempt + 1, 10)));
      ({ state, etag } = await readRefState(storage));
      // A ref we decided on may have moved: the loop re-checks against the new state.
    }
    return specs.map((s) => ({ dst: s.dst, error: outcomes.get(s.dst) ?? null }));
  }

  /** Git's rejection reason for moving `old` to `newOid`, or null when allowed. */
  private async refuse(old: string | undefined, newOid: string, spec: PushSpec): Promise<string | null> {
    if (!old || old === newOid || spec.force) return null;
    if (spec.dst.startsWith('refs/tags/')) return 'already exists';
    if (!(await hasObject(this.deps.cwd, old))) return 'fetch first';
    const r = await runGit(['merge-base', '--is-ancestor', old, newOid], { cwd: this.deps.cwd, allowFail: true });
    return r.exitCode === 0 ? null : 'non-fast-forward';
  }
}
