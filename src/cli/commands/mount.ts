/**
 * `git dits mount <dir>` (a revision as a read-only folder through FUSE, content fetched as
 * it is read) and `git dits umount <dir>`. The mount runs in the foreground until SIGINT or
 * SIGTERM (or `git dits umount`), then unmounts cleanly; `--background` leaves it running
 * with its log in `.git/dits/mounts/`. See src/mount/README.md.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DitsUserError } from '../../errors.js';
import { parseByteSize } from '../../git/dits-config.js';
import { findRepo, requireInitialised } from '../../git/repo.js';
import { defaultDitsRemote, listDitsRemotes, openRemoteStorage } from '../../remote/open-remote.js';
import { detachMount, mountPointState, removeRecord, readRecord, resolveMountPoint, waitUnmounted } from '../../mount/mount-point.js';
import { err, formatBytes, out, printJson, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';
import { processAlive } from '../../process-alive.js';

const mountOptions = {
  rev: { type: 'string', value: '<rev>', description: 'the revision to show (a commit, branch or tag)', default: 'HEAD' },
  mode: { type: 'string', value: '<mode>', description: 'original, or proxy: tracked video files read as their proxies where one exists', default: 'original' },
  cache: { type: 'string', value: '<size>', description: 'disk kept for content read from a remote (.git/dits/mount-cache), least recently used dropped first', default: '2G' },
  memory: { type: 'string', value: '<size>', description: 'RAM for verified chunks, small files and the remote read-ahead', default: '256M' },
  background: { type: 'boolean', description: 'return once mounted and keep serving in the background (log in .git/dits/mounts/)' },
  writable: { type: 'boolean', description: 'writes go to a copy-on-write overlay in .git/dits/overlay/<commit>/, kept across unmounts; `git dits commit-mount` commits it' },
  status: { type: 'boolean', description: 'list what the overlay of a writable mount changed (of <dir>, or of --rev, or every overlay), then exit' },
  discard: { type: 'boolean', description: 'with --status: delete that overlay (its changes are lost)' },
  json: { type: 'boolean', description: 'with --status: print JSON' },
} as const satisfies OptionTable;

function sizeOption(name: string, v: string, min: number): number {
  const n = parseByteSize(v);
  if (n === null || n < min) throw new DitsUserError('bad-option-value', `--${name} ${v}: give a size of at least ${formatBytes(min)}`, { hint: `e.g. --${name} 2G or --${name} 512M`, exitCode: 2 });
  return n;
}

/** The child of `--background` says it is mounted (or why not) through this channel. */
const CHILD_ENV = 'DITS_MOUNT_CHILD';

async function runMount(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseOptions(args, mountOptions, { positionals: true });
  // --rev has a default (HEAD) for mounting; --status without it lists every overlay
  const revGiven = args.some((x) => x === '--rev' || x.startsWith('--rev='));
  if (values.status) return runStatus(ctx, positionals, revGiven ? values.rev : undefined, values.json === true, values.discard === true);
  if (positionals.length !== 1) {
    throw new DitsUserError('bad-usage', positionals.length ? 'give one directory to mount on' : 'say where to mount: `git dits mount <dir>`', { hint: 'e.g. `git dits mount /mnt/project --rev main`', exitCode: 2 });
  }
  const mode = values.mode ?? 'original';
  if (mode !== 'original' && mode !== 'proxy') throw new DitsUserError('bad-option-value', `--mode ${mode}: give original or proxy`, { exitCode: 2 });
  const cacheBytes = sizeOption('cache', values.cache ?? '2G', 16 << 20);
  const memoryBytes = sizeOption('memory', values.memory ?? '256M', 16 << 20);
  const repo = await findRepo(ctx.cwd);
  requireInitialised(repo);
  const mountPoint = resolveMountPoint(path.resolve(ctx.cwd, positionals[0]!));
  if (mountPoint === repo.workTree || mountPoint.startsWith(repo.workTree + path.sep)) {
    throw new DitsUserError('mount-point-in-repo', `${mountPoint} is inside the working tree of this repository`, { hint: 'mount outside it (git would read the whole mount as untracked files)' });
  }
  if (values.background && ctx.env[CHILD_ENV] !== '1') return startBackground(ctx, repo.ditsDir, mountPoint, args);

  const child = ctx.env[CHILD_ENV] === '1' && typeof process.send === 'function';
  const log = (line: string): void => err(ctx, `${new Date().toISOString()} mount: ${line}`);
  const { mountRevision } = await import('../../mount/mount-session.js');
  let session;
  try {
    session = await mountRevision({
      repo,
      mountPoint,
      rev: values.rev ?? 'HEAD',
      mode,
      cacheBytes,
      memoryBytes,
      log,
      logFile: child ? ctx.env.DITS_MOUNT_LOG : undefined,
      writable: values.writable === true,
      openStorages: async () => {
        const remotes = await listDitsRemotes(repo.workTree);
        const first = await defaultDitsRemote(repo.workTree, undefined, { remotes }).catch(() => null);
        const ordered = first ? [first, ...remotes.filter((r) => r.name !== first.name)] : remotes;
        return Promise.all(ordered.map(async (r) => ({ name: r.name, storage: await openRemoteStorage(repo.workTree, r.url) })));
      },
    });
  } catch (e) {
    if (child) process.send!({ error: e instanceof Error ? e.message : String(e), hint: (e as { hint?: string }).hint });
    throw e;
  }
  const t = session.tree;
  const what = `${t.commit.slice(0, 12)} (${values.rev ?? 'HEAD'}) at ${mountPoint}: ${t.files} file(s), ${t.trackedFiles} tracked by Dits${mode === 'proxy' ? ', proxies where they exist' : ''}, ${values.writable ? 'writable (changes kept in an overlay)' : 'read-only'}`;
  if (child) {
    process.send!({ ready: what });
    process.disconnect?.();
  } else {
    out(ctx, `Mounted ${what}.`);
    out(ctx, `Press Ctrl-C or run \`git dits umount ${mountPoint}\` to unmount.`);
  }
  log(`mounted ${what} (cache ${formatBytes(cacheBytes)} on disk, ${formatBytes(memoryBytes)} in RAM; through ${session.binding})`);
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGHUP', () => resolve('SIGHUP'));
  });
  log(`${signal}: unmounting ${mountPoint}`);
  await session.unmount();
  log(`unmounted ${mountPoint}`);
  if (!child) out(ctx, `Unmounted ${mountPoint}.`);
  return 0;
}

/** Starts this command again as a detached child and waits until it has mounted (or failed). */
async function startBackground(ctx: CliContext, ditsDir: string, mountPoint: string, args: string[]): Promise<number> {
  const dir = path.join(ditsDir, 'mounts');
  fs.mkdirSync(dir, { recursive: true });
  const logFile = path.join(dir, `${path.basename(mountPoint) || 'root'}-${Date.now()}.log`);
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, [ctx.ditsBin, 'mount', ...args], {
    cwd: ctx.cwd,
    env: { ...ctx.env, [CHILD_ENV]: '1', DITS_MOUNT_LOG: logFile },
    stdio: ['ignore', fd, fd, 'ipc'],
    detached: true,
  });
  fs.closeSync(fd);
  const answer = await new Promise<{ ready?: string; error?: string; hint?: string } | null>((resolve) => {
    child.once('message', (m) => resolve(m as { ready?: string; error?: string }));
    child.once('exit', () => resolve(null));
  });
  child.unref();
  child.disconnect?.();
  if (answer?.ready) {
    out(ctx, `Mounted ${answer.ready}, in the background (process ${child.pid}; log: ${logFile}).`);
    out(ctx, `\`git dits umount ${mountPoint}\` unmounts.`);
    return 0;
  }
  throw new DitsUserError('mount-failed', answer?.error ?? `the mount process ended before mounting (see ${logFile})`, { hint: answer?.hint ?? `see ${logFile}` });
}

/** The overlay meant by `<dir>` (the mount there, or the one last mounted there), else by --rev. */
async function findOverlay(ctx: CliContext, ditsDir: string, workTree: string, positionals: string[], rev: string | undefined) {
  const { listOverlays, overlayDir } = await import('../../mount/overlay.js');
  if (positionals.length > 1) throw new DitsUserError('bad-usage', 'give at most one mount directory', { exitCode: 2 });
  if (positionals.length === 1) {
    const mp = resolveMountPoint(path.resolve(ctx.cwd, positionals[0]!));
    const rec = readRecord(ditsDir, mp);
    const commit = rec?.commit ?? listOverlays(ditsDir).find((o) => o.mountPoint === mp)?.commit;
    if (!commit) throw new DitsUserError('no-overlay', `no writable mount has written anything at ${mp}`, { hint: '`git dits mount --status` lists every overlay' });
    return [{ commit, dir: overlayDir(ditsDir, commit), mountPoint: mp }];
  }
  if (rev) {
    const { runGit } = await import('../../git/exec.js');
    const r = await runGit(['rev-parse', '--verify', '--quiet', `${rev}^{commit}`], { cwd: workTree, allowFail: true });
    if (r.exitCode !== 0) throw new DitsUserError('bad-revision', `'${rev}' is not a commit of this repository`, { exitCode: 2 });
    const commit = r.stdout.toString('utf8').trim();
    return [{ commit, dir: overlayDir(ditsDir, commit), mountPoint: null }];
  }
  return listOverlays(ditsDir);
}

async function runStatus(ctx: CliContext, positionals: string[], rev: string | undefined, json: boolean, discard: boolean): Promise<number> {
  const repo = await findRepo(ctx.cwd);
  requireInitialised(repo);
  const { Overlay } = await import('../../mount/overlay.js');
  const { listChanges } = await import('../../mount/commit-overlay.js');
  const { loadRevisionTree } = await import('../../mount/revision-tree.js');
  const found = await findOverlay(ctx, repo.ditsDir, repo.workTree, positionals, rev);
  const report = [];
  for (const f of found) {
    if (!Overlay.exists(f.dir)) {
      report.push({ commit: f.commit, mountPoint: f.mountPoint, changes: [] });
      continue;
    }
    const overlay = Overlay.open(f.dir, await loadRevisionTree(repo.workTree, f.commit));
    const changes = listChanges(overlay);
    overlay.close();
    if (discard) {
      const live = f.mountPoint ? readRecord(repo.ditsDir, f.mountPoint) : null;
      if (live && processAlive(live.pid)) throw new DitsUserError('mount-busy', `${f.mountPoint} is mounted on this overlay`, { hint: `unmount it first: \`git dits umount ${f.mountPoint}\`` });
      overlay.destroy();
    }
    report.push({ commit: f.commit, mountPoint: f.mountPoint, changes });
  }
  if (json) {
    printJson(ctx, { overlays: report, discarded: discard });
    return 0;
  }
  if (report.length === 0) out(ctx, 'No writable mount has changes.');
  for (const r of report) {
    out(ctx, `Overlay of ${r.commit.slice(0, 12)}${r.mountPoint ? ` (${r.mountPoint})` : ''}: ${r.changes.length} change(s)${discard ? ', discarded' : ''}`);
    for (const c of r.changes) {
      const ranges = c.ranges?.length ? ` bytes ${c.ranges.slice(0, 8).map(([a, b]) => `${a}-${b}`).join(', ')}${c.ranges.length > 8 ? ` (+${c.ranges.length - 8} more)` : ''}` : '';
      const what = c.kind === 'renamed' ? `renamed  ${c.from!.slice(1)} -> ${c.path.slice(1)}` : `${c.kind.padEnd(8)} ${c.path.slice(1)}`;
      out(ctx, `  ${what}${c.size !== undefined && c.kind !== 'deleted' ? ` (${formatBytes(c.size)})` : ''}${ranges}`);
    }
  }
  return 0;
}

const commitMountOptions = {
  message: { type: 'string', short: 'm', value: '<msg>', description: 'the commit message' },
  rev: { type: 'string', value: '<rev>', description: 'the mounted revision whose overlay to commit (when no <dir> is given)', default: 'HEAD' },
  branch: { type: 'string', value: '<name>', description: 'commit to this branch (created, or moved if it points at the mounted commit) instead of the current one' },
  json: { type: 'boolean', description: 'print JSON' },
} as const satisfies OptionTable;

async function runCommitMount(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseOptions(args, commitMountOptions, { positionals: true });
  if (!values.message) throw new DitsUserError('bad-usage', 'give a commit message with -m <msg>', { exitCode: 2 });
  const repo = await findRepo(ctx.cwd);
  requireInitialised(repo);
  const [found] = await findOverlay(ctx, repo.ditsDir, repo.workTree, positionals, positionals.length ? undefined : values.rev ?? 'HEAD');
  const { commitOverlay } = await import('../../mount/commit-overlay.js');
  const r = await commitOverlay({
    repo,
    commit: found!.commit,
    message: values.message.endsWith('\n') ? values.message : values.message + '\n',
    branch: values.branch,
    openStorages: async () => {
      const remotes = await listDitsRemotes(repo.workTree);
      return Promise.all(remotes.map(async (rr) => ({ name: rr.name, storage: await openRemoteStorage(repo.workTree, rr.url) })));
    },
  });
  if (values.json) {
    printJson(ctx, r);
    return 0;
  }
  const branch = r.ref.replace('refs/heads/', '');
  out(ctx, `[${branch} ${r.commit.slice(0, 12)}] ${values.message.split('\n')[0]}`);
  for (const f of r.files) {
    if (f.how === 'partial') out(ctx, `  ${f.path}: ${f.chunksCut} chunk(s) cut again (${formatBytes(f.bytesCut)} read), ${f.chunksReused} kept, ${formatBytes(f.newBytes)} new; file id hashed over ${formatBytes(f.bytesHashed)}`);
    else if (f.how === 'full') out(ctx, `  ${f.path}: stored whole (${formatBytes(f.bytesCut)}), ${formatBytes(f.newBytes)} new`);
  }
  if (r.mount && r.mount.error === null) out(ctx, `${r.mount.at} stays mounted and now shows ${r.commit.slice(0, 12)}; new writes there start a new overlay.`);
  else if (r.mount) out(ctx, `${r.mount.at} stays mounted but could not switch to the new commit (${r.mount.error}): unmount it and mount ${branch} again.`);
  else out(ctx, `The overlay is cleared; mount ${branch} again to see the new revision.`);
  if (r.worktree) out(ctx, `${branch} is checked out at ${r.worktree}: fast-forwarded there (its index and files show the commit).`);
  return 0;
}

const commitMount: Command = {
  summary: 'Commit what was written to a writable mount, as a new commit on the mounted one',
  usage: `git dits commit-mount [<dir>] -m <msg> [--rev <rev>] [--branch <name>] [--json]

Commits the overlay of \`git dits mount --writable\` (of <dir>, or of --rev) on top of the
mounted commit: on the current branch when the mounted commit is its tip, else on --branch.
Big tracked files written in place are chunked again only around the changed bytes. A
working tree that has the branch checked out is fast-forwarded to the commit (refused,
changing nothing, when a local change there touches a file the commit changes). A mount
still mounted is paused for the commit (writes there wait; reads go on) and then shows the
new commit, with open files kept open.`,
  options: commitMountOptions,
  run: runCommitMount,
};

const umountOptions = {} as const satisfies OptionTable;

async function runUmount(args: string[], ctx: CliContext): Promise<number> {
  const { positionals } = parseOptions(args, umountOptions, { positionals: true });
  if (positionals.length !== 1) throw new DitsUserError('bad-usage', 'say which mount: `git dits umount <dir>`', { exitCode: 2 });
  const mountPoint = resolveMountPoint(path.resolve(ctx.cwd, positionals[0]!));
  const repo = await findRepo(ctx.cwd).catch(() => null);
  const state = mountPointState(mountPoint);
  if (state.kind === 'free') {
    if (repo) removeRecord(repo.ditsDir, mountPoint);
    throw new DitsUserError('not-mounted', `nothing is mounted at ${mountPoint}`, { hint: 'see what is mounted with `mount -t fuse.dits`' });
  }
  if (state.kind === 'other') {
    throw new DitsUserError('not-a-dits-mount', `${mountPoint} is not a Dits mount (${state.source}, ${state.fsType})`, { hint: 'unmount it with the tool that mounted it' });
  }
  if (state.alive && !state.stale) {
    // the mount's own process unmounts cleanly on SIGTERM (waiting reads answer EIO)
    process.kill(state.pid, 'SIGTERM');
    if (await waitUnmounted(mountPoint, 15_000)) {
      for (let i = 0; i < 100 && processAlive(state.pid); i++) await new Promise((r) => setTimeout(r, 50));
      out(ctx, `Unmounted ${mountPoint}.`);
      return 0;
    }
    err(ctx, `warning: the mount process ${state.pid} did not unmount within 15 s; detaching the mount`);
  }
  if (!detachMount(mountPoint)) {
    throw new DitsUserError('umount-failed', `could not unmount ${mountPoint}`, { hint: `try \`fusermount -u -z ${mountPoint}\` or, as root, \`umount -l ${mountPoint}\`` });
  }
  if (repo && readRecord(repo.ditsDir, mountPoint)) removeRecord(repo.ditsDir, mountPoint);
  out(ctx, state.stale ? `Cleaned the stale mount at ${mountPoint} (its process was gone).` : `Unmounted ${mountPoint}.`);
  return 0;
}

const mount: Command = {
  summary: 'Show a revision as a read-only folder (FUSE); content is fetched as it is read',
  usage: `git dits mount <dir> [--rev <rev>] [--mode proxy] [--cache <size>] [--memory <size>] [--background] [--writable]
       git dits mount --status [<dir>] [--rev <rev>] [--json] [--discard]

Every file of the revision appears under <dir>: small files from Git, tracked media at their
real sizes. A read takes the chunks it needs from memory, the local store, the mount's disk
cache, then the repository's Dits remotes (ranged reads, verified chunk by chunk), reading
ahead on sequential reads. Writes are refused (read-only file system), unless --writable:
then they go to an overlay kept in .git/dits/overlay/ across unmounts and crashes (\`--status\`
lists it, \`--status --discard\` drops it, \`git dits commit-mount\` commits it). Content frozen in an
archive tier fails with EIO and the log says to run \`git dits thaw <path>\`.
Runs until Ctrl-C, SIGTERM or \`git dits umount <dir>\`.`,
  options: mountOptions,
  run: runMount,
};

const umount: Command = {
  summary: 'Unmount a `git dits mount` (also cleans a mount left by a killed process)',
  usage: 'git dits umount <dir>',
  options: umountOptions,
  run: runUmount,
};

export const commands = { mount, umount, 'commit-mount': commitMount };
