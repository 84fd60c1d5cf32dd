/**
 * Git's pkt-line framing (gitprotocol-common, "pkt-line Format"):
 *
 *   pkt-line     = data-pkt / flush-pkt / delim-pkt / response-end-pkt
 *   data-pkt     = pkt-len pkt-payload      ; pkt-len: 4 hex digits, includes itself
 *   flush-pkt    = "0000"
 *   delim-pkt    = "0001"
 *   response-end = "0002"
 *
 * A payload is at most 65516 bytes (LARGE_PACKET_DATA_MAX). The reader pulls from any
 * async iterable of buffers (a pipe), so it can be tested by feeding bytes.
 */
export const MAX_PACKET_DATA = 65516;
export const FLUSH = Symbol('flush');
export const DELIM = Symbol('delim');
export type Packet = Buffer | typeof FLUSH | typeof DELIM;

import { copyBytes } from '../native-addon.js';

export class PktLineError extends Error {
  readonly code = 'pkt-line';
}

export class PacketReader {
  private readonly source: AsyncIterator<Buffer>;
  /** Unread input, as received (not concatenated: content passes through without copies). */
  private queue: Buffer[] = [];
  private queued = 0;
  private ended = false;

  constructor(source: AsyncIterable<Buffer>) {
    this.source = source[Symbol.asyncIterator]();
  }

  /** Ensure at least n bytes are queued; false at a clean end of input. */
  private async fill(n: number): Promise<boolean> {
    while (this.queued < n) {
      if (this.ended) return false;
      const next = await this.source.next();
      if (next.done) {
        this.ended = true;
        return false;
      }
      if (next.value.length) {
        this.queue.push(next.value);
        this.queued += next.value.length;
      }
    }
    return true;
  }

  /** Takes n queued bytes as one buffer (copies only when they span inputs). */
  private take(n: number): Buffer {
    const first = this.queue[0]!;
    if (first.length >= n) {
      this.consume(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let done = 0;
    while (done < n) {
      const head = this.queue[0]!;
      const k = Math.min(head.length, n - done);
      head.copy(out, done, 0, k);
      done += k;
      this.consume(k);
    }
    return out;
  }

  private consume(n: number): void {
    this.queued -= n;
    while (n > 0) {
      const head = this.queue[0]!;
      if (head.length <= n) {
        this.queue.shift();
        n -= head.length;
      } else {
        this.queue[0] = head.subarray(n);
        n = 0;
      }
    }
  }

  /** The length of the next packet (0 flush, 1 delim), or null at a clean end of input. */
  private async readLength(): Promise<number | null> {
    if (this.queued < 4 && !(await this.fill(4))) {
      if (this.queued === 0) return null;
      throw new PktLineError('input ended inside a packet length');
    }
    return this.parseLength(this.take(4));
  }

  /** A packet's 4 hex digits of length (0 flush, 1 delim). */
  private parseLength(head: Buffer): number {
    const lenText = head.toString('latin1');
    if (!/^[0-9a-f]{4}$/i.test(lenText)) throw new PktLineError(`bad pkt-line length ${JSON.stringify(lenText)}`);
    const len = Number.parseInt(lenText, 16);
    if (len === 2 || len === 3) throw new PktLineError(`unsupported pkt-line ${lenText}`);
    return len;
  }

  /** The next packet, or null at end of input between packets. */
  async read(): Promise<Packet | null> {
    const len = await this.readLength();
    if (len === null) return null;
    if (len === 0) return FLUSH;
    if (len === 1) return DELIM;
    if (!(await this.fill(len - 4))) throw new PktLineError('input ended inside a packet');
    return this.take(len - 4);
  }

  /** A text packet without its trailing LF, or FLUSH. */
  async readText(): Promise<string | typeof FLUSH | typeof DELIM | null> {
    const p = await this.read();
    if (p === null || p === FLUSH || p === DELIM) return p;
    const s = p.toString('utf8');
    return s.endsWith('\n') ? s.slice(0, -1) : s;
  }

  /** key=value lines up to a flush. */
  async readKeyValues(): Promise<Map<string, string> | null> {
    const out = new Map<string, string>();
    for (;;) {
      const line = await this.readText();
      if (line === null) {
        if (out.size === 0) return null;
        throw new PktLineError('input ended inside a key=value list');
      }
      if (line === FLUSH) return out;
      if (line === DELIM) continue;
      const eq = line.indexOf('=');
      if (eq < 0) throw new PktLineError(`expected key=value, got ${JSON.stringify(line)}`);
      out.set(line.slice(0, eq), line.slice(eq + 1));
    }
  }

  /** Payload bytes of the current content packet not delivered yet. */
  private left = 0;
  /** The flush that ends the current content has been read. */
  private contentEnded = true;

  /** Starts reading content: data packets up to a flush (readContentPiece, readContentInto, readUntilFlush). */
  beginContent(): void {
    this.left = 0;
    this.contentEnded = false;
  }

  /** Whether the current content has been read up to its flush. */
  get contentDone(): boolean {
    return this.contentEnded;
  }

  /**
   * The next piece of content, at most `max` bytes, as a view of the input (no copy); null
   * once the flush is reached. A packet split across reads comes as several pieces.
   */
  async readContentPiece(max = Number.POSITIVE_INFINITY): Promise<Buffer | null> {
    if (this.contentEnded) return null;
    while (this.left === 0) {
      const len = await this.readLength();
      if (len === null) throw new PktLineError('input ended before the flush that ends the content');
      if (len === 0) {
        this.contentEnded = true;
        return null;
      }
      if (len === 1) continue;
      this.left = len - 4;
    }
    if (this.queued === 0 && !(await this.fill(1))) throw new PktLineError('input ended inside a packet');
    const head = this.queue[0]!;
    const k = Math.min(head.length, this.left, max);
    const piece = head.subarray(0, k);
    this.consume(k);
    this.left -= k;
    return piece;
  }

  /** Copies the next content bytes into `buf`; returns how many (0 once the flush is reached). */
  async readContentInto(buf: Buffer): Promise<number> {
    let n = 0;
    while (n < buf.length && !this.contentEnded) {
      // whole packets already queued are copied without a promise each (16k packets a GiB)
      if (this.left === 0 && this.queued >= 4) {
        const len = this.parseLength(this.take(4));
        if (len === 0) {
          this.contentEnded = true;
          break;
        }
        if (len !== 1) this.left = len - 4;
        continue;
      }
      if (this.left > 0 && this.queued > 0) {
        const head = this.queue[0]!;
        const k = Math.min(head.length, this.left, buf.length - n);
        copyBytes(head.subarray(0, k), buf, n);
        this.consume(k);
        this.left -= k;
        n += k;
        continue;
      }
      const piece = await this.readContentPiece(buf.length - n); // waits for input
      if (piece === null) break;
      copyBytes(piece, buf, n);
      n += piece.length;
    }
    return n;
  }

  /**
   * The payload of data packets up to a flush, as pieces of the input (no copies). A piece
   * is a view of the input: valid as long as the input's buffers are (see the source's
   * contract; FdReader's stay valid for megabytes more of reading).
   */
  async *readUntilFlush(): AsyncGenerator<Buffer> {
    this.beginContent();
    for (let p = await this.readContentPiece(); p !== null; p = await this.readContentPiece()) yield p;
  }
}

export function encodePacket(payload: Buffer | string): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  if (data.length > MAX_PACKET_DATA) throw new PktLineError(`packet payload of ${data.length} bytes exceeds ${MAX_PACKET_DATA}`);
  const head = Buffer.from((data.length + 4).toString(16).padStart(4, '0'), 'latin1');
  return Buffer.concat([head, data]);
}

export const FLUSH_PACKET = Buffer.from('0000', 'latin1');

export function encodeTextPacket(line: string): Buffer {
  return encodePacket(line + '\n');
}
