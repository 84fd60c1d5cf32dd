/**
 * Spawning git. Every call names its cwd; output is returned, never printed.
 * A non-zero exit throws GitError carrying git's stderr, unless `allowFail` is set.
 */
import { spawn } from 'node:child_process';

export class GitError extends Error {
  readonly code = 'git-failed';
  constructor(
    readonly args: string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`git ${args.join(' ')} failed (exit ${exitCode}): ${stderr.trim()}`);
  }
}

export interface GitRunOptions {
  cwd: string;
  input?: Buffer | string;
  env?: NodeJS.ProcessEnv;
  allowFail?: boolean;
}

export interface GitResult {
  stdout: Buffer;
  stderr: string;
  exitCode: number;
}

export function runGit(args: string[], opts: GitRunOptions): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      const res = { stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8'), exitCode: code ?? -1 };
      if (code !== 0 && !opts.allowFail) reject(new GitError(args, code, res.stderr));
      else resolve(res);
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

export async function gitText(args: string[], opts: GitRunOptions): Promise<string> {
  return (await runGit(args, opts)).stdout.toString('utf8').replace(/\n$/, '');
}

/** A value from git config, or undefined when unset. */
export async function gitConfigGet(key: string, cwd: string, extra: string[] = []): Promise<string | undefined> {
  const r = await runGit(['config', ...extra, '--get', key], { cwd, allowFail: true });
  return r.exitCode === 0 ? r.stdout.toString('utf8').replace(/\n$/, '') : undefined;
}

/** Every git config entry whose key matches `pattern`, keys as git prints them (lowercased sections and names). */
export async function gitConfigMap(cwd: string, pattern: string): Promise<Map<string, string>> {
  const r = await runGit(['config', '-z', '--get-regexp', pattern], { cwd, allowFail: true });
  const kv = new Map<string, string>();
  for (const rec of r.stdout.toString('utf8').split('\0')) {
    const nl = rec.indexOf('\n');
    if (nl > 0) kv.set(rec.slice(0, nl), rec.slice(nl + 1));
  }
  return kv;
}
