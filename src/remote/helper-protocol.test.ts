import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { serveRemoteHelper, type RemoteHelperHandlers } from './helper-protocol.js';

async function talk(input: string, handlers: Partial<RemoteHelperHandlers>): Promise<string> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c.toString()));
  const pieces = input.match(/[\s\S]{1,5}/g) ?? [];
  async function* src() {
    for (const p of pieces) yield Buffer.from(p);
  }
  const full: RemoteHelperHandlers = {
    list: async () => [],
    fetch: async () => {},
    push: async () => [],
    option: () => 'unsupported',
    ...handlers,
  };
  await serveRemoteHelper(src(), out, full);
  return text;
}

describe('remote helper protocol', () => {
  it('answers capabilities, list and options', async () => {
    const out = await talk('capabilities\noption progress false\noption verbosity 1\nlist\n\n', {
      list: async () => [
        { name: 'refs/heads/main', value: 'a'.repeat(40) },
        { name: 'HEAD', value: '@refs/heads/main' },
      ],
      option: (name) => (name === 'progress' ? 'ok' : 'unsupported'),
    });
    expect(out).toBe(`option\nfetch\npush\n\nok\nunsupported\n${'a'.repeat(40)} refs/heads/main\n@refs/heads/main HEAD\n\n`);
  });

  it('reads fetch and push batches up to the blank line', async () => {
    let wants: unknown;
    let specs: unknown;
    const out = await talk(`fetch ${'b'.repeat(40)} refs/heads/main\nfetch ${'c'.repeat(40)} refs/tags/v1\n\npush +refs/heads/a:refs/heads/a\npush :refs/heads/gone\n\n`, {
      fetch: async (w) => {
        wants = w;
      },
      push: async (s) => {
        specs = s;
        return [
          { dst: 'refs/heads/a', error: null },
          { dst: 'refs/heads/gone', error: 'fetch first' },
        ];
      },
    });
    expect(wants).toEqual([
      { oid: 'b'.repeat(40), name: 'refs/heads/main' },
      { oid: 'c'.repeat(40), name: 'refs/tags/v1' },
    ]);
    expect(specs).toEqual([
      { src: 'refs/heads/a', dst: 'refs/heads/a', force: true },
      { src: '', dst: 'refs/heads/gone', force: false },
    ]);
    expect(out).toBe('\nok refs/heads/a\nerror refs/heads/gone fetch first\n\n');
  });
});
