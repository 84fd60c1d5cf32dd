import { describe, expect, it } from 'vitest';
import { coreVerdicts, formatCoreReport, formatTable } from './report.js';
import { parseBenchArgs } from './args.js';
import type { CoreResults, TimedRun } from './core.js';

const t = (mbps: number): TimedRun => ({ bytes: 1e9, seconds: 1e3 / mbps, mbps });
const mem = (peak: number) => ({ bytes: 1, seconds: 1, mbps: 1, memory: { peakSumRssBytes: peak, peakSumAnonBytes: peak / 2, peakSingleRssBytes: peak / 2, peakSingleName: 'node', samples: 10, maxProcesses: 3 } });

function results(): CoreResults {
  return {
    files: { video: 1e9, videoSeconds: 80, videoBitsPerSecond: 1e8, editA: 1e9, editB: 1e9 + 4096, editAOffset: 5e8, editBOffset: 1 << 20, big: 8e9 },
    peers: {},
    add: { 'dits (git add)': [t(400), t(460), t(500)], 'dits (git dits add)': [t(500), t(590), t(600)], 'git-lfs (git add)': [t(150), t(140), t(160)] },
    checkout: { dits: [t(600)], 'git-lfs': [t(250)] },
    edits: { a: { dits: [{ newBytes: 120_000 }], 'git-lfs': [{ newBytes: 1e9 }] }, b: { dits: [{ newBytes: 300_000 }] } },
    pointerBytes: { dits: 186, 'git-lfs': 133 },
    bigMemory: { 'dits: git dits add': [mem(100 * 2 ** 20)], 'dits: git checkout': [mem(400 * 2 ** 20)] },
    skipped: [],
  };
}

describe('coreVerdicts', () => {
  it('compares medians against the issue 3 targets', () => {
    const v = coreVerdicts(results());
    const get = (subject: string) => v.find((x) => x.subject === subject)!;
    expect(get('dits (git add) / git-lfs').value).toBeCloseTo(460 / 150);
    expect(get('dits (git add) / git-lfs').pass).toBe(true);
    expect(get('git dits add / git-lfs').value).toBeCloseTo(590 / 150);
    expect(get('git dits add / git-lfs').pass).toBe(false);
    expect(get('dits / git-lfs').pass).toBe(false);
    expect(get('dits, edit A').pass).toBe(true);
    expect(get('dits, edit B').pass).toBe(false);
    expect(get('dits: git dits add').pass).toBe(true);
    expect(get('dits: git checkout').pass).toBe(false);
    expect(get('dits').pass).toBe(true);
  });
  it('says n/a, not PASS, when the peer is missing', () => {
    const r = results();
    delete r.add['git-lfs (git add)'];
    const v = coreVerdicts(r);
    expect(v.find((x) => x.subject === 'dits (git add) / git-lfs')!.pass).toBeNull();
    expect(formatCoreReport(r, v, 3)).toMatch(/dits \(git add\)\s+460\s+400\s+500\s+22%\s+-\s+>= 3x\s+n\/a/);
  });
});

describe('formatTable', () => {
  it('aligns columns', () => {
    expect(formatTable(['a', 'bb'], [['xyz', '1'], ['q', '100']])).toBe('a     bb\n---  ---\nxyz    1\nq    100');
  });
});

describe('parseBenchArgs', () => {
  it('reads the quick mode and the environment defaults', () => {
    const o = parseBenchArgs(['--size', '64M', '--big-size', '256M', '--runs', '1', '--only', 'core'], {});
    expect(o).toMatchObject({ size: 64 * 2 ** 20, bigSize: 256 * 2 ** 20, runs: 1, only: ['core'], skipBig: false, json: null });
    const d = parseBenchArgs([], { BENCH_SIZE: '2G' });
    expect(d.size).toBe(2 * 2 ** 30);
    expect(d.bigSize).toBe(8 * 2 ** 30);
    expect(d.runs).toBe(3);
  });
  it('rejects unknown sections and bad run counts', () => {
    expect(() => parseBenchArgs(['--only', 'core,video'], {})).toThrow(/unknown section/);
    expect(() => parseBenchArgs(['--runs', '0'], {})).toThrow(/positive/);
  });
});
