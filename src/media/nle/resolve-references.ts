/**
 * Matching a project's media references to the files tracked in the repository.
 * Shared by `git dits deps` and `git dits checkout --deps`.
 *
 * For each reference (its path, then its alternatives), in order:
 *   1. relative path: joined to the project's directory, then taken from the repo root;
 *   2. absolute path from the editor's machine: the longest tail of two or more
 *      components that is a tracked path (/Volumes/X/Proj/Media/a.mov -> Media/a.mov);
 *   3. file name, when exactly one tracked file has it (exact case, then ignoring case;
 *      for EDL clip and reel names also ignoring the extension).
 * Anything else is 'missing'; an ambiguous file name is missing with its `candidates`.
 */
import { posix } from 'node:path';
import { baseName } from './file-url.js';
import type { ProjectReference } from './project-reference.js';

export interface ResolvedReference {
  reference: ProjectReference;
  /** Repo-relative tracked path, or null when not found. */
  resolvedPath: string | null;
  status: 'tracked' | 'missing';
  matchedBy?: 'path' | 'suffix' | 'name';
  /** Set when the file name matched several tracked files and none could be chosen. */
  candidates?: string[];
}

/**
 * @param trackedPaths repo-relative paths with '/' separators (as `git ls-files` prints them)
 * @param projectDir the project file's directory, repo-relative ('' or '.' for the root)
 */
export function resolveReferences(refs: ProjectReference[], trackedPaths: string[], projectDir: string): ResolvedReference[] {
  const tracked = new Set(trackedPaths);
  const byName = groupBy(trackedPaths, (p) => baseName(p));
  const byLowerName = groupBy(trackedPaths, (p) => baseName(p).toLowerCase());
  const byStem = groupBy(trackedPaths, (p) => stem(baseName(p)).toLowerCase());
  const dir = projectDir === '.' ? '' : projectDir.replace(/\\/g, '/').replace(/\/+$/, '');

  return refs.map((reference): ResolvedReference => {
    const spellings = [reference.path, ...(reference.alternatives ?? [])].map((p) => p.replace(/\\/g, '/'));
    for (const p of spellings) {
      if (!isAbsolute(p)) {
        for (const candidate of [posix.normalize(posix.join(dir, p)), posix.normalize(p)]) {
          if (!candidate.startsWith('../') && tracked.has(candidate)) return found(reference, candidate, 'path');
        }
      }
    }
    for (const p of spellings) {
      const parts = p.split('/').filter((s) => s !== '' && s !== '.');
      for (let k = 0; k <= parts.length - 2; k++) {
        const tail = parts.slice(k).join('/');
        if (tracked.has(tail)) return found(reference, tail, 'suffix');
      }
    }
    let ambiguous: string[] | undefined;
    for (const p of spellings) {
      const name = baseName(p);
      if (name === '') continue;
      const lists = [byName.get(name), byLowerName.get(name.toLowerCase())];
      if (reference.origin === 'edl-clip-name' || reference.origin === 'edl-reel') lists.push(byStem.get(stem(name).toLowerCase()));
      for (const list of lists) {
        if (list?.length === 1) return found(reference, list[0]!, 'name');
        if (list && list.length > 1 && !ambiguous) ambiguous = [...list].sort();
      }
    }
    const missing: ResolvedReference = { reference, resolvedPath: null, status: 'missing' };
    if (ambiguous) missing.candidates = ambiguous;
    return missing;
  });
}

function found(reference: ProjectReference, path: string, matchedBy: ResolvedReference['matchedBy']): ResolvedReference {
  return { reference, resolvedPath: path, status: 'tracked', matchedBy };
}

function isAbsolute(p: string): boolean {
  return p.startsWith('/') || /^[a-z]:\//i.test(p);
}

function stem(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(0, dot) : name;
}

function groupBy(paths: string[], key: (p: string) => string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const p of paths) {
    const k = key(p);
    const list = map.get(k);
    if (list) list.push(p);
    else map.set(k, [p]);
  }
  return map;
}
