import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { openServerDb } from './db.js';
import { startWalCheckpointer } from './wal-checkpointer.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

it('copies WAL pages into the database from a worker thread while the writer never checkpoints', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dits-ckpt-'));
  dirs.push(dir);
  const file = join(dir, 'server.sqlite');
  const db = openServerDb(file);
  db.sqlite.pragma('wal_autocheckpoint = 0');
  db.sqlite.exec('CREATE TABLE filler (x BLOB)');
  const insert = db.sqlite.prepare('INSERT INTO filler VALUES (randomblob(4000))');
  for (let i = 0; i < 500; i++) insert.run();
  const before = statSync(file).size;
  expect(statSync(`${file}-wal`).size).toBeGreaterThan(2_000_000); // all of it still in the WAL

  const errors: string[] = [];
  const checkpointer = startWalCheckpointer(file, { intervalMs: 20, onError: (m) => errors.push(m) });
  const deadline = Date.now() + 10_000;
  while (statSync(file).size < before + 2_000_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(statSync(file).size).toBeGreaterThan(before + 2_000_000);
  // writes go on while the worker runs
  for (let i = 0; i < 50; i++) insert.run();
  await checkpointer.stop();
  await checkpointer.stop();
  expect(errors).toEqual([]);
  db.close();
  const again = openServerDb(file);
  expect(again.sqlite.prepare('SELECT COUNT(*) AS n FROM filler').get()).toEqual({ n: 550 });
  expect(again.sqlite.pragma('integrity_check', { simple: true })).toBe('ok');
  again.close();
});
