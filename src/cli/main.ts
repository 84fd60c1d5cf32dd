/**
 * The git-dits command line: the only place that reads argv, prints, and sets exit codes.
 * Each command lives in commands/<name>.ts and is imported only when run, so heavy
 * modules load only for the commands that need them.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DitsUserError, isUserError } from '../errors.js';
import type { CliContext } from './context.js';

export interface Command {
  summary: string;
  usage: string;
  run(args: string[], ctx: CliContext): Promise<number>;
}

/** name -> module under ./commands (lazy). */
const COMMANDS: Record<string, string> = {
  install: 'install',
  uninstall: 'install',
  init: 'init',
  track: 'track',
  untrack: 'track',
  add: 'add',
  status: 'status',
  'ls-files': 'ls-files',
  du: 'du',
  fsck: 'fsck',
  gc: 'gc',
  checkout: 'checkout',
  pull: 'checkout',
  push: 'remote-content',
  fetch: 'remote-content',
  prune: 'remote-content',
  inspect: 'inspect',
  deps: 'deps',
  'diff-driver': 'diff-driver',
  'filter-process': 'filter-process',
  clean: 'filter-process',
  smudge: 'filter-process',
  textconv: 'textconv',
  'merge-driver': 'merge-driver',
  hook: 'hook',
  lock: 'lock',
  unlock: 'lock',
  locks: 'lock',
  serve: 'serve',
  server: 'server-admin',
};

const HIDDEN = new Set(['filter-process', 'clean', 'smudge', 'textconv', 'merge-driver', 'hook', 'diff-driver']);

export async function loadCommand(name: string): Promise<Command> {
  const file = COMMANDS[name];
  if (!file) throw new DitsUserError('unknown-command', `'${name}' is not a git dits command`, { hint: 'see `git dits --help`' });
  const mod = (await import(`./commands/${file}.js`)) as { commands: Record<string, Command> };
  const cmd = mod.commands[name];
  if (!cmd) throw new Error(`command module ${file} lacks ${name}`);
  return cmd;
}

export const VERSION = '0.1.0';

/** The commands a user runs (not those git runs), with their usage and summary lines. */
export async function visibleCommands(): Promise<{ name: string; usage: string; summary: string }[]> {
  const out = [];
  for (const name of Object.keys(COMMANDS)) {
    if (HIDDEN.has(name)) continue;
    const c = await loadCommand(name);
    out.push({ name, usage: c.usage, summary: c.summary });
  }
  return out;
}

async function mainHelp(): Promise<string> {
  const lines = ['usage: git dits <command> [options]', '', 'Commands:'];
  for (const c of await visibleCommands()) lines.push(`  ${c.name.padEnd(10)} ${c.summary}`);
  lines.push('', 'Run `git dits <command> --help` for the options of a command.');
  return lines.join('\n');
}

export function defaultContext(): CliContext {
  const ditsBin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/git-dits');
  return {
    cwd: process.cwd(),
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
    // created on first use: process.stdin makes fd 0 non-blocking, which a direct reader must not see
    get stdin() {
      return process.stdin;
    },
    stdinFd: 0,
    interactive: Boolean(process.stderr.isTTY) && process.env.CI !== 'true',
    ditsBin,
  };
}

export async function runCli(argv: string[], ctx: CliContext): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (!name || name === '--help' || name === '-h' || name === 'help') {
      if (name === 'help' && rest[0]) return runCli([rest[0], '--help'], ctx);
      ctx.stdout.write((await mainHelp()) + '\n');
      return name ? 0 : 1;
    }
    if (name === '--version' || name === 'version') {
      ctx.stdout.write(`git-dits ${VERSION}\n`);
      return 0;
    }
    const cmd = await loadCommand(name);
    if (rest.includes('--help') || rest.includes('-h')) {
      ctx.stdout.write(`usage: ${cmd.usage}\n\n${cmd.summary}\n`);
      return 0;
    }
    return await cmd.run(rest, ctx);
  } catch (e) {
    return reportError(ctx, e);
  }
}

export function reportError(ctx: CliContext, e: unknown): number {
  if (isUserError(e)) {
    ctx.stderr.write(`error: ${e.message}\n`);
    if (e.hint) ctx.stderr.write(`hint: ${e.hint}\n`);
    return e.exitCode;
  }
  const code = (e as { code?: string }).code;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    ctx.stderr.write(`error: ${(e as Error).message}\nhint: see \`git dits <command> --help\`\n`);
    return 2;
  }
  ctx.stderr.write(`dits: internal error (please report it): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return 70;
}
