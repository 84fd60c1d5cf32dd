/**
 * Running the tools under test as child processes: wall-clock time from spawn to exit,
 * optionally with the process tree's peak memory. A non-zero exit throws with the
 * command's stderr, so a failing tool never turns into a figure.
 */
import { spawn } from 'node:child_process';
import { watchTreeMemory, type TreeMemoryPeak } from './proc-tree-memory.js';

export interface RunOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  input?: string | Buffer;
  /** Sample the process tree's memory every this many ms (off when undefined). */
  memoryIntervalMs?: number;
}

export interface RunOutcome {
  seconds: number;
  stdout: string;
  stderr: string;
  memory?: TreeMemoryPeak;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly status: number | null,
    readonly stderr: string,
  ) {
    super(`${command} failed (exit ${status}):\n${stderr.slice(-4000)}`);
  }
}

const KEEP = 1 << 20;

export function run(cmd: string, args: readonly string[], opts: RunOptions): Promise<RunOutcome> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    const watch = opts.memoryIntervalMs !== undefined && child.pid !== undefined ? watchTreeMemory(child.pid, opts.memoryIntervalMs) : null;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    child.stdout!.on('data', (b: Buffer) => {
      if (outLen < KEEP) out.push(b);
      outLen += b.length;
    });
    child.stderr!.on('data', (b: Buffer) => {
      if (errLen < KEEP) err.push(b);
      errLen += b.length;
    });
    child.on('error', (e) => {
      watch?.stop();
      reject(e);
    });
    // Time and memory end when the command exits; output is complete at 'close' (later
    // only if something the command left behind still holds its pipes).
    let seconds = 0;
    let memory: TreeMemoryPeak | undefined;
    child.on('exit', () => {
      seconds = Number(process.hrtime.bigint() - started) / 1e9;
      memory = watch?.stop();
    });
    child.on('close', (status) => {
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      const label = [cmd, ...args].join(' ');
      if (status !== 0) reject(new CommandError(label, status, stderr + stdout));
      else resolve({ seconds, stdout, stderr, ...(memory ? { memory } : {}) });
    });
    if (child.stdin) {
      // A command that exits without reading its input is not an error here.
      child.stdin.on('error', () => {});
      child.stdin.end(opts.input);
    }
  });
}
