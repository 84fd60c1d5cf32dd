/**
 * Warming the local cache of what a remote holds (remote-index.ts) while the remote helper
 * fetches git data: one listing of the remote's packs and the pack indexes not cached yet,
 * read alongside the bundles. The checkout that follows a clone or pull then finds every
 * chunk it needs in the cache and goes straight to the ranged reads, instead of listing
 * and reading indexes first, one round trip after another, from a hook that has just
 * started. Only a cache: nothing here is content, and a failure here fails nothing (the
 * checkout lists the remote itself, as before).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { DitsConfig } from '../git/dits-config.js';
import type { ObjectStorage } from '../transfer/object-storage.js';

/**
 * Fills the remote-index cache of the store at `<gitDir>/dits` for `remoteName` from
 * `storage`. Does nothing with dits.fetchMode=lazy (a lazy checkout reads no content), or
 * where this git dir has no Dits store (a bare clone, a linked worktree's own git dir).
 */
export async function warmRemoteIndex(gitDir: string, storage: ObjectStorage, remoteName: string, config: DitsConfig): Promise<void> {
  if (config.oneOf('dits.fetchMode', ['full', 'lazy'] as const, 'full') === 'lazy') return;
  const ditsDir = path.join(gitDir, 'dits');
  if (!fs.existsSync(path.join(ditsDir, 'index.sqlite'))) return;
  const [{ ChunkStore }, { syncRemoteIndex }] = await Promise.all([import('../store/chunk-store.js'), import('./content/sync-remote-index.js')]);
  const store = ChunkStore.open(ditsDir);
  try {
    await syncRemoteIndex(storage, store, remoteName);
  } finally {
    store.close();
  }
}
