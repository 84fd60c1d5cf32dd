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

export class PktLineError extends Error {
  readonly code = 'pkt-line';
}

export class PacketReader {
  private readonly source: AsyncIterator<Buffer>;
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;

  constructor(source: AsyncIterable<Buffer>) {
    this.source = source[Symbol.asyncIterator]();
  }

  /** Ensure at least n bytes are buffered; false at a clean end of input. */
  private async fill(n: number): Promise<boolean> {
    while (this.buf.length < n) {
      if (this.ended) return false;
      const next = await this.source.next();
      if (next.done) {
        this.ended = true;
        return false;
      }
      this.buf = this.buf.length === 0 ? next.value : Buffer.concat([this.buf, next.value]);
    }
    return true;
  }

  /** The next packet, or null at end of input between packets. */
  async read(): Promise<Packet | null> {
    if (!(await this.fill(4))) {
      if (this.buf.length === 0) return null;
      throw new PktLineError('input ended inside a packet length');
    }
    const lenText = this.buf.toString('latin1', 0, 4);
    const len = Number.parseInt(lenText, 16);
    if (!/^[0-9a-f]{4}$/i.test(lenText) || Number.isNaN(len)) throw new PktLineError(`bad pkt-line length ${JSON.stringify(lenText)}`);
    if (len === 0) {
      this.buf = this.buf.subarray(4);
      return FLUSH;
    }
    if (len === 1) {
      this.buf = this.buf.subarray(4);
      return DELIM;
    }
    if (len < 4) throw new PktLineError(`unsupported pkt-line ${lenText}`);
    if (!(await this.fill(len))) throw new PktLineError('input ended inside a packet');
    const payload = this.buf.subarray(4, len);
    this.buf = this.buf.subarray(len);
    return payload;
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

  /** Data packets up to a flush, as they arrive. */
  async *readUntilFlush(): AsyncGenerator<Buffer> {
    for (;;) {
      const p = await this.read();
      if (p === null) throw new PktLineError('input ended before the flush that ends the content');
      if (p === FLUSH) return;
      if (p === DELIM) continue;
      yield p;
    }
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

/** Split arbitrary bytes into data packets (no flush). */
export function* encodeData(data: Buffer): Generator<Buffer> {
  for (let i = 0; i < data.length; i += MAX_PACKET_DATA) {
    yield encodePacket(data.subarray(i, Math.min(i + MAX_PACKET_DATA, data.length)));
  }
}
