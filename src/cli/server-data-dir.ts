/** Where the Dits server keeps its SQLite and content by default: `git dits serve` and `git dits server ...`. */
import os from 'node:os';
import path from 'node:path';
import type { CliContext } from './context.js';

/** `$XDG_DATA_HOME/dits-server`, else `~/.local/share/dits-server`. */
export function defaultDataDir(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_DATA_HOME;
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'dits-server');
  return path.join(env.HOME || os.homedir(), '.local', 'share', 'dits-server');
}

export function resolveDataDir(ctx: CliContext, given: string | undefined): string {
  return given === undefined ? defaultDataDir(ctx.env) : path.resolve(ctx.cwd, given);
}
