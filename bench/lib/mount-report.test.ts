import { describe, expect, it } from 'vitest';
import { parseBenchArgs } from './args.js';
import { formatMountReport, mountVerdicts } from './mount-report.js';
import type { MountResults, MountRun } from './mount.js';

const run = (firstByteMs: number, mbps: number, peakRssBytes: number): MountRun => ({ firstByteMs, seconds: 1, mbps, mountCpuSeconds: 0.5, peakRssBytes });

function results(over: Partial<MountResults> = {}): MountResults {
  return {
    fileBytes: 2 ** 30,
    memoryBudgetBytes: 256 * 2 ** 20,
    local: [run(20, 500, 200 * 2 ** 20), run(30, 450, 210 * 2 ** 20), run(25, 300, 205 * 2 ** 20)],
    disk: [{ seconds: 0.5, mbps: 2000 }],
    remote: [run(120, 100, 400 * 2 ** 20)],
    rcloneCat: [{ seconds: 1, mbps: 200 }],
    rcloneVersion: 'rclone v1.60.1-DEV',
    treeFiles: 10000,
    ls: [{ seconds: 0.4, mountSeconds: 0.3 }],
    bigFirstByte: null,
    editCommit: null,
    skipped: [],
    ...over,
  };
}

describe('mount verdicts', () => {
  it('judges each figure against the issue\'s target, on medians', () => {
    const v = mountVerdicts(results());
    const by = (figure: string, subject?: string) => v.find((x) => x.figure === figure && (subject === undefined || x.subject.startsWith(subject)))!;
    expect(by('first byte', 'local')).toMatchObject({ value: 25, pass: true });
    expect(by('first byte', 'remote')).toMatchObject({ value: 120, pass: true });
    expect(by('sequential read', 'local')).toMatchObject({ value: 450, pass: true });
    expect(by('sequential read from the remote')).toMatchObject({ value: 0.5, pass: false });
    expect(by('ls -lR')).toMatchObject({ value: 0.4, pass: true });
    expect(by('memory of the mount process', 'local read')).toMatchObject({ value: 205 * 2 ** 20, pass: true });
    expect(by('memory of the mount process', 'remote read')).toMatchObject({ value: 400 * 2 ** 20, pass: false }); // over 256 MiB + 100 MiB
  });

  it('says what s3rver spent during each remote read, when measured', () => {
    const plain = results();
    expect(formatMountReport(plain, mountVerdicts(plain), 3)).not.toMatch(/s3rver during/);
    const r = results({ remote: [{ ...run(120, 100, 300 * 2 ** 20), serverCpuSeconds: 3.3 }, { ...run(110, 110, 300 * 2 ** 20), serverCpuSeconds: 3.1 }, { ...run(130, 90, 300 * 2 ** 20), serverCpuSeconds: 3.6 }], rcloneCat: [{ seconds: 1, mbps: 200, serverCpuSeconds: 2.5 }] });
    expect(formatMountReport(r, mountVerdicts(r), 3)).toMatch(/s3rver during the remote reads \(read directly, on the same cores as the reader\): 3\.30 CPU s while the mount read, 2\.50 s while rclone did/);
  });

  it('a figure not measured is n/a, not a pass, and the report says why', () => {
    const r = results({ remote: [], rcloneCat: [], rcloneVersion: null, skipped: ['no S3 server: no remote figures'] });
    const v = mountVerdicts(r);
    expect(v.find((x) => x.subject.startsWith('remote'))!.pass).toBeNull();
    expect(v.find((x) => x.figure === 'sequential read from the remote')!.pass).toBeNull();
    const text = formatMountReport(r, v, 3);
    expect(text).toMatch(/skipped: no S3 server/);
    expect(text).toMatch(/n\/a/);
  });

  it('judges the first byte on the big file when one was measured (the issue: 20 GiB)', () => {
    const r = results({ bigFirstByte: { fileBytes: 20 * 2 ** 30, local: [60, 40, 45], remote: [140, 170, 160] } });
    const v = mountVerdicts(r);
    expect(v.find((x) => x.figure === 'first byte' && x.subject.startsWith('local'))).toMatchObject({ value: 45, pass: true, subject: 'local store (20.0 GiB file)' });
    expect(v.find((x) => x.figure === 'first byte' && x.subject.startsWith('remote'))).toMatchObject({ value: 160, pass: false });
    const text = formatMountReport(r, v, 3);
    expect(text).toMatch(/first byte of a 20\.0 GiB random file through a fresh mount: local store 45\.0 ms \(40\.0\.\.60\.0\), lazy clone from S3 160\.0 ms/);
    expect(text).not.toMatch(/the issue's first-byte figure is for a 20 GiB file/);
  });

  it('judges the commit of a 100-byte edit from the overlay on time and on what the repository grew by, with re-adding the file beside it', () => {
    expect(mountVerdicts(results()).some((x) => x.figure.startsWith('commit of'))).toBe(false); // not measured: no verdict
    const r = results({ editCommit: { fileBytes: 20 * 2 ** 30, commits: [{ seconds: 0.8, newBytes: 600_000, reportedNewBytes: 450_000 }, { seconds: 2.4, newBytes: 1_200_000 }, { seconds: 1.1, newBytes: 640_000 }], readd: { seconds: 44, newBytes: 700_000 } } });
    const v = mountVerdicts(r).filter((x) => x.figure === 'commit of a 100-byte edit from the overlay');
    expect(v.find((x) => x.subject.startsWith('seconds'))).toMatchObject({ value: 1.1, pass: true, subject: 'seconds (20.0 GiB file)' });
    expect(v.find((x) => x.subject.startsWith('bytes'))).toMatchObject({ value: 640_000, pass: true });
    const slow = results({ editCommit: { fileBytes: 2 ** 30, commits: [{ seconds: 2.5, newBytes: 1_500_000 }], readd: null } });
    expect(mountVerdicts(slow).filter((x) => x.figure.startsWith('commit of')).map((x) => x.pass)).toEqual([false, false]);
    const text = formatMountReport(r, mountVerdicts(r), 3);
    expect(text).toMatch(/commit of a 100-byte edit in a 20\.0 GiB file from a writable mount \(git dits commit-mount\): 1\.10 s \(0\.80\.\.2\.40\), 625 KiB new in the repository \(439 KiB of it new chunks\); re-adding the file \(`git add`\) 44\.00 s, 684 KiB new: 40x the time/);
  });

  it('--only mount and its options parse', () => {
    expect(parseBenchArgs(['--mount-first-byte-size', '20G'], {})).toMatchObject({ mountFirstByteSize: 20 * 2 ** 30 });
    expect(parseBenchArgs([], {})).toMatchObject({ mountFirstByteSize: 0 });
    expect(parseBenchArgs(['--only', 'mount', '--mount-files', '500', '--mount-memory', '64M'], {})).toMatchObject({ only: ['mount'], mountFiles: 500, mountMemory: 64 * 2 ** 20 });
    expect(parseBenchArgs([], {})).toMatchObject({ mountFiles: 10000, mountMemory: 256 * 2 ** 20 });
  });
});
