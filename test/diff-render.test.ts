/**
 * What `git log -p`, `git show` and `git diff` print for tracked files (issue 15): stored
 * files printed "+binary content … (not yet stored by Dits)" (git smudges the blobs it
 * hands to textconv, so textconv got the content and looked for a pointer in it), and a
 * metadata-only change (an MP4 remuxed with a new title, same media payload) vanished from
 * `git show` because both sides rendered the same. Real git, real ffmpeg clips.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GitSandbox } from './helpers/git-env.js';

let sb: GitSandbox;
let repo: string;
let clips: string;
const ids: Record<string, { oid: string; manifest: string }> = {};

function ffmpeg(args: string[]): void {
  execFileSync('ffmpeg', ['-v', 'error', '-nostdin', '-y', ...args]);
}

function pointerOf(rev: string): { oid: string; manifest: string } {
  const text = sb.mustGit(['cat-file', 'blob', `${rev}:clip.mp4`], repo);
  return { oid: /oid blake3:([0-9a-f]{64})/.exec(text)![1]!, manifest: /manifest blake3:([0-9a-f]{64})/.exec(text)![1]! };
}

beforeAll(() => {
  sb = new GitSandbox('dits-diff-render-');
  clips = path.join(sb.dir, 'clips');
  fs.mkdirSync(clips);
  const a = path.join(clips, 'a.mp4');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-t', '2', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', a]);
  ffmpeg(['-i', a, '-c', 'copy', '-metadata', 'title=first title', path.join(clips, 'b.mp4')]);
  ffmpeg(['-i', a, '-c', 'copy', '-metadata', 'title=other title', path.join(clips, 'c.mp4')]);
  repo = sb.repo('r', { track: ['*.mp4'], config: { 'dits.chunkMin': '4096', 'dits.chunkAvg': '16384', 'dits.chunkMax': '65536' } });
  for (const [i, name] of ['a', 'b', 'c'].entries()) {
    fs.copyFileSync(path.join(clips, `${name}.mp4`), path.join(repo, 'clip.mp4'));
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', `version ${name}`], repo);
    ids[name] = pointerOf('HEAD');
    expect(i >= 0).toBe(true);
  }
});
afterAll(() => sb?.cleanup());

describe('git show / git log -p of tracked files', () => {
  it('git show of a metadata-only change shows the new file and manifest ids and the tag that changed', () => {
    const show = sb.mustGit(['show', 'HEAD~1'], repo); // a -> b: title added, payload the same
    expect(show).not.toContain('not yet stored');
    expect(show).not.toContain('binary content');
    expect(show).toContain(`-file id: blake3:${ids.a!.oid}`);
    expect(show).toContain(`+file id: blake3:${ids.b!.oid}`);
    expect(show).toContain(`-manifest id: blake3:${ids.a!.manifest}`);
    expect(show).toContain(`+manifest id: blake3:${ids.b!.manifest}`);
    expect(show).toMatch(/^\+  title: first title$/m);
    expect(show).toMatch(/^ {3}#1 video, H\.264 \(avc1\), 320x240/m); // the media summary, unchanged context
  });

  it('a changed tag value shows both values', () => {
    const show = sb.mustGit(['show', 'HEAD'], repo); // b -> c
    expect(show).toMatch(/^-  title: first title$/m);
    expect(show).toMatch(/^\+  title: other title$/m);
  });

  it('git log -p shows every version, the first as added', () => {
    const log = sb.mustGit(['log', '-p', '--format=commit %s', '--', 'clip.mp4'], repo);
    expect(log).not.toContain('not yet stored');
    for (const v of ['a', 'b', 'c']) expect(log).toContain(`+file id: blake3:${ids[v]!.oid}`);
    expect(log).toMatch(/^\+Dits file, /m);
  });

  it('renders the same when git hands textconv the pointer (content above the inline limit), with tags read from the store', () => {
    const inline = sb.mustGit(['show', 'HEAD~1'], repo);
    const viaPointer = sb.mustGit(['-c', 'dits.smudgeInlineMax=1k', 'show', 'HEAD~1'], repo);
    expect(viaPointer).toBe(inline);
  });

  it('git diff --no-ext-diff against the (up-to-date) working tree, and the diff command, show the change', () => {
    const textconv = sb.mustGit(['diff', '--no-ext-diff', 'HEAD~2'], repo);
    expect(textconv).toContain(`+file id: blake3:${ids.c!.oid}`);
    expect(textconv).toMatch(/^\+  title: other title$/m);
    const driver = sb.mustGit(['diff', 'HEAD~1', 'HEAD'], repo);
    expect(driver).toContain(`manifest id: ${ids.b!.manifest.slice(0, 16)} -> ${ids.c!.manifest.slice(0, 16)}`);
    expect(driver).toContain('tag title: first title -> other title');
    const added = sb.mustGit(['diff', 'HEAD~2', 'HEAD~1'], repo);
    expect(added).toContain('tag title added: first title');
  });

  it('content that was never added says so, with its file id', () => {
    const loose = path.join(clips, 'never-added.mp4');
    ffmpeg(['-i', path.join(clips, 'a.mp4'), '-c', 'copy', '-metadata', 'title=loose', loose]);
    const text = sb.mustDits(['textconv', loose], repo);
    expect(text).toMatch(/^file content, .* not stored by Dits \(not yet added\)$/m);
    expect(text).toMatch(/^file id: blake3:[0-9a-f]{64}$/m);
    expect(text).toMatch(/^ {2}title: loose$/m);
  });

  it('reads QuickTime tags: user data text atoms and mdta keys', () => {
    const mov = path.join(clips, 'tagged.mov');
    ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25', '-t', '1', '-c:v', 'libx264', '-preset', 'ultrafast', '-metadata', 'title=mov title', mov]);
    const keyed = path.join(clips, 'keyed.mov');
    ffmpeg(['-i', mov, '-c', 'copy', '-movflags', 'use_metadata_tags', '-metadata', 'com.example.scene=12A', keyed]);
    expect(sb.mustDits(['textconv', mov], repo)).toMatch(/^ {2}udta\/©nam: mov title$/m);
    const text = sb.mustDits(['textconv', keyed], repo);
    expect(text).toMatch(/^ {2}com\.example\.scene: 12A$/m);
    expect(text).toMatch(/^ {2}title: mov title$/m);
  });
});
