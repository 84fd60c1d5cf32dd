/**
 * The git-dits command line: the only place that reads argv, prints, and sets exit codes.
 * Each command lives in commands/<name>.ts and is imported only when run, so heavy
 * modules load only for the commands that need them.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DitsUserError, isUserError } from '../errors.js';
import type { CliContext } from './context.js';
import { OPTION_ERROR_CODES, nearest, renderHelp, type OptionTable } from './options.js';
import { describeFault } from './faults.js';

export interface Subcommand {
  summary: string;
  usage: string;
  /** This subcommand's options (with the command's own `options`, which every subcommand takes). */
  options?: OptionTable;
}

export interface Command {
  summary: string;
  usage: string;
  /** The options `run` parses (with parseOptions), for `--help` and the manual page. */
  options?: OptionTable;
  /** `git dits server token create`: subcommand words -> their own usage and options. */
  subcommands?: Readonly<Record<string, Subcommand>>;
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
  mirror: 'mirror',
  gc: 'gc',
  checkout: 'checkout',
  proxy: 'proxy',
  'fetch-proxy': 'proxy',
  pull: 'checkout',
  push: 'remote-content',
  fetch: 'remote-content',
  prune: 'remote-content',
  inspect: 'inspect',
  deps: 'deps',
  render: 'render',
  thaw: 'thaw',
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
  worker: 'worker',
  tier: 'tier',
  mount: 'mount',
  umount: 'mount',
  'commit-mount': 'mount',
  snapshot: 'snapshot',
  schedule: 'schedule',
  lifecycle: 'schedule',
  graduate: 'graduate',
  hydrate: 'graduate',
};

const HIDDEN = new Set(['filter-process', 'clean', 'smudge', 'textconv', 'merge-driver', 'hook', 'diff-driver']);

export async function loadCommand(name: string): Promise<Command> {
  const file = COMMANDS[name];
  if (!file) {
    const near = name.startsWith('-') ? undefined : nearest(name, Object.keys(COMMANDS).filter((c) => !HIDDEN.has(c)));
    const what = name.startsWith('-') ? `unknown option '${name}'` : `'${name}' is not a git dits command`;
    throw new DitsUserError('unknown-command', what, { hint: near ? `did you mean \`git dits ${near}\`? (\`git dits --help\` lists the commands)` : 'see `git dits --help`', exitCode: 2 });
  }
  const mod = (await import(`./commands/${file}.js`)) as { commands: Record<string, Command> };
  const cmd = mod.commands[name];
  if (!cmd) throw new Error(`command module ${file} lacks ${name}`);
  return cmd;
}

export const VERSION = '0.1.0';

/** Every command name, those git runs included (tests run each one). */
export function commandNames(): { name: string; hidden: boolean }[] {
  return Object.keys(COMMANDS).map((name) => ({ name, hidden: HIDDEN.has(name) }));
}

/** The commands a user runs (not those git runs), with their usage, summary and options. */
export async function visibleCommands(): Promise<{ name: string; usage: string; summary: string; options?: OptionTable; subcommands?: Readonly<Record<string, Subcommand>> }[]> {
  const out = [];
  for (const name of Object.keys(COMMANDS)) {
    if (HIDDEN.has(name)) continue;
    const c = await loadCommand(name);
    out.push({ name, usage: c.usage, summary: c.summary, options: c.options, subcommands: c.subcommands });
  }
  return out;
}

/** The words of `args` that name a subcommand of `cmd` (`token create`), skipping options and their values. */
export function subcommandOf(cmd: Command, args: string[]): string | undefined {
  if (!cmd.subcommands) return undefined;
  const takesValue = new Set<string>();
  for (const table of [cmd.options, ...Object.values(cmd.subcommands).map((s) => s.options)]) {
    for (const [k, o] of Object.entries(table ?? {})) {
      if (o.type !== 'string') continue;
      takesValue.add(`--${k}`);
      if (o.short) takesValue.add(`-${o.short}`);
    }
  }
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) {
      if (takesValue.has(a)) i++;
      continue;
    }
    words.push(a);
  }
  for (let n = words.length; n > 0; n--) {
    const key = words.slice(0, n).join(' ');
    if (cmd.subcommands[key]) return key;
  }
  return undefined;
}

/** `git dits <name> --help`: the command's (or the named subcommand's) usage, summary and options. */
export function commandHelp(name: string, cmd: Command, args: string[] = []): string {
  const sub = subcommandOf(cmd, args);
  if (sub !== undefined) {
    const s = cmd.subcommands![sub]!;
    return renderHelp(s.usage, s.summary, { ...s.options, ...cmd.options });
  }
  const extra = cmd.subcommands
    ? ['Subcommands (each has its own --help):', ...Object.entries(cmd.subcommands).map(([k, s]) => `  ${k.padEnd(14)} ${s.summary}`)]
    : [];
  return renderHelp(cmd.usage, cmd.summary, cmd.options, extra);
}

async function mainHelp(): Promise<string> {
  const lines = ['usage: git dits <command> [options]', '', 'Commands:'];
  const commands = await visibleCommands();
  const width = Math.max(...commands.map((c) => c.name.length));
  for (const c of commands) lines.push(`  ${c.name.padEnd(width)} ${c.summary}`);
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
    const options = rest.indexOf('--') < 0 ? rest : rest.slice(0, rest.indexOf('--'));
    if (options.includes('--help') || options.includes('-h')) {
      ctx.stdout.write(commandHelp(name, cmd, rest));
      return 0;
    }
    try {
      return await cmd.run(rest, ctx);
    } catch (e) {
      // an option error names the command whose --help lists the options
      if (isUserError(e) && OPTION_ERROR_CODES.has(e.code)) {
        const sub = subcommandOf(cmd, rest);
        const help = `\`git dits ${name}${sub ? ` ${sub}` : ''} --help\` lists the options`;
        throw new DitsUserError(e.code, e.message, { hint: e.hint && !e.hint.startsWith('see --help') ? `${e.hint}${e.hint.endsWith('?') ? '' : ';'} ${help}` : help, exitCode: e.exitCode });
      }
      throw e;
    }
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
  // the disk, the file system or another process, not a bug: say which and what to do
  const fault = describeFault(e);
  if (fault) {
    ctx.stderr.write(`error: ${fault.message}\n`);
    ctx.stderr.write(`hint: ${fault.hint}\n`);
    return 1;
  }
  ctx.stderr.write(`dits: internal error (please report it): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return 70;
}
