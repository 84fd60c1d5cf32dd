/** Local stores and content for the remote-content tests (tiny chunks to reach edge cases). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChunkStore } from '../../src/store/chunk-store.js';
import { ingest } from '../../src/store/ingest.js';
import { Manifest } from '../../src/manifest/manifest.js';
import { readContent } from '../../src/store/materialize.js';

export const PARAMS = { minSize: 1024, avgSize: 4096, maxSize: 16384 };

export class TempDirs {
  private dirs: string[] = [];
  make(prefix = 'dits-rc-'): string {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    this.dirs.push(d);
    return d;
  }
  cleanup(): void {
    for (const d of this.dirs) fs.rmSync(d, { recursive: true, force: true });
    this.dirs = [];
  }
}

export function openStore(dirs: TempDirs): ChunkStore {
  return ChunkStore.open(dirs.make('dits-rc-store-'), { create: true });
}

/** Deterministic bytes: xorshift32 noise, with `compressible` stretches of repeated text. */
export function seededBytes(length: number, seed: number, compressibleEvery = 0): Buffer {
  const b = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  if (compressibleEvery > 0) {
    const text = Buffer.from('the quick brown fox jumps over the lazy dog; ');
    for (let at = 0; at + 20000 < length; at += compressibleEvery) {
      for (let i = 0; i < 20000; i++) b[at + i] = text[i % text.length]!;
    }
  }
  return b;
}

export async function addFile(store: ChunkStore, content: Buffer): Promise<string> {
  async function* source(): AsyncGenerator<Buffer> {
    for (let i = 0; i < content.length; i += 65536) yield content.subarray(i, i + 65536);
  }
  const r = await ingest(store, source(), { params: PARAMS });
  return r.manifestId;
}

export async function readFile(store: ChunkStore, manifestId: string): Promise<Buffer> {
  const m = Manifest.parse(store.getManifestBytes(manifestId));
  const parts: Buffer[] = [];
  for await (const p of readContent(store, m)) parts.push(p);
  return Buffer.concat(parts);
}

export function chunkIds(store: ChunkStore, manifestId: string): Buffer[] {
  const m = Manifest.parse(store.getManifestBytes(manifestId));
  const out: Buffer[] = [];
  for (let i = 0; i < m.chunkCount; i++) out.push(Buffer.from(m.idRawAt(i)));
  return out;
}

/** Buffer equality without vitest's element-by-element diff (slow on megabytes). */
export function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && a.equals(b);
}
