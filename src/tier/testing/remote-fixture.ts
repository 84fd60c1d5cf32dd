/**
 * Test-only: writes real remote content (packs in the pack format with their indexes,
 * manifests) onto any ObjectStorage without a local store, in the order a push uses
 * (.pack, .idx, then manifests), so tier tests can build a remote of any shape quickly.
 */
import { hashBytes } from '../../hashing/blake3.js';
import { ManifestBuilder } from '../../manifest/manifest.js';
import { indexKey, manifestKey, packKey } from '../../remote/content/layout.js';
import { encodePackIndex, type PackIndexEntry } from '../../remote/content/pack-index.js';
import { ENTRY_HEAD_SIZE, encodeEntryHead, encodePackHeader, PACK_HEADER_SIZE } from '../../store/pack-format.js';
import type { ObjectStorage } from '../../transfer/object-storage.js';

/** A deterministic chunk of `size` bytes named by `seed`. */
export function testChunk(seed: string, size = 1000): Buffer {
  const out = Buffer.alloc(size);
  let x = hashBytes(Buffer.from(seed));
  for (let at = 0; at < size; at += 32) {
    x.copy(out, at, 0, Math.min(32, size - at));
    x = hashBytes(x);
  }
  return out;
}

export async function putTestPack(storage: ObjectStorage, chunks: Buffer[]): Promise<{ packId: string; bytes: number }> {
  const parts: Buffer[] = [encodePackHeader()];
  const entries: PackIndexEntry[] = [];
  let at = PACK_HEADER_SIZE;
  for (const c of chunks) {
    const idRaw = hashBytes(c);
    const head = Buffer.alloc(ENTRY_HEAD_SIZE);
    encodeEntryHead({ idRaw, codec: 0, rawLength: c.length, storedLength: c.length }, head, 0);
    parts.push(head, c);
    entries.push({ idRaw, offset: at + ENTRY_HEAD_SIZE, storedLength: c.length, rawLength: c.length, codec: 0 });
    at += ENTRY_HEAD_SIZE + c.length;
  }
  const { bytes: idx, packId } = encodePackIndex(entries);
  const pack = Buffer.concat(parts);
  await storage.put(packKey(packId), pack, { size: pack.length });
  await storage.put(indexKey(packId), idx, { size: idx.length });
  return { packId, bytes: pack.length };
}

export async function putTestManifest(storage: ObjectStorage, chunks: Buffer[], name = 'file'): Promise<string> {
  const b = new ManifestBuilder();
  for (const c of chunks) b.add(hashBytes(c), c.length);
  const { bytes, id } = b.encode({ oid: hashBytes(Buffer.from(name + chunks.length)).toString('hex'), chunker: { algorithm: 'fastcdc-2020', min: 1, avg: 2, max: 4 }, media: null });
  await storage.put(manifestKey(id), bytes, { size: bytes.length });
  return id;
}
