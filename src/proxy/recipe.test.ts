/**
 * Recipes from git config and .gitattributes, in a real git repository; errors for values
 * that are wrong; which files are candidates.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DitsUserError } from '../errors.js';
import { runGit } from '../git/exec.js';
import type { MediaStructure } from '../media/media-structure.js';
import { isVideoCandidate, recipeKey, resolveRecipes } from './recipe.js';
import { writeCubeLut } from './test-clips.js';

describe('resolveRecipes', () => {
  let repo: string;
  const git = (...args: string[]) => runGit(args, { cwd: repo });
  const attrs = (text: string): void => fs.writeFileSync(path.join(repo, '.gitattributes'), text);
  const userError = async (p: Promise<unknown>): Promise<DitsUserError> => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DitsUserError);
    return err as DitsUserError;
  };

  beforeEach(async () => {
    repo = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-recipe-'));
    await git('init', '-q');
  });
  afterEach(() => fs.rmSync(repo, { recursive: true, force: true }));

  it('defaults: ProRes Proxy at most 1080 lines', async () => {
    const r = await resolveRecipes(repo, ['a.mov']);
    expect(r.get('a.mov')).toEqual({ codec: 'prores_proxy', height: 1080, key: 'prores_proxy/h1080' });
  });

  it('git config sets the defaults; .gitattributes overrides per pattern; -dits-proxy leaves a path out', async () => {
    await git('config', 'dits.proxy.codec', 'H264');
    await git('config', 'dits.proxy.height', '720');
    fs.mkdirSync(path.join(repo, 'luts'));
    const lut = writeCubeLut(path.join(repo, 'luts', 'slog3-to-709.cube'), 2, (r, g, b) => [r, g, b]);
    attrs(['*.mxf dits-proxy=dnxhr_lb', '*.mp4 dits-proxy-height=540', 'A-cam/*.mov dits-lut=luts/slog3-to-709.cube', 'renders/** -dits-proxy', 'stills/** dits-proxy=none', ''].join('\n'));
    const paths = ['x.mov', 'cam/y.mxf', 'z.mp4', 'A-cam/c001.mov', 'A-cam/c002.mov', 'renders/master.mov', 'stills/s.mov'];
    const r = await resolveRecipes(repo, paths);
    expect([...r.keys()]).toEqual(['x.mov', 'cam/y.mxf', 'z.mp4', 'A-cam/c001.mov', 'A-cam/c002.mov']);
    expect(r.get('x.mov')).toEqual({ codec: 'h264', height: 720, key: 'h264/h720' });
    expect(r.get('cam/y.mxf')).toMatchObject({ codec: 'dnxhr_lb', height: 720, key: 'dnxhr_lb/h720' });
    expect(r.get('z.mp4')).toMatchObject({ codec: 'h264', height: 540, key: 'h264/h540' });
    const sha = crypto.createHash('sha256').update(fs.readFileSync(lut)).digest('hex');
    expect(r.get('A-cam/c001.mov')).toEqual({ codec: 'h264', height: 720, lut: { file: lut, sha256: sha }, key: `h264/h720/lut=${sha.slice(0, 8)}` });
    expect(r.get('A-cam/c002.mov')!.key).toBe(r.get('A-cam/c001.mov')!.key);
  });

  it('the key follows the LUT content, not only its name', async () => {
    const lut = path.join(repo, 'grade.cube');
    attrs('*.mov dits-lut=grade.cube\n');
    writeCubeLut(lut, 2, (r, g, b) => [r, g, b]);
    const k1 = (await resolveRecipes(repo, ['a.mov'])).get('a.mov')!.key;
    writeCubeLut(lut, 2, (r, g, b) => [r * 0.9, g, b]);
    const k2 = (await resolveRecipes(repo, ['a.mov'])).get('a.mov')!.key;
    expect(k1).toMatch(/^prores_proxy\/h1080\/lut=[0-9a-f]{8}$/);
    expect(k2).not.toBe(k1);
    expect(recipeKey('prores_proxy', 1080)).toBe('prores_proxy/h1080');
  });

  it('an unknown codec in config or attributes: a clear error naming the setting and the choices', async () => {
    await git('config', 'dits.proxy.codec', 'prores_hq');
    const e1 = await userError(resolveRecipes(repo, ['a.mov']));
    expect(e1.code).toBe('bad-config');
    expect(e1.message).toContain('dits.proxy.codec');
    expect(e1.hint).toContain('prores_proxy, dnxhr_lb, h264');
    await git('config', '--unset', 'dits.proxy.codec');
    attrs('*.mov dits-proxy=cineform\n');
    const e2 = await userError(resolveRecipes(repo, ['a.mov']));
    expect(e2.code).toBe('bad-attribute');
    expect(e2.message).toContain('a.mov dits-proxy=cineform');
    expect(e2.hint).toContain('prores_proxy, dnxhr_lb, h264');
  });

  it('a bad height: a clear error', async () => {
    await git('config', 'dits.proxy.height', '10000');
    expect((await userError(resolveRecipes(repo, ['a.mov']))).message).toContain('dits.proxy.height');
    await git('config', 'dits.proxy.height', 'tall');
    expect((await userError(resolveRecipes(repo, ['a.mov']))).code).toBe('bad-config');
    await git('config', '--unset', 'dits.proxy.height');
    for (const bad of ['8', '720p', '1e3']) {
      attrs(`*.mov dits-proxy-height=${bad}\n`);
      const e = await userError(resolveRecipes(repo, ['a.mov']));
      expect(e.code).toBe('bad-attribute');
      expect(e.hint).toContain('16 to 4320');
    }
  });

  it('a LUT missing, unreadable, not a .cube, not a LUT, or outside the repository: a clear error', async () => {
    attrs('*.mov dits-lut=luts/missing.cube\n');
    let e = await userError(resolveRecipes(repo, ['a.mov']));
    expect(e.code).toBe('bad-lut');
    expect(e.message).toBe('the LUT luts/missing.cube of a.mov does not exist');
    expect(e.hint).toContain('.gitattributes');

    fs.writeFileSync(path.join(repo, 'look.3dl'), '0 1023\n');
    attrs('*.mov dits-lut=look.3dl\n');
    expect((await userError(resolveRecipes(repo, ['a.mov']))).message).toContain('is not a .cube file');

    fs.writeFileSync(path.join(repo, 'notes.cube'), 'hello\n');
    attrs('*.mov dits-lut=notes.cube\n');
    expect((await userError(resolveRecipes(repo, ['a.mov']))).message).toContain('no LUT_3D_SIZE line');

    fs.writeFileSync(path.join(repo, 'lazy.cube'), `version dits/1\noid blake3:${'0'.repeat(64)}\nsize 100\n`);
    attrs('*.mov dits-lut=lazy.cube\n');
    e = await userError(resolveRecipes(repo, ['a.mov']));
    expect(e.message).toContain('not checked out');
    expect(e.hint).toContain('git dits checkout -- lazy.cube');

    fs.mkdirSync(path.join(repo, 'dir.cube'));
    attrs('*.mov dits-lut=dir.cube\n');
    expect((await userError(resolveRecipes(repo, ['a.mov']))).message).toContain('is not a file');

    attrs('*.mov dits-lut=../outside.cube\n');
    expect((await userError(resolveRecipes(repo, ['a.mov']))).message).toContain('outside the repository');

    attrs('*.mov dits-lut\n');
    expect((await userError(resolveRecipes(repo, ['a.mov']))).code).toBe('bad-attribute');

    if (process.getuid?.() !== 0) {
      const locked = writeCubeLut(path.join(repo, 'locked.cube'), 2, (r, g, b) => [r, g, b]);
      fs.chmodSync(locked, 0o000);
      attrs('*.mov dits-lut=locked.cube\n');
      expect((await userError(resolveRecipes(repo, ['a.mov']))).message).toContain('cannot be read');
    }
  });

  it('paths with spaces and no paths at all', async () => {
    attrs('"with space.mov" dits-proxy=h264\n');
    expect((await resolveRecipes(repo, ['with space.mov'])).get('with space.mov')!.codec).toBe('h264');
    expect((await resolveRecipes(repo, [])).size).toBe(0);
  });
});

describe('isVideoCandidate', () => {
  const media = (types: ('video' | 'audio')[]): MediaStructure => ({
    version: 1,
    container: 'mp4',
    brands: ['isom'],
    durationSeconds: 1,
    fastStart: true,
    tracks: types.map((type, i) => ({ id: i + 1, type, codec: type === 'video' ? 'avc1' : 'mp4a', sampleCount: 1, durationSeconds: 1 })),
  });
  it('video containers by extension (ffprobe decides), other files by a video track', () => {
    expect(isVideoCandidate('a/B.MOV', null)).toBe(true);
    expect(isVideoCandidate('x.mxf', null)).toBe(true);
    expect(isVideoCandidate('x.mkv', null)).toBe(true);
    expect(isVideoCandidate('x.mp4', media(['audio']))).toBe(true); // made, and recorded as failed: audio only
    expect(isVideoCandidate('x.3gp', media(['video', 'audio']))).toBe(true);
    expect(isVideoCandidate('x.m4a', media(['audio']))).toBe(false);
    expect(isVideoCandidate('x.wav', null)).toBe(false);
    expect(isVideoCandidate('notes.txt', null)).toBe(false);
  });
});
