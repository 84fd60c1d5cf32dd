/**
 * Setting a repository up for Dits: its store (.git/dits) and its hooks. Idempotent; run
 * by `git dits init`, by the filter process in a repository nobody set up, and by the
 * remote helper before a clone's first checkout.
 */
import { findRepo } from '../git/repo.js';
import { ChunkStore } from '../store/chunk-store.js';
import { hooksDir, installHooks } from './hooks.js';

export async function initRepo(cwd: string, ditsBin: string): Promise<{ hooks: ReturnType<typeof installHooks>; dir: string }> {
  const repo = await findRepo(cwd);
  ChunkStore.open(repo.ditsDir, { create: true }).close();
  const hooks = installHooks(await hooksDir(repo.workTree), ditsBin);
  return { hooks, dir: repo.ditsDir };
}
