import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { leaseProcessAlive, ownIdentity, processStartToken } from './writer-lease.js';

describe('leaseProcessAlive', () => {
  it('tells a running process from one that has exited or whose pid was reused; another host counts as running', () => {
    const me = ownIdentity();
    expect(leaseProcessAlive(me)).toBe(true);
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const gone = Number(child.stdout.toString());
    expect(leaseProcessAlive({ pid: gone, host: os.hostname(), procStart: null })).toBe(false);
    if (processStartToken(process.pid) !== null) {
      // same pid, another start time: the pid was reused by another process
      expect(leaseProcessAlive({ ...me, procStart: String(Number(me.procStart) + 1) })).toBe(false);
    }
    expect(leaseProcessAlive({ pid: gone, host: `${os.hostname()}-elsewhere`, procStart: null })).toBe(true);
  });
});
