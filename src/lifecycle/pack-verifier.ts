/**
 * A pack checked against its index as it streams (`v1/packs/<id>.pack`, format in
 * src/store/pack-format.ts): the header, then per entry its 41-byte head (must match the
 * index: id, codec, lengths, offset) and its stored bytes (decoded and hashed to the id).
 *
 * Each unit (the header, or one entry) is passed on only once it has verified, so a
 * consumer never receives a byte of a bad entry: an upload fed by this stream fails before
 * its last byte, and the storage's atomic put keeps whatever the key held before. Memory:
 * one entry (at most the chunker's largest chunk) plus what the source has in flight.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { DitsUserError } from '../errors.js';
import { CODEC_NONE, ENTRY_HEAD_SIZE, PACK_HEADER_SIZE, PACK_MAGIC, PACK_VERSION } from '../store/pack-format.js';
import { StreamHasher } from '../hashing/blake3.js';
import { checkStoredChunk } from '../remote/content/chunk-verify.js';
import type { PackIndexEntry } from '../remote/content/pack-index.js';

/** A pack (or its index) whose bytes do not verify: never copied, never retried. */
export class PackCorruptError extends DitsUserError {
  readonly key: string;
  constructor(key: string, reason: string) {
    super('pack-corrupt', `${key} is corrupt: ${reason}`, { hint: 'replace it from a good copy: `git dits fsck --remote <name> --repair-from <other>`' });
    this.name = 'PackCorruptError';
    this.key = key;
  }
}

/** The size a pack must have for its index: its last entry's end, or the bare header. */
export function packSizeOf(entries: readonly PackIndexEntry[]): number {
  const last = entries[entries.length - 1];
  return last ? last.offset + last.storedLength : PACK_HEADER_SIZE;
}

/** The first `n` bytes of `pieces` (copied only when they span pieces). */
function headOf(pieces: Buffer[], n: number): Buffer {
  if (pieces[0]!.length >= n) return pieces[0]!.subarray(0, n);
  return Buffer.concat(pieces, n).subarray(0, n);
}

export class PackVerifier extends Transform {
  private parts: Buffer[] = [];
  private have = 0;
  /** bytes of the pack passed on so far */
  private pos = 0;
  /** next unit: -1 the header, else the entry index */
  private unit = -1;
  readonly expectedSize: number;
  /** Chunks verified so far. */
  chunks = 0;
  /** Set when the stream failed verification (a caller tells corruption from a network fault). */
  failure: PackCorruptError | null = null;

  constructor(
    private readonly key: string,
    private readonly entries: readonly PackIndexEntry[],
  ) {
    super();
    this.expectedSize = packSizeOf(entries);
  }

  private fail(reason: string): PackCorruptError {
    this.failure = new PackCorruptError(this.key, reason);
    return this.failure;
  }

  /** Bytes the next unit needs, or 0 when every unit has passed. */
  private need(): number {
    if (this.unit < 0) return PACK_HEADER_SIZE;
    const e = this.entries[this.unit];
    return e ? ENTRY_HEAD_SIZE + e.storedLength : 0;
  }

  /** The next `n` bytes as the pieces they arrived in (no copy). */
  private takeUnit(n: number): Buffer[] {
    const out: Buffer[] = [];
    let want = n;
    while (want > 0) {
      const first = this.parts[0]!;
      if (first.length <= want) {
        out.push(first);
        this.parts.shift();
        want -= first.length;
      } else {
        out.push(first.subarray(0, want));
        this.parts[0] = first.subarray(want);
        want = 0;
      }
    }
    this.have -= n;
    return out;
  }

  private async checkUnit(pieces: Buffer[], n: number): Promise<string | null> {
    const head = headOf(pieces, this.unit < 0 ? PACK_HEADER_SIZE : ENTRY_HEAD_SIZE);
    if (this.unit < 0) {
      if (!head.subarray(0, 8).equals(PACK_MAGIC) || head.readUInt32LE(8) !== PACK_VERSION) return 'not a dits pack (bad header)';
      return null;
    }
    const e = this.entries[this.unit]!;
    const at = `entry ${this.unit}`;
    if (e.offset !== this.pos + ENTRY_HEAD_SIZE) return `${at}: the index puts it at ${e.offset}, the pack at ${this.pos + ENTRY_HEAD_SIZE}`;
    if (!head.subarray(0, 32).equals(e.idRaw)) return `${at}: its head names another chunk than the index`;
    if (head[32] !== e.codec || head.readUInt32LE(33) !== e.rawLength || head.readUInt32LE(37) !== e.storedLength) return `${at}: its head disagrees with the index`;
    let why: string | null;
    if (e.codec === CODEC_NONE) {
      // plain bytes: hashed piece by piece, as they arrived (no copy)
      if (e.rawLength !== e.storedLength) why = `decoded length ${e.storedLength} is not ${e.rawLength}`;
      else {
        const h = new StreamHasher();
        let skip = ENTRY_HEAD_SIZE;
        for (const p of pieces) {
          if (skip >= p.length) {
            skip -= p.length;
            continue;
          }
          h.update(skip ? p.subarray(skip) : p);
          skip = 0;
        }
        why = h.digestHex() === e.idRaw.toString('hex') ? null : 'its bytes do not match its id';
      }
    } else why = await checkStoredChunk(e.idRaw, e.codec, e.rawLength, Buffer.concat(pieces, n).subarray(ENTRY_HEAD_SIZE));
    return why ? `chunk ${e.idRaw.toString('hex')}: ${why}` : null;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.parts.push(chunk);
    this.have += chunk.length;
    void this.drain().then(() => done(), (err: unknown) => done(err as Error));
  }

  private async drain(): Promise<void> {
    for (;;) {
      const n = this.need();
      if (n === 0) {
        if (this.have > 0) throw this.fail(`longer than its index says (${this.expectedSize} bytes)`);
        return;
      }
      if (this.have < n) return;
      const pieces = this.takeUnit(n);
      const why = await this.checkUnit(pieces, n);
      if (why) throw this.fail(why);
      if (this.unit >= 0) this.chunks++;
      this.unit++;
      this.pos += n;
      for (const p of pieces) this.push(p);
    }
  }

  override _flush(done: TransformCallback): void {
    if (this.need() !== 0 || this.have > 0) done(this.fail(`shorter than its index says (${this.pos + this.have} of ${this.expectedSize} bytes)`));
    else done();
  }
}
