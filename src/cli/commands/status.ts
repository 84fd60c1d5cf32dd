import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { findRepo, requireInitialised } from '../../git/repo.js';
import { listIndexPointers } from '../../git/pointers.js';
import { readIndexEntries } from '../../git/index-file.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { contentPresent } from '../../store/materialize.js';
import { readWorktreePointer } from '../../worktree/materialize-worktree.js';
import { rawInIndex } from '../../git/raw-content.js';
import { rawContentFix } from '../pre-commit-check.js';
import { formatBytes, out, printJson, type CliContext } from '../context.js';
import type { Command } from '../main.js';

export type FileState = 'present' | 'modified' | 'deleted' | 'not-checked-out' | 'content-missing' | 'conflicted' | 'raw-in-git';

const status: Command = {
  summary: 'Show tracked files: present, modified, not checked out, missing content, or staged whole in Git',
  usage: 'git dits status [--json] [--all] [--] [<path>...]',
  async run(args, ctx: CliContext) {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' }, all: { type: 'boolean' } } });
    const repo = await findRepo(ctx.cwd);
    requireInitialised(repo);
    const specs = positionals.map((p) => path.relative(repo.workTree, path.resolve(ctx.cwd, p)) || '.');
    const pointers = await listIndexPointers(repo.workTree, specs);
    const index = new Map(readIndexEntries(repo.gitDir, repo.hashAlgo).filter((e) => e.stage === 0).map((e) => [e.path, e]));
    const store = ChunkStore.open(repo.ditsDir);
    const rows: { path: string; state: FileState; size: number; oid: string }[] = [];
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
    // staged whole at a tracked path (git add without the Dits filter): no pointer, so not listed above
    const raw = await rawInIndex(repo.workTree, specs);
    for (const r of raw) rows.push({ path: r.path, state: 'raw-in-git', size: r.size, oid: '' });
    if (values.json) {
      printJson(ctx, rows);
      return 0;
    }
    const shown = values.all ? rows : rows.filter((r) => r.state !== 'present');
    const present = rows.length - rows.filter((r) => r.state !== 'present').length;
    out(ctx, `${rows.length} tracked file(s), ${present} present with their content.`);
    const label: Record<FileState, string> = {
      present: 'present',
      modified: 'modified (run `git add` to store the new version)',
      deleted: 'deleted from the working tree',
      'not-checked-out': 'pointer only, content is local (run `git dits checkout`)',
      'content-missing': 'pointer only, content is not here (fetch it: `git dits pull`)',
      conflicted: 'conflicted (resolve with `git checkout --ours/--theirs`)',
      'raw-in-git': 'staged whole in Git, not as a Dits pointer (a commit stores the whole file in Git)',
    };
    for (const r of shown) out(ctx, `  ${r.path}  ${formatBytes(r.size)}  ${label[r.state]}`);
    if (raw.length) for (const line of await rawContentFix(repo.workTree, raw.map((r) => r.path))) out(ctx, `hint: ${line}`);
    return 0;
  },
};

export const commands = { status };
