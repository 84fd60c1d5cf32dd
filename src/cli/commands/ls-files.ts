import path from 'node:path';
import { findRepo, requireInitialised } from '../../git/repo.js';
import { listIndexPointers, listTreePointers, type IndexPointer } from '../../git/pointers.js';
import { listReachablePointers } from '../../git/reachable.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { Manifest } from '../../manifest/manifest.js';
import { formatBytes, out, printJson, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';

async function pointersAt(workTree: string, rev: string | undefined, specs: string[]): Promise<IndexPointer[]> {
  if (!rev) return (await listIndexPointers(workTree, specs)).filter((p) => p.stage === 0);
  return listTreePointers(workTree, rev, specs);
}

const lsFilesOptions = {
  json: { type: 'boolean', description: 'print the result as JSON' },
  rev: { type: 'string', value: '<commit>', description: 'list the files of this commit instead of the index' },
} as const satisfies OptionTable;

const lsFiles: Command = {
  summary: 'List tracked files: path, size, file id, chunks, and the share of bytes shared with other files or versions',
  usage: 'git dits ls-files [--json] [--rev <commit>] [--] [<path>...]',
  options: lsFilesOptions,
  async run(args, ctx: CliContext) {
    const { values, positionals } = parseOptions(args, lsFilesOptions, { positionals: true });
    const repo = await findRepo(ctx.cwd);
    requireInitialised(repo);
    const specs = positionals.map((p) => path.relative(repo.workTree, path.resolve(ctx.cwd, p)) || '.');
    const listed = await pointersAt(repo.workTree, values.rev, specs);
    const store = ChunkStore.open(repo.ditsDir);
    try {
      // How many file versions (a path at a content) use each chunk, over everything reachable.
      const versions = new Map<string, string>();
      for (const p of [...(await listReachablePointers(repo.workTree)), ...listed]) versions.set(`${p.path}\0${p.pointer.manifest}`, p.pointer.manifest);
      const users = new Map<string, number>();
      const manifests = new Map<string, Manifest | null>();
      for (const id of versions.values()) {
        let m = manifests.get(id);
        if (m === undefined) {
          try {
            m = Manifest.parse(store.getManifestBytes(id));
          } catch {
            m = null;
          }
          manifests.set(id, m);
        }
        if (m) for (const c of m.distinctIds()) users.set(c, (users.get(c) ?? 0) + 1);
      }
      const rows = listed.map((p) => {
        const m = manifests.get(p.pointer.manifest) ?? null;
        let shared = 0;
        if (m) for (const c of m.chunks()) if ((users.get(c.id) ?? 0) > 1) shared += c.length;
        return {
          path: p.path,
          size: p.pointer.size,
          oid: p.pointer.oid,
          manifest: p.pointer.manifest,
          chunks: m ? m.chunkCount : null,
          dedupShare: m && p.pointer.size > 0 ? shared / p.pointer.size : m ? 0 : null,
          local: m !== null,
        };
      });
      if (values.json) printJson(ctx, rows);
      else {
        if (rows.length === 0) out(ctx, 'No Dits-tracked files here.');
        for (const r of rows) {
          const chunks = r.chunks === null ? 'content not local' : `${r.chunks} chunks, ${(100 * (r.dedupShare ?? 0)).toFixed(1)}% shared`;
          out(ctx, `${r.oid.slice(0, 12)}  ${formatBytes(r.size).padStart(10)}  ${chunks.padEnd(28)}  ${r.path}`);
        }
      }
    } finally {
      store.close();
    }
    return 0;
  },
};

export const commands = { 'ls-files': lsFiles };
