/**
 * The server's scheduled mirror, in process with a clock the test sets: the first start
 * waits for the next scheduled time, a due time runs once (never twice, never two runs at
 * once), a mirror folder that is gone fails the run and leaves the primary as it was, and
 * the next scheduled run completes; an empty repository is not a failure.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createRepo } from './admin.js';
import { startServer, type RunningServer } from './main.js';
import { nextFireUtc, parseMirrorSchedule, parseMirrorUrl, previousFireUtc } from './mirror-scheduler.js';
import { putTestManifest, putTestPack, testChunk } from '../src/tier/testing/remote-fixture.js';
import { filesUnder } from '../src/tier/testing/folder-files.js';
import { FileStorage } from '../src/transfer/file-storage.js';
import { writeFormat } from '../src/remote/remote-state.js';
import { TieredFolderStorage } from '../src/tier/tier-folders.js';
import { DAY_MS, DEFAULT_POLICY } from '../src/tier/policy.js';
import { publishKeepHot } from '../src/tier/keep-hot.js';
import { packKey } from '../src/remote/content/layout.js';
import { utimesSync } from 'node:fs';
import type { LogFields } from './logger.js';
import { S3Storage } from '../src/transfer/s3-storage.js';
import { readStreamToBuffer } from '../src/transfer/object-storage.js';
import { REFS_KEY } from '../src/remote/remote-state.js';
import { startS3rverProcess } from '../test/helpers/s3rver-process.js';

const dirs: string[] = [];
let server: RunningServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function temp(prefix: string): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** Every file under `dir` with its bytes. */
function snapshot(dir: string): Map<string, string> {
  return new Map(filesUnder(dir).map((f) => [f, readFileSync(path.join(dir, f)).toString('base64')]));
}

describe('mirror schedule times (UTC)', () => {
  it('reads the calendar forms and finds the last and next firing in UTC', () => {
    const at = Date.UTC(2026, 11, 6, 4, 30);
    const daily = parseMirrorSchedule('04:00')!;
    expect(new Date(previousFireUtc(daily, at)).toISOString()).toBe('2026-12-06T04:00:00.000Z');
    expect(new Date(nextFireUtc(daily, at)).toISOString()).toBe('2026-12-07T04:00:00.000Z');
    const quarter = parseMirrorSchedule('*:0/15')!;
    expect(new Date(previousFireUtc(quarter, at)).toISOString()).toBe('2026-12-06T04:30:00.000Z');
    expect(new Date(nextFireUtc(quarter, at)).toISOString()).toBe('2026-12-06T04:45:00.000Z');
    expect(parseMirrorSchedule('off')).toBeNull();
    expect(() => parseMirrorSchedule('25:00')).toThrow(/cannot read the schedule/);
    expect(parseMirrorUrl('dits::s3://bucket/backup')).toEqual({ kind: 's3', bucket: 'bucket', prefix: 'backup' });
    expect(parseMirrorUrl('dits::file:///mnt/backup')).toEqual({ kind: 'file', path: '/mnt/backup' });
    expect(() => parseMirrorUrl('dits::https://other.example/team/film')).toThrow(/a Dits server cannot be the mirror/);
  });
});

describe('the server mirror on its schedule', () => {
  it('runs at the scheduled time, once; an unreachable mirror fails, touches nothing, and the next scheduled run completes', async () => {
    const dataDir = temp('dits-mirror-data-');
    const mirror = temp('dits-mirror-dest-');
    let now = new Date(Date.UTC(2026, 11, 6, 3, 0));
    server = await startServer({ dataDir, clock: () => now, mirror, mirrorSchedule: '04:00' });
    createRepo(server.db, 'team/film');
    createRepo(server.db, 'team/empty'); // never pushed: nothing to copy, not a failure
    const root = path.join(dataDir, 'repos', 'team', 'film');
    mkdirSync(root, { recursive: true });
    const storage = new FileStorage(root);
    await writeFormat(storage);
    const chunks = [testChunk('a', 3000), testChunk('b', 2000)];
    await putTestPack(storage, chunks);
    await putTestManifest(storage, chunks, 'a.mov');
    const m = server.mirror!;

    // a new server: the first run is the next scheduled one, not one at start-up
    await m.tick();
    expect(m.state()).toMatchObject({ running: null, lastRun: null, nextRun: '2026-12-06T04:00:00.000Z' });
    expect(filesUnder(mirror)).toEqual([]);

    now = new Date(Date.UTC(2026, 11, 6, 4, 1));
    await m.tick();
    const first = m.state().lastRun!;
    expect(first).toMatchObject({ trigger: 'schedule', result: 'ok' });
    expect(first.repos.map((r) => [r.repo, r.result])).toEqual([
      ['team/empty', 'ok'],
      ['team/film', 'ok'],
    ]);
    expect(snapshot(path.join(mirror, 'team', 'film'))).toEqual(snapshot(root));
    expect(m.state().nextRun).toBe('2026-12-07T04:00:00.000Z');

    // the same due time is not run again
    await m.tick();
    expect(m.state().lastRun!.startedAt).toBe(first.startedAt);

    // two asks at once: one run
    const [x, y] = [m.runNow(), m.runNow()];
    expect(x).toBe(y);
    await x;

    // the mirror's folder is gone (a share not mounted): failed, said, the primary untouched
    const more = [testChunk('c', 2500)];
    await putTestPack(storage, more);
    await putTestManifest(storage, more, 'c.mov');
    const primaryBefore = snapshot(root);
    renameSync(mirror, `${mirror}.away`);
    dirs.push(`${mirror}.away`);
    now = new Date(Date.UTC(2026, 11, 7, 4, 0, 30));
    await m.tick();
    const failed = m.state().lastRun!;
    expect(failed).toMatchObject({ trigger: 'schedule', result: 'failed' });
    expect(failed.error).toMatch(/cannot be reached: the mirror folder .* does not exist/);
    expect(snapshot(root)).toEqual(primaryBefore);
    expect(existsSync(mirror)).toBe(false); // not created on the local disk
    // the status the server's API and `git dits server status` read
    const { serverStatus } = await import('./admin.js');
    expect(serverStatus(server.db).mirror).toMatchObject({ mirror, schedule: '04:00', lastRun: { result: 'failed' }, nextRun: '2026-12-08T04:00:00.000Z' });

    // back: the next scheduled run completes
    renameSync(`${mirror}.away`, mirror);
    now = new Date(Date.UTC(2026, 11, 8, 4, 0, 30));
    await m.tick();
    expect(m.state().lastRun).toMatchObject({ result: 'ok' });
    expect(snapshot(path.join(mirror, 'team', 'film'))).toEqual(snapshot(root));
  });

  it('a mirror run asked for while the tier reaper moves a pack to the warm folder waits for it: the pack is copied whole, nothing is left out', async () => {
    const dataDir = temp('dits-mirror-data-');
    const mirror = temp('dits-mirror-dest-');
    const warm = temp('dits-mirror-warm-');
    let now = new Date(Date.UTC(2026, 11, 6, 2, 0));
    const log: [string, LogFields | undefined][] = [];
    const logger = { info: (m: string, f?: LogFields) => log.push([m, f]), warn: (m: string, f?: LogFields) => log.push([m, f]), error: (m: string, f?: LogFields) => log.push([m, f]) };
    server = await startServer({ dataDir, clock: () => now, logger, mirror, mirrorSchedule: 'off', tierFolders: { folders: { warm } }, tierPolicy: { ...DEFAULT_POLICY, graceMs: 0 } });
    createRepo(server.db, 'team/film');
    const root = path.join(dataDir, 'repos', 'team', 'film');
    mkdirSync(root, { recursive: true });
    const storage = new TieredFolderStorage(root, { folders: { warm: path.join(warm, 'team', 'film') }, createFolders: true });
    await writeFormat(storage);
    const old = [testChunk('old-a', 300_000), testChunk('old-b', 300_000)];
    const oldPack = (await putTestPack(storage, old)).packId;
    await putTestManifest(storage, old, 'old.mov');
    const past = (Date.now() - 60 * DAY_MS) / 1000;
    for (const f of filesUnder(root)) utimesSync(path.join(root, f), past, past);
    await publishKeepHot(storage, { at: Date.now(), patterns: [], resolved: [], manifests: [] });
    const packBytes = readFileSync(path.join(root, packKey(oldPack)));
    await server.tierScheduler.tick(); // a new server: the first round is the next 03:00
    now = new Date(Date.UTC(2026, 11, 6, 3, 0));
    await server.tierScheduler.tick(); // marks
    now = new Date(Date.UTC(2026, 11, 7, 3, 0));
    const from = log.length;
    // the round that moves the pack, and a mirror run asked for at the same moment
    const [, run] = await Promise.all([server.tierScheduler.tick(), server.mirror!.runNow()]);
    expect(filesUnder(path.join(warm, 'team', 'film'))).toContain(packKey(oldPack));
    expect(run).toMatchObject({ result: 'ok', repos: [{ repo: 'team/film', result: 'ok' }] });
    expect(readFileSync(path.join(mirror, 'team', 'film', packKey(oldPack))).equals(packBytes)).toBe(true);
    // one storage job at a time: the reaper's run on team/film ended before the mirror's began
    const order = log.slice(from).map(([m]) => m).filter((m) => m === 'tier round: repository done' || m === 'mirror: repository done');
    expect(order).toEqual(['tier round: repository done', 'mirror: repository done']);
  });

  it('mirrors into S3 (s3rver): <prefix>/<owner>/<name> holds every object of the repository, byte for byte, refs included', async () => {
    const s3 = await startS3rverProcess(['backup']);
    try {
      const dataDir = temp('dits-mirror-data-');
      const s3opts = { endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: s3.credentials };
      server = await startServer({ dataDir, mirror: 'dits::s3://backup/dits', mirrorSchedule: 'off', s3: s3opts });
      createRepo(server.db, 'team/film');
      const root = path.join(dataDir, 'repos', 'team', 'film');
      mkdirSync(root, { recursive: true });
      const storage = new FileStorage(root);
      await writeFormat(storage);
      const chunks = [testChunk('s3-a', 40_000), testChunk('s3-b', 30_000)];
      await putTestPack(storage, chunks);
      await putTestManifest(storage, chunks, 'a.mov');
      await storage.putIf(REFS_KEY, Buffer.from(JSON.stringify({ version: 1, head: null, refs: {}, bundles: [] })), 'absent');
      const run = await server.mirror!.runNow();
      expect(run).toMatchObject({ result: 'ok', repos: [{ repo: 'team/film', result: 'ok' }] });
      const to = new S3Storage({ bucket: 'backup', prefix: 'dits/team/film', ...s3opts });
      const keysOf = async (st: { list(p: string): AsyncIterable<{ key: string }> }): Promise<string[]> => {
        const out: string[] = [];
        for await (const o of st.list('v1/')) if (o.key !== REFS_KEY && !o.key.startsWith('v1/refs')) out.push(o.key);
        return out.sort();
      };
      const keys = await keysOf(storage);
      expect(await keysOf(to)).toEqual(keys);
      expect(keys.some((k) => k.endsWith('.pack'))).toBe(true);
      for (const k of keys) expect((await readStreamToBuffer(await to.get(k))).equals(await storage.getBuffer(k)), k).toBe(true);
      expect((await to.getVersioned(REFS_KEY))!.body.equals((await storage.getVersioned(REFS_KEY))!.body)).toBe(true);
    } finally {
      await server?.close();
      server = null;
      await s3.close();
    }
  });
});
