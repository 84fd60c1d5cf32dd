import { describe, expect, it, vi } from 'vitest';
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

describe('stderrProgress (transfers)', () => {
  it('a transfer whose size is learnt at its end never prints "0.1/0.0 MiB", and does not end a line per event', async () => {
    const { stderrProgress } = await import('../remote/content-adapter.js');
    const written: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      const onProgress = stderrProgress('Fetching content', true)!;
      // what TransferQueue reports for a download of unknown size: bytes first, total after
      onProgress({ doneBytes: 100_000, totalBytes: 0, doneItems: 0, totalItems: 1, failedItems: 0, rateBytesPerSec: 50_000, etaSec: null });
      onProgress({ doneBytes: 120_000, totalBytes: 0, doneItems: 0, totalItems: 1, failedItems: 0, rateBytesPerSec: 50_000, etaSec: null });
      onProgress({ doneBytes: 120_000, totalBytes: 120_000, doneItems: 1, totalItems: 1, failedItems: 0, rateBytesPerSec: 50_000, etaSec: 0 });
    } finally {
      spy.mockRestore();
    }
    const text = written.join('');
    expect(text).not.toContain('/0.0');
    expect(text).toContain('97.7 KiB');
    expect(text).toContain('117.2/117.2 KiB');
    expect(text.split('\n').length - 1).toBe(1); // one line, ended once at the end
  });
});
