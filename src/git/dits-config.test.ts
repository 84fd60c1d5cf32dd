import { describe, expect, it } from 'vitest';
import { DitsConfig, canonicalKey, ditsSettingsFrom, parseConfigBool, parseConfigInt, parseConfigSize } from './dits-config.js';
import { DitsUserError } from '../errors.js';

function thrown(f: () => unknown): DitsUserError {
  try {
    f();
  } catch (e) {
    if (e instanceof DitsUserError) return e;
    throw e;
  }
  throw new Error('did not throw');
}

describe('parseConfigBool (Git rules)', () => {
  it('reads every form Git accepts, in any case', () => {
    for (const v of ['true', 'yes', 'on', '1', 'TRUE', 'Yes', 'On', ' true ']) expect(parseConfigBool('dits.fsync', v)).toBe(true);
    for (const v of ['false', 'no', 'off', '0', 'FALSE', 'No', 'OFF', '']) expect(parseConfigBool('dits.fsync', v)).toBe(false);
  });
  it('a key with no value means true', () => {
    expect(parseConfigBool('dits.fsync', null)).toBe(true);
  });
  it('anything else is an error naming the key and the accepted forms', () => {
    const e = thrown(() => parseConfigBool('dits.fsync', 'maybe'));
    expect(e.code).toBe('bad-config');
    expect(e.message).toContain('dits.fsync');
    expect(e.message).toContain("'maybe'");
    expect(e.hint).toContain('true/yes/on/1 or false/no/off/0');
  });
});

describe('parseConfigInt', () => {
  it('reads whole numbers within the range', () => {
    expect(parseConfigInt('dits.concurrency', '16', 1, 64)).toBe(16);
    expect(parseConfigInt('dits.concurrency', ' 1 ', 1, 64)).toBe(1);
  });
  it('rejects text, fractions, no value and values out of range, naming the key and range', () => {
    for (const v of ['abc', '8x', '1.5', '', null, '0', '65', '-1']) {
      const e = thrown(() => parseConfigInt('dits.concurrency', v, 1, 64));
      expect(e.message).toContain('dits.concurrency');
      expect(e.hint).toContain('a whole number from 1 to 64');
    }
  });
});

describe('parseConfigSize', () => {
  it('reads bytes and k/M/G/T suffixes', () => {
    expect(parseConfigSize('dits.packSize', '4096')).toBe(4096);
    expect(parseConfigSize('dits.packSize', '64k')).toBe(65536);
    expect(parseConfigSize('dits.packSize', '32M')).toBe(32 * 1024 * 1024);
    expect(parseConfigSize('dits.packSize', '1.5G')).toBe(1.5 * 1024 ** 3);
    expect(parseConfigSize('dits.packSize', '2MiB')).toBe(2 * 1024 * 1024);
  });
  it('rejects what is not a size', () => {
    for (const v of ['big', '12 parsecs', '0', null]) {
      const e = thrown(() => parseConfigSize('dits.packSize', v));
      expect(e.message).toContain('dits.packSize');
      expect(e.hint).toContain('k/M/G/T');
    }
  });
});

describe('DitsConfig', () => {
  it('parses git config -z output, including keys with no value', () => {
    const c = DitsConfig.fromGitOutput('dits.fsync\0dits.concurrency\n4\0dits.s3.Bucket\nx\0dits.earlywrite\nno\0');
    expect(c.bool('dits.fsync', false)).toBe(true);
    expect(c.int('dits.concurrency', 8, { min: 1, max: 64 })).toBe(4);
    expect(c.bool('dits.earlyWrite', true)).toBe(false);
    // the subsection keeps its case, section and name do not
    expect(c.raw('DITS.s3.bucket')).toBe('x');
    expect(c.raw('dits.S3.bucket')).toBeUndefined();
  });
  it('the last value of a repeated key wins, as in Git', () => {
    expect(DitsConfig.fromGitOutput('dits.concurrency\n2\0dits.concurrency\n3\0').int('dits.concurrency', 8, { min: 1, max: 64 })).toBe(3);
  });
  it('canonicalKey lowercases section and name only', () => {
    expect(canonicalKey('Dits.S3.PathStyle')).toBe('dits.S3.pathstyle');
    expect(canonicalKey('dits.chunkMin')).toBe('dits.chunkmin');
  });
  it('oneOf names the choices', () => {
    const c = new DitsConfig([['dits.fetchmode', 'sometimes']]);
    const e = thrown(() => c.oneOf('dits.fetchMode', ['full', 'lazy'], 'full'));
    expect(e.message).toContain('dits.fetchMode');
    expect(e.message).toContain('full, lazy');
    expect(new DitsConfig([['dits.fetchmode', 'LAZY']]).oneOf('dits.fetchMode', ['full', 'lazy'], 'full')).toBe('lazy');
  });
  it('settings: defaults, Git booleans, and errors instead of silent defaults', () => {
    const d = ditsSettingsFrom(new DitsConfig([]));
    expect(d.concurrency).toBe(8);
    expect(d.durable).toBe(false);
    expect(d.packSize).toBeUndefined();
    expect(ditsSettingsFrom(new DitsConfig([['dits.fsync', 'yes']])).durable).toBe(true);
    expect(ditsSettingsFrom(new DitsConfig([['dits.fsync', null]])).durable).toBe(true);
    expect(ditsSettingsFrom(new DitsConfig([['dits.mediaaware', 'off']])).mediaAware).toBe(false);
    expect(() => ditsSettingsFrom(new DitsConfig([['dits.concurrency', 'abc']]))).toThrow(/dits\.concurrency/);
    expect(() => ditsSettingsFrom(new DitsConfig([['dits.directwrite', 'nope']]))).toThrow(/dits\.directWrite/);
  });

  it('smudge read-ahead: 64m and 1m by default, 0 turns either off, text is an error', () => {
    const d = ditsSettingsFrom(new DitsConfig([]));
    expect(d.smudgeReadAhead).toBe(0);
    expect(d.smudgeDelayMin).toBe(1024 * 1024);
    expect(ditsSettingsFrom(new DitsConfig([['dits.smudgereadahead', '0']])).smudgeReadAhead).toBe(0);
    expect(ditsSettingsFrom(new DitsConfig([['dits.smudgeDelayMin', '256k']])).smudgeDelayMin).toBe(256 * 1024);
    expect(() => ditsSettingsFrom(new DitsConfig([['dits.smudgeReadAhead', 'lots']]))).toThrow(/dits\.smudgeReadAhead/);
  });
});

describe('DitsConfig.all (multi-valued keys)', () => {
  it('keeps every value in order, whatever the case of the key; the last one still wins for a single read', () => {
    const c = DitsConfig.fromGitOutput('dits.tier.keephot\nbranch:main\0dits.tier.keepHot\nlogos/**\0dits.other\nx\0');
    expect(c.all('dits.tier.keepHot')).toEqual(['branch:main', 'logos/**']);
    expect(c.string('dits.tier.keepHot')).toBe('logos/**');
    expect(c.all('dits.tier.none')).toEqual([]);
  });
});
