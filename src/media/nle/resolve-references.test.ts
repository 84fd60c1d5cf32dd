import { describe, expect, it } from 'vitest';
import type { ProjectReference } from './project-reference.js';
import { resolveReferences } from './resolve-references.js';

const ref = (path: string, extra: Partial<ProjectReference> = {}): ProjectReference => ({
  path,
  name: path.split(/[\\/]/).pop()!,
  origin: 'fcpxml-media-rep',
  ...extra,
});

const tracked = [
  'Media/A001C003.mov',
  'Media/Interview.mp4',
  'Audio/music.wav',
  'Cam A/clip.mov',
  'Cam B/clip.mov',
  'edit/gfx/lower third.mov',
  'Media/B-roll city.MOV',
  'Media/TAPE07.mxf',
];

describe('resolveReferences', () => {
  it('relative paths: from the project directory, then from the repo root', () => {
    const out = resolveReferences([ref('gfx/lower third.mov'), ref('../Media/Interview.mp4'), ref('Media/A001C003.mov')], tracked, 'edit');
    expect(out.map((r) => [r.resolvedPath, r.matchedBy])).toEqual([
      ['edit/gfx/lower third.mov', 'path'],
      ['Media/Interview.mp4', 'path'],
      ['Media/A001C003.mov', 'path'],
    ]);
  });

  it('absolute paths from another machine match by their longest tracked tail', () => {
    const out = resolveReferences(
      [ref('/Volumes/Shoot Day 1/Project/Media/A001C003.mov'), ref('C:/Projects/Doc/Cam B/clip.mov'), ref('C:\\Users\\ed\\Audio\\music.wav')],
      tracked,
      '',
    );
    expect(out.map((r) => [r.resolvedPath, r.matchedBy, r.status])).toEqual([
      ['Media/A001C003.mov', 'suffix', 'tracked'],
      ['Cam B/clip.mov', 'suffix', 'tracked'],
      ['Audio/music.wav', 'suffix', 'tracked'],
    ]);
  });

  it('falls back to a unique file name; an ambiguous or absent name is missing', () => {
    const out = resolveReferences(
      [ref('/elsewhere/music.wav'), ref('/elsewhere/clip.mov'), ref('/elsewhere/nothing.mov'), ref('/x/b-roll CITY.mov')],
      tracked,
      '',
    );
    expect(out).toEqual([
      { reference: ref('/elsewhere/music.wav'), resolvedPath: 'Audio/music.wav', status: 'tracked', matchedBy: 'name' },
      { reference: ref('/elsewhere/clip.mov'), resolvedPath: null, status: 'missing', candidates: ['Cam A/clip.mov', 'Cam B/clip.mov'] },
      { reference: ref('/elsewhere/nothing.mov'), resolvedPath: null, status: 'missing' },
      { reference: ref('/x/b-roll CITY.mov'), resolvedPath: 'Media/B-roll city.MOV', status: 'tracked', matchedBy: 'name' },
    ]);
  });

  it('EDL clip and reel names may omit the extension; alternatives are tried too', () => {
    const out = resolveReferences(
      [
        ref('TAPE07', { origin: 'edl-reel', reel: 'TAPE07' }),
        ref('/gone/Interview.mp4', { origin: 'prproj-media', alternatives: ['../Media/Interview.mp4'] }),
        ref('A001C003', { origin: 'fcpxml-media-rep' }),
      ],
      tracked,
      'edit',
    );
    expect(out.map((r) => [r.resolvedPath, r.matchedBy])).toEqual([
      ['Media/TAPE07.mxf', 'name'],
      ['Media/Interview.mp4', 'path'],
      [null, undefined],
    ]);
  });

  it('never resolves outside the repository', () => {
    expect(resolveReferences([ref('../../Media/A001C003.mov')], ['Media/A001C003.mov'], '')[0]).toMatchObject({ resolvedPath: 'Media/A001C003.mov', matchedBy: 'suffix' });
    expect(resolveReferences([ref('../outside.mov')], ['outside.mov'], '')[0]).toMatchObject({ matchedBy: 'name' });
  });
});
