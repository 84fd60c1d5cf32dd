import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChunkStore } from './chunk-store.js';
import { hashBytes } from '../hashing/blake3.js';
import { xorshift32Bytes } from '../chunking/pseudo-random.js';
import { nativeLoadError } from '../native-addon.js';
import { LEAF_SIZE, treeCv, writeTreeCvs } from '../hashing/tree-cv.js';

const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-store-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const chunks = Array.from({ length: 60 }, (_, i) => xorshift32Bytes(20_000 + i * 97, i + 1));

describe.each([
  ['direct', true],
  ['buffered', false],
])('ChunkStore writes (%s pack writes)', (_mode, directWrite) => {
  it('small packs reserve disk ahead only up to the pack roll size, not 32 MiB each, while they wait for a commit', async () => {
    // found with a mount cache of a small --cache (1 MiB packs): every rolled pack kept a
    // 32 MiB fallocate reservation until the next commit, a GiB of disk for 32 MiB of chunks
    const dir = tmpDir();
    const roll = 100_000;
    const s = ChunkStore.open(dir, { create: true, packRollSize: roll, directWrite });
    const ids = chunks.map((c) => hashBytes(c));
    try {
      for (let i = 0; i < 60; i++) s.putStoredChunk(ids[i]!, 0, chunks[i]!.length, chunks[i]!);
      // nothing committed: the rolled packs are retired and open, with what they reserved
      const packs = fs.readdirSync(path.join(dir, 'packs')).filter((f) => f.endsWith('.pack'));
      expect(packs.length).toBeGreaterThan(5);
      for (const p of packs) expect(fs.statSync(path.join(dir, 'packs', p)).blocks * 512).toBeLessThanOrEqual(2 * roll + 64 * 1024);
      s.commit();
      for (let i = 0; i < 60; i++) expect((await s.getChunk(ids[i]!)).equals(chunks[i]!)).toBe(true);
    } finally {
      s.close();
    }
  });

  it('commitAsync, puts during its wait, a sync commit and pack rolls all end with every chunk readable', async () => {
    const dir = tmpDir();
    // small packs and buffers' worth: many rolls, retired packs with writes in flight
    const s = ChunkStore.open(dir, { create: true, packRollSize: 100_000, directWrite });
    const ids = chunks.map((c) => hashBytes(c));
    for (let i = 0; i < 20; i++) await s.putChunk(ids[i]!, chunks[i]!);
    const first = s.commitAsync(); // not awaited yet
    for (let i = 20; i < 40; i++) s.putStoredChunk(ids[i]!, 0, chunks[i]!.length, chunks[i]!);
    expect(s.hasChunk(ids[30]!)).toBe(true); // pending counts as present (dedup within a run)
    s.commit(); // synchronous: writes what is in flight again, then commits
    for (let i = 40; i < 60; i++) {
      s.putStoredChunk(ids[i]!, 0, chunks[i]!.length, chunks[i]!);
      const wait = s.backpressure();
      if (wait) await wait;
    }
    await Promise.all([first, s.commitAsync()]);
    expect(s.stats().packs).toBeGreaterThan(5);
    s.close();
    const again = ChunkStore.open(dir);
    for (let i = 0; i < 60; i++) expect((await again.getChunk(ids[i]!)).equals(chunks[i]!)).toBe(true);
    again.close();
  });

  it('reserves pack blocks ahead of the writes and frees the unused rest when the pack closes', async () => {
    const dir = tmpDir();
    const s = ChunkStore.open(dir, { create: true, directWrite });
    const big = Array.from({ length: 5 }, (_, i) => xorshift32Bytes(3 * 1024 * 1024 + i, 100 + i));
    for (const c of big) await s.putChunk(hashBytes(c), c);
    await s.commitAsync();
    const packs = path.join(dir, 'packs');
    const file = path.join(packs, fs.readdirSync(packs)[0]!);
    const open = fs.statSync(file);
    if (nativeLoadError() === undefined && process.platform === 'linux') {
      // reserved: more blocks than bytes while the pack is open (ext4, tmpfs and xfs can)
      expect(open.blocks * 512).toBeGreaterThanOrEqual(32 * 1024 * 1024);
      expect(open.size).toBeLessThan(16 * 1024 * 1024);
    }
    s.close();
    const closed = fs.statSync(file);
    // the header and every entry, nothing more (direct writes may pad the last block while open)
    expect(closed.size).toBe(16 + big.reduce((n, c) => n + 41 + c.length, 0));
    expect(open.size - closed.size).toBeLessThan(4096);
    expect(closed.blocks * 512).toBeLessThan(closed.size + 1024 * 1024);
    const again = ChunkStore.open(dir);
    for (const c of big) expect((await again.getChunk(hashBytes(c))).equals(c)).toBe(true);
    again.close();
  });

  it('abandon drops uncommitted chunks but keeps committed ones', async () => {
    const dir = tmpDir();
    const s = ChunkStore.open(dir, { create: true, packRollSize: 50_000 });
    const ids = chunks.map((c) => hashBytes(c));
    for (let i = 0; i < 5; i++) s.putStoredChunk(ids[i]!, 0, chunks[i]!.length, chunks[i]!);
    await s.commitAsync();
    for (let i = 5; i < 10; i++) s.putStoredChunk(ids[i]!, 0, chunks[i]!.length, chunks[i]!);
    s.abandon();
    expect(s.hasChunk(ids[2]!)).toBe(true);
    expect(s.hasChunk(ids[7]!)).toBe(false);
    s.close();
  });

  it('forgetChunkAt forgets a row only where it was seen; the chunk put again is indexed again', async () => {
    const s = ChunkStore.open(tmpDir(), { create: true });
    const id = Buffer.from(hashBytes(chunks[0]!));
    s.putStoredChunk(id, 0, chunks[0]!.length, chunks[0]!);
    await s.commitAsync();
    const loc = s.locate(id)!;
    s.forgetChunkAt(id, { ...loc, offset: loc.offset + 1 }); // the row moved meanwhile: kept
    expect(s.locate(id)).toEqual(loc);
    s.forgetChunkAt(id, loc);
    expect(s.locate(id)).toBeUndefined();
    s.putStoredChunk(id, 0, chunks[0]!.length, chunks[0]!, true);
    await s.commitAsync();
    expect(s.locate(id)!.offset).toBeGreaterThan(loc.offset);
    expect((await s.getChunk(id)).equals(chunks[0]!)).toBe(true);
    s.close();
  });
});

describe('ChunkStore remote-held chunks', () => {
  it('are not stored again by an add, survive reopening, and gc forgets only what nothing needs', async () => {
    const dir = tmpDir();
    const s = ChunkStore.open(dir, { create: true });
    const ids = chunks.slice(0, 4).map((c) => hashBytes(c));
    expect(s.isRemoteHeld(ids[0]!)).toBe(false);
    s.markRemoteHeld([0, 1, 2].map((i) => ({ idRaw: ids[i]!, rawLength: chunks[i]!.length })), 'origin');
    expect(s.isRemoteHeld(ids[1]!)).toBe(true);
    expect(s.hasChunk(ids[1]!)).toBe(false); // not readable here: a read goes to the remote
    expect(await s.putChunk(ids[1]!, chunks[1]!)).toBe(0); // an add dedups against it
    expect(await s.putChunk(ids[3]!, chunks[3]!)).toBeGreaterThan(0);
    s.commit();
    expect(s.hasChunk(ids[1]!)).toBe(false);
    expect(s.remoteHeldStats()).toEqual({ chunks: 3, rawBytes: chunks[0]!.length + chunks[1]!.length + chunks[2]!.length });
    // a chunk later stored here (e.g. `git dits fetch`) no longer counts as remote-only
    s.putStoredChunk(ids[2]!, 0, chunks[2]!.length, chunks[2]!);
    s.commit();
    expect(s.remoteHeldStats().chunks).toBe(2);
    s.close();
    const again = ChunkStore.open(dir);
    expect(again.isRemoteHeld(ids[0]!)).toBe(true);
    // records younger than the cutoff stay whatever keep says
    expect(again.dropRemoteHeld(() => false, Date.now() - 60_000)).toBe(0);
    expect(again.dropRemoteHeld((id) => id.equals(ids[0]!), Date.now() + 1)).toBe(2);
    expect(again.isRemoteHeld(ids[0]!)).toBe(true);
    expect(again.isRemoteHeld(ids[1]!)).toBe(false);
    expect(await again.putChunk(ids[1]!, chunks[1]!)).toBeGreaterThan(0); // stored again once forgotten
    again.close();
  });

  it('putChunks: one batch skips what is stored, remote-held or repeated, compresses what compresses, and lends the rest', async () => {
    const s = ChunkStore.open(tmpDir(), { create: true });
    const stored = chunks[0]!;
    await s.putChunk(hashBytes(stored), stored);
    await s.commitAsync();
    const held = chunks[1]!;
    s.markRemoteHeld([{ idRaw: hashBytes(held), rawLength: held.length }], 'origin');
    const text = Buffer.from('a line of text that compresses well\n'.repeat(1000));
    const batch = [stored, held, chunks[2]!, chunks[2]!, text, chunks[3]!];
    const ids = Buffer.concat(batch.map((c) => hashBytes(c)));
    const put = s.putChunks(ids, batch, true);
    const r = put instanceof Promise ? await put : put;
    expect(r.chunks).toBe(3); // chunks[2] once, the text, chunks[3]
    await s.writeFence();
    await s.commitAsync();
    for (const c of [chunks[2]!, text, chunks[3]!]) expect((await s.getChunk(hashBytes(c))).equals(c)).toBe(true);
    expect(s.locate(hashBytes(text))!.storedLength).toBeLessThan(text.length / 4);
    expect(s.locate(hashBytes(held))).toBeUndefined();
    s.close();
  });
});

describe('manifests', () => {
  const manifest = (n: number): { id: string; bytes: Buffer } => {
    const bytes = xorshift32Bytes(300 + n, 500 + n);
    return { id: hashBytes(bytes).toString('hex'), bytes };
  };

  it('are rows of the index: no file per manifest, listed, dated, deleted', () => {
    const dir = tmpDir();
    const s = ChunkStore.open(dir, { create: true });
    const ms = [0, 1, 2].map(manifest);
    const before = Date.now();
    for (const m of ms) s.putManifest(m.id, m.bytes);
    s.putManifest(ms[0]!.id, ms[0]!.bytes); // again: no change
    expect(fs.readdirSync(path.join(dir, 'manifests'))).toEqual([]);
    expect(new Set(s.listManifestIds())).toEqual(new Set(ms.map((m) => m.id)));
    for (const m of ms) {
      expect(s.hasManifest(m.id)).toBe(true);
      expect(s.getManifestBytes(m.id).equals(m.bytes)).toBe(true);
      expect(s.manifestAddedAt(m.id)).toBeGreaterThanOrEqual(before - 1);
    }
    expect(s.manifestBytes()).toBe(ms.reduce((a, m) => a + m.bytes.length, 0));
    s.deleteManifest(ms[1]!.id);
    expect(s.hasManifest(ms[1]!.id)).toBe(false);
    expect(() => s.getManifestBytes(ms[1]!.id)).toThrow(/not in the local store/);
    s.close();
    // another process sees them at once
    const again = ChunkStore.open(dir);
    expect(again.getManifestBytes(ms[2]!.id).equals(ms[2]!.bytes)).toBe(true);
    again.close();
  });

  it('a large one is stored as pieces and read back whole: pieces in several packs, out of order, repeated; a corrupt or missing piece is an error', () => {
    const dir = tmpDir();
    // small packs, so the pieces of one manifest lie in several
    const s = ChunkStore.open(dir, { create: true, packRollSize: 100_000 });
    const a = { bytes: xorshift32Bytes(400_000, 77) } as { id: string; bytes: Buffer };
    a.id = hashBytes(a.bytes).toString('hex');
    // b shares most pieces with a (a changed stretch in the middle: new pieces written after
    // a's), then a's start again: read in a's order, jumping back, and a piece twice
    const mid = Buffer.from(a.bytes.subarray(0, 300_000));
    for (let i = 150_000; i < 150_100; i++) mid[i] ^= 0x5a;
    const b = { bytes: Buffer.concat([mid, a.bytes.subarray(0, 120_000)]) } as { id: string; bytes: Buffer };
    b.id = hashBytes(b.bytes).toString('hex');
    // and a stored chunk between the two manifests' pieces
    void s.putChunk(hashBytes(chunks[0]!), chunks[0]!);
    s.putManifest(a.id, a.bytes);
    void s.putChunk(hashBytes(chunks[1]!), chunks[1]!);
    s.putManifest(b.id, b.bytes);
    s.commit();
    const pieces = s.manifestPieceIds(b.id);
    expect(pieces.length).toBeGreaterThan(30);
    expect(new Set(pieces.map((p) => p.toString('hex'))).size).toBeLessThan(pieces.length); // repeated
    expect(new Set(s.locateMany(pieces).map((l) => l!.pack)).size).toBeGreaterThan(1);
    expect(s.getManifestBytes(a.id).equals(a.bytes)).toBe(true);
    expect(s.getManifestBytes(b.id).equals(b.bytes)).toBe(true);
    s.close();

    // one byte of a piece of b's changed stretch flipped in its pack: b is corrupt, a is not
    const again = ChunkStore.open(dir);
    const own = again.manifestPieceIds(b.id).find((p) => !again.manifestPieceIds(a.id).some((q) => q.equals(p)))!;
    const loc = again.locate(own)!;
    const fd = fs.openSync(again.packPath(loc.pack), 'r+');
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, loc.offset + 5);
    byte[0]! ^= 1;
    fs.writeSync(fd, byte, 0, 1, loc.offset + 5);
    fs.closeSync(fd);
    expect(() => again.getManifestBytes(b.id)).toThrow(/manifest .* is corrupt/);
    expect(again.getManifestBytes(a.id).equals(a.bytes)).toBe(true);
    // a's first piece gone from the index (the others are found after it, by their heads):
    // a is missing, not corrupt
    again.dbForTests.prepare('DELETE FROM chunks WHERE id = ?').run(again.manifestPieceIds(a.id)[0]);
    expect(() => again.getManifestBytes(a.id)).toThrow(/is not in the local store/);
    again.close();
  });

  // (without the addon's leaf tree a manifest is always read whole)
  it.skipIf(!treeCv())('a big one is read from its start: the first 4 MiB leaf checked against its filed leaves, the rest on complete(); a bad side file: read whole and filed again', () => {
    const dir = tmpDir();
    const first = ChunkStore.open(dir, { create: true });
    const bytes = xorshift32Bytes(9_000_000, 91); // three leaves
    const id = hashBytes(bytes).toString('hex');
    first.putManifest(id, bytes);
    first.close(); // (its pack written out, so the flips below are what is read)
    const s = ChunkStore.open(dir);
    const side = path.join(dir, 'treecv', id);
    expect(fs.existsSync(side)).toBe(true); // filed by put
    const r = s.readManifestFromStart(id);
    expect(r.verified).toBe(LEAF_SIZE);
    expect(r.bytes.length).toBe(bytes.length);
    expect(r.bytes.subarray(0, LEAF_SIZE).equals(bytes.subarray(0, LEAF_SIZE))).toBe(true);
    r.complete();
    expect(r.verified).toBe(bytes.length);
    expect(r.bytes.equals(bytes)).toBe(true);

    // leaves that are not this manifest's (the side file's own checksum right): not trusted,
    // the manifest is read whole, and its right leaves filed again
    const good = fs.readFileSync(side);
    expect(writeTreeCvs(dir, id, bytes.length, Buffer.alloc(3 * 32, 7))).toBe(true);
    const whole = s.readManifestFromStart(id);
    expect(whole.verified).toBe(bytes.length);
    expect(whole.bytes.equals(bytes)).toBe(true);
    expect(fs.readFileSync(side).equals(good)).toBe(true);
    // none: the same
    fs.rmSync(side);
    expect(s.readManifestFromStart(id).bytes.equals(bytes)).toBe(true);
    expect(fs.readFileSync(side).equals(good)).toBe(true);

    // a byte flipped in a piece of the last leaf: the start is served, complete() refuses
    const pieces = s.manifestPieceIds(id);
    const flip = (piece: Buffer): void => {
      const loc = s.locate(piece)!;
      const fd = fs.openSync(s.packPath(loc.pack), 'r+');
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, loc.offset + 3);
      b[0]! ^= 1;
      fs.writeSync(fd, b, 0, 1, loc.offset + 3);
      fs.closeSync(fd);
    };
    flip(pieces[pieces.length - 2]!);
    const late = s.readManifestFromStart(id);
    expect(late.bytes.subarray(0, LEAF_SIZE).equals(bytes.subarray(0, LEAF_SIZE))).toBe(true);
    expect(() => late.complete()).toThrow(/manifest .* is corrupt/);
    expect(late.verified).toBe(LEAF_SIZE);
    // and in the first leaf: refused at once
    flip(pieces[1]!);
    expect(() => s.readManifestFromStart(id)).toThrow(/manifest .* is corrupt/);
    s.close();
  });

  it('a corrupt row is reported corrupt, and quarantine moves it aside so a good copy can be stored again', () => {
    const dir = tmpDir();
    const s = ChunkStore.open(dir, { create: true });
    const m = manifest(3);
    s.putManifest(m.id, m.bytes);
    const bad = Buffer.from(m.bytes);
    bad[7] ^= 0x10;
    s.dbForTests.prepare('UPDATE manifests SET body = ? WHERE id = ?').run(bad, m.id);
    expect(() => s.getManifestBytes(m.id)).toThrow(/corrupt/);
    const dest = path.join(dir, 'quarantine', `${m.id}.manifest`);
    let noted = 0;
    s.quarantineManifest(m.id, dest, () => noted++);
    expect(noted).toBe(1);
    expect(fs.readFileSync(dest).equals(bad)).toBe(true);
    expect(s.hasManifest(m.id)).toBe(false);
    s.putManifest(m.id, m.bytes);
    expect(s.getManifestBytes(m.id).equals(m.bytes)).toBe(true);
    s.close();
  });

  it('files written by earlier versions are still read, listed, dated and deleted; an unreadable one is an error, never absent', () => {
    const dir = tmpDir();
    const first = ChunkStore.open(dir, { create: true });
    const row = manifest(4);
    const old = manifest(5);
    first.putManifest(row.id, row.bytes);
    const file = first.manifestPath(old.id);
    first.close();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, old.bytes);
    const s = ChunkStore.open(dir);
    expect(s.hasManifest(old.id)).toBe(true);
    expect(s.getManifestBytes(old.id).equals(old.bytes)).toBe(true);
    expect(new Set(s.listManifestIds())).toEqual(new Set([row.id, old.id]));
    expect(s.manifestAddedAt(old.id)).toBe(fs.statSync(file).mtimeMs);
    expect(s.manifestBytes()).toBe(row.bytes.length + old.bytes.length);
    if (process.getuid?.() !== 0) {
      fs.chmodSync(file, 0);
      expect(() => s.getManifestBytes(old.id)).toThrow(/EACCES|permission/);
      fs.chmodSync(file, 0o444);
    }
    fs.writeFileSync(file, Buffer.concat([old.bytes, Buffer.from('x')]));
    expect(() => s.getManifestBytes(old.id)).toThrow(/corrupt/);
    s.deleteManifest(old.id);
    expect(fs.existsSync(file)).toBe(false);
    expect([...s.listManifestIds()]).toEqual([row.id]);
    s.close();
  });

  it('a store of format 1 (manifests as files) is read and marked format 2, so that a version reading only files refuses it; a newer format is refused', () => {
    const dir = tmpDir();
    const old = manifest(6);
    const first = ChunkStore.open(dir, { create: true });
    first.dbForTests.prepare(`UPDATE meta SET value = '1' WHERE key = 'format'`).run();
    const file = first.manifestPath(old.id);
    first.close();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, old.bytes);
    const s = ChunkStore.open(dir);
    expect(s.getManifestBytes(old.id).equals(old.bytes)).toBe(true);
    expect(s.dbForTests.prepare(`SELECT value FROM meta WHERE key = 'format'`).pluck().get()).toBe('2');
    s.dbForTests.prepare(`UPDATE meta SET value = '4' WHERE key = 'format'`).run();
    s.close();
    expect(() => ChunkStore.open(dir)).toThrow(/format 4; this dits understands 3/);
  });
});
