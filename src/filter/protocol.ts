/**
 * Git's long-running filter protocol, version 2 (gitattributes(5), "Long Running Filter
 * Process"; Documentation/technical/long-running-process-protocol.txt):
 *
 *   handshake  : git> "git-filter-client" "version=2" flush
 *                us>  "git-filter-server" "version=2" flush
 *                git> "capability=clean" "capability=smudge" ... flush
 *                us>  "capability=clean" "capability=smudge" flush
 *   per file   : git> "command=(clean|smudge)" "pathname=P" [key=value...] flush CONTENT flush
 *                us>  "status=success" flush CONTENT flush flush      (empty list: keep success)
 *             or us>  "status=error" flush                            (before any content)
 *             or us>  "status=success" flush PARTIAL flush "status=error" flush
 *             or us>  "status=delayed" flush       (smudge with "can-delay=1", capability delay)
 *   delayed    : git> "command=list_available_blobs" flush
 *                us>  "pathname=P"... flush "status=success" flush   (an empty list: all done)
 *                then git asks for each listed path again (without can-delay) and writes it
 *
 * Pure over streams: `serveFilterProtocol(input, output, handlers)` reads packets from
 * `input` and writes to `output`; the caller owns both. A handler receives the content as
 * an async iterable that it should consume; whatever it leaves unread is drained here, so
 * a handler that fails early never desynchronises the stream.
 */
import type { Writable } from 'node:stream';
import { FLUSH, FLUSH_PACKET, MAX_PACKET_DATA, PacketReader, PktLineError, encodeTextPacket } from '../git/pkt-line.js';

export type FilterCommand = 'clean' | 'smudge';

export interface FilterRequest {
  command: FilterCommand;
  pathname: string;
  /** Other keys git sent (ref, treeish, blob, can-delay...). */
  meta: Map<string, string>;
}

/**
 * The content git sends with a request: an async iterable of pieces (views of the input,
 * to be used before pulling much more), or read straight into buffers with readInto
 * (resolves with the bytes copied, 0 at the end). The two may be mixed, in order.
 */
export interface FilterContent extends AsyncIterable<Buffer> {
  readInto(buf: Buffer): Promise<number>;
}

/** FilterContent over a plain stream of buffers (the one-shot clean/smudge commands, tests). */
export function contentOf(source: AsyncIterable<Buffer>): FilterContent {
  const it = source[Symbol.asyncIterator]();
  let rest: Buffer | null = null;
  let ended = false;
  const nextPiece = async (): Promise<Buffer | null> => {
    while (rest === null || rest.length === 0) {
      if (ended) return null;
      const next = await it.next();
      if (next.done) {
        ended = true;
        return null;
      }
      rest = next.value;
    }
    const p = rest;
    rest = null;
    return p;
  };
  return {
    async *[Symbol.asyncIterator]() {
      for (let p = await nextPiece(); p !== null; p = await nextPiece()) yield p;
    },
    async readInto(buf: Buffer): Promise<number> {
      let n = 0;
      while (n < buf.length) {
        const p = await nextPiece();
        if (p === null) break;
        const k = Math.min(p.length, buf.length - n);
        p.copy(buf, n, 0, k);
        n += k;
        if (k < p.length) rest = p.subarray(k);
      }
      return n;
    },
  };
}

/**
 * A handler returns the filtered content whole (small) or as a stream of buffers. Each
 * piece of a stream is written out before the next is asked for, so a stream may reuse
 * its buffers.
 */
export type FilterResult = Buffer | AsyncIterable<Buffer>;

/**
 * What a smudge handler returns for a request git allows it to delay (`can-delay=1` in the
 * request's meta): git writes that file later, once `availableBlobs` has listed it.
 */
export const DELAYED = Symbol('delayed');

export interface FilterHandlers {
  clean?(request: FilterRequest, content: FilterContent): Promise<FilterResult>;
  smudge?(request: FilterRequest, content: FilterContent): Promise<FilterResult | typeof DELAYED>;
  /**
   * Git's delayed checkout (capability delay): the paths smudge delayed whose content is now
   * ready, each listed once; resolves with some as soon as there are any, and with none once
   * every delayed path was listed. Git then asks for each listed path again.
   */
  availableBlobs?(): Promise<string[]>;
  /** Called for each failure, for logging; the protocol answers status=error itself. */
  onError?(request: FilterRequest, err: unknown): void;
}

/** The 4-byte length of a data packet with `n` payload bytes. */
function packetHeader(n: number): Buffer {
  return Buffer.from((n + 4).toString(16).padStart(4, '0'), 'latin1');
}

/**
 * Writes packets to `out` without copying content: a data packet goes out as its 4-byte
 * header and a view of the caller's buffer, all of a send in one corked write (one writev on
 * a pipe). `send` resolves once `out` has taken the bytes (its write callback), so the
 * caller may reuse its buffer then, and a slow reader holds the writer back.
 */
class PacketWriter {
  private pending: Buffer[] = [];

  constructor(private readonly out: Writable) {}

  text(line: string): void {
    this.pending.push(encodeTextPacket(line));
  }

  flushPkt(): void {
    this.pending.push(FLUSH_PACKET);
  }

  /** `buf` as data packets, written before this resolves (the caller may reuse it then). */
  async data(buf: Buffer): Promise<void> {
    this.queueData(buf);
    await this.send();
  }

  /** `buf` as data packets, sent with the next send() (`buf` must not change until then). */
  queueData(buf: Buffer): void {
    for (let i = 0; i < buf.length; i += MAX_PACKET_DATA) {
      const end = Math.min(i + MAX_PACKET_DATA, buf.length);
      this.pending.push(packetHeader(end - i), buf.subarray(i, end));
    }
  }

  async send(): Promise<void> {
    if (this.pending.length === 0) return;
    const parts = this.pending;
    this.pending = [];
    const out = this.out;
    const written = new Promise<void>((resolve, reject) => {
      out.cork();
      for (let k = 0; k < parts.length - 1; k++) out.write(parts[k]);
      out.write(parts[parts.length - 1], (err) => (err ? reject(err) : resolve()));
      out.uncork();
    });
    await written;
  }
}

async function handshake(reader: PacketReader, writer: PacketWriter, supported: string[]): Promise<boolean> {
  const hello = await reader.readText();
  if (hello === null) return false;
  if (hello !== 'git-filter-client') throw new PktLineError(`expected git-filter-client, got ${String(hello)}`);
  const versions = await reader.readKeyValues();
  if (!versions || versions.get('version') !== '2') {
    // readKeyValues keeps only the last "version=" line; git sends "version=2" alone today.
    throw new PktLineError('git did not offer filter protocol version 2');
  }
  writer.text('git-filter-server');
  writer.text('version=2');
  writer.flushPkt();
  await writer.send();
  const caps: string[] = [];
  for (;;) {
    const line = await reader.readText();
    if (line === null) throw new PktLineError('input ended during capability negotiation');
    if (line === FLUSH) break;
    if (typeof line === 'string' && line.startsWith('capability=')) caps.push(line.slice('capability='.length));
  }
  for (const cap of supported) if (caps.includes(cap)) writer.text(`capability=${cap}`);
  writer.flushPkt();
  await writer.send();
  return true;
}

export async function serveFilterProtocol(input: AsyncIterable<Buffer>, output: Writable, handlers: FilterHandlers): Promise<void> {
  const reader = new PacketReader(input);
  const writer = new PacketWriter(output);
  const supported: string[] = [];
  if (handlers.clean) supported.push('clean');
  if (handlers.smudge) supported.push('smudge');
  if (handlers.smudge && handlers.availableBlobs) supported.push('delay');
  if (!(await handshake(reader, writer, supported))) return;

  for (;;) {
    const headers = await reader.readKeyValues();
    if (headers === null) return; // git closed the pipe: done
    const command = headers.get('command');
    const pathname = headers.get('pathname') ?? '';
    headers.delete('command');
    headers.delete('pathname');
    if (command === 'list_available_blobs' && handlers.availableBlobs) {
      // no content follows: the request is its key=value list alone
      let paths: string[] | undefined;
      try {
        paths = await handlers.availableBlobs();
      } catch (err) {
        handlers.onError?.({ command: 'smudge', pathname: '', meta: headers }, err);
      }
      for (const p of paths ?? []) writer.text(`pathname=${p}`);
      writer.flushPkt();
      writer.text(paths === undefined ? 'status=error' : 'status=success');
      writer.flushPkt();
      await writer.send();
      continue;
    }
    if (command !== 'clean' && command !== 'smudge') {
      // Unknown command: consume its content, answer error, keep serving.
      for await (const _ of reader.readUntilFlush()) void _;
      writer.text('status=error');
      writer.flushPkt();
      await writer.send();
      continue;
    }
    const request: FilterRequest = { command, pathname, meta: headers };
    const handler = command === 'clean' ? handlers.clean : handlers.smudge;

    reader.beginContent();
    const content: FilterContent = {
      async *[Symbol.asyncIterator]() {
        for (let p = await reader.readContentPiece(); p !== null; p = await reader.readContentPiece()) yield p;
      },
      readInto: (buf) => reader.readContentInto(buf),
    };

    let result: FilterResult | typeof DELAYED | undefined;
    let failure: unknown;
    try {
      if (!handler) throw new Error(`no ${command} handler`);
      result = await handler.call(handlers, request, content);
    } catch (err) {
      failure = err;
    }
    while (!reader.contentDone) await reader.readContentPiece();
    if (failure !== undefined || result === undefined) {
      handlers.onError?.(request, failure);
      writer.text('status=error');
      writer.flushPkt();
      await writer.send();
      continue;
    }

    if (result === DELAYED) {
      writer.text('status=delayed');
      writer.flushPkt();
      await writer.send();
      continue;
    }
    writer.text('status=success');
    writer.flushPkt();
    if (Buffer.isBuffer(result)) {
      // status, content and the empty status list in one write
      writer.queueData(result);
      writer.flushPkt();
      writer.flushPkt(); // empty status list: keep "success"
      await writer.send();
      continue;
    }
    try {
      for await (const piece of result) await writer.data(piece);
      writer.flushPkt();
      writer.flushPkt();
    } catch (err) {
      handlers.onError?.(request, err);
      writer.flushPkt();
      writer.text('status=error');
      writer.flushPkt();
    }
    await writer.send();
  }
}
