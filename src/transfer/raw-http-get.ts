/**
 * GETs over plain HTTP/1.1 (RFC 9112) on net.Socket, the response body handed over in
 * pieces of one read buffer per connection that is used again for every read: the bytes
 * path of the mount's remote reads on an `http://` endpoint (s3rver, MinIO on a LAN).
 *
 * Why not node:http: it reads every socket read into a fresh 64 KiB buffer and runs each
 * through its parser and a stream. Reading a 1 GiB file through the mount, those buffers
 * were a gigabyte of new ArrayBuffers, and V8 starts a full garbage collection for every 64 MiB
 * of them (its external memory limit): 89 of them, 19% of the mount's main thread (the
 * marking on other threads besides), for a process whose heap holds 17 MB.
 *
 * What is handled, and only that (anything else is not a clean answer: see RawAnswer):
 *   response = status-line *( header CRLF ) CRLF body
 *   status-line = "HTTP/1." DIGIT SP 3DIGIT SP reason CRLF
 *   body = exactly Content-Length bytes (no Transfer-Encoding: a chunked answer is refused,
 *   the caller asks again by another path). Keep-alive: after a whole body, the connection
 *   is used again unless the answer said `Connection: close` or was HTTP/1.0, or bytes
 *   came past the body. A connection kept idle that the server closed meanwhile is seen
 *   by its 'end'; a request on one that fails before any byte of the answer is sent once
 *   more on a new connection.
 *
 * TLS is not done here (an `https://` endpoint keeps node:https).
 */
import net from 'node:net';
import type { PieceReader, PieceSink } from './object-storage.js';

/** An answer's head; its body a PieceReader (a sink's `false` closes the connection unless the body was whole). */
export interface RawAnswer extends PieceReader {
  status: number;
  /** lower-case names; a repeated header's values joined with ', ' */
  headers: Map<string, string>;
  /** Content-Length (always given: an answer without one is refused) */
  length: number;
}

export interface RawHttpOptions {
  host: string;
  port: number;
  /** No byte for this long (ms) on a request in flight: it fails. */
  socketTimeoutMs: number;
  /** Bytes of each connection's read buffer (default 256 KiB). */
  readBufferBytes?: number;
  /** Idle connections kept (default 8). */
  maxIdle?: number;
}

const HEAD_LIMIT = 64 * 1024;
const CRLFCRLF = Buffer.from('\r\n\r\n');

/** A piece went to a connection with nobody to take it: an answer not asked for. */
type Taker = ((piece: Buffer) => boolean) | null;

class Connection {
  readonly socket: net.Socket;
  /** takes the pieces of the read buffer as they come; false pauses reading */
  taker: Taker = null;
  /** told when the connection ends, fails or closes */
  onGone: ((err: Error) => void) | null = null;
  gone = false;
  /** it has served a whole answer (a failure before the next answer's first byte is asked again) */
  reused = false;

  constructor(opts: RawHttpOptions, buffer: Buffer) {
    this.socket = net.connect({
      host: opts.host,
      port: opts.port,
      noDelay: true,
      onread: {
        buffer,
        callback: (n: number, buf: Uint8Array): boolean => {
          const t = this.taker;
          if (t === null) {
            // bytes nobody asked for: the connection cannot be trusted any more
            this.destroy(new Error('unexpected bytes on an idle connection'));
            return false;
          }
          return t((buf as Buffer).subarray(0, n));
        },
      },
    });
    const gone = (err: Error): void => {
      if (this.gone) return;
      this.gone = true;
      this.socket.destroy();
      const f = this.onGone;
      this.onGone = null;
      f?.(err);
    };
    this.socket.on('error', (err) => gone(err));
    this.socket.on('end', () => gone(new Error('the server closed the connection')));
    this.socket.on('close', () => gone(new Error('the connection closed')));
    this.socket.on('timeout', () => gone(new Error(`no data for ${opts.socketTimeoutMs} ms`)));
  }

  destroy(err: Error): void {
    this.socket.destroy(err);
  }
}

export class RawHttpGet {
  private readonly idle: Connection[] = [];
  private readonly bufferBytes: number;
  private readonly maxIdle: number;

  constructor(private readonly opts: RawHttpOptions) {
    this.bufferBytes = opts.readBufferBytes ?? 256 * 1024;
    this.maxIdle = opts.maxIdle ?? 8;
  }

  /**
   * Sends `GET target` with `headers` (Host among them, as given) and resolves with the
   * answer's head; its body is the caller's to pipe or cancel. Rejects when no answer came
   * (the connection failed or the head is not HTTP/1.x with a Content-Length and no
   * Transfer-Encoding).
   */
  async get(target: string, headers: Record<string, string>): Promise<RawAnswer> {
    const lines = [`GET ${target} HTTP/1.1`];
    for (const [k, v] of Object.entries(headers)) {
      if (/[\r\n]/.test(k) || /[\r\n]/.test(v)) throw new Error(`header ${k} holds a line break`);
      lines.push(`${k}: ${v}`);
    }
    const request = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
    for (;;) {
      const c = this.take();
      try {
        return await this.exchange(c, request);
      } catch (err) {
        // a kept connection the server had closed: once more on a new one
        if (!(err instanceof NoAnswerError) || !c.reused) throw err instanceof NoAnswerError ? err.cause : err;
      }
    }
  }

  /** Closes the idle connections. */
  close(): void {
    for (const c of this.idle.splice(0)) c.destroy(new Error('closed'));
  }

  private take(): Connection {
    for (;;) {
      const c = this.idle.pop();
      if (c === undefined) break;
      if (c.gone) continue;
      c.socket.ref();
      return c;
    }
    const c = new Connection(this.opts, Buffer.allocUnsafeSlow(this.bufferBytes));
    c.socket.setTimeout(this.opts.socketTimeoutMs);
    return c;
  }

  /** Back to the idle list after a whole answer (true), or closed. */
  private release(c: Connection, keep: boolean): boolean {
    c.taker = null;
    c.onGone = null;
    if (!keep || c.gone || this.idle.length >= this.maxIdle) {
      c.destroy(new Error('not kept'));
      return false;
    }
    c.reused = true;
    c.socket.unref();
    this.idle.push(c);
    // an idle connection the server closes is dropped from the list at once (it is read
    // while idle: a byte from the server there closes it, an end drops it)
    c.onGone = () => {
      const at = this.idle.indexOf(c);
      if (at >= 0) this.idle.splice(at, 1);
    };
    c.socket.resume();
    return true;
  }

  private exchange(c: Connection, request: Buffer): Promise<RawAnswer> {
    return new Promise<RawAnswer>((resolve, reject) => {
      let head: Buffer | null = null;
      c.onGone = (err) => reject(new NoAnswerError(err));
      c.taker = (piece) => {
        head = head === null ? Buffer.from(piece) : Buffer.concat([head, piece]);
        const at = head.indexOf(CRLFCRLF);
        if (at < 0) {
          if (head.length > HEAD_LIMIT) c.destroy(new Error(`an answer head over ${HEAD_LIMIT} bytes`));
          return true;
        }
        c.taker = null;
        let parsed: { status: number; headers: Map<string, string>; keepAlive: boolean };
        try {
          parsed = parseHead(head.toString('latin1', 0, at));
        } catch (err) {
          c.onGone = null;
          c.destroy(err as Error);
          reject(err);
          return false;
        }
        const te = parsed.headers.get('transfer-encoding');
        const length = Number(parsed.headers.get('content-length') ?? NaN);
        if ((te !== undefined && te.toLowerCase() !== 'identity') || !Number.isSafeInteger(length) || length < 0) {
          c.onGone = null;
          const err = new Error(te !== undefined ? `an answer in Transfer-Encoding ${te}` : 'an answer without a Content-Length');
          c.destroy(err);
          reject(err);
          return false;
        }
        // what came after the head: its copy (small, once an answer) waits for pipe()
        const early = head.subarray(at + 4);
        c.onGone = null;
        resolve(this.answer(c, parsed, length, early));
        return false; // paused until pipe()
      };
      c.socket.write(request);
      c.socket.resume();
    });
  }

  private answer(c: Connection, parsed: { status: number; headers: Map<string, string>; keepAlive: boolean }, length: number, early: Buffer): RawAnswer {
    let state: 'new' | 'piping' | 'done' = 'new';
    let failure: Error | null = null;
    c.onGone = (err) => (failure = err);
    const pipe = (sink: PieceSink): Promise<void> => {
      if (state !== 'new') return Promise.reject(new Error('the body was taken already'));
      state = 'piping';
      return new Promise<void>((resolve, reject) => {
        let got = 0;
        let waiting = false;
        /** Settles the pipe; true when the connection was kept (then it goes on reading, idle). */
        const finish = (err: Error | null, keep: boolean): boolean => {
          if (state === 'done') return false;
          state = 'done';
          c.taker = null;
          c.onGone = null;
          if (err !== null) {
            c.destroy(err);
            reject(err);
            return false;
          }
          const kept = this.release(c, keep);
          resolve();
          return kept;
        };
        const gone = (err: Error): void => {
          finish(new Error(`the answer broke off after ${got} of ${length} bytes (${err.message})`), false);
        };
        /** Hands piece over; false: stop reading (paused, or finished). */
        const give = (piece: Buffer): boolean => {
          if (got + piece.length > length) {
            // bytes past the body: the body is whole, the connection is not used again
            piece = piece.subarray(0, length - got);
            parsed.keepAlive = false;
          }
          got += piece.length;
          let r: ReturnType<PieceSink>;
          try {
            r = piece.length > 0 ? sink(piece) : undefined;
          } catch (err) {
            finish(err as Error, false);
            return false;
          }
          if (r instanceof Promise) {
            waiting = true;
            r.then(
              (v) => {
                waiting = false;
                if (got === length) finish(null, parsed.keepAlive);
                else if (v === false) finish(null, false);
                else if (failure !== null) gone(failure);
                else c.socket.resume();
              },
              (err: unknown) => finish(err instanceof Error ? err : new Error(String(err)), false),
            );
            return false;
          }
          if (got === length) return finish(null, parsed.keepAlive);
          if (r === false) {
            finish(null, false);
            return false;
          }
          return true;
        };
        c.taker = give;
        c.onGone = (err) => {
          if (!waiting) gone(err);
          else failure = err;
        };
        if (length === 0) {
          finish(null, parsed.keepAlive);
          return;
        }
        const more = early.length > 0 ? give(early) : true;
        if (state !== 'piping' || waiting) return;
        if (failure !== null) gone(failure);
        else if (more) c.socket.resume();
      });
    };
    return {
      status: parsed.status,
      headers: parsed.headers,
      length,
      pipe,
      cancel: () => {
        if (state !== 'new') return;
        state = 'done';
        c.taker = null;
        c.onGone = null;
        if (length === 0 && early.length === 0) this.release(c, parsed.keepAlive);
        else c.destroy(new Error('the body was given up'));
      },
    };
  }
}

/** No byte of an answer came (the caller may send the request again on a new connection). */
class NoAnswerError extends Error {
  constructor(override readonly cause: Error) {
    super(cause.message);
  }
}

/** Status line and headers of an answer (the part before the blank line). */
export function parseHead(text: string): { status: number; headers: Map<string, string>; keepAlive: boolean } {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0]!);
  if (!m) throw new Error(`not an HTTP/1.x status line: ${JSON.stringify(lines[0]!.slice(0, 80))}`);
  const headers = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0 || /^[ \t]/.test(line)) throw new Error(`a header line that does not parse: ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const had = headers.get(name);
    headers.set(name, had === undefined ? value : `${had}, ${value}`);
  }
  const conn = (headers.get('connection') ?? '').toLowerCase();
  const keepAlive = m[1] === '1' ? !/\bclose\b/.test(conn) : /\bkeep-alive\b/.test(conn);
  return { status: Number(m[2]), headers, keepAlive };
}
