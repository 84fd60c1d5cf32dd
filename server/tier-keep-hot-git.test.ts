/**
 * serverKeepHot on a repository's stored git data (pushed with real git to a `dits::file://`
 * remote, read as the server reads its repositories' storage): the patterns a client
 * published resolve on the server's bare cache (branches, tags, path globs), the server's
 * own patterns replace the default branch, a repository with no default branch (no HEAD,
 * main or master) and no list
 * keeps nothing known, and git data listed but missing is refused.
 */
import { chmodSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeepHotUnreadable, serverKeepHot } from './tier-keep-hot.js';
import { GitSandbox, randomBytesSeeded, writeFile } from '../test/helpers/git-env.js';
import { parsePointer } from '../src/manifest/pointer.js';
import { bareRefs, computeKeepHot, publishKeepHot } from '../src/tier/keep-hot.js';
import { encodeRefState, readRefState, REFS_KEY } from '../src/remote/remote-state.js';
import { FileStorage } from '../src/transfer/file-storage.js';

const CFG = { 'dits.chunkMin': '1024', 'dits.chunkAvg': '4096', 'dits.chunkMax': '16384', 'dits.smudgeInlineMax': '64k', 'dits.packSize': '256k' };

let sb: GitSandbox;
let repo: string;
const manifestOf = (rev: string): string => parsePointer(Buffer.from(sb.mustGit(['cat-file', '-p', rev], repo)))!.manifest;
const remoteDir = (name: string): string => path.join(sb.dir, 'remotes', name);
const cacheDir = (name: string): string => path.join(sb.dir, 'cache', `${name}.git`);

beforeAll(() => {
  sb = new GitSandbox('dits-srvhot-git-');
  repo = sb.repo('src', { track: ['*.mov'], config: CFG, files: { 'a.mov': randomBytesSeeded(20_000, 1), 'b.mov': randomBytesSeeded(20_000, 2) } });
  sb.mustGit(['add', '.'], repo);
  sb.mustGit(['commit', '-q', '-m', 'one'], repo);
  sb.mustGit(['tag', 'v1.0'], repo);
  sb.mustGit(['checkout', '-q', '-b', 'release'], repo);
  writeFile(path.join(repo, 'a.mov'), randomBytesSeeded(20_000, 3));
  sb.mustGit(['commit', '-q', '-am', 'release cut'], repo);
  sb.mustGit(['checkout', '-q', 'main'], repo);
  writeFile(path.join(repo, 'a.mov'), randomBytesSeeded(20_000, 4));
  sb.mustGit(['commit', '-q', '-am', 'two'], repo);
  for (const name of ['patterns', 'missing']) sb.mustGit(['push', '-q', '--follow-tags', `dits::file://${remoteDir(name)}`, 'main', 'release', 'v1.0'], repo);
  sb.mustGit(['push', '-q', `dits::file://${remoteDir('nodefault')}`, 'release:dev'], repo);
}, 120_000);
afterAll(() => sb?.cleanup());

describe('serverKeepHot', () => {
  it('resolves the default branch plus the published patterns (branch:, tag:, path globs) on its bare cache, united with the published list', async () => {
    const storage = new FileStorage(remoteDir('patterns'));
    const stale = '0'.repeat(64);
    await publishKeepHot(storage, { at: 1, patterns: ['branch:release', 'tag:v*', 'nothing/**'], resolved: [], manifests: [stale] });
    const k = await serverKeepHot(storage, cacheDir('patterns'), [], Date.now());
    expect(k.summary.defaultBranch).toBe('refs/heads/main');
    const want = ['main:a.mov', 'main:b.mov', 'release:a.mov', 'v1.0:a.mov'].map(manifestOf);
    expect([...k.manifests!].sort()).toEqual([...new Set([...want, stale])].sort());
    expect(k.summary.unresolved).toEqual([]);
    // the server's own patterns replace the default branch (published ones still count)
    rmSync(cacheDir('patterns'), { recursive: true, force: true });
    await publishKeepHot(storage, { at: 1, patterns: [], resolved: [], manifests: [] });
    const own = await serverKeepHot(storage, cacheDir('patterns'), ['branch:release'], Date.now());
    expect([...own.manifests!].sort()).toEqual(['release:a.mov', 'release:b.mov'].map(manifestOf).sort());
    // a branch deleted on the remote leaves the cache too: its files are no longer kept hot
    sb.mustGit(['push', '-q', `dits::file://${remoteDir('patterns')}`, ':release'], repo);
    const gone = await serverKeepHot(storage, cacheDir('patterns'), ['(default branch)', 'branch:release'], Date.now());
    expect(gone.summary.unresolved).toEqual(['branch:release: the repository has no branch release known here']);
    expect([...gone.manifests!].sort()).toEqual(['main:a.mov', 'main:b.mov'].map(manifestOf).sort());
  });

  it('no default branch and no published list: nothing known (the reaper then moves nothing); a published list alone is used', async () => {
    const storage = new FileStorage(remoteDir('nodefault'));
    // only a branch `dev`, which a first push makes HEAD: the refs object names no HEAD here
    const { state } = await readRefState(storage);
    expect(state.head).toBe('refs/heads/dev');
    await storage.put(REFS_KEY, encodeRefState({ ...state, head: null }));
    const none = await serverKeepHot(storage, cacheDir('nodefault'), [], Date.now());
    expect(none.manifests).toBeNull();
    expect(none.summary.unresolved.join('\n')).toMatch(/no default branch of the repository/);
    await publishKeepHot(storage, { at: 1, patterns: [], resolved: [], manifests: [manifestOf('release:a.mov')] });
    const listed = await serverKeepHot(storage, cacheDir('nodefault'), [], Date.now());
    expect([...listed.manifests!]).toEqual([manifestOf('release:a.mov')]);
  });

  it('a damaged cache is built again from the storage: a HEAD that is not a repository any more, a corrupt object', async () => {
    const storage = new FileStorage(remoteDir('cache'));
    sb.mustGit(['push', '-q', `dits::file://${remoteDir('cache')}`, 'main'], repo);
    const want = ['main:a.mov', 'main:b.mov'].map(manifestOf).sort();
    const first = await serverKeepHot(storage, cacheDir('cache'), [], Date.now());
    expect([...first.manifests!].sort()).toEqual(want);
    writeFileSync(path.join(cacheDir('cache'), 'HEAD'), 'garbage\n');
    const again = await serverKeepHot(storage, cacheDir('cache'), [], Date.now());
    expect(again.summary.bundlesApplied).toBe(1);
    expect([...again.manifests!].sort()).toEqual(want);
    // every object file of the cache damaged: git fails, the cache is rebuilt once
    const packDir = path.join(cacheDir('cache'), 'objects', 'pack');
    for (const f of readdirSync(packDir).filter((f) => f.endsWith('.pack'))) {
      const file = path.join(packDir, f);
      const bytes = readFileSync(file);
      bytes.fill(0x5a, 12, bytes.length - 20);
      chmodSync(file, 0o644);
      writeFileSync(file, bytes);
    }
    const rebuilt = await serverKeepHot(storage, cacheDir('cache'), [], Date.now());
    expect(rebuilt.summary.bundlesApplied).toBe(1);
    expect([...rebuilt.manifests!].sort()).toEqual(want);
  });

  it('on a bare repository a file whose blob cannot be read is an error, not a file that is not a pointer', async () => {
    const bare = path.join(sb.dir, 'holes.git');
    sb.mustGit(['init', '-q', '--bare', bare], sb.dir);
    const pointerBlob = sb.mustGit(['hash-object', '-w', '--stdin'], bare, sb.mustGit(['cat-file', '-p', 'main:b.mov'], repo)).trim();
    const lost = 'e'.repeat(40);
    const tree = sb.mustGit(['mktree', '--missing'], bare, `100644 blob ${pointerBlob}\tb.mov\n100644 blob ${lost}\ta.mov\n`).trim();
    const commit = sb.mustGit(['commit-tree', tree, '-m', 'holes'], bare).trim();
    sb.mustGit(['update-ref', 'refs/heads/main', commit], bare);
    const refs = await bareRefs(bare, null);
    expect(refs.defaultRef).toBe('refs/heads/main');
    await expect(computeKeepHot(bare, refs, [], 1)).rejects.toThrow(new RegExp(`blob ${lost} \\(a.mov\\) cannot be read`));
    // a clone's view (not strict) takes it for a file that is not a pointer, as before
    const lax = await computeKeepHot(bare, { ...refs, strict: false }, [], 1);
    expect(lax.manifests).toEqual([manifestOf('main:b.mov')]);
  });

  it('a bundle listed in the refs object but missing from the storage: KeepHotUnreadable, saying which', async () => {
    const storage = new FileStorage(remoteDir('missing'));
    const { state } = await readRefState(storage);
    unlinkSync(path.join(remoteDir('missing'), state.bundles[0]!.key));
    const err = await serverKeepHot(storage, cacheDir('missing'), [], Date.now()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeepHotUnreadable);
    expect((err as Error).message).toMatch(new RegExp(`so nothing was moved: .*${state.bundles[0]!.key}.* is missing`));
  });
});
