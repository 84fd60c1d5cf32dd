/**
 * Which tracked media an editing project needs: the NLE parsers' references resolved
 * against the repository's tracked files. The library function behind `git dits deps`
 * and, later, `git dits checkout --deps` (fetch only what a project needs).
 */
import path from 'node:path';
import { runGit } from '../git/exec.js';
import { parseProjectReferences, resolveReferences, type ResolvedReference } from '../media/nle/index.js';
import type { ProjectFormat } from '../media/nle/index.js';

export interface ProjectDeps {
  project: string;
  format: ProjectFormat;
  references: ResolvedReference[];
  tracked: string[];
  missing: ResolvedReference[];
}

/** `projectRel` is repo-relative; the file is read from the working tree. */
export async function projectDependencies(workTree: string, projectRel: string): Promise<ProjectDeps> {
  const parsed = await parseProjectReferences(path.join(workTree, projectRel));
  const ls = await runGit(['ls-files', '-z'], { cwd: workTree });
  const trackedPaths = ls.stdout.toString('utf8').split('\0').filter(Boolean);
  const dir = path.posix.dirname(projectRel.split(path.sep).join('/'));
  const references = resolveReferences(parsed.references, trackedPaths, dir === '.' ? '' : dir);
  return {
    project: projectRel,
    format: parsed.format,
    references,
    tracked: [...new Set(references.flatMap((r) => (r.resolvedPath ? [r.resolvedPath] : [])))],
    missing: references.filter((r) => r.status === 'missing'),
  };
}
