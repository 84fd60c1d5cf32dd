/**
 * `git dits lock <path>...`, `git dits unlock <path>... [--force]`, `git dits locks`:
 * exclusive editing of binary files, against the repository's Dits server remote (the one
 * whose URL is `dits::http(s)://...`). Lockable files (`git dits track --lockable`) become
 * writable when locked and read-only when unlocked; the local cache of held locks
 * (worktree/lockable.ts) is updated by every command here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DitsUserError, isUserError } from '../../errors.js';
import { runGit } from '../../git/exec.js';
import { findRepo, type RepoPaths } from '../../git/repo.js';
import { LockClient, LockHeldError, lockRepoUrl, type Lock } from '../../locking/lock-client.js';
import { serverToken } from '../../remote/credentials.js';
import { defaultDitsRemote } from '../../remote/open-remote.js';
import { applyLockableModes, heldPaths, updateMyLocks } from '../../worktree/lockable.js';
import { err, out, printJson, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';

interface LockContext {
  repo: RepoPaths;
  server: string;
  client: LockClient;
}

async function openLocks(ctx: CliContext, remoteName: string | undefined): Promise<LockContext> {
  const repo = await findRepo(ctx.cwd);
  const remote = await defaultDitsRemote(repo.workTree, remoteName);
  if (!remote) {
    throw new DitsUserError('locks-unsupported', 'locks need a Dits server remote, and this repository has no dits:: remote', {
      hint: 'git remote add origin dits::https://<server>/<owner>/<repo>',
    });
  }
  let server: string;
  try {
    server = lockRepoUrl(remote.url);
  } catch (e) {
    if (isUserError(e) && e.code === 'locks-unsupported') {
      throw new DitsUserError('locks-unsupported', `locks need a Dits server remote; '${remote.name}' is ${remote.url}`, {
        hint: 'use a dits::https://<server>/<owner>/<repo> remote (pick it with --remote or `git config dits.remote`)',
      });
    }
    throw e;
  }
  const client = new LockClient({ repoUrl: server, token: () => serverToken(repo.workTree, server, { env: ctx.env, interactive: ctx.interactive, runGit }) });
  return { repo, server, client };
}

/** A path as typed (relative to cwd) -> repo-relative POSIX path. */
export function repoRelative(repo: RepoPaths, cwd: string, p: string): string {
  let base = cwd;
  try {
    base = fs.realpathSync(cwd);
  } catch {
    /* keep as given */
  }
  const rel = path.relative(repo.workTree, path.resolve(base, p));
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new DitsUserError('invalid-path', `${p} is not inside the repository`, { hint: `paths are relative to the current directory, inside ${repo.workTree}` });
  }
  return rel.split(path.sep).join('/');
}

/** Which of `paths` differ from HEAD in the index or the working tree. */
async function changedInWorktree(workTree: string, paths: string[]): Promise<Set<string>> {
  const r = await runGit(['status', '--porcelain', '-z', '--untracked-files=no', '--', ...paths.map((p) => `:(literal)${p}`)], { cwd: workTree, allowFail: true });
  const out = new Set<string>();
  if (r.exitCode !== 0) return out;
  const recs = r.stdout.toString('utf8').split('\0');
  for (let i = 0; i < recs.length; i++) {
    const rec = recs[i]!;
    if (rec.length < 4) continue;
    out.add(rec.slice(3));
    if (rec[0] === 'R' || rec[0] === 'C') i++; // the source path follows
  }
  return out;
}

function describeLock(l: Lock): string {
  return `${l.path}\t${l.owner.name}\tID:${l.id}\t${l.locked_at}`;
}

const lockOptions = { remote: { type: 'string', value: '<name>', description: 'the Dits remote to use (default: dits.remote, else origin, else the only dits:: remote)' }, json: { type: 'boolean', description: 'print the result as JSON' } } as const satisfies OptionTable;

const lock: Command = {
  summary: 'Lock files on the Dits server for exclusive editing (lockable files become writable)',
  usage: 'git dits lock [--remote <name>] [--json] <path>...',
  options: lockOptions,
  async run(args, ctx) {
    const { values, positionals } = parseOptions(args, lockOptions, { positionals: true });
    if (positionals.length === 0) throw new DitsUserError('bad-usage', 'name the files to lock', { hint: 'git dits lock <path>...' });
    const lc = await openLocks(ctx, values.remote);
    const paths = positionals.map((p) => repoRelative(lc.repo, ctx.cwd, p));
    const locked: Lock[] = [];
    const failed: { path: string; code: string; message: string; lock?: Lock }[] = [];
    for (const p of paths) {
      try {
        locked.push(await lc.client.lock(p));
      } catch (e) {
        if (e instanceof LockHeldError) {
          // Ours already? (git-lfs answers 409 for a second lock by the same owner.)
          const mine = await lc.client.list({ mine: true, path: p }).catch(() => [] as Lock[]);
          if (mine.length > 0) {
            locked.push(mine[0]!);
            continue;
          }
          failed.push({ path: p, code: e.code, message: e.message, lock: e.lock });
          continue;
        }
        if (isUserError(e) && (e.code === 'invalid-path' || e.code === 'lock-not-found')) {
          failed.push({ path: p, code: e.code, message: e.message });
          continue;
        }
        throw e;
      }
    }
    // Held: writable. Held by someone else: read-only (it may have been created here by hand).
    const theirs = failed.flatMap((f) => (f.lock ? [f.path] : []));
    if (locked.length > 0 || theirs.length > 0) {
      const cache = updateMyLocks(lc.repo.ditsDir, lc.server, (cur) => [...cur.filter((l) => !theirs.includes(l.path)), ...locked]);
      await applyLockableModes(lc.repo, [...locked.map((l) => l.path), ...theirs], heldPaths(cache));
    }
    if (values.json) printJson(ctx, { locked, failed });
    else {
      for (const l of locked) out(ctx, `Locked ${l.path}`);
      for (const f of failed) err(ctx, `error: ${f.message}`);
      if (failed.some((f) => f.lock)) err(ctx, 'hint: ask them to unlock it, or a repository admin to break the lock with `git dits unlock --force`');
    }
    return failed.length > 0 ? 1 : 0;
  },
};

const unlockOptions = {
  force: { type: 'boolean', short: 'f', description: 'unlock even with uncommitted changes, or break someone else\'s lock (repository admins)' },
  remote: { type: 'string', value: '<name>', description: 'the Dits remote to use (default: dits.remote, else origin, else the only dits:: remote)' },
  json: { type: 'boolean', description: 'print the result as JSON' },
} as const satisfies OptionTable;

const unlock: Command = {
  summary: 'Release locks (--force breaks someone else\'s lock: repository admins only); lockable files become read-only',
  usage: 'git dits unlock [--force] [--remote <name>] [--json] <path>...',
  options: unlockOptions,
  async run(args, ctx) {
    const { values, positionals } = parseOptions(args, unlockOptions, { positionals: true });
    if (positionals.length === 0) throw new DitsUserError('bad-usage', 'name the files to unlock', { hint: 'git dits unlock <path>...' });
    const lc = await openLocks(ctx, values.remote);
    const paths = positionals.map((p) => repoRelative(lc.repo, ctx.cwd, p));
    const unlocked: Lock[] = [];
    const failed: { path: string; code: string; message: string }[] = [];
    // As git-lfs: unlocking a file with uncommitted changes would let someone else edit it
    // while yours are not pushed yet; --force unlocks anyway.
    const dirty = values.force ? new Set<string>() : await changedInWorktree(lc.repo.workTree, paths);
    for (const p of paths) {
      if (dirty.has(p)) {
        failed.push({ path: p, code: 'lock-dirty', message: `${p} has uncommitted changes: commit and push them before unlocking (or unlock with --force)` });
        continue;
      }
      try {
        unlocked.push(await lc.client.unlock(p, { force: values.force === true }));
      } catch (e) {
        if (isUserError(e) && ['lock-not-found', 'forbidden', 'invalid-path'].includes(e.code)) {
          failed.push({ path: p, code: e.code, message: e.code === 'forbidden' && !values.force ? `${e.message} (use --force to break someone else's lock, as a repository admin)` : e.message });
          if (e.code === 'lock-not-found') updateMyLocks(lc.repo.ditsDir, lc.server, (cur) => cur.filter((l) => l.path !== p));
          continue;
        }
        throw e;
      }
    }
    const gone = new Set([...unlocked.map((l) => l.path), ...failed.filter((f) => f.code === 'lock-not-found').map((f) => f.path)]);
    if (gone.size > 0) {
      const cache = updateMyLocks(lc.repo.ditsDir, lc.server, (cur) => cur.filter((l) => !gone.has(l.path)));
      await applyLockableModes(lc.repo, [...gone], heldPaths(cache));
    }
    if (values.json) printJson(ctx, { unlocked, failed });
    else {
      for (const l of unlocked) out(ctx, `Unlocked ${l.path}${l.owner.name ? ` (was held by ${l.owner.name})` : ''}`);
      for (const f of failed) err(ctx, `error: ${f.message}`);
    }
    return failed.length > 0 ? 1 : 0;
  },
};

const locksOptions = {
  mine: { type: 'boolean', description: 'only the locks you hold' },
  path: { type: 'string', value: '<path>', description: 'only the lock on this file' },
  remote: { type: 'string', value: '<name>', description: 'the Dits remote to use (default: dits.remote, else origin, else the only dits:: remote)' },
  json: { type: 'boolean', description: 'print the result as JSON' },
} as const satisfies OptionTable;

const locks: Command = {
  summary: 'List the locks on the Dits server (--mine: only yours)',
  usage: 'git dits locks [--mine] [--path <path>] [--remote <name>] [--json]',
  options: locksOptions,
  async run(args, ctx) {
    const { values } = parseOptions(args, locksOptions);
    const lc = await openLocks(ctx, values.remote);
    const only = values.path === undefined ? undefined : repoRelative(lc.repo, ctx.cwd, values.path);
    // verify splits every lock into ours and theirs (and refreshes the cache); it needs
    // write access, so readers fall back to the plain listing.
    let all: Lock[];
    let ours: Set<string> | null = null;
    try {
      const v = await lc.client.verify();
      updateMyLocks(lc.repo.ditsDir, lc.server, () => v.ours);
      ours = new Set(v.ours.map((l) => l.id));
      all = [...v.ours, ...v.theirs].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    } catch (e) {
      if (!(isUserError(e) && e.code === 'forbidden') || values.mine) throw e;
      all = await lc.client.list();
    }
    let shown = all.filter((l) => only === undefined || l.path === only);
    if (values.mine) shown = shown.filter((l) => ours!.has(l.id));
    if (values.json) printJson(ctx, shown.map((l) => ({ ...l, ...(ours ? { mine: ours.has(l.id) } : {}) })));
    else if (shown.length === 0) out(ctx, values.mine ? 'You hold no locks.' : 'No locks.');
    else for (const l of shown) out(ctx, describeLock(l));
    return 0;
  },
};

export const commands = { lock, unlock, locks };
