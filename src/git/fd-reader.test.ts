import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { FdReader } from './fd-reader.js';
import { hashHex } from '../hashing/blake3.js';

/** The test's bytes: byte i is (i * 7 + (i >> 11)) mod 256 (no period a ring size hides). */
function expected(size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + (i >> 11)) & 255;
  return b;
}

/**
 * A real pipe: a child process writes `size` bytes (expected()) into a FIFO in writes of
 * varying sizes, pausing now and then; the test reads the FIFO's blocking end.
 */
async function withWriter<T>(size: number, use: (fd: number) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-fdr-'));
  const fifo = path.join(dir, 'p');
  execFileSync('mkfifo', [fifo]);
  const writer = spawn(
    process.execPath,
    [
      '-e',
      `const fs = require('fs');
       const expected = ${expected.toString()};
       const data = expected(${size});
       const fd = fs.openSync(${JSON.stringify(fifo)}, 'w');
       const sizes = [1, 3, 4096, 65520, 100000, 7, 1 << 20];
       for (let at = 0, n = 0; at < data.length; n++) {
         at += fs.writeSync(fd, data, at, Math.min(data.length - at, sizes[n % sizes.length]));
         if (n % 50 === 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
       }
       fs.closeSync(fd);`,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const exited = new Promise<number | null>((resolve) => writer.on('exit', (code) => resolve(code)));
  const fd = fs.openSync(fifo, 'r'); // blocks until the writer opens its end
  try {
    const r = await use(fd);
    expect(await exited).toBe(0);
    return r;
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Where the pipe is read: on a thread from the start, on this thread and then a thread, or only on this thread. */
const MODES = [
  { mode: 'on its thread from the start', threadAfter: 0, smallThreadAfter: 0 },
  { mode: 'first on this thread, then on its thread', threadAfter: 500_000, smallThreadAfter: 10_000 },
  { mode: 'only on this thread', threadAfter: Infinity, smallThreadAfter: Infinity },
];

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}

describe.skipIf(process.platform !== 'linux')('FdReader', () => {
  it.each(MODES)('reads a pipe to its end, in order, through a small ring that wraps many times ($mode)', async ({ threadAfter }) => {
    const size = 3_000_000;
    const got = await withWriter(size, async (fd) => {
      const reader = new FdReader(fd, { readSize: 64 * 1024, ringSize: 384 * 1024, keep: 64 * 1024, threadAfter });
      const parts: Buffer[] = [];
      let pulled = 0;
      for await (const b of reader) {
        parts.push(Buffer.from(b));
        pulled += b.length;
        // the ring fills while this waits, so the thread takes over with most of the input still to read
        if (pulled >= threadAfter && !reader.threadTookOver) await until(() => reader.threadTookOver);
      }
      expect(reader.threadTookOver).toBe(threadAfter < size);
      await reader.close();
      return Buffer.concat(parts);
    });
    expect(got.length).toBe(size);
    expect(hashHex(got)).toBe(hashHex(expected(size)));
  });

  it.each(MODES)('keeps a yielded buffer intact until `keep` more bytes have been pulled ($mode)', async ({ threadAfter }) => {
    const keep = 128 * 1024;
    await withWriter(2_000_000, async (fd) => {
      const reader = new FdReader(fd, { readSize: 32 * 1024, ringSize: 2 * keep + 128 * 1024, keep, threadAfter });
      const recent: { view: Buffer; copy: Buffer; at: number }[] = [];
      let pulled = 0;
      for await (const b of reader) {
        pulled += b.length;
        recent.push({ view: b, copy: Buffer.from(b), at: pulled });
        // every buffer yielded less than `keep` bytes ago must still hold its bytes
        while (recent.length && pulled - recent[0]!.at >= keep) recent.shift();
        for (const r of recent) expect(r.view.equals(r.copy)).toBe(true);
      }
      await reader.close();
    });
  });

  it.each(MODES)('serves request/answer traffic of many small messages (git smudging 1,000 pointers) without filling the ring ($mode)', async ({ smallThreadAfter }) => {
    // git writes one small request, then waits for the answer before the next: every read
    // returns a few bytes. Each used to take a whole 4 KiB page of the ring, so the ring
    // filled long before `keep` bytes had passed and both sides waited for good.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-fdr-'));
    const fifo = path.join(dir, 'p');
    execFileSync('mkfifo', [fifo]);
    const messages = 2000;
    const writer = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('fs');
         const fd = fs.openSync(${JSON.stringify(fifo)}, 'w');
         const ack = Buffer.alloc(1);
         for (let i = 0; i < ${messages}; i++) {
           fs.writeSync(fd, Buffer.from('request ' + String(i).padStart(6, '0') + '\\n'));
           if (fs.readSync(0, ack, 0, 1, null) !== 1) process.exit(3); // the answer
         }
         fs.closeSync(fd);`,
      ],
      { stdio: ['pipe', 'ignore', 'inherit'] },
    );
    const exited = new Promise<number | null>((resolve) => writer.on('exit', (code) => resolve(code)));
    const fd = fs.openSync(fifo, 'r');
    try {
      // a ring of 64 pages: the old accounting hung after about 60 requests
      const reader = new FdReader(fd, { readSize: 16 * 1024, ringSize: 256 * 1024, keep: 64 * 1024, threadAfter: smallThreadAfter });
      let text = '';
      let answered = 0;
      for await (const b of reader) {
        text += b.toString('latin1');
        const complete = text.split('\n').length - 1;
        for (; answered < complete; answered++) writer.stdin!.write('k');
      }
      // (in the middle mode the thread takes over between two requests, or not at all when it
      // starts up after the last: both must work, so it is not asserted)
      if (smallThreadAfter === 0 || smallThreadAfter === Infinity) expect(reader.threadTookOver).toBe(smallThreadAfter === 0);
      await reader.close();
      expect(answered).toBe(messages);
      expect(text.split('\n')[messages - 1]).toBe(`request ${String(messages - 1).padStart(6, '0')}`);
      expect(await exited).toBe(0);
    } finally {
      writer.kill();
      fs.closeSync(fd);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it.each([
    { when: 'before anything was read', pull: false },
    { when: 'while it waits for input', pull: true },
  ])('lets its process end $when, though the writer keeps the pipe open (as git does while it waits for an answer)', async ({ pull }) => {
    // Node waits for libuv's pool threads at exit: a read of this pipe blocked on the pool
    // kept a filter process that failed (a bad setting, say) from ever ending, and git
    // waited for it
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-fdr-'));
    const fifo = path.join(dir, 'p');
    execFileSync('mkfifo', [fifo]);
    const script = `
      const fs = await import('node:fs');
      const { FdReader } = await import(${JSON.stringify(pathToFileURL(path.resolve('dist/src/git/fd-reader.js')).href)});
      const reader = new FdReader(fs.openSync(${JSON.stringify(fifo)}, 'r'));
      ${pull ? 'const it = reader[Symbol.asyncIterator](); const first = await it.next(); process.stdout.write(String(first.value.length)); void it.next();' : ''}
      setTimeout(() => process.exit(3), 50);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => {
      const t = setTimeout(() => resolve(null), 20_000); // hung: the writer is still open
      child.on('exit', (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
    const writer = await fsp.open(fifo, 'w'); // kept open until the child has ended
    try {
      if (pull) await writer.write(Buffer.from('hello'));
      expect(await exited).toBe(3);
      if (pull) expect(out).toBe('5');
    } finally {
      child.kill();
      await writer.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('refuses a ring too small for its reads', () => {
    expect(() => new FdReader(0, { readSize: 1024 * 1024, ringSize: 1024 * 1024, keep: 0 })).toThrow(/ring/);
  });
});
