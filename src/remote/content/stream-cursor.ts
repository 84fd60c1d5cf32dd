/**
 * Reads exact byte counts from a stream in order, holding only what the current read
 * needs. `read(n)` returns n bytes, or fewer if the stream ended first. The result is a view
 * valid only until the next read (a read spanning stream pieces is assembled in one reused
 * scratch buffer, so a gigabyte fetched does not become a gigabyte of short-lived buffers).
 */
import type { Readable } from 'node:stream';

export class StreamCursor {
  private readonly it: AsyncIterator<Buffer | string>;
  private parts: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private scratch = Buffer.alloc(0);
  /** bytes consumed so far */
  position = 0;

  constructor(stream: Readable) {
    this.it = stream[Symbol.asyncIterator]();
  }

  private async fill(n: number): Promise<void> {
    while (this.buffered < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) {
        this.ended = true;
        break;
      }
      const b = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
      if (b.length === 0) continue;
      this.parts.push(b);
      this.buffered += b.length;
    }
  }

  async read(n: number): Promise<Buffer> {
    await this.fill(n);
    const take = Math.min(n, this.buffered);
    let out: Buffer;
    if (this.parts.length > 0 && this.parts[0]!.length >= take) {
      out = this.parts[0]!.subarray(0, take);
      this.parts[0] = this.parts[0]!.subarray(take);
      if (this.parts[0]!.length === 0) this.parts.shift();
    } else {
      if (this.scratch.length < take) this.scratch = Buffer.allocUnsafe(Math.max(take, this.scratch.length * 2));
      out = this.scratch.subarray(0, take);
      let at = 0;
      while (at < take) {
        const p = this.parts[0]!;
        const n = Math.min(p.length, take - at);
        p.copy(out, at, 0, n);
        at += n;
        if (n === p.length) this.parts.shift();
        else this.parts[0] = p.subarray(n);
      }
    }
    this.buffered -= take;
    this.position += take;
    return out;
  }

  /** Skips n bytes; returns how many were skipped. */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      const got = await this.read(Math.min(left, 1 << 20));
      if (got.length === 0) break;
      left -= got.length;
    }
    return n - left;
  }

  /** Stops reading (the stream is destroyed by the caller's owner). */
  async close(): Promise<void> {
    await this.it.return?.();
  }
}
