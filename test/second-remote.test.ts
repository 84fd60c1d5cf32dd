/**
 * Pushing to a second remote from a repository that does not keep every chunk locally: a
 * normal clone (content written only into the working tree), or a repository after prune.
 * The content comes from the local store, from working-tree files whose bytes verify, or
 * from the remote that holds it; when it is nowhere, the error names remotes, revision and
 * file and says what to do.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { blake3 } from '@napi-rs/blake-hash';
import { GitSandbox, SMALL_CHUNKS, cloneInto, randomBytesSeeded, writeFile } from './helpers/git-env.js';

let sb: GitSandbox;
beforeAll(() => {
  sb = new GitSandbox('dits-second-remote-');
});
afterAll(() => sb?.cleanup());

const CFG = SMALL_CHUNKS;
const hash = (b: Buffer): string => blake3(b).toString('hex');
const url = (name: string): string => `dits::file://${path.join(sb.dir, 'remotes', name)}`;

/** a.mov v1 then v2 (and b.mov), pushed to origin; returns the repository and the contents. */
function origin(name: string): { repo: string; v1: Buffer; v2: Buffer; b: Buffer } {
  const v1 = randomBytesSeeded(300_000, 80);
  const v2 = randomBytesSeeded(300_000, 81);
  const b = randomBytesSeeded(200_000, 82);
  const repo = sb.repo(name, { track: ['*.mov'], config: CFG, files: { 'a.mov': v1 } });
  sb.mustGit(['add', '.'], repo);
  sb.mustGit(['commit', '-q', '-m', 'v1'], repo);
  writeFile(path.join(repo, 'a.mov'), v2);
  writeFile(path.join(repo, 'b.mov'), b);
  sb.mustGit(['add', '.'], repo);
  sb.mustGit(['commit', '-q', '-m', 'v2'], repo);
  sb.mustGit(['remote', 'add', 'origin', url(`${name}-origin`)], repo);
  sb.mustGit(['push', '-q', 'origin', 'main'], repo);
  return { repo, v1, v2, b };
}

function expectCloneOf(remoteUrl: string, dir: string, o: { v1: Buffer; v2: Buffer; b: Buffer }): void {
  const c = cloneInto(sb, remoteUrl, dir, CFG);
  expect(hash(fs.readFileSync(path.join(c, 'a.mov')))).toBe(hash(o.v2));
  expect(hash(fs.readFileSync(path.join(c, 'b.mov')))).toBe(hash(o.b));
  sb.mustGit(['checkout', '-q', 'HEAD~1'], c);
  expect(hash(fs.readFileSync(path.join(c, 'a.mov')))).toBe(hash(o.v1));
}

describe('push to a second remote', () => {
  it('from a normal clone: the checked-out files from the working tree, older versions from the remote that holds them', () => {
    const o = origin('clone-src');
    const c = cloneInto(sb, url('clone-src-origin'), 'clone', CFG);
    sb.mustGit(['remote', 'add', 'server', url('clone-server')], c);
    // the dry runs plan it too (the chunks not kept here counted as to upload)
    const dry = sb.git(['push', '--dry-run', 'server', 'main'], c);
    expect(dry.status, dry.stderr).toBe(0);
    const plan = JSON.parse(sb.mustDits(['push', '--dry-run', '--json', 'server'], c));
    expect(plan.chunksToObtain).toBeGreaterThan(0);
    expect(plan.chunks).toBeGreaterThanOrEqual(plan.chunksToObtain);
    expect(sb.mustDits(['push', '--dry-run', 'server'], c)).toMatch(/not kept here/);
    const before = JSON.parse(sb.mustDits(['du', '--json'], c));
    const r = sb.git(['push', 'server', 'main'], c);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/took \d+ chunk\(s\) from working-tree files/);
    expect(r.stderr).toMatch(/fetched \d+ chunk\(s\) from origin/);
    // what was obtained to be sent on is not kept: the clone's store is as small as before
    expect(JSON.parse(sb.mustDits(['du', '--json'], c)).chunks).toBe(before.chunks);
    expectCloneOf(url('clone-server'), 'clone-server-check', o);
  });

  it('the checked-out files verify and are used without the other remote', () => {
    const o = origin('wt-src');
    const c = cloneInto(sb, url('wt-src-origin'), 'wt', CFG);
    // only HEAD goes to the new remote; origin is gone: the working tree is the only source
    fs.renameSync(path.join(sb.dir, 'remotes', 'wt-src-origin'), path.join(sb.dir, 'remotes', 'wt-src-origin.away'));
    sb.mustGit(['remote', 'add', 'server', url('wt-server')], c);
    sb.mustGit(['checkout', '-q', '--orphan', 'only-head'], c);
    sb.mustGit(['commit', '-q', '-m', 'head only'], c);
    const r = sb.git(['push', 'server', 'only-head'], c);
    expect(r.status, r.stderr).toBe(0);
    const check = cloneInto(sb, url('wt-server'), 'wt-check', CFG, ['-b', 'only-head']);
    expect(hash(fs.readFileSync(path.join(check, 'a.mov')))).toBe(hash(o.v2));
    expect(hash(fs.readFileSync(path.join(check, 'b.mov')))).toBe(hash(o.b));
  });

  it('after prune: the pruned chunks come back from the remote that holds them', () => {
    const o = origin('pruned');
    sb.mustDits(['prune', '--older-than', '0s'], o.repo);
    sb.mustGit(['remote', 'add', 'server', url('pruned-server')], o.repo);
    const before = JSON.parse(sb.mustDits(['du', '--json'], o.repo));
    const r = sb.git(['push', 'server', 'main'], o.repo);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(sb.mustDits(['du', '--json'], o.repo)).chunks).toBe(before.chunks); // prune's work stays done
    expectCloneOf(url('pruned-server'), 'pruned-check', o);
  });

  it('content found nowhere: the error names the remotes, the revision and the file, and what to do', () => {
    origin('lost');
    const c = cloneInto(sb, url('lost-origin'), 'lost-clone', CFG);
    fs.renameSync(path.join(sb.dir, 'remotes', 'lost-origin'), path.join(sb.dir, 'remotes', 'lost-origin.away'));
    // the checked-out a.mov edited in place: its bytes no longer verify
    const f = path.join(c, 'a.mov');
    const bytes = fs.readFileSync(f);
    bytes[1000] ^= 0xff;
    fs.writeFileSync(f, bytes);
    sb.mustGit(['remote', 'add', 'server', url('lost-server')], c);
    const r = sb.git(['push', 'server', 'main'], c);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/a\.mov/);
    expect(r.stderr).toMatch(/server/);
    expect(r.stderr).toMatch(/origin/);
    const head = sb.mustGit(['rev-parse', '--short', 'HEAD'], c).trim();
    const parent = sb.mustGit(['rev-parse', '--short', 'HEAD~1'], c).trim();
    expect(r.stderr).toMatch(new RegExp(`${head}|${parent}`));
    expect(r.stderr).toMatch(/hint:/);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    expect(sb.mustGit(['ls-remote', 'server'], c)).toBe(''); // no ref to missing content
  });

  it('a chunk found nowhere (the checked-out file edited, the other remote gone): named with file, revision and remotes', () => {
    origin('lost-chunk');
    const c = cloneInto(sb, url('lost-chunk-origin'), 'lost-chunk-clone', CFG);
    fs.renameSync(path.join(sb.dir, 'remotes', 'lost-chunk-origin'), path.join(sb.dir, 'remotes', 'lost-chunk-origin.away'));
    const f = path.join(c, 'a.mov');
    const bytes = fs.readFileSync(f);
    bytes[1000] ^= 0xff; // one chunk of a.mov no longer verifies; the others do
    fs.writeFileSync(f, bytes);
    sb.mustGit(['remote', 'add', 'server', url('lost-chunk-server')], c);
    sb.mustGit(['checkout', '-q', '--orphan', 'only-head'], c);
    sb.mustGit(['commit', '-q', '-m', 'head only'], c);
    const r = sb.git(['push', 'server', 'only-head'], c);
    expect(r.status).not.toBe(0);
    const head = sb.mustGit(['rev-parse', '--short', 'HEAD'], c).trim();
    expect(r.stderr).toContain(`a.mov, the version committed in ${head} "head only": 1 chunk(s)`);
    expect(r.stderr).toMatch(/cannot push to server/);
    expect(r.stderr).toMatch(/remotes tried: origin/);
    expect(r.stderr).toMatch(/hint:/);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  });
});
