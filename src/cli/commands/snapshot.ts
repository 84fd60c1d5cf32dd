import { findRepo, requireInitialised } from '../../git/repo.js';
import { runGit } from '../../git/exec.js';
import { readDitsConfig } from '../../git/dits-config.js';
import { DitsUserError } from '../../errors.js';
import { deleteSnapshots, listSnapshots, resolveSnapshot, takeSnapshot, type SnapshotInfo } from '../../lifecycle/snapshot.js';
import { DEFAULT_RETENTION, planRetention, type KeepReason, type RetentionPolicy } from '../../lifecycle/retention.js';
import { err, out, printJson, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';

const createOptions = {
  message: { type: 'string', short: 'm', value: '<msg>', description: 'a title for the snapshot' },
  push: { type: 'boolean', description: 'then push the snapshot ref (and its content) to the remote named after it (`--push origin`), else the branch\'s remote or the default Dits remote' },
  json: { type: 'boolean', description: 'print the result as JSON' },
} as const satisfies OptionTable;

const listOptions = { json: { type: 'boolean', description: 'print the list as JSON' } } as const satisfies OptionTable;

const restoreOptions = {
  force: { type: 'boolean', short: 'f', description: 'also overwrite files with uncommitted changes (and untracked or ignored files in the way)' },
  json: { type: 'boolean', description: 'print the result as JSON' },
} as const satisfies OptionTable;

const pruneOptions = {
  'keep-hourly': { type: 'string', value: '<n>', description: 'keep the newest snapshot of each of the last n hours that have one (git config dits.snapshot.keepHourly; default 24)' },
  'keep-daily': { type: 'string', value: '<n>', description: 'the same per day (dits.snapshot.keepDaily; default 7)' },
  'keep-weekly': { type: 'string', value: '<n>', description: 'the same per ISO week (dits.snapshot.keepWeekly; default 4)' },
  'keep-monthly': { type: 'string', value: '<n>', description: 'the same per month (dits.snapshot.keepMonthly; default 12)' },
  'dry-run': { type: 'boolean', description: 'only show what would be removed' },
  json: { type: 'boolean', description: 'print the plan as JSON' },
} as const satisfies OptionTable;

/** `--push [remote]`: the remote is the word after it, if any (parseArgs has no optional values). */
function takePushRemote(args: string[]): { args: string[]; remote?: string } {
  const rest: string[] = [];
  let remote: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith('--push=')) {
      rest.push('--push');
      remote = a.slice('--push='.length);
    } else if (a === '--push' && args[i + 1] !== undefined && !args[i + 1]!.startsWith('-')) {
      rest.push('--push');
      remote = args[++i];
    } else rest.push(a);
  }
  return { args: rest, remote };
}

async function pushRemoteFor(cwd: string, branch: string | null, explicit?: string): Promise<string> {
  if (explicit) return explicit;
  if (branch) {
    const r = await runGit(['config', '--get', `branch.${branch}.remote`], { cwd, allowFail: true });
    if (r.exitCode === 0 && r.stdout.toString('utf8').trim()) return r.stdout.toString('utf8').trim();
  }
  const { defaultDitsRemote } = await import('../../remote/open-remote.js');
  const d = await defaultDitsRemote(cwd);
  if (!d) throw new DitsUserError('no-remote', 'the snapshot was taken, but there is no remote to push it to', { hint: 'name one: `git dits snapshot --push <remote>` (or set dits.remote)' });
  return d.name;
}

function count(key: string, flag: string | undefined, config: Awaited<ReturnType<typeof readDitsConfig>>, fallback: number): number {
  if (flag !== undefined) {
    if (!/^\d+$/.test(flag)) throw new DitsUserError('bad-option-value', `--${key} needs a whole number, not '${flag}'`, { hint: `e.g. --${key} 24`, exitCode: 2 });
    return Number(flag);
  }
  const name = `dits.snapshot.keep${key.slice('keep-'.length)[0]!.toUpperCase()}${key.slice('keep-'.length + 1)}`;
  return config.int(name, fallback, { min: 0, max: 1_000_000 });
}

function describe(s: SnapshotInfo): string {
  return `${s.id}  ${new Date(s.time).toISOString().replace('.000Z', 'Z')}  ${s.branch ?? '(detached)'}${s.head ? ` @${s.head.slice(0, 7)}` : ''}  ${s.message}`;
}

const snapshot: Command = {
  summary: 'Record the working tree (tracked and untracked files) as a snapshot, without touching HEAD, the index or the stash; list, restore and prune them',
  usage:
    'git dits snapshot [-m <msg>] [--push [<remote>]] [--json]\n' +
    '   or: git dits snapshot list [--json]\n' +
    '   or: git dits snapshot restore <id> [<paths>...] [--force] [--json]\n' +
    '   or: git dits snapshot prune [--keep-hourly <n>] [--keep-daily <n>] [--keep-weekly <n>] [--keep-monthly <n>] [--dry-run] [--json]\n\n' +
    'Each snapshot is a commit on refs/dits/snapshots/<id> whose parent is the HEAD it was taken on; big files are\n' +
    'pointers to content in the store, so unchanged footage costs nothing. `git dits gc` frees what pruned snapshots held.\n\n' +
    'Taking one:\n' +
    '  -m, --message <msg>     a title for the snapshot\n' +
    "      --push [<remote>]   then push its ref (and content) to <remote>, else the branch's remote or the default Dits remote",
  // every subcommand takes these (-m and --push only the taking: listed in the usage above, parsed by createOptions)
  options: { json: createOptions.json },
  subcommands: {
    list: { summary: 'List the snapshots, oldest first', usage: 'git dits snapshot list [--json]', options: listOptions },
    restore: {
      summary: 'Write files from a snapshot into the working tree (never over uncommitted changes unless --force)',
      usage: 'git dits snapshot restore <id|latest> [<paths>...] [--force] [--json]',
      options: restoreOptions,
    },
    prune: {
      summary: "Remove snapshots as restic's forget does: keep the newest of each hour, day, week and month that has one",
      usage: 'git dits snapshot prune [--keep-hourly <n>] [--keep-daily <n>] [--keep-weekly <n>] [--keep-monthly <n>] [--dry-run] [--json]',
      options: pruneOptions,
    },
  },
  async run(args, ctx: CliContext) {
    const sub = args[0];
    if (sub === 'list') return runList(args.slice(1), ctx);
    if (sub === 'restore') return runRestore(args.slice(1), ctx);
    if (sub === 'prune') return runPrune(args.slice(1), ctx);
    const pushed = takePushRemote(args);
    const { values } = parseOptions(pushed.args, createOptions);
    const repo = await findRepo(ctx.cwd);
    requireInitialised(repo);
    const r = await takeSnapshot(repo, { message: values.message });
    for (const w of r.warnings) err(ctx, `dits: warning: ${w.replace(/^(error|warning): /, '')}`);
    for (const s of r.skipped) err(ctx, `dits: warning: skipped ${s.path}: ${s.reason}`);
    let push: { remote: string; ok: boolean; error?: string } | null = null;
    if (values.push) {
      const remote = await pushRemoteFor(repo.workTree, r.snapshot.branch, pushed.remote);
      const p = await runGit(['push', '--quiet', remote, `${r.snapshot.ref}:${r.snapshot.ref}`], { cwd: repo.workTree, allowFail: true });
      push = { remote, ok: p.exitCode === 0, ...(p.exitCode === 0 ? {} : { error: p.stderr.trim() }) };
    }
    if (values.json) printJson(ctx, { ...r, push });
    else {
      out(ctx, `Snapshot ${r.snapshot.id} (${r.filesRead} file(s) read${r.unchanged ? ', same as the previous snapshot' : ''}${r.skipped.length ? `, ${r.skipped.length} skipped` : ''})`);
      if (push?.ok) out(ctx, `Pushed ${r.snapshot.ref} to ${push.remote}`);
    }
    if (push && !push.ok) {
      throw new DitsUserError('snapshot-push-failed', `the snapshot ${r.snapshot.id} was taken, but pushing it to ${push.remote} failed: ${push.error}`, {
        hint: `push it again with \`git push ${push.remote} ${r.snapshot.ref}\``,
      });
    }
    return 0;
  },
};

async function runList(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseOptions(args, listOptions);
  const repo = await findRepo(ctx.cwd);
  const all = await listSnapshots(repo);
  if (values.json) printJson(ctx, all);
  else if (all.length === 0) out(ctx, 'No snapshots yet (`git dits snapshot` takes one).');
  else for (const s of all) out(ctx, describe(s) + (s.worktree !== repo.workTree ? `  [${s.worktree}]` : ''));
  return 0;
}

async function runRestore(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseOptions(args, restoreOptions, { positionals: true });
  const [spec, ...paths] = positionals;
  if (!spec) throw new DitsUserError('missing-argument', 'which snapshot? `git dits snapshot restore <id> [<paths>...]`', { hint: '`git dits snapshot list` shows the ids (or use `latest`)', exitCode: 2 });
  const repo = await findRepo(ctx.cwd);
  requireInitialised(repo);
  const snap = resolveSnapshot(await listSnapshots(repo), spec, repo.workTree);
  const { planRestore, applyRestore } = await import('../../lifecycle/snapshot-restore.js');
  const plan = await planRestore(repo, ctx.cwd, snap.commit, paths, { force: Boolean(values.force) });
  const applied = await applyRestore(repo, plan);
  let code = 0;
  let failed = 0;
  if (applied.pointers.length) {
    // big files: their content through the store (fetched if needed), as a checkout writes them
    const { finishCheckout } = await import('../finish-checkout.js');
    const outcome = await finishCheckout(ctx, applied.pointers, true);
    code = outcome.code;
    failed = outcome.failed + outcome.deferred + outcome.frozenFiles;
  }
  for (const s of plan.skipped) err(ctx, `dits: skipped ${s.path}: ${s.reason}`);
  const restored = [...applied.written, ...applied.pointers].sort();
  if (values.json) printJson(ctx, { snapshot: snap.id, restored, same: plan.same, skipped: plan.skipped, contentNotWritten: failed });
  else out(ctx, `Restored ${restored.length} file(s) from ${snap.id}${plan.same.length ? ` (${plan.same.length} already the same)` : ''}${plan.skipped.length ? `; skipped ${plan.skipped.length} (listed above)` : ''}.`);
  return code !== 0 ? code : plan.skipped.length ? 1 : 0;
}

async function runPrune(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseOptions(args, pruneOptions);
  const repo = await findRepo(ctx.cwd);
  const config = await readDitsConfig(repo.workTree);
  const policy: RetentionPolicy = {
    hourly: count('keep-hourly', values['keep-hourly'], config, DEFAULT_RETENTION.hourly),
    daily: count('keep-daily', values['keep-daily'], config, DEFAULT_RETENTION.daily),
    weekly: count('keep-weekly', values['keep-weekly'], config, DEFAULT_RETENTION.weekly),
    monthly: count('keep-monthly', values['keep-monthly'], config, DEFAULT_RETENTION.monthly),
  };
  const all = await listSnapshots(repo);
  // one group per working tree (as restic groups by host and paths): one worktree's snapshots never push out another's
  const groups = new Map<string, SnapshotInfo[]>();
  for (const s of all) groups.set(s.worktree, [...(groups.get(s.worktree) ?? []), s]);
  const keep: { snapshot: SnapshotInfo; reasons: KeepReason[] }[] = [];
  const remove: SnapshotInfo[] = [];
  for (const items of groups.values()) {
    const plan = planRetention(items, policy);
    keep.push(...plan.keep.map((k) => ({ snapshot: k.item, reasons: k.reasons })));
    remove.push(...plan.remove);
  }
  if (!values['dry-run']) await deleteSnapshots(repo, remove);
  if (values.json) printJson(ctx, { dryRun: Boolean(values['dry-run']), policy, keep: keep.map((k) => ({ ...k.snapshot, reasons: k.reasons })), remove });
  else {
    for (const k of keep) out(ctx, `keep    ${describe(k.snapshot)}  (${k.reasons.join(', ')})`);
    for (const s of remove) out(ctx, `${values['dry-run'] ? 'would remove' : 'removed'} ${describe(s)}`);
    out(ctx, `${values['dry-run'] ? 'Would keep' : 'Kept'} ${keep.length} snapshot(s), ${values['dry-run'] ? 'would remove' : 'removed'} ${remove.length}.${remove.length && !values['dry-run'] ? ' `git dits gc` frees the content no other ref needs.' : ''}`);
  }
  return 0;
}

export const commands = { snapshot };
