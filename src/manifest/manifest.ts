/**
 * The manifest: the ordered chunk list of one file version. Binary, version 1:
 *
 *   magic      8 bytes  "DITSMANI"
 *   version    u32 LE   1
 *   headerLen  u32 LE
 *   header     headerLen bytes of UTF-8 JSON (ManifestHeader: size, oid, chunker, chunkCount, media)
 *   table      chunkCount x 37 bytes: chunk id (32 raw bytes) | length u32 LE | flags u8
 *
 * flags bit 0: the chunk starts at a keyframe (media-aware cutting).
 * The manifest id is BLAKE3-256 of these bytes. 37 bytes a chunk keeps a 50 GB file's
 * manifest near 28 MB, read without building an object per chunk.
 */
import { hashHex } from '../hashing/blake3.js';

export const MANIFEST_MAGIC = Buffer.from('DITSMANI', 'latin1');
export const MANIFEST_VERSION = 1;
export const CHUNK_ENTRY_SIZE = 37;
export const FLAG_KEYFRAME = 1;

export interface ChunkerSettings {
  algorithm: 'fastcdc-2020';
  min: number;
  avg: number;
  max: number;
}

export interface ManifestHeader {
  size: number;
  oid: string;
  chunker: ChunkerSettings;
  chunkCount: number;
  /** Container structure found by the media parser, or null for plain chunking. */
  media: Record<string, unknown> | null;
  /** Why media-aware cutting was not used, when it was tried. */
  mediaFallback?: string;
}

export interface ChunkRef {
  id: string;
  length: number;
  flags: number;
}

export class ManifestError extends Error {
  readonly code = 'manifest-corrupt';
}

/** Builds a manifest's chunk table incrementally (no per-chunk objects kept). */
export class ManifestBuilder {
  private parts: Buffer[] = [];
  private current = Buffer.allocUnsafe(CHUNK_ENTRY_SIZE * 4096);
  private used = 0;
  count = 0;
  total = 0;

  add(idRaw: Buffer, length: number, flags = 0): void {
    if (this.used + CHUNK_ENTRY_SIZE > this.current.length) {
      this.parts.push(this.current.subarray(0, this.used));
      this.current = Buffer.allocUnsafe(CHUNK_ENTRY_SIZE * 4096);
      this.used = 0;
    }
    idRaw.copy(this.current, this.used, 0, 32);
    this.current.writeUInt32LE(length, this.used + 32);
    this.current[this.used + 36] = flags;
    this.used += CHUNK_ENTRY_SIZE;
    this.count++;
    this.total += length;
  }

  encode(header: Omit<ManifestHeader, 'chunkCount' | 'size'>): { bytes: Buffer; id: string; header: ManifestHeader } {
    const full: ManifestHeader = { size: this.total, oid: header.oid, chunker: header.chunker, chunkCount: this.count, media: header.media };
    if (header.mediaFallback) full.mediaFallback = header.mediaFallback;
    const json = Buffer.from(JSON.stringify(full), 'utf8');
    const fixed = Buffer.alloc(16);
    MANIFEST_MAGIC.copy(fixed, 0);
    fixed.writeUInt32LE(MANIFEST_VERSION, 8);
    fixed.writeUInt32LE(json.length, 12);
    const bytes = Buffer.concat([fixed, json, ...this.parts, this.current.subarray(0, this.used)]);
    return { bytes, id: hashHex(bytes), header: full };
  }
}

export class Manifest {
  private constructor(
    readonly header: ManifestHeader,
    private readonly table: Buffer,
  ) {}

  /**
   * `checkLengths: false` leaves the check that the chunk lengths add up to the size to the
   * caller (the mount's FileContent: it sums them as reads reach them, not on open).
   */
  static parse(bytes: Buffer, checkLengths = true): Manifest {
    if (bytes.length < 16 || !bytes.subarray(0, 8).equals(MANIFEST_MAGIC)) throw new ManifestError('not a dits manifest');
    const version = bytes.readUInt32LE(8);
    if (version !== MANIFEST_VERSION) throw new ManifestError(`manifest version ${version} is newer than this dits understands; upgrade dits`);
    const headerLen = bytes.readUInt32LE(12);
    if (16 + headerLen > bytes.length) throw new ManifestError('manifest header runs past its end');
    let header: ManifestHeader;
    try {
      header = JSON.parse(bytes.toString('utf8', 16, 16 + headerLen)) as ManifestHeader;
    } catch {
      throw new ManifestError('manifest header is not valid JSON');
    }
    const table = bytes.subarray(16 + headerLen);
    if (table.length !== header.chunkCount * CHUNK_ENTRY_SIZE) throw new ManifestError('manifest chunk table has the wrong length');
    const m = new Manifest(header, table);
    if (!checkLengths) return m;
    let total = 0;
    for (let i = 0; i < header.chunkCount; i++) total += m.lengthAt(i);
    if (total !== header.size) throw new ManifestError('manifest chunk lengths do not add up to the file size');
    return m;
  }

  get chunkCount(): number {
    return this.header.chunkCount;
  }

  idRawAt(i: number): Buffer {
    return this.table.subarray(i * CHUNK_ENTRY_SIZE, i * CHUNK_ENTRY_SIZE + 32);
  }

  idAt(i: number): string {
    return this.idRawAt(i).toString('hex');
  }

  lengthAt(i: number): number {
    return this.table.readUInt32LE(i * CHUNK_ENTRY_SIZE + 32);
  }

  flagsAt(i: number): number {
    return this.table[i * CHUNK_ENTRY_SIZE + 36]!;
  }

  *chunks(): Generator<ChunkRef & { offset: number; index: number }> {
    let offset = 0;
    for (let i = 0; i < this.chunkCount; i++) {
      const length = this.lengthAt(i);
      yield { id: this.idAt(i), length, flags: this.flagsAt(i), offset, index: i };
      offset += length;
    }
  }

  /** Distinct chunk ids (raw, hex keyed). */
  distinctIds(): Set<string> {
    const s = new Set<string>();
    for (let i = 0; i < this.chunkCount; i++) s.add(this.idAt(i));
    return s;
  }
}
