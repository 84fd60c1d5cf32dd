import { describe, expect, it } from 'vitest';
import { formatBytes, megabytesPerSecond, parseSize } from './units.js';
import { median, noisePercent, spread } from './stats.js';

describe('parseSize', () => {
  it('reads binary suffixes', () => {
    expect(parseSize('64M')).toBe(64 * 2 ** 20);
    expect(parseSize('1G')).toBe(2 ** 30);
    expect(parseSize('8GiB')).toBe(8 * 2 ** 30);
    expect(parseSize('512k')).toBe(512 * 1024);
    expect(parseSize('1000')).toBe(1000);
    expect(parseSize('1.5G')).toBe(1.5 * 2 ** 30);
  });
  it('rejects what is not a size', () => {
    expect(() => parseSize('big')).toThrow(/not a size/);
    expect(() => parseSize('-1G')).toThrow();
    expect(() => parseSize('0')).toThrow(/out of range/);
  });
});

describe('formatBytes and throughput', () => {
  it('prints binary units', () => {
    expect(formatBytes(100)).toBe('100 B');
    expect(formatBytes(300 * 2 ** 20)).toBe('300 MiB');
    expect(formatBytes(1.5 * 2 ** 30)).toBe('1.50 GiB');
    expect(formatBytes(-2048)).toBe('-2.00 KiB');
  });
  it('MB/s uses 10^6 bytes', () => {
    expect(megabytesPerSecond(146e6, 1)).toBe(146);
    expect(megabytesPerSecond(2 ** 30, 2)).toBeCloseTo(536.87, 2);
  });
});

describe('stats', () => {
  it('median: the middle run, or the mean of the two middle runs', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    expect(() => median([])).toThrow();
  });
  it('spread and noise', () => {
    const s = spread([90, 100, 110]);
    expect(s).toEqual({ min: 90, median: 100, max: 110, runs: 3 });
    expect(noisePercent(s)).toBeCloseTo(20);
  });
});
