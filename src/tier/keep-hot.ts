/**
 * Keep-hot: the file versions that never leave hot, from `dits.tier.keepHot` patterns,
 * computed with git from the remote-tracking refs of the remote (what the remote holds,
 * not what this clone has locally):
 *
 *   <path glob>       files matching it on the remote's default branch, as .gitattributes
 *                     patterns match: `*` and `?` stay within a path segment, `**` crosses
 *                     them, `[...]` is a class; a pattern without a `/` matches at any depth
 *                     (`*.mov`), one with a `/` from the top (`footage/**`); a folder's name
 *                     matches everything under it
 *   branch:<name>     every tracked file on that branch of the remote
 *   tag:<glob>        every tracked file of each tag matching the glob
 *
 * No pattern: the default branch's current files. The result is published as
 * `v1/tier/keep-hot.json`. The server's scheduled reaper resolves the same patterns itself
 * on the plain branches of a bare cache of the repository's git data (server/tier-keep-hot.ts,
 * `bareRefs`) and keeps hot what either list names.
 */
import { runGit } from '../git/exec.js';
import { listTreePointers } from '../git/pointers.js';
import type { ObjectStorage } from '../transfer/object-storage.js';
import { isId } from '../hashing/blake3.js';

export const KEEP_HOT_KEY = 'v1/tier/keep-hot.json';

export interface KeepHot {
  at: number;
  patterns: string[];
  /** what each pattern resolved to (a ref, or why it matched nothing) */
  resolved: { pattern: string; ref: string | null; files: number; note?: string }[];
  manifests: string[];
}

async function refExists(cwd: string, ref: string): Promise<boolean> {
  return (await runGit(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`], { cwd, allowFail: true })).exitCode === 0;
}

/** The remote's default branch as a remote-tracking ref: refs/remotes/<r>/HEAD, else main, else master. */
export async function remoteDefaultBranch(cwd: string, remote: string): Promise<string | null> {
  const sym = await runGit(['symbolic-ref', '--quiet', `refs/remotes/${remote}/HEAD`], { cwd, allowFail: true });
  if (sym.exitCode === 0) {
    const ref = sym.stdout.toString().trim();
    if (await refExists(cwd, ref)) return ref;
  }
  for (const b of ['main', 'master']) if (await refExists(cwd, `refs/remotes/${remote}/${b}`)) return `refs/remotes/${remote}/${b}`;
  return null;
}

/**
 * Where computeKeepHot finds the branches the patterns name: a clone's remote-tracking refs
 * of one remote (`remoteTrackingRefs`), or a bare repository's own branches (`bareRefs`,
 * the server's cache of a repository's git data). Tags are `refs/tags/` in both.
 */
export interface KeepHotRefs {
  /** prefix of the branch refs: `refs/remotes/<remote>/` or `refs/heads/` */
  branchPrefix: string;
  /** the default branch's ref; null when none is known */
  defaultRef: string | null;
  /** what the notes call the repository: the remote's name, or 'the repository' */
  name: string;
  /** said after a note when a ref is missing, e.g. `run \`git fetch origin\`` */
  fetchHint?: string;
  /** a file whose blob cannot be read throws (the server's cache must not under-count) */
  strict?: boolean;
}

export async function remoteTrackingRefs(cwd: string, remote: string): Promise<KeepHotRefs> {
  return { branchPrefix: `refs/remotes/${remote}/`, defaultRef: await remoteDefaultBranch(cwd, remote), name: remote, fetchHint: `run \`git fetch ${remote}\`` };
}

/** A bare repository's branches; the default is `head` (a ref name) if it exists, else main, else master. */
export async function bareRefs(cwd: string, head: string | null): Promise<KeepHotRefs> {
  let defaultRef: string | null = null;
  for (const ref of [...(head ? [head] : []), 'refs/heads/main', 'refs/heads/master']) {
    if (await refExists(cwd, ref)) {
      defaultRef = ref;
      break;
    }
  }
  return { branchPrefix: 'refs/heads/', defaultRef, name: 'the repository', strict: true };
}

/** A path glob as .gitattributes patterns match (see the top of this file), as a test of a repository path. */
export function pathMatcher(pattern: string): (path: string) => boolean {
  let p = pattern.trim().replace(/^\.\//, '');
  const anchored = p.includes('/') && !p.endsWith('/') ? true : p.slice(0, -1).includes('/');
  p = p.replace(/^\//, '').replace(/\/$/, '');
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*') {
      if (p[i + 1] === '*') {
        const slashAfter = p[i + 2] === '/';
        re += slashAfter ? '(?:.*/)?' : '.*';
        i += slashAfter ? 2 : 1;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = p.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        const body = p.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\');
        re += `[${body}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  // the pattern names a file, or a folder and everything under it
  const rx = new RegExp(`^${anchored ? '' : '(?:.*/)?'}${re}(?:/.*)?$`);
  return (path) => rx.test(path);
}

/**
 * The keep-hot manifests of `patterns` in the repository at `cwd`; `refs`: a remote's name
 * (its remote-tracking refs in a clone) or where the branches are (see KeepHotRefs).
 */
export async function computeKeepHot(cwd: string, refs: string | KeepHotRefs, patterns: readonly string[], now: number): Promise<KeepHot> {
  const manifests = new Set<string>();
  const resolved: KeepHot['resolved'] = [];
  const where = typeof refs === 'string' ? await remoteTrackingRefs(cwd, refs) : refs;
  const hint = where.fetchHint ? ` (${where.fetchHint})` : '';
  const defaultRef = where.defaultRef;
  let defaultFiles: Awaited<ReturnType<typeof listTreePointers>> | undefined;
  const addTree = async (pattern: string, ref: string, specs: string[]): Promise<void> => {
    const pointers = await listTreePointers(cwd, ref, specs, { strict: where.strict });
    for (const p of pointers) manifests.add(p.pointer.manifest);
    resolved.push({ pattern, ref, files: pointers.length });
  };
  const list = patterns.length ? patterns : ['(default branch)'];
  for (const pattern of list) {
    if (pattern === '(default branch)' || !/^(branch|tag):/.test(pattern)) {
      if (defaultRef === null) {
        resolved.push({ pattern, ref: null, files: 0, note: `no default branch of ${where.name} is known here${hint}` });
        continue;
      }
      if (pattern === '(default branch)') await addTree(pattern, defaultRef, []);
      else {
        defaultFiles ??= await listTreePointers(cwd, defaultRef, [], { strict: where.strict });
        const matches = pathMatcher(pattern);
        let files = 0;
        for (const p of defaultFiles) {
          if (!matches(p.path)) continue;
          manifests.add(p.pointer.manifest);
          files++;
        }
        resolved.push({ pattern, ref: defaultRef, files, ...(files === 0 ? { note: 'matches no tracked file' } : {}) });
      }
    } else if (pattern.startsWith('branch:')) {
      const ref = `${where.branchPrefix}${pattern.slice('branch:'.length)}`;
      if (!(await refExists(cwd, ref))) {
        resolved.push({ pattern, ref: null, files: 0, note: `${where.name} has no branch ${pattern.slice(7)} known here${hint}` });
        continue;
      }
      await addTree(pattern, ref, []);
    } else {
      const glob = pattern.slice('tag:'.length);
      const tags = (await runGit(['for-each-ref', '--format=%(refname)', `refs/tags/${glob}`], { cwd })).stdout.toString().split('\n').filter(Boolean);
      if (tags.length === 0) resolved.push({ pattern, ref: null, files: 0, note: 'no tag matches' });
      for (const t of tags) await addTree(pattern, t, []);
    }
  }
  return { at: now, patterns: [...patterns], resolved, manifests: [...manifests].sort() };
}

export async function publishKeepHot(storage: ObjectStorage, keepHot: KeepHot): Promise<void> {
  const body = { v: 1, at: keepHot.at, patterns: keepHot.patterns, manifests: keepHot.manifests };
  await storage.put(KEEP_HOT_KEY, Buffer.from(JSON.stringify(body)), { contentType: 'application/json' });
}

/** The published keep-hot manifests (for the server's reaper); empty when none was published. */
export async function readPublishedKeepHot(storage: ObjectStorage): Promise<{ at: number; manifests: Set<string>; patterns: string[] } | null> {
  let bytes: Buffer;
  try {
    bytes = await storage.getBuffer(KEEP_HOT_KEY);
  } catch (err) {
    if ((err as { code?: string }).code === 'storage-not-found') return null;
    throw err;
  }
  const body = JSON.parse(bytes.toString('utf8')) as { at?: number; manifests?: unknown; patterns?: unknown };
  const ids = Array.isArray(body.manifests) ? body.manifests.filter((m): m is string => typeof m === 'string' && isId(m)) : [];
  const patterns = Array.isArray(body.patterns) ? body.patterns.filter((p): p is string => typeof p === 'string' && p.length > 0) : [];
  return { at: typeof body.at === 'number' ? body.at : 0, manifests: new Set(ids), patterns };
}
