/**
 * `git dits proxy ls` (what variants each tracked video version has, and why one failed)
 * and `git dits fetch-proxy` (download proxies ahead of time).
 */
import os from 'node:os';
import path from 'node:path';
import { findRepo, requireInitialised, type RepoPaths } from '../../git/repo.js';
import { listIndexPointers, type IndexPointer } from '../../git/pointers.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { contentPresent } from '../../store/materialize.js';
import { stderrProgress } from '../../remote/content-adapter.js';
import { ensureVariantsLocal } from '../../proxy/fetch-proxies.js';
import { planMake, runMake, type MakeSkip } from '../../proxy/make-local.js';
import { openFfmpeg } from '../../media/ffmpeg.js';
import { readDitsSettings } from '../../git/dits-config.js';
import { createProgressBar } from '../progress.js';
import { VARIANT_KINDS, type VariantKind, type VariantRecord } from '../../manifest/variant-record.js';
import { DitsUserError } from '../../errors.js';
import { err, formatBytes, out, printJson, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';

/** The tracked files (stage 0) under the given paths; refuses paths that name none. */
export async function trackedUnder(ctx: CliContext, repo: RepoPaths, positionals: string[]): Promise<IndexPointer[]> {
  const specs = positionals.map((p) => path.relative(repo.workTree, path.resolve(ctx.cwd, p)) || '.');
  const entries = (await listIndexPointers(repo.workTree, specs)).filter((e) => e.stage === 0);
  if (entries.length === 0 && positionals.length > 0) {
    throw new DitsUserError('no-tracked-match', `no file tracked by Dits matches ${positionals.map((p) => `'${p}'`).join(', ')}`, {
      hint: 'give paths of tracked files (`git dits status` lists them)',
    });
  }
  return entries;
}

function describe(r: VariantRecord, store: ChunkStore): string {
  if (r.status === 'failed') return `${r.kind}${r.recipe ? ` (${r.recipe})` : ''}: failed: ${r.reason}`;
  const here = contentPresent(store, r.manifest!) ? '' : ', not local (`git dits fetch-proxy` gets it)';
  const warn = r.warnings.length ? `; warning: ${r.warnings.join('; ')}` : '';
  return `${r.kind}${r.recipe ? ` (${r.recipe})` : ''}: ${formatBytes(r.size!)}${here}${warn}`;
}

const lsOptions = {
  json: { type: 'boolean', description: 'print JSON: per path, its original file id and every variant record' },
  verbose: { type: 'boolean', short: 'v', description: 'also print ffmpeg\'s last lines for failed variants' },
} as const satisfies OptionTable;

async function proxyLs(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseOptions(args, lsOptions, { positionals: true });
  const repo = await findRepo(ctx.cwd);
  requireInitialised(repo);
  const entries = await trackedUnder(ctx, repo, positionals);
  const store = ChunkStore.open(repo.ditsDir, { create: true });
  try {
    const rows = entries.map((e) => ({ path: e.path, original: e.pointer.oid, variants: store.variantsOf(e.pointer.oid) }));
    if (values.json) {
      printJson(ctx, rows.map((r) => ({ ...r, variants: r.variants.map((v) => ({ ...v, local: v.status === 'ok' ? contentPresent(store, v.manifest!) : false })) })));
      return 0;
    }
    if (rows.length === 0) {
      out(ctx, 'No file tracked by Dits here yet (`git dits track "*.mov"`, then `git add` and commit).');
      return 0;
    }
    let none = 0;
    for (const r of rows) {
      if (r.variants.length === 0) {
        none++;
        continue;
      }
      out(ctx, r.path);
      for (const v of r.variants) {
        out(ctx, `  ${describe(v, store)}`);
        if (values.verbose && v.status === 'failed') for (const l of v.ffmpegTail ?? []) out(ctx, `      ${l}`);
      }
    }
    if (none) out(ctx, `${none} tracked file(s) have no variants recorded here (\`git dits proxy make\` makes them; \`git dits fetch-proxy\` gets those a remote has).`);
    return 0;
  } finally {
    store.close();
  }
}

const makeOptions = {
  all: { type: 'boolean', description: 'every tracked video file (the default when no path is given)' },
  jobs: { type: 'string', short: 'j', value: '<n>', description: 'files encoded at once (default: half the cores, at least 1)' },
  kinds: { type: 'string', value: '<list>', description: 'which variants, comma-separated: proxy,poster,sprite,preview (default: all; sprite includes its WebVTT)' },
  'retry-failed': { type: 'boolean', description: 'try again the variants that failed before (by default they are skipped: `git dits proxy ls` says why)' },
  force: { type: 'boolean', description: 'make them again even when recorded' },
  json: { type: 'boolean', description: 'print JSON: per file, the records made, and what was skipped and why' },
} as const satisfies OptionTable;

const SKIP_TEXT: Record<MakeSkip['why'], string> = {
  'not-video': 'not a video file',
  done: 'already made',
  'failed-before': 'failed before (`git dits proxy ls -v` says why; --retry-failed tries again)',
  'content-not-here': 'content not here (`git dits pull <path>` fetches it)',
  'no-proxy-wanted': 'no proxy wanted (.gitattributes says -dits-proxy or dits-proxy=none)',
};

function parseKinds(v: string | undefined): VariantKind[] {
  if (v === undefined) return [...VARIANT_KINDS];
  const out = new Set<VariantKind>();
  for (const word of v.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (word === 'sprite') {
      out.add('sprite');
      out.add('sprite-vtt');
    } else if ((VARIANT_KINDS as readonly string[]).includes(word)) out.add(word as VariantKind);
    else throw new DitsUserError('bad-option-value', `--kinds: unknown variant '${word}'`, { hint: 'one or more of proxy, poster, sprite, preview', exitCode: 2 });
  }
  return [...out];
}

async function proxyMake(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseOptions(args, makeOptions, { positionals: true });
  if (values.all && positionals.length) throw new DitsUserError('bad-usage', '--all and paths together', { hint: 'give paths, or --all for every tracked video file', exitCode: 2 });
  const jobs = values.jobs === undefined ? Math.max(1, Math.floor(os.availableParallelism() / 2)) : Number(values.jobs);
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 64) throw new DitsUserError('bad-option-value', `--jobs ${values.jobs}: give a whole number from 1 to 64`, { exitCode: 2 });
  const kinds = parseKinds(values.kinds);
  const repo = await findRepo(ctx.cwd);
  requireInitialised(repo);
  const [ffmpeg, settings] = await Promise.all([openFfmpeg({ env: ctx.env }), readDitsSettings(repo.workTree)]);
  const entries = await trackedUnder(ctx, repo, positionals);
  const store = ChunkStore.open(repo.ditsDir, { create: true, durable: settings.durable });
  const abort = new AbortController();
  const onSignal = (): void => abort.abort(new DitsUserError('interrupted', 'interrupted: the variants finished so far are kept; run `git dits proxy make` again to go on', { exitCode: 130 }));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const bar = createProgressBar(ctx, 'Making proxies', 0);
  try {
    const plan = await planMake(repo, store, entries, { kinds, retryFailed: !!values['retry-failed'], force: !!values.force });
    const total = plan.items.reduce((n, i) => n + i.original.size, 0);
    const run = await runMake(repo, store, plan.items, {
      ffmpeg,
      chunker: settings.chunker,
      jobs,
      signal: abort.signal,
      onProgress: (f) => bar.update(Math.round(f * total), total),
      onMade: (m) => {
        const ok = m.records.filter((r) => r.status === 'ok');
        const failed = m.records.filter((r) => r.status === 'failed');
        const proxy = ok.find((r) => r.kind === 'proxy');
        const also = m.paths.length > 1 ? ` (also ${m.paths.slice(1).join(', ')}: the same content)` : '';
        let line = ok.length
          ? `${m.paths[0]}${also}: ${ok.map((r) => r.kind).join(', ')} made${proxy ? ` (proxy ${formatBytes(proxy.size!)}, ${proxy.recipe})` : ''}`
          : `${m.paths[0]}${also}: nothing made`;
        // one line per reason: a file ffmpeg cannot read fails every kind the same way
        const reasons = new Map<string, string[]>();
        for (const f of failed) reasons.set(f.reason!, [...(reasons.get(f.reason!) ?? []), f.kind]);
        for (const [reason, kinds] of reasons) line += `\n  failed (${kinds.join(', ')}): ${reason}`;
        for (const w of new Set(m.records.flatMap((r) => r.warnings))) line += `\n  warning: ${w}`;
        if (!values.json) out(ctx, line); // as each file is done, not at the end
      },
    }).catch((e: unknown) => {
      // ffmpeg's own abort error says less than ours: what was kept and how to go on
      throw abort.signal.aborted ? abort.signal.reason : e;
    });
    bar.done();
    const skipped = [...plan.skipped, ...run.skipped];
    if (values.json) {
      printJson(ctx, { made: run.made, skipped });
    } else {
      const byWhy = new Map<string, string[]>();
      for (const s of skipped) byWhy.set(s.why, [...(byWhy.get(s.why) ?? []), s.path]);
      for (const [why, paths] of byWhy) out(ctx, `Skipped ${paths.length} file(s), ${SKIP_TEXT[why as MakeSkip['why']]}: ${paths.slice(0, 5).join(', ')}${paths.length > 5 ? ', ...' : ''}`);
      if (run.made.length === 0 && skipped.length === 0) out(ctx, 'No tracked video files here.');
    }
    const anyFailed = run.made.some((m) => m.records.some((r) => r.status === 'failed'));
    return anyFailed || run.skipped.length ? 1 : 0;
  } finally {
    bar.done();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    store.close();
  }
}

const proxyOptions = { ...lsOptions, ...makeOptions } as const satisfies OptionTable;

const proxy: Command = {
  summary: 'Make and list the proxies, posters, sprites and previews of tracked video files',
  usage: `git dits proxy make [<path>... | --all] [--jobs <n>] [--kinds <list>] [--retry-failed] [--force] [--json]
       git dits proxy ls [<path>...] [--json] [-v]

Variants are made with ffmpeg (Debian's ffmpeg; DITS_FFMPEG/DITS_FFPROBE name others):
a proxy (ProRes 422 Proxy in .mov at most 1080 lines high by default: dits.proxy.codec =
prores_proxy|dnxhr_lb|h264, dits.proxy.height; per path in .gitattributes: dits-proxy=,
dits-proxy-height=, dits-lut=<file.cube>), a poster JPEG, a sprite sheet with a WebVTT index,
and a small H.264 preview. Each is checked against the original with Dits' own parser (frames,
rate, duration, timecode, audio layout, reel) and kept as content; \`git push\` sends them.`,
  options: proxyOptions,
  subcommands: {
    make: { usage: 'git dits proxy make [<path>... | --all] [--jobs <n>] [--kinds <list>] [--retry-failed] [--force] [--json]', summary: 'Make the proxies, posters, sprites and previews of tracked video files (resumable)', options: makeOptions },
    ls: { usage: 'git dits proxy ls [<path>...] [--json] [-v]', summary: 'List the variants of tracked files, and why any failed', options: lsOptions },
  },
  async run(args, ctx) {
    const [sub, ...rest] = args;
    if (sub === 'ls') return proxyLs(rest, ctx);
    if (sub === 'make') return proxyMake(rest, ctx);
    throw new DitsUserError('bad-usage', sub ? `unknown subcommand 'proxy ${sub}'` : 'say what to do: `git dits proxy make` or `git dits proxy ls`', { hint: 'see `git dits proxy --help`', exitCode: 2 });
  },
};

const fetchOptions = {
  remote: { type: 'string', value: '<name>', description: 'the dits:: remote to fetch from, and only that one' },
  all: { type: 'boolean', description: 'also the posters, sprite sheets (with their WebVTT) and previews' },
  json: { type: 'boolean', description: 'print JSON: what was fetched, and the files without a proxy' },
} as const satisfies OptionTable;

const fetchProxy: Command = {
  summary: 'Download the proxies of tracked files ahead of time (not the originals)',
  usage: 'git dits fetch-proxy [<path>...] [--remote <name>] [--all] [--json]',
  options: fetchOptions,
  async run(args, ctx) {
    const { values, positionals } = parseOptions(args, fetchOptions, { positionals: true });
    const repo = await findRepo(ctx.cwd);
    requireInitialised(repo);
    const entries = await trackedUnder(ctx, repo, positionals);
    const kinds: VariantKind[] = values.all ? [...VARIANT_KINDS] : ['proxy'];
    const store = ChunkStore.open(repo.ditsDir, { create: true });
    try {
      const originals = entries.map((e) => e.pointer.oid);
      const r = await ensureVariantsLocal(repo, store, originals, { kinds, remote: values.remote, onProgress: stderrProgress('Fetching proxies', ctx.interactive) });
      const none = new Set(r.none);
      const without = entries.filter((e) => none.has(e.pointer.oid)).map((e) => e.path);
      const withProxy = entries.filter((e) => !none.has(e.pointer.oid)).map((e) => e.path);
      if (values.json) {
        printJson(ctx, { fetchedBytes: r.bytes, local: withProxy, noProxy: without, failures: r.failures });
      } else {
        out(ctx, `${withProxy.length} file(s) have their proxy here${r.bytes ? ` (${formatBytes(r.bytes)} downloaded)` : ''}.`);
        if (without.length) out(ctx, `No proxy anywhere for ${without.length} file(s): ${without.slice(0, 5).join(', ')}${without.length > 5 ? ', ...' : ''} (\`git dits proxy make\` makes them).`);
      }
      for (const f of r.failures) err(ctx, `warning: ${f.remote}: ${f.message}`);
      return without.length && !withProxy.length && r.failures.length ? 1 : 0;
    } finally {
      store.close();
    }
  },
};

export const commands = { proxy, 'fetch-proxy': fetchProxy };
