import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { createProgressBar, formatBytesOf, progressLine } from './progress.js';
import type { CliContext } from './context.js';

describe('formatBytesOf', () => {
  it('shows done and total in the total\'s unit', () => {
    expect(formatBytesOf(512 * 1024, 1024 * 1024)).toBe('0.5/1.0 MiB');
    expect(formatBytesOf(3 * 1024 ** 3, 10 * 1024 **3)).toBe('3.0/10.0 GiB');
    expect(formatBytesOf(10, 100)).toBe('10/100 B');
  });
  it('never shows a total below what is done (a total learnt only after the bytes: was "0.1/0.0 MiB")', () => {
    expect(formatBytesOf(100_000, 0)).toBe('97.7 KiB');
    expect(formatBytesOf(100_000, 40_000)).toBe('97.7 KiB');
    expect(formatBytesOf(100_000, undefined)).toBe('97.7 KiB');
  });
  it('rounding never puts done above the total', () => {
    for (let done = 0; done <= 200_000; done += 997) {
      const text = formatBytesOf(done, 200_000);
      const [a, b] = text.split(' ')[0]!.split('/').map(Number);
      expect(a!).toBeLessThanOrEqual(b!);
    }
  });
});

describe('progressLine', () => {
  it('with a known total: bar, percentage, both sizes, ETA', () => {
    const line = progressLine('Fetching', 1024 * 1024, 4 * 1024 * 1024, 1024 * 1024, 3);
    expect(line).toContain(' 25% ');
    expect(line).toContain('1.0/4.0 MiB');
    expect(line).toContain('ETA 3s');
  });
  it('with a total below done: only the bytes done, no bar, no percentage, no ETA', () => {
    const line = progressLine('Fetching', 100_000, 40_000, 50_000, 0);
    expect(line).toBe('Fetching 97.7 KiB 48.8 KiB/s');
  });
});

describe('createProgressBar', () => {
  it('a total that falls behind what is done is not drawn as "done/total"', () => {
    const stderr = new PassThrough();
    let text = '';
    stderr.on('data', (b: Buffer) => (text += b.toString()));
    const ctx = { interactive: true, stderr } as unknown as CliContext;
    const bar = createProgressBar(ctx, 'Checking');
    bar.update(100_000, 40_000);
    bar.done();
    expect(text).toContain('97.7 KiB');
    expect(text).not.toContain('/39.1 KiB');
    expect(text).not.toMatch(/\d\/\d/);
  });
});
