/**
 * The body of a remote pack, generated from the local store. A pack's bytes are fixed by its
 * chunk list (header, then per chunk the 41-byte head and the stored bytes), so the upload
 * body is a factory that regenerates the stream from the local packs on every attempt;
 * nothing holds a whole pack in memory (at most one read block, READ_BLOCK bytes, per body).
 *
 * Chunks that sit back to back in a local pack are read as one block (the local entry heads
 * are byte-identical to the remote ones and are checked). Every chunk is verified against its
 * id before it leaves: a corrupt local chunk fails the upload with ChunkCorruptError.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { ChunkCorruptError, type ChunkLocation, type ChunkStore } from '../../store/chunk-store.js';
import { encodeEntryHead, encodePackHeader, ENTRY_HEAD_SIZE, PACK_HEADER_SIZE } from '../../store/pack-format.js';
import { checkStoredChunk } from './chunk-verify.js';
import { encodePackIndex, type PackIndexEntry } from './pack-index.js';

/** Bytes read from a local pack at once (several adjacent chunks together). */
export const READ_BLOCK = 2 * 1024 * 1024;

export interface PackMember {
  idRaw: Buffer;
  local: ChunkLocation;
}

export interface PackLayout {
  packId: string;
  size: number;
  members: PackMember[];
  index: PackIndexEntry[];
  indexBytes: Buffer;
}

/** Remote offsets, index and packId for chunks in this order. */
export function layoutPack(members: PackMember[]): PackLayout {
  const index: PackIndexEntry[] = new Array(members.length);
  let at = PACK_HEADER_SIZE;
  for (let i = 0; i < members.length; i++) {
    const m = members[i]!;
    index[i] = { idRaw: m.idRaw, offset: at + ENTRY_HEAD_SIZE, storedLength: m.local.storedLength, rawLength: m.local.rawLength, codec: m.local.codec };
    at += ENTRY_HEAD_SIZE + m.local.storedLength;
  }
  const { bytes, packId } = encodePackIndex(index);
  return { packId, size: at, members, index, indexBytes: bytes };
}

export function packedSize(loc: ChunkLocation): number {
  return ENTRY_HEAD_SIZE + loc.storedLength;
}

/** A factory of streams of the pack's bytes, read from the local store. */
export function packBodyFactory(store: ChunkStore, members: PackMember[]): () => Readable {
  return () => Readable.from(generatePack(store, members), { objectMode: false, highWaterMark: 1 });
}

async function* generatePack(store: ChunkStore, members: PackMember[]): AsyncGenerator<Buffer> {
  yield encodePackHeader();
  const handles = new Map<number, FileHandle>();
  const handle = async (pack: number): Promise<FileHandle> => {
    let h = handles.get(pack);
    if (!h) {
      h = await open(store.packPath(pack), 'r');
      handles.set(pack, h);
    }
    return h;
  };
  try {
    let i = 0;
    while (i < members.length) {
      // a run of chunks adjacent in one local pack, up to READ_BLOCK bytes (at least one chunk)
      const first = members[i]!;
      let j = i + 1;
      let end = first.local.offset + first.local.storedLength;
      while (j < members.length) {
        const m = members[j]!.local;
        if (m.pack !== first.local.pack || m.offset !== end + ENTRY_HEAD_SIZE) break;
        if (m.offset + m.storedLength - (first.local.offset - ENTRY_HEAD_SIZE) > READ_BLOCK) break;
        end = m.offset + m.storedLength;
        j++;
      }
      const start = first.local.offset - ENTRY_HEAD_SIZE;
      const block = Buffer.allocUnsafe(end - start);
      const h = await handle(first.local.pack);
      let done = 0;
      while (done < block.length) {
        const { bytesRead } = await h.read(block, done, block.length - done, start + done);
        if (bytesRead === 0) throw new ChunkCorruptError(members[i]!.idRaw.toString('hex'), 'its local pack ends early');
        done += bytesRead;
      }
      const expected = Buffer.allocUnsafe(ENTRY_HEAD_SIZE);
      for (let k = i; k < j; k++) {
        const m = members[k]!;
        const at = m.local.offset - start;
        encodeEntryHead({ idRaw: m.idRaw, codec: m.local.codec, rawLength: m.local.rawLength, storedLength: m.local.storedLength }, expected, 0);
        const idHex = m.idRaw.toString('hex');
        if (!block.subarray(at - ENTRY_HEAD_SIZE, at).equals(expected)) throw new ChunkCorruptError(idHex, 'its pack entry head does not match the index');
        const bad = await checkStoredChunk(m.idRaw, m.local.codec, m.local.rawLength, block.subarray(at, at + m.local.storedLength));
        if (bad) throw new ChunkCorruptError(idHex, bad);
      }
      yield block;
      i = j;
    }
  } finally {
    for (const h of handles.values()) await h.close();
  }
}
