import { describe, expect, it } from 'vitest';
import { createPathFilter, parsePatternList } from './path-patterns.js';

describe('fetch include/exclude patterns', () => {
  it('matches like git-lfs fetchinclude/fetchexclude', () => {
    const f = createPathFilter(parsePatternList('footage/**, *.prproj'), parsePatternList('footage/raw'));
    expect(f.matches('footage/day1/a.mov')).toBe(true);
    expect(f.matches('edit/cut.prproj')).toBe(true);
    expect(f.matches('footage/raw/b.mov')).toBe(false);
    expect(f.matches('music/song.wav')).toBe(false);
    const all = createPathFilter([], parsePatternList('*.wav'));
    expect(all.matches('a/b.mov')).toBe(true);
    expect(all.matches('a/b.wav')).toBe(false);
    expect(createPathFilter(['clip?.mov'], []).matches('x/clip1.mov')).toBe(true);
  });
});
