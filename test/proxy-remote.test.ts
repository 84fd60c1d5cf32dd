/**
 * Variants travel with the content: a push sends the proxies recorded for the versions it
 * pushes (content first, then one record object each), and a clone finds them by the
 * original's file id: `git dits fetch-proxy` downloads only the proxy, never the original,
 * and a renamed file still has its proxy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { blake3 } from '@napi-rs/blake-hash';
import { ChunkStore } from '../src/store/chunk-store.js';
import { storeVariant } from '../src/proxy/store-variant.js';
import { contentPresent } from '../src/store/materialize.js';
import { parsePointer } from '../src/manifest/pointer.js';
import { DEFAULT_CHUNKER_PARAMS } from '../src/chunking/params.js';
import { GitSandbox, SMALL_CHUNKS, cloneInto, pointerOf, randomBytesSeeded } from './helpers/git-env.js';

let sb: GitSandbox;
beforeAll(() => {
  sb = new GitSandbox('dits-proxy-remote-');
});
afterAll(() => sb?.cleanup());

const hash = (b: Buffer): string => blake3(b).toString('hex');
const url = (name: string): string => `dits::file://${path.join(sb.dir, 'remotes', name)}`;

describe('variants on a remote', () => {
  it('push sends them, a lazy clone fetches only the proxy (not the original), and a rename keeps it', async () => {
    const original = randomBytesSeeded(400_000, 5);
    const proxyBytes = randomBytesSeeded(20_000, 6);
    const author = sb.repo('author', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'clip.mov': original } });
    sb.mustGit(['add', '.'], author);
    sb.mustGit(['commit', '-q', '-m', 'v1'], author);
    const p = parsePointer(pointerOf(sb, author, 'HEAD', 'clip.mov'))!;
    const out = path.join(sb.dir, 'made-proxy.mov');
    fs.writeFileSync(out, proxyBytes);
    const store = ChunkStore.open(path.join(author, '.git', 'dits'));
    try {
      await storeVariant(store, p.oid, { kind: 'proxy', recipe: 'prores_proxy/h1080', status: 'ok', file: out, warnings: [] }, DEFAULT_CHUNKER_PARAMS);
      await storeVariant(store, p.oid, { kind: 'poster', recipe: '', status: 'failed', reason: 'every frame tried is black', ffmpegTail: ['...'], warnings: [] }, DEFAULT_CHUNKER_PARAMS);
    } finally {
      store.close();
    }
    sb.mustGit(['remote', 'add', 'origin', url('origin')], author);
    sb.mustGit(['push', '-q', 'origin', 'main'], author);
    const records = fs.readdirSync(path.join(sb.dir, 'remotes', 'origin', 'v1', 'variants', p.oid));
    expect(records.sort()).toEqual([expect.stringMatching(/^poster\.[0-9a-f]{16}\.json$/), expect.stringMatching(/^proxy\.[0-9a-f]{16}\.json$/)]);
    // pushing again sends no record twice
    sb.mustGit(['commit', '-q', '--allow-empty', '-m', 'again'], author);
    sb.mustGit(['push', '-q', 'origin', 'main'], author);

    const clone = cloneInto(sb, url('origin'), 'clone', { ...SMALL_CHUNKS, 'dits.fetchMode': 'lazy' });
    expect(fs.statSync(path.join(clone, 'clip.mov')).size).toBeLessThan(1024); // lazy: the original stays on the remote
    const fetched = sb.mustDits(['fetch-proxy', 'clip.mov'], clone);
    expect(fetched).toMatch(/1 file\(s\) have their proxy here/);
    const ls = JSON.parse(sb.mustDits(['proxy', 'ls', '--json'], clone)) as { path: string; variants: { kind: string; status: string; local: boolean; fileId?: string; reason?: string }[] }[];
    const proxy = ls[0]!.variants.find((v) => v.kind === 'proxy')!;
    expect(proxy).toMatchObject({ status: 'ok', local: true, fileId: hash(proxyBytes) });
    expect(ls[0]!.variants.find((v) => v.kind === 'poster')).toMatchObject({ status: 'failed', reason: 'every frame tried is black' });
    const cs = ChunkStore.open(path.join(clone, '.git', 'dits'));
    try {
      expect(contentPresent(cs, proxy.fileId ? cs.variantOwner(proxy.fileId)!.manifest! : '')).toBe(true);
      expect(contentPresent(cs, p.manifest)).toBe(false); // the original was not downloaded
    } finally {
      cs.close();
    }

    // a rename keeps the proxy: it is keyed by the original's file id, not the path
    sb.mustGit(['mv', 'clip.mov', 'renamed.mov'], author);
    sb.mustGit(['commit', '-q', '-m', 'rename'], author);
    sb.mustGit(['push', '-q', 'origin', 'main'], author);
    const clone2 = cloneInto(sb, url('origin'), 'clone2', { ...SMALL_CHUNKS, 'dits.fetchMode': 'lazy' });
    expect(sb.mustDits(['fetch-proxy', 'renamed.mov'], clone2)).toMatch(/1 file\(s\) have their proxy here/);
  });

  it('a file without a proxy anywhere is named', () => {
    const author = sb.repo('noproxy', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'b.mov': randomBytesSeeded(50_000, 8) } });
    sb.mustGit(['add', '.'], author);
    sb.mustGit(['commit', '-q', '-m', 'v1'], author);
    sb.mustGit(['remote', 'add', 'origin', url('noproxy')], author);
    sb.mustGit(['push', '-q', 'origin', 'main'], author);
    const r = sb.mustDits(['fetch-proxy', '--json'], author);
    expect(JSON.parse(r)).toMatchObject({ local: [], noProxy: ['b.mov'] });
  });
});
