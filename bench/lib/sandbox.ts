/**
 * A place to run git, Dits and the peers as a user would, without touching the user's
 * configuration: a temp HOME with its own global git config (GIT_CONFIG_NOSYSTEM), this
 * checkout's bin/ first on PATH, and `git dits install` done once in that HOME.
 */
import fs from 'node:fs';
import path from 'node:path';
import { run, type RunOutcome } from './exec.js';

export interface Sandbox {
  /** Root folder of this sandbox; repositories are made under it. */
  dir: string;
  env: NodeJS.ProcessEnv;
  run(cmd: string, args: readonly string[], cwd: string, opts?: { memoryIntervalMs?: number; env?: NodeJS.ProcessEnv; input?: string | Buffer }): Promise<RunOutcome>;
  /** A fresh folder under the sandbox (removed first if it exists). */
  freshDir(name: string): string;
  remove(p: string): void;
}

export async function createSandbox(dir: string, binDir: string): Promise<Sandbox> {
  fs.rmSync(dir, { recursive: true, force: true });
  const home = path.join(dir, 'home');
  fs.mkdirSync(home, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    XDG_CACHE_HOME: path.join(home, '.cache'),
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_AUTHOR_NAME: 'Bench',
    GIT_AUTHOR_EMAIL: 'bench@example.com',
    GIT_COMMITTER_NAME: 'Bench',
    GIT_COMMITTER_EMAIL: 'bench@example.com',
    GIT_TERMINAL_PROMPT: '0',
    PATH: `${binDir}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    // No progress bars from Dits: the benchmark reads its output.
    CI: 'true',
  };
  for (const k of ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_CONFIG_GLOBAL', 'GIT_CONFIG', 'GIT_LFS_PROGRESS']) delete env[k];
  const sb: Sandbox = {
    dir,
    env,
    run: (cmd, args, cwd, opts = {}) =>
      run(cmd, args, {
        cwd,
        env: opts.env ? { ...env, ...opts.env } : env,
        ...(opts.memoryIntervalMs !== undefined ? { memoryIntervalMs: opts.memoryIntervalMs } : {}),
        ...(opts.input !== undefined ? { input: opts.input } : {}),
      }),
    freshDir(name) {
      const p = path.join(dir, name);
      sb.remove(p);
      fs.mkdirSync(p, { recursive: true });
      return p;
    },
    remove(p) {
      // git-annex leaves read-only folders; as a non-root user rm needs them writable.
      if (fs.existsSync(p)) {
        try {
          makeWritable(p);
        } catch {
          // best effort; rmSync reports what is left
        }
        fs.rmSync(p, { recursive: true, force: true });
      }
    },
  };
  await sb.run('git', ['config', '--global', 'init.defaultBranch', 'main'], dir);
  await sb.run('git', ['config', '--global', 'advice.detachedHead', 'false'], dir);
  await sb.run('git', ['config', '--global', 'gc.auto', '0'], dir);
  await sb.run('git-dits', ['install'], dir);
  return sb;
}

function makeWritable(p: string): void {
  const st = fs.lstatSync(p);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) {
    fs.chmodSync(p, st.mode | 0o700);
    for (const e of fs.readdirSync(p)) makeWritable(path.join(p, e));
  }
}
