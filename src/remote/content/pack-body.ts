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

/**
 * A pack's planned chunks, 56 bytes each (id 32 | local pack u32 | offset f64 | stored u32 |
 * raw u32 | codec u8 | 3 spare), so a multi-GiB push plan is a few compact buffers rather than
 * an object per chunk (1 GiB of 64 KiB chunks: 16k chunks, under 1 MB of plan).
 */
export const MEMBER_SIZE = 56;

export class MemberTable {
  private buf = Buffer.allocUnsafe(MEMBER_SIZE * 1024);
  count = 0;

  add(idRaw: Buffer, loc: ChunkLocation): void {
    if ((this.count + 1) * MEMBER_SIZE > this.buf.length) {
      const bigger = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(bigger, 0, 0, this.count * MEMBER_SIZE);
      this.buf = bigger;
    }
    const at = this.count * MEMBER_SIZE;
    idRaw.copy(this.buf, at, 0, 32);
    this.buf.writeUInt32LE(loc.pack, at + 32);
    this.buf.writeDoubleLE(loc.offset, at + 36);
    this.buf.writeUInt32LE(loc.storedLength, at + 44);
    this.buf.writeUInt32LE(loc.rawLength, at + 48);
    this.buf[at + 52] = loc.codec;
    this.count++;
  }

  /** The table's bytes, exactly sized. */
  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.count * MEMBER_SIZE));
  }
}

export function memberCount(table: Buffer): number {
  return table.length / MEMBER_SIZE;
}

export function memberAt(table: Buffer, i: number): PackMember {
  const at = i * MEMBER_SIZE;
  return {
    idRaw: table.subarray(at, at + 32),
    local: {
      pack: table.readUInt32LE(at + 32),
      offset: table.readDoubleLE(at + 36),
      storedLength: table.readUInt32LE(at + 44),
      rawLength: table.readUInt32LE(at + 48),
      codec: table[at + 52]!,
    },
  };
}

export interface PackLayout {
  packId: string;
  size: number;
  /** MemberTable bytes */
  members: Buffer;
  indexBytes: Buffer;
}

/** Remote offsets, index and packId for the chunks of a member table, in its order. */
export function layoutPack(members: Buffer): PackLayout {
  const n = memberCount(members);
  const entries: PackIndexEntry[] = [];
  let at = PACK_HEADER_SIZE;
  // one small object per entry, alive only inside this call (a pack's worth at a time)
  for (let i = 0; i < n; i++) {
    const m = memberAt(members, i);
    entries.push({ idRaw: m.idRaw, offset: at + ENTRY_HEAD_SIZE, storedLength: m.local.storedLength, rawLength: m.local.rawLength, codec: m.local.codec });
    at += ENTRY_HEAD_SIZE + m.local.storedLength;
  }
  const { bytes, packId } = encodePackIndex(entries);
  return { packId, size: at, members, indexBytes: bytes };
}

export function packedSize(loc: ChunkLocation): number {
  return ENTRY_HEAD_SIZE + loc.storedLength;
}

/** A factory of streams of the pack's bytes (MemberTable bytes in), read from the local store. */
export function packBodyFactory(store: ChunkStore, table: Buffer): () => Readable {
  return () => Readable.from(generatePack(store, table), { objectMode: false, highWaterMark: 1 });
}

async function* generatePack(store: ChunkStore, table: Buffer): AsyncGenerator<Buffer> {
  const members = { length: memberCount(table) };
  const memberOf = (i: number): PackMember => memberAt(table, i);
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
      const first = memberOf(i);
      let j = i + 1;
      let end = first.local.offset + first.local.storedLength;
      while (j < members.length) {
        const m = memberOf(j).local;
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
        if (bytesRead === 0) throw new ChunkCorruptError(memberOf(i).idRaw.toString('hex'), 'its local pack ends early');
        done += bytesRead;
      }
      const expected = Buffer.allocUnsafe(ENTRY_HEAD_SIZE);
      for (let k = i; k < j; k++) {
        const m = memberOf(k);
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
