import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { xorshift32Bytes } from '../chunking/pseudo-random.js';
import { ChunkStore } from '../store/chunk-store.js';
import { ingest } from '../store/ingest.js';
import type { BlobReader } from './blob-reader.js';
import { MountedRevision, type Stat } from './mounted-revision.js';
import { Overlay } from './overlay.js';
import { RamCache } from './ram-cache.js';
import type { RevisionTree, TreeNode } from './revision-tree.js';
import { WritableRevision } from './writable-revision.js';

const params = { minSize: 256, avgSize: 1024, maxSize: 4096 };
const dirs: string[] = [];
const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
async function* once(b: Buffer) {
  if (b.length) yield b;
}

/** A revision of tracked files only (no git needed): /big, /dir/a, /dir/sub/b, /x. */
async function setup() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-overlay-'));
  dirs.push(d);
  const store = ChunkStore.open(path.join(d, 'store'), { create: true });
  closers.push(() => store.close());
  const content = new Map<string, Buffer>([
    ['/big', xorshift32Bytes(200_000, 1)],
    ['/dir/a', xorshift32Bytes(5000, 2)],
    ['/dir/sub/b', xorshift32Bytes(3000, 3)],
    ['/x', xorshift32Bytes(10, 4)],
  ]);
  const nodes = new Map<string, TreeNode>([['/', { kind: 'dir', ino: 1, names: ['big', 'dir', 'x'] }]]);
  nodes.set('/dir', { kind: 'dir', ino: 2, names: ['a', 'sub'] });
  nodes.set('/dir/sub', { kind: 'dir', ino: 3, names: ['b'] });
  let ino = 10;
  for (const [p, bytes] of content) {
    const r = await ingest(store, once(bytes), { params });
    nodes.set(p, { kind: 'file', ino: ino++, mode: '100644', size: bytes.length, blobOid: '0'.repeat(40), pointer: r.pointer });
  }
  const tree: RevisionTree = { commit: 'c'.repeat(40), time: 0, nodes, files: 4, trackedFiles: 4 };
  const odir = path.join(d, 'overlay');
  const open = (): WritableRevision => {
    const ro = new MountedRevision(tree, { deps: { store, cache: null, ram: new RamCache(16 << 20), remote: null }, blobs: {} as BlobReader, log: () => {} });
    return new WritableRevision(ro, Overlay.open(odir, tree, { create: true }));
  };
  return { store, tree, content, odir, open };
}

async function readAll(w: WritableRevision, p: string): Promise<Buffer> {
  const st = w.getattr(p) as Stat;
  expect(typeof st).toBe('object');
  const fd = w.open(p, 0);
  expect(fd).toBeGreaterThan(0);
  const buf = Buffer.alloc(st.size + 100);
  let at = 0;
  for (;;) {
    const n = await w.read(p, fd, buf.subarray(at), Math.min(7777, buf.length - at), at);
    expect(n).toBeGreaterThanOrEqual(0);
    if (n === 0) break;
    at += n;
  }
  w.release(fd);
  return buf.subarray(0, at);
}

describe('the overlay of a writable mount', () => {
  it('reads written ranges over the base, new files, growth and truncation; all of it again after a reopen', async () => {
    const s = await setup();
    let w = s.open();
    const expected = Buffer.from(s.content.get('/big')!);
    const fd = w.open('/big', 2);
    const edit = Buffer.from('x'.repeat(100));
    expect(w.write('/big', fd, edit, 100, 123_456)).toBe(100);
    edit.copy(expected, 123_456);
    w.release(fd);
    expect((await readAll(w, '/big')).equals(expected)).toBe(true);

    // grow past the end with a gap (zeros), then truncate into the written range
    const f2 = w.open('/x', 2);
    expect(w.write('/x', f2, Buffer.from('tail'), 4, 20)).toBe(4);
    const x = Buffer.concat([s.content.get('/x')!, Buffer.alloc(10), Buffer.from('tail')]);
    expect((await readAll(w, '/x')).equals(x)).toBe(true);
    expect(w.truncate('/x', 5)).toBe(0);
    expect(w.truncate('/x', 8)).toBe(0); // grows again with zeros, not the old bytes
    const x2 = Buffer.concat([s.content.get('/x')!.subarray(0, 5), Buffer.alloc(3)]);
    expect((await readAll(w, '/x')).equals(x2)).toBe(true);

    const nf = w.create('/dir/new.txt', 0o644);
    expect(nf).toBeGreaterThan(0);
    expect(w.write('/dir/new.txt', nf, Buffer.from('hello'), 5, 0)).toBe(5);
    w.release(nf);
    expect(w.readdir('/dir')).toEqual(['a', 'new.txt', 'sub']);
    expect(w.fsync()).toBe(0);
    await w.close();

    // the overlay outlives the mount: a new one over the same revision sees every change
    w = s.open();
    expect((await readAll(w, '/big')).equals(expected)).toBe(true);
    expect((await readAll(w, '/x')).equals(x2)).toBe(true);
    expect((await readAll(w, '/dir/new.txt')).toString()).toBe('hello');
    await w.close();
  });

  it('renames over an existing file, renames and removes directories, and recreates a removed one empty', async () => {
    const s = await setup();
    const w = s.open();
    expect(w.rename('/x', '/dir/a')).toBe(0); // over an existing file
    expect(w.getattr('/x')).toBe(-2);
    expect((await readAll(w, '/dir/a')).equals(s.content.get('/x')!)).toBe(true);
    expect(w.rename('/dir', '/moved')).toBe(0);
    expect(w.readdir('/')).toEqual(['big', 'moved']);
    expect(w.readdir('/moved')).toEqual(['a', 'sub']);
    expect((await readAll(w, '/moved/sub/b')).equals(s.content.get('/dir/sub/b')!)).toBe(true);
    expect(w.getattr('/dir/sub/b')).toBe(-2);
    expect(w.rmdir('/moved/sub')).toBe(-39); // not empty
    expect(w.unlink('/moved/sub/b')).toBe(0);
    expect(w.rmdir('/moved/sub')).toBe(0);
    expect(w.mkdir('/dir')).toBe(0);
    expect(w.readdir('/dir')).toEqual([]); // the base's /dir stays hidden
    expect(w.rename('/big', '/dir')).toBe(-21);
    expect(w.rename('/moved', '/moved/in')).toBe(-22);
    await w.close();
    // replayed from the journal: the same view
    const again = Overlay.open(s.odir, s.tree);
    expect(again.list('/')).toEqual(['big', 'dir', 'moved']);
    expect(again.list('/moved')).toEqual(['a']);
    expect(again.list('/dir')).toEqual([]);
    again.close();
  });

  it('makes symbolic links: shown as links, never written through, moved with their directory, replayed', async () => {
    const s = await setup();
    const w = s.open();
    expect(w.symlink('/dir/l', '../big')).toBe(0);
    expect(w.symlink('/dir/l', 'other')).toBe(-17);
    expect(w.symlink('/nowhere/l', 'x')).toBe(-2);
    expect(w.symlink('/x/l', 'x')).toBe(-20); // under a file
    const st = w.getattr('/dir/l') as Stat;
    expect(st.mode).toBe(0o120777);
    expect(st.size).toBe(6);
    expect(await w.readlink('/dir/l')).toBe('../big');
    expect(w.open('/dir/l', 0)).toBe(-40);
    expect(w.overlay.write('/dir/l', Buffer.from('x'), 1, 0)).toBe(-1);
    expect(w.truncate('/dir/l', 0)).toBe(-1);
    expect(w.chmod('/dir/l', 0o755)).toBe(0);
    expect(w.rename('/dir', '/d2')).toBe(0);
    expect(await w.readlink('/d2/l')).toBe('../big');
    expect(w.symlink('/gone', 'big')).toBe(0);
    expect(w.unlink('/gone')).toBe(0);
    // a link over the place of a removed directory hides the directory's base content
    expect(w.symlink('/dir', 'd2')).toBe(0);
    expect(w.getattr('/dir/a')).toBe(-2);
    await w.close();
    const again = s.open();
    expect(await again.readlink('/d2/l')).toBe('../big');
    expect(await again.readlink('/dir')).toBe('d2');
    expect(again.getattr('/gone')).toBe(-2);
    expect(again.readdir('/')).toEqual(['big', 'd2', 'dir', 'x']);
    await again.close();
  });

  it('a torn last journal line (a crash mid-append) is dropped; the writes before it stay', async () => {
    const s = await setup();
    const w = s.open();
    const fd = w.open('/x', 2);
    w.write('/x', fd, Buffer.from('AB'), 2, 0);
    await w.close();
    fs.appendFileSync(path.join(s.odir, 'journal'), '{"op":"write","path":"/x","sta');
    const w2 = s.open();
    const got = await readAll(w2, '/x');
    expect(got.subarray(0, 2).toString()).toBe('AB');
    expect(got.subarray(2).equals(s.content.get('/x')!.subarray(2))).toBe(true);
    // and the journal goes on cleanly after it
    const fd2 = w2.open('/x', 2);
    w2.write('/x', fd2, Buffer.from('C'), 1, 2);
    await w2.close();
    const w3 = s.open();
    expect((await readAll(w3, '/x')).subarray(0, 3).toString()).toBe('ABC');
    await w3.close();
  });

  it('a write the disk cannot take fails with ENOSPC and changes nothing', async () => {
    const s = await setup();
    const w = s.open();
    const fd = w.open('/x', 2);
    expect(w.write('/x', fd, Buffer.from('ok'), 2, 0)).toBe(2);
    // fault injection: the journal's descriptor refuses writes as a full disk does
    const writeSync = fs.writeSync;
    (fs as { writeSync: unknown }).writeSync = () => {
      throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    };
    try {
      expect(w.write('/x', fd, Buffer.from('no'), 2, 4)).toBe(-28);
      expect(w.mkdir('/newdir')).toBe(-28);
    } finally {
      (fs as { writeSync: unknown }).writeSync = writeSync;
    }
    const got = await readAll(w, '/x');
    expect(got.subarray(0, 2).toString()).toBe('ok');
    expect(got.subarray(2).equals(s.content.get('/x')!.subarray(2))).toBe(true);
    expect(w.getattr('/newdir')).toBe(-2);
    await w.close();
  });
});
