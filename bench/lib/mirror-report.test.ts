import { describe, expect, it } from 'vitest';
import { parseBenchArgs } from './args.js';
import { contentListings, formatMirrorReport, mirrorVerdicts, syncRatioServerSide } from './mirror-report.js';
import type { CopyRun, MirrorResults, ResyncRun } from './mirror.js';

const copy = (mbps: number): CopyRun => ({ bytes: 2 ** 30, seconds: 2 ** 30 / 1e6 / mbps, mbps, cpuSeconds: 1, serverCpuSeconds: 2 });
const LISTED = { 'primary/proj/v1/': 1, 'mirror/m/proj/v1/': 1, 'primary/proj/.dits-cas/v1%2Frefs/': 1, 'mirror/m/proj/.dits-cas/v1%2Frefs/': 1 };
const resync = (seconds: number, listings: Record<string, number> = LISTED): ResyncRun => ({ seconds, requests: 10, listings, copiedBytes: 0, refs: 'unchanged' });

function results(over: Partial<MirrorResults> = {}): MirrorResults {
  return {
    contentBytes: 2 ** 30,
    sync: [copy(150), copy(170), copy(100)],
    rcloneStream: [copy(200), copy(180), copy(210)],
    rcloneServer: [copy(1500)],
    resync: [resync(0.3), resync(0.5), resync(0.2)],
    cloneBytes: 2 ** 30,
    clonePush: [copy(90), copy(80)],
    rclonePush: [copy(100), copy(100)],
    rclonePushOnePut: [copy(170)],
    rcloneVersion: 'rclone v1.60.1-DEV',
    skipped: [],
    ...over,
  };
}

describe('mirror verdicts', () => {
  it('rates the sync and the push on median MB/s over rclone, the re-sync on its median time', () => {
    const v = mirrorVerdicts(results());
    const by = (figure: string, subject: string) => v.find((x) => x.figure === figure && x.subject.includes(subject))!;
    expect(by('mirror sync', 'rclone')).toMatchObject({ value: 0.75, pass: false }); // 150 / 200
    expect(by('mirror re-sync, nothing new', 'git dits')).toMatchObject({ value: 0.3, pass: true });
    expect(by('mirror re-sync, nothing new', 'listings')).toMatchObject({ value: 1, pass: true });
    expect(by("push of a clone's content to a second remote", 'git push')).toMatchObject({ value: 0.85, pass: true }); // 85 / 100
    expect(syncRatioServerSide(results())).toBe(0.1);
    expect(formatMirrorReport(results(), v, 3)).toMatch(/push \/ rclone copy in one PUT: 0\.50x/); // 85 / 170, printed, not a verdict
    expect(v).toHaveLength(4);
  });

  it('a second listing of a side in any run fails the listing figure; refs reads from the CAS log do not count', () => {
    expect(contentListings(LISTED, 'primary')).toBe(1);
    expect(contentListings(LISTED, 'mirror')).toBe(1);
    const twice = { ...LISTED, 'mirror/m/proj/v1/': 2 };
    const v = mirrorVerdicts(results({ resync: [resync(0.3), resync(0.3, twice)] }));
    expect(v.find((x) => x.subject.includes('listings'))).toMatchObject({ value: 2, pass: false });
    const none = { 'primary/proj/v1/': 1 };
    expect(mirrorVerdicts(results({ resync: [resync(0.3, none)] })).find((x) => x.subject.includes('listings'))!.pass).toBe(false);
  });

  it('the re-sync fails at 1 s', () => {
    expect(mirrorVerdicts(results({ resync: [resync(1)] })).find((x) => x.figure.includes('re-sync') && x.unit === 's')!.pass).toBe(false);
  });

  it('without rclone the ratios are n/a, not passes, and the report says why', () => {
    const r = results({ rcloneStream: [], rcloneServer: [], rclonePush: [], rclonePushOnePut: [], rcloneVersion: null, skipped: ['rclone not installed'] });
    const v = mirrorVerdicts(r);
    expect(v.filter((x) => x.unit === 'x').map((x) => x.pass)).toEqual([null, null]);
    const text = formatMirrorReport(r, v, 3);
    expect(text).toMatch(/skipped: rclone not installed/);
    expect(text).toMatch(/n\/a/);
  });

  it('--only mirror,snapshot and --snapshot-files parse', () => {
    expect(parseBenchArgs(['--only', 'mirror,snapshot', '--snapshot-files', '3'], {})).toMatchObject({ only: ['mirror', 'snapshot'], snapshotFiles: 3 });
    expect(parseBenchArgs([], {})).toMatchObject({ snapshotFiles: 10 });
    expect(() => parseBenchArgs(['--snapshot-files', '0'], {})).toThrow(/--snapshot-files/);
  });
});
