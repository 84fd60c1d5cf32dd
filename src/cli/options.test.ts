import { describe, expect, it } from 'vitest';
import { editDistance, nearest, parseOptions, renderHelp, type OptionTable } from './options.js';
import { DitsUserError } from '../errors.js';

const table = {
  json: { type: 'boolean', description: 'print the result as JSON' },
  force: { type: 'boolean', short: 'f', description: 'do it anyway' },
  prune: { type: 'string', value: '<age>', description: 'keep content newer than this', default: '1h' },
  remote: { type: 'string', value: '<name>', description: 'the remote' },
} as const satisfies OptionTable;

function thrown(f: () => unknown): DitsUserError {
  try {
    f();
  } catch (e) {
    if (e instanceof DitsUserError) return e;
    throw e;
  }
  throw new Error('did not throw');
}

describe('editDistance / nearest', () => {
  it('counts single-letter edits', () => {
    expect(editDistance('staus', 'status')).toBe(1);
    expect(editDistance('fecth', 'fetch')).toBe(2);
    expect(editDistance('', 'abc')).toBe(3);
  });
  it('suggests only what is near enough to be a typo', () => {
    expect(nearest('staus', ['status', 'add', 'track'])).toBe('status');
    expect(nearest('--jsn', ['--json', '--force'])).toBe('--json');
    expect(nearest('--remtoe', ['--remote', '--json'])).toBe('--remote');
    expect(nearest('frobnicate', ['status', 'add'])).toBeUndefined();
    expect(nearest('ls', ['ls-files', 'lock', 'locks'])).toBe('ls-files'); // the one command it starts
    expect(nearest('lo', ['ls-files', 'lock', 'locks'])).toBeUndefined(); // starts two: no guess
  });
});

describe('parseOptions', () => {
  it('parses declared options, applies defaults, keeps positionals and what follows --', () => {
    const r = parseOptions(['-f', '--remote', 'origin', 'HEAD', '--', 'a', '-b'], table, { positionals: true });
    expect(r.values.force).toBe(true);
    expect(r.values.remote).toBe('origin');
    expect(r.values.prune).toBe('1h');
    expect(r.values.json).toBeUndefined();
    expect(r.positionals).toEqual(['HEAD', 'a', '-b']);
    expect(r.afterDashes).toEqual(['a', '-b']);
    expect(parseOptions(['x'], table, { positionals: true }).afterDashes).toBeUndefined();
  });
  it('an unknown option: exit 2, suggesting the nearest', () => {
    const e = thrown(() => parseOptions(['--jsno'], table));
    expect(e.code).toBe('unknown-option');
    expect(e.exitCode).toBe(2);
    expect(e.message).toBe("unknown option '--jsno'");
    expect(e.hint).toContain('did you mean --json?');
    expect(thrown(() => parseOptions(['-x'], table)).message).toBe("unknown option '-x'");
  });
  it('a missing value, a value for a flag, an unexpected argument: exit 2', () => {
    const missing = thrown(() => parseOptions(['--remote'], table));
    expect(missing.message).toBe("option '--remote' needs a value");
    expect(missing.hint).toContain('--remote <name>');
    expect(thrown(() => parseOptions(['--json=yes'], table)).message).toBe("option '--json' takes no value");
    const extra = thrown(() => parseOptions(['stray'], table));
    expect(extra.code).toBe('unexpected-argument');
    expect(extra.message).toContain("'stray'");
    for (const e of [missing, extra]) expect(e.exitCode).toBe(2);
  });
});

describe('renderHelp', () => {
  it('one line per option with its description and default, and --help', () => {
    const text = renderHelp('git dits gc [--prune=<age>]', 'Remove content', table);
    const lines = text.split('\n');
    expect(lines[0]).toBe('usage: git dits gc [--prune=<age>]');
    const options = lines.slice(lines.indexOf('Options:') + 1).filter(Boolean);
    expect(options).toHaveLength(5);
    expect(options[0]).toMatch(/^ {6}--json {2,}print the result as JSON$/);
    expect(options[1]).toMatch(/^ {2}-f, --force {2,}do it anyway$/);
    expect(options[2]).toMatch(/^ {6}--prune <age> {2,}keep content newer than this \[default: 1h\]$/);
    expect(options[4]).toMatch(/^ {2}-h, --help {2,}show this help$/);
    // descriptions start in one column
    const columns = ['print the result', 'do it anyway', 'keep content', 'the remote', 'show this help'].map((d, i) => options[i]!.indexOf(d));
    expect(new Set(columns).size).toBe(1);
  });
});
