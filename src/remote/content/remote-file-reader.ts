/**
 * One file version read straight from a remote's storage, without a local store: the
 * server's workers feed ffmpeg from it (src/proxy/range-source.ts), so a 4 GiB original in
 * S3 is never whole in memory nor copied to disk.
 *
 * openRemoteFile(storage, manifestId):
 * 1. the manifest (`v1/objects/...`), verified against its id, and at the same time the
 *    file's location table (`v1/locations/...`, location-table.ts; unless `locationTable:
 *    false`);
 * 2. where each of its chunks lies: from the location table when there is one that decodes,
 *    checksum and manifest agreeing (no listing, no index: the first byte costs the
 *    manifest, the table and one ranged GET, whatever the file's size). Else one listing of
 *    `v1/packs/`, then the pack indexes, each verified by its name (packId = BLAKE3 of the
 *    index), read until every chunk is located. With `indexCacheDir` the indexes
 *    (immutable) are kept on disk between jobs, so a second file of the same repository
 *    costs the listing only.
 *    A chunk in no complete pack (an index names a complete pack: README.md) throws
 *    RemoteContentNotReadyError: a push may still be uploading.
 *    The table is a hint: a read that finds it wrong (its pack gone, frozen, or a range
 *    that does not verify) locates every chunk again through the indexes, once, and reads
 *    again from there (packs found frozen are taken only for chunks no other pack holds);
 *    `log` hears why.
 * 3. `read(offset, length)` / `stream(start, end)`: the chunks covering the range, fetched by
 *    ranged GETs of their packs (neighbours in one pack coalesced, gaps up to `maxGapBytes`
 *    read through, at most `maxRangeBytes` a GET); every entry head is checked against the
 *    index (or table), every chunk decoded (zstd) and hashed to its id before a byte of it is
 *    returned. A range that does not verify is read once more (located through the indexes);
 *    then RemoteChunkCorruptError. No
 *    unverified byte is ever returned.
 *    `fetchChunks(first, last, onChunk)` (the mount's read-ahead): the same GETs, each chunk
 *    handed over as soon as it has arrived and verified, the rest of its GET still coming.
 *
 * Memory: the manifest's table (37 bytes a chunk) plus about 30 bytes a chunk of locations
 * (a 4 GiB file of 64 KiB chunks: about 4 MiB); `read` keeps up to `cacheBytes` of decoded
 * chunks (default 16 MiB; ffmpeg's probing reads the same chunks in small pieces);
 * `stream` holds at most two GETs (the one being returned and the next, fetched ahead),
 * each at most `maxRangeBytes` read and `maxRangeBytes` decoded, and nothing after it ends.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DitsUserError } from '../../errors.js';
import { hashBytes, hashHex } from '../../hashing/blake3.js';
import { CHUNK_ENTRY_SIZE, Manifest, MANIFEST_MAGIC, type ManifestHeader } from '../../manifest/manifest.js';
import { decompress } from '../../store/compression.js';
import { CODEC_NONE, CODEC_ZSTD, ENTRY_HEAD_SIZE, encodeEntryHead } from '../../store/pack-format.js';
import { openPieces, type ObjectStorage, type PieceReader } from '../../transfer/object-storage.js';
import { StorageError } from '../../transfer/storage-error.js';
import { indexKey, manifestKey, PACKS_PREFIX, packKey, parsePackKey } from './layout.js';
import { decodeLocationTable, LocationTableError, locationTableKey, locationTableLeaves } from './location-table.js';
import { LEAF_SIZE, leafCount, treeCv } from '../../hashing/tree-cv.js';
import { decodePackIndex, PackIndexError } from './pack-index.js';
import { isFrozenError } from '../../tier/tier-storage.js';
import { impliedPackSize } from './sync-remote-index.js';

export interface RemoteFileReaderOptions {
  /** A directory where verified pack indexes are kept for later readers (created if needed). */
  indexCacheDir?: string;
  /** Largest ranged GET of a pack (default 8 MiB). */
  maxRangeBytes?: number;
  /** Unwanted bytes between two wanted chunks read through rather than split (default 64 KiB). */
  maxGapBytes?: number;
  /** Decoded chunks kept for `read` (default 16 MiB). */
  cacheBytes?: number;
  /** Index downloads in flight (default 8). */
  concurrency?: number;
  /** Where the read is recorded for the tier reaper: the file version, and each pack read (never waited on). */
  access?: { record(kind: 'pack' | 'file', id: string): void };
  /** The manifest's bytes, when the caller has them already (checked against the id here too): saves a GET. */
  manifestBytes?: Buffer;
  /** Use the file's location table when the remote has one (default true); false: always the pack indexes. */
  locationTable?: boolean;
  /** Where to say that the location table was not used or was wrong (a debug line; the read goes on). */
  log?: (line: string) => void;
  /**
   * Open once the manifest's first 4 MiB leaf is verified, when the location table carries
   * the manifest's leaves (a file over about 7 GiB): the rest of the manifest arrives in the
   * background and every read that needs an entry past the first leaf waits for it (see
   * manifestVerifiedBytes, whole). The mount's first byte; default false.
   */
  early?: boolean;
}

export interface RemoteFileStats {
  /** storage requests made: the manifest, the listing, indexes, chunk ranges */
  requests: number;
  indexesDownloaded: number;
  indexesFromCache: number;
  rangeRequests: number;
  /** bytes of packs fetched by chunk ranges */
  rangeBytes: number;
  /** how the chunks were located (last): the location table, or the listing and the pack indexes */
  locatedBy: 'table' | 'indexes' | null;
  /** times a read found the location table wrong and the chunks were located again through the indexes */
  tableFallbacks: number;
}

export interface RemoteFileReader {
  readonly manifestId: string;
  readonly header: ManifestHeader;
  /**
   * The manifest's bytes, verified against its id, and parsed; for an `early` reader only
   * the first manifestVerifiedBytes of them until whole() resolves (the rest are not there yet).
   */
  readonly manifestBytes: Buffer;
  readonly manifest: Manifest;
  /** Bytes of manifestBytes verified (all of them but for an `early` reader whose manifest is still arriving). */
  readonly manifestVerifiedBytes: number;
  /** Resolves once the whole manifest is here and verified against its id (at once but for an `early` reader). */
  whole(): Promise<void>;
  readonly size: number;
  readonly stats: RemoteFileStats;
  /** Exactly `length` bytes at `offset`, fewer only past the end (RandomAccessReader). */
  read(offset: number, length: number): Promise<Buffer>;
  /** The bytes [start, end) in order, in pieces; abandoning the iteration stops the fetches. */
  stream(start: number, end: number): AsyncGenerator<Buffer>;
  /**
   * Chunks [first, last] (manifest indices), each handed to `onChunk` as soon as it is
   * verified, in order, while its GET is still arriving (no wait for the whole range): each
   * chunk is copied once out of the socket's pieces into a buffer of its own. Two GETs at
   * most in flight. Resolves once all are handed over; rejects at the first failure (the
   * chunks handed over before it were verified). A chunk that does not verify is read once
   * more (from that chunk on); then RemoteChunkCorruptError. `alloc(n)`: the buffer a chunk
   * of n stored bytes is copied into (default a new one; the mount's come from a pool).
   * `onChunk` may return a promise (never rejected): the GET's reading waits for it (the
   * mount's disk cache asking to slow down).
   */
  fetchChunks(first: number, last: number, onChunk: (i: number, plain: Buffer) => void | Promise<void>, alloc?: (n: number) => Buffer): Promise<void>;
  close(): Promise<void>;
}

/** The manifest or some chunks are not on the storage (yet): the caller may try again later. */
export class RemoteContentNotReadyError extends DitsUserError {
  constructor(
    readonly location: string,
    readonly what: string,
  ) {
    super('remote-content-not-ready', `${what} on ${location}`, {
      hint: 'a push may still be uploading it; if it never arrives, push the file again from a machine that has it',
    });
    this.name = 'RemoteContentNotReadyError';
  }
}

export class RemoteChunkCorruptError extends DitsUserError {
  constructor(location: string, key: string, chunkId: string, reason: string) {
    super('remote-pack-corrupt', `remote pack ${key} on ${location} is corrupt: chunk ${chunkId} ${reason}`, {
      hint: 'push the file again from a machine that still has it (the next push re-uploads damaged chunks), or restore the pack from a backup',
    });
    this.name = 'RemoteChunkCorruptError';
  }
}

const DEFAULT_MAX_RANGE = 8 * 1024 * 1024;
const DEFAULT_MAX_GAP = 64 * 1024;
const DEFAULT_CACHE = 16 * 1024 * 1024;
const NOT_LOCATED = -1;

/** Where every chunk of the file lies (by manifest index). */
interface Located {
  packKeys: string[];
  packOf: Int32Array;
  offsetOf: Float64Array;
  storedOf: Uint32Array;
  codecOf: Uint8Array;
  /** from the location table (a hint: a read that finds it wrong locates again through the indexes) */
  fromTable: boolean;
}

/** A run of chunks (manifest indices) read with one ranged GET. */
interface Group {
  /** the locations it was planned from */
  loc: Located;
  pack: number;
  first: number;
  last: number;
  start: number;
  /** inclusive */
  end: number;
}

export async function openRemoteFile(storage: ObjectStorage, manifestId: string, opts: RemoteFileReaderOptions = {}): Promise<RemoteFileReader> {
  const maxRange = opts.maxRangeBytes ?? DEFAULT_MAX_RANGE;
  const maxGap = opts.maxGapBytes ?? DEFAULT_MAX_GAP;
  const cacheLimit = opts.cacheBytes ?? DEFAULT_CACHE;
  const stats: RemoteFileStats = { requests: 0, indexesDownloaded: 0, indexesFromCache: 0, rangeRequests: 0, rangeBytes: 0, locatedBy: null, tableFallbacks: 0 };
  const where = storage.location;

  // 1. the manifest, and its location table (a hint: fetched at the same time, never awaited
  // alone, never an error)
  const idRaw = Buffer.from(manifestId, 'hex');
  const table = opts.locationTable === false ? Promise.resolve(null) : fetchLocationTable(storage, manifestId, stats);
  const corrupt = (): DitsUserError =>
    new DitsUserError('remote-manifest-corrupt', `manifest ${manifestKey(manifestId)} on ${where} is corrupt (its bytes do not match its id)`, { hint: 'push it again from a machine that has it' });
  const getManifest = async (range?: { start: number; end: number }): Promise<Buffer> => {
    try {
      stats.requests++;
      return await storage.getBuffer(manifestKey(manifestId), range);
    } catch (err) {
      if (err instanceof StorageError && err.code === 'storage-not-found') throw new RemoteContentNotReadyError(where, `manifest ${manifestId} is not stored`);
      throw err;
    }
  };
  let bytes: Buffer;
  /** the bytes of `bytes` verified against the id: all, but for an early reader (below) until the rest arrives */
  let verified: number;
  if (opts.manifestBytes !== undefined) bytes = opts.manifestBytes;
  else if (opts.early && opts.locationTable !== false) {
    const got = await earlyManifest(getManifest, idRaw, table);
    bytes = got.bytes;
    verified = got.verified;
  } else bytes = await getManifest();
  verified ??= bytes.length;
  if (verified === bytes.length && !hashBytes(bytes).equals(idRaw)) throw corrupt();
  const manifest = Manifest.parse(bytes, verified === bytes.length);
  opts.access?.record('file', manifestId);
  const n = manifest.chunkCount;
  // chunk starts, summed for the entries verified (all but for an early reader: the rest in whole())
  const starts = new Float64Array(n + 1);
  /** entries of the manifest verified, and their starts summed (starts[0..filled]) */
  let filled = verified === bytes.length ? n : Math.min(n, Math.floor((verified - (bytes.length - n * CHUNK_ENTRY_SIZE)) / CHUNK_ENTRY_SIZE));
  for (let i = 0; i < filled; i++) starts[i + 1] = starts[i]! + manifest.lengthAt(i);
  let rest: Promise<void> | null = null;
  /** The rest of an early reader's manifest, verified whole; its starts summed and its table decoded whole. */
  const whole = (): Promise<void> => {
    if (filled === n) return Promise.resolve();
    rest ??= (async () => {
      const more = await getManifest({ start: verified, end: bytes.length - 1 });
      if (more.length !== bytes.length - verified) throw corrupt();
      more.copy(bytes, verified);
      if (!hashBytes(bytes).equals(idRaw)) throw corrupt();
      for (let i = filled; i < n; i++) starts[i + 1] = starts[i]! + manifest.lengthAt(i);
      if (starts[n] !== manifest.header.size) throw new DitsUserError('remote-manifest-corrupt', `manifest ${manifestId} on ${where}: its chunk lengths do not add up to the file size`, { hint: 'push it again from a machine that has it' });
      verified = bytes.length;
      if (loc !== null && loc === earlyLoc) {
        try {
          const t = decodeLocationTable((await table)!, idRaw, n, (i) => manifest.lengthAt(i));
          loc = { packKeys: t.packIds.map(packKey), packOf: t.packOf, offsetOf: t.offsetOf, storedOf: t.storedOf, codecOf: t.codecOf, fromTable: true };
        } catch (err) {
          if (!(err instanceof LocationTableError)) throw err;
          filled = n;
          await relocate(`its entries past the manifest's first leaf do not decode (${err.message})`);
        }
      }
      filled = n;
    })();
    rest.catch(() => (rest = null)); // asked again by the next read that needs it
    return rest;
  };

  // 2. where every chunk lies: from the location table when there is a sound one, else (or
  // when a read finds the table wrong: see relocate) from the pack indexes
  const locateByIndexes = async (avoid: ReadonlySet<string>): Promise<Located> => {
    if (filled < n) await whole(); // every id of the manifest
    const packOf = new Int32Array(n).fill(NOT_LOCATED);
    const offsetOf = new Float64Array(n);
    const storedOf = new Uint32Array(n);
    const codecOf = new Uint8Array(n);
    const packKeys: string[] = [];
    // keyed by the id's first 48 bits as a number (no base64 string per chunk and per index
    // entry: for a file of 70,000 chunks that cost more than the indexes' download); a key
    // that matches is checked against the whole id, so ids sharing those bits stay apart
    const wanted = new Map<number, number[]>();
    for (let i = 0; i < n; i++) {
      const k = manifest.idRawAt(i).readUIntLE(0, 6);
      const list = wanted.get(k);
      if (list) list.push(i);
      else wanted.set(k, [i]);
    }
    let missing = n;
    const sizes = new Map<string, number>();
    const indexes: string[] = [];
    stats.requests++;
    for await (const o of storage.list(PACKS_PREFIX)) {
      const k = parsePackKey(o.key);
      if (!k) continue;
      if (k.kind === 'pack') sizes.set(k.packId, o.size);
      else indexes.push(k.packId);
    }
    // packs a read found frozen are read last, only for chunks no other pack holds: another
    // copy (a push re-uploads content whose only copies are archived) is taken when there is one
    let next = 0;
    let list = indexes.filter((p) => !avoid.has(p));
    const worker = async (): Promise<void> => {
      while (missing > 0 && next < list.length) {
        const packId = list[next++]!;
        const size = sizes.get(packId);
        if (size === undefined) continue; // an index whose pack is gone
        const entries = await loadIndex(storage, packId, opts.indexCacheDir, stats);
        if (entries === null || impliedPackSize(entries) !== size) continue; // damaged: its chunks count as absent
        let packNo = -1;
        for (const e of entries) {
          const k = e.idRaw.readUIntLE(0, 6);
          const list = wanted.get(k);
          if (list === undefined) continue;
          const at = list.filter((i) => manifest.idRawAt(i).equals(e.idRaw));
          if (at.length === 0) continue;
          if (at.length === list.length) wanted.delete(k);
          else wanted.set(k, list.filter((i) => !at.includes(i)));
          missing -= at.length;
          if (packNo < 0) packNo = packKeys.push(packKey(packId)) - 1;
          for (const i of at) {
            packOf[i] = packNo;
            offsetOf[i] = e.offset;
            storedOf[i] = e.storedLength;
            codecOf[i] = e.codec;
          }
          if (e.rawLength !== manifest.lengthAt(at[0]!)) {
            throw new RemoteChunkCorruptError(where, indexKey(packId), e.idRaw.toString('hex'), `has length ${e.rawLength} in the index, ${manifest.lengthAt(at[0]!)} in the manifest`);
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 8) }, worker));
    if (missing > 0 && avoid.size) {
      list = indexes.filter((p) => avoid.has(p));
      next = 0;
      await worker();
    }
    if (missing > 0) {
      const first = packOf.indexOf(NOT_LOCATED);
      const unique = new Set<string>();
      for (let i = 0; i < n; i++) if (packOf[i] === NOT_LOCATED) unique.add(manifest.idAt(i));
      throw new RemoteContentNotReadyError(where, `${unique.size} chunk(s) of manifest ${manifestId} (first ${manifest.idAt(first)}) are in no complete pack`);
    }
    stats.locatedBy = 'indexes';
    return { packKeys, packOf, offsetOf, storedOf, codecOf, fromTable: false };
  };

  let loc: Located | null = null;
  /** an early reader's locations of the entries verified so far (whole() decodes the rest) */
  let earlyLoc: Located | null = null;
  const tableBytes = await table;
  if (tableBytes !== null && n > 0) {
    try {
      const t = decodeLocationTable(tableBytes, idRaw, n, (i) => manifest.lengthAt(i), filled);
      loc = { packKeys: t.packIds.map(packKey), packOf: t.packOf, offsetOf: t.offsetOf, storedOf: t.storedOf, codecOf: t.codecOf, fromTable: true };
      if (filled < n) earlyLoc = loc;
      stats.locatedBy = 'table';
    } catch (err) {
      if (!(err instanceof LocationTableError)) throw err;
      opts.log?.(`location table of ${manifestId} on ${where} unusable (${err.message}): locating its chunks through the pack indexes`);
    }
  }
  // an empty file has nothing to locate (and no table)
  if (n === 0) loc = { packKeys: [], packOf: new Int32Array(0), offsetOf: new Float64Array(0), storedOf: new Uint32Array(0), codecOf: new Uint8Array(0), fromTable: false };
  loc ??= await locateByIndexes(new Set());
  /** Packs a read found frozen (the next location through the indexes takes other copies first). */
  const frozenPacks = new Set<string>();
  let relocating: Promise<Located> | null = null;
  /**
   * The table was wrong for a read (a pack gone or frozen, an entry that is not there): every
   * chunk located again through the pack indexes, once for all the reads that find it so.
   */
  const relocate = (why: string): Promise<Located> => {
    if (relocating === null) {
      stats.tableFallbacks++;
      opts.log?.(`location table of ${manifestId} on ${where}: ${why}; locating its chunks through the pack indexes`);
      relocating = locateByIndexes(frozenPacks).then(
        (l) => (loc = l),
        (err: unknown) => {
          relocating = null; // the next read tries again
          throw err;
        },
      );
    }
    return relocating;
  };

  /** Chunk index holding byte `pos` (0 <= pos < size). */
  const chunkAt = (pos: number): number => {
    let lo = 0;
    let hi = filled - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (starts[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };

  /**
   * The GET starting at chunk `first`: its pack neighbours, up to `maxRange` bytes read and
   * `maxRange` bytes decoded (zstd chunks of plain frames decode to fifty times their size),
   * not past chunk `limit`.
   */
  const groupFrom = (first: number, limit: number): Group => {
    const l = loc!;
    const pack = l.packOf[first]!;
    const start = l.offsetOf[first]! - ENTRY_HEAD_SIZE;
    let end = l.offsetOf[first]! + l.storedOf[first]! - 1;
    let last = first;
    let decoded = manifest.lengthAt(first);
    while (last + 1 <= limit) {
      const j = last + 1;
      const s = l.offsetOf[j]! - ENTRY_HEAD_SIZE;
      const e = l.offsetOf[j]! + l.storedOf[j]! - 1;
      if (l.packOf[j] !== pack || s <= end || s - end - 1 > maxGap || e - start + 1 > maxRange || decoded + manifest.lengthAt(j) > maxRange) break;
      end = e;
      last = j;
      decoded += manifest.lengthAt(j);
    }
    return { loc: l, pack, first, last, start, end };
  };

  /**
   * What a failed ranged GET of group `g` (pack `key`) means: with locations from the table,
   * a pack gone, a range past its end or a frozen pack sends the reader to the pack indexes
   * ('relocate'; a frozen pack is read last, and only when no other copy exists); else a
   * pack gone is content not ready (thrown here), a range past the end is a problem of the
   * pack ('past-end', asked once more), a retryable error is asked once more ('again'), and
   * anything else is the caller's to throw ('throw').
   */
  const getFailure = (err: unknown, g: Group, key: string, attempt: number): { kind: 'relocate'; why: string; frozen?: { err: StorageError; key: string } } | { kind: 'past-end' | 'again' | 'throw' } => {
    if (!(err instanceof StorageError)) return { kind: 'throw' };
    const frozen = isFrozenError(err);
    if (g.loc.fromTable && (err.code === 'storage-not-found' || err.code === 'storage-bad-range' || frozen)) {
      if (frozen) frozenPacks.add(key.slice(PACKS_PREFIX.length, -'.pack'.length));
      const why = `${key}: ${err.code === 'storage-not-found' ? 'no such pack' : err.code === 'storage-bad-range' ? 'range past the end of the pack' : 'frozen'}`;
      return frozen ? { kind: 'relocate', why, frozen: { err, key } } : { kind: 'relocate', why };
    }
    if (err.code === 'storage-not-found') throw new RemoteContentNotReadyError(where, `pack ${key} is gone`);
    if (err.code === 'storage-bad-range') return { kind: 'past-end' };
    if (attempt === 0 && err.retryable) return { kind: 'again' };
    return { kind: 'throw' };
  };

  const expectedHead = Buffer.allocUnsafe(ENTRY_HEAD_SIZE);
  /** The group's chunks, decoded and verified, in order. */
  const fetchGroup = async (g: Group): Promise<Buffer[]> => {
    const { packKeys, offsetOf, storedOf, codecOf } = g.loc;
    const key = packKeys[g.pack]!;
    let problem: { chunk: string; reason: string } | undefined;
    for (let attempt = 0; attempt < 2; attempt++) {
      let data: Buffer;
      try {
        stats.requests++;
        stats.rangeRequests++;
        data = await storage.getBuffer(key, { start: g.start, end: g.end });
        stats.rangeBytes += data.length;
        opts.access?.record('pack', key.slice(PACKS_PREFIX.length, -'.pack'.length));
      } catch (err) {
        const what = getFailure(err, g, key, attempt);
        if (what.kind === 'relocate') return refetch(g, what.why, what.frozen);
        if (what.kind === 'past-end') problem = { chunk: manifest.idAt(g.last), reason: 'lies past the end of the pack' };
        if (what.kind === 'past-end' || what.kind === 'again') continue;
        throw err;
      }
      problem = undefined;
      const out: Buffer[] = [];
      for (let i = g.first; i <= g.last; i++) {
        const idRaw = manifest.idRawAt(i);
        const at = offsetOf[i]! - ENTRY_HEAD_SIZE - g.start;
        const stored = storedOf[i]!;
        if (at + ENTRY_HEAD_SIZE + stored > data.length) {
          problem = { chunk: idRaw.toString('hex'), reason: 'is cut short (the pack ends early)' };
          break;
        }
        encodeEntryHead({ idRaw, codec: codecOf[i]!, rawLength: manifest.lengthAt(i), storedLength: stored }, expectedHead, 0);
        if (!data.subarray(at, at + ENTRY_HEAD_SIZE).equals(expectedHead)) {
          problem = { chunk: idRaw.toString('hex'), reason: 'has an entry head that does not match the pack index' };
          break;
        }
        const body = data.subarray(at + ENTRY_HEAD_SIZE, at + ENTRY_HEAD_SIZE + stored);
        let plain: Buffer;
        if (codecOf[i] === CODEC_NONE) plain = body;
        else if (codecOf[i] === CODEC_ZSTD) {
          try {
            plain = await decompress(body);
          } catch {
            problem = { chunk: idRaw.toString('hex'), reason: 'has zstd data that does not decode' };
            break;
          }
        } else {
          problem = { chunk: idRaw.toString('hex'), reason: `has unknown codec ${codecOf[i]}` };
          break;
        }
        if (plain.length !== manifest.lengthAt(i) || !hashBytes(plain).equals(idRaw)) {
          problem = { chunk: idRaw.toString('hex'), reason: 'does not match its id' };
          break;
        }
        out.push(plain);
      }
      if (problem === undefined) return out;
      if (g.loc.fromTable) return refetch(g, `${key}: chunk ${problem.chunk} ${problem.reason}`);
    }
    throw new RemoteChunkCorruptError(where, key, problem!.chunk, problem!.reason);
  };

  /**
   * The group's chunks from `g.first` on, handed to `onChunk` one by one as they arrive and
   * verify (see fetchChunks); a problem asks once more from the chunk it hit.
   */
  const streamGroup = async (g: Group, onChunk: (i: number, plain: Buffer) => void | Promise<void>, alloc: (n: number) => Buffer = Buffer.allocUnsafe): Promise<void> => {
    const { packKeys, offsetOf, storedOf, codecOf } = g.loc;
    const key = packKeys[g.pack]!;
    let next = g.first;
    let problem: { chunk: string; reason: string } | undefined;
    let lastErr: unknown;
    const head = Buffer.allocUnsafe(ENTRY_HEAD_SIZE);
    const expected = Buffer.allocUnsafe(ENTRY_HEAD_SIZE);
    for (let attempt = 0; attempt < 2 && next <= g.last; attempt++) {
      const start = offsetOf[next]! - ENTRY_HEAD_SIZE;
      let body: PieceReader;
      try {
        stats.requests++;
        stats.rangeRequests++;
        body = await openPieces(storage, key, { start, end: g.end });
        opts.access?.record('pack', key.slice(PACKS_PREFIX.length, -'.pack'.length));
      } catch (err) {
        const what = getFailure(err, g, key, attempt);
        if (what.kind === 'relocate') return streamRefetch(next, g.last, what.why, onChunk, what.frozen, alloc);
        if (what.kind === 'past-end') problem = { chunk: manifest.idAt(g.last), reason: 'lies past the end of the pack' };
        if (what.kind === 'past-end' || what.kind === 'again') continue;
        throw err;
      }
      problem = undefined;
      lastErr = undefined;
      // the byte of the pack the next piece starts at; chunk i's entry: head, then its body
      let pos = start;
      let i = next;
      let plain = alloc(storedOf[i]!);
      let live = true;
      /** Takes in piece[at..]; a promise when it has to wait (a zstd chunk decoding), then goes on by itself. */
      const take = (piece: Buffer, at: number): Promise<void> | undefined => {
        while (live && at < piece.length && i <= g.last && problem === undefined) {
          const headAt = offsetOf[i]! - ENTRY_HEAD_SIZE;
          const bodyAt = offsetOf[i]!;
          if (pos < headAt) {
            const skip = Math.min(headAt - pos, piece.length - at); // a gap read through
            at += skip;
            pos += skip;
            continue;
          }
          if (pos < bodyAt) {
            const n = Math.min(bodyAt - pos, piece.length - at);
            piece.copy(head, pos - headAt, at, at + n);
            at += n;
            pos += n;
            continue;
          }
          const stored = storedOf[i]!;
          const n = Math.min(bodyAt + stored - pos, piece.length - at);
          piece.copy(plain, pos - bodyAt, at, at + n);
          at += n;
          pos += n;
          if (pos < bodyAt + stored) continue;
          // chunk i is whole: its head, decoded, its id
          const idRaw = manifest.idRawAt(i);
          encodeEntryHead({ idRaw, codec: codecOf[i]!, rawLength: manifest.lengthAt(i), storedLength: stored }, expected, 0);
          if (!head.equals(expected)) problem = { chunk: idRaw.toString('hex'), reason: 'has an entry head that does not match the pack index' };
          else if (codecOf[i] === CODEC_NONE) {
            const wait = handOver(plain);
            if (wait !== undefined) {
              const rest = at;
              return wait.then(() => take(piece, rest));
            }
          } else if (codecOf[i] === CODEC_ZSTD) {
            const rest = at;
            return decompress(plain).then(
              (out) => {
                const wait = handOver(out);
                return wait === undefined ? take(piece, rest) : wait.then(() => take(piece, rest));
              },
              () => {
                problem = { chunk: idRaw.toString('hex'), reason: 'has zstd data that does not decode' };
              },
            );
          } else problem = { chunk: idRaw.toString('hex'), reason: `has unknown codec ${codecOf[i]}` };
        }
        return undefined;
      };
      /** Chunk i decoded: checked against its id, then handed over; a promise when the taker asks to wait. */
      const handOver = (out: Buffer): Promise<void> | undefined => {
        if (!live) return undefined; // this GET was given up (an error while a chunk decoded)
        const idRaw = manifest.idRawAt(i);
        if (out.length !== manifest.lengthAt(i) || !hashBytes(out).equals(idRaw)) {
          problem = { chunk: idRaw.toString('hex'), reason: 'does not match its id' };
          return undefined;
        }
        const wait = onChunk(i, out);
        next = ++i;
        if (i <= g.last) plain = alloc(storedOf[i]!);
        return wait instanceof Promise ? wait : undefined;
      };
      // the body's pieces, each copied out before the next comes (openPieces: the storage
      // may read them into buffers it uses again); reading waits while a zstd chunk decodes
      try {
        await body.pipe((piece) => {
          if (!live) return false;
          stats.rangeBytes += piece.length;
          const wait = take(piece, 0);
          if (wait === undefined) return problem === undefined && i <= g.last;
          return wait.then(() => problem === undefined && i <= g.last);
        });
      } catch (err) {
        lastErr = err; // cut off mid-body: asked once more from the chunk it stopped in
      } finally {
        live = false;
        body.cancel();
      }
      if (problem === undefined && lastErr === undefined && next <= g.last) problem = { chunk: manifest.idAt(next), reason: 'is cut short (the pack ends early)' };
      if (problem !== undefined && g.loc.fromTable) return streamRefetch(next, g.last, `${key}: chunk ${problem.chunk} ${problem.reason}`, onChunk, undefined, alloc);
    }
    if (next > g.last) return;
    if (problem === undefined && lastErr !== undefined) throw lastErr;
    throw new RemoteChunkCorruptError(where, key, problem!.chunk, problem!.reason);
  };

  /** Chunks [g.first, g.last] again, located through the pack indexes (see relocate), in groups of their own. */
  const refetch = async (g: Group, why: string, frozen?: { err: StorageError; key: string }): Promise<Buffer[]> => {
    await relocate(why);
    const out: Buffer[] = [];
    for (let i = g.first; i <= g.last; ) {
      const h = groupFrom(i, g.last);
      // no other copy than the frozen one: said at once, not asked again
      if (frozen !== undefined && h.loc.packKeys[h.pack] === frozen.key) throw frozen.err;
      out.push(...(await fetchGroup(h)));
      i = h.last + 1;
    }
    return out;
  };

  /** streamGroup's refetch: chunks [first, last] located again through the pack indexes, streamed in groups of their own. */
  const streamRefetch = async (first: number, last: number, why: string, onChunk: (i: number, plain: Buffer) => void | Promise<void>, frozen?: { err: StorageError; key: string }, alloc?: (n: number) => Buffer): Promise<void> => {
    await relocate(why);
    for (let i = first; i <= last; ) {
      const h = groupFrom(i, last);
      if (frozen !== undefined && h.loc.packKeys[h.pack] === frozen.key) throw frozen.err;
      await streamGroup(h, onChunk, alloc);
      i = h.last + 1;
    }
  };

  // decoded chunks for read(): Map order is insertion order, so the first key is the oldest
  const cache = new Map<number, Buffer>();
  let cached = 0;
  const remember = (i: number, b: Buffer): void => {
    if (b.length > cacheLimit) return;
    cache.delete(i);
    cache.set(i, b);
    cached += b.length;
    while (cached > cacheLimit) {
      const [k, v] = cache.entries().next().value as [number, Buffer];
      cache.delete(k);
      cached -= v.length;
    }
  };
  const chunkForRead = async (i: number, limit: number): Promise<Buffer> => {
    const hit = cache.get(i);
    if (hit) return hit;
    const g = groupFrom(i, limit);
    const got = await fetchGroup(g);
    for (let k = 0; k < got.length; k++) remember(g.first + k, got[k]!);
    return got[0]!;
  };

  const size = manifest.header.size;
  let closed = false;
  const checkRange = (offset: number, length: number): void => {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) throw new RangeError(`invalid read range ${offset}+${length}`);
    if (closed) throw new Error('the remote file reader is closed');
  };

  /** An early reader's reads past the verified entries wait for the rest of the manifest. */
  const needUpTo = async (endByte: number): Promise<void> => {
    if (filled < n && endByte > starts[filled]!) await whole();
  };

  return {
    manifestId,
    header: manifest.header,
    manifestBytes: bytes,
    manifest,
    get manifestVerifiedBytes() {
      return verified;
    },
    whole,
    size,
    stats,
    async read(offset, length) {
      checkRange(offset, length);
      const end = Math.min(size, offset + length);
      if (end <= offset) return Buffer.alloc(0);
      await needUpTo(end);
      const out = Buffer.allocUnsafe(end - offset);
      const lastChunk = chunkAt(end - 1);
      let pos = offset;
      while (pos < end) {
        const i = chunkAt(pos);
        const plain = await chunkForRead(i, lastChunk);
        const from = pos - starts[i]!;
        const take = Math.min(plain.length - from, end - pos);
        plain.copy(out, pos - offset, from, from + take);
        pos += take;
      }
      return out;
    },
    async *stream(start, end) {
      checkRange(start, Math.max(0, end - start));
      end = Math.min(end, size);
      if (end <= start) return;
      await needUpTo(end);
      const lastChunk = chunkAt(end - 1);
      let nextFirst = chunkAt(start);
      const fetchNext = (): { g: Group; p: Promise<Buffer[]> } | undefined => {
        if (nextFirst > lastChunk) return undefined;
        const g = groupFrom(nextFirst, lastChunk);
        nextFirst = g.last + 1;
        const p = fetchGroup(g);
        p.catch(() => {}); // awaited below; not an unhandled rejection if the caller stops first
        return { g, p };
      };
      let current = fetchNext();
      while (current !== undefined) {
        const ahead = fetchNext(); // one GET ahead while this one is consumed
        const chunks = await current.p;
        for (let k = 0; k < chunks.length; k++) {
          const i = current.g.first + k;
          const s = Math.max(start, starts[i]!);
          const e = Math.min(end, starts[i + 1]!);
          const c = chunks[k]!;
          yield s - starts[i]! === 0 && e - s === c.length ? c : c.subarray(s - starts[i]!, e - starts[i]!);
        }
        current = ahead;
      }
    },
    async fetchChunks(first, last, onChunk, alloc) {
      if (closed) throw new Error('the remote file reader is closed');
      if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || first < 0 || last >= n) throw new RangeError(`invalid chunk range ${first}..${last}`);
      if (last >= filled) await whole();
      // two GETs in flight at most; each hands its chunks over as they verify. Groups are
      // planned as they start, from the locations as they are then (after a relocate too)
      let nextFirst = first;
      let failed = false;
      const worker = async (): Promise<void> => {
        try {
          while (nextFirst <= last && !failed) {
            const g = groupFrom(nextFirst, last);
            nextFirst = g.last + 1;
            await streamGroup(g, onChunk, alloc);
          }
        } catch (err) {
          failed = true;
          throw err;
        }
      };
      await Promise.all([worker(), worker()]);
    },
    async close() {
      closed = true;
      cache.clear();
      cached = 0;
    },
  };
}

/**
 * An early reader's manifest (RemoteFileReaderOptions.early): its first 4 MiB (one ranged
 * GET, beside the location table's). A manifest that fits is whole and verified by the
 * caller. A bigger one is verified through the leaves the location table carries (version
 * 2): they must combine to the manifest id, and the first 4 MiB, hashed alone, must give the
 * first of them; then `verified` is 4 MiB and the buffer has room for the rest (whole()
 * fetches it). Without usable leaves (no table, version 1, no native tree hasher, leaves
 * that do not check), the rest is fetched now and the caller verifies the whole.
 */
async function earlyManifest(get: (range?: { start: number; end: number }) => Promise<Buffer>, idRaw: Buffer, table: Promise<Buffer | null>): Promise<{ bytes: Buffer; verified: number }> {
  const head = await get({ start: 0, end: LEAF_SIZE - 1 });
  if (head.length < LEAF_SIZE) return { bytes: head, verified: head.length }; // all of it
  // its length, from its header (not trusted: a header that lies fails the checks below)
  let total = -1;
  const headerLen = head.readUInt32LE(12);
  if (head.subarray(0, 8).equals(MANIFEST_MAGIC) && 16 + headerLen <= LEAF_SIZE) {
    try {
      const count = (JSON.parse(head.toString('utf8', 16, 16 + headerLen)) as { chunkCount?: unknown }).chunkCount;
      if (Number.isSafeInteger(count) && (count as number) >= 0) total = 16 + headerLen + (count as number) * CHUNK_ENTRY_SIZE;
    } catch {
      // not JSON: fetched whole below, and refused by the caller's check
    }
  }
  if (total === LEAF_SIZE) return { bytes: head, verified: head.length };
  const t = treeCv();
  if (total > LEAF_SIZE && t !== null) {
    let leaves: Buffer | null = null;
    const tableBytes = await table;
    try {
      leaves = tableBytes === null ? null : locationTableLeaves(tableBytes, idRaw);
    } catch (err) {
      if (!(err instanceof LocationTableError)) throw err;
    }
    if (leaves !== null && leaves.length === leafCount(total) * 32 && t.rootOf(leaves).equals(idRaw) && t.leafCv(head, 0).equals(leaves.subarray(0, 32))) {
      const bytes = Buffer.allocUnsafe(total);
      head.copy(bytes, 0);
      return { bytes, verified: LEAF_SIZE };
    }
  }
  // the rest now (the caller verifies the whole against the id); a header past the first
  // leaf or not readable: the whole again
  if (total <= LEAF_SIZE) {
    const bytes = await get();
    return { bytes, verified: bytes.length };
  }
  const bytes = Buffer.concat([head, await get({ start: LEAF_SIZE, end: total - 1 })]);
  return { bytes, verified: bytes.length };
}

/** The file's location table, or null when the remote has none or it cannot be read now (it is only a hint). */
async function fetchLocationTable(storage: ObjectStorage, manifestId: string, stats: RemoteFileStats): Promise<Buffer | null> {
  try {
    stats.requests++;
    return await storage.getBuffer(locationTableKey(manifestId));
  } catch {
    return null;
  }
}

/** A pack index, from the cache dir or the storage, verified by its name; null when damaged or gone. */
async function loadIndex(storage: ObjectStorage, packId: string, cacheDir: string | undefined, stats: RemoteFileStats): Promise<ReturnType<typeof decodePackIndex> | null> {
  const file = cacheDir === undefined ? undefined : path.join(cacheDir, `${packId}.idx`);
  if (file !== undefined) {
    try {
      const bytes = await readFile(file);
      if (hashHex(bytes) === packId) {
        stats.indexesFromCache++;
        return decodePackIndex(bytes);
      }
    } catch {
      // not cached (or unreadable): download it
    }
  }
  let bytes: Buffer;
  try {
    stats.requests++;
    bytes = await storage.getBuffer(indexKey(packId));
  } catch (err) {
    if (err instanceof StorageError && err.code === 'storage-not-found') return null;
    throw err;
  }
  if (hashHex(bytes) !== packId) return null;
  let entries: ReturnType<typeof decodePackIndex>;
  try {
    entries = decodePackIndex(bytes);
  } catch (err) {
    if (err instanceof PackIndexError) return null;
    throw err;
  }
  stats.indexesDownloaded++;
  if (file !== undefined) {
    try {
      await mkdir(path.dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
      await writeFile(tmp, bytes);
      await rename(tmp, file);
    } catch {
      // a cache only: a full disk or a read-only dir costs a download next time
    }
  }
  return entries;
}
