import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { processAlive } from './process-alive.js';

describe('processAlive', () => {
  it('this process and a running child are alive; an exited one is not', async () => {
    expect(processAlive(process.pid)).toBe(true);
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)']);
    await new Promise((r) => child.once('spawn', r));
    expect(processAlive(child.pid!)).toBe(true);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(processAlive(child.pid!)).toBe(false);
    const done = spawnSync(process.execPath, ['-e', 'process.pid']);
    expect(processAlive(done.pid)).toBe(false);
  });

  it('pids that are not positive integers are never alive (kill(0) would signal the process group)', () => {
    for (const pid of [0, -1, -process.pid, Number.NaN, 1.5, Number.MAX_VALUE]) expect(processAlive(pid)).toBe(false);
  });
});
