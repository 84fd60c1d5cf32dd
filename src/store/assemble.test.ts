import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChunkStore } from './chunk-store.js';
import { ingest } from './ingest.js';
import { FileAssembler } from './assemble.js';
import { loadManifest, materializeFile } from './materialize.js';
import { xorshift32Bytes } from '../chunking/pseudo-random.js';

const params = { minSize: 1024, avgSize: 4096, maxSize: 16384 };
const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-assemble-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function* once(b: Buffer) {
  yield b;
}

/** A source store holding `data`, and an empty one that has only the manifest. */
async function setup(data: Buffer) {
  const src = ChunkStore.open(tmpDir(), { create: true });
  const r = await ingest(src, once(data), { params });
  const dst = ChunkStore.open(tmpDir(), { create: true });
  dst.putManifest(r.manifestId, src.getManifestBytes(r.manifestId));
  const manifest = loadManifest(src, r.pointer);
  return { src, dst, pointer: r.pointer, manifest };
}

describe('FileAssembler', () => {
  it('removes temp files a dead process left, and keeps a live one\'s', async () => {
    const { dst, pointer } = await setup(xorshift32Bytes(50_000, 9));
    const tmp = path.join(dst.dir, 'tmp');
    const dead = path.join(tmp, 'assemble-2147483646-aaaa'); // no such process
    const live = path.join(tmp, `assemble-${process.ppid}-bbbb`);
    fs.writeFileSync(dead, 'x');
    fs.writeFileSync(live, 'x');
    const asm = new FileAssembler(dst, [{ dest: path.join(tmpDir(), 'f.mov'), pointer }]);
    expect(fs.existsSync(dead)).toBe(false);
    expect(fs.existsSync(live)).toBe(true);
    asm.dispose();
    dst.close();
  });

  it('writes chunks arriving in any order, fills the rest from the store, and keeps zero runs as holes', async () => {
    const data = Buffer.concat([xorshift32Bytes(100_000, 1), Buffer.alloc(200_000), xorshift32Bytes(100_000, 2)]);
    const { src, dst, pointer, manifest } = await setup(data);
    const work = tmpDir();
    const dest = path.join(work, 'clip.mov');
    fs.writeFileSync(dest, 'pointer placeholder');
    const asm = new FileAssembler(dst, [{ dest, pointer }]);
    expect(asm.size).toBe(1);
    const ids = Array.from({ length: manifest.chunkCount }, (_, i) => manifest.idRawAt(i));
    const order = [...ids.keys()].reverse();
    // half the chunks "arrive from a fetch" (in reverse order), the others are already local
    for (const i of order) {
      const id = ids[i]!;
      const bytes = await src.getChunk(id);
      if (i % 2 === 0) {
        const wait = asm.put(id, Buffer.from(bytes));
        if (wait) await wait;
      } else dst.putStoredChunk(id, 0, bytes.length, bytes);
    }
    dst.commit();
    asm.put(Buffer.alloc(32, 7), Buffer.alloc(10)); // a chunk nobody needs: ignored
    const prepared = await asm.finish();
    const got = prepared.get(dest)!;
    expect(got.pointer).toEqual(pointer);
    expect(fs.readFileSync(got.tmp).equals(data)).toBe(true);
    expect(fs.statSync(got.tmp).blocks * 512).toBeLessThan(data.length); // the zero run is a hole
    await materializeFile(dst, pointer, dest, { prepared: got.tmp });
    expect(fs.readFileSync(dest).equals(data)).toBe(true);
    expect(fs.existsSync(got.tmp)).toBe(false);
    src.close();
    dst.close();
  });

  it('materializeFile writes the file itself when the prepared one is gone', async () => {
    const data = xorshift32Bytes(90_000, 6);
    const { src, dst, pointer } = await setup(data);
    const dest = path.join(tmpDir(), 'b.mov');
    fs.writeFileSync(dest, 'pointer placeholder');
    await materializeFile(src, pointer, dest, { prepared: path.join(src.dir, 'tmp', 'assemble-1-gone') });
    expect(fs.readFileSync(dest).equals(data)).toBe(true);
    src.close();
    dst.close();
  });

  it('leaves out a file it cannot complete, and dispose removes its temp files', async () => {
    const data = xorshift32Bytes(120_000, 4);
    const { src, dst, pointer, manifest } = await setup(data);
    const work = tmpDir();
    const dest = path.join(work, 'a.mp4');
    const asm = new FileAssembler(dst, [{ dest, pointer }]);
    const first = manifest.idRawAt(0);
    asm.put(first, await src.getChunk(first)); // only one chunk: the others are nowhere
    const prepared = await asm.finish();
    expect(prepared.size).toBe(0);
    const tmp = path.join(dst.dir, 'tmp');
    const temps = () => fs.readdirSync(tmp).filter((n) => n.startsWith('assemble-'));
    expect(temps()).toEqual([]);
    expect(fs.readdirSync(work)).toEqual([]); // nothing ever in the working tree

    const again = new FileAssembler(dst, [{ dest, pointer }]);
    expect(temps().length).toBe(1);
    again.dispose();
    expect(temps()).toEqual([]);
    src.close();
    dst.close();
  });

  it('covers a chunk only when every file needing it is assembled; needs until it is written', async () => {
    const { src, dst, pointer, manifest } = await setup(xorshift32Bytes(60_000, 4));
    const work = tmpDir();
    const id0 = manifest.idRawAt(0);
    const one = new FileAssembler(dst, [{ dest: path.join(work, 'a.mov'), pointer }]);
    expect(one.covers(id0)).toBe(true);
    expect(one.covers(Buffer.alloc(32))).toBe(false); // no file needs it
    expect(one.needs(id0)).toBe(true);
    const wait = one.put(id0, Buffer.from(await src.getChunk(id0)));
    if (wait) await wait;
    expect(one.needs(id0)).toBe(false);
    one.dispose();
    // the same content at a second path is written the usual way, from the store
    const two = new FileAssembler(dst, [
      { dest: path.join(work, 'b.mov'), pointer },
      { dest: path.join(work, 'c.mov'), pointer },
    ]);
    expect(two.size).toBe(1);
    expect(two.covers(id0)).toBe(false);
    two.dispose();
    src.close();
    dst.close();
  });
});
