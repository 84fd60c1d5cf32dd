import { describe, expect, it } from 'vitest';
import { formatSnapshotReport, snapshotVerdicts } from './snapshot-report.js';
import { editOffset, type SnapshotResults, type SnapshotRun } from './snapshot.js';

const run = (seconds: number, newBytes: number): SnapshotRun => ({ seconds, cpuSeconds: seconds, newBytes });

function results(over: Partial<SnapshotResults> = {}): SnapshotResults {
  return {
    files: 10,
    fileBytes: 2 ** 30,
    unchanged: [run(0.2, 273), run(0.25, 280), run(0.21, 290)],
    editDits: [run(2.3, 112_000), run(2.1, 110_000), run(2.5, 120_000)],
    editRestic: [run(3.8, 1_440_000), run(3.9, 1_300_000), run(2.0, 1_500_000)],
    resticVersion: 'restic 0.14.0',
    skipped: [],
    ...over,
  };
}

describe('snapshot verdicts', () => {
  it('judges medians: unchanged under 2 s and 10 KB, the edit against restic', () => {
    const v = snapshotVerdicts(results());
    const by = (figure: string, subject: string) => v.find((x) => x.figure === figure && x.subject.endsWith(subject))!;
    expect(by('snapshot of an unchanged tree', 'time')).toMatchObject({ value: 0.21, pass: true });
    expect(by('snapshot of an unchanged tree', 'new bytes')).toMatchObject({ value: 280, pass: true });
    expect(by('snapshot after a 100-byte edit', 'time')).toMatchObject({ value: 2.3, pass: true }); // restic median 3.8
    expect(by('snapshot after a 100-byte edit', 'new bytes')).toMatchObject({ value: 112_000, pass: true });
  });

  it('fails at the limits: 2 s, 10,000 bytes, not faster or not smaller than restic', () => {
    const v = snapshotVerdicts(results({ unchanged: [run(2, 10_000)], editDits: [run(3.8, 1_440_000)], editRestic: [run(3.8, 1_440_000)] }));
    expect(v.map((x) => x.pass)).toEqual([false, false, false, false]);
  });

  it('without restic the edit figures are n/a and the report says why', () => {
    const r = results({ editRestic: [], resticVersion: null, skipped: ['restic not installed'] });
    const v = snapshotVerdicts(r);
    expect(v.filter((x) => x.figure.includes('edit')).map((x) => x.pass)).toEqual([null, null]);
    expect(formatSnapshotReport(r, v, 3)).toMatch(/skipped: restic not installed/);
  });

  it("each run's edit lands apart, inside the file", () => {
    const offs = [0, 1, 2].map((r) => editOffset(r, 2 ** 30));
    expect(new Set(offs).size).toBe(3);
    for (const o of [...offs, editOffset(5, 64 * 2 ** 20)]) expect(o + 100).toBeLessThanOrEqual(64 * 2 ** 20);
  });
});
