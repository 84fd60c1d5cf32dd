/**
 * Issue 3's figures: Dits against git-lfs, git-annex and restic on the same files, driven
 * through their command lines as a user would (see ../README.md for what each measures).
 * Returns every run's raw numbers; printing and verdicts are the caller's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { run as runProcess } from './exec.js';
import { treeBytes, warmFile, warmTree, type CoreCorpus } from './corpus.js';
import { megabytesPerSecond } from './units.js';
import type { Sandbox } from './sandbox.js';
import type { TreeMemoryPeak } from './proc-tree-memory.js';
import { ChunkStore } from '../../src/store/chunk-store.js';

export type AddTool = 'dits (git add)' | 'dits (git dits add)' | 'git-lfs (git add)' | 'git-annex (git annex add)';
export type CheckoutTool = 'dits' | 'git-lfs';
export type EditTool = 'dits' | 'git-lfs' | 'restic';
export type MemoryCase = 'dits: git add' | 'dits: git dits add' | 'dits: git checkout' | 'git-lfs: git add' | 'git-lfs: git checkout';

export interface TimedRun {
  bytes: number;
  seconds: number;
  mbps: number;
}

export interface EditRun {
  /** New bytes the tool stored for the edited version (what the figure compares). */
  newBytes: number;
  /** Dits only: growth of each part of .git/dits, and `git dits du --json` packFileBytes. */
  parts?: { packs: number; manifests: number; other: number; duPackFileBytes: number };
}

export interface MemoryRun extends TimedRun {
  memory: TreeMemoryPeak;
}

export interface CoreResults {
  files: { video: number; videoSeconds: number; videoBitsPerSecond: number; editA: number; editB: number; editAOffset: number; editBOffset: number; big?: number };
  peers: Record<string, string>;
  add: Partial<Record<AddTool, TimedRun[]>>;
  checkout: Partial<Record<CheckoutTool, TimedRun[]>>;
  edits: { a: Partial<Record<EditTool, EditRun[]>>; b: Partial<Record<EditTool, EditRun[]>> };
  pointerBytes: Partial<Record<'dits' | 'git-lfs' | 'git-annex', number>>;
  /** Whether `git dits add` staged exactly the blob plain `git add` staged. */
  ditsAddSameAsGitAdd?: boolean;
  bigMemory: Partial<Record<MemoryCase, MemoryRun[]>>;
  skipped: string[];
}

export interface CoreOptions {
  runs: number;
  /** The random file for the memory figures; undefined skips them. */
  big?: string;
  memoryIntervalMs: number;
}

export interface CoreDeps {
  sandbox: Sandbox;
  log: (line: string) => void;
}

const FILE = 'clip.mp4';
const BIG = 'big.bin';
/** Anything larger staged for a tracked file means the filter did not run. */
const POINTER_LIMIT = 4096;

async function versionOf(sb: Sandbox, cmd: string, args: string[]): Promise<string | null> {
  try {
    const r = await sb.run(cmd, args, sb.dir);
    return (r.stdout || r.stderr).split('\n')[0]!.trim();
  } catch {
    return null;
  }
}

/** Flushes dirty pages so the previous step's writes do not land inside the next timing. */
async function sync(sb: Sandbox): Promise<void> {
  await runProcess('sync', [], { cwd: sb.dir, env: sb.env });
}

type Kind = 'dits' | 'lfs' | 'annex' | 'plain';

async function makeRepo(sb: Sandbox, name: string, kind: Kind, pattern: string): Promise<string> {
  const dir = sb.freshDir(name);
  await sb.run('git', ['init', '-q', '.'], dir);
  if (kind === 'dits') {
    await sb.run('git', ['dits', 'init'], dir);
    await sb.run('git', ['dits', 'track', pattern], dir);
  } else if (kind === 'lfs') {
    await sb.run('git', ['lfs', 'install', '--local'], dir);
    await sb.run('git', ['lfs', 'track', pattern], dir);
  } else if (kind === 'annex') {
    await sb.run('git', ['annex', 'init', 'bench'], dir);
  }
  if (fs.existsSync(path.join(dir, '.gitattributes'))) {
    await sb.run('git', ['add', '.gitattributes'], dir);
    await sb.run('git', ['commit', '-q', '-m', 'attributes'], dir);
  }
  return dir;
}

/**
 * Puts `src` into the working tree as `name`. A hard link costs nothing and every tool
 * here only reads the file it adds; git-annex moves and chmods what it adds, so it gets a
 * copy. Removing the link later never touches the corpus.
 */
function place(src: string, repo: string, name: string, copy = false): string {
  const dst = path.join(repo, name);
  fs.rmSync(dst, { force: true });
  if (copy) fs.copyFileSync(src, dst);
  else fs.linkSync(src, dst);
  return dst;
}

async function stagedSize(sb: Sandbox, repo: string, name: string): Promise<number> {
  const r = await sb.run('git', ['cat-file', '-s', `:${name}`], repo);
  return Number(r.stdout.trim());
}

async function stagedId(sb: Sandbox, repo: string, name: string): Promise<string> {
  return (await sb.run('git', ['rev-parse', `:${name}`], repo)).stdout.trim();
}

async function expectPointer(sb: Sandbox, repo: string, name: string, tool: string): Promise<number> {
  const n = await stagedSize(sb, repo, name);
  if (n > POINTER_LIMIT) throw new Error(`${tool}: git staged ${n} bytes for ${name}; the filter did not run`);
  return n;
}

async function sameBytes(sb: Sandbox, a: string, b: string): Promise<boolean> {
  try {
    await runProcess('cmp', ['-s', a, b], { cwd: sb.dir, env: sb.env });
    return true;
  } catch {
    return false;
  }
}

export async function runCoreBench(corpus: CoreCorpus, opts: CoreOptions, deps: CoreDeps): Promise<CoreResults> {
  const { sandbox: sb, log } = deps;
  const size = fs.statSync(corpus.video).size;
  const results: CoreResults = {
    files: {
      video: size,
      videoSeconds: corpus.durationSeconds,
      videoBitsPerSecond: corpus.bitsPerSecond,
      editA: fs.statSync(corpus.editA).size,
      editB: fs.statSync(corpus.editB).size,
      editAOffset: corpus.editAOffset,
      editBOffset: corpus.editBOffset,
    },
    peers: {},
    add: {},
    checkout: {},
    edits: { a: {}, b: {} },
    pointerBytes: {},
    bigMemory: {},
    skipped: [],
  };
  const have = {
    lfs: await versionOf(sb, 'git', ['lfs', 'version']),
    annex: await versionOf(sb, 'git', ['annex', 'version']),
    restic: await versionOf(sb, 'restic', ['version']),
  };
  results.peers.git = (await versionOf(sb, 'git', ['--version'])) ?? '?';
  if (have.lfs) results.peers['git-lfs'] = have.lfs;
  else results.skipped.push('git-lfs not installed: its figures and all ratios are missing');
  if (have.annex) results.peers['git-annex'] = have.annex;
  else results.skipped.push('git-annex not installed');
  if (have.restic) results.peers.restic = have.restic;
  else results.skipped.push('restic not installed');

  // ---- add throughput: a fresh repository per run, input warmed in the page cache.
  const addCases: { tool: AddTool; kind: Kind; cmd: string[]; copy: boolean }[] = [
    { tool: 'dits (git add)', kind: 'dits', cmd: ['add', FILE], copy: false },
    { tool: 'dits (git dits add)', kind: 'dits', cmd: ['dits', 'add', FILE], copy: false },
  ];
  if (have.lfs) addCases.push({ tool: 'git-lfs (git add)', kind: 'lfs', cmd: ['add', FILE], copy: false });
  if (have.annex) addCases.push({ tool: 'git-annex (git annex add)', kind: 'annex', cmd: ['annex', 'add', '--quiet', FILE], copy: true });
  const kept: Partial<Record<CheckoutTool, string>> = {};
  const stagedIds: Partial<Record<AddTool, string>> = {};
  for (let r = 0; r < opts.runs; r++) {
    for (const c of addCases) {
      const name = `add-${c.kind}-${c.tool.includes('dits add') ? 'direct' : 'git'}`;
      const repo = await makeRepo(sb, name, c.kind, '*.mp4');
      const file = place(corpus.video, repo, FILE, c.copy);
      await sync(sb);
      warmFile(file);
      const out = await sb.run('git', c.cmd, repo);
      const run: TimedRun = { bytes: size, seconds: out.seconds, mbps: megabytesPerSecond(size, out.seconds) };
      (results.add[c.tool] ??= []).push(run);
      log(`  add ${c.tool} run ${r + 1}/${opts.runs}: ${run.seconds.toFixed(2)} s, ${run.mbps.toFixed(0)} MB/s`);
      const ptr = await expectPointer(sb, repo, FILE, c.tool);
      if (r === 0) {
        stagedIds[c.tool] = await stagedId(sb, repo, FILE);
        const key = c.kind === 'dits' ? 'dits' : c.kind === 'lfs' ? 'git-lfs' : 'git-annex';
        results.pointerBytes[key] = ptr;
      }
      const checkoutTool: CheckoutTool | null = c.tool === 'dits (git add)' ? 'dits' : c.kind === 'lfs' ? 'git-lfs' : null;
      if (checkoutTool && kept[checkoutTool] === undefined) {
        await sb.run('git', ['commit', '-q', '-m', 'clip'], repo);
        const keptDir = path.join(sb.dir, `checkout-${c.kind}`);
        sb.remove(keptDir);
        fs.renameSync(repo, keptDir);
        kept[checkoutTool] = keptDir;
      } else {
        sb.remove(repo);
      }
    }
  }
  if (stagedIds['dits (git add)'] && stagedIds['dits (git dits add)']) {
    results.ditsAddSameAsGitAdd = stagedIds['dits (git add)'] === stagedIds['dits (git dits add)'];
  }

  // ---- checkout throughput: delete the file, `git checkout -- file`, store warmed first.
  for (let r = 0; r < opts.runs; r++) {
    for (const tool of ['dits', 'git-lfs'] as const) {
      const repo = kept[tool];
      if (!repo) continue;
      const file = path.join(repo, FILE);
      fs.rmSync(file, { force: true });
      await sync(sb);
      warmTree(path.join(repo, '.git', tool === 'dits' ? 'dits' : 'lfs'));
      const out = await sb.run('git', ['checkout', '--', FILE], repo);
      const run: TimedRun = { bytes: size, seconds: out.seconds, mbps: megabytesPerSecond(size, out.seconds) };
      (results.checkout[tool] ??= []).push(run);
      log(`  checkout ${tool} run ${r + 1}/${opts.runs}: ${run.seconds.toFixed(2)} s, ${run.mbps.toFixed(0)} MB/s`);
      const st = fs.lstatSync(file);
      if (!st.isFile() || st.size !== size) throw new Error(`${tool}: checkout left ${file} with ${st.size} bytes, expected ${size}`);
      if (r === 0 && !(await sameBytes(sb, file, corpus.video))) throw new Error(`${tool}: checked-out file differs from the original`);
      const status = (await sb.run('git', ['status', '--porcelain'], repo)).stdout.trim();
      if (status) throw new Error(`${tool}: git status not clean after checkout:\n${status}`);
    }
  }
  for (const repo of Object.values(kept)) sb.remove(repo);

  // ---- new bytes per small edit: original committed, then edit A, then edit B (both
  // derived from the original), each committed; growth of what the tool stores.
  for (let r = 0; r < opts.runs; r++) {
    await measureDitsEdits(sb, corpus, results, log, r);
    if (have.lfs) await measureLfsEdits(sb, corpus, results, log, r);
    if (have.restic) await measureResticEdits(sb, corpus, results, log, r);
  }

  // ---- peak memory on the big file.
  if (opts.big) await measureBigMemory(sb, opts.big, opts, results, log, Boolean(have.lfs));
  return results;
}

function ditsParts(repo: string): { packs: number; manifests: number; other: number; total: number } {
  const d = path.join(repo, '.git', 'dits');
  const packs = treeBytes(path.join(d, 'packs'));
  // manifests are rows of the index (and files, from earlier versions): their own bytes
  const store = ChunkStore.open(d);
  const manifests = store.manifestBytes();
  store.close();
  const total = treeBytes(d);
  return { packs, manifests, other: total - packs - manifests, total };
}

async function duPackBytes(sb: Sandbox, repo: string): Promise<number> {
  const r = await sb.run('git', ['dits', 'du', '--json'], repo);
  return Number((JSON.parse(r.stdout) as { packFileBytes: number }).packFileBytes);
}

async function measureDitsEdits(sb: Sandbox, corpus: CoreCorpus, results: CoreResults, log: (l: string) => void, r: number): Promise<void> {
  const repo = await makeRepo(sb, 'edits-dits', 'dits', '*.mp4');
  const commit = async (src: string, msg: string) => {
    place(src, repo, FILE);
    await sb.run('git', ['add', FILE], repo);
    await expectPointer(sb, repo, FILE, 'dits');
    await sb.run('git', ['commit', '-q', '-m', msg], repo);
  };
  await commit(corpus.video, 'original');
  for (const [edit, src] of [['a', corpus.editA], ['b', corpus.editB]] as const) {
    const before = ditsParts(repo);
    const duBefore = await duPackBytes(sb, repo);
    await commit(src, `edit ${edit}`);
    const after = ditsParts(repo);
    const run: EditRun = {
      newBytes: after.total - before.total,
      parts: { packs: after.packs - before.packs, manifests: after.manifests - before.manifests, other: after.other - before.other, duPackFileBytes: (await duPackBytes(sb, repo)) - duBefore },
    };
    (results.edits[edit].dits ??= []).push(run);
    log(`  edit ${edit.toUpperCase()} dits run ${r + 1}: ${run.newBytes} new bytes (packs ${run.parts!.packs}, manifests ${run.parts!.manifests}, other ${run.parts!.other})`);
  }
  sb.remove(repo);
}

async function measureLfsEdits(sb: Sandbox, corpus: CoreCorpus, results: CoreResults, log: (l: string) => void, r: number): Promise<void> {
  const repo = await makeRepo(sb, 'edits-lfs', 'lfs', '*.mp4');
  const objects = path.join(repo, '.git', 'lfs', 'objects');
  const commit = async (src: string, msg: string) => {
    place(src, repo, FILE);
    await sb.run('git', ['add', FILE], repo);
    await expectPointer(sb, repo, FILE, 'git-lfs');
    await sb.run('git', ['commit', '-q', '-m', msg], repo);
  };
  await commit(corpus.video, 'original');
  for (const [edit, src] of [['a', corpus.editA], ['b', corpus.editB]] as const) {
    const before = treeBytes(objects);
    await commit(src, `edit ${edit}`);
    const run: EditRun = { newBytes: treeBytes(objects) - before };
    (results.edits[edit]['git-lfs'] ??= []).push(run);
    log(`  edit ${edit.toUpperCase()} git-lfs run ${r + 1}: ${run.newBytes} new bytes`);
  }
  sb.remove(repo);
}

async function measureResticEdits(sb: Sandbox, corpus: CoreCorpus, results: CoreResults, log: (l: string) => void, r: number): Promise<void> {
  const root = sb.freshDir('edits-restic');
  const repo = path.join(root, 'repo');
  const src = path.join(root, 'src');
  fs.mkdirSync(src);
  const env = { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: 'bench-not-secret' };
  await sb.run('restic', ['init', '--quiet'], root, { env });
  const backup = async (file: string) => {
    place(file, src, FILE);
    await sb.run('restic', ['backup', '--quiet', src], root, { env });
  };
  await backup(corpus.video);
  for (const [edit, file] of [['a', corpus.editA], ['b', corpus.editB]] as const) {
    const before = treeBytes(repo);
    await backup(file);
    const run: EditRun = { newBytes: treeBytes(repo) - before };
    (results.edits[edit].restic ??= []).push(run);
    log(`  edit ${edit.toUpperCase()} restic run ${r + 1}: ${run.newBytes} new bytes`);
  }
  sb.remove(root);
}

/**
 * Add and checkout of the big random file with the process tree's memory sampled: plain
 * `git add` through the Dits filter, `git dits add`, `git checkout -- file` (smudge plus
 * the hook that writes the file), and the same with git-lfs. One repository at a time,
 * removed after, so the disk holds at most the file, one store and one checked-out copy.
 */
async function measureBigMemory(sb: Sandbox, big: string, opts: CoreOptions, results: CoreResults, log: (l: string) => void, lfs: boolean): Promise<void> {
  const size = fs.statSync(big).size;
  results.files.big = size;
  const timed = async (c: MemoryCase, repo: string, args: string[], r: number) => {
    await sync(sb);
    const out = await sb.run('git', args, repo, { memoryIntervalMs: opts.memoryIntervalMs });
    const run: MemoryRun = { bytes: size, seconds: out.seconds, mbps: megabytesPerSecond(size, out.seconds), memory: out.memory! };
    (results.bigMemory[c] ??= []).push(run);
    log(`  ${c} run ${r + 1}/${opts.runs}: peak ${(run.memory.peakSumRssBytes / 2 ** 20).toFixed(0)} MiB over ${run.memory.maxProcesses} processes (single max ${(run.memory.peakSingleRssBytes / 2 ** 20).toFixed(0)} MiB, ${run.memory.peakSingleName}), ${run.seconds.toFixed(1)} s`);
  };
  const checkout = async (c: MemoryCase, repo: string, store: string, r: number) => {
    const file = path.join(repo, BIG);
    fs.rmSync(file, { force: true });
    await sync(sb);
    warmTree(store);
    await timed(c, repo, ['checkout', '--', BIG], r);
    if (fs.statSync(file).size !== size) throw new Error(`${c}: checkout wrote ${fs.statSync(file).size} bytes, expected ${size}`);
  };
  for (let r = 0; r < opts.runs; r++) {
    let repo = await makeRepo(sb, 'big-dits', 'dits', '*.bin');
    place(big, repo, BIG);
    warmFile(big);
    await timed('dits: git add', repo, ['add', BIG], r);
    await expectPointer(sb, repo, BIG, 'dits');
    sb.remove(repo);

    repo = await makeRepo(sb, 'big-dits', 'dits', '*.bin');
    place(big, repo, BIG);
    warmFile(big);
    await timed('dits: git dits add', repo, ['dits', 'add', BIG], r);
    await expectPointer(sb, repo, BIG, 'dits');
    await sb.run('git', ['commit', '-q', '-m', 'big'], repo);
    await checkout('dits: git checkout', repo, path.join(repo, '.git', 'dits'), r);
    if (r === 0 && !(await sameBytes(sb, path.join(repo, BIG), big))) throw new Error('dits: checked-out big file differs from the original');
    sb.remove(repo);

    if (lfs) {
      repo = await makeRepo(sb, 'big-lfs', 'lfs', '*.bin');
      place(big, repo, BIG);
      warmFile(big);
      await timed('git-lfs: git add', repo, ['add', BIG], r);
      await expectPointer(sb, repo, BIG, 'git-lfs');
      await sb.run('git', ['commit', '-q', '-m', 'big'], repo);
      await checkout('git-lfs: git checkout', repo, path.join(repo, '.git', 'lfs'), r);
      sb.remove(repo);
    }
  }
}
