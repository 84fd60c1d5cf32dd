/**
 * `git dits proxy make` with real git and real ffmpeg: variants for every tracked video,
 * bad inputs recorded as failed with their reason while the others go on and the originals
 * stay untouched, a second run that makes nothing again, a run interrupted midway that the
 * next one finishes, content read from the store when the working tree lacks it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { blake3 } from '@napi-rs/blake-hash';
import { openFfmpeg, type Ffmpeg } from '../src/media/ffmpeg.js';
import { makeAudioOnly, makeClip, truncateCopy } from '../src/proxy/test-clips.js';
import { DITS_BIN, GitSandbox } from './helpers/git-env.js';

let sb: GitSandbox;
let ff: Ffmpeg;
beforeAll(async () => {
  sb = new GitSandbox('dits-proxy-make-');
  ff = await openFfmpeg();
});
afterAll(() => sb?.cleanup());

const hash = (f: string): string => blake3(fs.readFileSync(f)).toString('hex');

interface LsRow {
  path: string;
  original: string;
  variants: { kind: string; status: string; reason?: string; recipe: string; local: boolean; warnings: string[] }[];
}
const ls = (repo: string): LsRow[] => JSON.parse(sb.mustDits(['proxy', 'ls', '--json'], repo)) as LsRow[];
const kindsOf = (row: LsRow | undefined, status: string): string[] => (row?.variants ?? []).filter((v) => v.status === status).map((v) => v.kind).sort();

describe('git dits proxy make', () => {
  it('makes every variant of good clips, records bad inputs as failed with why, leaves the originals alone, and a second run makes nothing', async () => {
    const repo = sb.repo('make', { track: ['*.mov', '*.mp4'] });
    await makeClip(ff, path.join(repo, 'df.mov'), { rate: '30000/1001', timecode: '01:00:00;00', audioTracks: [4], reel: 'A001' });
    await makeClip(ff, path.join(repo, 'b.mp4'), { audioTracks: [2] });
    truncateCopy(path.join(repo, 'df.mov'), path.join(repo, 'truncated.mov'), 0.5);
    fs.writeFileSync(path.join(repo, 'empty.mov'), '');
    await makeAudioOnly(ff, path.join(repo, 'audio.mov'));
    fs.writeFileSync(path.join(repo, 'notes.txt'), 'not tracked by dits');
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'clips'], repo);
    const before = Object.fromEntries(['df.mov', 'b.mp4', 'truncated.mov', 'audio.mov'].map((f) => [f, hash(path.join(repo, f))]));

    const r = sb.dits(['proxy', 'make', '--all', '--jobs', '2'], repo);
    expect(r.status, r.stderr).toBe(1); // some failed: said, and the exit status says so
    expect(r.stdout).toMatch(/df\.mov: proxy, poster, sprite, sprite-vtt, preview made \(proxy .*prores_proxy\/h1080\)/);
    expect(r.stdout).toMatch(/truncated\.mov: nothing made\n {2}failed \(proxy, poster, sprite, sprite-vtt, preview\): /);
    const rows = new Map(ls(repo).map((row) => [row.path, row]));
    expect(kindsOf(rows.get('df.mov'), 'ok')).toEqual(['poster', 'preview', 'proxy', 'sprite', 'sprite-vtt']);
    expect(kindsOf(rows.get('b.mp4'), 'ok')).toEqual(['poster', 'preview', 'proxy', 'sprite', 'sprite-vtt']);
    for (const bad of ['truncated.mov', 'empty.mov', 'audio.mov']) {
      const row = rows.get(bad)!;
      expect(kindsOf(row, 'ok'), bad).toEqual([]);
      expect(row.variants.find((v) => v.kind === 'proxy')?.reason, bad).toMatch(/\w/);
    }
    expect(rows.get('audio.mov')!.variants.find((v) => v.kind === 'proxy')!.reason).toMatch(/audio only|no video/i);
    // the originals are untouched, and git sees nothing changed
    for (const [f, h] of Object.entries(before)) expect(hash(path.join(repo, f)), f).toBe(h);
    expect(sb.status(repo)).toBe('');
    // the proxy is stored content a checkout could write: not in the working tree, not in git
    expect(sb.mustGit(['ls-files'], repo).split('\n').filter(Boolean).sort()).toEqual(['.gitattributes', 'audio.mov', 'b.mp4', 'df.mov', 'empty.mov', 'notes.txt', 'truncated.mov']);

    const again = sb.dits(['proxy', 'make', '--all'], repo);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/Skipped 2 file\(s\), already made: (df\.mov, b\.mp4|b\.mp4, df\.mov)/);
    expect(again.stdout).toMatch(/failed before/);
    expect(again.stdout).not.toMatch(/made \(/);
  });

  it('reads the original from the store when the working tree does not have it, and says which files have no content here', async () => {
    const repo = sb.repo('fromstore', { track: ['*.mov'] });
    await makeClip(ff, path.join(repo, 'a.mov'));
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'a'], repo);
    const original = hash(path.join(repo, 'a.mov'));
    fs.rmSync(path.join(repo, 'a.mov'));
    sb.mustDits(['proxy', 'make', 'a.mov', '--kinds', 'proxy'], repo);
    expect(kindsOf(ls(repo)[0], 'ok')).toEqual(['proxy']);
    sb.mustGit(['checkout', '--', 'a.mov'], repo);
    expect(hash(path.join(repo, 'a.mov'))).toBe(original);
  });

  it('an interrupted run keeps what it finished, and the next run makes only the rest', async () => {
    const repo = sb.repo('resume', { track: ['*.mov'] });
    await makeClip(ff, path.join(repo, '1-short.mov'), { duration: 1 });
    await makeClip(ff, path.join(repo, '2-long.mov'), { duration: 10, size: '640x360' });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'clips'], repo);
    const child = spawn(DITS_BIN, ['proxy', 'make', '--jobs', '1', '--kinds', 'proxy,poster'], { cwd: repo, env: sb.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => {
      // the first file's records are written: interrupt the second one's encode
      const poll = setInterval(() => {
        const rows = ls(repo);
        if (kindsOf(rows.find((r) => r.path === '1-short.mov'), 'ok').length === 2) {
          clearInterval(poll);
          child.kill('SIGINT');
        }
      }, 150);
      child.on('exit', (c) => {
        clearInterval(poll);
        resolve(c);
      });
    });
    expect(code, stdout + stderr).toBe(130);
    expect(stderr).toMatch(/interrupted: the variants finished so far are kept/);
    const mid = new Map(ls(repo).map((r) => [r.path, r]));
    expect(mid.get('2-long.mov')!.variants).toEqual([]); // nothing partial recorded
    expect(fs.readdirSync(path.join(repo, '.git', 'dits', 'tmp')).filter((n) => n.startsWith('proxy-'))).toEqual([]);
    const next = sb.dits(['proxy', 'make', '--kinds', 'proxy,poster'], repo);
    expect(next.status, next.stderr).toBe(0);
    expect(next.stdout).toMatch(/2-long\.mov: proxy, poster made/);
    expect(next.stdout).toMatch(/Skipped 1 file\(s\), already made: 1-short\.mov/);
  }, 120_000);

  it('says what is wrong: bad options, no ffmpeg', () => {
    const repo = sb.repo('errors', { track: ['*.mov'] });
    expect(sb.dits(['proxy', 'make', '--kinds', 'thumbs'], repo)).toMatchObject({ status: 2, stderr: expect.stringMatching(/unknown variant 'thumbs'/) });
    expect(sb.dits(['proxy', 'make', '--jobs', '0'], repo)).toMatchObject({ status: 2 });
    const r = sb.run(DITS_BIN, ['proxy', 'make'], repo, undefined, { DITS_FFMPEG: path.join(sb.dir, 'no-ffmpeg-here') });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/ffmpeg/);
    expect(r.stderr).toMatch(/hint: .*install/i);
  });
});
