/**
 * Which manifests a remote holds, asked of the remote itself (one HEAD per manifest,
 * a few at a time): for telling content that was never fetched from content that is lost.
 */
import type { ObjectStorage } from '../../transfer/object-storage.js';
import { manifestKey } from './layout.js';

/** Ids among `ids` whose manifest exists on `storage`. A failed request rejects (the caller cannot tell). */
export async function manifestsOnRemote(storage: ObjectStorage, ids: string[], concurrency = 16): Promise<Set<string>> {
  const found = new Set<string>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ids.length) {
      const id = ids[next++]!;
      if (await storage.head(manifestKey(id))) found.add(id);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, ids.length) }, worker));
  return found;
}
