import { describe, expect, it } from 'vitest';
import { editBudget, mediaVerdicts, formatMediaReport } from './media-report.js';
import { remoteVerdicts, formatRemoteReport } from './remote-report.js';
import type { MediaClipResults } from './media.js';
import type { RemoteResults, TransferRun } from './remote.js';

function clip(format: 'h264-mp4' | 'prores-mov'): MediaClipResults {
  const n = (dits: number, plain: number) => ({ dits: [dits], 'dits (plain FastCDC)': [plain], 'git-lfs': [1e9] });
  return {
    format,
    bytes: 1e9,
    durationSeconds: 60,
    editSeconds: 10,
    appendedBytes: 1e8,
    editBytes: {},
    newBytes: { metadata: n(5e6, 6e6), faststart: n(2e7, 1e7), trim: n(1.9e7, 2e7), append: n(1.21e8, 1.3e8), audio: n(1e5, 2e5), timecode: n(1e7, 1e7) },
    ingest: { dits: [{ bytes: 1e9, seconds: 1, mbps: 95 }], 'dits (plain FastCDC)': [{ bytes: 1e9, seconds: 1, mbps: 100 }] },
  };
}

describe('media verdicts', () => {
  it('budgets: 1% for small edits, 2% for trim, 2% plus the new footage for append', () => {
    const c = clip('h264-mp4');
    expect(editBudget(c, 'metadata')).toBe(1e7);
    expect(editBudget(c, 'trim')).toBe(2e7);
    expect(editBudget(c, 'append')).toBe(2e7 + 1e8);
  });
  it('judges each edit, media-aware against plain, and ProRes ingest overhead', () => {
    const v = mediaVerdicts({ clips: [clip('prores-mov')], skipped: [] });
    const get = (figure: string, subject: string) => v.find((x) => x.figure === figure && x.subject.includes(subject))!.pass;
    expect(get('new bytes, prores-mov', 'metadata')).toBe(true);
    expect(get('new bytes, prores-mov', 'faststart')).toBe(false);
    expect(get('new bytes, prores-mov', 'trim')).toBe(true);
    expect(get('new bytes, prores-mov', 'append')).toBe(false);
    expect(get('new bytes, prores-mov', 'timecode')).toBe(false);
    expect(get('media-aware vs plain, prores-mov', 'faststart')).toBe(false);
    expect(get('media-aware vs plain, prores-mov', 'audio')).toBe(true);
    expect(get('ingest, prores-mov', 'media-aware')).toBe(true);
    expect(formatMediaReport({ clips: [clip('prores-mov')], skipped: [] }, v, 1)).toContain('4 append footage');
  });
});

describe('remote verdicts', () => {
  const t = (mbps: number, seconds: number, requests: number, bytesUp: number, peak?: number): TransferRun => ({
    bytes: 2 ** 30,
    seconds,
    mbps,
    traffic: { requests, bytesUp, bytesDown: 0, byMethod: {} },
    ...(peak ? { memory: { peakSumRssBytes: peak, peakSumAnonBytes: 0, peakSingleRssBytes: 0, peakSingleName: 'git', samples: 1, maxProcesses: 1 } } : {}),
  });
  it('compares with rclone and the fixed limits', () => {
    const r: RemoteResults = {
      videoBytes: 2 ** 30,
      lazyPaths: 20,
      push: [t(70, 15, 40, 2 ** 30, 200 * 2 ** 20)],
      rcloneUp: [t(80, 13, 4, 2 ** 30)],
      editPush: [t(1, 3.5, 10, 500_000)],
      clone: [t(200, 5, 30, 0, 400 * 2 ** 20)],
      rcloneDown: [t(350, 3, 3, 0)],
      lazyClone: [t(0, 1.2, 7, 0)],
      rcloneVersion: 'rclone v1.60',
      skipped: [],
    };
    const v = remoteVerdicts(r);
    const get = (figure: string, subject: string) => v.find((x) => x.figure === figure && x.subject === subject)!;
    expect(get('first push to S3', 'dits / rclone copy MB/s').pass).toBe(true);
    expect(get('push after a 100-byte edit', 'bytes sent').pass).toBe(true);
    expect(get('push after a 100-byte edit', 'seconds').pass).toBe(false);
    expect(get('requests per GiB, first push', 'dits').value).toBe(40);
    expect(get('full clone from S3', 'dits / rclone copy MB/s').pass).toBe(false);
    expect(get('lazy clone', '20 paths x 1.00 GiB').pass).toBe(true);
    expect(get('peak memory, push and clone', 'git push').pass).toBe(true);
    expect(get('peak memory, push and clone', 'git clone').pass).toBe(false);
    expect(formatRemoteReport(r, v, 1)).toMatch(/lazy \(20 paths\)\s+1\.20 s\s+-/);
  });
});

describe('many-files verdicts (issue 15)', () => {
  it('ratio is git-lfs seconds over Dits seconds, judged per set and figure', async () => {
    const { manyVerdicts } = await import('./many-report.js');
    const runs = (s: number) => [{ bytes: 1, seconds: s, mbps: 1 / s }];
    const v = manyVerdicts({
      sets: [
        { set: { name: '1000 x 256 KiB', count: 1000, fileBytes: 262144 }, add: { dits: runs(1), 'git-lfs': runs(2.2) }, checkout: { dits: runs(1), 'git-lfs': runs(1.4) } },
        { set: { name: '200 x 4 MiB', count: 200, fileBytes: 4194304 }, add: { dits: runs(2), 'git-lfs': runs(5.7) }, checkout: { dits: runs(1), 'git-lfs': runs(3) } },
      ],
      smallAdd: { dits: [0.07, 0.09, 0.075] },
      startup: { git: [0.001], dits: [0.05] },
      status: { trackedFiles: 10000, git: [0.4], dits: [2.5], lfsGit: [0.3] },
      skipped: [],
    });
    const get = (figure: string) => v.filter((x) => x.figure === figure).map((x) => x.pass);
    expect(get('git add, 1000 x 256 KiB')).toEqual([true]);
    expect(get('checkout, 1000 x 256 KiB')).toEqual([false]);
    expect(get('git add, 200 x 4 MiB')).toEqual([false]);
    expect(get('checkout, 200 x 4 MiB')).toEqual([true]);
    expect(get('git add, one 1 MiB file')).toEqual([true]);
    expect(v.find((x) => x.subject === 'git status')!.pass).toBe(true);
    expect(v.find((x) => x.subject === 'git dits status')!.pass).toBe(false);
  });
});
