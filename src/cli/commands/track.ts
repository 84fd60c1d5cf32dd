import fs from 'node:fs';
import path from 'node:path';
import { findRepo } from '../../git/repo.js';
import { DitsUserError } from '../../errors.js';
import { gitConfigGet } from '../../git/exec.js';
import { err, out, printJson, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';

const ATTRS = 'filter=dits diff=dits merge=dits -text';

/** A path pattern as a .gitattributes pattern: whitespace cannot appear literally. */
export function encodePattern(p: string): string {
  return p.replace(/\\/g, '/').replace(/\s/g, '[[:space:]]');
}

interface Line {
  text: string;
  pattern?: string;
  dits?: boolean;
  lockable?: boolean;
}

function parseAttributes(text: string): Line[] {
  return text.split('\n').map((t) => {
    const trimmed = t.trim();
    if (!trimmed || trimmed.startsWith('#')) return { text: t };
    const [pattern, ...attrs] = trimmed.split(/\s+/);
    return { text: t, pattern, dits: attrs.includes('filter=dits'), lockable: attrs.includes('lockable') };
  });
}

async function attributesFile(ctx: CliContext): Promise<string> {
  const repo = await findRepo(ctx.cwd);
  return path.join(repo.workTree, '.gitattributes');
}

function readLines(file: string): Line[] {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    /* none yet */
  }
  const lines = parseAttributes(text);
  if (lines.length && lines[lines.length - 1]!.text === '') lines.pop();
  return lines;
}

function writeLines(file: string, lines: Line[]): void {
  fs.writeFileSync(file, lines.map((l) => l.text).join('\n') + (lines.length ? '\n' : ''));
}

const trackOptions = {
  lockable: { type: 'boolean', description: 'also mark the files lockable: read-only until you `git dits lock` them' },
  json: { type: 'boolean', description: 'print the result as JSON' },
} as const satisfies OptionTable;

const track: Command = {
  summary: 'Track files matching patterns with Dits (writes .gitattributes); no pattern lists them',
  usage: 'git dits track [--lockable] [--json] [<pattern>...]',
  options: trackOptions,
  async run(args, ctx) {
    const { values, positionals } = parseOptions(args, trackOptions, { positionals: true });
    const file = await attributesFile(ctx);
    const lines = readLines(file);
    if (positionals.length === 0) {
      const tracked = lines.filter((l) => l.dits).map((l) => ({ pattern: l.pattern!, lockable: Boolean(l.lockable) }));
      if (values.json) printJson(ctx, tracked);
      else if (tracked.length === 0) out(ctx, 'No patterns tracked yet. Try `git dits track "*.mov"`.');
      else for (const t of tracked) out(ctx, `${t.pattern}${t.lockable ? ' (lockable)' : ''}`);
      return 0;
    }
    const added: string[] = [];
    for (const raw of positionals) {
      if (!raw.trim()) throw new DitsUserError('bad-pattern', 'an empty pattern cannot be tracked');
      const pattern = encodePattern(raw);
      const want = `${pattern} ${ATTRS}${values.lockable ? ' lockable' : ''}`;
      const existing = lines.findIndex((l) => l.pattern === pattern && l.dits);
      if (existing >= 0) {
        if (lines[existing]!.text.trim() === want) continue;
        lines[existing] = { text: want, pattern, dits: true, lockable: values.lockable };
      } else {
        lines.push({ text: want, pattern, dits: true, lockable: values.lockable });
      }
      added.push(pattern);
    }
    writeLines(file, lines);
    // Without the filter config Git ignores filter=dits: `git add` would store these files whole
    if (!(await gitConfigGet('filter.dits.process', ctx.cwd))) {
      err(ctx, 'warning: Git is not set up to use Dits on this machine: `git add` would store files matching these patterns whole in Git.');
      err(ctx, 'hint: run `git dits install` (once per machine), or `git dits install --local` for this repository only, before adding files');
    }
    if (values.json) printJson(ctx, { tracked: added });
    else if (added.length) out(ctx, `Tracking ${added.map((a) => `"${a}"`).join(', ')}. Next: \`git add .gitattributes\` and your files, then commit.`);
    else out(ctx, 'Already tracked; nothing changed.');
    return 0;
  },
};

const untrackOptions = {} as const satisfies OptionTable;

const untrack: Command = {
  summary: 'Stop tracking patterns with Dits (files already committed stay as they are)',
  usage: 'git dits untrack <pattern>...',
  options: untrackOptions,
  async run(args, ctx) {
    const { positionals } = parseOptions(args, untrackOptions, { positionals: true });
    if (positionals.length === 0) throw new DitsUserError('bad-usage', 'name the patterns to untrack', { hint: '`git dits track` lists them' });
    const file = await attributesFile(ctx);
    const patterns = new Set(positionals.map(encodePattern));
    const lines = readLines(file);
    const kept = lines.filter((l) => !(l.dits && l.pattern && patterns.has(l.pattern)));
    writeLines(file, kept);
    out(ctx, lines.length === kept.length ? 'No such tracked pattern; nothing changed.' : `Untracked ${[...patterns].join(', ')}.`);
    return 0;
  },
};

export const commands = { track, untrack };
