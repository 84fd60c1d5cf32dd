/**
 * One byte source served over HTTP on 127.0.0.1, with ranges, so ffmpeg and ffprobe read a
 * file that lives in a remote's storage as `http://127.0.0.1:PORT/name.mov` and seek in it
 * (a QuickTime file with its moov at the end is read by seeking there first).
 *
 *   HEAD /name           200, Content-Length, Accept-Ranges: bytes
 *   GET  /name           200, the whole source, streamed
 *   GET  /name + Range   `bytes=a-b`, `bytes=a-`, `bytes=-n` -> 206 with Content-Range;
 *                        outside the source -> 416 with `Content-Range: bytes *\/size`
 *   anything else        404 (other paths) or 405 (other methods)
 *
 * Bytes come from `source.stream(start, end)` when it has one (RemoteFileReader: GETs
 * ahead, bounded), else from `read` in 1 MiB pieces; each piece is written with
 * backpressure, so memory stays bounded whatever ffmpeg asks. A source that fails midway
 * (a damaged chunk) cuts the connection: the client sees a short body, never wrong bytes.
 * A client that goes away stops the source's reads.
 *
 * Loopback only, port 0 (any free port), no authentication: it lives as long as one job.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RangeSourceInput {
  readonly size: number;
  read(offset: number, length: number): Promise<Buffer>;
  /** The bytes [start, end) in order (optional; faster than `read` when present). */
  stream?(start: number, end: number): AsyncGenerator<Buffer>;
}

export interface RangeSource {
  /** `http://127.0.0.1:PORT/<name>` */
  url: string;
  /** Stops listening and cuts open connections. Idempotent. */
  close(): Promise<void>;
}

export interface RangeSourceOptions {
  /** The last path segment (ffmpeg guesses some formats from it), default `source`. */
  name?: string;
  contentType?: string;
  /** Called with a source error that cut a response (logging). */
  onError?: (err: unknown) => void;
}

const READ_PIECE = 1024 * 1024;

/** `[start, end)` for a Range header over `size` bytes; null when unsatisfiable; undefined when there is none (or it is not one we read: whole body, as HTTP allows). */
export function parseRangeHeader(header: string | undefined, size: number): { start: number; end: number } | null | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return undefined; // multiple ranges or garbage: the whole body
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return null;
    return { start: Math.max(0, size - suffix), end: size };
  }
  const start = Number(m[1]);
  const last = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || last < start) return null;
  return { start, end: last + 1 };
}

async function* piecesOf(source: RangeSourceInput, start: number, end: number): AsyncGenerator<Buffer> {
  if (source.stream) {
    yield* source.stream(start, end);
    return;
  }
  for (let pos = start; pos < end; ) {
    const b = await source.read(pos, Math.min(READ_PIECE, end - pos));
    if (b.length === 0) throw new Error(`the source ended at ${pos} of ${end}`);
    yield b;
    pos += b.length;
  }
}

export async function serveRangeSource(source: RangeSourceInput, options: RangeSourceOptions = {}): Promise<RangeSource> {
  const name = encodeURIComponent(options.name ?? 'source');
  const sockets = new Set<Socket>();
  const size = source.size;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const pathname = (req.url ?? '/').split('?')[0];
    if (pathname !== `/${name}`) {
      res.writeHead(404, { 'content-length': '0' }).end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-length': '0' }).end();
      return;
    }
    const headers: Record<string, string> = { 'accept-ranges': 'bytes', 'content-type': options.contentType ?? 'application/octet-stream' };
    const range = parseRangeHeader(req.headers.range, size);
    if (range === null) {
      res.writeHead(416, { ...headers, 'content-range': `bytes */${size}`, 'content-length': '0' }).end();
      return;
    }
    const { start, end } = range ?? { start: 0, end: size };
    headers['content-length'] = String(end - start);
    if (range !== undefined) headers['content-range'] = `bytes ${start}-${end - 1}/${size}`;
    res.writeHead(range === undefined ? 200 : 206, headers);
    if (req.method === 'HEAD' || end === start) {
      res.end();
      return;
    }
    let gone = false;
    res.once('close', () => (gone = true));
    const pieces = piecesOf(source, start, end);
    try {
      for await (const piece of pieces) {
        if (gone) break;
        if (!res.write(piece)) {
          await new Promise<void>((resolve) => {
            const done = (): void => {
              res.off('drain', done);
              res.off('close', done);
              resolve();
            };
            res.on('drain', done);
            res.on('close', done);
          });
        }
      }
      if (!gone) res.end();
    } catch (err) {
      options.onError?.(err);
      res.destroy(err as Error); // cut: the client must not take a short body for the file
    } finally {
      await pieces.return(undefined);
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      options.onError?.(err);
      res.destroy();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/${name}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}
