/**
 * The whole proxy workflow with real git, real ffmpeg and a dits::file remote: make the
 * proxies, push, clone in proxy mode (only proxies downloaded), git status clean, edit and
 * commit a file that is not a proxy, push; then switch to the originals, byte-exact, and
 * back to the proxies by a rename.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { blake3 } from '@napi-rs/blake-hash';
import { openFfmpeg, type Ffmpeg } from '../src/media/ffmpeg.js';
import { makeClip } from '../src/proxy/test-clips.js';
import { ChunkStore } from '../src/store/chunk-store.js';
import { contentPresent } from '../src/store/materialize.js';
import { parsePointer } from '../src/manifest/pointer.js';
import { GitSandbox, cloneInto, pointerOf } from './helpers/git-env.js';

let sb: GitSandbox;
let ff: Ffmpeg;
beforeAll(async () => {
  sb = new GitSandbox('dits-proxy-e2e-');
  ff = await openFfmpeg();
});
afterAll(() => sb?.cleanup());

const hash = (f: string): string => blake3(fs.readFileSync(f)).toString('hex');
const url = (name: string): string => `dits::file://${path.join(sb.dir, 'remotes', name)}`;
const du = (dir: string): number => {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n += fs.statSync(path.join(e.parentPath, e.name)).size;
  return n;
};

describe('proxies end to end', () => {
  it('make, push, clone in proxy mode, status clean, commit a non-proxy edit, switch to originals byte-exact', async () => {
    // originals big enough that a proxy is much smaller (ProRes 422 HQ at 1280x720)
    const author = sb.repo('author', { track: ['*.mov'], config: { 'dits.proxy.height': '180' } });
    fs.mkdirSync(path.join(author, 'footage'));
    for (const name of ['a.mov', 'b.mov']) {
      await makeClip(ff, path.join(author, 'footage', name), { size: '1280x720', duration: 2, timecode: '10:00:00:00', audioTracks: [2] });
    }
    // a ProRes HQ copy: the camera-original look
    await ff.run(['-y', '-i', `file:${path.join(author, 'footage', 'a.mov')}`, '-map', '0', '-c:v', 'prores_ks', '-profile:v', '3', '-c:a', 'copy', `file:${path.join(author, 'footage', 'hq.mov')}`]);
    fs.writeFileSync(path.join(author, 'edit.txt'), 'cut 1\n');
    sb.mustGit(['add', '.'], author);
    sb.mustGit(['commit', '-q', '-m', 'footage'], author);
    const originals = Object.fromEntries(['a.mov', 'b.mov', 'hq.mov'].map((f) => [f, hash(path.join(author, 'footage', f))]));
    sb.mustDits(['proxy', 'make', '--all', '--kinds', 'proxy,poster'], author);
    sb.mustGit(['remote', 'add', 'origin', url('origin')], author);
    sb.mustGit(['push', '-q', 'origin', 'main'], author);

    // a clone in proxy mode downloads only proxies
    const clone = cloneInto(sb, url('origin'), 'clone', { 'dits.checkoutMode': 'proxy' });
    const oids: Record<string, string> = {};
    for (const f of Object.keys(originals)) oids[f] = parsePointer(pointerOf(sb, clone, 'HEAD', `footage/${f}`))!.oid;
    const store = ChunkStore.open(path.join(clone, '.git', 'dits'));
    try {
      for (const f of Object.keys(originals)) {
        const p = parsePointer(pointerOf(sb, clone, 'HEAD', `footage/${f}`))!;
        expect(contentPresent(store, p.manifest), f).toBe(false); // the original stayed on the remote
        const proxy = store.variantsOf(p.oid, 'proxy')[0]!;
        expect(hash(path.join(clone, 'footage', f)), f).toBe(proxy.fileId); // the proxy at the original's path
      }
    } finally {
      store.close();
    }
    const originalBytes = Object.keys(originals).reduce((n, f) => n + fs.statSync(path.join(author, 'footage', f)).size, 0);
    const fetched = du(path.join(clone, '.git', 'dits', 'packs'));
    expect(fetched).toBeLessThan(originalBytes * 0.5);
    expect(sb.status(clone)).toBe('');
    expect(sb.mustGit(['diff', '--stat'], clone)).toBe('');
    const status = JSON.parse(sb.mustDits(['status', '--json'], clone)) as { files?: { path: string; proxy?: boolean }[] } | { path: string; proxy?: boolean }[];
    const rows = Array.isArray(status) ? status : (status.files ?? []);
    expect(rows.filter((r) => r.proxy).map((r) => r.path).sort()).toEqual(['footage/a.mov', 'footage/b.mov', 'footage/hq.mov']);

    // an edit of a file that is not a proxy is committed and pushed as usual; the tree keeps the originals
    fs.appendFileSync(path.join(clone, 'edit.txt'), 'cut 2\n');
    sb.mustGit(['commit', '-q', '-am', 'edit in proxy mode'], clone);
    expect(sb.status(clone)).toBe('');
    for (const f of Object.keys(originals)) expect(parsePointer(pointerOf(sb, clone, 'HEAD', `footage/${f}`))!.oid).toBe(oids[f]);
    sb.mustGit(['push', '-q', 'origin', 'main'], clone);
    sb.mustGit(['pull', '-q', '--no-rebase', 'origin', 'main'], author);
    for (const f of Object.keys(originals)) expect(hash(path.join(author, 'footage', f)), f).toBe(originals[f]);
    expect(fs.readFileSync(path.join(author, 'edit.txt'), 'utf8')).toBe('cut 1\ncut 2\n');

    // back to the originals: fetched and byte-exact
    sb.mustDits(['checkout', '--mode', 'original', 'footage'], clone);
    for (const f of Object.keys(originals)) expect(hash(path.join(clone, 'footage', f)), f).toBe(originals[f]);
    expect(sb.status(clone)).toBe('');
    // and to proxy again: a rename of the parked proxies, status still clean
    const again = sb.mustDits(['checkout', '--mode', 'proxy', 'footage/a.mov'], clone);
    expect(again).toMatch(/by a rename, no copy/);
    expect(sb.status(clone)).toBe('');
  }, 180_000);
});
