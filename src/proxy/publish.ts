/**
 * Publishing variants made away from any clone (the server's workers): the outcomes are
 * stored in a scratch store, their content pushed to the repository's storage like any
 * push (packs, then manifests), then their records; the scratch store is removed. The same
 * layout and order as a client's push (remote-variants.ts), so clients find them the same way.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ObjectStorage } from '../transfer/object-storage.js';
import { ChunkStore } from '../store/chunk-store.js';
import type { ChunkerParams } from '../chunking/params.js';
import type { VariantRecord } from '../manifest/variant-record.js';
import { pushVariantRecords } from './remote-variants.js';
import { storeVariant, type OutcomeLike } from './store-variant.js';

export async function publishOutcomes(
  storage: ObjectStorage,
  original: string,
  outcomes: readonly OutcomeLike[],
  o: { scratchDir: string; chunker: ChunkerParams; remoteName?: string },
): Promise<VariantRecord[]> {
  const dir = path.join(o.scratchDir, 'store');
  const store = ChunkStore.open(dir, { create: true, directWrite: false });
  try {
    const records: VariantRecord[] = [];
    for (const out of outcomes) records.push((await storeVariant(store, original, out, o.chunker)).record);
    await pushVariantRecords(storage, store, records, { remoteName: o.remoteName ?? 'server-worker' });
    return records;
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
