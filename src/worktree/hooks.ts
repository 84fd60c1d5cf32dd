/**
 * The hooks that finish a checkout: Git writes small pointers for big files (never
 * the content: its smudge pipe buffers whole files in memory), then one of these hooks
 * runs `git dits hook <name>`, which writes the real files and refreshes the index.
 *
 * - post-checkout (checkout, switch, clone), post-merge (merge, pull), post-rewrite
 *   (rebase, amend), reference-transaction "committed" (reset --hard, stash: they update
 *   ORIG_HEAD / refs/stash after the working tree).
 * - pre-commit refuses to commit raw content staged at a Dits-tracked path.
 * Git runs none after `stash apply` or `sparse-checkout`, and a hook leaves files alone while
 * a rebase, cherry-pick or revert runs: the filter process writes what is left when git exits.
 * A user's existing hook is kept as `<name>.pre-dits` and still runs first, with the same
 * arguments and stdin; its exit status is the hook's exit status. Installing is idempotent.
 * The hook costs one `git rev-parse` when there is nothing to do.
 */
import fs from 'node:fs';
import path from 'node:path';
import { gitText } from '../git/exec.js';

export const HOOK_NAMES = ['post-checkout', 'post-merge', 'post-rewrite', 'reference-transaction', 'pre-commit'] as const;
export const HOOK_MARKER = '# git-dits hook: managed by `git dits init`';

export function hookScript(name: string, ditsBin: string): string {
  const q = `'${ditsBin.replace(/'/g, `'\\''`)}'`;
  if (name === 'pre-commit') return preCommitScript(q);
  return `#!/bin/sh
${HOOK_MARKER}; your own hook is kept as ${name}.pre-dits and runs first.
status=0
if [ -x "$0.pre-dits" ]; then
  "$0.pre-dits" "$@" || status=$?
fi
${name === 'reference-transaction' ? 'if [ "$1" != committed ]; then exit $status; fi\n' : ''}pending="$(git rev-parse --git-dir 2>/dev/null)/dits/pending"
if [ -s "$pending" ]; then
  if command -v git-dits >/dev/null 2>&1; then dits=git-dits; else dits=${q}; fi
  "$dits" hook ${name} "$@" </dev/null || status=$?
fi
exit $status
`;
}

/**
 * pre-commit refuses raw content staged at a Dits-tracked path (src/git/raw-content.ts).
 * It runs on every commit, so it starts git-dits only when a staged path has
 * filter=dits: one `git diff --cached` and one `git check-attr` otherwise.
 */
function preCommitScript(q: string): string {
  return `#!/bin/sh
${HOOK_MARKER}; your own hook is kept as pre-commit.pre-dits and runs first.
if [ -x "$0.pre-dits" ]; then
  "$0.pre-dits" "$@" || exit $?
fi
if git diff --cached --name-only -z --no-renames --diff-filter=d | git check-attr -z --stdin filter | tr '\\000' '\\n' | grep -qx dits; then
  if command -v git-dits >/dev/null 2>&1; then dits=git-dits; else dits=${q}; fi
  exec "$dits" hook pre-commit </dev/null
fi
exit 0
`;
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
