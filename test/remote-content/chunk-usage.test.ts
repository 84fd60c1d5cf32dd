/** Usage tracking through ChunkStore.getChunk, written in batches, latest time kept. */
import { afterAll, expect, it } from 'vitest';
import { ChunkUsageTracker, markChunksUsed } from '../../src/remote/content/index.js';
import { addFile, chunkIds, openStore, seededBytes, TempDirs } from './fixtures.js';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

it('records reads in batches and keeps the latest use', async () => {
  const store = openStore(dirs);
  const m = await addFile(store, seededBytes(100_000, 5));
  const ids = chunkIds(store, m);
  expect(ids.length).toBeGreaterThan(5);
  let t = 1000;
  const tracker = new ChunkUsageTracker(store, { now: () => t, flushEvery: 3 }).attach();
  const rows = () => store.dbForTests.prepare('SELECT count(*) FROM chunk_last_used').pluck().get() as number;
  const at = (id: Buffer) => store.dbForTests.prepare('SELECT at FROM chunk_last_used WHERE id = ?').pluck().get(id) as number | undefined;
  await store.getChunk(ids[0]!);
  await store.getChunk(ids[1]!);
  await store.getChunk(ids[0]!); // same chunk: still two pending
  expect(() => rows()).toThrow(); // nothing written yet: the table does not even exist
  await store.getChunk(ids[2]!); // third distinct chunk: one batch written
  expect(rows()).toBe(3);
  t = 5000;
  await store.getChunk(ids[3]!);
  expect(rows()).toBe(3);
  tracker.detach();
  expect(rows()).toBe(4);
  expect(at(ids[3]!)).toBe(5000);
  await store.getChunk(ids[4]!); // detached: not recorded
  tracker.flush();
  expect(rows()).toBe(4);
  markChunksUsed(store, [ids[3]!], 2000); // an older use never moves the time back
  expect(at(ids[3]!)).toBe(5000);
  expect(store.onChunkRead).toBeNull();
  store.close();
});
