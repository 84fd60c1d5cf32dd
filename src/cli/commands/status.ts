import fs from 'node:fs';
import path from 'node:path';
import { findRepo, findRepoAtTop, requireInitialised } from '../../git/repo.js';
import { findDamagedPointers, listIndexBlobs, resolvePointers } from '../../git/pointers.js';
import { readIndexEntries } from '../../git/index-file.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { contentPresent } from '../../store/materialize.js';
import { readWorktreePointer } from '../../worktree/materialize-worktree.js';
import { proxyStateAt, readModes } from '../../proxy/checkout-mode.js';
import { oncePerPath, pathsTrackedByDits, rawAtTrackedPaths } from '../../git/raw-content.js';
import { rawContentFix } from '../pre-commit-check.js';
import { formatBytes, out, printJson, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';

export type FileState = 'present' | 'modified' | 'deleted' | 'not-checked-out' | 'content-missing' | 'conflicted' | 'damaged' | 'raw-in-git';

const statusOptions = { json: { type: 'boolean', description: 'print the result as JSON' }, all: { type: 'boolean', description: 'list files whose content is present too' } } as const satisfies OptionTable;

const status: Command = {
  summary: 'Show tracked files: present, modified, not checked out, missing content, or staged whole in Git',
  usage: 'git dits status [--json] [--all] [--] [<path>...]',
  options: statusOptions,
  async run(args, ctx: CliContext) {
    const { values, positionals } = parseOptions(args, statusOptions, { positionals: true });
    // at the top of a plain working tree the repository is found without starting git
    const repo = findRepoAtTop(ctx.cwd, ctx.env) ?? (await findRepo(ctx.cwd));
    requireInitialised(repo);
    const specs = positionals.map((p) => path.relative(repo.workTree, path.resolve(ctx.cwd, p)) || '.');
    // one listing of the index for pointers, damaged pointers and raw content
    const entries = await listIndexBlobs(repo.workTree, specs);
    const pointers = await resolvePointers(repo.workTree, entries);
    const index = new Map(readIndexEntries(repo.gitDir, repo.hashAlgo).filter((e) => e.stage === 0).map((e) => [e.path, e]));
    const store = ChunkStore.open(repo.ditsDir);
    const rows: { path: string; state: FileState; size: number; oid: string; damage?: string; proxy?: boolean }[] = [];
    // paths showing a proxy in place of the original (checkout-mode.ts), known by their stat
    const modes = readModes(repo.gitDir);
    const anyShown = Object.values(modes.paths).some((m) => m.shown);
    try {
      for (const p of pointers) {
        let state: FileState;
        if (p.stage !== 0) {
          if (rows.some((r) => r.path === p.path)) continue;
          state = 'conflicted';
        } else {
          const abs = path.join(repo.workTree, p.path);
          let st: fs.Stats | null = null;
          try {
            st = fs.statSync(abs);
          } catch {
            /* gone */
          }
          const e = index.get(p.path);
          const shown = st && anyShown ? await proxyStateAt(repo, modes, p.path, p.pointer.oid) : null;
          if (shown) {
            // the proxy, or an edit of it (which commit and push refuse)
            rows.push({ path: p.path, state: shown === 'proxy' ? 'present' : 'modified', size: p.pointer.size, oid: p.pointer.oid, proxy: true });
            continue;
          }
          if (!st) state = 'deleted';
          else if (readWorktreePointer(abs)) state = contentPresent(store, p.pointer.manifest) ? 'not-checked-out' : 'content-missing';
          else if (e && e.size === (st.size % 2 ** 32) && e.mtime.seconds === Math.floor(st.mtimeMs / 1000) && st.size === p.pointer.size) state = 'present';
          else state = 'modified';
        }
        rows.push({ path: p.path, state, size: p.pointer.size, oid: p.pointer.oid });
      }
    } finally {
      store.close();
    }
    // pointers in Git that do not parse: checked out as their own text, so said here
    const known = new Set(pointers.map((p) => p.blobOid)); // valid pointers: neither damaged nor raw
    // and one question to git about which of the other paths are tracked, for both
    const tracked = await pathsTrackedByDits(repo.workTree, [...new Set(entries.filter((e) => !known.has(e.oid)).map((e) => e.path))]);
    for (const d of await findDamagedPointers(repo.workTree, entries, known, tracked)) {
      if (d.stage === 0) rows.push({ path: d.path, state: 'damaged', size: d.size, oid: '', damage: d.damage });
    }
    // staged whole at a tracked path (git add without the Dits filter): no pointer, so not listed above
    const raw = oncePerPath(await rawAtTrackedPaths(repo.workTree, entries, known, tracked));
    for (const r of raw) rows.push({ path: r.path, state: 'raw-in-git', size: r.size, oid: '' });
    if (values.json) {
      printJson(ctx, rows);
      return 0;
    }
    const shown = values.all ? rows : rows.filter((r) => r.state !== 'present');
    const present = rows.length - rows.filter((r) => r.state !== 'present').length;
    const proxies = rows.filter((r) => r.proxy).length;
    out(ctx, `${rows.length} tracked file(s), ${present} present with their content${proxies ? ` (${proxies} as proxies: \`git dits checkout --mode original\` brings the originals)` : ''}.`);
    const label: Record<FileState, string> = {
      present: 'present',
      modified: 'modified (run `git add` to store the new version)',
      deleted: 'deleted from the working tree',
      'not-checked-out': 'pointer only, content is local (run `git dits checkout`)',
      'content-missing': 'pointer only, content is not here (fetch it: `git dits pull`)',
      conflicted: 'conflicted (resolve with `git checkout --ours/--theirs`)',
      damaged: 'damaged pointer in Git',
      'raw-in-git': 'staged whole in Git, not as a Dits pointer (a commit stores the whole file in Git)',
    };
    for (const r of shown) {
      if (r.state === 'damaged') {
        out(ctx, `  ${r.path}  ${label.damaged} (${r.damage}): it checks out as that text; restore it from a commit where it is whole (\`git log -- ${r.path}\`), or put the real file back and \`git add\` it`);
      } else if (r.proxy && r.state === 'modified') {
        out(ctx, `  ${r.path}  ${formatBytes(r.size)}  edited proxy: commit and push refuse it (\`git dits checkout --mode original --keep ${r.path}\` if it is a new version of its own; else move it away and \`git dits checkout --mode original ${r.path}\`)`);
      } else out(ctx, `  ${r.path}  ${formatBytes(r.size)}  ${label[r.state]}${r.proxy ? ', proxy' : ''}`);
    }
    if (raw.length) for (const line of await rawContentFix(repo.workTree, raw.map((r) => r.path))) out(ctx, `hint: ${line}`);
    return 0;
  },
};

export const commands = { status };
