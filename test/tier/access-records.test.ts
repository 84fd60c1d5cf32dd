/**
 * Client access records (src/tier/access-records.ts): the journal survives a killed process
 * and a failed upload, one record object per flush, two flushers never send a journal
 * twice or lose one, and compaction (also two at once) deletes a record only after a
 * summary holding it was written.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MemoryStorage } from '../../src/transfer/memory-storage.js';
import { FileStorage } from '../../src/transfer/file-storage.js';
import type { ObjectStorage } from '../../src/transfer/object-storage.js';
import {
  ACCESS_PREFIX,
  AccessRecorder,
  compactAccessRecords,
  isAccessRecordKey,
  journalDir,
  readAccessRecords,
  summaryKey,
  type AccessEntry,
} from '../../src/tier/access-records.js';
import { TempDirs } from '../remote-content/fixtures.js';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const id = (n: number): string => n.toString(16).padStart(64, '0');

async function recordKeys(storage: ObjectStorage): Promise<string[]> {
  const out: string[] = [];
  for await (const o of storage.list(ACCESS_PREFIX)) if (isAccessRecordKey(o.key)) out.push(o.key);
  return out;
}

/** id -> latest at, per kind, of everything readAccessRecords yields. */
async function latest(storage: ObjectStorage): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for await (const e of readAccessRecords(storage) as AsyncIterable<AccessEntry>) {
    const k = `${e.kind}:${e.id}`;
    m.set(k, Math.max(m.get(k) ?? -1, e.at));
  }
  return m;
}

describe('AccessRecorder', () => {
  it('records each id once per run and sends one record object per flush; the journal is then gone', async () => {
    const dits = dirs.make();
    const storage = new MemoryStorage();
    let now = Date.UTC(2026, 11, 6, 10, 0, 0);
    const rec = AccessRecorder.open(dits, storage.location, { clock: () => now, client: 'abcdefabcdefabcd' });
    rec.record('pack', id(1));
    now += 1000;
    rec.record('pack', id(1)); // same run: the first time is kept
    rec.record('file', id(2));
    rec.record('pack', id(3));
    expect(rec.count).toBe(3);
    const r = await rec.flush(storage);
    expect(r).toMatchObject({ packs: 2, files: 1, journals: 1 });
    const keys = await recordKeys(storage);
    expect(keys).toEqual([r.key]);
    expect(r.key).toMatch(/^v1\/access\/20261206\/[0-9a-f]{16}\.json$/);
    const body = JSON.parse((await storage.getBuffer(r.key!)).toString('utf8'));
    expect(body).toEqual({ v: 1, client: 'abcdefabcdefabcd', at: now, packs: { [id(1)]: now - 1000, [id(3)]: now }, files: { [id(2)]: now } });
    expect(fs.readdirSync(journalDir(dits, storage.location))).toEqual([]);
    // nothing recorded: nothing sent
    const again = await AccessRecorder.open(dits, storage.location).flush(storage);
    expect(again.key).toBeNull();
    expect(await recordKeys(storage)).toHaveLength(1);
  });

  it('a process killed after reading leaves its journal, and the next flush sends it late', async () => {
    const dits = dirs.make();
    const storage = new MemoryStorage();
    // a real process that records two reads, waits for its journal write, then is killed (no flush)
    const script = `
      import { AccessRecorder } from ${JSON.stringify(path.join(root, 'dist/src/tier/access-records.js'))};
      const r = AccessRecorder.open(${JSON.stringify(dits)}, 'memory:', { clock: () => 1765000000000 });
      r.record('pack', ${JSON.stringify(id(7))});
      r.record('file', ${JSON.stringify(id(8))});
      setTimeout(() => process.kill(process.pid, 'SIGKILL'), 200);
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(child.signal).toBe('SIGKILL');
    const left = fs.readdirSync(journalDir(dits, 'memory:'));
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/\.open$/);
    const r = await AccessRecorder.open(dits, 'memory:').flush(storage);
    expect(r).toMatchObject({ packs: 1, files: 1, journals: 1 });
    expect(await latest(storage)).toEqual(new Map([[`pack:${id(7)}`, 1765000000000], [`file:${id(8)}`, 1765000000000]]));
    expect(fs.readdirSync(journalDir(dits, 'memory:'))).toEqual([]);
  });

  it('an upload that fails keeps the journal; the next flush sends it', async () => {
    const dits = dirs.make();
    const storage = new MemoryStorage();
    const failing = Object.create(storage) as MemoryStorage;
    failing.put = async () => {
      throw new Error('network cut');
    };
    const rec = AccessRecorder.open(dits, storage.location);
    rec.record('pack', id(11));
    await expect(rec.flush(failing)).rejects.toThrow('network cut');
    expect(await recordKeys(storage)).toEqual([]);
    expect(fs.readdirSync(journalDir(dits, storage.location))).toHaveLength(1);
    const r = await AccessRecorder.open(dits, storage.location).flush(storage);
    expect(r.packs).toBe(1);
    expect([...(await latest(storage)).keys()]).toEqual([`pack:${id(11)}`]);
  });

  it('a send that hangs does not hold the command: it ends, and the next flush sends the journal', async () => {
    const dits = dirs.make();
    const remoteDir = path.join(dirs.make(), 'remote');
    // a command whose storage never answers the record's PUT; it exits as the CLI does (process.exit)
    const script = `
      import { recordingReads } from ${JSON.stringify(path.join(root, 'dist/src/tier/access-records.js'))};
      import { FileStorage } from ${JSON.stringify(path.join(root, 'dist/src/transfer/file-storage.js'))};
      const storage = new FileStorage(${JSON.stringify(remoteDir)});
      storage.put = () => new Promise(() => {});
      await recordingReads({ ditsDir: ${JSON.stringify(dits)}, workTree: '/' }, 'file:///x', storage, async (access) => {
        access.record('pack', ${JSON.stringify(id(21))});
      }, { bool: () => true }, 200);
      process.stdout.write('returned');
      process.exit(0);
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(child.stdout).toBe('returned');
    const storage = new FileStorage(remoteDir, { fsync: false });
    expect(await recordKeys(storage)).toEqual([]);
    const r = await AccessRecorder.open(dits, storage.location).flush(storage);
    expect(r).toMatchObject({ packs: 1, journals: 1 });
    expect([...(await latest(storage)).keys()]).toEqual([`pack:${id(21)}`]);
  });

  it('two flushers at once: every journal is sent exactly once', async () => {
    const dits = dirs.make();
    const storage = new MemoryStorage();
    const recorders = Array.from({ length: 6 }, (_, i) => {
      const r = AccessRecorder.open(dits, storage.location);
      r.record('pack', id(100 + i));
      return r;
    });
    for (const r of recorders) await r.close();
    const [a, b] = await Promise.all([AccessRecorder.open(dits, storage.location).flush(storage), AccessRecorder.open(dits, storage.location).flush(storage)]);
    expect(a.journals + b.journals).toBe(6);
    expect(a.packs + b.packs).toBe(6);
    expect((await latest(storage)).size).toBe(6);
  });

  it('record() after close is ignored and never throws', async () => {
    const dits = dirs.make();
    const rec = AccessRecorder.open(dits, 'memory:');
    await rec.close();
    expect(() => rec.record('pack', id(1))).not.toThrow();
    expect(rec.count).toBe(0);
  });
});

for (const [name, make] of [
  ['MemoryStorage', () => new MemoryStorage()],
  ['FileStorage', () => new FileStorage(path.join(dirs.make(), 'remote'), { fsync: false })],
] as [string, () => ObjectStorage][]) {
  describe(`compactAccessRecords: ${name}`, () => {
    async function putRecord(storage: ObjectStorage, at: number, packs: Record<string, number>, files: Record<string, number> = {}): Promise<string> {
      const key = `${ACCESS_PREFIX}20261206/${Math.floor(Math.random() * 2 ** 52).toString(16).padStart(16, '0')}.json`;
      await storage.put(key, Buffer.from(JSON.stringify({ v: 1, client: 'c', at, packs, files })));
      return key;
    }

    it('folds old records into the summary, deletes only them, and readers see every read before and after', async () => {
      const storage = make();
      const now = 10_000_000;
      await putRecord(storage, now - 5000, { [id(1)]: now - 5000 }, { [id(2)]: now - 5000 });
      await putRecord(storage, now - 4000, { [id(1)]: now - 4000 });
      const fresh = await putRecord(storage, now - 10, { [id(3)]: now - 10 });
      await storage.put(`${ACCESS_PREFIX}20261206/0000000000000bad.json`, Buffer.from('not json'));
      const before = await latest(storage);
      const r = await compactAccessRecords(storage, { olderThanMs: 1000, now });
      expect(r).toMatchObject({ folded: 2, deleted: 2 });
      expect((await recordKeys(storage)).sort()).toEqual([`${ACCESS_PREFIX}20261206/0000000000000bad.json`, fresh].sort());
      const summary = await storage.getVersioned(summaryKey('0')); // the shard of ids starting with 0
      expect(JSON.parse(summary!.body.toString('utf8'))).toMatchObject({ v: 1, packs: { [id(1)]: now - 4000 }, files: { [id(2)]: now - 5000 } });
      expect(await latest(storage)).toEqual(before);
      // again: nothing more is old enough
      expect(await compactAccessRecords(storage, { olderThanMs: 1000, now })).toMatchObject({ folded: 0, deleted: 0 });
    });

    it('a compactor whose summary was replaced meanwhile folds again on the new one (CAS), losing nothing', async () => {
      const storage = make();
      const now = 20_000_000;
      await putRecord(storage, now - 9000, { [id(1)]: now - 9000 });
      // compactor A is held just before its summary write, while B folds one more record and deletes both
      let held = false;
      const a = Object.create(storage) as ObjectStorage;
      a.putIf = async (key, body, expected) => {
        if (!held) {
          held = true;
          await putRecord(storage, now - 8000, {}, { [id(2)]: now - 8000 });
          const rb = await compactAccessRecords(storage, { olderThanMs: 1000, now });
          expect(rb).toMatchObject({ folded: 2, deleted: 2 });
        }
        return storage.putIf(key, body, expected);
      };
      const ra = await compactAccessRecords(a, { olderThanMs: 1000, now });
      expect(ra.conflicts).toBe(1);
      expect(await latest(storage)).toEqual(new Map([[`pack:${id(1)}`, now - 9000], [`file:${id(2)}`, now - 8000]]));
    });

    it('ids go to the shard of their first hex digit; a summary shard holds only its ids', async () => {
      const storage = make();
      const now = 30_000_000;
      const ids = ['0', '7', 'f'].map((h) => h + id(5).slice(1));
      await putRecord(storage, now - 9000, Object.fromEntries(ids.map((x) => [x, now - 9000])), { [ids[2]!]: now - 9000 });
      expect(await compactAccessRecords(storage, { olderThanMs: 1000, now })).toMatchObject({ folded: 1, deleted: 1 });
      for (const x of ids) {
        const shard = JSON.parse((await storage.getVersioned(summaryKey(x[0]!)))!.body.toString('utf8')) as { packs: Record<string, number> };
        expect(Object.keys(shard.packs)).toEqual([x]);
      }
      expect(await storage.getVersioned(summaryKey('1'))).toBeNull();
      expect(await latest(storage)).toEqual(new Map([...ids.map((x) => [`pack:${x}`, now - 9000] as [string, number]), [`file:${ids[2]}`, now - 9000]]));
    });

    it('two compactors at once, with records arriving meanwhile, lose nothing', async () => {
      const storage = make();
      const now = 50_000_000;
      const expected = new Map<string, number>();
      for (let i = 0; i < 30; i++) {
        await putRecord(storage, now - 100_000 + i, { [id(i)]: now - 100_000 + i });
        expected.set(`pack:${id(i)}`, now - 100_000 + i);
      }
      const more = (async () => {
        for (let i = 30; i < 45; i++) {
          await putRecord(storage, now - 50_000 + i, { [id(i)]: now - 50_000 + i });
          expected.set(`pack:${id(i)}`, now - 50_000 + i);
        }
      })();
      const [a, b] = await Promise.all([compactAccessRecords(storage, { olderThanMs: 1000, now }), compactAccessRecords(storage, { olderThanMs: 1000, now }), more]);
      await compactAccessRecords(storage, { olderThanMs: 1000, now });
      expect(a.folded + b.folded).toBeGreaterThanOrEqual(30);
      expect(await latest(storage)).toEqual(expected);
      expect(await recordKeys(storage)).toEqual([]); // all folded in the end
    });
  });
}
