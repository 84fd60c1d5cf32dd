import { findRepo, requireInitialised } from '../../git/repo.js';
import { runGit } from '../../git/exec.js';
import { listIndexPointers, listTreePointers } from '../../git/pointers.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { defaultDitsRemote, openRemoteStorage } from '../../remote/open-remote.js';
import { recordingReads } from '../../tier/access-records.js';
import { manifestsBetween } from '../../remote/session.js';
import { stderrProgress } from '../../remote/content-adapter.js';
import { pushContent, pushChunks, ensureLocal, planPrune, applyPrune } from '../../remote/content/index.js';
import { parseByteSize, readDitsSettings } from '../../git/dits-config.js';
import { obtainMissingChunks, obtainMissingManifests } from '../../remote/push-sources.js';
import { DitsUserError } from '../../errors.js';
import { formatBytes, out, printJson, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseAge, parseOptions, type OptionTable } from '../options.js';
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
    const { ids, paths, blobs } = await manifestsBetween(repo.workTree, [tip], known);
    const store = ChunkStore.open(repo.ditsDir);
    try {
      const sources = { workTree: repo.workTree, store, target: remote.name, from: { paths, blobs, tips: [tip], exclude: known } };
      await obtainMissingManifests(sources, ids); // manifests a clone never fetched (small)
      // chunks kept only in the working tree or pruned count as to upload (a real push obtains them)
      const r = await pushContent(storage, store, ids, { remoteName: remote.name, dryRun: true, obtainMissing: (missing) => obtainMissingChunks(sources, missing) });
      if (values.json) printJson(ctx, { remote: remote.name, ref, ...r });
      else out(ctx, `${remote.name}: would upload ${r.manifests} file version(s), ${r.chunks} chunk(s) in ${r.packs} pack(s): ${formatBytes(r.bytes)} in about ${r.requests} request(s) (${r.estimatedRequests} to upload, ${r.requests - r.estimatedRequests} to see what ${remote.name} holds); ${r.chunksOnRemote} chunk(s) already there.${r.chunksToObtain ? ` ${r.chunksToObtain} of the chunks are not kept here: a push takes them from the working tree or another remote first.` : ''}`);
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
      const r = await recordingReads(repo, remote.url, storage, (access) =>
        ensureLocal(storage, store, { manifestIds: pointers.map((p) => p.pointer.manifest) }, { remoteName: remote.name, dryRun: values['dry-run'], onProgress: stderrProgress('Fetching content', ctx.interactive), access }),
      );
      if (values.json) printJson(ctx, { remote: remote.name, rev, files: pointers.length, ...r });
      else out(ctx, `${values['dry-run'] ? 'Would fetch' : 'Fetched'} ${r.chunks} chunk(s), ${formatBytes(r.bytes)} in ${values['dry-run'] ? 'about ' : ''}${r.requests} request(s) (${r.rangeRequests} ranged read(s) of packs) for ${pointers.length} file(s) at ${rev}; ${r.chunksLocal} chunk(s) were already local.`);
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
  remote: { type: 'string', value: '<name>', description: 'the Dits remote that must hold the content (default: dits.remote, else origin, else the only dits:: remote)' },
  'size-only': { type: 'boolean', description: 'accept a size check of each remote pack (one HEAD each) instead of reading back every chunk to drop and checking its BLAKE3 id: faster and cheaper on S3, but a damaged byte on the remote goes unnoticed and the local copy is gone' },
  repair: { type: 'boolean', description: 'when a chunk\'s remote copy fails verification, upload the good local copy to the remote again (the chunk stays local; a later prune may drop it)' },
} as const satisfies OptionTable;

const prune: Command = {
  summary: 'Free local disk: drop local chunks the Dits remote verifiably holds (old or least recently used first); reads fetch them back',
  usage: `git dits prune [--older-than 30d] [--max-local-size 50G] [--dry-run] [--json] [--remote <name>] [--size-only] [--repair]

Before the last local copy of a chunk is dropped, its bytes on the remote are read back
(ranged reads of exactly the chunks dropped, adjacent ones in one request) and checked
against its id. A chunk that fails stays local; prune names the remote pack and exits 1.`,
  options: pruneOptions,
  async run(args, ctx) {
    const { values } = parseOptions(args, pruneOptions);
    if (!values['older-than'] && !values['max-local-size']) throw new DitsUserError('bad-usage', 'say what to prune', { hint: 'git dits prune --older-than 30d, or --max-local-size 50G (both may be given)' });
    const { repo, remote, storage } = await remoteFor(ctx, values.remote);
    const current = (await listIndexPointers(repo.workTree)).map((p) => p.pointer.manifest);
    const settings = await readDitsSettings(repo.workTree);
    const store = ChunkStore.open(repo.ditsDir);
    const dryRun = Boolean(values['dry-run']);
    try {
      const plan = await planPrune(store, storage, {
        remoteName: remote.name,
        olderThanMs: values['older-than'] ? parseAge(values['older-than']) : undefined,
        maxLocalBytes: values['max-local-size'] ? parseSize(values['max-local-size']) : undefined,
        keepManifestIds: current,
        concurrency: settings.concurrency,
        verify: values['size-only'] ? 'size' : 'bytes',
        dryRun,
        onProgress: stderrProgress('Verifying the remote copies', ctx.interactive),
      });
      const applied = dryRun ? null : applyPrune(store, plan);
      const failedIds = plan.failedRemotePacks.flatMap((f) => f.ids);
      const repaired = values.repair && !dryRun && failedIds.length ? await pushChunks(storage, store, failedIds, { remoteName: remote.name, concurrency: settings.concurrency }) : null;
      const failed = plan.failedRemotePacks.map((f) => ({ packKey: f.packKey, reason: f.reason, chunks: f.chunks, chunkIds: f.ids.slice(0, 20).map((id) => id.toString('hex')) }));
      if (values.json) printJson(ctx, { dryRun, ...plan, packs: plan.packs.map((p) => ({ pack: p.pack, drop: p.drop.length, keep: p.keep, freedBytes: p.freedBytes })), failedRemotePacks: failed, applied, repaired });
      else {
        const check =
          plan.verify === 'bytes'
            ? `${dryRun ? 'verifying them reads' : 'each read back and verified:'} ${formatBytes(plan.verifyBytes)} in ${plan.verifyRequests} request(s) from ${remote.name}`
            : `${dryRun ? 'checking' : 'checked'} by size only (--size-only): ${plan.verifyRequests} remote pack(s), ${plan.verifyRequests} request(s) to ${remote.name}`;
        out(ctx, `${dryRun ? 'Would drop' : 'Dropped'} ${plan.chunks} chunk(s), ${formatBytes(plan.freedBytes)} (local chunks ${formatBytes(plan.localBytesBefore)} -> ${formatBytes(plan.localBytesAfter)}); ${check}.`);
        if (plan.notOnRemote) out(ctx, `Kept ${plan.notOnRemote} chunk(s) that ${remote.name} does not hold (push them first).`);
        if (repaired) out(ctx, `Uploaded good copies of ${repaired.chunks} chunk(s) to ${remote.name} in ${repaired.packs} new pack(s); run prune again to drop them once they verify.`);
      }
      if (failed.length && !repaired) {
        const kept = failed.reduce((n, f) => n + f.chunks, 0);
        const lines = failed.map((f) => `  ${f.packKey}: ${f.chunks} chunk(s) kept (${f.chunks === 1 ? `chunk ${f.chunkIds[0]}` : `e.g. chunk ${f.chunkIds[0]}`}: ${f.reason})`);
        throw new DitsUserError(
          'prune-remote-damaged',
          `${kept} chunk(s) stay local: their copy on ${remote.name} (${storage.location}) failed verification in ${failed.length} remote pack(s):\n${lines.join('\n')}`,
          {
            hint: dryRun
              ? 'the remote lost packs it held; `git dits prune --repair` uploads good copies from here'
              : `this machine holds the only good copy: \`git dits prune --repair ${[...args].filter((a) => a !== '--repair').join(' ')}\` uploads it to ${remote.name} again (or push from a machine that has it); everything else was pruned`,
          },
        );
      }
    } finally {
      store.close();
    }
    return 0;
  },
};

export const commands = { push, fetch, prune };
