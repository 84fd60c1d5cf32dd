/**
 * Assembling files from chunks that arrive in any order, as a fetch delivers them, so a
 * clone or checkout that has to download content writes each file once instead of storing
 * the chunks and then reading them all back (see fetch-content.ts `chunkSink`).
 *
 * For each target (a destination and its pointer) a temporary file is opened in the
 * store's tmp/ (same file system as the working tree in the usual layout; where it is not,
 * materializeFile copies it over). Every chunk the fetch verified is written at each offset
 * where the file's manifest places it; zero chunks are skipped (holes). `finish()` writes the chunks that
 * did not come through the fetch (they were already local) from the store, verified as
 * usual, and closes the file. Nothing is renamed here: `materializeFile(..., {prepared})`
 * does that with its usual checks (the path must still hold the pointer Git wrote).
 *
 * Why the result is verified without hashing the whole file again: the manifest is
 * verified against its id (the pointer names it), `loadManifest` checks that the pointer's
 * file id and size are the manifest's, and every chunk written was verified against its
 * id; so the file is exactly the content the pointer names.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Manifest } from '../manifest/manifest.js';
import type { Pointer } from '../manifest/pointer.js';
import type { ChunkStore } from './chunk-store.js';
import { isZero, loadManifest } from './materialize.js';
import { PositionalWriter } from './positional-writer.js';

const RUN_BUFFER_SIZE = 512 * 1024;
/** Fetch concurrency is 8 ranges; a few more runs leave room for stragglers. */
const RUNS_PER_FILE = 12;
/**
 * Files whose runs are being filled at once; the least recently written one beyond this
 * sends its runs to the disk. Bounds memory to about ACTIVE_FILES x RUNS_PER_FILE buffers
 * however many files a checkout writes.
 */
const ACTIVE_FILES = 4;
const SHARED_POOL = 8;
/** Files assembled at once (each holds an open descriptor until finish). */
const MAX_TARGETS = 256;
/**
 * Chunk placements held at once (PlacementIndex: about 30 bytes each, plus the manifests):
 * files beyond this budget take the usual path, so memory stays bounded however large the
 * checkout (1 Mi chunks: about 64 GiB of content at the default 64 KiB average).
 */
const MAX_PLACEMENTS = 1024 * 1024;
/** Chunks of files left to the usual path tracked for `covers` (beyond: every chunk is stored). */
const MAX_UNCOVERED = 64 * 1024;
const TMP_PREFIX = 'assemble-';

/** Removes temp files of assemblers whose process is gone. */
function removeStaleTemps(dir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(TMP_PREFIX)) continue;
    const pid = Number(name.slice(TMP_PREFIX.length).split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') fs.rmSync(path.join(dir, name), { force: true });
    }
  }
}

/**
 * Chunk id -> where it goes in which file, in typed arrays (open addressing on the id's
 * first bytes, a chain per bucket): about 30 bytes a placement, where a Map of strings and
 * objects took 320. Ids are not copied: they are compared with the targets' manifests.
 */
class PlacementIndex {
  private readonly slots: Int32Array;
  private readonly mask: number;
  private readonly next: Int32Array;
  readonly target: Uint16Array;
  readonly index: Uint32Array;
  readonly offset: Float64Array;
  private count = 0;

  constructor(
    capacity: number,
    private readonly idAt: (target: number, index: number) => Buffer,
  ) {
    let size = 16;
    while (size < capacity * 2) size *= 2;
    this.slots = new Int32Array(size);
    this.mask = size - 1;
    this.next = new Int32Array(capacity);
    this.target = new Uint16Array(capacity);
    this.index = new Uint32Array(capacity);
    this.offset = new Float64Array(capacity);
  }

  add(idRaw: Buffer, target: number, index: number, offset: number): void {
    const p = this.count++;
    this.target[p] = target;
    this.index[p] = index;
    this.offset[p] = offset;
    const b = idRaw.readUInt32LE(0) & this.mask;
    this.next[p] = this.slots[b]!;
    this.slots[b] = p + 1;
  }

  /** The placements of this id (numbers for target/index/offset), most recently added first. */
  *find(idRaw: Buffer): Generator<number> {
    for (let q = this.slots[idRaw.readUInt32LE(0) & this.mask]!; q !== 0; q = this.next[q - 1]!) {
      const p = q - 1;
      if (this.idAt(this.target[p]!, this.index[p]!).equals(idRaw)) yield p;
    }
  }

  has(idRaw: Buffer): boolean {
    for (const _ of this.find(idRaw)) return true;
    return false;
  }
}

export interface AssembleTarget {
  /** Absolute destination path (the pointer file in the working tree). */
  dest: string;
  pointer: Pointer;
}

interface OpenTarget {
  dest: string;
  pointer: Pointer;
  manifest: Manifest;
  tmp: string;
  out: PositionalWriter;
  /** chunk indexes written */
  written: Uint8Array;
  failed: unknown;
}

export class FileAssembler {
  private readonly targets: OpenTarget[] = [];
  private readonly placements: PlacementIndex;
  private readonly started = Date.now();
  private readonly pool: Buffer[] = [];
  /** targets with runs being filled, least recently written first */
  private readonly active = new Set<OpenTarget>();
  /** chunks (latin1 keys) that some target left to the usual path needs from the local store */
  private readonly uncovered = new Set<string>();
  /** more such chunks than MAX_UNCOVERED: every chunk is taken as needed by the store */
  private uncoveredOverflow = false;
  private placementCount = 0;
  private finished = false;

  /**
   * Opens a temporary file for each target whose manifest is local (others are skipped:
   * the normal path reports them), the largest MAX_TARGETS of them. A pointer seen twice is
   * assembled once.
   */
  constructor(
    private readonly store: ChunkStore,
    targets: AssembleTarget[],
  ) {
    removeStaleTemps(path.join(store.dir, 'tmp'));
    const seen = new Set<string>();
    // one open temp file per target: the largest MAX_TARGETS files (the rest take the normal path)
    const bySize = [...targets].sort((a, b) => b.pointer.size - a.pointer.size);
    for (const t of bySize) {
      if (t.pointer.size === 0) continue;
      let manifest: Manifest;
      try {
        manifest = loadManifest(store, t.pointer);
      } catch {
        continue;
      }
      const key = `${t.pointer.manifest}:${t.pointer.oid}`;
      if (this.targets.length >= MAX_TARGETS || seen.has(key) || this.placementCount + manifest.chunkCount > MAX_PLACEMENTS) {
        this.leaveToUsualPath(manifest);
        continue;
      }
      seen.add(key);
      // in the store's tmp/, not beside the file: an interrupted fetch leaves nothing in the
      // working tree, and the next assembler removes what a dead process left
      const tmp = path.join(store.dir, 'tmp', `${TMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
      let fd: number;
      try {
        fd = fs.openSync(tmp, 'wx', 0o644);
      } catch {
        this.leaveToUsualPath(manifest);
        continue; // the normal path will meet (and report) the same problem
      }
      // several runs at once: concurrent ranges deliver different parts of a file
      const out = new PositionalWriter(fd, { bufferSize: RUN_BUFFER_SIZE, maxRuns: RUNS_PER_FILE, maxInflight: 4, pool: this.pool, maxPool: SHARED_POOL });
      this.targets.push({ dest: t.dest, pointer: t.pointer, manifest, tmp, out, written: new Uint8Array(manifest.chunkCount), failed: null });
      this.placementCount += manifest.chunkCount;
    }
    this.placements = new PlacementIndex(this.placementCount, (target, index) => this.targets[target]!.manifest.idRawAt(index));
    this.targets.forEach((t, target) => {
      let offset = 0;
      for (let i = 0; i < t.manifest.chunkCount; i++) {
        this.placements.add(t.manifest.idRawAt(i), target, i, offset);
        offset += t.manifest.lengthAt(i);
      }
    });
  }

  get size(): number {
    return this.targets.length;
  }

  /** A file written the usual way (from the local store): its chunks must be stored. */
  private leaveToUsualPath(manifest: Manifest): void {
    if (this.uncoveredOverflow) return;
    if (this.uncovered.size + manifest.chunkCount > MAX_UNCOVERED) {
      this.uncoveredOverflow = true;
      this.uncovered.clear();
      return;
    }
    for (let i = 0; i < manifest.chunkCount; i++) this.uncovered.add(manifest.idRawAt(i).toString('latin1'));
  }

  /** Whether some target still waits for this chunk. */
  needs(idRaw: Buffer): boolean {
    const pl = this.placements;
    for (const p of pl.find(idRaw)) {
      const t = this.targets[pl.target[p]!]!;
      if (!t.failed && !t.written[pl.index[p]!]) return true;
    }
    return false;
  }

  /**
   * Whether every file of this checkout that needs the chunk is assembled here (so the
   * chunk need not be stored locally to write them). False for chunks no target needs.
   */
  covers(idRaw: Buffer): boolean {
    if (this.uncoveredOverflow) return false;
    return this.placements.has(idRaw) && !this.uncovered.has(idRaw.toString('latin1'));
  }

  /**
   * Takes a verified chunk's plain bytes (copied before this returns; the caller may reuse
   * the buffer). Chunks no target needs are ignored. Returns a promise to wait on when the
   * disk is behind (bounded memory), else null.
   */
  put(idRaw: Buffer, plain: Buffer): Promise<void> | null {
    const pl = this.placements;
    let zero: boolean | null = null;
    let wait: Promise<void> | null = null;
    for (const p of pl.find(idRaw)) {
      const t = this.targets[pl.target[p]!]!;
      const index = pl.index[p]!;
      if (t.failed || t.written[index] || plain.length !== t.manifest.lengthAt(index)) continue;
      zero ??= isZero(plain);
      try {
        if (!zero) {
          t.out.write(plain, pl.offset[p]!);
          this.touch(t);
        }
        t.written[index] = 1;
        wait ??= t.out.backpressure();
      } catch (err) {
        t.failed = err;
      }
    }
    return wait;
  }

  private touch(t: OpenTarget): void {
    this.active.delete(t);
    this.active.add(t);
    if (this.active.size <= ACTIVE_FILES) return;
    const oldest = this.active.values().next().value!;
    this.active.delete(oldest);
    oldest.out.submitAll();
  }

  /**
   * Completes every file from the local store and closes it. Returns the prepared temp
   * file per destination; files that could not be completed are removed and left out.
   */
  async finish(): Promise<Map<string, { tmp: string; pointer: Pointer }>> {
    this.finished = true;
    const out = new Map<string, { tmp: string; pointer: Pointer }>();
    const stamp = new Date(this.started - 1000); // see materializeFile: git must not re-read it
    for (const t of this.targets) {
      try {
        if (t.failed) throw t.failed;
        let offset = 0;
        for (let i = 0; i < t.manifest.chunkCount; offset += t.manifest.lengthAt(i), i++) {
          if (t.written[i]) continue;
          const data = await this.store.getChunk(t.manifest.idRawAt(i));
          if (!isZero(data)) t.out.write(data, offset);
          t.written[i] = 1;
          const wait = t.out.backpressure();
          if (wait) await wait;
        }
        await t.out.drain();
        fs.ftruncateSync(t.out.fd, t.pointer.size);
        fs.futimesSync(t.out.fd, stamp, stamp);
        t.out.close();
        out.set(t.dest, { tmp: t.tmp, pointer: t.pointer });
      } catch {
        await t.out.drain().catch(() => {});
        t.out.close();
        fs.rmSync(t.tmp, { force: true });
      }
    }
    return out;
  }

  /**
   * Abandons the assembly (a failed fetch): closes and removes every temp file. After
   * finish() the files it handed out belong to the caller, and this does nothing.
   */
  dispose(): void {
    if (this.finished) return;
    this.finished = true;
    for (const t of this.targets) {
      t.out.close(); // once its writes are done
      fs.rmSync(t.tmp, { force: true });
    }
  }
}
