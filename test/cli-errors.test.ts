/**
 * Every command, driven as a user would get it wrong: an unknown option, a bad value for
 * each declared option, and a run outside any repository. Each must end with exit 1 or 2
 * and a message, never "internal error" or a stack trace. The commands come from the CLI's
 * own table, so a new command is covered without touching this file.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DITS_BIN, GitSandbox, ROOT, writeFile, type RunResult } from './helpers/git-env.js';
import type { Command } from '../src/cli/main.js';

// the built CLI (what bin/git-dits runs; global setup compiles it): its lazy command imports
// are plain node imports there
const { commandNames, loadCommand } = (await import(path.join(ROOT, 'dist/src/cli/main.js'))) as typeof import('../src/cli/main.js');

let sb: GitSandbox;
let repo: string;
let outside: string;

beforeAll(() => {
  sb = new GitSandbox('dits-cli-errors-');
  repo = sb.repo('repo', { track: ['*.bin'], files: { 'a.bin': 'some content\n', 'edit.fcpxml': '<fcpxml version="1.9"></fcpxml>\n' } });
  sb.mustGit(['add', '.'], repo);
  sb.mustGit(['commit', '-qm', 'one'], repo);
  outside = path.join(sb.dir, 'not-a-repo');
  fs.mkdirSync(outside);
});

afterAll(() => sb.cleanup());

/** exit 1 or 2, something said on stderr, and no internal error or stack trace. */
function expectCleanFailure(r: RunResult, what: string): void {
  const said = `${what}: exit ${r.status}\n${r.stderr}`;
  expect(r.stderr, said).not.toMatch(/internal error/i);
  expect(r.stderr, said).not.toMatch(/^\s+at .+[:(]\d+/m); // a stack frame
  expect([1, 2], said).toContain(r.status);
  expect(r.stderr.trim().length, said).toBeGreaterThan(0);
}

/** Runs with a closed stdin and a ceiling, so no command waits for input or finds a parent repo. */
function dits(args: string[], cwd: string): RunResult {
  return sb.run(DITS_BIN, args, cwd, '', { GIT_CEILING_DIRECTORIES: sb.dir });
}

const names = commandNames().map((c) => c.name);

describe('every command with bad arguments', () => {
  it('lists the commands from the CLI table', () => {
    expect(names).toContain('add');
    expect(names).toContain('server');
    expect(names).toContain('hook');
  });

  it.each(names)('%s --no-such-option: exit 1/2 with a message', (name) => {
    const r = dits([name, '--no-such-option'], repo);
    expectCleanFailure(r, `${name} --no-such-option`);
  });

  it.each(names)('%s: a bad value for each declared option', async (name) => {
    const cmd: Command = await loadCommand(name);
    const tables = [cmd.options ?? {}, ...Object.values(cmd.subcommands ?? {}).map((s) => s.options ?? {})];
    const prefix = cmd.subcommands ? [Object.keys(cmd.subcommands)[0]!.split(' ')].flat() : [];
    for (const table of tables) {
      for (const [opt, spec] of Object.entries(table)) {
        // a string option with its value missing; a boolean one given a value
        const args = spec.type === 'string' ? [...prefix, `--${opt}`] : [...prefix, `--${opt}=maybe`];
        expectCleanFailure(dits([name, ...args], repo), `${name} ${args.join(' ')}`);
      }
    }
  });

  /** Arguments that look plausible, for the run outside a repository. */
  const OUTSIDE: Record<string, string[]> = {
    add: ['a.bin'],
    track: ['*.mov'],
    untrack: ['*.mov'],
    inspect: ['a.bin'],
    deps: ['edit.fcpxml'],
    lock: ['a.bin'],
    unlock: ['a.bin'],
    hook: ['post-checkout'],
    textconv: ['a.bin'],
    'merge-driver': ['base', 'ours', 'theirs', 'a.bin'],
    'diff-driver': ['a.bin', 'old', '0'.repeat(40), '100644', 'new', '0'.repeat(40), '100644'],
    clean: ['--', 'a.bin'],
    smudge: ['--', 'a.bin'],
    push: ['--dry-run'],
    prune: ['--older-than', '30d'],
    fetch: [],
    server: ['status', '--data', 'no-such-data-dir'],
    serve: ['--port', '70000'], // a bad port: the one way to fail before listening
    worker: ['--data', 'no-such-data-dir'],
  };
  // these work outside a repository by design
  const WORK_OUTSIDE = new Set(['install', 'uninstall']);

  it.each(names.filter((n) => !WORK_OUTSIDE.has(n)))('%s outside a repository: exit 1/2 with a message', (name) => {
    const r = dits([name, ...(OUTSIDE[name] ?? [])], outside);
    expectCleanFailure(r, `${name} outside a repository`);
  });
});

describe('specific mistakes', () => {
  const cases: [string, string[]][] = [
    ['fetch --dry-run <bad rev>', ['fetch', '--dry-run', 'no-such-rev']],
    ['ls-files --rev <bad rev>', ['ls-files', '--rev', 'no-such-rev']],
    ['push --dry-run <remote> <bad rev>', ['push', '--dry-run', 'origin', 'no-such-rev']],
    ['deps <missing file>', ['deps', 'missing.fcpxml']],
    ['gc --prune=<bad age>', ['gc', '--prune=soon']],
    ['prune --older-than <bad age>', ['prune', '--older-than', 'ages']],
    ['prune --max-local-size <bad size>', ['prune', '--max-local-size', 'lots']],
    ['serve --port <bad port>', ['serve', '--port', 'http']],
    ['serve --tier-schedule <bad time>', ['serve', '--port', '0', '--tier-schedule', '25:00']],
    ['serve --mirror-schedule <bad schedule>', ['serve', '--port', '0', '--mirror', '/tmp', '--mirror-schedule', '25:00']],
    ['serve --mirror <a Dits server>', ['serve', '--port', '0', '--mirror', 'dits::http://127.0.0.1:9/team/film']],
    ['an unknown command', ['staus']],
  ];
  beforeAll(() => {
    const remote = path.join(sb.dir, 'remote');
    fs.mkdirSync(remote, { recursive: true });
    sb.mustGit(['remote', 'add', 'origin', `dits::file://${remote}`], repo);
  });
  it.each(cases)('%s', (_what, args) => {
    expectCleanFailure(dits(args, repo), args.join(' '));
  });

  it('fetch --dry-run -- <dir> reads the directory as a path, not as a revision', () => {
    fs.mkdirSync(path.join(repo, 'footage'), { recursive: true });
    const r = dits(['fetch', '--dry-run', '--', 'footage'], repo);
    expect(r.stderr).not.toMatch(/internal error|^\s+at /m);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('for 0 file(s) at HEAD');
    const all = dits(['fetch', '--dry-run', 'HEAD', '--', 'a.bin'], repo);
    expect(all.status, all.stderr).toBe(0);
    expect(all.stdout).toContain('for 1 file(s) at HEAD');
  });

  it('suggests the nearest command and option', () => {
    const c = dits(['staus'], repo);
    expect(c.status).toBe(2);
    expect(c.stderr).toContain('git dits status');
    const o = dits(['status', '--jsn'], repo);
    expect(o.status).toBe(2);
    expect(o.stderr).toContain('--json');
    const s = dits(['server', 'tokn', 'create', 'a', 'b'], repo);
    expect(s.status).toBe(2);
    expect(s.stderr).toContain('server token create');
  });
});

describe('--help', () => {
  it.each(names)('%s --help lists every declared option, one line each', async (name) => {
    const cmd = await loadCommand(name);
    const r = dits([name, '--help'], repo);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('usage: ');
    for (const [opt, spec] of Object.entries(cmd.options ?? {})) {
      const line = r.stdout.split('\n').find((l) => l.includes(`--${opt}`) && l.startsWith('  '));
      expect(line, `${name} --help lacks --${opt}`).toBeDefined();
      expect(r.stdout).toContain(spec.description);
    }
  });

  it('every subcommand of server lists its own options and the common ones', async () => {
    const server = await loadCommand('server');
    for (const [sub, spec] of Object.entries(server.subcommands ?? {})) {
      const r = dits(['server', ...sub.split(' '), '--help'], repo);
      expect(r.status, sub).toBe(0);
      expect(r.stdout, sub).toContain(`usage: ${spec.usage}`);
      for (const opt of Object.keys({ ...spec.options, ...server.options })) expect(r.stdout, `${sub} --${opt}`).toMatch(new RegExp(`^ +(-\\w, )?--${opt}\\b`, 'm'));
    }
  });

  it('a subcommand of server prints its own help, not the whole server usage', () => {
    const r = dits(['server', 'token', 'create', '--help'], repo);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: git dits server token create/);
    expect(r.stdout).toContain('--url');
    expect(r.stdout).not.toContain('repo delete');
    expect(r.stdout).not.toContain('grant');
  });
});

describe('settings', () => {
  it('git config dits.concurrency abc: a command fails naming the key and the accepted values', () => {
    const r = sb.repo('bad-config', { track: ['*.bin'], files: { 'b.bin': 'x' } });
    sb.mustGit(['config', 'dits.concurrency', 'abc'], r);
    const add = dits(['add', 'b.bin'], r);
    expectCleanFailure(add, 'add with dits.concurrency abc');
    expect(add.stderr).toContain('dits.concurrency');
    expect(add.stderr).toContain('a whole number from 1 to 64');
  });

  it('git config dits.fsync yes is accepted (Git booleans), an unknown word is not', () => {
    const r = sb.repo('fsync-config', { track: ['*.bin'], files: { 'c.bin': 'y' } });
    sb.mustGit(['config', 'dits.fsync', 'yes'], r);
    const ok = dits(['add', 'c.bin'], r);
    expect(ok.status, ok.stderr).toBe(0);
    sb.mustGit(['config', 'dits.fsync', 'sometimes'], r);
    writeFile(path.join(r, 'c.bin'), 'z');
    const bad = dits(['add', 'c.bin'], r);
    expectCleanFailure(bad, 'add with dits.fsync sometimes');
    expect(bad.stderr).toContain('dits.fsync');
    expect(bad.stderr).toContain('true/yes/on/1 or false/no/off/0');
  });
});

/** Runs git-dits without blocking the test's event loop (to overlap two of them). */
function ditsAsync(args: string[], cwd: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(DITS_BIN, args, { cwd, env: sb.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
}

describe('environment faults', () => {
  it('git dits add waits for another process\'s index.lock, and names it if it stays', async () => {
    const r = sb.repo('index-lock', { track: ['*.bin'], files: { 'a.bin': 'one', 'b.txt': 'plain' } });
    const lock = path.join(r, '.git', 'index.lock');
    fs.writeFileSync(lock, '');
    // another "git" lets go of the lock after 1.5 s
    const release = spawn('sh', ['-c', `sleep 1.5; rm -f '${lock}'`], { stdio: 'ignore' });
    const released = new Promise((resolve) => release.on('close', resolve));
    const waited = await ditsAsync(['add', 'a.bin', 'b.txt'], r);
    await released;
    expect(waited.status, waited.stderr).toBe(0);
    expect(sb.mustGit(['ls-files', '--stage'], r)).toContain('a.bin');

    fs.writeFileSync(lock, '');
    writeFile(path.join(r, 'a.bin'), 'two');
    const held = dits(['add', 'a.bin'], r);
    fs.rmSync(lock);
    expectCleanFailure(held, 'add with index.lock held');
    expect(held.stderr).toContain('index.lock');
    expect(held.stderr).toContain('hint: wait for the other git command');
  });

  it('two git dits add at once both succeed', async () => {
    const r = sb.repo('two-adds', { track: ['*.bin'] });
    for (let round = 0; round < 4; round++) {
      const files = Array.from({ length: 2 }, (_, i) => {
        const name = `f${round}-${i}.bin`;
        writeFile(path.join(r, name), `round ${round} file ${i}\n`.repeat(1000));
        return name;
      });
      const results = await Promise.all(files.map((f) => ditsAsync(['add', f], r)));
      for (const x of results) {
        expect(x.stderr).not.toMatch(/internal error/);
        expect(x.status, x.stderr).toBe(0);
      }
    }
    const staged = sb.mustGit(['ls-files'], r);
    for (let round = 0; round < 4; round++) for (let i = 0; i < 2; i++) expect(staged).toContain(`f${round}-${i}.bin`);
  });

  it('a file where a store directory should be: exit 1 naming it', () => {
    const r = sb.repo('file-for-dir', { track: ['*.bin'], files: { 'a.bin': 'x' } });
    const tmp = path.join(r, '.git', 'dits', 'tmp');
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.writeFileSync(tmp, '');
    for (const args of [['add', 'a.bin'], ['status'], ['gc', '--prune=now']]) {
      const x = dits(args, r);
      expectCleanFailure(x, args.join(' '));
      expect(x.stderr).toContain(tmp);
    }
  });

  /**
   * A read-only .git/dits that holds even for root: the immutable attribute (chattr +i),
   * else a read-only bind mount; skipped where neither is possible.
   */
  function makeReadOnly(dir: string): (() => void) | null {
    if (spawnSync('chattr', ['+i', dir]).status === 0) return () => void spawnSync('chattr', ['-i', dir]);
    if (spawnSync('mount', ['--bind', dir, dir]).status === 0) {
      if (spawnSync('mount', ['-o', 'remount,bind,ro', dir]).status === 0) return () => void spawnSync('umount', [dir]);
      spawnSync('umount', [dir]);
    }
    return null;
  }

  it('a read-only .git/dits: every store command exits 1 saying what to do', (ctx) => {
    const r = sb.repo('read-only', { track: ['*.bin'], files: { 'a.bin': 'x' } });
    sb.mustDits(['add', 'a.bin'], r);
    const dir = path.join(r, '.git', 'dits');
    const undo = makeReadOnly(dir);
    if (!undo) return ctx.skip();
    try {
      // writable for a normal user's chmod, so the test also means something as root
      const probe = spawnSync('sh', ['-c', `touch '${dir}/probe'`]);
      expect(probe.status, 'the directory should refuse new files').not.toBe(0);
      writeFile(path.join(r, 'a.bin'), 'changed');
      for (const args of [['add', 'a.bin'], ['status'], ['ls-files'], ['du'], ['fsck'], ['gc', '--prune=now']]) {
        const x = dits(args, r);
        expectCleanFailure(x, `${args.join(' ')} with a read-only .git/dits`);
        expect(x.stderr).toContain('.git/dits');
      }
    } finally {
      undo();
    }
  });
});

describe('a store being written by another process', () => {
  it('git dits add waits while another process holds the store\'s write lock, then goes on', async () => {
    const r = sb.repo('busy-store', { track: ['*.bin'], files: { 'a.bin': 'first' } });
    sb.mustDits(['add', 'a.bin'], r);
    writeFile(path.join(r, 'a.bin'), 'second version');
    // another process takes the write lock of .git/dits/index.sqlite for 3 s
    const holder = spawn(
      process.execPath,
      [
        '-e',
        `const D = require(${JSON.stringify(path.join(ROOT, 'node_modules', 'better-sqlite3'))});
         const db = new D(${JSON.stringify(path.join(r, '.git', 'dits', 'index.sqlite'))});
         db.exec('BEGIN IMMEDIATE'); process.stdout.write('locked\\n');
         setTimeout(() => { db.exec('ROLLBACK'); db.close(); }, 3000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const done = new Promise((resolve) => holder.on('close', resolve));
    await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
    const started = Date.now();
    const add = await ditsAsync(['add', 'a.bin'], r);
    await done;
    expect(add.status, add.stderr).toBe(0);
    expect(Date.now() - started).toBeGreaterThan(2000); // it did wait for the lock
    expect(sb.mustDits(['status', '--json'], r)).toContain('a.bin');
  });
});
