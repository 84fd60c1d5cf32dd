import { findRepo, requireInitialised } from '../../git/repo.js';
import { runGit } from '../../git/exec.js';
import { listIndexPointers, listTreePointers } from '../../git/pointers.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { defaultDitsRemote, openRemoteStorage } from '../../remote/open-remote.js';
import { manifestsBetween } from '../../remote/session.js';
import { stderrProgress } from '../../remote/content-adapter.js';
import { pushContent, ensureLocal, planPrune, applyPrune } from '../../remote/content/index.js';
import { parseByteSize, readDitsSettings } from '../../git/dits-config.js';
import { parseAge } from './gc.js';
import { DitsUserError } from '../../errors.js';
import { formatBytes, out, printJson, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';
import path from 'node:path';

async function remoteFor(ctx: CliContext, name: string | undefined) {
  const repo = await findRepo(ctx.cwd);
  requireInitialised(repo);
  const remote = await defaultDitsRemote(repo.workTree, name);
  if (!remote) throw new DitsUserError('no-remote', 'this repository has no Dits remote', { hint: 'git remote add origin dits::s3://bucket/prefix (or dits::file:///path)' });
  const storage = await openRemoteStorage(repo.workTree, remote.url);
  return { repo, remote, storage };
}

function parseSize(v: string): number {
  const n = parseByteSize(v);
  if (n === null) throw new DitsUserError('bad-size', `cannot read the size '${v}'`, { hint: 'use e.g. 500M, 50G, 2T' });
  return n;
}

const pushOptions = { 'dry-run': { type: 'boolean', description: 'show what `git push` would upload (required: plain `git push` uploads)' }, json: { type: 'boolean', description: 'print the result as JSON' } } as const satisfies OptionTable;

const push: Command = {
  summary: 'Show what `git push` would upload to the Dits remote: content bytes, chunks, requests (--dry-run)',
  usage: 'git dits push --dry-run [--json] [<remote>] [<ref>]',
  options: pushOptions,
  async run(args, ctx) {
    const { values, positionals } = parseOptions(args, pushOptions, { positionals: true });
    if (!values['dry-run']) throw new DitsUserError('bad-usage', 'push content with plain `git push`; `git dits push --dry-run` shows what it would send');
    const { repo, remote, storage } = await remoteFor(ctx, positionals[0]);
    const ref = positionals[1] ?? 'HEAD';
    const verified = await runGit(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`], { cwd: repo.workTree, allowFail: true });
    if (verified.exitCode !== 0) throw new DitsUserError('bad-revision', `'${ref}' is not a revision of this repository`, { hint: 'name a branch, tag or commit (`git log --oneline` lists commits)' });
    const tip = verified.stdout.toString().trim();
    const known = (await runGit(['for-each-ref', '--format=%(objectname)', `refs/remotes/${remote.name}/`], { cwd: repo.workTree })).stdout.toString().split('\n').filter(Boolean);
    const { ids } = await manifestsBetween(repo.workTree, [tip], known);
    const store = ChunkStore.open(repo.ditsDir);
    try {
      const r = await pushContent(storage, store, ids, { remoteName: remote.name, dryRun: true });
      if (values.json) printJson(ctx, { remote: remote.name, ref, ...r });
      else out(ctx, `${remote.name}: would upload ${r.manifests} file version(s), ${r.chunks} chunk(s) in ${r.packs} pack(s): ${formatBytes(r.bytes)} in about ${r.estimatedRequests} request(s); ${r.chunksOnRemote} chunk(s) already there.`);
    } finally {
      store.close();
    }
    return 0;
  },
};

const fetchOptions = { 'dry-run': { type: 'boolean', description: 'only count what would be fetched' }, json: { type: 'boolean', description: 'print the result as JSON' }, remote: { type: 'string', value: '<name>', description: 'the Dits remote to use (default: dits.remote, else origin, else the only dits:: remote)' } } as const satisfies OptionTable;

const fetch: Command = {
  summary: 'Fetch the content of a revision (default HEAD) from the Dits remote into the local store, without touching files',
  usage: 'git dits fetch [--dry-run] [--json] [--remote <name>] [<rev>] [-- <path>...]',
  options: fetchOptions,
  async run(args, ctx) {
    const { values, positionals, afterDashes } = parseOptions(args, fetchOptions, { positionals: true });
    const { repo, remote, storage } = await remoteFor(ctx, values.remote);
    // `fetch [<rev>] [-- <path>...]`: what follows `--` is always paths
    const revs = afterDashes ? positionals.slice(0, positionals.length - afterDashes.length) : positionals.slice(0, 1);
    if (revs.length > 1) throw new DitsUserError('bad-usage', `one revision at a time (got ${revs.join(', ')})`, { hint: 'git dits fetch <rev> -- <path>...', exitCode: 2 });
    const rev = revs[0] ?? 'HEAD';
    const specs = (afterDashes ?? positionals.slice(1)).map((p) => path.relative(repo.workTree, path.resolve(ctx.cwd, p)) || '.');
    const pointers = await listTreePointers(repo.workTree, rev, specs);
    const store = ChunkStore.open(repo.ditsDir);
    try {
      const r = await ensureLocal(storage, store, { manifestIds: pointers.map((p) => p.pointer.manifest) }, { remoteName: remote.name, dryRun: values['dry-run'], onProgress: stderrProgress('Fetching content', ctx.interactive) });
      if (values.json) printJson(ctx, { remote: remote.name, rev, files: pointers.length, ...r });
      else out(ctx, `${values['dry-run'] ? 'Would fetch' : 'Fetched'} ${r.chunks} chunk(s), ${formatBytes(r.bytes)} in ${r.requests} request(s) for ${pointers.length} file(s) at ${rev}; ${r.chunksLocal} chunk(s) were already local.`);
    } finally {
      store.close();
    }
    return 0;
  },
};

const pruneOptions = {
  'older-than': { type: 'string', value: '<age>', description: 'drop chunks not used for this long (e.g. 30d)' },
  'max-local-size': { type: 'string', value: '<size>', description: 'drop least recently used chunks until the local store is this small (e.g. 50G)' },
  'dry-run': { type: 'boolean', description: 'only show what would be done' },
  json: { type: 'boolean', description: 'print the result as JSON' },
  remote: { type: 'string', value: '<name>', description: 'the Dits remote to use (default: dits.remote, else origin, else the only dits:: remote)' },
} as const satisfies OptionTable;

const prune: Command = {
  summary: 'Free local disk: drop local chunks the Dits remote verifiably holds (old or least recently used first); reads fetch them back',
  usage: 'git dits prune [--older-than 30d] [--max-local-size 50G] [--dry-run] [--json] [--remote <name>]',
  options: pruneOptions,
  async run(args, ctx) {
    const { values } = parseOptions(args, pruneOptions);
    if (!values['older-than'] && !values['max-local-size']) throw new DitsUserError('bad-usage', 'say what to prune', { hint: 'git dits prune --older-than 30d, or --max-local-size 50G (both may be given)' });
    const { repo, remote, storage } = await remoteFor(ctx, values.remote);
    const current = (await listIndexPointers(repo.workTree)).map((p) => p.pointer.manifest);
    const settings = await readDitsSettings(repo.workTree);
    const store = ChunkStore.open(repo.ditsDir);
    try {
      const plan = await planPrune(store, storage, {
        remoteName: remote.name,
        olderThanMs: values['older-than'] ? parseAge(values['older-than']) : undefined,
        maxLocalBytes: values['max-local-size'] ? parseSize(values['max-local-size']) : undefined,
        keepManifestIds: current,
        concurrency: settings.concurrency,
      });
      const applied = values['dry-run'] ? null : applyPrune(store, plan);
      if (values.json) printJson(ctx, { dryRun: Boolean(values['dry-run']), ...plan, packs: plan.packs.map((p) => ({ pack: p.pack, drop: p.drop.length, keep: p.keep, freedBytes: p.freedBytes })), applied });
      else {
        out(ctx, `${values['dry-run'] ? 'Would drop' : 'Dropped'} ${plan.chunks} chunk(s), ${formatBytes(plan.freedBytes)} (local chunks ${formatBytes(plan.localBytesBefore)} -> ${formatBytes(plan.localBytesAfter)}); verified on ${remote.name}.`);
        if (plan.notOnRemote) out(ctx, `Kept ${plan.notOnRemote} chunk(s) the remote does not verifiably hold (push first).`);
      }
    } finally {
      store.close();
    }
    return 0;
  },
};

export const commands = { push, fetch, prune };
