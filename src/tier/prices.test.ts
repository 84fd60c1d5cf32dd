import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  AWS_US_EAST_1,
  earlyDeletionCharge,
  formatDollars,
  formatHours,
  GIB,
  loadPriceTable,
  monthlyStorageCost,
  restoreCost,
  restoreTiers,
  transitionCost,
} from './prices.js';

const T = AWS_US_EAST_1;

describe('price table arithmetic', () => {
  it('monthly storage: bytes in GiB times the class price, archived objects with their 40 KiB overhead', () => {
    // 100 TiB in STANDARD: the issue's ~$2,300 a month
    expect(monthlyStorageCost(T, 'STANDARD', 100 * 1024 * GIB, 1_600_000)).toBeCloseTo(102_400 * 0.023, 6);
    // DEEP_ARCHIVE: 32 KiB per object at its own price plus 8 KiB at STANDARD's
    const objects = 1000;
    const bytes = 64 * GIB;
    const expected = ((bytes + objects * 32 * 1024) / GIB) * 0.00099 + ((objects * 8 * 1024) / GIB) * 0.023;
    expect(monthlyStorageCost(T, 'DEEP_ARCHIVE', bytes, objects)).toBeCloseTo(expected, 10);
    // STANDARD_IA bills small objects as 128 KiB
    expect(monthlyStorageCost(T, 'STANDARD_IA', 10 * 1024, 10)).toBeCloseTo(((10 * 128 * 1024) / GIB) * 0.0125, 12);
  });

  it('transitions cost per 1,000 objects moved', () => {
    expect(transitionCost(T, 'DEEP_ARCHIVE', 2500)).toBeCloseTo(2.5 * 0.05, 12);
    expect(transitionCost(T, 'STANDARD_IA', 1000)).toBeCloseTo(0.01, 12);
  });

  it('early deletion bills the rest of the minimum duration, nothing after it', () => {
    // 90-day GLACIER_IR left after 30 days: 60 days = 2 months of storage
    expect(earlyDeletionCharge(T, 'GLACIER_IR', 10 * GIB, 10, 30)).toBeCloseTo(10 * 0.004 * 2, 10);
    expect(earlyDeletionCharge(T, 'GLACIER_IR', 10 * GIB, 10, 90)).toBe(0);
    expect(earlyDeletionCharge(T, 'STANDARD', 10 * GIB, 10, 0)).toBe(0);
    // a clock behind the upload time (negative age) is billed as a full minimum, never more
    expect(earlyDeletionCharge(T, 'DEEP_ARCHIVE', GIB, 1, -5)).toBeCloseTo(((GIB + 32 * 1024) / GIB) * 0.00099 * 6, 10);
  });

  it('restore estimates: retrieval per GiB, requests per 1,000, the restored copy at STANDARD for the days kept', () => {
    const e = restoreCost(T, 'GLACIER', 'standard', 200 * GIB, 4, 7);
    expect(e.retrieval).toBeCloseTo(200 * 0.01, 10);
    expect(e.requestCost).toBeCloseTo((4 / 1000) * 0.05, 12);
    expect(e.restoredCopy).toBeCloseTo(200 * 0.023 * (7 / 30), 10);
    expect(e.total).toBeCloseTo(e.retrieval + e.requestCost + e.restoredCopy, 12);
    expect(e.hours).toEqual([3, 5]);
    const bulk = restoreCost(T, 'GLACIER', 'bulk', 200 * GIB, 4, 1);
    expect(bulk.retrieval + bulk.requestCost).toBe(0);
    expect(restoreCost(T, 'DEEP_ARCHIVE', 'bulk', GIB, 1000, 7).requestCost).toBeCloseTo(0.025, 12);
  });

  it('Deep Archive has no expedited retrieval, and says what to use', () => {
    expect(restoreTiers(T, 'DEEP_ARCHIVE')).toEqual(['standard', 'bulk']);
    expect(() => restoreCost(T, 'DEEP_ARCHIVE', 'expedited', GIB, 1, 7)).toThrow(/no expedited/);
    expect(restoreTiers(T, 'STANDARD')).toEqual([]);
  });

  it('formats dollars and times as people read them', () => {
    expect(formatDollars(0)).toBe('$0');
    expect(formatDollars(0.004)).toBe('$0.0040');
    expect(formatDollars(2355.2)).toBe('$2355.20');
    expect(formatHours([1 / 60, 5 / 60])).toBe('1-5 min');
    expect(formatHours([3, 5])).toBe('3-5 h');
    expect(formatHours([0, 48])).toBe('within 48 h');
  });
});

describe('loadPriceTable', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dits-prices-'));
  it('without a file: the shipped, dated AWS table', () => {
    expect(loadPriceTable().asOf).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });
  it('a replacement table is used as given', () => {
    const f = path.join(dir, 'p.json');
    const t = structuredClone(T);
    t.classes.DEEP_ARCHIVE!.storagePerGiBMonth = 0.002;
    writeFileSync(f, JSON.stringify(t));
    expect(monthlyStorageCost(loadPriceTable(f), 'DEEP_ARCHIVE', GIB, 0)).toBeCloseTo(0.002, 12);
  });
  it('a broken table names the bad field; a missing file says what to do', () => {
    const f = path.join(dir, 'bad.json');
    const t = structuredClone(T) as unknown as { classes: Record<string, Record<string, unknown>> };
    t.classes.GLACIER!.storagePerGiBMonth = 'cheap';
    writeFileSync(f, JSON.stringify(t));
    expect(() => loadPriceTable(f)).toThrow(/classes\.GLACIER\.storagePerGiBMonth/);
    expect(() => loadPriceTable(path.join(dir, 'none.json'))).toThrow(/cannot read the price table/);
    writeFileSync(path.join(dir, 'x.json'), '{');
    expect(() => loadPriceTable(path.join(dir, 'x.json'))).toThrow(/not JSON/);
  });
  it('an unknown class is an error naming it, not a zero', () => {
    expect(() => monthlyStorageCost(T, 'ONEZONE_IA', GIB, 1)).toThrow(/no prices for ONEZONE_IA/);
  });
});
