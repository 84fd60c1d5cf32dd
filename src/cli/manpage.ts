/**
 * The git-dits(1) manual page, generated from the commands' own usage and summary lines and
 * option tables (cli/options.ts) so it never drifts from `git dits <command> --help`. Git turns `git dits --help` into
 * `man git-dits`: without this page that printed "No manual entry for git-dits".
 * scripts/gen-man.mjs writes it to man/git-dits.1 at setup; package.json's "man" field lets
 * `npm link` / a global install put it where man finds it.
 */
import type { OptionTable } from './options.js';

export interface ManEntry {
  name: string;
  usage: string;
  summary: string;
  /** The command's option table (the one `--help` renders). */
  options?: OptionTable;
  /** Subcommands (`server token create`) with their own usage and options. */
  subcommands?: Readonly<Record<string, { usage: string; summary: string; options?: OptionTable }>>;
}

/** One indented `.TP` per option: `-f, --force <value>`, then its description. */
function optionLines(options: OptionTable | undefined): string[] {
  const out: string[] = [];
  for (const [name, o] of Object.entries(options ?? {})) {
    const flag = `${o.short ? `\\fB-${o.short}\\fR, ` : ''}\\fB--${roffEscape(name)}\\fR${o.type === 'string' ? ` \\fI${roffEscape(o.value ?? '<value>')}\\fR` : ''}`;
    const dflt = o.default !== undefined && o.default !== false ? ` (default: ${roffEscape(String(o.default))})` : '';
    out.push('.TP', flag, roffEscape(o.description) + dflt);
  }
  return out;
}

/** Escapes text for roff: backslashes, and a leading dot or quote that would read as a request. */
export function roffEscape(text: string): string {
  return text
    .replace(/\\/g, '\\e')
    .split('\n')
    .map((l) => (/^[.']/.test(l) ? `\\&${l}` : l))
    .join('\n');
}

export function renderManPage(entries: readonly ManEntry[], version: string): string {
  const out = [
    `.TH GIT-DITS 1 "" "git-dits ${roffEscape(version)}" "Dits Manual"`,
    '.SH NAME',
    'git-dits \\- version control for video and other huge media, as a Git extension',
    '.SH SYNOPSIS',
    '.B git dits',
    '.I command',
    '[\\fIoptions\\fR]',
    '.SH DESCRIPTION',
    'Files matched by \\fBgit dits track\\fR are cut into content-defined chunks; Git stores a small',
    'pointer, the working tree holds the real bytes, and a changed version stores and sends only the',
    'chunks that changed. Plain \\fBgit add\\fR, \\fBcommit\\fR, \\fBcheckout\\fR, \\fBpush\\fR and',
    '\\fBclone\\fR work as usual; remotes are \\fBdits::file://\\fR, \\fBdits::s3://\\fR and',
    '\\fBdits::https://\\fR URLs (git-remote-dits).',
    '.PP',
    'Every command prints its options with \\fBgit dits\\fR \\fIcommand\\fR \\fB--help\\fR;',
    '\\fB--json\\fR, where a command has it, prints a machine-readable result.',
    '.SH COMMANDS',
  ];
  for (const e of entries) {
    out.push('.TP', `.B ${roffEscape(e.usage)}`, roffEscape(e.summary));
    const opts = optionLines(e.options);
    if (opts.length) out.push('.RS', ...opts, '.RE');
    for (const sub of Object.values(e.subcommands ?? {})) {
      out.push('.RS', '.TP', `.B ${roffEscape(sub.usage)}`, roffEscape(sub.summary));
      const subOpts = optionLines(sub.options);
      if (subOpts.length) out.push('.RS', ...subOpts, '.RE');
      out.push('.RE');
    }
  }
  out.push(
    '.SH CONFIGURATION',
    'Settings live in git config: \\fBdits.chunkMin\\fR, \\fBdits.chunkAvg\\fR, \\fBdits.chunkMax\\fR,',
    '\\fBdits.smudgeInlineMax\\fR, \\fBdits.smudgeReadAhead\\fR, \\fBdits.smudgeDelayMin\\fR, \\fBdits.earlyWrite\\fR, \\fBdits.mediaAware\\fR, \\fBdits.fsync\\fR, \\fBdits.directWrite\\fR,',
    '\\fBdits.remote\\fR, \\fBdits.fetchMode\\fR (full or lazy),',
    '\\fBdits.fetchInclude\\fR, \\fBdits.fetchExclude\\fR, \\fBdits.keepLocalCopy\\fR,',
    '\\fBdits.concurrency\\fR, \\fBdits.packSize\\fR, \\fBdits.s3.endpoint\\fR, \\fBdits.s3.region\\fR,',
    '\\fBdits.s3.pathStyle\\fR, \\fBdits.s3.profile\\fR; see the README for each.',
    '.SH SEE ALSO',
    '\\fBgit\\fR(1), \\fBgitattributes\\fR(5), \\fBgitremote-helpers\\fR(7)',
    '',
  );
  return out.join('\n');
}
