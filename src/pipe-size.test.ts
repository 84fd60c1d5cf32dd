import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { nativeLoadError, setPipeSize } from './native-addon.js';

const native = nativeLoadError() === undefined;

describe.skipIf(!native || process.platform !== 'linux')('setPipeSize', () => {
  it('grows a pipe and refuses what is not a pipe', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-pipe-'));
    try {
      const fifo = path.join(dir, 'p');
      execFileSync('mkfifo', [fifo]);
      const fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
      expect(setPipeSize(fd, 1024 * 1024)).toBe(1024 * 1024);
      // the pipe now holds 1 MiB without a reader
      expect(fs.writeSync(fd, Buffer.alloc(1024 * 1024, 1))).toBe(1024 * 1024);
      fs.closeSync(fd);
      const file = path.join(dir, 'f');
      fs.writeFileSync(file, 'x');
      const fd2 = fs.openSync(file, 'r');
      expect(setPipeSize(fd2, 1024 * 1024)).toBeNull();
      fs.closeSync(fd2);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
