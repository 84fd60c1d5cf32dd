/**
 * RawHttpGet against real sockets on 127.0.0.1: a small HTTP/1.1 server written on
 * net.Server, so each test chooses exactly what goes on the wire (a cut, a chunked answer,
 * a kept connection closed by the server).
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RawHttpGet, parseHead } from '../../src/transfer/raw-http-get.js';
import { seededBytes } from './storage-contract.js';

interface Served {
  port: number;
  /** connections accepted so far */
  connections: number;
  /** request heads received, in order */
  requests: string[];
  close(): Promise<void>;
}

/** A server that answers each request head with `answer(requestHead, socket, index)`. */
async function serve(answer: (head: string, socket: net.Socket, n: number) => void): Promise<Served> {
  const sockets = new Set<net.Socket>();
  const s: Served = { port: 0, connections: 0, requests: [], close: async () => {} };
  const server = net.createServer((socket) => {
    s.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        const at = buf.indexOf('\r\n\r\n');
        if (at < 0) break;
        const head = buf.slice(0, at);
        buf = buf.slice(at + 4);
        s.requests.push(head);
        answer(head, socket, s.requests.length - 1);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  s.port = (server.address() as net.AddressInfo).port;
  s.close = () =>
    new Promise<void>((resolve) => {
      for (const k of sockets) k.destroy();
      server.close(() => resolve());
    });
  return s;
}

const BODY = seededBytes(3 * 1024 * 1024 + 123, 11);

/** A 200 answer of `body` (written in pieces, as a server would). */
function ok(socket: net.Socket, body: Buffer, extra = ''): void {
  socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n${extra}\r\n`);
  for (let at = 0; at < body.length; at += 100_000) socket.write(body.subarray(at, at + 100_000));
}

let served: Served | null = null;
afterEach(async () => {
  await served?.close();
  served = null;
});

/** Every piece copied out (they are views of a buffer used again). */
async function collect(client: RawHttpGet, target = '/x'): Promise<Buffer> {
  const a = await client.get(target, { host: 'test' });
  const parts: Buffer[] = [];
  await a.pipe((p) => void parts.push(Buffer.from(p)));
  return Buffer.concat(parts);
}

describe('RawHttpGet', () => {
  it('hands a body over byte-exact in pieces of one buffer used again, and keeps the connection for the next GET', async () => {
    served = await serve((_h, socket) => ok(socket, BODY));
    const client = new RawHttpGet({ host: '127.0.0.1', port: served.port, socketTimeoutMs: 5000, readBufferBytes: 64 * 1024 });
    const a = await client.get('/obj', { host: 'example', range: 'bytes=0-9' });
    expect(a.status).toBe(200);
    expect(a.length).toBe(BODY.length);
    const seen = new Set<ArrayBuffer>();
    const parts: Buffer[] = [];
    let pieces = 0;
    await a.pipe((p) => {
      pieces++;
      seen.add(p.buffer as ArrayBuffer);
      parts.push(Buffer.from(p));
    });
    expect(Buffer.concat(parts).equals(BODY)).toBe(true);
    expect(pieces).toBeGreaterThan(10);
    expect(seen.size).toBeLessThanOrEqual(2); // the head's copy (the first bytes of the body), then one read buffer
    expect((await collect(client)).equals(BODY)).toBe(true);
    expect(served.connections).toBe(1);
    expect(served.requests[0]).toMatch(/^GET \/obj HTTP\/1\.1\r\nhost: example\r\nrange: bytes=0-9$/);
    client.close();
  });

  it('reads nothing more while a piece is being taken (a promise): the piece stays whole until it settles', async () => {
    served = await serve((_h, socket) => ok(socket, BODY));
    const client = new RawHttpGet({ host: '127.0.0.1', port: served.port, socketTimeoutMs: 5000, readBufferBytes: 64 * 1024 });
    const a = await client.get('/x', { host: 'test' });
    const parts: Buffer[] = [];
    let k = 0;
    await a.pipe(async (p) => {
      const before = Buffer.from(p);
      if (k++ % 3 === 0) await new Promise((r) => setTimeout(r, 5));
      expect(p.equals(before)).toBe(true);
      parts.push(before);
    });
    expect(Buffer.concat(parts).equals(BODY)).toBe(true);
    client.close();
  });

  it('a connection cut mid-body rejects the pipe (never a short body taken as whole); the next GET opens a new connection', async () => {
    served = await serve((_h, socket, n) => {
      if (n > 0) return ok(socket, BODY);
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BODY.length}\r\n\r\n`);
      socket.write(BODY.subarray(0, 500_000), () => socket.destroy());
    });
    const client = new RawHttpGet({ host: '127.0.0.1', port: served.port, socketTimeoutMs: 5000 });
    const a = await client.get('/x', { host: 'test' });
    let got = 0;
    await expect(a.pipe((p) => void (got += p.length))).rejects.toThrow(/broke off after \d+ of 3145851 bytes/);
    expect(got).toBeLessThanOrEqual(500_000);
    expect((await collect(client)).equals(BODY)).toBe(true);
    expect(served.connections).toBe(2);
    client.close();
  });

  it('refuses an answer in chunked transfer encoding, or without a Content-Length', async () => {
    served = await serve((h, socket) => {
      if (h.startsWith('GET /chunked')) socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
      else socket.end('HTTP/1.0 200 OK\r\n\r\nhello');
    });
    const client = new RawHttpGet({ host: '127.0.0.1', port: served.port, socketTimeoutMs: 5000 });
    await expect(client.get('/chunked', { host: 'test' })).rejects.toThrow(/Transfer-Encoding chunked/);
    await expect(client.get('/nolength', { host: 'test' })).rejects.toThrow(/without a Content-Length/);
    client.close();
  });

  it('a kept connection the server closed meanwhile: the next GET goes on a new one, as does one the server would close (Connection: close)', async () => {
    served = await serve((_h, socket, n) => {
      if (n === 0) {
        ok(socket, BODY.subarray(0, 1000));
        setTimeout(() => socket.end(), 20); // a server's keep-alive timeout
      } else if (n === 1) ok(socket, BODY.subarray(0, 2000), 'Connection: close\r\n');
      else ok(socket, BODY.subarray(0, 3000));
    });
    const client = new RawHttpGet({ host: '127.0.0.1', port: served.port, socketTimeoutMs: 5000 });
    expect((await collect(client)).equals(BODY.subarray(0, 1000))).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    expect((await collect(client)).equals(BODY.subarray(0, 2000))).toBe(true);
    expect((await collect(client)).equals(BODY.subarray(0, 3000))).toBe(true);
    expect(served.connections).toBe(3);
    client.close();
  });

  it('a kept connection found closed only when the next request is sent (the race with a keep-alive timeout) is asked again on a new one', async () => {
    served = await serve((_h, socket, n) => {
      if (n === 1) socket.destroy(); // the second request meets a closed connection
      else ok(socket, BODY.subarray(0, 5000));
    });
    const client = new RawHttpGet({ host: '127.0.0.1', port: served.port, socketTimeoutMs: 5000 });
    expect((await collect(client)).equals(BODY.subarray(0, 5000))).toBe(true);
    expect((await collect(client)).equals(BODY.subarray(0, 5000))).toBe(true);
    expect(served.connections).toBe(2);
    expect(served.requests.length).toBe(3);
    client.close();
  });

  it('a sink that wants no more closes the connection; a cancelled body too; the next GETs still work', async () => {
    served = await serve((_h, socket) => ok(socket, BODY));
    const client = new RawHttpGet({ host: '127.0.0.1', port: served.port, socketTimeoutMs: 5000 });
    const a = await client.get('/x', { host: 'test' });
    let got = 0;
    await a.pipe((p) => {
      got += p.length;
      return got < 200_000;
    });
    expect(got).toBeLessThan(BODY.length);
    (await client.get('/x', { host: 'test' })).cancel();
    expect((await collect(client)).equals(BODY)).toBe(true);
    expect(served.connections).toBe(3);
    client.close();
  });

  it('parses status lines and headers (repeated ones joined), and what keeps a connection', () => {
    const h = parseHead('HTTP/1.1 206 Partial Content\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\nConnection: close');
    expect(h.status).toBe(206);
    expect(h.headers.get('content-length')).toBe('5');
    expect(h.headers.get('x-a')).toBe('1, 2');
    expect(h.keepAlive).toBe(false);
    expect(parseHead('HTTP/1.1 200 OK').keepAlive).toBe(true);
    expect(parseHead('HTTP/1.0 200 OK').keepAlive).toBe(false);
    expect(parseHead('HTTP/1.0 200 OK\r\nConnection: keep-alive').keepAlive).toBe(true);
    expect(() => parseHead('HTTP/2 200')).toThrow(/status line/);
    expect(() => parseHead('HTTP/1.1 200 OK\r\n folded')).toThrow(/header line/);
  });
});
