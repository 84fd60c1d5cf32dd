/**
 * Running lifecycle jobs: one at a time per repository, each logged, each outcome recorded.
 *
 * - The lock (`.git/dits/lifecycle/lock`, JSON with the holder's pid and host) is created with
 *   O_EXCL, so two runs never overlap (the caller waits for a holder to end, or reports it).
 *   A lock whose pid is no longer alive on this host, or that was taken before the machine
 *   booted (its pid may be another process's now), is stale (a run killed with SIGKILL, a
 *   reboot): it is removed, after checking it still holds what was read, and taken.
 * - State (`.git/dits/lifecycle/state.json`): per job the start and end of its last run, the
 *   result and exit code; written (atomically, by rename) only under the lock. A run that was
 *   killed leaves `running` behind; status shows it as `interrupted`, and it is due again.
 * - Logs (`.git/dits/logs/<job>.log`): the command and every line it printed, between a start
 *   and an end line. Bounded: at most LOG_RUN_LIMIT bytes of one run's output are kept, and a
 *   log above LOG_ROTATE_BYTES is renamed to `<job>.log.1` (replacing the older one) before a
 *   run, so a job's logs never take more than about three times that.
 * - Due: a job is due when it has no finished run, or when its schedule fired after the start
 *   of its last finished run, or when that start lies in the future (the clock was set back:
 *   a stored time is not trusted over the clock). Explicitly named jobs run whatever is due.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { previousRun, type Calendar } from './calendar.js';
import type { JobCommand, JobName } from './jobs.js';

export const LOG_ROTATE_BYTES = 1024 * 1024;
export const LOG_RUN_LIMIT = 1024 * 1024;

export type JobResult = 'ok' | 'failed' | 'skipped' | 'running';

export interface JobState {
  /** ms since the epoch */
  lastStart: number;
  lastEnd?: number;
  result: JobResult;
  exitCode?: number;
  /** why it was skipped, or the last line it printed when it failed */
  message?: string;
  pid: number;
}

export type LifecycleState = Partial<Record<JobName, JobState>>;

export interface LifecyclePaths {
  dir: string;
  lock: string;
  state: string;
  logs: string;
}

export function lifecyclePaths(ditsDir: string): LifecyclePaths {
  const dir = path.join(ditsDir, 'lifecycle');
  return { dir, lock: path.join(dir, 'lock'), state: path.join(dir, 'state.json'), logs: path.join(ditsDir, 'logs') };
}

export function readState(paths: LifecyclePaths): LifecycleState {
  try {
    return JSON.parse(fs.readFileSync(paths.state, 'utf8')) as LifecycleState;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    if (e instanceof SyntaxError) return {}; // a torn write cannot happen (rename), but a hand edit can: start afresh
    throw e;
  }
}

function writeState(paths: LifecyclePaths, state: LifecycleState): void {
  fs.mkdirSync(paths.dir, { recursive: true });
  const tmp = `${paths.state}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  fs.renameSync(tmp, paths.state);
}

export interface LockHolder {
  pid: number;
  host: string;
  started: number;
}

/** When this machine booted (ms since the epoch; Linux /proc/stat), or null where unknown. */
function bootTime(): number | null {
  try {
    const m = /^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'utf8'));
    return m ? Number(m[1]) * 1000 : null;
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock, or returns who holds it. A stale lock (its pid gone, on this host) is taken over. */
export function acquireLock(paths: LifecyclePaths, now: number): { release: () => void; tookOver?: LockHolder } | { heldBy: LockHolder } {
  fs.mkdirSync(paths.dir, { recursive: true });
  const mine = JSON.stringify({ pid: process.pid, host: os.hostname(), started: now } satisfies LockHolder);
  let tookOver: LockHolder | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      fs.writeFileSync(paths.lock, mine, { flag: 'wx' });
      const release = () => {
        // only our own lock: never one a later run took over
        try {
          if (fs.readFileSync(paths.lock, 'utf8') === mine) fs.unlinkSync(paths.lock);
        } catch {
          /* already gone */
        }
      };
      return { release, tookOver };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let text: string;
    try {
      text = fs.readFileSync(paths.lock, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile
      throw e;
    }
    let holder: LockHolder;
    try {
      holder = JSON.parse(text) as LockHolder;
    } catch {
      // written by a run killed between create and write: empty or torn
      holder = { pid: 0, host: os.hostname(), started: 0 };
    }
    // taken before this boot: its pid may now be another process's (pids start again at boot)
    const boot = bootTime();
    const beforeBoot = boot !== null && holder.started > 0 && holder.started < boot - 60e3;
    if (holder.host === os.hostname() && holder.pid !== process.pid && holder.pid > 0 && !beforeBoot && alive(holder.pid)) return { heldBy: holder };
    if (holder.host !== os.hostname() && holder.pid > 0) return { heldBy: holder };
    // stale: remove it only if it is still the one read (another run may have taken it over meanwhile)
    try {
      if (fs.readFileSync(paths.lock, 'utf8') === text) fs.unlinkSync(paths.lock);
      tookOver = holder;
    } catch {
      /* gone: try again */
    }
  }
  throw new Error(`could not take ${paths.lock}`);
}

/** Whether the job's schedule calls for a run at `now`, given its last run. */
export function isDue(cal: Calendar | null, last: JobState | undefined, now: number): boolean {
  if (!cal) return false;
  if (!last) return true;
  if (last.lastStart > now) return true; // the clock was set back since: do not trust the stored time
  if (last.result === 'running') return true; // killed: run again
  return previousRun(cal, now) > last.lastStart;
}

function rotate(file: string): void {
  try {
    if (fs.statSync(file).size > LOG_ROTATE_BYTES) fs.renameSync(file, `${file}.1`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

export interface RunJobDeps {
  workTree: string;
  /** argv to run `git dits` (node and the entry script) */
  dits: string[];
  env: NodeJS.ProcessEnv;
  /** every line the job prints also goes here (under systemd: the journal) */
  echo: (chunk: Buffer) => void;
  now: () => number;
}

export interface JobOutcome {
  job: JobName;
  result: Exclude<JobResult, 'running'>;
  exitCode?: number;
  message?: string;
  command?: string[];
  start: number;
  end: number;
  log: string;
}

/** Runs one job now, under the lock the caller holds; records its state and log. */
export async function runJob(paths: LifecyclePaths, job: JobName, command: JobCommand | Error, deps: RunJobDeps): Promise<JobOutcome> {
  fs.mkdirSync(paths.logs, { recursive: true });
  const log = path.join(paths.logs, `${job}.log`);
  rotate(log);
  const start = deps.now();
  const stamp = (t: number) => new Date(t).toISOString();
  const state = readState(paths);
  const finish = (o: Omit<JobOutcome, 'job' | 'start' | 'end' | 'log'>): JobOutcome => {
    const end = deps.now();
    fs.appendFileSync(log, `=== ${stamp(end)} end ${job}: ${o.result}${o.exitCode !== undefined ? ` (exit ${o.exitCode})` : ''}${o.message ? `: ${o.message}` : ''} in ${((end - start) / 1000).toFixed(1)} s\n`);
    const s = readState(paths);
    s[job] = { lastStart: start, lastEnd: end, result: o.result, exitCode: o.exitCode, message: o.message, pid: process.pid };
    writeState(paths, s);
    return { job, start, end, log, ...o };
  };
  if (command instanceof Error) {
    fs.appendFileSync(log, `=== ${stamp(start)} start ${job} (pid ${process.pid})\n${command.message}\n`);
    return finish({ result: 'failed', message: command.message });
  }
  if ('skip' in command) {
    fs.appendFileSync(log, `=== ${stamp(start)} start ${job} (pid ${process.pid})\n`);
    return finish({ result: 'skipped', message: command.skip });
  }
  fs.appendFileSync(log, `=== ${stamp(start)} start ${job} (pid ${process.pid}): git dits ${command.args.join(' ')}\n`);
  state[job] = { lastStart: start, result: 'running', pid: process.pid };
  writeState(paths, state);
  const fd = fs.openSync(log, 'a');
  let written = 0;
  let truncated = false;
  let lastLine = '';
  const sink = (chunk: Buffer) => {
    deps.echo(chunk);
    const text = chunk.toString('utf8');
    const lines = text.split('\n').filter((l) => l.trim());
    if (lines.length) lastLine = lines[lines.length - 1]!;
    if (written + chunk.length > LOG_RUN_LIMIT) {
      if (!truncated) fs.writeSync(fd, `\n[... output beyond ${LOG_RUN_LIMIT} bytes not logged]\n`);
      truncated = true;
      return;
    }
    fs.writeSync(fd, chunk);
    written += chunk.length;
  };
  const exitCode = await new Promise<number>((resolve) => {
    const child = spawn(deps.dits[0]!, [...deps.dits.slice(1), ...command.args], { cwd: deps.workTree, env: { ...deps.env, CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', sink);
    child.stderr.on('data', sink);
    child.on('error', (e) => {
      sink(Buffer.from(`${e.message}\n`));
      resolve(127);
    });
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
  });
  fs.closeSync(fd);
  return finish({ result: exitCode === 0 ? 'ok' : 'failed', exitCode, message: exitCode === 0 ? undefined : lastLine.trim().slice(0, 500), command: ['git', 'dits', ...command.args] });
}
