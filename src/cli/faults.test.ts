import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { describeFault } from './faults.js';
import { reportError } from './main.js';
import type { CliContext } from './context.js';

const require = createRequire(import.meta.url);

/** The error a real failing call throws (no hand-made error objects). */
function caught(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('did not throw');
}

function report(e: unknown): { code: number; text: string } {
  const stderr = new PassThrough();
  let text = '';
  stderr.on('data', (b: Buffer) => (text += b.toString()));
  const code = reportError({ stderr } as unknown as CliContext, e);
  return { code, text };
}

describe('reportError: faults of the environment', () => {
  it('a real EIO (reading /proc/self/mem at address 0) is reported as a disk fault, exit 1, no stack', () => {
    const fd = fs.openSync('/proc/self/mem', 'r');
    const e = caught(() => fs.readSync(fd, Buffer.alloc(16), 0, 16, 0));
    fs.closeSync(fd);
    expect((e as { code?: string }).code).toBe('EIO');
    const r = report(e);
    expect(r.code).toBe(1);
    expect(r.text).toContain('error: input/output error');
    expect(r.text).toContain('hint: check the disk');
    expect(r.text).not.toContain('internal error');
    expect(r.text).not.toMatch(/^\s+at /m);
  });

  it('a real SQLITE_BUSY (another connection holds the write lock) says another process is writing the store', () => {
    const Database = require('better-sqlite3');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-busy-'));
    try {
      const file = path.join(dir, 'index.sqlite');
      const a = new Database(file);
      a.pragma('journal_mode = WAL');
      a.exec('CREATE TABLE t(x)');
      const b = new Database(file, { timeout: 0 });
      a.exec('BEGIN IMMEDIATE');
      const e = caught(() => b.exec('INSERT INTO t VALUES (1)'));
      a.exec('ROLLBACK');
      a.close();
      b.close();
      expect((e as { code?: string }).code).toBe('SQLITE_BUSY');
      const r = report(e);
      expect(r.code).toBe(1);
      expect(r.text).toContain('being written by another process');
      expect(r.text).not.toContain('internal error');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a file where a directory should be (mkdir EEXIST) names the path', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-eexist-'));
    try {
      fs.writeFileSync(path.join(dir, 'tmp'), '');
      const e = caught(() => fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true }));
      expect(describeFault(e)?.message).toContain(`${path.join(dir, 'tmp')}: a file is in its place`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finds the fault behind a wrapping error (cause), and leaves bugs alone', () => {
    const eio = caught(() => {
      const fd = fs.openSync('/proc/self/mem', 'r');
      try {
        fs.readSync(fd, Buffer.alloc(1), 0, 1, 0);
      } finally {
        fs.closeSync(fd);
      }
    });
    expect(describeFault(new Error('writing pack failed', { cause: eio }))?.message).toContain('input/output error');
    expect(describeFault(new TypeError('x is undefined'))).toBeNull();
    const bug = report(new TypeError('x is undefined'));
    expect(bug.code).toBe(70);
  });

  it('maps each errno named in the issue to its own message', () => {
    for (const [code, text] of [
      ['ENOSPC', 'no space left'],
      ['EROFS', 'read-only'],
      ['EACCES', 'permission denied'],
      ['EPERM', 'permission denied'],
      ['EDQUOT', 'quota'],
    ] as const) {
      // the shape Node gives system errors: code, syscall, path
      const e = Object.assign(new Error(`${code}: open '/x/y'`), { code, syscall: 'open', path: '/x/y' });
      expect(describeFault(e)?.message).toContain(text);
      expect(describeFault(e)?.message).toContain('/x/y');
    }
  });
});
