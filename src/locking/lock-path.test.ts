import { describe, expect, it } from 'vitest';
import { checkLockPath, MAX_LOCK_PATH_BYTES, normalizeLockPath } from './lock-path.js';

describe('lock paths', () => {
  it('normalises to one spelling per file', () => {
    expect(normalizeLockPath('a/b/c.mov')).toBe('a/b/c.mov');
    expect(normalizeLockPath('./a//b/./c.mov/')).toBe('a/b/c.mov');
    expect(normalizeLockPath('clip .mov')).toBe('clip .mov');
    expect(normalizeLockPath('ünï/cödé.mov')).toBe('ünï/cödé.mov');
    expect(normalizeLockPath('..hidden/x')).toBe('..hidden/x');
  });

  it('refuses what could escape the repository or confuse a file system', () => {
    const cases: [unknown, RegExp][] = [
      ['../x', /'\.\.'/],
      ['a/../../x', /'\.\.'/],
      ['a/..', /'\.\.'/],
      ['/etc/passwd', /relative/],
      ['C:/x', /relative/],
      ['c:x', /relative/],
      ['a\\b', /backslash/],
      ['a\0b', /control/],
      ['a\nb', /control/],
      ['.git/hooks/pre-push', /\.git/],
      ['sub/.Git/config', /\.git/],
      ['', /empty/],
      ['./', /root/],
      [42, /string/],
      ['é'.repeat(MAX_LOCK_PATH_BYTES / 2 + 1), /longer/],
    ];
    for (const [input, reason] of cases) {
      const r = checkLockPath(input);
      expect(r.ok, JSON.stringify(input)).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(reason);
    }
    expect(() => normalizeLockPath('../x')).toThrow(TypeError);
    expect(checkLockPath('a'.repeat(MAX_LOCK_PATH_BYTES)).ok).toBe(true);
  });
});
