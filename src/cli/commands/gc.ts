import fs from 'node:fs';
import { findRepo, requireInitialised, type RepoPaths } from '../../git/repo.js';
import { listIndexPointers } from '../../git/pointers.js';
import { applyParkedDrop, parkedDir, planParkedDrop, type ParkedPlan } from '../../proxy/checkout-mode.js';
import { runGit } from '../../git/exec.js';
import { listReachablePointers, listRemoteTrackedPointerBlobs, listWorktreePointers } from '../../git/reachable.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { applyGc, beginGc, planGc, type GcResult } from '../../store/gc.js';
import { dropUnusedLinks } from '../../worktree/worktree-links.js';
import { DitsUserError } from '../../errors.js';
import { formatBytes, out, err, printJson, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseAge, parseOptions, type OptionTable } from '../options.js';
import { listRecords } from '../../mount/mount-point.js';

interface Referrer {
  path: string;
  /** where the pointer was found: a blob id (commits, stash, index, reflog) or a working tree */
  blobOid?: string;
  worktree?: string;
}

/** "a.mov in commit 1a2b3c4" or "a.mov in the working tree /x" (best effort: for messages only). */
async function describe(workTree: string, r: Referrer): Promise<string> {
  if (r.worktree) return `${r.path} in the working tree ${r.worktree}`;
  // the commits that add or remove it, newest first: the last one added it
  const log = await runGit(['log', '--all', '--reflog', '--format=%h', `--find-object=${r.blobOid}`], { cwd: workTree, allowFail: true });
  const rev = log.exitCode === 0 ? (log.stdout.toString('utf8').trim().split('\n').pop() ?? '') : '';
  return rev ? `${r.path} in commit ${rev}` : `${r.path} (in an index or a stash entry)`;
}

/**
 * Fetches manifests from the Dits remotes (the default one first); returns why some could
 * not be fetched ('' when all were). The remote modules load only when needed.
 */
async function fetchMissingManifests(workTree: string, store: ChunkStore, ids: string[]): Promise<string> {
  const { defaultDitsRemote, listDitsRemotes, openRemoteStorage } = await import('../../remote/open-remote.js');
  const { fetchManifests } = await import('../../remote/content/fetch-content.js');
  const first = await defaultDitsRemote(workTree).catch(() => null);
  const remotes = (await listDitsRemotes(workTree)).sort((a, b) => (a.name === first?.name ? -1 : b.name === first?.name ? 1 : 0));
  let why = remotes.length ? '' : 'no Dits remote';
  for (const remote of remotes) {
    const want = ids.filter((id) => !store.hasManifest(id));
    if (want.length === 0) return '';
    try {
      await fetchManifests(await openRemoteStorage(workTree, remote.url), store, want, { remoteName: remote.name });
    } catch (e) {
      why = `${remote.name}: ${(e as Error).message}`;
    }
  }
  return ids.every((id) => store.hasManifest(id)) ? '' : why;
}

const gcOptions = {
  'dry-run': { type: 'boolean', description: 'only show what would be done' },
  prune: { type: 'string', value: '<age>', description: 'keep content newer than this (30m, 1h, 2d; now: no grace); what failed or killed adds left is removed at once', default: '1h' },
  'no-fetch': { type: 'boolean', description: 'do not fetch the manifests of versions in use that only a remote holds (then nothing that looks unused is removed)' },
  json: { type: 'boolean', description: 'print the result as JSON' },
} as const satisfies OptionTable;

const gc: Command = {
  summary: 'Remove local content that no commit, stash, index, reflog, working-tree pointer or running write needs (--dry-run shows the plan)',
  usage:
    'git dits gc [--dry-run] [--prune=<age>] [--no-fetch] [--json]\n\n' +
    'Manifests of versions in use that only a remote holds are fetched first (they are small), so gc can tell\n' +
    'which chunks they use; with --no-fetch, or when that fails, nothing that looks unused is removed.',
  options: gcOptions,
  async run(args, ctx: CliContext) {
    const { values } = parseOptions(args, gcOptions);
    const graceMs = parseAge(values.prune ?? '1h');
    const repo = await findRepo(ctx.cwd);
    requireInitialised(repo);
    const store = ChunkStore.open(repo.ditsDir);
    try {
      const session = beginGc(store); // before listing: writers that end while we list are seen
      const referrers = new Map<string, Referrer[]>();
      const refer = (manifest: string, r: Referrer): void => {
        const list = referrers.get(manifest);
        if (list) list.push(r);
        else referrers.set(manifest, [r]);
      };
      for (const p of await listReachablePointers(repo.workTree)) refer(p.pointer.manifest, { path: p.path, blobOid: p.blobOid });
      for (const p of await listWorktreePointers(repo.workTree)) refer(p.pointer.manifest, { path: p.path, worktree: p.worktree });
      let plan = planGc(store, referrers.keys(), { graceMs, session });

      if (plan.unreadableManifests.length) {
        const lines = await Promise.all(plan.unreadableManifests.slice(0, 5).map(async (m) => `  ${await describe(repo.workTree, referrers.get(m.id)![0]!)}: ${m.reason}`));
        throw new DitsUserError(
          'gc-manifest-unreadable',
          `gc stopped, nothing was removed: ${plan.unreadableManifests.length} file version(s) still in use have a manifest that cannot be read, so gc cannot tell which content they need:\n${lines.join('\n')}`,
          { hint: 'run `git dits fsck` (it moves a corrupt manifest aside and lists what is missing), then get the manifest back from a remote (`git dits fetch <rev> -- <path>`) or fix its file permissions; run gc again after that' },
        );
      }
      // A live manifest that is not here: gc fetches it from a remote (manifests are small
      // and stay hot) so that it can decide. One still missing is fine only if a remote
      // holds that version (what it needs is then the remote's to keep); but which local
      // chunks it uses cannot be told, so every chunk that looks unused is kept.
      let fetchNote = '';
      if (plan.missingManifests.length && !values['no-fetch']) {
        fetchNote = await fetchMissingManifests(repo.workTree, store, plan.missingManifests);
        plan = planGc(store, referrers.keys(), { graceMs, session });
        if (plan.unreadableManifests.length) throw new Error('a manifest just fetched and verified cannot be read back');
      }
      if (plan.missingManifests.length) {
        const onRemote = store.manifestsKnownOnRemotes(plan.missingManifests);
        const tracked = await listRemoteTrackedPointerBlobs(repo.workTree);
        const lost = plan.missingManifests.filter((id) => !onRemote.has(id) && !(referrers.get(id) ?? []).some((r) => r.blobOid && tracked.has(r.blobOid)));
        if (lost.length) {
          const lines = await Promise.all(lost.slice(0, 5).map(async (id) => `  ${await describe(repo.workTree, referrers.get(id)![0]!)}: manifest ${id} is not in the local store`));
          throw new DitsUserError(
            'gc-manifest-missing',
            `gc stopped, nothing was removed: ${lost.length} file version(s) still in use have no manifest here, and no remote is known to hold them${fetchNote ? ` (${fetchNote})` : ''}:\n${lines.join('\n')}`,
            { hint: 'run `git dits fsck` to see everything missing; put the manifest back (or fetch it: `git dits fetch --remote <name> <rev> -- <path>`), or re-add the file from its original; run gc again after that' },
          );
        }
      }
      const notHere = plan.missingManifests;

      let result: GcResult | null = null;
      if (!values['dry-run']) {
        result = applyGc(store, plan, session, { keepChunks: notHere.length > 0 });
        dropUnusedLinks(store); // hard links to files no longer in the working tree (worktree-links.ts)
      }
      // files a checkout-mode switch parked that no tracked path here can switch back to (checkout-mode.ts)
      const parkedPlan = await planUnusedParked(repo, store);
      const parkedFreed = values['dry-run'] ? 0 : applyParkedDrop(repo.gitDir, parkedPlan);
      const parked = { dropped: parkedPlan.drop.length, bytes: parkedPlan.drop.reduce((n, d) => n + d.bytes, 0), keptLastCopy: parkedPlan.keptLastCopy };
      const { liveFileIds: _fileIds, ...shown } = plan;
      if (values.json) printJson(ctx, { dryRun: Boolean(values['dry-run']), ...shown, manifestsOnlyOnRemote: notHere, result, parked });
      else {
        if (parked.dropped) out(ctx, `${values['dry-run'] ? 'Would remove' : 'Removed'} ${parked.dropped} parked file(s) no path uses (proxies or originals set aside by \`git dits checkout --mode\`), ${formatBytes(values['dry-run'] ? parked.bytes : parkedFreed)}.`);
        if (parked.keptLastCopy.length) out(ctx, `Kept ${parked.keptLastCopy.length} parked file(s) no path uses: their content is neither in the local store nor known on a remote (push it, or delete .git/dits/parked/<id> by hand).`);
        if (result) out(ctx, `Removed ${result.deletedChunks} chunk(s) and ${result.deletedManifests} manifest(s), freeing ${formatBytes(result.freedBytes)}.`);
        else out(ctx, `Would remove ${plan.deadChunks} chunk(s) and ${plan.deadManifests.length} manifest(s), freeing ${formatBytes(plan.freedBytes)}.`);
        out(ctx, `  packs deleted: ${plan.deletePacks.length}, rewritten: ${plan.rewritePacks.length}, cut back (left by failed or killed writes): ${plan.partialPacks.length}, orphan pack files: ${plan.orphanPackFiles.length}; file versions kept: ${plan.liveManifests}`);
        if (plan.busyPacks.length) out(ctx, `  packs being written, left alone: ${plan.busyPacks.length}`);
        const kept = result?.kept ?? (plan.writers.length ? { reason: 'writers' as const, writers: plan.writers } : notHere.length ? { reason: 'manifests-not-here' as const } : null);
        if (kept?.reason === 'writers') {
          // a mount reading the store counts as a writer (it may show any revision, even one
          // nothing refers to any more): named as the mount it is, with how to end it
          const mounts = listRecords(repo.ditsDir);
          const w = kept.writers.find((x) => mounts.some((m) => m.pid === x.pid)) ?? kept.writers[0]!;
          const more = kept.writers.length > 1 ? ` and ${kept.writers.length - 1} more` : '';
          const mount = mounts.find((m) => m.pid === w.pid);
          if (mount) {
            err(ctx, `${result ? 'Kept' : 'Would keep'} all content that looks unused: the store is in use by the mount of ${mount.rev} at ${mount.mountPoint} (process ${w.pid}${more}, since ${new Date(w.since).toISOString()}), which may show content nothing else refers to.`);
            err(ctx, `hint: unmount it (\`git dits umount ${mount.mountPoint}\`) and run \`git dits gc\` again`);
          } else {
            err(ctx, `${result ? 'Kept' : 'Would keep'} all content that looks unused: another process is writing to the store (process ${w.pid}${more}, since ${new Date(w.since).toISOString()}), and may be about to refer to any of it.`);
            err(ctx, 'hint: run `git dits gc` again when it has finished');
          }
        } else if (kept?.reason === 'manifests-not-here') {
          const first = await describe(repo.workTree, referrers.get(notHere[0]!)?.[0] ?? { path: '?' });
          err(ctx, `${result ? 'Kept' : 'Would keep'} all chunks that look unused: ${notHere.length} file version(s) still in use have their manifest only on a remote, not here (e.g. ${first}), so gc cannot tell which chunks they use.`);
          if (fetchNote) err(ctx, `(fetching them failed: ${fetchNote})`);
          err(ctx, 'hint: run gc where the remote can be reached (without --no-fetch), or `git dits fetch --remote <name> <rev> -- <path>` to bring a version here; gc can then decide');
        }
        if (values['dry-run'] && plan.deadChunks + plan.deadManifests.length > 0) out(ctx, 'Run without --dry-run to apply.');
      }
    } finally {
      store.close();
    }
    return 0;
  },
};

/** The parked files gc may drop: used are the file ids of the originals in the index and of their proxies. */
async function planUnusedParked(repo: RepoPaths, store: ChunkStore): Promise<ParkedPlan> {
  if (!fs.existsSync(parkedDir(repo.gitDir))) return { drop: [], keptLastCopy: [] }; // no switch ever parked a file here
  const used = new Set<string>();
  for (const p of await listIndexPointers(repo.workTree)) {
    used.add(p.pointer.oid);
    for (const v of store.variantsOf(p.pointer.oid, 'proxy')) if (v.fileId) used.add(v.fileId);
  }
  return planParkedDrop(repo.gitDir, store, used);
}

export const commands = { gc };
