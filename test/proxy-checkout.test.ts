/**
 * Checkout modes end to end (src/proxy/checkout-mode.ts): real git, real hooks, real
 * ProRes clips made by ffmpeg. A proxy is recorded in-process with storeVariant (as
 * `git dits proxy make` records it); everything after is git and bin/git-dits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DITS_BIN, GitSandbox, writeFile } from './helpers/git-env.js';
import { ChunkStore } from '../src/store/chunk-store.js';
import { storeVariant } from '../src/proxy/store-variant.js';
import { DEFAULT_CHUNKER_PARAMS } from '../src/chunking/params.js';
import { hashHex } from '../src/hashing/blake3.js';
import { findRepo } from '../src/git/repo.js';
import { parsePointer } from '../src/manifest/pointer.js';
import { writeProxiesForCheckout } from '../src/proxy/checkout-mode.js';

let sb: GitSandbox;
let clips: string;

/** A 2 s ProRes 422 HQ clip of `source` (an ffmpeg lavfi source), and its 160x90 ProRes Proxy. */
function makeClip(name: string, source: string): { orig: Buffer; proxy: Buffer } {
  const orig = path.join(clips, `${name}.mov`);
  const proxy = path.join(clips, `${name}-proxy.mov`);
  const ff = (args: string[]): void => {
    const r = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args]);
    if (r.status !== 0) throw new Error(`ffmpeg ${args.join(' ')}: ${r.stderr}`);
  };
  ff(['-f', 'lavfi', '-i', `${source}=size=320x180:rate=25`, '-t', '2', '-c:v', 'prores_ks', '-profile:v', '3', orig]);
  ff(['-i', orig, '-vf', 'scale=160:90', '-c:v', 'prores_ks', '-profile:v', '0', proxy]);
  return { orig: fs.readFileSync(orig), proxy: fs.readFileSync(proxy) };
}

let A: { orig: Buffer; proxy: Buffer };
let B: { orig: Buffer; proxy: Buffer };
let C: { orig: Buffer; proxy: Buffer };
let D: { orig: Buffer; proxy: Buffer };

beforeAll(() => {
  sb = new GitSandbox('dits-proxy-co-');
  clips = path.join(sb.dir, 'clips');
  fs.mkdirSync(clips);
  A = makeClip('a', 'testsrc');
  B = makeClip('b', 'smptebars');
  C = makeClip('c', 'testsrc2');
  D = makeClip('d', 'rgbtestsrc');
});
afterAll(() => sb.cleanup());

/** Records `proxy` as the ok proxy of `orig` in the repository's store. */
async function recordProxy(repo: string, clip: { orig: Buffer; proxy: Buffer }, name: string): Promise<void> {
  const file = path.join(sb.dir, `${name}-${path.basename(repo)}.proxy.mov`);
  fs.writeFileSync(file, clip.proxy);
  const store = ChunkStore.open(path.join(repo, '.git', 'dits'));
  try {
    await storeVariant(store, hashHex(clip.orig), { kind: 'proxy', recipe: 'prores_proxy/h90', status: 'ok', file, warnings: [] }, DEFAULT_CHUNKER_PARAMS);
  } finally {
    store.close();
  }
  fs.rmSync(file);
}

/** a.mov and c.mov with proxies, b.mov without, and a text file, committed. */
async function setup(name: string, config: Record<string, string> = {}): Promise<string> {
  const repo = sb.repo(name, { track: ['*.mov'], files: { 'a.mov': A.orig, 'b.mov': B.orig, 'clips/c.mov': C.orig, 'notes.txt': 'notes\n' }, config });
  sb.mustGit(['add', '-A'], repo);
  sb.mustGit(['commit', '-q', '-m', 'clips'], repo);
  await recordProxy(repo, A, 'a');
  await recordProxy(repo, C, 'c');
  return repo;
}

const read = (repo: string, rel: string): Buffer => fs.readFileSync(path.join(repo, rel));
const ino = (file: string): number => fs.statSync(file).ino;
const parked = (repo: string, clip: Buffer): string => path.join(repo, '.git', 'dits', 'parked', hashHex(clip));
const ditsEnv = (args: string[], cwd: string, env: NodeJS.ProcessEnv) => sb.run(DITS_BIN, args, cwd, undefined, env);

describe('git dits checkout --mode', () => {
  it('proxy: the proxy bytes at the original paths, git status/diff clean, nothing to commit, the file without a proxy named, status marks them', async () => {
    const repo = await setup('basic');
    const pointerA = sb.mustGit(['cat-file', 'blob', 'HEAD:a.mov'], repo);
    const r = sb.dits(['checkout', '--mode', 'proxy'], repo);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('Switched 2 file(s) to proxy');
    expect(r.stdout).toMatch(/No proxy recorded for 1 file\(s\), which stay original: b\.mov/);
    expect(read(repo, 'a.mov').equals(A.proxy)).toBe(true);
    expect(read(repo, 'clips/c.mov').equals(C.proxy)).toBe(true);
    expect(read(repo, 'b.mov').equals(B.orig)).toBe(true);
    expect(sb.status(repo)).toBe('');
    expect(sb.mustGit(['diff'], repo)).toBe('');
    sb.mustGit(['add', '-A'], repo);
    expect(sb.git(['commit', '-m', 'nothing'], repo).status).not.toBe(0); // nothing to commit
    expect(sb.mustGit(['rev-list', '--count', 'HEAD'], repo).trim()).toBe('1');

    // git reads the file again (new mtime): the clean filter answers the original's pointer
    const later = new Date(Date.now() + 5000);
    fs.utimesSync(path.join(repo, 'a.mov'), later, later);
    expect(sb.status(repo)).toBe('');
    sb.mustGit(['add', 'a.mov'], repo);
    expect(sb.mustGit(['diff', '--cached'], repo)).toBe('');
    expect(sb.mustGit(['cat-file', 'blob', ':a.mov'], repo)).toBe(pointerA);
    // git dits add (its own reading, no clean filter) stages the original's pointer as well
    fs.utimesSync(path.join(repo, 'a.mov'), later, new Date(Date.now() + 9000));
    sb.mustDits(['add', 'a.mov'], repo);
    expect(sb.mustGit(['cat-file', 'blob', ':a.mov'], repo)).toBe(pointerA);
    expect(sb.status(repo)).toBe('');

    const st = JSON.parse(sb.mustDits(['status', '--json'], repo)) as { path: string; state: string; proxy?: boolean }[];
    const byPath = new Map(st.map((x) => [x.path, x]));
    expect(byPath.get('clips/c.mov')).toMatchObject({ state: 'present', proxy: true });
    expect(byPath.get('b.mov')?.proxy).toBeUndefined();
    expect(sb.mustDits(['status', '--all'], repo)).toMatch(/clips\/c\.mov .*present, proxy/);

    // touched (git re-read it above): still marked a proxy, by its bytes
    expect(JSON.parse(sb.mustDits(['status', '--json', 'a.mov'], repo))).toMatchObject([{ path: 'a.mov', state: 'present', proxy: true }]);
    const js = JSON.parse(sb.mustDits(['checkout', '--mode', 'proxy', '--json'], repo)) as { already: string[]; noProxy: string[] };
    expect(js.already.sort()).toEqual(['a.mov', 'clips/c.mov']);
    expect(js.noProxy).toEqual(['b.mov']);
  });

  it('a commit of another file in proxy mode keeps the originals in the tree; switching back is byte-exact and by rename', async () => {
    const repo = await setup('commit-other');
    const pointerA = sb.mustGit(['cat-file', 'blob', 'HEAD:a.mov'], repo);
    const inoOrig = ino(path.join(repo, 'a.mov'));
    sb.mustDits(['checkout', '--mode', 'proxy'], repo);
    // the original was parked by a link: same inode, no copy
    expect(ino(parked(repo, A.orig))).toBe(inoOrig);
    const inoProxy = ino(path.join(repo, 'a.mov'));

    fs.appendFileSync(path.join(repo, 'notes.txt'), 'more\n');
    sb.mustGit(['add', '-A'], repo);
    sb.mustGit(['commit', '-q', '-m', 'notes'], repo);
    expect(sb.mustGit(['show', '--name-only', '--format=', 'HEAD'], repo).trim()).toBe('notes.txt');
    expect(sb.mustGit(['cat-file', 'blob', 'HEAD:a.mov'], repo)).toBe(pointerA);

    const r = sb.dits(['checkout', '--mode', 'original', '--json'], repo);
    expect(r.status, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as { switched: { path: string; how: string }[] };
    expect(rep.switched.map((s) => s.how)).toEqual(['parked', 'parked']);
    expect(read(repo, 'a.mov').equals(A.orig)).toBe(true);
    expect(read(repo, 'clips/c.mov').equals(C.orig)).toBe(true);
    expect(ino(path.join(repo, 'a.mov'))).toBe(inoOrig); // renamed back
    expect(ino(parked(repo, A.proxy))).toBe(inoProxy); // the proxy parked in turn
    expect(fs.existsSync(parked(repo, A.orig))).toBe(false);
    expect(sb.status(repo)).toBe('');

    // and once more to proxy: the parked proxy comes back, no write
    sb.mustDits(['checkout', '--mode', 'proxy', 'a.mov'], repo);
    expect(ino(path.join(repo, 'a.mov'))).toBe(inoProxy);
    expect(read(repo, 'a.mov').equals(A.proxy)).toBe(true);
    expect(read(repo, 'clips/c.mov').equals(C.orig)).toBe(true); // only the path named
    expect(sb.status(repo)).toBe('');
  });

  it('a modified proxy: the commit is refused with the way back; committed with --no-verify, the push is refused', async () => {
    const repo = await setup('edited');
    const remote = path.join(sb.dir, 'edited-remote');
    sb.mustGit(['remote', 'add', 'origin', `dits::file://${remote}`], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    sb.mustDits(['checkout', '--mode', 'proxy'], repo);
    fs.appendFileSync(path.join(repo, 'a.mov'), Buffer.from('an edit'));
    sb.mustGit(['add', 'a.mov'], repo);
    const c = sb.git(['commit', '-m', 'edited proxy'], repo);
    expect(c.status).not.toBe(0);
    expect(c.stderr).toContain('a.mov: an edited proxy');
    expect(c.stderr).toContain('git dits checkout --mode original a.mov');
    expect(c.stderr).toContain('git restore --staged a.mov');

    // staged, it is not taken for the original either
    expect(sb.dits(['checkout', '--mode', 'original', 'a.mov'], repo).stderr).toContain('left as they are: a.mov');

    sb.mustGit(['commit', '-q', '--no-verify', '-m', 'edited proxy'], repo);
    const p = sb.git(['push', 'origin', 'main'], repo);
    expect(p.status).not.toBe(0);
    expect(p.stderr).toMatch(/refusing to push to origin: 1 committed file version\(s\) are proxies/);
    expect(p.stderr).toContain('a.mov: an edited proxy');
    expect(sb.mustGit(['ls-remote', 'origin', 'main'], repo).split('\t')[0]).toBe(sb.mustGit(['rev-parse', 'HEAD~1'], repo).trim());

    // the proxy's own bytes committed whole at another path are refused as well
    sb.mustGit(['reset', '-q', '--hard', 'HEAD~1'], repo);
    writeFile(path.join(repo, 'copy.mov'), A.proxy);
    sb.mustGit(['add', 'copy.mov'], repo);
    expect(sb.git(['commit', '-m', 'copy'], repo).stderr).toContain('copy.mov: a proxy of original');
    sb.mustGit(['commit', '-q', '--no-verify', '-m', 'copy'], repo);
    expect(sb.git(['push', 'origin', 'main'], repo).stderr).toContain('copy.mov: a proxy of original');
  });

  it('switching to original refuses an edited proxy and leaves it as it is', async () => {
    const repo = await setup('edited-switch');
    sb.mustDits(['checkout', '--mode', 'proxy'], repo);
    fs.appendFileSync(path.join(repo, 'a.mov'), Buffer.from('edit'));
    expect(JSON.parse(sb.mustDits(['status', '--json', 'a.mov'], repo))).toMatchObject([{ path: 'a.mov', state: 'modified', proxy: true }]);
    expect(sb.mustDits(['status'], repo)).toContain('a.mov  ');
    expect(sb.mustDits(['status'], repo)).toContain('edited proxy: commit and push refuse it');
    const r = sb.dits(['checkout', '--mode', 'original'], repo);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/1 file\(s\) changed in the working tree were left as they are: a\.mov/);
    expect(sb.dits(['checkout', '--mode', 'bogus'], repo)).toMatchObject({ status: 2, stderr: expect.stringContaining("--mode is 'bogus', not a checkout mode") });
    expect(read(repo, 'a.mov').equals(Buffer.concat([A.proxy, Buffer.from('edit')]))).toBe(true);
    expect(read(repo, 'clips/c.mov').equals(C.orig)).toBe(true);
    // the way out the hints give: the edit moved away, then the original
    fs.renameSync(path.join(repo, 'a.mov'), path.join(sb.dir, 'my-edit.mov'));
    sb.mustDits(['checkout', '--mode', 'original', 'a.mov'], repo);
    expect(read(repo, 'a.mov').equals(A.orig)).toBe(true);
    expect(sb.status(repo)).toBe('');
  });

  it('git checkout of another branch and back writes proxies for proxy-mode paths; stash keeps them clean', async () => {
    const repo = await setup('branches');
    sb.mustGit(['checkout', '-q', '-b', 'other'], repo);
    fs.writeFileSync(path.join(repo, 'a.mov'), D.orig);
    sb.mustGit(['commit', '-q', '-am', 'a is d'], repo);
    await recordProxy(repo, D, 'd');
    sb.mustGit(['checkout', '-q', 'main'], repo);
    expect(read(repo, 'a.mov').equals(A.orig)).toBe(true);
    sb.mustDits(['checkout', '--mode', 'proxy'], repo);

    sb.mustGit(['checkout', '-q', 'other'], repo);
    expect(read(repo, 'a.mov').equals(D.proxy)).toBe(true);
    expect(read(repo, 'clips/c.mov').equals(C.proxy)).toBe(true);
    expect(sb.status(repo)).toBe('');
    sb.mustGit(['checkout', '-q', 'main'], repo);
    expect(read(repo, 'a.mov').equals(A.proxy)).toBe(true);
    expect(sb.status(repo)).toBe('');

    fs.appendFileSync(path.join(repo, 'notes.txt'), 'wip\n');
    sb.mustGit(['stash', '-q'], repo);
    expect(sb.status(repo)).toBe('');
    expect(read(repo, 'a.mov').equals(A.proxy)).toBe(true);
    sb.mustGit(['stash', 'pop', '-q'], repo);
    expect(sb.status(repo)).toBe(' M notes.txt\n');
    expect(read(repo, 'a.mov').equals(A.proxy)).toBe(true);
    expect(read(repo, 'clips/c.mov').equals(C.proxy)).toBe(true);

    // back to the originals, byte-exact (the one of this branch from parked/)
    sb.mustDits(['checkout', '--mode', 'original'], repo);
    expect(read(repo, 'a.mov').equals(A.orig)).toBe(true);
    expect(sb.status(repo)).toBe(' M notes.txt\n');
  });

  it('a new worktree starts original, unless dits.checkoutMode=proxy', async () => {
    const repo = await setup('worktrees');
    sb.mustDits(['checkout', '--mode', 'proxy'], repo);
    const wt1 = path.join(sb.dir, 'worktrees-wt1');
    sb.mustGit(['worktree', 'add', '-q', '-b', 'wt1', wt1], repo);
    expect(read(wt1, 'a.mov').equals(A.orig)).toBe(true);
    expect(read(repo, 'a.mov').equals(A.proxy)).toBe(true); // the main worktree keeps its mode
    sb.mustGit(['config', 'dits.checkoutMode', 'proxy'], repo);
    const wt2 = path.join(sb.dir, 'worktrees-wt2');
    sb.mustGit(['worktree', 'add', '-q', '-b', 'wt2', wt2], repo);
    expect(read(wt2, 'a.mov').equals(A.proxy)).toBe(true);
    expect(read(wt2, 'b.mov').equals(B.orig)).toBe(true);
    expect(sb.status(wt2)).toBe('');
    sb.mustDits(['checkout', '--mode', 'original', 'a.mov'], wt2);
    expect(read(wt2, 'a.mov').equals(A.orig)).toBe(true);
    expect(sb.status(wt2)).toBe('');
  });

  for (const point of ['switch-recorded', 'switch-moved-one']) {
    it(`killed mid-switch (${point}): each path holds the original or the proxy, and a rerun finishes; nothing is lost`, async () => {
      const repo = await setup(`crash-${point}`);
      const r = ditsEnv(['checkout', '--mode', 'proxy'], repo, { DITS_TEST_CRASH_AT: point });
      expect(r.status).not.toBe(0);
      for (const [rel, clip] of [['a.mov', A], ['clips/c.mov', C]] as const) {
        const b = read(repo, rel);
        expect(b.equals(clip.orig) || b.equals(clip.proxy), rel).toBe(true);
        // the original is at the path, or parked
        expect(b.equals(clip.orig) || fs.readFileSync(parked(repo, clip.orig)).equals(clip.orig), rel).toBe(true);
      }
      sb.mustDits(['checkout', '--mode', 'proxy'], repo);
      expect(sb.status(repo)).toBe('');
      expect(read(repo, 'a.mov').equals(A.proxy)).toBe(true);
      expect(read(repo, 'clips/c.mov').equals(C.proxy)).toBe(true);

      const back = ditsEnv(['checkout', '--mode', 'original'], repo, { DITS_TEST_CRASH_AT: point });
      expect(back.status).not.toBe(0);
      sb.mustDits(['checkout', '--mode', 'original'], repo);
      expect(read(repo, 'a.mov').equals(A.orig)).toBe(true);
      expect(read(repo, 'clips/c.mov').equals(C.orig)).toBe(true);
      expect(sb.status(repo)).toBe('');
    });
  }

  it('a proxy recorded but not here: the path stays original and the message names git dits fetch-proxy', async () => {
    const repo = await setup('not-local');
    const store = ChunkStore.open(path.join(repo, '.git', 'dits'));
    try {
      // a record as a fetch of the records alone leaves it: the content is on a remote only
      store.putVariant({ original: hashHex(B.orig), kind: 'proxy', recipe: 'prores_proxy/h90', status: 'ok', fileId: 'e'.repeat(64), size: 1000, manifest: 'f'.repeat(64), warnings: [], createdAt: Date.now() });
    } finally {
      store.close();
    }
    const r = sb.dits(['checkout', '--mode', 'proxy', 'b.mov', 'a.mov'], repo);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('the proxy of 1 file(s) is not in the local store: b.mov');
    expect(r.stderr).toContain('git dits fetch-proxy b.mov');
    expect(read(repo, 'b.mov').equals(B.orig)).toBe(true);
    expect(read(repo, 'a.mov').equals(A.proxy)).toBe(true);
    expect(sb.status(repo)).toBe('');

    // a checkout that brings b.mov back in proxy mode leaves it a pointer (its original is not
    // downloaded for nothing) and says why; switching it to original writes it
    sb.mustGit(['checkout', '-q', '-b', 'other'], repo);
    fs.writeFileSync(path.join(repo, 'b.mov'), D.orig);
    sb.mustGit(['commit', '-q', '-am', 'b is d'], repo);
    const back = sb.git(['checkout', 'main'], repo);
    expect(back.status, back.stderr).toBe(0);
    expect(back.stderr).toContain('1 file(s) in proxy mode left as pointers: their proxy is not in the local store (e.g. b.mov)');
    expect(read(repo, 'b.mov').toString('latin1')).toMatch(/^version dits\/1\n/);
    expect(sb.status(repo)).toBe('');
    const orig = JSON.parse(sb.mustDits(['checkout', '--mode', 'original', '--json', 'b.mov'], repo)) as { switched: unknown[] };
    expect(orig.switched).toEqual([{ path: 'b.mov', how: 'pointer' }]);
    expect(read(repo, 'b.mov').equals(B.orig)).toBe(true);
    expect(sb.status(repo)).toBe('');
  });

  it('gc drops parked files no path uses when their content is kept elsewhere, and keeps one that may be the last copy', async () => {
    const repo = await setup('gc-parked');
    sb.mustDits(['checkout', '--mode', 'proxy'], repo);
    sb.mustGit(['checkout', '-q', '-b', 'other'], repo);
    // a new version written over a proxy is taken for an edit of the proxy, until kept as one of its own
    fs.writeFileSync(path.join(repo, 'a.mov'), D.orig);
    expect(sb.git(['commit', '-q', '-am', 'a is d'], repo).stderr).toContain('git dits checkout --mode original --keep a.mov');
    expect(sb.mustDits(['checkout', '--mode', 'original', '--keep', 'a.mov'], repo)).toContain('Kept 1 changed file(s) as they are');
    expect(read(repo, 'a.mov').equals(D.orig)).toBe(true);
    sb.mustGit(['commit', '-q', '-am', 'a is d'], repo);
    expect(fs.existsSync(parked(repo, A.orig))).toBe(true);
    expect(fs.existsSync(parked(repo, C.orig))).toBe(true);
    const stray = path.join(repo, '.git', 'dits', 'parked', '9'.repeat(64)); // parked by a run killed before its record
    fs.writeFileSync(stray, 'unknown bytes');
    const dry = JSON.parse(sb.mustDits(['gc', '--dry-run', '--json'], repo)) as { parked: { dropped: number; keptLastCopy: string[] } };
    expect(dry.parked).toMatchObject({ dropped: 1, keptLastCopy: ['9'.repeat(64)] });
    expect(fs.existsSync(parked(repo, A.orig))).toBe(true);
    const out = sb.mustDits(['gc'], repo);
    expect(out).toContain('Removed 1 parked file(s) no path uses');
    expect(out).toContain('Kept 1 parked file(s) no path uses');
    expect(fs.existsSync(parked(repo, A.orig))).toBe(false); // a.mov is d here: a's original is in the store
    expect(fs.existsSync(parked(repo, C.orig))).toBe(true); // clips/c.mov shows its proxy: its original stays parked
    expect(fs.existsSync(stray)).toBe(true);
    sb.mustGit(['checkout', '-q', 'main'], repo);
    sb.mustDits(['checkout', '--mode', 'original'], repo);
    expect(read(repo, 'a.mov').equals(A.orig)).toBe(true); // written from the store
    expect(read(repo, 'clips/c.mov').equals(C.orig)).toBe(true);
    expect(sb.status(repo)).toBe('');
  });

  it('in a clone whose originals are only in the working tree: the parked original is the local copy; without it, switching back fetches it', async () => {
    const repo = await setup('clone-src');
    const remote = path.join(sb.dir, 'clone-remote');
    sb.mustGit(['remote', 'add', 'origin', `dits::file://${remote}`], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    const clone = path.join(sb.dir, 'clone-dst');
    sb.mustGit(['clone', '-q', `dits::file://${remote}`, clone], sb.dir);
    expect(read(clone, 'a.mov').equals(A.orig)).toBe(true);
    await recordProxy(clone, A, 'a');
    const inoOrig = ino(path.join(clone, 'a.mov'));
    sb.mustDits(['checkout', '--mode', 'proxy', 'a.mov'], clone);
    expect(read(clone, 'a.mov').equals(A.proxy)).toBe(true);
    expect(ino(parked(clone, A.orig))).toBe(inoOrig);
    // gc keeps it while a.mov can switch back to it
    sb.mustDits(['gc'], clone);
    expect(fs.existsSync(parked(clone, A.orig))).toBe(true);
    // a push to another remote takes the original's chunks from the parked file (origin is
    // away, and the clone's own link to the file it wrote is gone)
    fs.rmSync(path.join(clone, '.git', 'dits', 'wt'), { recursive: true, force: true });
    fs.renameSync(remote, `${remote}.away`);
    sb.mustGit(['remote', 'add', 'second', `dits::file://${path.join(sb.dir, 'clone-second')}`], clone);
    const pushed = sb.git(['push', 'second', 'main'], clone);
    fs.renameSync(`${remote}.away`, remote);
    expect(pushed.status, pushed.stderr).toBe(0);
    expect(pushed.stderr).toMatch(/took \d+ chunk\(s\) from working-tree files/);
    fs.rmSync(parked(clone, A.orig));
    const r = sb.dits(['checkout', '--mode', 'original', '--json', 'a.mov'], clone);
    expect(r.status, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { switched: { how: string }[] }).switched).toEqual([{ path: 'a.mov', how: 'pointer' }]);
    expect(read(clone, 'a.mov').equals(A.orig)).toBe(true);
    expect(sb.status(clone)).toBe('');
  });

  it('a parked file whose stat changed is used only if its bytes still hash to its id; else the version comes from the store', async () => {
    const repo = await setup('parked-checks');
    const inoA = ino(path.join(repo, 'a.mov'));
    sb.mustDits(['checkout', '--mode', 'proxy'], repo);
    // a.mov's parked original touched: a new mtime, the same bytes
    const later = new Date(Date.now() + 60_000);
    fs.utimesSync(parked(repo, A.orig), later, later);
    // clips/c.mov's parked original damaged in place: same size, other bytes
    const damaged = Buffer.from(C.orig);
    damaged[damaged.length >> 1] ^= 0xff;
    fs.writeFileSync(parked(repo, C.orig), damaged);
    const r = JSON.parse(sb.mustDits(['checkout', '--mode', 'original', '--json'], repo)) as { switched: { path: string; how: string }[] };
    expect(r.switched).toEqual([
      { path: 'a.mov', how: 'parked' },
      { path: 'clips/c.mov', how: 'store' },
    ]);
    expect(ino(path.join(repo, 'a.mov'))).toBe(inoA);
    expect(read(repo, 'a.mov').equals(A.orig)).toBe(true);
    expect(read(repo, 'clips/c.mov').equals(C.orig)).toBe(true);
    expect(fs.existsSync(parked(repo, C.orig))).toBe(false);
    expect(sb.status(repo)).toBe('');
  });

  it('a checkout of proxy-mode paths asks fetchProxies for the proxies it lacks (records and content) before writing them', async () => {
    const repo = sb.repo('fetch-hook', { track: ['*.mov'], files: { 'a.mov': A.orig }, config: { 'dits.checkoutMode': 'proxy' } });
    sb.mustGit(['add', '-A'], repo);
    sb.mustGit(['commit', '-q', '-m', 'a'], repo);
    const pointerText = sb.mustGit(['cat-file', 'blob', 'HEAD:a.mov'], repo);
    fs.writeFileSync(path.join(repo, 'a.mov'), pointerText); // as git leaves it for the hook
    const repoPaths = await findRepo(repo);
    const store = ChunkStore.open(repoPaths.ditsDir);
    const asked: string[][] = [];
    try {
      const res = await writeProxiesForCheckout(repoPaths, store, [{ path: 'a.mov', pointer: parsePointer(pointerText)! }], {
        fetchProxies: async (originals) => {
          asked.push(originals);
          const file = path.join(sb.dir, 'fetched-proxy.mov');
          fs.writeFileSync(file, A.proxy);
          await storeVariant(store, originals[0]!, { kind: 'proxy', recipe: 'r', status: 'ok', file, warnings: [] }, DEFAULT_CHUNKER_PARAMS);
        },
      });
      expect(res).toEqual({ written: ['a.mov'], notLocal: [] });
    } finally {
      store.close();
    }
    expect(asked).toEqual([[hashHex(A.orig)]]);
    expect(read(repo, 'a.mov').equals(A.proxy)).toBe(true);
    expect(sb.status(repo)).toBe('');
  });
});
