/**
 * `git dits schedule` and `git dits lifecycle run`: systemd user units written into a temp HOME
 * (checked with `systemd-analyze verify` where it is installed; no systemd runs here), crontab
 * lines through a fake `crontab` on PATH, and real runs of the jobs: a snapshot, local tiering
 * by the policy in git config against a file:// remote, the lock, a killed run, a clock set back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DITS_BIN, GitSandbox, SMALL_CHUNKS, randomBytesSeeded, writeFile } from './helpers/git-env.js';

let sb: GitSandbox;
let fakeBin: string;
let cronFile: string;
beforeAll(() => {
  sb = new GitSandbox('dits-schedule-');
  fakeBin = path.join(sb.dir, 'fake-bin');
  cronFile = path.join(sb.dir, 'crontab.txt');
  writeFile(
    path.join(fakeBin, 'crontab'),
    `#!/bin/sh\n# crontab(1) as far as -l and - go, kept in a file\ncase "$1" in\n  -l) if [ -f "${cronFile}" ]; then cat "${cronFile}"; exit 0; fi; echo "no crontab for tester" >&2; exit 1;;\n  -) cat > "${cronFile}";;\n  *) echo "fake crontab: $*" >&2; exit 2;;\nesac\n`,
  );
  fs.chmodSync(path.join(fakeBin, 'crontab'), 0o755);
});
afterAll(() => sb?.cleanup());

const unitDir = () => path.join(sb.env.XDG_CONFIG_HOME!, 'systemd', 'user');
const withCron = () => ({ PATH: `${fakeBin}:${sb.env.PATH}` });

function mustDits(args: string[], repo: string, extraEnv: NodeJS.ProcessEnv = {}): string {
  const r = sb.run(DITS_BIN, args, repo, undefined, extraEnv);
  if (r.status !== 0) throw new Error(`git dits ${args.join(' ')} failed (${r.status}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

interface Outcome {
  job: string;
  result: string;
  exitCode?: number;
  message?: string;
  log: string;
}

function run(repo: string, job?: string, extra: string[] = []): { status: number; out: { ran: Outcome[]; notDue: { job: string }[]; busy?: { pid: number }; tookOverLock: { pid: number } | null }; stderr: string } {
  const r = sb.run(DITS_BIN, ['lifecycle', 'run', ...(job ? [job] : []), '--json', ...extra], repo);
  return { status: r.status, out: JSON.parse(r.stdout), stderr: r.stderr };
}

function status(repo: string): { job: string; schedule: string; installed: string | null; result: string | null; nextRun: string | null; due: boolean; message: string | null }[] {
  return JSON.parse(mustDits(['schedule', 'status', '--json'], repo));
}

function repoWithCommit(name: string, config: Record<string, string> = {}): string {
  const repo = sb.repo(name, { track: ['*.mov'], config: { ...SMALL_CHUNKS, ...config }, files: { 'a.txt': 'one\n' } });
  sb.mustGit(['add', '-A'], repo);
  sb.mustGit(['commit', '-qm', 'c1'], repo);
  return repo;
}

describe('git dits schedule install (systemd)', () => {
  it('writes a service and a timer per job, on the schedules in git config, that systemd-analyze verify accepts; remove deletes them', () => {
    const repo = repoWithCommit('units', { 'dits.schedule.mirror': '02:30', 'dits.schedule.graduate': 'off' });
    const printed = mustDits(['schedule', 'install', '--with', 'systemd', '--print'], repo);
    expect(fs.existsSync(unitDir())).toBe(false); // --print writes nothing
    expect(printed).toContain('OnCalendar=*-*-* 02:30:00');
    mustDits(['schedule', 'install', '--with', 'systemd'], repo);
    const files = fs.readdirSync(unitDir()).sort();
    const jobs = ['mirror', 'retention', 'snapshot', 'tier'];
    expect(files).toHaveLength(8);
    for (const job of jobs) {
      const base = files.find((f) => f.startsWith(`dits-${job}-units-`) && f.endsWith('.timer'))!.replace(/\.timer$/, '');
      const service = fs.readFileSync(path.join(unitDir(), `${base}.service`), 'utf8');
      const timer = fs.readFileSync(path.join(unitDir(), `${base}.timer`), 'utf8');
      expect(service).toContain(`WorkingDirectory=${repo}\n`);
      expect(service).toMatch(new RegExp(`\\nExecStart=${process.execPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\S+/bin/git-dits lifecycle run ${job}\\n`));
      expect(service).toContain('Type=oneshot');
      expect(timer).toContain(`Unit=${base}.service`);
      expect(timer).toContain('Persistent=true');
      expect(timer).toContain(`OnCalendar=${{ mirror: '*-*-* 02:30:00', retention: '*-*-* 05:00:00', snapshot: '*-*-* *:00:00', tier: '*-*-* *:00:00' }[job]}\n`);
    }
    expect(files.some((f) => f.includes('graduate'))).toBe(false);
    const verify = spawnSync('systemd-analyze', ['verify', ...files.map((f) => path.join(unitDir(), f))], { encoding: 'utf8', env: { ...sb.env, SYSTEMD_LOG_LEVEL: 'warning' } });
    if (!verify.error) expect(verify.status, verify.stderr + verify.stdout).toBe(0);
    expect(status(repo).map((s) => [s.job, s.installed])).toEqual([
      ['snapshot', 'systemd'],
      ['tier', 'systemd'],
      ['graduate', null],
      ['mirror', 'systemd'],
      ['retention', 'systemd'],
    ]);
    // a schedule turned off, then installed again: its units go
    sb.mustGit(['config', 'dits.schedule.mirror', 'off'], repo);
    mustDits(['schedule', 'install', '--with', 'systemd', 'mirror'], repo);
    expect(fs.readdirSync(unitDir()).filter((f) => f.includes('mirror'))).toEqual([]);
    mustDits(['schedule', 'remove'], repo);
    expect(fs.readdirSync(unitDir())).toEqual([]);
  });

  it('a repository whose path has spaces and a percent sign gets units systemd still reads', () => {
    const repo = repoWithCommit('my 100% project');
    mustDits(['schedule', 'install', '--with', 'systemd', 'snapshot'], repo);
    const files = fs.readdirSync(unitDir()).map((f) => path.join(unitDir(), f));
    const service = fs.readFileSync(files.find((f) => f.endsWith('.service'))!, 'utf8');
    expect(service).toContain('WorkingDirectory=' + repo.replace('%', '%%') + '\n');
    const verify = spawnSync('systemd-analyze', ['verify', ...files], { encoding: 'utf8' });
    if (!verify.error) expect(verify.status, verify.stderr).toBe(0);
    mustDits(['schedule', 'remove'], repo);
  });

  it('refuses a schedule it cannot read, naming the key and the forms', () => {
    const repo = repoWithCommit('badspec', { 'dits.schedule.snapshot': 'every tuesday' });
    const r = sb.run(DITS_BIN, ['schedule', 'install', '--with', 'systemd'], repo);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/dits\.schedule\.snapshot.*every tuesday/);
    expect(r.stderr).toMatch(/hint: .*hourly/);
    expect(fs.existsSync(unitDir()) ? fs.readdirSync(unitDir()) : []).toEqual([]);
  });
});

describe('git dits schedule install (cron)', () => {
  it("adds one line per job, keeps the user's other lines, replaces its own on a second install, and remove takes only this repository's", () => {
    const a = repoWithCommit('cron-a');
    const b = repoWithCommit('cron-b');
    fs.writeFileSync(cronFile, 'MAILTO=me\n15 2 * * * /usr/local/bin/backup\n');
    expect(mustDits(['schedule', 'install', '--with', 'cron', '--print'], a, withCron())).toContain('0 4 * * * cd ');
    expect(fs.readFileSync(cronFile, 'utf8')).toBe('MAILTO=me\n15 2 * * * /usr/local/bin/backup\n');
    mustDits(['schedule', 'install', '--with', 'cron'], a, withCron());
    mustDits(['schedule', 'install', '--with', 'cron', 'snapshot'], b, withCron());
    sb.mustGit(['config', 'dits.schedule.snapshot', '*:0/15'], a);
    mustDits(['schedule', 'install', '--with', 'cron'], a, withCron());
    const lines = fs.readFileSync(cronFile, 'utf8').trimEnd().split('\n');
    expect(lines.slice(0, 2)).toEqual(['MAILTO=me', '15 2 * * * /usr/local/bin/backup']);
    const ofA = lines.filter((l) => l.includes(`cd ${a} `));
    expect(ofA.map((l) => l.split(' ').slice(0, 5).join(' ') + ' ' + l.split(' ').at(-1))).toEqual([
      '0,15,30,45 * * * * snapshot',
      '0 * * * * tier',
      '0 3 * * * graduate',
      '0 4 * * * mirror',
      '0 5 * * * retention',
    ]);
    expect(ofA[0]).toMatch(/ lifecycle run snapshot >\/dev\/null 2>&1 # dits-schedule [0-9a-f]{8} snapshot$/);
    expect(lines.filter((l) => l.includes(`cd ${b} `))).toHaveLength(1);
    expect(status(a).every((s) => s.installed === null)).toBe(true); // no crontab on this PATH
    expect(JSON.parse(mustDits(['schedule', 'status', '--json'], a, withCron())).map((s: { installed: string }) => s.installed)).toEqual(['cron', 'cron', 'cron', 'cron', 'cron']);
    mustDits(['schedule', 'remove'], a, withCron());
    const after = fs.readFileSync(cronFile, 'utf8').trimEnd().split('\n');
    expect(after).toHaveLength(3);
    expect(after[2]).toContain(`cd ${b} `);
    // the line runs: what cron would do, by the shell
    const sh = spawnSync('sh', ['-c', after[2]!.replace(/ >\/dev\/null 2>&1 # .*$/, '').replace(/^(\S+ ){5}/, '')], { encoding: 'utf8', env: sb.env });
    expect(sh.status, sh.stderr).toBe(0);
    expect(fs.readFileSync(path.join(b, '.git/dits/logs/snapshot.log'), 'utf8')).toMatch(/end snapshot: ok/);
  });

  it('says what to do when there is neither systemd nor crontab', () => {
    const repo = repoWithCommit('nocron');
    const r = sb.run(DITS_BIN, ['schedule', 'install', '--with', 'cron'], repo, undefined, { PATH: path.dirname(process.execPath) + ':/usr/bin:/bin'.split(':').filter((d) => !fs.existsSync(path.join(d, 'crontab'))).join(':') });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no `crontab`/);
    expect(r.stderr).toMatch(/hint: /);
  });
});

describe('git dits lifecycle run', () => {
  it('runs what is due once: a snapshot and retention run, jobs with nothing configured are skipped, the next run finds nothing due; a named job runs now', () => {
    const repo = repoWithCommit('due');
    writeFile(path.join(repo, 'a.txt'), 'two\n');
    const first = run(repo);
    expect(first.status, first.stderr).toBe(0);
    expect(Object.fromEntries(first.out.ran.map((o) => [o.job, o.result]))).toEqual({ snapshot: 'ok', tier: 'skipped', graduate: 'skipped', mirror: 'skipped', retention: 'ok' });
    expect(first.out.ran.find((o) => o.job === 'tier')!.message).toMatch(/dits\.prune\.olderThan/);
    const snaps = JSON.parse(mustDits(['snapshot', 'list', '--json'], repo));
    expect(snaps).toHaveLength(1);
    expect(sb.mustGit(['show', `${snaps[0].commit}:a.txt`], repo)).toBe('two\n');
    expect(fs.readFileSync(path.join(repo, '.git/dits/logs/snapshot.log'), 'utf8')).toMatch(/start snapshot .*git dits snapshot\nSnapshot \S+ \(\d+ file\(s\) read/);
    const second = run(repo);
    expect(second.out.ran).toEqual([]);
    expect(second.out.notDue.map((n) => n.job)).toEqual(['snapshot', 'tier', 'graduate', 'mirror', 'retention']);
    const named = run(repo, 'snapshot');
    expect(named.out.ran.map((o) => [o.job, o.result])).toEqual([['snapshot', 'ok']]);
    const st = status(repo);
    expect(st.map((s) => [s.job, s.result, s.due])).toEqual([
      ['snapshot', 'ok', false],
      ['tier', 'skipped', false],
      ['graduate', 'skipped', false],
      ['mirror', 'skipped', false],
      ['retention', 'ok', false],
    ]);
    expect(Date.parse(st[0]!.nextRun!)).toBeGreaterThan(Date.now());
  });

  it('local tiering follows dits.prune.olderThan / maxLocalSize: chunks the remote verifiably holds are dropped, a bad policy fails with its fix', () => {
    const remoteDir = path.join(sb.dir, 'remotes', 'tier');
    const repo = sb.repo('tier', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': randomBytesSeeded(300_000, 5) } });
    sb.mustGit(['add', '-A'], repo);
    sb.mustGit(['commit', '-qm', 'v1'], repo);
    writeFile(path.join(repo, 'a.mov'), randomBytesSeeded(300_000, 6));
    sb.mustGit(['commit', '-qam', 'v2'], repo);
    sb.mustGit(['remote', 'add', 'origin', `dits::file://${remoteDir}`], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    const du = () => JSON.parse(mustDits(['du', '--json'], repo));
    const before = du();
    const off = run(repo, 'tier');
    expect(off.out.ran[0]).toMatchObject({ result: 'skipped' });
    sb.mustGit(['config', 'dits.prune.maxLocalSize', 'lots'], repo);
    const bad = run(repo, 'tier');
    expect(bad.status).toBe(1);
    expect(bad.out.ran[0]!.message).toMatch(/dits\.prune\.maxLocalSize.*lots.*50G/);
    sb.mustGit(['config', 'dits.prune.maxLocalSize', '1k'], repo);
    sb.mustGit(['config', 'dits.prune.olderThan', '0'], repo);
    const ok = run(repo, 'tier');
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.out.ran[0]).toMatchObject({ job: 'tier', result: 'ok', exitCode: 0 });
    const log = fs.readFileSync(ok.out.ran[0]!.log, 'utf8');
    expect(log).toMatch(/git dits prune --older-than 0 --max-local-size 1k\n/);
    expect(log).toMatch(/Dropped \d+ chunk\(s\)/);
    expect(JSON.stringify(du())).not.toBe(JSON.stringify(before));
    // v1 comes back from the remote, byte-exact
    fs.rmSync(path.join(repo, 'a.mov'));
    sb.mustGit(['checkout', '-q', 'HEAD~1', '--', 'a.mov'], repo);
    expect(fs.readFileSync(path.join(repo, 'a.mov')).equals(randomBytesSeeded(300_000, 5))).toBe(true);
  });

  it('never overlaps: while a run holds the lock another waits for it to end (or, with --no-wait, does nothing); a killed run leaves a stale lock that the next run takes over, and its job runs again', async () => {
    const repo = repoWithCommit('lock');
    const lockFile = path.join(repo, '.git/dits/lifecycle/lock');
    const stateFile = path.join(repo, '.git/dits/lifecycle/state.json');
    fs.mkdirSync(path.dirname(lockFile), { recursive: true });
    const holder = spawn('sleep', ['60']);
    try {
      fs.writeFileSync(lockFile, JSON.stringify({ pid: holder.pid, host: os.hostname(), started: Date.now() }));
      const busy = run(repo, 'snapshot', ['--no-wait']);
      expect(busy.status).toBe(0);
      expect(busy.out.busy!.pid).toBe(holder.pid);
      expect(busy.out.ran).toEqual([]);
      expect(fs.existsSync(stateFile)).toBe(false);
      expect(fs.readFileSync(lockFile, 'utf8')).toContain(String(holder.pid));
      const gaveUp = run(repo, 'snapshot', ['--wait', '1']);
      expect(gaveUp.status).toBe(1);
      expect(gaveUp.out.ran).toEqual([]);
      // the default waits: two timers firing at the same minute queue instead of one being lost
      const waiting = spawn(DITS_BIN, ['lifecycle', 'run', 'snapshot', '--json'], { cwd: repo, env: sb.env });
      let stdout = '';
      waiting.stdout.on('data', (c) => (stdout += c));
      await new Promise((r) => setTimeout(r, 1500));
      expect(waiting.exitCode).toBeNull(); // still waiting
      holder.kill('SIGKILL');
      const code = await new Promise((r) => waiting.on('exit', r));
      expect(code).toBe(0);
      expect(JSON.parse(stdout).ran.map((o: Outcome) => [o.job, o.result])).toEqual([['snapshot', 'ok']]);
    } finally {
      holder.kill('SIGKILL');
    }
    fs.rmSync(stateFile);
    // what a run killed in the middle of a snapshot leaves: its lock and `running`
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const pid = Number(dead.stdout);
    fs.writeFileSync(lockFile, JSON.stringify({ pid, host: os.hostname(), started: Date.now() - 1000 }));
    fs.writeFileSync(stateFile, JSON.stringify({ snapshot: { lastStart: Date.now() - 1000, result: 'running', pid } }));
    expect(status(repo).find((s) => s.job === 'snapshot')).toMatchObject({ result: 'interrupted', due: true });
    const next = run(repo);
    expect(next.status, next.stderr).toBe(0);
    expect(next.out.tookOverLock!.pid).toBe(pid);
    expect(next.out.ran.find((o) => o.job === 'snapshot')).toMatchObject({ result: 'ok' });
    expect(fs.existsSync(lockFile)).toBe(false);
  });

  it('a really killed run: SIGKILL in the middle of a job, then the next run completes it', async () => {
    const repo = repoWithCommit('killed');
    // a snapshot that takes a while: many files to read
    for (let i = 0; i < 400; i++) writeFile(path.join(repo, 'many', `f${i}.txt`), `file ${i}\n`);
    const child = spawn(DITS_BIN, ['lifecycle', 'run', 'snapshot'], { cwd: repo, env: sb.env, stdio: 'ignore', detached: true });
    const stateFile = path.join(repo, '.git/dits/lifecycle/state.json');
    for (let i = 0; i < 400 && !(fs.existsSync(stateFile) && fs.readFileSync(stateFile, 'utf8').includes('running')); i++) await new Promise((r) => setTimeout(r, 10));
    process.kill(-child.pid!, 'SIGKILL'); // the run and the snapshot it started
    await new Promise((r) => child.on('exit', r));
    const st = status(repo).find((s) => s.job === 'snapshot')!;
    // killed while running (or, on a fast machine, just after it finished)
    expect(['interrupted', 'ok']).toContain(st.result);
    const next = run(repo);
    expect(next.status, next.stderr).toBe(0);
    if (st.result === 'interrupted') expect(next.out.ran.find((o) => o.job === 'snapshot')).toMatchObject({ result: 'ok' });
    const snaps = JSON.parse(mustDits(['snapshot', 'list', '--json'], repo));
    expect(snaps.length).toBeGreaterThanOrEqual(1);
    expect(sb.mustGit(['show', `${snaps.at(-1).commit}:many/f399.txt`], repo)).toBe('file 399\n');
  });

  it('a clock set back: a last run stored in the future does not keep a job from running', () => {
    const repo = repoWithCommit('clock');
    const stateFile = path.join(repo, '.git/dits/lifecycle/state.json');
    fs.mkdirSync(path.dirname(stateFile), { recursive: true });
    const future = Date.now() + 3 * 86400e3;
    fs.writeFileSync(stateFile, JSON.stringify(Object.fromEntries(['snapshot', 'tier', 'graduate', 'mirror', 'retention'].map((j) => [j, { lastStart: future, lastEnd: future, result: 'ok', pid: 1 }]))));
    const r = run(repo);
    expect(r.out.ran.map((o) => o.job)).toEqual(['snapshot', 'tier', 'graduate', 'mirror', 'retention']);
    expect(run(repo).out.ran).toEqual([]);
  });

  it('refuses an unknown job', () => {
    const repo = repoWithCommit('unknown');
    const r = sb.run(DITS_BIN, ['lifecycle', 'run', 'backup'], repo);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/'backup' is not a lifecycle job\nhint: the jobs are snapshot, tier/);
  });
});
