/**
 * `git dits proxy ls` (what variants each tracked video version has, and why one failed)
 * and `git dits fetch-proxy` (download proxies ahead of time).
 */
import path from 'node:path';
import { findRepo, requireInitialised, type RepoPaths } from '../../git/repo.js';
import { listIndexPointers, type IndexPointer } from '../../git/pointers.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { contentPresent } from '../../store/materialize.js';
import { stderrProgress } from '../../remote/content-adapter.js';
import { ensureVariantsLocal } from '../../proxy/fetch-proxies.js';
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
    if (none) out(ctx, `${none} tracked file(s) have no variants recorded here${rows.length === none ? '' : ''} (\`git dits proxy make\` makes them; \`git dits fetch-proxy\` gets those a remote has).`);
    return 0;
  } finally {
    store.close();
  }
}

const proxyOptions = { ...lsOptions } as const satisfies OptionTable;

const proxy: Command = {
  summary: 'Proxies, posters, sprites and previews of tracked video files: list them (and, with make, make them)',
  usage: `git dits proxy ls [<path>...] [--json] [-v]`,
  options: proxyOptions,
  subcommands: {
    ls: { usage: 'git dits proxy ls [<path>...] [--json] [-v]', summary: 'List the variants of tracked files, and why any failed', options: lsOptions },
  },
  async run(args, ctx) {
    const [sub, ...rest] = args;
    if (sub === 'ls') return proxyLs(rest, ctx);
    throw new DitsUserError('bad-usage', sub ? `unknown subcommand 'proxy ${sub}'` : 'say what to do: `git dits proxy ls`', { hint: 'see `git dits proxy --help`', exitCode: 2 });
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
