import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { findRepo, requireInitialised, type RepoPaths } from '../../git/repo.js';
import { runGit } from '../../git/exec.js';
import { readDitsConfig, type DitsConfig } from '../../git/dits-config.js';
import { DitsUserError } from '../../errors.js';
import { nextRun } from '../../lifecycle/calendar.js';
import { JOBS, JOB_NAMES, jobCommand, jobSchedule, requireJobName, type JobName } from '../../lifecycle/jobs.js';
import { acquireLock, isDue, lifecyclePaths, readState, runJob, type JobOutcome } from '../../lifecycle/job-runner.js';
import { cronLine, cronLineJob, serviceUnit, timerUnit, unitBaseName, type UnitContext } from '../../lifecycle/schedule-units.js';
import { err, out, printJson, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';

type Backend = 'systemd' | 'cron';

const installOptions = {
  print: { type: 'boolean', description: 'only show the units (or crontab lines) that would be written' },
  with: { type: 'string', value: 'systemd|cron', description: 'where to install (default: systemd when it runs this machine, else cron)' },
} as const satisfies OptionTable;
const statusOptions = { json: { type: 'boolean', description: 'print the status as JSON' } } as const satisfies OptionTable;
const removeOptions = {} as const satisfies OptionTable;

async function openRepo(ctx: CliContext): Promise<RepoPaths> {
  const repo = await findRepo(ctx.cwd);
  requireInitialised(repo);
  return repo;
}

function jobsFrom(positionals: string[]): JobName[] {
  return positionals.length ? [...new Set(positionals.map(requireJobName))] : [...JOB_NAMES];
}

/** systemd runs this machine (sd_booted(3): /run/systemd/system exists). */
function systemdRunning(): boolean {
  return fs.existsSync('/run/systemd/system');
}

function unitDir(env: NodeJS.ProcessEnv): string {
  const home = env.HOME;
  const config = env.XDG_CONFIG_HOME || (home ? path.join(home, '.config') : undefined);
  if (!config) throw new DitsUserError('no-home', 'neither XDG_CONFIG_HOME nor HOME is set: no place for the systemd user units', { hint: 'set HOME, or use `--with cron`' });
  return path.join(config, 'systemd', 'user');
}

function unitContext(repo: RepoPaths, ctx: CliContext): UnitContext {
  return { workTree: repo.workTree, dits: [process.execPath, ctx.ditsBin], pathEnv: ctx.env.PATH ?? '/usr/local/bin:/usr/bin:/bin' };
}

function crontab(ctx: CliContext, args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('crontab', args, { env: ctx.env, input, encoding: 'utf8' });
  if (r.error) {
    if ((r.error as NodeJS.ErrnoException).code === 'ENOENT') throw new DitsUserError('no-crontab', 'there is no systemd user manager and no `crontab` on this machine', { hint: 'install cron (e.g. `apt-get install cron`), or write the units with `--with systemd`' });
    throw r.error;
  }
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

/** The user's crontab lines (none when there is no crontab yet). */
function readCrontab(ctx: CliContext): string[] {
  const r = crontab(ctx, ['-l']);
  if (r.status !== 0) {
    if (/no crontab/i.test(r.stderr)) return [];
    throw new DitsUserError('crontab-failed', `crontab -l failed: ${r.stderr.trim()}`, { hint: 'check that cron works for this user (`crontab -l`)' });
  }
  return r.stdout.split('\n').filter((l, i, all) => l !== '' || i < all.length - 1);
}

function writeCrontab(ctx: CliContext, lines: string[]): void {
  const r = crontab(ctx, ['-'], lines.length ? lines.join('\n') + '\n' : '');
  if (r.status !== 0) throw new DitsUserError('crontab-failed', `crontab - failed: ${r.stderr.trim()}`, { hint: 'check that cron works for this user (`crontab -l`)' });
}

function systemctl(ctx: CliContext, args: string[]): string | null {
  const r = spawnSync('systemctl', ['--user', ...args], { env: ctx.env, encoding: 'utf8' });
  if (r.error) return r.error.message;
  return r.status === 0 ? null : (r.stderr || r.stdout).trim();
}

async function schedules(repo: RepoPaths, jobs: JobName[]) {
  const config = await readDitsConfig(repo.workTree);
  return { config, cals: jobs.map((job) => ({ job, cal: jobSchedule(config, job) })) };
}

async function runInstall(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseOptions(args, installOptions, { positionals: true });
  const repo = await openRepo(ctx);
  const jobs = jobsFrom(positionals);
  const backend: Backend = values.with === undefined ? (systemdRunning() ? 'systemd' : 'cron') : values.with === 'systemd' || values.with === 'cron' ? values.with : badBackend(values.with);
  const { cals } = await schedules(repo, jobs);
  const u = unitContext(repo, ctx);
  if (backend === 'systemd') {
    const dir = unitDir(ctx.env);
    const files: { file: string; text: string }[] = [];
    const off: string[] = [];
    for (const { job, cal } of cals) {
      const base = path.join(dir, unitBaseName(job, repo.workTree));
      if (!cal) off.push(job);
      else files.push({ file: `${base}.service`, text: serviceUnit(job, u) }, { file: `${base}.timer`, text: timerUnit(job, cal, u) });
    }
    if (values.print) {
      for (const f of files) out(ctx, `# ${f.file}\n${f.text}\n`);
      for (const job of off) out(ctx, `# ${job}: off (git config dits.schedule.${job})`);
      return 0;
    }
    fs.mkdirSync(dir, { recursive: true });
    for (const f of files) {
      fs.writeFileSync(`${f.file}.tmp`, f.text);
      fs.renameSync(`${f.file}.tmp`, f.file);
    }
    const timers = files.filter((f) => f.file.endsWith('.timer')).map((f) => path.basename(f.file));
    const removed = removeUnits(ctx, dir, repo, off as JobName[]);
    for (const { job, cal } of cals) out(ctx, cal ? `${job}: ${cal.onCalendar} (${unitBaseName(job, repo.workTree)}.timer)` : `${job}: off${removed.includes(job) ? ' (its units removed)' : ''}`);
    out(ctx, `Wrote ${files.length} unit file(s) to ${dir}.`);
    if (timers.length) {
      if (systemdRunning()) {
        const failed = systemctl(ctx, ['daemon-reload']) ?? systemctl(ctx, ['enable', '--now', ...timers]);
        if (failed) throw new DitsUserError('systemctl-failed', `the units were written, but systemctl --user failed: ${failed}`, { hint: `enable them by hand: systemctl --user daemon-reload && systemctl --user enable --now ${timers.join(' ')}` });
        out(ctx, `Enabled ${timers.length} timer(s): \`systemctl --user list-timers 'dits-*'\` shows them.`);
      } else out(ctx, `systemd does not run this machine: on one that it runs, \`systemctl --user daemon-reload && systemctl --user enable --now ${timers.join(' ')}\` starts them.`);
    }
    return 0;
  }
  const lines = cals.flatMap(({ job, cal }) => (cal ? [cronLine(job, cal, u)] : []));
  if (values.print) {
    for (const l of lines) out(ctx, l);
    return 0;
  }
  const keep = readCrontab(ctx).filter((l) => {
    const j = cronLineJob(l, repo.workTree);
    return j === undefined || !jobs.includes(j as JobName);
  });
  writeCrontab(ctx, [...keep, ...lines]);
  for (const { job, cal } of cals) out(ctx, cal ? `${job}: ${cal.onCalendar} (crontab)` : `${job}: off`);
  out(ctx, `Installed ${lines.length} crontab line(s).`);
  return 0;
}

function badBackend(v: string): never {
  throw new DitsUserError('bad-option-value', `--with takes systemd or cron, not '${v}'`, { exitCode: 2 });
}

/** Deletes this repository's units of `jobs` (disabling their timers first when systemd runs); returns the jobs that had some. */
function removeUnits(ctx: CliContext, dir: string, repo: RepoPaths, jobs: JobName[]): JobName[] {
  const removed: JobName[] = [];
  for (const job of jobs) {
    const base = unitBaseName(job, repo.workTree);
    const files = [`${base}.timer`, `${base}.service`].map((f) => path.join(dir, f)).filter((f) => fs.existsSync(f));
    if (!files.length) continue;
    if (systemdRunning()) systemctl(ctx, ['disable', '--now', `${base}.timer`]);
    for (const f of files) fs.rmSync(f, { force: true });
    removed.push(job);
  }
  if (removed.length && systemdRunning()) systemctl(ctx, ['daemon-reload']);
  return removed;
}

function hasCrontab(ctx: CliContext): boolean {
  const r = spawnSync('crontab', ['-l'], { env: ctx.env, encoding: 'utf8' });
  return !r.error;
}

async function runRemove(args: string[], ctx: CliContext): Promise<number> {
  const { positionals } = parseOptions(args, removeOptions, { positionals: true });
  const repo = await openRepo(ctx);
  const jobs = jobsFrom(positionals);
  const removed = new Set<string>(ctx.env.HOME || ctx.env.XDG_CONFIG_HOME ? removeUnits(ctx, unitDir(ctx.env), repo, jobs) : []);
  let cronRemoved = 0;
  if (hasCrontab(ctx)) {
    const lines = readCrontab(ctx);
    const keep = lines.filter((l) => {
      const j = cronLineJob(l, repo.workTree);
      return j === undefined || !jobs.includes(j as JobName);
    });
    cronRemoved = lines.length - keep.length;
    if (cronRemoved) writeCrontab(ctx, keep);
  }
  out(ctx, removed.size || cronRemoved ? `Removed the schedules of ${[...removed].join(', ') || 'no job'} (systemd units)${cronRemoved ? ` and ${cronRemoved} crontab line(s)` : ''}.` : 'No schedules of this repository were installed.');
  return 0;
}

async function runStatus(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseOptions(args, statusOptions);
  const repo = await openRepo(ctx);
  const { cals } = await schedules(repo, [...JOB_NAMES]);
  const paths = lifecyclePaths(repo.ditsDir);
  const state = readState(paths);
  const now = Date.now();
  const dir = ctx.env.HOME || ctx.env.XDG_CONFIG_HOME ? unitDir(ctx.env) : undefined;
  const cronJobs = new Set<string>();
  if (hasCrontab(ctx)) {
    try {
      for (const l of readCrontab(ctx)) {
        const j = cronLineJob(l, repo.workTree);
        if (j) cronJobs.add(j);
      }
    } catch {
      /* status still shows the rest */
    }
  }
  const lock = acquireLockPeek(paths.lock);
  const rows = cals.map(({ job, cal }) => {
    const s = state[job];
    const installed = dir && fs.existsSync(path.join(dir, `${unitBaseName(job, repo.workTree)}.timer`)) ? 'systemd' : cronJobs.has(job) ? 'cron' : null;
    const result = s?.result === 'running' && !(lock && lock.pid === s.pid) ? 'interrupted' : (s?.result ?? null);
    return {
      job,
      title: JOBS[job].title,
      schedule: cal ? cal.onCalendar : 'off',
      installed,
      lastRun: s ? new Date(s.lastStart).toISOString() : null,
      lastEnd: s?.lastEnd ? new Date(s.lastEnd).toISOString() : null,
      result,
      exitCode: s?.exitCode ?? null,
      message: s?.message ?? null,
      nextRun: cal ? new Date(nextRun(cal, now)).toISOString() : null,
      due: isDue(cal, s, now),
      log: path.join(paths.logs, `${job}.log`),
    };
  });
  if (values.json) printJson(ctx, rows);
  else {
    for (const r of rows) {
      out(ctx, `${r.job.padEnd(10)} ${r.schedule.padEnd(18)} ${(r.installed ?? 'not installed').padEnd(13)} last: ${r.lastRun ? `${r.lastRun} ${r.result}${r.exitCode ? ` (exit ${r.exitCode})` : ''}` : 'never'}  next: ${r.nextRun ?? '-'}`);
      if (r.message && r.result !== 'ok') out(ctx, `${''.padEnd(10)} ${r.message}`);
    }
    if (lock) out(ctx, `A run holds the lock now (pid ${lock.pid}, since ${new Date(lock.started).toISOString()}).`);
  }
  return 0;
}

function acquireLockPeek(file: string): { pid: number; started: number } | null {
  try {
    const h = JSON.parse(fs.readFileSync(file, 'utf8')) as { pid: number; started: number };
    process.kill(h.pid, 0);
    return h;
  } catch {
    return null;
  }
}

const schedule: Command = {
  summary: 'Run snapshots, local tiering, graduation, mirror sync and snapshot retention on a schedule (systemd user timers, else cron)',
  usage:
    'git dits schedule install [--print] [--with systemd|cron] [<job>...]\n' +
    '   or: git dits schedule status [--json]\n' +
    '   or: git dits schedule remove [<job>...]\n\n' +
    `Jobs: ${JOB_NAMES.map((j) => `${j} (${JOBS[j].defaultSchedule})`).join(', ')}. Change one with\n` +
    '`git config dits.schedule.<job> <schedule>` (hourly, daily, 04:00, *:30, *:0/15, off), then install again.\n' +
    'Each fires `git dits lifecycle run <job>`; local tiering follows dits.prune.olderThan / dits.prune.maxLocalSize.',
  options: {},
  subcommands: {
    install: { summary: 'Write (and enable) a timer per job for this repository; --print only shows them', usage: 'git dits schedule install [--print] [--with systemd|cron] [<job>...]', options: installOptions },
    status: { summary: "Each job's schedule, last run and result, and next run", usage: 'git dits schedule status [--json]', options: statusOptions },
    remove: { summary: "Remove this repository's timers (or crontab lines)", usage: 'git dits schedule remove [<job>...]', options: removeOptions },
  },
  async run(args, ctx) {
    const [sub, ...rest] = args;
    if (sub === 'install') return runInstall(rest, ctx);
    if (sub === 'status') return runStatus(rest, ctx);
    if (sub === 'remove') return runRemove(rest, ctx);
    throw new DitsUserError('bad-usage', sub === undefined ? 'name a subcommand' : `unknown subcommand 'schedule ${sub}'`, { hint: 'git dits schedule install | status | remove', exitCode: 2 });
  },
};

const runOptions = {
  json: { type: 'boolean', description: 'print the outcome as JSON' },
  'no-wait': { type: 'boolean', description: 'when another run holds the lock, do nothing instead of waiting for it to end' },
  wait: { type: 'string', value: '<seconds>', description: 'wait at most this long for another run to end (default 3600; timers of two jobs firing together queue, they never overlap)' },
} as const satisfies OptionTable;

async function mirrorCount(cwd: string): Promise<number> {
  const r = await runGit(['config', '--get-regexp', '^dits\\.mirror\\..*\\.url$'], { cwd, allowFail: true });
  return r.stdout.toString('utf8').split('\n').filter(Boolean).length;
}

function commandFor(job: JobName, config: DitsConfig, mirrors: number) {
  try {
    return jobCommand(job, config, mirrors);
  } catch (e) {
    if (e instanceof DitsUserError) return new Error(`${e.message}${e.hint ? ` (${e.hint})` : ''}`);
    throw e;
  }
}

const lifecycle: Command = {
  summary: 'Run the lifecycle jobs that are due (or the one named) once, under a lock, logged to .git/dits/logs',
  usage: `git dits lifecycle run [<job>] [--json] [--no-wait | --wait <seconds>]\n\nJobs: ${JOB_NAMES.join(', ')}. Without a job, each whose schedule fired since its last run runs; a named job runs now.`,
  options: runOptions,
  subcommands: { run: { summary: 'Run what is due, once', usage: 'git dits lifecycle run [<job>] [--json] [--no-wait | --wait <seconds>]', options: runOptions } },
  async run(args, ctx) {
    const [sub, ...rest] = args;
    if (sub !== 'run') throw new DitsUserError('bad-usage', sub === undefined ? 'name a subcommand' : `unknown subcommand 'lifecycle ${sub}'`, { hint: 'git dits lifecycle run [<job>]', exitCode: 2 });
    const { values, positionals } = parseOptions(rest, runOptions, { positionals: true });
    if (positionals.length > 1) throw new DitsUserError('bad-usage', 'one job at a time', { hint: 'git dits lifecycle run [<job>]', exitCode: 2 });
    const named = positionals[0] !== undefined ? requireJobName(positionals[0]) : undefined;
    const repo = await openRepo(ctx);
    const paths = lifecyclePaths(repo.ditsDir);
    const now = () => Date.now();
    const waitText = values.wait ?? '3600';
    if (!/^\d+$/.test(waitText)) throw new DitsUserError('bad-option-value', `--wait takes whole seconds, not '${waitText}'`, { hint: 'e.g. --wait 600, or --no-wait', exitCode: 2 });
    const deadline = now() + (values['no-wait'] ? 0 : Number(waitText) * 1000);
    let lock = acquireLock(paths, now());
    let said = false;
    while ('heldBy' in lock && now() < deadline) {
      if (!said && !values.json) err(ctx, `dits: waiting for another lifecycle run (pid ${lock.heldBy.pid}) to end`);
      said = true;
      await new Promise((r) => setTimeout(r, 250));
      lock = acquireLock(paths, now());
    }
    if ('heldBy' in lock) {
      const h = lock.heldBy;
      if (values.json) printJson(ctx, { busy: { pid: h.pid, host: h.host, since: new Date(h.started).toISOString() }, ran: [] });
      else out(ctx, `Another lifecycle run (pid ${h.pid} on ${h.host}, since ${new Date(h.started).toISOString()}) is running; nothing done.`);
      return values['no-wait'] ? 0 : 1;
    }
    const held = lock;
    const ran: JobOutcome[] = [];
    const notDue: { job: JobName; nextRun: string | null }[] = [];
    try {
      if (held.tookOver && !values.json) err(ctx, `dits: took over the lock of an earlier run that is gone (pid ${held.tookOver.pid})`);
      const config = await readDitsConfig(repo.workTree);
      const mirrors = await mirrorCount(repo.workTree);
      const state = readState(paths);
      for (const job of named ? [named] : JOB_NAMES) {
        let cal;
        try {
          cal = jobSchedule(config, job);
        } catch (e) {
          if (named || !(e instanceof DitsUserError)) throw e;
          ran.push(await runJob(paths, job, new Error(`${e.message} (${e.hint})`), { workTree: repo.workTree, dits: [process.execPath, ctx.ditsBin], env: ctx.env, echo: (c) => ctx.stderr.write(c), now }));
          continue;
        }
        if (!named && !isDue(cal, state[job], now())) {
          notDue.push({ job, nextRun: cal ? new Date(nextRun(cal, now())).toISOString() : null });
          continue;
        }
        const outcome = await runJob(paths, job, commandFor(job, config, mirrors), { workTree: repo.workTree, dits: [process.execPath, ctx.ditsBin], env: ctx.env, echo: (c) => ctx.stderr.write(c), now });
        ran.push(outcome);
        if (!values.json) out(ctx, `${job}: ${outcome.result}${outcome.exitCode ? ` (exit ${outcome.exitCode})` : ''}${outcome.message ? `: ${outcome.message}` : ''} (${((outcome.end - outcome.start) / 1000).toFixed(1)} s; log ${outcome.log})`);
      }
    } finally {
      held.release();
    }
    if (values.json) printJson(ctx, { ran, notDue, tookOverLock: held.tookOver ?? null });
    else if (!ran.length) out(ctx, `Nothing is due (next: ${notDue.filter((n) => n.nextRun).map((n) => `${n.job} ${n.nextRun}`).join(', ') || 'every job is off'}).`);
    return ran.some((o) => o.result === 'failed') ? 1 : 0;
  },
};

export const commands = { schedule, lifecycle };
