/**
 * Delayed smudge: Git's delayed checkout (gitattributes(5), "Delay") used to read small
 * files' content ahead. Git writes a filtered file only after the filter answered it, and
 * the filter waits while Git writes: one after the other, each on one core. When Git allows
 * it (`can-delay=1`: checkout, reset, clone, `checkout -- paths`), smudge answers "delayed"
 * at once and the content is read and verified here, in the background, while Git goes on;
 * Git then asks which paths are ready (`list_available_blobs`) and asks for each again, and
 * the answer is bytes already in memory, while the next files are read as Git writes them.
 *
 * Nothing changes in what Git writes or how: Git still writes every file and records it in
 * its index itself. A content that fails to read (missing, corrupt) is listed all the same,
 * and when Git asks again the ordinary smudge runs (it leaves the pointer, as without delay).
 * Memory: what is read and not yet asked for again stays under `budgetBytes` (one file at
 * least), and the buffers kept for reuse under as much again, so it does not grow with the
 * number or size of files.
 */
import type { Pointer } from '../manifest/pointer.js';
import type { ChunkStore } from '../store/chunk-store.js';
import { loadManifest, readContent, type BufferLender } from '../store/materialize.js';

interface Job {
  path: string;
  pointer: Pointer;
  /** the pointer as Git sent it */
  bytes: Buffer;
  /** the blob id Git named (meta "blob"): Git's second request must name the same */
  blob: string | undefined;
  /** bytes held while it is read or waits for Git (the content and a read's slack) */
  cost: number;
  pieces?: Buffer[];
  /** the buffers the pieces are views of */
  buffers: Buffer[];
  failed?: boolean;
}

export interface DelayedSmudgeOptions {
  /** Content read ahead and not yet taken, at most (bytes; one file is always allowed). */
  budgetBytes: number;
  /** Files read at once. */
  concurrency: number;
  /** Smaller files are not delayed (dits.smudgeDelayMin: a delay costs Git a request more per file). */
  minSize: number;
}

export class DelayedSmudge {
  private readonly waiting: Job[] = [];
  private readonly ready: Job[] = [];
  /** listed to Git, by path, until Git asks for it again */
  private readonly listed = new Map<string, Job>();
  private held = 0;
  private reading = 0;
  private wake: (() => void) | null = null;
  /** buffers given back once Git had their bytes, lent again (fresh memory costs a page fault per 4 KiB) */
  private readonly spare: Buffer[] = [];
  private spareBytes = 0;

  constructor(
    private readonly store: () => ChunkStore,
    private readonly opts: DelayedSmudgeOptions,
  ) {}

  /** Whether to delay this pointer's file, when Git allows it. */
  wants(pointer: Pointer): boolean {
    return pointer.size >= this.opts.minSize;
  }

  /** Takes a path Git let smudge delay; its content is read in the background. */
  delay(path: string, blob: string | undefined, pointer: Pointer, bytes: Buffer): void {
    this.waiting.push({ path, blob, pointer, bytes: Buffer.from(bytes), cost: pointer.size + 64 * 1024, buffers: [] });
    this.pump();
  }

  /** Paths ready since the last call (waits for one); none once every delayed path was listed. */
  async available(): Promise<string[]> {
    this.pump();
    while (this.ready.length === 0 && (this.reading > 0 || this.waiting.length > 0)) {
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    const out = this.ready.splice(0);
    for (const job of out) this.listed.set(job.path, job);
    return out.map((j) => j.path);
  }

  /**
   * Git asks again for a path listed ready, with empty content (as the protocol has it): the
   * pointer it delayed, and the content read (the caller's now), or null if the read failed
   * (the ordinary smudge of the pointer then answers). Null for a path not listed, or listed
   * for another blob (the listing is dropped either way).
   */
  take(path: string, blob: string | undefined): { pointer: Pointer; bytes: Buffer; pieces: AsyncGenerator<Buffer> | null } | null {
    const job = this.listed.get(path);
    if (!job) return null;
    this.listed.delete(path);
    this.held -= job.cost;
    this.pump();
    if (job.blob !== blob) {
      this.giveBack(job.buffers);
      return null;
    }
    if (job.failed || !job.pieces) {
      this.giveBack(job.buffers);
      return { pointer: job.pointer, bytes: job.bytes, pieces: null };
    }
    return { pointer: job.pointer, bytes: job.bytes, pieces: this.handOut(job.pieces, job.buffers) };
  }

  /** The pieces, one by one; their buffers are lent again once the last was taken (or the consumer stopped). */
  private async *handOut(pieces: Buffer[], buffers: Buffer[]): AsyncGenerator<Buffer> {
    try {
      yield* pieces;
    } finally {
      this.giveBack(buffers);
    }
  }

  private giveBack(buffers: Buffer[]): void {
    for (const b of buffers.splice(0)) {
      if (this.spareBytes + b.length > this.opts.budgetBytes) return;
      this.spare.push(b);
      this.spareBytes += b.length;
    }
  }

  private lend(job: Job, size: number): Buffer {
    const i = this.spare.findIndex((b) => b.length >= size);
    let b: Buffer;
    if (i >= 0) {
      b = this.spare.splice(i, 1)[0]!;
      this.spareBytes -= b.length;
    } else b = Buffer.allocUnsafeSlow(size);
    job.buffers.push(b);
    return b;
  }

  /** Stops reading ahead; resolves once no read is in flight (the store may be closed then). */
  async close(): Promise<void> {
    this.waiting.length = 0;
    while (this.reading > 0) await new Promise<void>((resolve) => (this.wake = resolve));
  }

  private pump(): void {
    while (this.reading < this.opts.concurrency && this.waiting.length > 0) {
      const job = this.waiting[0]!;
      if (this.held > 0 && this.held + job.cost > this.opts.budgetBytes) return;
      this.waiting.shift();
      this.held += job.cost;
      this.reading++;
      void this.read(job).finally(() => {
        this.reading--;
        this.ready.push(job);
        const wake = this.wake;
        this.wake = null;
        wake?.();
        this.pump();
      });
    }
  }

  private async read(job: Job): Promise<void> {
    try {
      const store = this.store();
      const pieces: Buffer[] = [];
      // each read into a buffer of its own (pieces are views of them, kept until Git asks)
      const lender: BufferLender = { lend: (size) => this.lend(job, size) };
      // readContent verifies every chunk and that their lengths add up to the file's size
      for await (const piece of readContent(store, loadManifest(store, job.pointer), lender)) pieces.push(piece);
      job.pieces = pieces;
    } catch {
      job.failed = true; // the ordinary smudge runs again when Git asks, and says why
    }
  }
}
