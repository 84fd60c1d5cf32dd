/**
 * The location table of one file version (`v1/locations/<id[0:2]>/<id[2:]>`, keyed by the
 * manifest id): for each chunk of the manifest, the pack that holds it and where. A reader
 * of one file (remote-file-reader.ts) fetches it beside the manifest and reads at once,
 * instead of listing `v1/packs/` and downloading pack indexes until every chunk is found
 * (a cost that grows with the file). Version 1, little-endian:
 *
 *   magic     8 bytes  "DITSLOCT"
 *   version   u32      1
 *   chunks    u32      the manifest's chunk count
 *   manifest  32 bytes the manifest id (raw)
 *   packs     u32      P
 *   runs      u32      R
 *   pack ids  P x 32 bytes (raw)
 *   runs      R x: count u32 | pack u32 (0..P-1) | offset u64 (of the first chunk's data,
 *                  after its 41-byte entry head, as in the pack index) | lengths u8 (0 or 1)
 *                  [lengths = 1: count x (stored length u32 | codec u8)]
 *   check     32 bytes BLAKE3 of every byte before it
 *
 * Version 2 (written for a manifest over one 4 MiB leaf, i.e. a file over about 7 GiB) adds,
 * after the pack ids: leaves u32 L | L x 32 bytes, the BLAKE3 chaining values of the
 * manifest's 4 MiB leaves (hashing/tree-cv.ts). A reader that checks that they combine to
 * the manifest id, and that the manifest's first 4 MiB (one ranged GET) gives the first of
 * them, may use those entries before the rest of the manifest has arrived (bytes that
 * differ and pass both checks would be a BLAKE3 collision): the first byte of a 20 GiB
 * file then waits for 4 MiB of manifest, not 12 MB. Version 1 readers refuse a version 2
 * table, and so use the pack indexes.
 *
 * A run is `count` consecutive chunks of the manifest lying back to back in one pack: each
 * entry starts where the one before ends. With lengths = 0 every chunk of the run is
 * stored plain (codec 0, stored length = its length in the manifest), so the run costs 17
 * bytes however long it is; otherwise each chunk's stored length and codec follow. The runs'
 * counts add up to the manifest's chunk count.
 *
 * The table is a hint, never trusted for content: a reader still checks every entry head
 * and hashes every chunk to its id, and goes back to the pack indexes when the table is
 * absent, damaged, or names a pack or an entry that is not (or no longer) there. A pusher
 * writes it only after every pack it names is complete on the remote (push-content.ts).
 */
import { hashBytes } from '../../hashing/blake3.js';
import { ENTRY_HEAD_SIZE } from '../../store/pack-format.js';

export const LOCATIONS_PREFIX = 'v1/locations/';
export const LOCATION_TABLE_MAGIC = Buffer.from('DITSLOCT', 'latin1');
export const LOCATION_TABLE_VERSION = 1;
/** The version of a table that carries the manifest's leaves. */
export const LOCATION_TABLE_VERSION_LEAVES = 2;
const HEADER_SIZE = 8 + 4 + 4 + 32 + 4 + 4;
const RUN_SIZE = 17;
const LENGTH_SIZE = 5;
const CHECK_SIZE = 32;

export function locationTableKey(manifestId: string): string {
  return `${LOCATIONS_PREFIX}${manifestId.slice(0, 2)}/${manifestId.slice(2)}`;
}

export class LocationTableError extends Error {
  readonly code = 'location-table-corrupt';
}

/** Where each chunk of a manifest lies, by chunk index (as openRemoteFile keeps it). */
export interface ChunkLocations {
  /** pack ids (hex), indexed by `packOf` */
  packIds: string[];
  packOf: Int32Array;
  offsetOf: Float64Array;
  storedOf: Uint32Array;
  codecOf: Uint8Array;
}

/**
 * Builds a table chunk by chunk, in manifest order: `add` each chunk's location; a chunk
 * that starts where the previous one ended in the same pack extends the run.
 */
export class LocationTableWriter {
  private readonly packIndex = new Map<string, number>();
  private readonly packIds: string[] = [];
  private readonly runs: Buffer[] = [];
  private runCount = 0;
  private chunks = 0;
  // the open run
  private pack = -1;
  private first = 0;
  private nextOffset = -1;
  private plain = true;
  private lengths: number[] = []; // stored, codec, stored, codec, ...

  constructor(private readonly manifestIdRaw: Buffer) {
    if (manifestIdRaw.length !== 32) throw new LocationTableError('manifest id must be 32 bytes');
  }

  add(packId: string, offset: number, storedLength: number, codec: number, rawLength: number): void {
    let pack = this.packIndex.get(packId);
    if (pack === undefined) {
      pack = this.packIds.push(packId) - 1;
      this.packIndex.set(packId, pack);
    }
    if (pack !== this.pack || offset !== this.nextOffset) {
      this.closeRun();
      this.pack = pack;
      this.first = offset;
    }
    if (codec !== 0 || storedLength !== rawLength) this.plain = false;
    this.lengths.push(storedLength, codec);
    this.nextOffset = offset + storedLength + ENTRY_HEAD_SIZE;
    this.chunks++;
  }

  private closeRun(): void {
    if (this.pack < 0) return;
    const count = this.lengths.length / 2;
    const run = Buffer.alloc(RUN_SIZE + (this.plain ? 0 : count * LENGTH_SIZE));
    run.writeUInt32LE(count, 0);
    run.writeUInt32LE(this.pack, 4);
    run.writeBigUInt64LE(BigInt(this.first), 8);
    run[16] = this.plain ? 0 : 1;
    if (!this.plain) {
      for (let j = 0; j < count; j++) {
        run.writeUInt32LE(this.lengths[2 * j]!, RUN_SIZE + j * LENGTH_SIZE);
        run[RUN_SIZE + j * LENGTH_SIZE + 4] = this.lengths[2 * j + 1]!;
      }
    }
    this.runs.push(run);
    this.runCount++;
    this.pack = -1;
    this.plain = true;
    this.lengths = [];
  }

  /**
   * The table's bytes (the writer is spent). `manifestLeaves`: the manifest's 4 MiB leaves'
   * chaining values, for a manifest over one leaf (version 2); none: version 1.
   */
  finish(manifestLeaves?: Buffer | null): Buffer {
    this.closeRun();
    const leaves = manifestLeaves && manifestLeaves.length >= 64 ? manifestLeaves : null;
    if (leaves && leaves.length % 32 !== 0) throw new LocationTableError('manifest leaves must be 32 bytes each');
    const head = Buffer.alloc(HEADER_SIZE + this.packIds.length * 32 + (leaves ? 4 + leaves.length : 0));
    LOCATION_TABLE_MAGIC.copy(head, 0);
    head.writeUInt32LE(leaves ? LOCATION_TABLE_VERSION_LEAVES : LOCATION_TABLE_VERSION, 8);
    head.writeUInt32LE(this.chunks, 12);
    this.manifestIdRaw.copy(head, 16);
    head.writeUInt32LE(this.packIds.length, 48);
    head.writeUInt32LE(this.runCount, 52);
    this.packIds.forEach((p, i) => Buffer.from(p, 'hex').copy(head, HEADER_SIZE + i * 32));
    if (leaves) {
      const at = HEADER_SIZE + this.packIds.length * 32;
      head.writeUInt32LE(leaves.length / 32, at);
      leaves.copy(head, at + 4);
    }
    const body = Buffer.concat([head, ...this.runs]);
    return Buffer.concat([body, hashBytes(body)]);
  }
}

/** The packs a table names (hex ids); LocationTableError when it is not a table of this version. */
export function locationTablePackIds(bytes: Buffer): string[] {
  if (bytes.length < HEADER_SIZE + CHECK_SIZE || !bytes.subarray(0, 8).equals(LOCATION_TABLE_MAGIC) || !knownVersion(bytes.readUInt32LE(8))) throw new LocationTableError('not a dits location table');
  const count = bytes.readUInt32LE(48);
  if (HEADER_SIZE + count * 32 + CHECK_SIZE > bytes.length) throw new LocationTableError('location table is cut short');
  const out: string[] = [];
  for (let p = 0; p < count; p++) out.push(bytes.toString('hex', HEADER_SIZE + p * 32, HEADER_SIZE + (p + 1) * 32));
  return out;
}

function knownVersion(v: number): boolean {
  return v === LOCATION_TABLE_VERSION || v === LOCATION_TABLE_VERSION_LEAVES;
}

/**
 * A table's header checked (magic, version, checksum, manifest id; `chunkCount` when given):
 * where its runs start, and the manifest's leaves (version 2) or null.
 */
function openTable(bytes: Buffer, manifestIdRaw: Buffer, chunkCount?: number): { leaves: Buffer | null; packCount: number; runCount: number; at: number; end: number } {
  if (bytes.length < HEADER_SIZE + CHECK_SIZE || !bytes.subarray(0, 8).equals(LOCATION_TABLE_MAGIC)) throw new LocationTableError('not a dits location table');
  const version = bytes.readUInt32LE(8);
  if (!knownVersion(version)) throw new LocationTableError(`location table version ${version} is not understood`);
  const end = bytes.length - CHECK_SIZE;
  if (!hashBytes(bytes.subarray(0, end)).equals(bytes.subarray(end))) throw new LocationTableError('location table does not match its checksum');
  if ((chunkCount !== undefined && bytes.readUInt32LE(12) !== chunkCount) || !bytes.subarray(16, 48).equals(manifestIdRaw)) throw new LocationTableError('location table is for another manifest');
  const packCount = bytes.readUInt32LE(48);
  const runCount = bytes.readUInt32LE(52);
  let at = HEADER_SIZE + packCount * 32;
  if (at > end) throw new LocationTableError('location table is cut short');
  let leaves: Buffer | null = null;
  if (version === LOCATION_TABLE_VERSION_LEAVES) {
    if (at + 4 > end) throw new LocationTableError('location table is cut short');
    const count = bytes.readUInt32LE(at);
    if (count < 2 || at + 4 + count * 32 > end) throw new LocationTableError('location table has impossible manifest leaves');
    leaves = bytes.subarray(at + 4, at + 4 + count * 32);
    at += 4 + count * 32;
  }
  return { leaves, packCount, runCount, at, end };
}

/**
 * The chaining values of the manifest's 4 MiB leaves a version 2 table carries, or null (a
 * version 1 table); LocationTableError when the table is damaged, of an unknown version, or
 * for another manifest. Not trusted: the reader checks that they combine to the manifest id.
 */
export function locationTableLeaves(bytes: Buffer, manifestIdRaw: Buffer): Buffer | null {
  return openTable(bytes, manifestIdRaw).leaves;
}

/**
 * The locations a table gives for the chunks of manifest `manifestIdRaw` (`lengthAt`: each
 * chunk's length in the manifest); LocationTableError when the table is damaged, of another
 * version, or not for this manifest. `upTo`: only chunks [0, upTo) are decoded (the rest
 * of the arrays stays zero): a reader that has verified only the start of the manifest
 * (its first leaf) decodes that much, and the whole once the rest has arrived.
 */
export function decodeLocationTable(bytes: Buffer, manifestIdRaw: Buffer, chunkCount: number, lengthAt: (i: number) => number, upTo = chunkCount): ChunkLocations {
  const opened = openTable(bytes, manifestIdRaw, chunkCount);
  const { packCount, runCount, end } = opened;
  let at = HEADER_SIZE;
  const packIds: string[] = [];
  for (let p = 0; p < packCount; p++, at += 32) packIds.push(bytes.toString('hex', at, at + 32));
  at = opened.at;
  const packOf = new Int32Array(chunkCount);
  const offsetOf = new Float64Array(chunkCount);
  const storedOf = new Uint32Array(chunkCount);
  const codecOf = new Uint8Array(chunkCount);
  let i = 0;
  for (let r = 0; r < runCount && i < upTo; r++) {
    if (at + RUN_SIZE > end) throw new LocationTableError('location table is cut short');
    const count = bytes.readUInt32LE(at);
    const pack = bytes.readUInt32LE(at + 4);
    const first = bytes.readBigUInt64LE(at + 8);
    const listed = bytes[at + 16]!;
    at += RUN_SIZE;
    if (count === 0 || i + count > chunkCount || pack >= packCount || first > BigInt(Number.MAX_SAFE_INTEGER) || listed > 1) throw new LocationTableError('location table has an impossible run');
    if (listed === 1 && at + count * LENGTH_SIZE > end) throw new LocationTableError('location table is cut short');
    let offset = Number(first);
    packOf.fill(pack, i, i + count);
    if (listed === 1) {
      for (let j = 0; j < count; j++, i++) {
        const stored = bytes.readUInt32LE(at + j * LENGTH_SIZE);
        offsetOf[i] = offset;
        storedOf[i] = stored;
        codecOf[i] = bytes[at + j * LENGTH_SIZE + 4]!;
        offset += stored + ENTRY_HEAD_SIZE;
      }
      at += count * LENGTH_SIZE;
    } else {
      // plain: stored as long as in the manifest, codec 0 (the arrays' zero); past upTo the
      // manifest's lengths are not known yet
      for (const end = Math.min(i + count, Math.max(i, upTo)); i < end; i++) {
        const stored = lengthAt(i);
        offsetOf[i] = offset;
        storedOf[i] = stored;
        offset += stored + ENTRY_HEAD_SIZE;
      }
    }
    if (!Number.isSafeInteger(offset)) throw new LocationTableError('location table offset out of range');
  }
  if (upTo < chunkCount) {
    if (i < upTo) throw new LocationTableError('location table does not cover the manifest exactly');
    return { packIds, packOf, offsetOf, storedOf, codecOf };
  }
  if (i !== chunkCount || at !== end) throw new LocationTableError('location table does not cover the manifest exactly');
  return { packIds, packOf, offsetOf, storedOf, codecOf };
}
