import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DitsUserError } from '../../errors.js';
import { fileUrlToPath } from './file-url.js';
import { parseProjectBytes, parseProjectReferences } from './parse-project-references.js';

const fixture = (name: string): string => join(import.meta.dirname, 'fixtures', name);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dits-nle-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('fileUrlToPath', () => {
  it.each([
    ['file:///Users/ed/A%20B.mov', '/Users/ed/A B.mov'],
    ['file://localhost/Volumes/M/a.mov', '/Volumes/M/a.mov'],
    ['file://localhost/C%3a/Media/a.mov', 'C:/Media/a.mov'],
    ['file:///D:/Footage/x.mov', 'D:/Footage/x.mov'],
    ['file://server/share/a.mov', '//server/share/a.mov'],
    ['Media/a%20b.mov', 'Media/a b.mov'],
    ['/plain/path 100%.mov', '/plain/path 100%.mov'],
    ['file:///bad%zzescape.mov', '/bad%zzescape.mov'],
  ])('%s -> %s', (url, path) => {
    expect(fileUrlToPath(url)).toBe(path);
  });
});

describe('parseProjectReferences', () => {
  it('FCPXML 1.10 (Final Cut Pro): original media-reps, percent-decoded, proxies left out', async () => {
    const refs = await parseProjectReferences(fixture('final-cut-1.10.fcpxml'));
    expect(refs).toEqual({
      format: 'fcpxml',
      references: [
        { path: '/Volumes/Shoot Day 1/Project/Media/A001C003.mov', name: 'A001C003.mov', origin: 'fcpxml-media-rep', clipName: 'A001C003' },
        { path: '/Volumes/Shoot Day 1/Project/Media/Interview – Ünïcode.mp4', name: 'Interview – Ünïcode.mp4', origin: 'fcpxml-media-rep', clipName: 'Interview – Ünïcode' },
        { path: '/Users/ed/Music/score & stems/music.wav', name: 'music.wav', origin: 'fcpxml-media-rep', clipName: 'music' },
      ],
    });
  });

  it('FCPXML 1.8 (DaVinci Resolve): asset src, drive letters, localhost and relative URLs', async () => {
    const refs = await parseProjectReferences(fixture('resolve-1.8.fcpxml'));
    expect(refs.format).toBe('fcpxml');
    expect(refs.references.map((r) => [r.path, r.origin, r.clipName])).toEqual([
      ['D:/Footage/B002_C011.mov', 'fcpxml-asset-src', undefined],
      ['/mnt/raid/footage/drone/DJI_0042.MP4', 'fcpxml-asset-src', 'drone shot'],
      ['Graphics/lower third.mov', 'fcpxml-asset-src', 'gfx'],
    ]);
  });

  it('an .fcpxmld bundle is read through Info.fcpxml', async () => {
    const bundle = join(dir, 'Cut 3.fcpxmld');
    await mkdir(bundle, { recursive: true });
    await writeFile(join(bundle, 'Info.fcpxml'), await readFile(fixture('resolve-1.8.fcpxml')));
    expect((await parseProjectReferences(bundle)).references).toHaveLength(3);
  });

  it('xmeml (Premiere export): every pathurl once, Windows and UNC paths', async () => {
    const refs = await parseProjectReferences(fixture('premiere-export.xml'));
    expect(refs).toEqual({
      format: 'xmeml',
      references: [
        { path: '/Volumes/Shoot Day 1/Project/Media/A001C003.mov', name: 'A001C003.mov', origin: 'xmeml-pathurl' },
        { path: 'C:/Projects/Doc/Media/interview_02.mxf', name: 'interview_02.mxf', origin: 'xmeml-pathurl' },
        { path: '//nas01/audio/room tone.wav', name: 'room tone.wav', origin: 'xmeml-pathurl' },
      ],
    });
  });

  it('CMX3600 EDL: source files, clip names of both sides of a dissolve, real reels only', async () => {
    const refs = await parseProjectReferences(fixture('cmx3600.edl'));
    expect(refs).toEqual({
      format: 'edl',
      references: [
        { path: '/Volumes/Shoot Day 1/Project/Media/A001C003.mov', name: 'A001C003.mov', origin: 'edl-source-file', reel: 'A001C003' },
        { path: 'Interview.mp4', name: 'Interview.mp4', origin: 'edl-clip-name' },
        { path: 'B-roll city.mov', name: 'B-roll city.mov', origin: 'edl-clip-name' },
        { path: 'TAPE07', name: 'TAPE07', origin: 'edl-reel', reel: 'TAPE07' },
      ],
    });
  });

  it('.prproj: gzip detected by magic, ActualMediaFilePath first, FilePath and RelativePath as alternatives', async () => {
    const xml = await readFile(fixture('premiere-project.prproj.xml'));
    const path = join(dir, 'Edit.prproj');
    await writeFile(path, gzipSync(xml));
    const refs = await parseProjectReferences(path);
    expect(refs).toEqual({
      format: 'prproj',
      references: [
        { path: '/Volumes/Shoot Day 1/Project/Media/A001C003.mov', name: 'A001C003.mov', origin: 'prproj-media', alternatives: ['../Media/A001C003.mov'] },
        {
          path: '/Volumes/Shoot Day 1/Project/Media/Interview.mp4',
          name: 'Interview.mp4',
          origin: 'prproj-media',
          alternatives: ['/Users/ed/Desktop/old location/Interview.mp4', '../Media/Interview.mp4'],
          clipName: 'Interview',
        },
        { path: 'C:\\Users\\ed\\Music\\score & stems\\music.wav', name: 'music.wav', origin: 'prproj-media' },
      ],
    });
    // The same bytes under any name: detection is by content.
    expect(parseProjectBytes('renamed.bin', gzipSync(xml))).toEqual(refs);
  });

  it('accepts name + bytes without touching the disk', () => {
    const xml = '<?xml version="1.0"?><fcpxml version="1.9"><resources><asset id="a" name="x"><media-rep kind="original-media" src="file:///m/x.mov"/></asset></resources></fcpxml>';
    expect(parseProjectBytes('p.fcpxml', Buffer.from('\uFEFF' + xml)).references.map((r) => r.path)).toEqual(['/m/x.mov']);
  });

  it('unknown and damaged projects throw user errors with stable codes', async () => {
    const code = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (err) {
        expect(err).toBeInstanceOf(DitsUserError);
        return (err as DitsUserError).code;
      }
      return undefined;
    };
    expect(code(() => parseProjectBytes('a.fcpxml', Buffer.from('<fcpxml><resources></fcpxml>')))).toBe('project-corrupt');
    expect(code(() => parseProjectBytes('a.xml', Buffer.from('<html><body/></html>')))).toBe('project-format-unknown');
    expect(code(() => parseProjectBytes('a.txt', Buffer.from('just some notes')))).toBe('project-format-unknown');
    expect(code(() => parseProjectBytes('a.prproj', Buffer.from([0x1f, 0x8b, 0x08, 0, 1, 2, 3])))).toBe('project-corrupt');
    expect(code(() => parseProjectBytes('a.prproj', gzipSync('<fcpxml/>')))).toBe('project-format-unknown');
    expect(code(() => parseProjectBytes('big.prproj', gzipSync(Buffer.alloc(4096, 0x20)), { maxDecompressedBytes: 1024 }))).toBe('project-corrupt');
  });
});
