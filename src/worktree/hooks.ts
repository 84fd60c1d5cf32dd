/**
 * The hooks that finish a checkout: Git writes small pointers for big files (never
 * the content: its smudge pipe buffers whole files in memory), then one of these hooks
 * runs `git dits hook <name>`, which writes the real files and refreshes the index.
 *
 * - post-checkout (checkout, switch, clone), post-merge (merge, pull), post-rewrite
 *   (rebase, amend), reference-transaction "committed" (reset --hard, stash: they update
 *   ORIG_HEAD / refs/stash after the working tree).
 * - pre-commit refuses to commit raw content staged at a Dits-tracked path, and a proxy or an
 *   edited proxy staged in place of its original (src/proxy/proxy-guard.ts).
 * Git runs none after `stash apply` or `sparse-checkout`, and a hook leaves files alone while
 * a rebase, cherry-pick or revert runs: the filter process writes what is left when git exits.
 * A user's existing hook is kept as `<name>.pre-dits` and still runs first, with the same
 * arguments and stdin; its exit status is the hook's exit status. Installing is idempotent.
 * The hook costs one `git rev-parse` when there is nothing to do.
 *
 * The scripts are the files in the package's hooks/ folder (hooks/README.md); a hook
 * carrying HOOK_MARKER is Dits's own, replaced when it differs (an upgrade) and removed
 * by uninstallHooks.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DitsUserError } from '../errors.js';
import { gitText } from '../git/exec.js';

export const HOOK_NAMES = ['post-checkout', 'post-merge', 'post-rewrite', 'reference-transaction', 'pre-commit'] as const;
/** In every hook Dits installs (hooks/*): a hook with it is ours to replace or remove. */
export const HOOK_MARKER = '# git-dits hook: managed by `git dits init`';
/** Where a hook file says which git-dits to run when none is on PATH. */
export const GIT_DITS_PLACEHOLDER = '@GIT_DITS@';

/**
 * The package's hooks/ folder: next to package.json, above this module both in the
 * checkout (src/worktree/, run by the tests) and compiled (dist/src/worktree/, in the
 * checkout or wherever npm installed the package).
 */
export function hookSourceDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return path.join(dir, 'hooks');
    if (path.dirname(dir) === dir) return path.join(here, 'hooks'); // no package around: hookScript says what is missing
  }
}

/** The hook script `name` as installed: hooks/<name> with git-dits's absolute path filled in. */
export function hookScript(name: string, ditsBin: string): string {
  const file = path.join(hookSourceDir(), name);
  let template: string;
  try {
    template = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new DitsUserError('install-incomplete', `the Dits hook script ${file} is missing (${(e as Error).message})`, {
      hint: 'reinstall Dits (its package ships the hooks/ folder), then run `git dits init` again',
      cause: e,
    });
  }
  if (!template.includes(HOOK_MARKER) || !template.includes(GIT_DITS_PLACEHOLDER)) {
    throw new Error(`${file} lacks the Dits hook marker or ${GIT_DITS_PLACEHOLDER}`);
  }
  const quoted = `'${ditsBin.replace(/'/g, `'\\''`)}'`;
  return template.split(GIT_DITS_PLACEHOLDER).join(quoted);
}

export async function hooksDir(workTree: string): Promise<string> {
  return path.resolve(workTree, await gitText(['rev-parse', '--git-path', 'hooks'], { cwd: workTree }));
}

export interface HookInstallResult {
  installed: string[];
  kept: string[];
}

export function installHooks(dir: string, ditsBin: string): HookInstallResult {
  fs.mkdirSync(dir, { recursive: true });
  const res: HookInstallResult = { installed: [], kept: [] };
  for (const name of HOOK_NAMES) {
    const file = path.join(dir, name);
    let existing: string | null = null;
    try {
      existing = fs.readFileSync(file, 'utf8');
    } catch {
      /* none */
    }
    const script = hookScript(name, ditsBin);
    if (existing === script) continue;
    if (existing !== null && !existing.includes(HOOK_MARKER)) {
      const keep = `${file}.pre-dits`;
      if (fs.existsSync(keep)) throw new Error(`both ${file} and ${keep} exist; merge them by hand, then run \`git dits init\` again`);
      fs.renameSync(file, keep);
      res.kept.push(name);
    }
    const tmp = `${file}.dits-tmp`;
    fs.writeFileSync(tmp, script, { mode: 0o755 });
    fs.renameSync(tmp, file);
    res.installed.push(name);
  }
  return res;
}

export function uninstallHooks(dir: string): string[] {
  const removed: string[] = [];
  for (const name of HOOK_NAMES) {
    const file = path.join(dir, name);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    if (!text.includes(HOOK_MARKER)) continue;
    fs.rmSync(file);
    if (fs.existsSync(`${file}.pre-dits`)) fs.renameSync(`${file}.pre-dits`, file);
    removed.push(name);
  }
  return removed;
}
