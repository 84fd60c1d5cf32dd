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

describe('proxy mode with the git verbs around it', () => {
  it('pull of a new version, rebase, cherry-pick keep proxies and a clean status; and so does a clone on a machine that never ran `git dits install`', async () => {
    const author = sb.repo('verbs-author', { track: ['*.mov'], config: { 'dits.proxy.height': '90' } });
    await makeClip(ff, path.join(author, 'a.mov'), { size: '640x360', duration: 1 });
    fs.writeFileSync(path.join(author, 'notes.txt'), 'one\n');
    sb.mustGit(['add', '.'], author);
    sb.mustGit(['commit', '-q', '-m', 'v1'], author);
    sb.mustDits(['proxy', 'make', '--kinds', 'proxy'], author);
    sb.mustGit(['remote', 'add', 'origin', url('verbs')], author);
    sb.mustGit(['push', '-q', 'origin', 'main'], author);
    const clone = cloneInto(sb, url('verbs'), 'verbs-clone', { 'dits.checkoutMode': 'proxy' });
    const proxyOf = (repo: string, rev: string): string => {
      const store = ChunkStore.open(path.join(repo, '.git', 'dits'));
      try {
        return store.variantsOf(parsePointer(pointerOf(sb, repo, rev, 'a.mov'))!.oid, 'proxy')[0]!.fileId!;
      } finally {
        store.close();
      }
    };
    expect(hash(path.join(clone, 'a.mov'))).toBe(proxyOf(clone, 'HEAD'));

    // a new version upstream, with its proxy: pull writes the new proxy
    await makeClip(ff, path.join(author, 'a.mov'), { size: '640x360', duration: 1, metadata: { title: 'take 2' }, blackSeconds: 0.2 });
    sb.mustGit(['commit', '-q', '-am', 'v2'], author);
    sb.mustDits(['proxy', 'make', '--kinds', 'proxy'], author);
    sb.mustGit(['push', '-q', 'origin', 'main'], author);
    sb.mustGit(['pull', '-q', '--no-rebase', 'origin', 'main'], clone);
    expect(hash(path.join(clone, 'a.mov'))).toBe(proxyOf(clone, 'HEAD'));
    expect(sb.status(clone)).toBe('');

    // a local commit rebased onto a new upstream commit, then cherry-picked elsewhere
    fs.appendFileSync(path.join(clone, 'notes.txt'), 'local\n');
    sb.mustGit(['commit', '-q', '-am', 'local note'], clone);
    fs.writeFileSync(path.join(author, 'other.txt'), 'upstream\n');
    sb.mustGit(['add', 'other.txt'], author);
    sb.mustGit(['commit', '-q', '-m', 'upstream'], author);
    sb.mustGit(['push', '-q', 'origin', 'main'], author);
    sb.mustGit(['pull', '-q', '--rebase', 'origin', 'main'], clone);
    expect(sb.status(clone)).toBe('');
    expect(hash(path.join(clone, 'a.mov'))).toBe(proxyOf(clone, 'HEAD'));
    sb.mustGit(['checkout', '-q', '-b', 'side', 'HEAD~2'], clone);
    sb.mustGit(['cherry-pick', 'main'], clone);
    expect(sb.status(clone)).toBe('');
    expect(hash(path.join(clone, 'a.mov'))).toBe(proxyOf(clone, 'HEAD'));
    // the commits made in proxy mode still hold the original's pointer
    expect(parsePointer(pointerOf(sb, clone, 'main', 'a.mov'))!.oid).toBe(parsePointer(pointerOf(sb, author, 'main', 'a.mov'))!.oid);

    // a machine that never ran `git dits install`: git-remote-dits sets the clone up
    // (clone-setup.test.ts), and proxy mode holds there too
    const bare = new GitSandbox('dits-proxy-noinstall-', { install: false });
    try {
      const c = path.join(bare.dir, 'c');
      const r = bare.git(['clone', '-q', '-c', 'dits.checkoutMode=proxy', url('verbs'), c], bare.dir);
      expect(r.status, r.stderr).toBe(0);
      expect(hash(path.join(c, 'a.mov'))).toBe(proxyOf(c, 'HEAD'));
      expect(bare.mustGit(['status', '--porcelain'], c)).toBe('');
    } finally {
      bare.cleanup();
    }
  }, 180_000);
});
