/**
 * Compare-and-swap on a local directory between separate processes (the NAS case: two
 * people pushing at once): each child process runs read-modify-write loops on one
 * versioned object through its own FileStorage; no increment may be lost. The children
 * run a compiled copy of src/transfer made with tsc for this test.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FileStorage } from '../../src/transfer/file-storage.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let work: string;

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'dits-fs-procs-'));
  execFileSync(
    process.execPath,
    [
      path.join(repo, 'node_modules/typescript/bin/tsc'),
      '--ignoreConfig',
      '--rootDir', repo,
      '--outDir', path.join(work, 'build'),
      '--module', 'NodeNext',
      '--moduleResolution', 'NodeNext',
      '--target', 'ES2022',
      '--strict',
      '--skipLibCheck',
      '--types', 'node',
      path.join(repo, 'src/transfer/file-storage.ts'),
    ],
    { stdio: 'inherit' },
  );
  writeFileSync(path.join(work, 'build/package.json'), '{"type":"module"}');
  symlinkSync(path.join(repo, 'node_modules'), path.join(work, 'build/node_modules'));
  writeFileSync(
    path.join(work, 'build/increment.js'),
    `import { FileStorage } from './src/transfer/file-storage.js';
     const [root, times] = process.argv.slice(2);
     const storage = new FileStorage(root);
     for (let done = 0; done < Number(times); ) {
       const cur = await storage.getVersioned('refs/counter');
       const r = await storage.putIf('refs/counter', Buffer.from(String(Number(cur.body.toString()) + 1)), { etag: cur.etag });
       if (r.ok) done += 1;
     }`,
  );
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

it('separate processes lose no update', async () => {
  const root = path.join(work, 'remote');
  const storage = new FileStorage(root);
  await storage.putIf('refs/counter', Buffer.from('0'), 'absent');
  const run = () =>
    new Promise<void>((resolve, reject) =>
      execFile(process.execPath, [path.join(work, 'build/increment.js'), root, '25'], (err, _o, stderr) => (err ? reject(new Error(stderr)) : resolve())),
    );
  await Promise.all([run(), run(), run(), run()]);
  expect((await storage.getVersioned('refs/counter'))?.body.toString()).toBe('100');
});
