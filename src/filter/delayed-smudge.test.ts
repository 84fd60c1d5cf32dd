import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChunkStore } from '../store/chunk-store.js';
import { ingest } from '../store/ingest.js';
import { xorshift32Bytes } from '../chunking/pseudo-random.js';
import { DelayedSmudge } from './delayed-smudge.js';

const params = { minSize: 1024, avgSize: 4096, maxSize: 16384 };
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function* once(b: Buffer) {
  yield b;
}

async function setUp(count: number, size: number) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-delayed-'));
  dirs.push(d);
  const store = ChunkStore.open(d, { create: true });
  const files: { data: Buffer; pointer: Awaited<ReturnType<typeof ingest>>['pointer']; bytes: Buffer }[] = [];
  for (let i = 0; i < count; i++) {
    const data = xorshift32Bytes(size, 11 + i);
    const r = await ingest(store, once(data), { params });
    files.push({ data, pointer: r.pointer, bytes: r.pointerBytes });
  }
  return { store, files };
}

async function drain(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of it) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
}

describe('DelayedSmudge', () => {
  it('lists files as they are read, within the budget, and hands out their exact bytes once', async () => {
    const { store, files } = await setUp(5, 50_000);
    const delayed = new DelayedSmudge(() => store, { budgetBytes: 1, concurrency: 2, minSize: 1 });
    files.forEach((f, i) => delayed.delay(`f${i}`, `blob${i}`, f.pointer, f.bytes));
    const seen: string[] = [];
    for (let list = await delayed.available(); list.length > 0; list = await delayed.available()) {
      // a budget of one byte: one file read ahead at a time
      expect(list).toHaveLength(1);
      for (const p of list) {
        seen.push(p);
        const i = Number(p.slice(1));
        const got = delayed.take(p, `blob${i}`);
        expect(got?.pointer.manifest).toBe(files[i]!.pointer.manifest);
        expect((await drain(got!.pieces!)).equals(files[i]!.data)).toBe(true);
        expect(delayed.take(p, `blob${i}`)).toBeNull(); // once
      }
    }
    expect(seen).toEqual(['f0', 'f1', 'f2', 'f3', 'f4']);
    await delayed.close();
    store.close();
  });

  it('a request for a listed path that names another blob gets nothing (the ordinary smudge answers it)', async () => {
    const { store, files } = await setUp(1, 20_000);
    const delayed = new DelayedSmudge(() => store, { budgetBytes: 1 << 20, concurrency: 2, minSize: 1 });
    delayed.delay('a', 'blob-a', files[0]!.pointer, files[0]!.bytes);
    expect(await delayed.available()).toEqual(['a']);
    expect(delayed.take('a', 'another-blob')).toBeNull();
    expect(delayed.take('a', 'blob-a')).toBeNull(); // the listing was dropped
    expect(await delayed.available()).toEqual([]);
    store.close();
  });

  it('content that fails to read is listed all the same, without pieces', async () => {
    const { store, files } = await setUp(1, 20_000);
    const delayed = new DelayedSmudge(() => store, { budgetBytes: 1 << 20, concurrency: 2, minSize: 1 });
    const wrong = { ...files[0]!.pointer, manifest: 'ab'.repeat(32) }; // no such manifest
    delayed.delay('a', undefined, wrong, files[0]!.bytes);
    expect(await delayed.available()).toEqual(['a']);
    const got = delayed.take('a', undefined);
    expect(got?.pieces).toBeNull();
    expect(got?.pointer.manifest).toBe(wrong.manifest);
    store.close();
  });
});
