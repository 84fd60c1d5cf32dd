/**
 * What a command gets from the outside world, so commands can be driven in tests:
 * cwd, env, output streams, whether stderr is a terminal.
 */
import type { Writable } from 'node:stream';

export interface CliContext {
  cwd: string;
  env: NodeJS.ProcessEnv;
  stdout: Writable;
  stderr: Writable;
  stdin: NodeJS.ReadableStream;
  /**
   * The descriptor behind stdin when it is the process's own (0), so a command can read it
   * directly (the filter process reads git's pipe on its own thread); absent in tests.
   */
  stdinFd?: number;
  /** Progress bars only on a terminal, and never with CI=true. */
  interactive: boolean;
  /** Absolute path of the git-dits entry script (for hooks and filter config). */
  ditsBin: string;
}

export function out(ctx: CliContext, text: string): void {
  ctx.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

export function err(ctx: CliContext, text: string): void {
  ctx.stderr.write(text.endsWith('\n') ? text : text + '\n');
}

export function printJson(ctx: CliContext, value: unknown): void {
  ctx.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}
