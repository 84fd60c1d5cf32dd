import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChunkStore } from '../store/chunk-store.js';
import { byteSourceOf, ingest } from '../store/ingest.js';
import { DEFAULT_CHUNKER_PARAMS } from '../chunking/params.js';
import { xorshift32Bytes } from '../chunking/pseudo-random.js';
import { DitsUserError } from '../errors.js';
import { assertNoProxyContent, findProxyStandIns } from './proxy-guard.js';
import { storeVariant } from './store-variant.js';
import { parseCheckoutMode, readModes, writeModes, modesFile } from './checkout-mode.js';

const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-guard-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}
const SMALL = { minSize: 1024, avgSize: 4096, maxSize: 16384 };

describe('the proxy guard', () => {
  it('finds a proxy by its manifest, by its file id under other chunk sizes, and content derived from a proxy; originals pass', async () => {
    const dir = tmpDir();
    const store = ChunkStore.open(dir, { create: true });
    try {
      const original = await ingest(store, byteSourceOf(once(xorshift32Bytes(200_000, 1))), { params: DEFAULT_CHUNKER_PARAMS });
      const other = await ingest(store, byteSourceOf(once(xorshift32Bytes(120_000, 5))), { params: DEFAULT_CHUNKER_PARAMS });
      // no variant, nothing derived: nothing to look at (and no table made)
      expect(findProxyStandIns(store, [{ manifest: original.manifestId }, { manifest: other.manifestId }])).toEqual([]);
      expect(store.proxyDerived.any()).toBe(false);

      const proxyBytes = xorshift32Bytes(60_000, 9);
      const file = path.join(dir, 'p.mov');
      fs.writeFileSync(file, proxyBytes);
      const { record } = await storeVariant(store, original.pointer.oid, { kind: 'proxy', recipe: 'r', status: 'ok', file, warnings: [] }, DEFAULT_CHUNKER_PARAMS);
      // the proxy's bytes cleaned with other chunk sizes: another manifest, the same file id
      const recut = await ingest(store, byteSourceOf(once(proxyBytes)), { params: SMALL });
      expect(recut.manifestId).not.toBe(record.manifest);
      expect(recut.pointer.oid).toBe(record.fileId);
      store.proxyDerived.put({ fileId: other.pointer.oid, manifest: other.manifestId, proxy: record.fileId!, original: original.pointer.oid, path: 'x.mov', at: 1 });

      const found = findProxyStandIns(store, [
        { manifest: original.manifestId, path: 'a.mov' },
        { manifest: record.manifest!, path: 'b.mov' },
        { manifest: recut.manifestId, path: 'c.mov' },
        { manifest: other.manifestId },
      ]);
      expect(found).toEqual([
        { path: 'b.mov', manifest: record.manifest, kind: 'proxy', original: original.pointer.oid },
        { path: 'c.mov', manifest: recut.manifestId, kind: 'proxy', original: original.pointer.oid },
        { path: 'x.mov', manifest: other.manifestId, kind: 'derived', original: original.pointer.oid },
      ]);

      let thrown: unknown;
      try {
        assertNoProxyContent(store, [original.manifestId, recut.manifestId], new Map([[recut.manifestId, 'clips/c.mov']]), 'origin');
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(DitsUserError);
      expect((thrown as DitsUserError).code).toBe('push-proxy-content');
      expect((thrown as DitsUserError).message).toContain('refusing to push to origin: 1 committed file version(s)');
      expect((thrown as DitsUserError).message).toContain('clips/c.mov: a proxy of original');
      expect(() => assertNoProxyContent(store, [original.manifestId], undefined, 'origin')).not.toThrow();

      store.proxyDerived.delete(other.pointer.oid);
      expect(findProxyStandIns(store, [{ manifest: other.manifestId }])).toEqual([]);
    } finally {
      store.close();
    }
  });
});

describe('the checkout-mode state file', () => {
  it('round-trips, reads as empty when missing or damaged, and names a bad mode', () => {
    const gitDir = tmpDir();
    expect(readModes(gitDir)).toEqual({ version: 1, paths: {}, parked: {} });
    const m = { version: 1 as const, paths: { 'a.mov': { mode: 'proxy' as const } }, parked: {} };
    writeModes(gitDir, m);
    expect(readModes(gitDir)).toEqual(m);
    expect(fs.readdirSync(path.dirname(modesFile(gitDir)))).toEqual(['checkout-modes.json']); // no temp left
    fs.writeFileSync(modesFile(gitDir), '{"version": 1, "paths": ');
    expect(readModes(gitDir)).toEqual({ version: 1, paths: {}, parked: {} });
    expect(parseCheckoutMode('proxy', 'x')).toBe('proxy');
    expect(parseCheckoutMode(undefined, 'x')).toBeUndefined();
    expect(() => parseCheckoutMode('proxies', 'git config dits.checkoutMode')).toThrow(/git config dits.checkoutMode is 'proxies', not a checkout mode/);
  });
});
