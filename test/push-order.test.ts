/**
 * The order of a push (DESIGN.md invariant 4) while its git data is prepared alongside the
 * content upload: the bundle is written locally while chunks upload, but it reaches the
 * remote only after all content, and the ref only after the bundle. A push whose content
 * fails leaves no git data and no ref on the remote, and nothing of its own behind here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { GitSandbox, SMALL_CHUNKS, cloneInto, randomBytesSeeded } from './helpers/git-env.js';

let sb: GitSandbox;
beforeAll(() => {
  sb = new GitSandbox('dits-push-order-');
});
afterAll(() => sb?.cleanup());

const listFiles = (dir: string): string[] => (fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }).map(String) : []);

describe('push order', () => {
  it('a push whose content fails uploads no git data and moves no ref; the re-run pushes everything in order', () => {
    const dir = path.join(sb.dir, 'remotes', 'order');
    const url = `dits::file://${dir}`;
    const content = randomBytesSeeded(3_000_000, 7);
    const repo = sb.repo('order', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': content } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'one'], repo);
    sb.mustGit(['remote', 'add', 'origin', url], repo);

    // the local packs made unreadable: the content upload fails partway (each chunk is read and verified as it streams)
    const packs = path.join(repo, '.git', 'dits', 'packs');
    const packFiles = listFiles(packs).filter((f) => f.endsWith('.pack'));
    expect(packFiles.length).toBeGreaterThan(0);
    for (const f of packFiles) fs.renameSync(path.join(packs, f), path.join(packs, `${f}.away`));
    const failed = sb.git(['push', 'origin', 'main'], repo);
    expect(failed.status).not.toBe(0);
    expect(listFiles(path.join(dir, 'v1', 'git'))).toEqual([]); // no git data before its content
    expect(sb.mustGit(['ls-remote', 'origin'], repo)).toBe('');
    // the bundle written meanwhile and its temporary refs are gone
    expect(listFiles(path.join(repo, '.git', 'dits', 'tmp')).filter((f) => f.endsWith('.bundle'))).toEqual([]);
    expect(sb.mustGit(['for-each-ref', 'refs/dits-push/'], repo)).toBe('');

    for (const f of packFiles) fs.renameSync(path.join(packs, `${f}.away`), path.join(packs, f));
    const again = sb.git(['push', 'origin', 'main'], repo);
    expect(again.status, again.stderr).toBe(0);
    const bundles = listFiles(path.join(dir, 'v1', 'git')).filter((f) => f.endsWith('.bundle'));
    expect(bundles).toHaveLength(1);
    // the bundle was written after every pack and manifest it depends on
    const mtime = (f: string): number => fs.statSync(f).mtimeMs;
    const bundleTime = mtime(path.join(dir, 'v1', 'git', bundles[0]!));
    const contentFiles = [...listFiles(path.join(dir, 'v1', 'packs')).map((f) => path.join(dir, 'v1', 'packs', f)), ...listFiles(path.join(dir, 'v1', 'objects')).map((f) => path.join(dir, 'v1', 'objects', f))].filter((f) => fs.statSync(f).isFile());
    expect(contentFiles.length).toBeGreaterThan(1);
    for (const f of contentFiles) expect(mtime(f)).toBeLessThanOrEqual(bundleTime);
    expect(sb.mustGit(['for-each-ref', 'refs/dits-push/'], repo)).toBe('');

    const c = cloneInto(sb, url, 'order-clone', SMALL_CHUNKS);
    expect(fs.readFileSync(path.join(c, 'a.mov')).equals(content)).toBe(true);
  });
});
