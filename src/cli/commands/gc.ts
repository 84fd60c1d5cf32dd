import { findRepo, requireInitialised } from '../../git/repo.js';
import { listReachablePointers } from '../../git/reachable.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { applyGc, planGc } from '../../store/gc.js';
import { dropUnusedLinks } from '../../worktree/worktree-links.js';
import { DitsUserError } from '../../errors.js';
import { formatBytes, out, printJson, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';

/** "now", "0", "30m", "2h", "7d" -> milliseconds. */
export function parseAge(v: string): number {
  if (v === 'now') return 0;
  const m = /^(\d+)\s*(s|m|h|d|w)?$/.exec(v.trim());
  if (!m) throw new DitsUserError('bad-age', `cannot read the age '${v}'`, { hint: 'use now, 30m, 2h, 7d or 2w' });
  const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 }[(m[2] ?? 's') as 's'];
  return Number(m[1]) * unit;
}

const gcOptions = {
  'dry-run': { type: 'boolean', description: 'only show what would be done' },
  prune: { type: 'string', value: '<age>', description: 'keep content newer than this (30m, 1h, 2d; now: no grace)', default: '1h' },
  json: { type: 'boolean', description: 'print the result as JSON' },
} as const satisfies OptionTable;

const gc: Command = {
  summary: 'Remove local content that no commit, stash, index or reflog entry needs (--dry-run shows the plan)',
  usage: 'git dits gc [--dry-run] [--prune=<age>] [--json]   (default --prune=1h: newer content is kept)',
  options: gcOptions,
  async run(args, ctx: CliContext) {
    const { values } = parseOptions(args, gcOptions);
    const graceMs = parseAge(values.prune ?? '1h');
    const repo = await findRepo(ctx.cwd);
    requireInitialised(repo);
    const live = (await listReachablePointers(repo.workTree)).map((p) => p.pointer.manifest);
    const store = ChunkStore.open(repo.ditsDir);
    try {
      const plan = planGc(store, live, { graceMs });
      if (!values['dry-run']) {
        applyGc(store, plan);
        dropUnusedLinks(store); // hard links to files no longer in the working tree (worktree-links.ts)
      }
      if (values.json) printJson(ctx, { dryRun: Boolean(values['dry-run']), ...plan });
      else {
        const verb = values['dry-run'] ? 'Would remove' : 'Removed';
        out(ctx, `${verb} ${plan.deadChunks} chunk(s) and ${plan.deadManifests.length} manifest(s), freeing ${formatBytes(plan.freedBytes)}.`);
        out(ctx, `  packs deleted: ${plan.deletePacks.length}, rewritten: ${plan.rewritePacks.length}, orphan pack files: ${plan.orphanPackFiles.length}; file versions kept: ${plan.liveManifests}`);
        if (values['dry-run'] && plan.deadChunks + plan.deadManifests.length > 0) out(ctx, 'Run without --dry-run to apply.');
      }
    } finally {
      store.close();
    }
    return 0;
  },
};

export const commands = { gc };
