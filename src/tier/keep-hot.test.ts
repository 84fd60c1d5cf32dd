import { describe, expect, it } from 'vitest';
import { pathMatcher } from './keep-hot.js';

describe('pathMatcher (keep-hot path globs, as .gitattributes patterns)', () => {
  const cases: [string, string, boolean][] = [
    ['*.mov', 'a.mov', true],
    ['*.mov', 'shoot/day1/a.mov', true],
    ['*.mov', 'a.mp4', false],
    ['b.mov', 'b.mov', true],
    ['b.mov', 'x/b.mov', true],
    ['b.mov', 'xb.mov', false],
    ['footage/*.mov', 'footage/a.mov', true],
    ['footage/*.mov', 'footage/day1/a.mov', false],
    ['footage/*.mov', 'x/footage/a.mov', false],
    ['footage/**', 'footage/day1/a.mov', true],
    ['footage/**/*.mov', 'footage/a.mov', true],
    ['footage/**/*.mov', 'footage/d/e/a.mov', true],
    ['footage', 'footage/day1/a.mov', true],
    ['footage/', 'footage/a.mov', true],
    ['footage/', 'x/footage/a.mov', true],
    ['/a.mov', 'a.mov', true],
    ['/a.mov', 'x/a.mov', false],
    ['clip?.mov', 'clip1.mov', true],
    ['clip?.mov', 'clip10.mov', false],
    ['clip[0-9].mov', 'clip7.mov', true],
    ['clip[!0-9].mov', 'clip7.mov', false],
    ['a+b (1).mov', 'a+b (1).mov', true],
  ];
  it.each(cases)('%s against %s: %s', (pattern, path, want) => {
    expect(pathMatcher(pattern)(path)).toBe(want);
  });
});
