import { describe, expect, it } from 'vitest';
import { detectProvider, needsRestore, providerProfile, tierOfClass } from './tiers.js';

describe('provider profiles', () => {
  it('AWS maps the tiers to the seed classes by default; overrides are checked', () => {
    const p = providerProfile('aws');
    expect(p.classes).toEqual({ hot: 'STANDARD', warm: 'STANDARD_IA', cold: 'GLACIER_IR', deep: 'DEEP_ARCHIVE' });
    expect(providerProfile('aws', { overrides: { cold: 'glacier' } }).classes!.cold).toBe('GLACIER');
    expect(() => providerProfile('aws', { overrides: { warm: 'COLDLINE' } })).toThrow(/not an AWS storage class/);
    expect(() => providerProfile('aws', { overrides: { hot: 'STANDARD_IA' } })).toThrow(/hot tier must be STANDARD/);
  });
  it('single-class providers have no map and say so', () => {
    for (const n of ['b2', 'r2', 'wasabi', 'generic'] as const) {
      const p = providerProfile(n);
      expect(p.classes).toBeNull();
      expect(p.note).toMatch(/nothing to move|does nothing/);
    }
  });
  it('detects the provider from the endpoint', () => {
    expect(detectProvider(undefined)).toBe('aws');
    expect(detectProvider('https://s3.eu-west-1.amazonaws.com')).toBe('aws');
    expect(detectProvider('https://s3.us-west-004.backblazeb2.com')).toBe('b2');
    expect(detectProvider('https://abc.r2.cloudflarestorage.com')).toBe('r2');
    expect(detectProvider('https://s3.wasabisys.com')).toBe('wasabi');
    expect(detectProvider('http://127.0.0.1:9000')).toBe('generic');
    expect(detectProvider('not a url')).toBe('generic');
  });
  it('classes count as tiers, archive classes need a restore', () => {
    const p = providerProfile('aws', { overrides: { cold: 'GLACIER' } });
    expect(tierOfClass(p, undefined)).toBe('hot');
    expect(tierOfClass(p, 'GLACIER')).toBe('cold');
    expect(tierOfClass(p, 'GLACIER_IR')).toBe('cold');
    expect(tierOfClass(p, 'DEEP_ARCHIVE')).toBe('deep');
    expect(needsRestore(p, 'GLACIER')).toBe(true);
    expect(needsRestore(p, 'GLACIER_IR')).toBe(false);
    const f = providerProfile('folder', { archiveTiers: ['deep'] });
    expect(tierOfClass(f, 'warm')).toBe('warm');
    expect(needsRestore(f, 'deep')).toBe(true);
    expect(tierOfClass(providerProfile('b2'), 'STANDARD')).toBe('hot');
  });
});
