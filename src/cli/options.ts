/**
 * Command-line options: each command declares its options in a table (name, type, short
 * letter, description, default), parses its arguments with `parseOptions` (node's
 * util.parseArgs, strict), and `--help` and the manual page are rendered from the same
 * table, so they cannot drift from what is parsed. Why not yargs: see the README
 * ("Command-line parsing"); in short, it adds tens of milliseconds to every start, and
 * every filter and hook invocation pays the start.
 */
import { parseArgs } from 'node:util';
import { DitsUserError } from '../errors.js';

export interface OptionSpec {
  type: 'boolean' | 'string';
  /** One letter: `-f` for `--force`. */
  short?: string;
  /** One line, starting in lower case, for `--help` and the manual page. */
  description: string;
  /** Applied when the option is not given, and shown in `--help`. */
  default?: string | boolean;
  /** The value's placeholder in help (`--prune <age>`); string options only. */
  value?: string;
}

export type OptionTable = Readonly<Record<string, OptionSpec>>;

export type OptionValues<T extends OptionTable> = { [K in keyof T]?: T[K]['type'] extends 'boolean' ? boolean : string };

/** Codes of the errors parseOptions throws: the CLI points their hint at the command's --help. */
export const OPTION_ERROR_CODES: ReadonlySet<string> = new Set(['unknown-option', 'bad-option-value', 'unexpected-argument']);

/** Levenshtein distance (insert, delete, substitute: 1 each). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * The candidate nearest to `word`, if near enough to be a typo: at most a third of the
 * word's length in edits (at least 1, at most 3), or a prefix of a single candidate.
 */
export function nearest(word: string, candidates: Iterable<string>): string | undefined {
  const list = [...candidates];
  const limit = Math.max(1, Math.min(3, Math.floor(word.length / 3)));
  let best: string | undefined;
  let bestDist = Infinity;
  for (const c of list) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDist) {
      best = c;
      bestDist = d;
    }
  }
  if (best !== undefined && bestDist <= limit) return best;
  const prefixed = word.length >= 2 ? list.filter((c) => c.startsWith(word)) : [];
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

function optionNames(options: OptionTable): string[] {
  return [...Object.keys(options).map((k) => `--${k}`), ...Object.values(options).flatMap((o) => (o.short ? [`-${o.short}`] : [])), '--help'];
}

/** What the user typed for an option node's message names: `--jsn` from "Unknown option '--jsn'". */
function quotedOption(message: string): string | undefined {
  return /'(-[^' ]+)/.exec(message)?.[1];
}

/**
 * Parses `args` against `options` (strict: an unknown option, a missing value, or a value
 * for a boolean is an error; so is an argument when `positionals` is false). Errors are
 * DitsUserErrors with exit code 2 that suggest the nearest option.
 */
export function parseOptions<const T extends OptionTable>(
  args: string[],
  options: T,
  config: { positionals?: boolean } = {},
): {
  values: OptionValues<T>;
  positionals: string[];
  /** The positionals after `--` (also at the end of `positionals`); undefined when there was no `--`. */
  afterDashes?: string[];
} {
  const spec: Record<string, { type: 'boolean' | 'string'; short?: string; default?: string | boolean }> = {};
  for (const [name, o] of Object.entries(options)) {
    spec[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.default !== undefined ? { default: o.default } : {}) };
  }
  try {
    const r = parseArgs({ args, options: spec, allowPositionals: config.positionals === true, strict: true });
    const dashes = args.indexOf('--');
    return { values: r.values as OptionValues<T>, positionals: r.positionals, ...(dashes < 0 ? {} : { afterDashes: args.slice(dashes + 1) }) };
  } catch (e) {
    const code = (e as { code?: string }).code;
    const message = e instanceof Error ? e.message : String(e);
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const typed = quotedOption(message) ?? '?';
      const bare = typed.replace(/=.*$/, '');
      const near = nearest(bare, optionNames(options));
      throw new DitsUserError('unknown-option', `unknown option '${bare}'`, { hint: near ? `did you mean ${near}?` : 'see --help for the options', exitCode: 2 });
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const typed = quotedOption(message)?.replace(/=.*$/, '') ?? '';
      const name = Object.entries(options).find(([k, o]) => typed === `--${k}` || (o.short !== undefined && typed.startsWith(`-${o.short}`)));
      const what = name === undefined ? message : name[1].type === 'string' ? `option '--${name[0]}' needs a value` : `option '--${name[0]}' takes no value`;
      const hint = name !== undefined && name[1].type === 'string' ? `e.g. --${name[0]} ${name[1].value ?? '<value>'}` : 'see --help for the options';
      throw new DitsUserError('bad-option-value', what, { hint, exitCode: 2 });
    }
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const arg = /'([^']*)'/.exec(message)?.[1];
      throw new DitsUserError('unexpected-argument', `unexpected argument${arg ? ` '${arg}'` : ''}: this command takes only options`, { hint: 'see --help for the options', exitCode: 2 });
    }
    throw e;
  }
}

/** The option lines of `--help`: `  -f, --force        description (default: x)`. */
export function renderOptionLines(options: OptionTable | undefined): string[] {
  const rows: [string, string][] = [];
  for (const [name, o] of Object.entries(options ?? {})) {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.value ?? '<value>'}` : ''}`;
    const dflt = o.default !== undefined && o.default !== false ? ` [default: ${String(o.default)}]` : '';
    rows.push([flag, o.description + dflt]);
  }
  rows.push(['-h, --help', 'show this help']);
  const width = Math.min(30, Math.max(...rows.map(([f]) => f.length)));
  return rows.map(([f, d]) => (f.length > width ? `  ${f}\n  ${' '.repeat(width)}  ${d}` : `  ${f.padEnd(width)}  ${d}`));
}

/** A command's (or subcommand's) whole `--help` text. */
export function renderHelp(usage: string, summary: string, options: OptionTable | undefined, extra: string[] = []): string {
  return [`usage: ${usage}`, '', summary, '', 'Options:', ...renderOptionLines(options), ...(extra.length ? ['', ...extra] : [])].join('\n') + '\n';
}

/** "now", "0", "30m", "2h", "7d" -> milliseconds. */
export function parseAge(v: string): number {
  if (v === 'now') return 0;
  const m = /^(\d+)\s*(s|m|h|d|w)?$/.exec(v.trim());
  if (!m) throw new DitsUserError('bad-age', `cannot read the age '${v}'`, { hint: 'use now, 30m, 2h, 7d or 2w' });
  const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 }[(m[2] ?? 's') as 's'];
  return Number(m[1]) * unit;
}
