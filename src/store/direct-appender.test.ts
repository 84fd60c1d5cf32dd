import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BLOCK, DirectAppender } from './direct-appender.js';
import { xorshift32Bytes } from '../chunking/pseudo-random.js';

const dirs: string[] = [];
function tmpFile(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-direct-'));
  dirs.push(d);
  return path.join(d, 'out.bin');
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Resolves once the appender has closed its descriptor (close waits for writes in flight). */
async function closed(a: DirectAppender): Promise<void> {
  a.close();
  while (a.busy) await new Promise((r) => setTimeout(r, 5));
}

describe('DirectAppender', () => {
  it('writes with O_DIRECT where the file system takes it', () => {
    const file = tmpFile();
    const a = DirectAppender.create(file, 0o644);
    if (!a) return; // the temp file system refuses direct I/O: the caller writes buffered
    if (process.platform === 'linux') {
      const flags = /flags:\s*([0-7]+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${a.fd}`, 'utf8'))![1]!;
      expect(Number.parseInt(flags, 8) & (fs.constants as { O_DIRECT?: number }).O_DIRECT!).not.toBe(0);
    }
    a.close();
    expect(() => DirectAppender.create(file, 0o644)).toThrow(/EEXIST/);
  });

  it('opens its page-cache descriptor as it makes the file, which is then read-only (0444): no later open for writing, which only root could do', async () => {
    const file = tmpFile();
    const a = DirectAppender.create(file, 0o444);
    if (!a) return;
    expect(fs.statSync(file).mode & 0o777).toBe(0o444);
    if (process.platform === 'linux') {
      const open = fs.readdirSync('/proc/self/fd').filter((d) => {
        try {
          return fs.readlinkSync(`/proc/self/fd/${d}`) === file;
        } catch {
          return false;
        }
      });
      expect(open.length).toBe(2);
    }
    const b = xorshift32Bytes(200_000, 77); // under the early-send step: nothing in flight at the flush
    a.append(b);
    a.flushSync();
    expect(fs.readFileSync(file).equals(b)).toBe(true); // exact: no padded block from the page-cache path
    await closed(a);
    expect(fs.readFileSync(file).equals(b)).toBe(true);
  });

  it('appends of every size, with flushes mid-block, read back exactly and close at the exact size', async () => {
    const file = tmpFile();
    const a = DirectAppender.create(file, 0o644);
    if (!a) return;
    const parts: Buffer[] = [];
    let total = 0;
    const sizes = [1, 41, 4095, 4096, 4097, 65_536, 3 * 1024 * 1024 + 7, 9 * 1024 * 1024 + 3, 100, 17];
    let seed = 1;
    for (let round = 0; round < 3; round++) {
      for (const n of sizes) {
        const b = xorshift32Bytes(n, seed++);
        a.append(b);
        b.fill(0); // appended bytes are copied: the caller may reuse its buffer at once
        parts.push(xorshift32Bytes(n, seed - 1));
        total += n;
        const wait = a.backpressure();
        if (wait) await wait;
        if (seed % 3 === 0) {
          await a.drain();
          // what was appended is on the file (the last block may carry padding until close)
          const onDisk = fs.readFileSync(file);
          expect(onDisk.length - total).toBeGreaterThanOrEqual(0);
          expect(onDisk.length - total).toBeLessThan(BLOCK);
          expect(onDisk.subarray(0, total).equals(Buffer.concat(parts))).toBe(true);
        } else if (seed % 3 === 1) {
          a.flushSync();
          expect(fs.readFileSync(file).subarray(0, total).equals(Buffer.concat(parts))).toBe(true);
        }
      }
    }
    await closed(a);
    const out = fs.readFileSync(file);
    expect(out.length).toBe(total);
    expect(out.equals(Buffer.concat(parts))).toBe(true);
  });

  it('fsync and a close right after a flush leave exactly the bytes appended', async () => {
    const file = tmpFile();
    const a = DirectAppender.create(file, 0o644);
    if (!a) return;
    const b = xorshift32Bytes(5 * 1024 * 1024 + 123, 9);
    a.append(b);
    await a.fsync();
    a.append(b.subarray(0, 10));
    a.fsyncSync();
    await closed(a);
    expect(fs.readFileSync(file).equals(Buffer.concat([b, b.subarray(0, 10)]))).toBe(true);
  });

  it('seal sends the rest and gives every buffer back to the shared pool once written', async () => {
    const file = tmpFile();
    const pool: Buffer[] = [];
    const a = DirectAppender.create(file, 0o644, pool);
    if (!a) return;
    const b = xorshift32Bytes(6 * 1024 * 1024 + 5, 3);
    a.append(b);
    a.seal();
    expect(() => a.append(b)).toThrow(/sealed/);
    await a.fence();
    expect(pool.length).toBe(2); // the full buffer and the last, partly filled one
    await closed(a);
    expect(fs.readFileSync(file).equals(b)).toBe(true);
    // the next file starts from a pooled buffer
    const c = DirectAppender.create(tmpFile(), 0o644, pool)!;
    expect(pool.length).toBe(1);
    await closed(c);
  });

  it('small flushes go through the page cache, and the file still ends exactly as appended (many small files, then big appends, drains and a seal)', async () => {
    const file = tmpFile();
    const a = DirectAppender.create(file, 0o644);
    if (!a) return;
    const parts: Buffer[] = [];
    let seed = 40;
    const add = (n: number): void => {
      const b = xorshift32Bytes(n, seed++);
      a.append(b);
      parts.push(b);
    };
    const onFile = (): Buffer => fs.readFileSync(file).subarray(0, parts.reduce((x, p) => x + p.length, 0));
    // a commit per small file: each flush is small, nothing in flight
    for (let i = 0; i < 40; i++) {
      add(200_000 + i * 37);
      a.flushSync();
      expect(onFile().equals(Buffer.concat(parts))).toBe(true);
    }
    // then full buffers written direct over the blocks the cached writes ended in
    add(9 * 1024 * 1024 + 11);
    await a.drain();
    add(3000);
    a.flushSync();
    add(5 * 1024 * 1024);
    a.flushSync(); // over the page-cache limit: direct, padded
    add(77);
    a.seal();
    await closed(a);
    const out = fs.readFileSync(file);
    expect(out.length).toBe(parts.reduce((x, p) => x + p.length, 0));
    expect(out.equals(Buffer.concat(parts))).toBe(true);
  });
});
