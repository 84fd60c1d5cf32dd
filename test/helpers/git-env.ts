/**
 * A sandbox for driving real git with Dits: a temp HOME with its own global config
 * (so nothing touches the user's), PATH with this checkout's bin/, and helpers to run git
 * and git-dits in temp repositories built from inline file trees.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Longest any one command of a test may run. */
const COMMAND_TIMEOUT_MS = 100_000;

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DITS_BIN = path.join(ROOT, 'bin', 'git-dits');

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

export class GitSandbox {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;

  /** `install: false` leaves the temp HOME without `git dits install` (a machine where it never ran). */
  constructor(prefix = 'dits-test-', opts: { install?: boolean } = {}) {
    this.dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
    const home = path.join(this.dir, 'home');
    fs.mkdirSync(home);
    this.env = {
      ...process.env,
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, '.config'),
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_AUTHOR_NAME: 'Test',
      GIT_AUTHOR_EMAIL: 'test@example.com',
      GIT_COMMITTER_NAME: 'Test',
      GIT_COMMITTER_EMAIL: 'test@example.com',
      PATH: `${path.join(ROOT, 'bin')}:${process.env.PATH}`,
      CI: 'true',
    };
    delete this.env.GIT_DIR;
    delete this.env.GIT_WORK_TREE;
    this.mustGit(['config', '--global', 'init.defaultBranch', 'main'], this.dir);
    this.mustGit(['config', '--global', 'advice.detachedHead', 'false'], this.dir);
    if (opts.install !== false) this.mustDits(['install'], this.dir);
  }

  run(cmd: string, args: string[], cwd: string, input?: string | Buffer, extraEnv: NodeJS.ProcessEnv = {}): RunResult {
    // a command that hangs fails its test instead of holding the whole run (spawnSync blocks vitest's own timeout)
    const r: SpawnSyncReturns<Buffer> = spawnSync(cmd, args, { cwd, env: { ...this.env, ...extraEnv }, input, maxBuffer: 1 << 30, timeout: COMMAND_TIMEOUT_MS, killSignal: 'SIGKILL' });
    if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}${r.signal ? ` (${r.signal} after ${COMMAND_TIMEOUT_MS / 1000} s: hung?)` : ''}`);
    return { status: r.status ?? -1, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8') };
  }

  git(args: string[], cwd: string, input?: string | Buffer, extraEnv?: NodeJS.ProcessEnv): RunResult {
    return this.run('git', args, cwd, input, extraEnv);
  }

  mustGit(args: string[], cwd: string, input?: string | Buffer, extraEnv?: NodeJS.ProcessEnv): string {
    const r = this.git(args, cwd, input, extraEnv);
    if (r.status !== 0) throw new Error(`git ${args.join(' ')} failed (${r.status}):\n${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  dits(args: string[], cwd: string, input?: string | Buffer): RunResult {
    return this.run(DITS_BIN, args, cwd, input);
  }

  mustDits(args: string[], cwd: string, input?: string | Buffer): string {
    const r = this.dits(args, cwd, input);
    if (r.status !== 0) throw new Error(`git dits ${args.join(' ')} failed (${r.status}):\n${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** A new repository with Dits initialised, tracking `patterns`, and the given files. */
  repo(name: string, opts: { track?: string[]; files?: Record<string, string | Buffer>; config?: Record<string, string> } = {}): string {
    const dir = path.join(this.dir, name);
    this.mustGit(['init', '-q', dir], this.dir);
    for (const [k, v] of Object.entries(opts.config ?? {})) this.mustGit(['config', k, v], dir);
    this.mustDits(['init'], dir);
    if (opts.track?.length) this.mustDits(['track', ...opts.track], dir);
    for (const [p, content] of Object.entries(opts.files ?? {})) writeFile(path.join(dir, p), content);
    return dir;
  }

  /** `git status --porcelain` (empty when clean). */
  status(repo: string): string {
    return this.mustGit(['status', '--porcelain'], repo);
  }

  cleanup(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export function writeFile(file: string, content: string | Buffer): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
}

/** Deterministic pseudo-random bytes (xorshift32), fast enough for tens of MB. */
export function randomBytesSeeded(n: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  for (; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function pointerOf(sb: GitSandbox, repo: string, rev: string, file: string): string {
  return sb.mustGit(['cat-file', 'blob', `${rev}:${file}`], repo);
}

/** Small chunks and packs, so a few hundred KB exercise many chunks and several packs. */
export const SMALL_CHUNKS = { 'dits.chunkMin': '1024', 'dits.chunkAvg': '4096', 'dits.chunkMax': '16384', 'dits.smudgeInlineMax': '64k', 'dits.packSize': '256k' };

/** `git clone -q` of `url` into `<sandbox>/<dir>` with `config` set in the new repository. */
export function cloneInto(sb: GitSandbox, url: string, dir: string, config: Record<string, string>, extra: string[] = []): string {
  const dest = path.join(sb.dir, dir);
  const args = ['clone', '-q', ...extra];
  for (const [k, v] of Object.entries(config)) args.push('-c', `${k}=${v}`);
  sb.mustGit([...args, url, dest], sb.dir);
  return dest;
}
