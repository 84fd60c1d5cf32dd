import { findRepo, findRepoAtTop, isDitsInitialised, type RepoPaths } from '../../git/repo.js';
import { ditsSettingsFrom, readDitsConfig } from '../../git/dits-config.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { CutWorker, PARALLEL_INGEST_MIN } from '../../store/cut-pipeline.js';
import { createDitsFilter, type DitsFilterDeps } from '../../filter/dits-filter.js';
import { DELAYED, contentOf, serveFilterProtocol, type FilterCommand, type FilterResult } from '../../filter/protocol.js';
import { err, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { setPipeSize } from '../../native-addon.js';
import { FdReader } from '../../git/fd-reader.js';
import { EarlyWriter } from '../../worktree/early-write.js';
import { DelayedSmudge } from '../../filter/delayed-smudge.js';
import fs from 'node:fs';
import { parseOptions, type OptionTable } from '../options.js';
import { takeOwnPending } from '../../worktree/pending.js';
import { sniffPlainFile } from '../../filter/media-sniff.js';
import { sqliteDriver } from '../../store/sqlite-driver.js';
import { nativeBlake3 } from '../../hashing/blake3.js';
import { loadNativeScan } from '../../chunking/native-scan.js';

/**
 * Writes the files of `mine` still on the pending list (others' entries stay there). By now
 * git has written its last index (it closes the pipe from its exit handler), so the index
 * refresh that follows the writes is the last word. Failures are reported; never thrown:
 * git ignores this process's exit status.
 */
async function finishLeftPointers(ctx: CliContext, gitDir: string, mine: ReadonlySet<string>): Promise<void> {
  try {
    const paths = takeOwnPending(gitDir, mine);
    if (paths.length > 0) {
      const { finishCheckout } = await import('../finish-checkout.js'); // loaded only when needed: a checkout of small files never does
      await finishCheckout(ctx, paths);
    }
  } catch (e) {
    err(ctx, `dits: could not write the checked-out files (${e instanceof Error ? e.message : String(e)}); \`git dits checkout\` writes them`);
  }
}

function isPipe(fd: number): boolean {
  try {
    return fs.fstatSync(fd).isFIFO();
  } catch {
    return false;
  }
}

async function filterDeps(ctx: CliContext, longRunning = false): Promise<{ deps: DitsFilterDeps; close: () => Promise<void>; repo: RepoPaths }> {
  // the settings are the same from any directory of the repository: git config is started
  // first, and while it runs the repository is found (git runs the filter at the top of
  // the working tree, where that needs no git: findRepoAtTop) and what every filter
  // process needs is made ready, on this otherwise idle thread
  const configRead = readDitsConfig(ctx.cwd);
  configRead.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
  const repo = findRepoAtTop(ctx.cwd, ctx.env) ?? (await findRepo(ctx.cwd));
  prepareStoreAccess();
  const settings = ditsSettingsFrom(await configRead);
  let store: ChunkStore | null = null;
  let initDone = isDitsInitialised(repo);
  let worker: CutWorker | null = null;
  const ensureInit = async (): Promise<void> => {
    if (initDone) return;
    initDone = true;
    // Git runs filters in a fresh clone before anyone ran `git dits init`: set the repo up
    // (store and hooks) before answering, so the hooks exist when the checkout ends.
    try {
      const { initRepo } = await import('../../worktree/init-repo.js');
      await initRepo(repo.workTree, ctx.ditsBin);
    } catch (e) {
      err(ctx, `dits: could not set up this repository (${String(e)}); run \`git dits init\` and then \`git dits checkout\``);
    }
  };
  const deps: DitsFilterDeps = {
    workTree: repo.workTree,
    gitDir: repo.gitDir,
    settings,
    store: () => {
      if (!store) store = ChunkStore.open(repo.ditsDir, { create: true, durable: settings.durable, directWrite: settings.directWrite });
      return store;
    },
    // started for the first big file, then kept for the process's later files
    cutWorker: (size) => (size >= PARALLEL_INGEST_MIN ? (worker ??= new CutWorker()) : undefined),
    analyze: settings.mediaAware ? lazyAnalyzer() : undefined,
    onPending: ensureInit,
    log: (line) => err(ctx, line),
  };
  // only a process that lives on while the hook runs can write early
  const early = longRunning && settings.earlyWrite ? new EarlyWriter(repo.gitDir, deps.store) : null;
  if (early) deps.early = early;
  // git's delayed checkout needs the long-running protocol
  if (longRunning && settings.smudgeReadAhead > 0) deps.delayed = new DelayedSmudge(deps.store, { budgetBytes: settings.smudgeReadAhead, concurrency: 2, minSize: settings.smudgeDelayMin });
  return {
    deps,
    repo,
    close: async () => {
      await early?.close();
      await deps.delayed?.close(); // reads still going land before the store closes
      store?.close();
      await worker?.close();
    },
  };
}

/**
 * Loads SQLite and runs the addon's known-answer checks (BLAKE3, FastCDC scanner), which
 * clean and smudge would otherwise do on their first file. Failures are left for them to
 * meet and report.
 */
function prepareStoreAccess(): void {
  try {
    sqliteDriver();
  } catch {
    /* ChunkStore.open reports it */
  }
  nativeBlake3();
  loadNativeScan();
}

/**
 * The media analyser, loaded on the first clean of a file that may be a container (a
 * checkout never loads it, nor does an add of plain files: sniffPlainFile answers for them).
 */
function lazyAnalyzer(): DitsFilterDeps['analyze'] {
  let analyze: Promise<DitsFilterDeps['analyze']> | undefined;
  return async (absPath, known) => {
    const plain = sniffPlainFile(absPath, known);
    if (plain !== undefined) return plain;
    analyze ??= import('../../filter/media-analysis.js').then(
      (mod) => mod.analyzeForIngest,
      () => undefined,
    );
    const fn = await analyze;
    return fn ? fn(absPath, known) : null;
  };
}

async function writeResult(ctx: CliContext, result: FilterResult): Promise<void> {
  if (Buffer.isBuffer(result)) {
    ctx.stdout.write(result);
    return;
  }
  // each piece written before the next is asked for: a stream may reuse its buffers
  for await (const piece of result) {
    await new Promise<void>((resolve, reject) => ctx.stdout.write(piece, (e) => (e ? reject(e) : resolve())));
  }
}

/** Pipe capacity asked for (the kernel's default limit for one pipe is 1 MiB). */
const FILTER_PIPE_BYTES = 1024 * 1024;

const noOptions = {} as const satisfies OptionTable;

const filterProcess: Command = {
  summary: "Serve Git's long-running filter protocol (run by Git, not by hand)",
  usage: 'git dits filter-process',
  options: noOptions,
  async run(args, ctx) {
    parseOptions(args, noOptions);
    let input: AsyncIterable<Buffer> & { close?: () => Promise<void> };
    if (ctx.stdinFd !== undefined && isPipe(ctx.stdinFd)) {
      // Git sends files in 64 KiB packets; a 64 KiB pipe makes git and Dits take turns
      setPipeSize(ctx.stdinFd, FILTER_PIPE_BYTES);
      setPipeSize(1, FILTER_PIPE_BYTES);
      input = new FdReader(ctx.stdinFd);
    } else {
      input = ctx.stdin as AsyncIterable<Buffer>;
    }
    const { deps, close } = await filterDeps(ctx, true);
    const leftPointers = new Set<string>();
    deps.leftPending = (p) => leftPointers.add(p);
    try {
      await serveFilterProtocol(input, ctx.stdout, createDitsFilter(deps));
      // Git closed the pipe: it is exiting (its exit handler closes the pipe, then waits
      // for this process before the command returns), after every hook it runs. Files this
      // process left as pointers and that no hook wrote are written now: git runs no hook
      // after `stash apply`, a `stash pop` that keeps entries, or `sparse-checkout`, and
      // the hooks leave a rebase's or cherry-pick's files alone while it runs (hook.ts).
      if (leftPointers.size > 0) await finishLeftPointers(ctx, deps.gitDir, leftPointers);
    } finally {
      await close();
      await input.close?.();
    }
    return 0;
  },
};

function oneShot(command: FilterCommand): Command {
  return {
    summary: `Single-file ${command} filter (fallback for tools without the long-running protocol)`,
    usage: `git dits ${command} -- <path>`,
    options: noOptions,
    async run(args, ctx) {
      const { positionals } = parseOptions(args, noOptions, { positionals: true });
      const { deps, close } = await filterDeps(ctx);
      const handlers = createDitsFilter(deps);
      try {
        const request = { command, pathname: positionals[0] ?? '', meta: new Map<string, string>() };
        const input = contentOf(ctx.stdin as AsyncIterable<Buffer>);
        const result = command === 'clean' ? await handlers.clean!(request, input) : await handlers.smudge!(request, input);
        if (result === DELAYED) throw new Error('smudge delayed a file without can-delay'); // (no meta here: cannot happen)
        await writeResult(ctx, result);
      } finally {
        await close();
      }
      return 0;
    },
  };
}

export const commands = { 'filter-process': filterProcess, clean: oneShot('clean'), smudge: oneShot('smudge') };
