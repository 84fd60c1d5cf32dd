/**
 * The reaper end to end over S3Storage and the Glacier front before s3rver: marks, moves in
 * place by CopyObject (no bytes uploaded, no object deleted but the reaper's own markers),
 * a network cut in the middle of the moves, and a single-class provider.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { S3Storage } from '../transfer/s3-storage.js';
import { startGlacierFront, type GlacierFront } from '../transfer/testing/glacier-front.js';
import { startS3rver, type RunningS3rver } from '../transfer/testing/s3rver.js';
import { readStreamToBuffer } from '../transfer/object-storage.js';
import { TierCatalog } from './catalog.js';
import { reapOnce } from './reaper.js';
import { DEFAULT_POLICY, type TierPolicy } from './policy.js';
import { putTestManifest, putTestPack, testChunk } from './testing/remote-fixture.js';
import { packKey } from '../remote/content/layout.js';
import type { ProviderName } from './tiers.js';

const BUCKET = 'reaper';
let s3rver: RunningS3rver;
let front: GlacierFront;

beforeAll(async () => {
  s3rver = await startS3rver({ buckets: [BUCKET] });
  front = await startGlacierFront(s3rver.endpoint, { restoreDelayMs: 3_600_000 });
});
afterAll(async () => {
  await front?.close();
  await s3rver?.close();
});
beforeEach(() => front.resetCounts());

function storage(provider: ProviderName = 'aws'): { s: S3Storage; prefix: string } {
  const prefix = `r-${randomBytes(6).toString('hex')}`;
  const s = new S3Storage({
    bucket: BUCKET,
    prefix,
    endpoint: front.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: s3rver.credentials,
    tier: { provider },
    requestRetry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
  });
  return { s, prefix };
}

/** Everything used the moment it is uploaded goes warm at once: the storage's real clock decides. */
const warmNow: TierPolicy = { ...DEFAULT_POLICY, warmAfterDays: 0, coldAfterDays: Infinity, deepAfterDays: Infinity, graceMs: 0 };

async function remoteOf(s: S3Storage, n: number): Promise<{ packId: string; manifest: string }[]> {
  const files = [];
  for (let i = 0; i < n; i++) {
    const chunks = [0, 1].map((k) => testChunk(`${i}-${k}`, 3000));
    const { packId } = await putTestPack(s, chunks);
    files.push({ packId, manifest: await putTestManifest(s, chunks, `f${i}`) });
  }
  return files;
}

/** key -> sha256 of the bytes, for every object but the reaper's own (v1/tier/). */
async function contentOf(s: S3Storage): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const o of s.list('v1/')) {
    if (o.key.startsWith('v1/tier/')) continue;
    out.set(o.key, createHash('sha256').update(await readStreamToBuffer(await s.get(o.key))).digest('hex'));
  }
  return out;
}

describe('the reaper over S3 (Glacier front)', () => {
  it('marks, then moves each pack in place by CopyObject: no bytes uploaded, no object of content deleted', async () => {
    const { s, prefix } = storage();
    const files = await remoteOf(s, 4);
    const before = await contentOf(s);
    const catalog = TierCatalog.open(':memory:');
    front.resetCounts();
    const r1 = await reapOnce(s, catalog, warmNow, { keepHotManifests: new Set([files[0]!.manifest]) });
    expect(r1.apply).toMatchObject({ marked: 3, moved: 0 });
    expect(front.counts.copies).toBe(0);
    const r2 = await reapOnce(s, catalog, warmNow, { keepHotManifests: new Set([files[0]!.manifest]) });
    expect(r2.apply).toMatchObject({ moved: 3, marked: 0 });
    expect(front.counts.copies).toBe(3);
    // what came in over PUT is the reaper's small JSON objects only (markers, clock probes)
    expect(front.counts.bytesUploaded).toBeLessThan(3 * 1024);
    expect(front.classOf(`${prefix}/${packKey(files[0]!.packId)}`)).toBe('STANDARD');
    for (const f of files.slice(1)) expect(front.classOf(`${prefix}/${packKey(f.packId)}`)).toBe('STANDARD_IA');
    const after = await contentOf(s);
    expect(after).toEqual(before);
    const tierKeys: string[] = [];
    for await (const o of s.list('v1/tier/')) tierKeys.push(o.key);
    expect(tierKeys).toEqual(['v1/tier/clock.json']);
    // a third run has nothing to do
    const r3 = await reapOnce(s, catalog, warmNow, { keepHotManifests: new Set([files[0]!.manifest]) });
    expect(r3.plan.moves.length).toBe(0);
  });

  it('the network cut during the 3rd move: the run fails, every object is intact, the next run completes', async () => {
    const { s, prefix } = storage();
    const files = await remoteOf(s, 5);
    const before = await contentOf(s);
    const catalog = TierCatalog.open(':memory:');
    await reapOnce(s, catalog, warmNow, { keepHotManifests: new Set() }); // marks
    const real = s.setStorageClass.bind(s);
    let calls = 0;
    s.setStorageClass = async (key, cls, opts) => {
      if (++calls === 3) front.failNext('copy', 'cut', undefined, { times: 3 }); // every retry of it too
      return real(key, cls, opts);
    };
    await expect(reapOnce(s, catalog, warmNow, { keepHotManifests: new Set(), apply: { concurrency: 1 } })).rejects.toThrow();
    s.setStorageClass = real;
    expect(await contentOf(s)).toEqual(before);
    const moved = files.filter((f) => front.classOf(`${prefix}/${packKey(f.packId)}`) === 'STANDARD_IA').length;
    expect(moved).toBe(2);
    const r = await reapOnce(s, catalog, warmNow, { keepHotManifests: new Set(), apply: { concurrency: 1 } });
    expect(r.apply!.moved).toBe(3);
    for (const f of files) expect(front.classOf(`${prefix}/${packKey(f.packId)}`)).toBe('STANDARD_IA');
    expect(await contentOf(s)).toEqual(before);
    expect(catalog.movesLog().length).toBe(5);
  });

  it('lifecycle mode tags the packs instead of copying them, and does not tag them again on later runs', async () => {
    const { s, prefix } = storage();
    const files = await remoteOf(s, 3);
    const catalog = TierCatalog.open(':memory:');
    const lifecycle: TierPolicy = { ...warmNow, mode: 'lifecycle' };
    await reapOnce(s, catalog, lifecycle, { keepHotManifests: new Set() });
    front.resetCounts();
    const r = await reapOnce(s, catalog, lifecycle, { keepHotManifests: new Set() });
    expect(r.apply!.moved).toBe(3);
    expect(front.counts.tagging).toBe(3);
    expect(front.counts.copies).toBe(0);
    for (const f of files) expect(front.classOf(`${prefix}/${packKey(f.packId)}`)).toBe('STANDARD'); // until the bucket's rules run
    const again = await reapOnce(s, catalog, lifecycle, { keepHotManifests: new Set() });
    expect(again.plan.moves.length).toBe(0);
    expect(again.plan.before.warm.packs).toBe(3);
    expect(front.counts.tagging).toBe(3);
  });

  it('a single-class provider (Wasabi) says so and sends no request that changes anything', async () => {
    const { s } = storage('wasabi');
    await remoteOf(s, 2);
    const catalog = TierCatalog.open(':memory:');
    front.resetCounts();
    const r = await reapOnce(s, catalog, warmNow, { keepHotManifests: new Set() });
    expect(r.plan.tiered).toBe(false);
    expect(r.plan.notes[0]).toMatch(/Wasabi has one storage class/);
    expect(front.counts.puts + front.counts.copies + front.counts.deletes + front.counts.tagging).toBe(0);
  });
});
