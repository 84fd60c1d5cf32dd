import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { findRepo, isDitsInitialised, type RepoPaths } from '../../git/repo.js';
import { readDitsSettings } from '../../git/dits-config.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { createDitsFilter, type DitsFilterDeps } from '../../filter/dits-filter.js';
import { serveFilterProtocol, type FilterCommand, type FilterResult } from '../../filter/protocol.js';
import { initRepo } from './init.js';
import { err, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { setPipeSize } from '../../chunking/native.js';

async function filterDeps(ctx: CliContext): Promise<{ deps: DitsFilterDeps; close: () => void; repo: RepoPaths }> {
  const repo = await findRepo(ctx.cwd);
  const settings = await readDitsSettings(repo.workTree);
  let store: ChunkStore | null = null;
  let initDone = isDitsInitialised(repo);
  const ensureInit = async (): Promise<void> => {
    if (initDone) return;
    initDone = true;
    // Git runs filters in a fresh clone before anyone ran `git dits init`: set the repo up
    // (store and hooks) before answering, so the hooks exist when the checkout ends.
    try {
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
      if (!store) store = ChunkStore.open(repo.ditsDir, { create: true, durable: settings.durable });
      return store;
    },
    analyze: settings.mediaAware ? await loadAnalyzer() : undefined,
    onPending: ensureInit,
    log: (line) => err(ctx, line),
  };
  return { deps, repo, close: () => store?.close() };
}

async function loadAnalyzer(): Promise<DitsFilterDeps['analyze']> {
  try {
    const mod = (await import('../../filter/media-analysis.js')) ;
    return mod.analyzeForIngest;
  } catch {
    return undefined;
  }
}

async function writeResult(ctx: CliContext, result: FilterResult): Promise<void> {
  if (Buffer.isBuffer(result)) {
    ctx.stdout.write(result);
    return;
  }
  for await (const piece of result) {
    if (!ctx.stdout.write(piece)) await new Promise((r) => ctx.stdout.once('drain', r));
  }
}

/** Pipe capacity asked for (the kernel's default limit for one pipe is 1 MiB). */
const FILTER_PIPE_BYTES = 1024 * 1024;
/** Content reaches the clean filter in buffers of this size (the size ingest reads files in). */
const CONTENT_GROUP_BYTES = 4 * 1024 * 1024;
/** Bytes read from git's pipe ahead of the filter's work. */
const READ_AHEAD_BYTES = 8 * 1024 * 1024;

/**
 * Git's pipe to this process, opened again through /proc (a file description of our own, in
 * blocking mode whatever the stdin stream did to fd 0), for reads of up to a whole pipe's
 * worth on the thread pool: a stream reads 64 KiB per event-loop turn, each into a new
 * buffer, which cost more CPU than chunking a gigabyte. Null where that is not possible
 * (not a pipe, no /proc): the stdin stream is used.
 */
function openOwnPipeReader(fd: number): number | null {
  try {
    if (!fs.fstatSync(fd).isFIFO()) return null;
    return fs.openSync(`/proc/self/fd/${fd}`, 'r');
  } catch {
    return null;
  }
}

/**
 * Reads the pipe ahead of the consumer (up to READ_AHEAD_BYTES), so git keeps writing while
 * this process chunks and hashes what came before.
 */
async function* readPipe(fd: number): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  let queued = 0;
  let done = false;
  let failure: unknown = null;
  let reading = false;
  let wake: (() => void) | null = null;
  const notify = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  const pump = (): void => {
    if (reading || done || queued >= READ_AHEAD_BYTES) return;
    reading = true;
    // a new buffer each time: the packet reader keeps views of what it was given
    const buf = Buffer.allocUnsafeSlow(FILTER_PIPE_BYTES);
    fs.read(fd, buf, 0, buf.length, null, (err, n) => {
      reading = false;
      if (err) failure = err;
      else if (n === 0) done = true;
      else {
        queue.push(n === buf.length ? buf : buf.subarray(0, n));
        queued += n;
      }
      notify();
      if (!err) pump();
    });
  };
  for (;;) {
    pump();
    if (queue.length) {
      const b = queue.shift()!;
      queued -= b.length;
      yield b;
      continue;
    }
    if (failure) throw failure;
    if (done) return;
    await new Promise<void>((resolve) => (wake = resolve));
  }
}

const filterProcess: Command = {
  summary: "Serve Git's long-running filter protocol (run by Git, not by hand)",
  usage: 'git dits filter-process',
  async run(args, ctx) {
    parseArgs({ args, options: {} });
    if (ctx.stdin === process.stdin) {
      // Git sends files in 64 KiB packets; a 64 KiB pipe makes git and Dits take turns
      setPipeSize(0, FILTER_PIPE_BYTES);
      setPipeSize(1, FILTER_PIPE_BYTES);
    }
    const { deps, close } = await filterDeps(ctx);
    const pipe = ctx.stdin === process.stdin ? openOwnPipeReader(0) : null;
    try {
      const input = pipe ? readPipe(pipe) : (ctx.stdin as AsyncIterable<Buffer>);
      await serveFilterProtocol(input, ctx.stdout, createDitsFilter(deps), { groupSize: CONTENT_GROUP_BYTES });
    } finally {
      // the pipe's descriptor stays open until the process exits: a read ahead may still be
      // queued on the thread pool, and a closed number could be reused meanwhile
      close();
    }
    return 0;
  },
};

function oneShot(command: FilterCommand): Command {
  return {
    summary: `Single-file ${command} filter (fallback for tools without the long-running protocol)`,
    usage: `git dits ${command} -- <path>`,
    async run(args, ctx) {
      const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
      const { deps, close } = await filterDeps(ctx);
      const handlers = createDitsFilter(deps);
      try {
        const request = { command, pathname: positionals[0] ?? '', meta: new Map<string, string>() };
        const input = ctx.stdin as AsyncIterable<Buffer>;
        const result = command === 'clean' ? await handlers.clean!(request, input) : await handlers.smudge!(request, input);
        await writeResult(ctx, result);
      } finally {
        close();
      }
      return 0;
    },
  };
}

export const commands = { 'filter-process': filterProcess, clean: oneShot('clean'), smudge: oneShot('smudge') };
