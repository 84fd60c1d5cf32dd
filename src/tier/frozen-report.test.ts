import { describe, expect, it } from 'vitest';
import { formatFrozenReport, frozenReport, thawCommand } from './frozen-report.js';
import { AWS_US_EAST_1, FOLDER_PRICES, formatDollars, restoreCost } from './prices.js';
import type { FrozenFiles } from '../worktree/remote-fetch.js';

const id = (n: number): string => n.toString(16).padStart(64, '0');
const bytes = (n: number): string => `${n} B`;

function frozen(packs: { n: number; cls?: string; size: number }[], files: { path: string; bytes: number; packs: number[] }[]): FrozenFiles {
  return {
    remote: 'origin',
    location: 's3://b/p',
    provider: 'aws',
    files: files.map((f) => ({ path: f.path, bytes: f.bytes, packs: f.packs.map(id) })),
    packs: packs.map((p) => ({ packId: id(p.n), key: `v1/packs/${id(p.n)}.pack`, storageClass: p.cls, bytes: p.size, chunks: ['x'] })),
  };
}

describe('frozenReport', () => {
  it('prices each archive class with every retrieval tier it offers, from the table', () => {
    const r = frozenReport(
      frozen(
        [
          { n: 1, cls: 'DEEP_ARCHIVE', size: 3 << 30 },
          { n: 2, cls: 'GLACIER', size: 1 << 30 },
          { n: 3, cls: 'DEEP_ARCHIVE', size: 1 << 30 },
        ],
        [
          { path: 'a.mov', bytes: 10, packs: [1, 2] },
          { path: 'b.mov', bytes: 20, packs: [3] },
        ],
      ),
      AWS_US_EAST_1,
      { days: 3 },
    );
    expect(r.bytes).toBe(30);
    expect(r.packBytes).toBe(5 << 30);
    expect(r.thaw.command).toBe('git dits thaw a.mov b.mov');
    expect(r.thaw.estimates).toEqual([
      restoreCost(AWS_US_EAST_1, 'DEEP_ARCHIVE', 'standard', 4 << 30, 2, 3),
      restoreCost(AWS_US_EAST_1, 'DEEP_ARCHIVE', 'bulk', 4 << 30, 2, 3),
      restoreCost(AWS_US_EAST_1, 'GLACIER', 'expedited', 1 << 30, 1, 3),
      restoreCost(AWS_US_EAST_1, 'GLACIER', 'standard', 1 << 30, 1, 3),
      restoreCost(AWS_US_EAST_1, 'GLACIER', 'bulk', 1 << 30, 1, 3),
    ]);
    const text = formatFrozenReport(r, bytes).join('\n');
    expect(text).toContain('a.mov (10 B)');
    for (const e of r.thaw.estimates) expect(text).toContain(formatDollars(e.total));
    expect(text).toMatch(/expedited .* 1-5 min/);
    expect(text).toMatch(/standard .* 3-5 h/);
  });

  it('packs no file needs are left out; a class without restore prices is said, not priced', () => {
    const r = frozenReport(
      frozen(
        [
          { n: 1, cls: 'deep', size: 100 },
          { n: 2, size: 50 },
          { n: 9, cls: 'DEEP_ARCHIVE', size: 1000 },
        ],
        [{ path: 'tape.mov', bytes: 140, packs: [1, 2] }],
      ),
      // folders without restore prices (the shipped folder table prices restores at $0)
      { ...FOLDER_PRICES, restore: {} },
    );
    expect(r.packs.map((p) => p.packId)).toEqual([id(1), id(2)]);
    expect(r.thaw.estimates).toEqual([]);
    expect(r.thaw.unpriced).toEqual([
      { storageClass: 'deep', packs: 1, bytes: 100 },
      { storageClass: null, packs: 1, bytes: 50 },
    ]);
    expect(formatFrozenReport(r, bytes).join('\n')).toMatch(/1 pack\(s\) \(100 B\) in deep: no restore prices/);
  });

  it('the thaw command quotes paths a shell would split, and guards a leading dash', () => {
    expect(thawCommand(['a b.mov', "it's.mov", '-x.mov', 'plain/ok.mov'])).toBe(`git dits thaw 'a b.mov' 'it'\\''s.mov' ./-x.mov plain/ok.mov`);
  });
});
