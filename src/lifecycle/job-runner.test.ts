import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseCalendar } from './calendar.js';
import { acquireLock, isDue, LOG_ROTATE_BYTES, lifecyclePaths, readState, runJob } from './job-runner.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-job-runner-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = () => lifecyclePaths(fs.mkdtempSync(path.join(tmp, `d${n++}-`)));

/** The pid of a process that has exited (a killed run's pid). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('acquireLock', () => {
  it('lets one run in: a second sees the holder until the first releases', () => {
    const p = fresh();
    const a = acquireLock(p, 1);
    expect('release' in a).toBe(true);
    // another process's view: a lock held by a live pid other than its own
    const holder = JSON.parse(fs.readFileSync(p.lock, 'utf8'));
    expect(holder.pid).toBe(process.pid);
    const child = spawn('sleep', ['30']);
    try {
      const started = Date.now();
      fs.writeFileSync(p.lock, JSON.stringify({ pid: child.pid, host: os.hostname(), started }));
      const b = acquireLock(p, 2);
      expect(b).toEqual({ heldBy: { pid: child.pid, host: os.hostname(), started } });
      // release of the first must not delete a lock it no longer owns
      (a as { release: () => void }).release();
      expect(fs.existsSync(p.lock)).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('takes over the lock of a run that was killed (its pid gone), and a torn one', () => {
    const p = fresh();
    fs.mkdirSync(p.dir, { recursive: true });
    const pid = deadPid();
    fs.writeFileSync(p.lock, JSON.stringify({ pid, host: os.hostname(), started: 1 }));
    const a = acquireLock(p, 2);
    expect('release' in a && a.tookOver?.pid).toBe(pid);
    expect(JSON.parse(fs.readFileSync(p.lock, 'utf8')).pid).toBe(process.pid);
    (a as { release: () => void }).release();
    expect(fs.existsSync(p.lock)).toBe(false);
    // taken before this boot: its pid (alive now: this very test's parent) belongs to another process since
    const boot = Number(/^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'utf8'))?.[1] ?? 0) * 1000;
    if (boot > 0) {
      fs.writeFileSync(p.lock, JSON.stringify({ pid: process.ppid, host: os.hostname(), started: boot - 3600e3 }));
      const c = acquireLock(p, 3);
      expect('release' in c && c.tookOver?.pid).toBe(process.ppid);
      (c as { release: () => void }).release();
    }
    fs.writeFileSync(p.lock, ''); // killed between create and write
    const b = acquireLock(p, 3);
    expect('release' in b).toBe(true);
  });
});

describe('isDue', () => {
  const hourly = parseCalendar('hourly')!;
  const t = new Date(2026, 11, 6, 13, 30).getTime();
  it('is due with no run yet, after the schedule fired since the last start, after a killed run, and when the last start lies in the future', () => {
    expect(isDue(hourly, undefined, t)).toBe(true);
    expect(isDue(hourly, { lastStart: t - 10 * 60e3, result: 'ok', pid: 1 }, t)).toBe(false);
    expect(isDue(hourly, { lastStart: t - 40 * 60e3, result: 'failed', pid: 1 }, t)).toBe(true);
    expect(isDue(hourly, { lastStart: t - 10 * 60e3, result: 'running', pid: 1 }, t)).toBe(true);
    expect(isDue(hourly, { lastStart: t + 3 * 3600e3, result: 'ok', pid: 1 }, t)).toBe(true);
    expect(isDue(null, undefined, t)).toBe(false);
  });
});

describe('runJob', () => {
  const deps = (echo: Buffer[] = []) => ({ workTree: tmp, dits: [process.execPath, '-e'], env: process.env, echo: (c: Buffer) => echo.push(c), now: Date.now });

  it('logs the command and its output, records the result and exit code, and echoes the output', async () => {
    const p = fresh();
    const echoed: Buffer[] = [];
    const o = await runJob(p, 'snapshot', { args: ['console.log("hello"); console.error("bad thing"); process.exit(3)'] }, deps(echoed));
    expect(o).toMatchObject({ result: 'failed', exitCode: 3, message: 'bad thing' });
    expect(Buffer.concat(echoed).toString()).toContain('hello');
    const log = fs.readFileSync(path.join(p.logs, 'snapshot.log'), 'utf8');
    expect(log).toMatch(/=== \S+ start snapshot .*\nhello\nbad thing\n=== \S+ end snapshot: failed \(exit 3\)/);
    expect(readState(p).snapshot).toMatchObject({ result: 'failed', exitCode: 3 });
    const ok = await runJob(p, 'snapshot', { args: [''] }, deps());
    expect(ok.result).toBe('ok');
    expect(readState(p).snapshot).toMatchObject({ result: 'ok', exitCode: 0 });
  });

  it('keeps the logs bounded: a big log is rotated before a run, and a run logs at most its limit', async () => {
    const p = fresh();
    fs.mkdirSync(p.logs, { recursive: true });
    const log = path.join(p.logs, 'tier.log');
    fs.writeFileSync(log, 'x'.repeat(LOG_ROTATE_BYTES + 10));
    await runJob(p, 'tier', { args: ['process.stdout.write("y".repeat(3 * 1024 * 1024))'] }, deps());
    expect(fs.statSync(`${log}.1`).size).toBe(LOG_ROTATE_BYTES + 10);
    const size = fs.statSync(log).size;
    expect(size).toBeLessThan(LOG_ROTATE_BYTES + 4096);
    expect(fs.readFileSync(log, 'utf8')).toContain('not logged');
  });

  it('records a skip and a configuration error without running anything', async () => {
    const p = fresh();
    expect((await runJob(p, 'tier', { skip: 'no policy' }, deps())).result).toBe('skipped');
    expect(await runJob(p, 'mirror', new Error('bad config'), deps())).toMatchObject({ result: 'failed', message: 'bad config' });
    expect(readState(p)).toMatchObject({ tier: { result: 'skipped', message: 'no policy' }, mirror: { result: 'failed' } });
  });
});
