import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { findRepo, requireInitialised, type RepoPaths } from '../../git/repo.js';
import { runGit } from '../../git/exec.js';
import { runGitWritingIndex } from '../../git/index-lock.js';
import { readDitsSettings } from '../../git/dits-config.js';
import { updateIndexStat } from '../../git/index-file.js';
import { createProxyCleanCheck } from '../../proxy/proxy-clean.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { ingest } from '../../store/ingest.js';
import { openFileSource } from '../../store/file-source.js';
import { CutWorker, PARALLEL_INGEST_MIN } from '../../store/cut-pipeline.js';
import { DitsUserError } from '../../errors.js';
import { createProgressBar } from '../progress.js';
import { formatBytes, out, printJson, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';

function splitZ(b: Buffer): string[] {
  return b.toString('utf8').split('\0').filter(Boolean);
}

/** Which of these paths have filter=dits. */
export async function ditsFiltered(workTree: string, paths: string[]): Promise<Set<string>> {
  const set = new Set<string>();
  if (paths.length === 0) return set;
  const r = await runGit(['check-attr', '-z', '--stdin', 'filter'], { cwd: workTree, input: paths.join('\0') + '\0' });
  const f = splitZ(r.stdout);
  for (let i = 0; i + 2 < f.length + 1; i += 3) if (f[i + 2] === 'dits') set.add(f[i]!);
  return set;
}

interface Staged {
  path: string;
  mode: string;
  pointer: Buffer;
  stat: fs.BigIntStats | null;
  size: number;
  newBytes: number;
}

const addOptions = { json: { type: 'boolean', description: 'print the result as JSON' } } as const satisfies OptionTable;

const add: Command = {
  summary: 'Add files to the index, reading Dits-tracked ones directly (fast path for big files)',
  usage: 'git dits add [--json] [--] <path>...',
  options: addOptions,
  async run(args, ctx: CliContext) {
    const { values, positionals } = parseOptions(args, addOptions, { positionals: true });
    if (positionals.length === 0) throw new DitsUserError('bad-usage', 'name the files to add', { hint: 'git dits add clip.mov footage/' });
    const repo = await findRepo(ctx.cwd);
    requireInitialised(repo);
    const specs = positionals.map((p) => path.relative(repo.workTree, path.resolve(ctx.cwd, p)) || '.');
    for (const s of specs) {
      if (s.startsWith('..')) throw new DitsUserError('outside-repo', `${s} is outside the repository`, { hint: `the repository is ${repo.workTree}` });
    }
    // The cutting workers take a tenth of a second to start: for a big file named here they
    // are begun now, while git lists the files, instead of after.
    let worker: CutWorker | undefined = specs.some((s) => bigFile(path.join(repo.workTree, s))) ? new CutWorker() : undefined;
    try {
      return await addFiles(ctx, repo, specs, values.json === true, () => (worker ??= new CutWorker()));
    } finally {
      await worker?.close();
    }
  },
};

function bigFile(file: string): boolean {
  try {
    const st = fs.statSync(file);
    return st.isFile() && st.size >= PARALLEL_INGEST_MIN;
  } catch {
    return false;
  }
}

async function addFiles(ctx: CliContext, repo: RepoPaths, specs: string[], json: boolean, startedWorker: () => CutWorker): Promise<number> {
  const settingsRead = readDitsSettings(repo.workTree);
  settingsRead.catch(() => undefined); // awaited below
  const listed = splitZ((await runGit(['ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', ...specs], { cwd: repo.workTree })).stdout);
  const unmatched = specs.filter((s) => s !== '.' && !listed.some((l) => l === s || l.startsWith(s.endsWith('/') ? s : s + '/')) && !fs.existsSync(path.join(repo.workTree, s)));
  if (unmatched.length) throw new DitsUserError('no-such-path', `pathspec '${unmatched[0]}' did not match any files`);
  const files = [...new Set(listed)];
  const dits = await ditsFiltered(repo.workTree, files);
  const ditsFiles: string[] = [];
  const plain: string[] = [];
  for (const f of files) {
    let st: fs.Stats | null = null;
    try {
      st = fs.lstatSync(path.join(repo.workTree, f));
    } catch {
      /* deleted: git add stages the removal */
    }
    if (st && st.isFile() && dits.has(f)) ditsFiles.push(f);
    else plain.push(f);
  }

  const settings = await settingsRead;
  const analyze = settings.mediaAware ? await loadAnalyzer() : undefined;
  const store = ChunkStore.open(repo.ditsDir, { durable: settings.durable, directWrite: settings.directWrite });
  const staged: Staged[] = [];
  let total = 0;
  for (const f of ditsFiles) total += fs.statSync(path.join(repo.workTree, f)).size;
  const bar = createProgressBar(ctx, 'Adding', total);
  // cutting and hashing on the second core pays for the workers on big files only
  const worker = total >= PARALLEL_INGEST_MIN ? startedWorker() : undefined;
  let doneBefore = 0;
  let ingested = false;
  // a path showing its proxy stages the original's pointer, as the clean filter does (proxy-clean.ts)
  const proxyCheck = createProxyCleanCheck({ workTree: repo.workTree, gitDir: repo.gitDir, store: () => store });
  try {
    for (const f of ditsFiles) {
      const abs = path.join(repo.workTree, f);
      const before = fs.statSync(abs, { bigint: true });
      let analysis = null;
      if (analyze) {
        try {
          analysis = await analyze(abs);
        } catch {
          analysis = null;
        }
      }
      const source = await openFileSource(abs);
      const res = await ingest(store, source, {
        params: settings.chunker,
        worker,
        cutPlan: analysis?.cutPlan,
        media: analysis?.media ?? null,
        mediaFallback: analysis?.fallback,
        onProgress: (b) => bar.update(doneBefore + b),
      }).finally(() => source.close());
      const after = fs.statSync(abs, { bigint: true });
      const unchanged = after.mtimeNs === before.mtimeNs && after.size === before.size && after.ino === before.ino;
      staged.push({
        path: f,
        mode: (before.mode & 0o111n) !== 0n ? '100755' : '100644',
        pointer: (await proxyCheck(f, res)) ?? res.pointerBytes,
        stat: unchanged ? after : null,
        size: Number(before.size),
        newBytes: res.newBytes,
      });
      doneBefore += Number(before.size);
    }
    ingested = true;
  } finally {
    bar.done();
    if (!ingested) store.close();
  }
  // The store is closed (this process stops being a writer: writer-lease.ts) only once the
  // pointers are staged, so a gc running meanwhile sees either this add or its pointers.
  try {
    store.commit();
    if (staged.length) await stagePointers(repo.workTree, repo.gitDir, repo.ditsDir, repo.hashAlgo, staged);
  } finally {
    store.close();
  }
  if (plain.length) await runGitWritingIndex(['add', '--', ...plain], { cwd: repo.workTree });

  const summary = {
    added: staged.map((s) => ({ path: s.path, size: s.size, newBytes: s.newBytes, changedWhileReading: s.stat === null })),
    addedByGit: plain,
  };
  if (json) printJson(ctx, summary);
  else {
    for (const s of staged) out(ctx, `add ${s.path} (${formatBytes(s.size)}, ${formatBytes(s.newBytes)} new)${s.stat ? '' : ' [changed while reading: git will re-check it]'}`);
    if (plain.length) out(ctx, `add ${plain.length} other file(s) through git add`);
  }
  return 0;
}

async function loadAnalyzer() {
  try {
    const mod = (await import('../../filter/media-analysis.js')) ;
    return mod.analyzeForIngest;
  } catch {
    return undefined;
  }
}

/** Writes the pointer blobs, stages them, and records the files' stat data. */
async function stagePointers(workTree: string, gitDir: string, ditsDir: string, hashAlgo: 'sha1' | 'sha256', staged: Staged[]): Promise<void> {
  const tmpDir = path.join(ditsDir, 'tmp', `add-${process.pid}-${randomBytes(4).toString('hex')}`);
  fs.mkdirSync(tmpDir, { recursive: true });
  try {
    const files = staged.map((s, i) => {
      const f = path.join(tmpDir, String(i));
      fs.writeFileSync(f, s.pointer);
      return f;
    });
    const r = await runGit(['hash-object', '-w', '--no-filters', '--stdin-paths'], { cwd: workTree, input: files.join('\n') + '\n' });
    const oids = r.stdout.toString('utf8').trim().split('\n');
    const info = staged.map((s, i) => `${s.mode} ${oids[i]}\t${s.path}`).join('\0') + '\0';
    await runGitWritingIndex(['update-index', '--add', '-z', '--index-info'], { cwd: workTree, input: info });
    const updates = staged.flatMap((s, i) => (s.stat ? [{ path: s.path, stat: s.stat, expectedOid: oids[i]! }] : []));
    try {
      await updateIndexStat(gitDir, updates, { hashAlgo, worktree: workTree });
    } catch (err) {
      if ((err as { code?: string }).code !== 'index-unsupported') throw err;
      await runGit(['update-index', '-q', '--refresh'], { cwd: workTree, allowFail: true });
    }
  } finally {
    fs.rmSync(tmpDir, { recursive: true, force: true });
  }
}

export const commands = { add };
