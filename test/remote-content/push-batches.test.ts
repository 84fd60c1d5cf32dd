/** A push obtains content not kept here a batch at a time (push-sources.ts). */
import { afterAll, expect, it } from 'vitest';
import { batchByMissingContent } from '../../src/remote/push-sources.js';
import { addFile, chunkIds, openStore, seededBytes, TempDirs } from './fixtures.js';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

it('batches the manifests with content not kept here by size; complete ones go first', async () => {
  const store = openStore(dirs);
  const a = await addFile(store, seededBytes(100_000, 1));
  const b = await addFile(store, seededBytes(100_000, 2));
  const c = await addFile(store, seededBytes(100_000, 3));
  const d = await addFile(store, seededBytes(100_000, 4));
  store.commit();
  expect(batchByMissingContent(store, [a, b, c, d], 150_000)).toEqual([[a, b, c, d]]); // all local: one batch
  // b, c and d lose a chunk each (as a clone or prune leaves them)
  for (const m of [b, c, d]) {
    const id = chunkIds(store, m)[0]!;
    const loc = store.locate(id)!;
    store.markRemoteHeld([{ idRaw: id, rawLength: loc.rawLength }], 'origin');
    store.rewritePack(loc.pack, (x) => !x.equals(id));
  }
  expect(batchByMissingContent(store, [a, b, c, d], 250_000)).toEqual([[a, b, c], [d]]);
  expect(batchByMissingContent(store, [b, a, c, d], 50_000)).toEqual([[a, b], [c], [d]]); // a file over the limit: a batch of its own
  store.close();
});
