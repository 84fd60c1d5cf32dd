import { describe, expect, it } from 'vitest';
import { PassThrough, Writable } from 'node:stream';
import { DELAYED, serveFilterProtocol } from './protocol.js';
import { FLUSH_PACKET, encodePacket, encodeTextPacket } from '../git/pkt-line.js';

function gitSide(lines: (string | Buffer | null)[]): Buffer {
  return Buffer.concat(lines.map((l) => (l === null ? FLUSH_PACKET : typeof l === 'string' ? encodeTextPacket(l) : encodePacket(l))));
}

const HANDSHAKE = ['git-filter-client', 'version=2', null, 'capability=clean', 'capability=smudge', 'capability=delay', null];

async function run(input: Buffer, handlers: Parameters<typeof serveFilterProtocol>[2], pieceSize = 7): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  async function* source() {
    for (let i = 0; i < input.length; i += pieceSize) yield input.subarray(i, i + pieceSize);
  }
  await serveFilterProtocol(source(), out, handlers);
  return Buffer.concat(chunks);
}

describe('filter protocol', () => {
  it('answers the handshake with only the capabilities it has', async () => {
    const out = await run(gitSide(HANDSHAKE), { clean: async () => Buffer.from('x') });
    expect(out.toString('latin1')).toBe('0016git-filter-server\n000eversion=2\n0000' + '0015capability=clean\n0000');
  });

  it('cleans content streamed over many packets and writes the exact reply', async () => {
    const big = Buffer.alloc(200_000, 0x61);
    const input = gitSide([...HANDSHAKE, 'command=clean', 'pathname=a b.mov', null, big.subarray(0, 65516), big.subarray(65516, 131032), big.subarray(131032, 196548), big.subarray(196548), null]);
    let seen = 0;
    const out = await run(input, {
      clean: async (req, content) => {
        expect(req.pathname).toBe('a b.mov');
        for await (const c of content) seen += c.length;
        return Buffer.from('pointer\n');
      },
    }, 4093);
    expect(seen).toBe(200_000);
    const expected = '0016git-filter-server\n000eversion=2\n0000' + '0015capability=clean\n0000' + '0013status=success\n0000' + '000cpointer\n' + '0000' + '0000';
    expect(out.toString('latin1')).toBe(expected);
  });

  it('answers status=error and drains the content when a handler throws early', async () => {
    const input = gitSide([...HANDSHAKE, 'command=smudge', 'pathname=x', null, Buffer.from('abc'), null, 'command=smudge', 'pathname=y', null, Buffer.from('def'), null]);
    const out = await run(input, {
      smudge: async (req, content) => {
        if (req.pathname === 'x') throw new Error('boom');
        const parts: Buffer[] = [];
        for await (const c of content) parts.push(c);
        return Buffer.concat(parts);
      },
    });
    const text = out.toString('latin1');
    expect(text).toContain('0011status=error\n0000');
    expect(text.endsWith('0013status=success\n0000' + '0007def' + '0000' + '0000')).toBe(true);
  });

  it('reports an error after partial streamed output', async () => {
    const input = gitSide([...HANDSHAKE, 'command=smudge', 'pathname=x', null, null]);
    const out = await run(input, {
      smudge: async () =>
        (async function* () {
          yield Buffer.from('part');
          throw new Error('missing chunk');
        })(),
    });
    expect(out.toString('latin1').endsWith('0013status=success\n0000' + '0008part' + '0000' + '0011status=error\n0000')).toBe(true);
  });

  it('writes each streamed piece before asking for the next, so a handler may reuse one buffer', async () => {
    // a sink that takes its bytes a tick after write() (as a busy pipe may): what it copies
    // then must still be the piece it was given
    const taken: Buffer[] = [];
    const out = new Writable({
      writev(chunks, cb) {
        setImmediate(() => {
          for (const c of chunks) taken.push(Buffer.from(c.chunk as Buffer));
          cb();
        });
      },
    });
    const input = gitSide([...HANDSHAKE, 'command=smudge', 'pathname=x', null, null]);
    async function* source() {
      yield input;
    }
    const shared = Buffer.alloc(100_000);
    const expected: Buffer[] = [];
    await serveFilterProtocol(source(), out, {
      smudge: async () =>
        (async function* () {
          for (let i = 0; i < 5; i++) {
            shared.fill(0x41 + i);
            expected.push(Buffer.from(shared));
            yield shared;
          }
        })(),
    });
    const wantBytes = Buffer.concat([encodeTextPacket('status=success'), FLUSH_PACKET, ...expected.flatMap((b) => [encodePacket(b.subarray(0, 65516)), encodePacket(b.subarray(65516))]), FLUSH_PACKET, FLUSH_PACKET]);
    const text = Buffer.concat(taken).toString('latin1');
    const want = wantBytes.toString('latin1');
    expect(text.endsWith(want)).toBe(true);
  });

  it('delays smudge when git allows it, then lists the ready paths and answers git asking again with no content', async () => {
    const input = gitSide([
      ...HANDSHAKE,
      'command=smudge', 'pathname=a', 'can-delay=1', null, Buffer.from('ptr-a'), null,
      'command=smudge', 'pathname=b', null, Buffer.from('ptr-b'), null,
      'command=list_available_blobs', null,
      'command=smudge', 'pathname=a', null, null,
      'command=list_available_blobs', null,
    ]);
    const lists = [['a'], []];
    const out = await run(input, {
      smudge: async (req, content) => {
        const parts: Buffer[] = [];
        for await (const c of content) parts.push(c);
        if (req.meta.get('can-delay') === '1') return DELAYED;
        return Buffer.from(`content of ${req.pathname} (${Buffer.concat(parts).toString()})`);
      },
      availableBlobs: async () => lists.shift()!,
    });
    const text = out.toString('latin1');
    expect(text).toBe(
      '0016git-filter-server\n000eversion=2\n0000' +
        '0016capability=smudge\n0015capability=delay\n0000' +
        '0013status=delayed\n0000' +
        '0013status=success\n0000' + '0018content of b (ptr-b)' + '0000' + '0000' +
        '000fpathname=a\n0000' + '0013status=success\n0000' +
        '0013status=success\n0000' + '0013content of a ()' + '0000' + '0000' +
        '0000' + '0013status=success\n0000',
    );
  });

  it('does not offer delay without a handler that lists ready paths', async () => {
    const out = await run(gitSide(HANDSHAKE), { smudge: async () => Buffer.from('x') });
    expect(out.toString('latin1')).toBe('0016git-filter-server\n000eversion=2\n0000' + '0016capability=smudge\n0000');
  });
});
