/**
 * `git dits mirror add|ls|remove|sync`: a second Dits remote kept as a copy of the primary
 * (src/lifecycle/mirror-sync.ts). Mirrors live in git config as `dits.mirror.<name>.url`
 * (the URL after `dits::`); the primary is `--from <remote>`, else dits.remote / origin.
 */
import fs from 'node:fs';
import { DitsUserError } from '../../errors.js';
import { gitConfigMap, runGit } from '../../git/exec.js';
import { findRepo } from '../../git/repo.js';
import { ditsSettingsFrom, readDitsConfig } from '../../git/dits-config.js';
import { defaultDitsRemote, listDitsRemotes, openRemoteStorage } from '../../remote/open-remote.js';
import { parseStorageUrl } from '../../transfer/storage-url.js';
import { stderrProgress } from '../../remote/content-adapter.js';
import { formatBytes, out, err, printJson, type CliContext } from '../context.js';
import type { Command, Subcommand } from '../main.js';
import { nearest, parseOptions, type OptionTable } from '../options.js';

const syncOptions = {
  from: { type: 'string', value: '<remote>', description: 'the primary remote to copy from (default: dits.remote, else origin)' },
  'dry-run': { type: 'boolean', short: 'n', description: 'list what would be copied (and deleted), change nothing' },
  delete: { type: 'boolean', description: 'also delete from the mirror what the primary no longer holds and neither side\'s refs need' },
  concurrency: { type: 'string', value: '<n>', description: 'objects copied at once (default: dits.concurrency, 8)' },
} as const satisfies OptionTable;

const mirrorOptions = {
  json: { type: 'boolean', description: 'print the result as JSON' },
} as const satisfies OptionTable;

const allOptions = { ...mirrorOptions, ...syncOptions } as const satisfies OptionTable;

const USAGE = 'git dits mirror add <name> <dits::url> | ls | remove <name> | sync [<name>] [--from <remote>] [--dry-run] [--delete] [--json]';

const SUBCOMMANDS: Record<string, Subcommand> = {
  add: { summary: 'Record a mirror: a Dits remote location (file, s3 or a Dits server) kept as a copy of the primary', usage: 'git dits mirror add <name> <dits::url>' },
  ls: { summary: 'List the mirrors', usage: 'git dits mirror ls [--json]' },
  remove: { summary: 'Forget a mirror (its data stays where it is)', usage: 'git dits mirror remove <name>' },
  sync: {
    summary: 'Copy to the mirror (all mirrors without a name) what the primary holds and it lacks: content first, verified, refs last',
    usage: 'git dits mirror sync [<name>] [--from <remote>] [--dry-run] [--delete] [--json]',
    options: syncOptions,
  },
};

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

interface Mirror {
  name: string;
  url: string;
}

async function listMirrors(cwd: string): Promise<Mirror[]> {
  const kv = await gitConfigMap(cwd, '^dits\\.mirror\\..*\\.url$');
  return [...kv].map(([k, v]) => ({ name: k.slice('dits.mirror.'.length, -'.url'.length), url: v.replace(/^dits::/, '') }));
}

function need(positionals: string[], n: number, what: string): string[] {
  if (positionals.length !== n) throw new DitsUserError('bad-usage', `expected ${what}`, { hint: `usage: ${USAGE}`, exitCode: 2 });
  return positionals;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

async function runMirror(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseOptions(args, allOptions, { positionals: true });
  const [action, ...rest] = positionals;
  if (action === undefined || !(action in SUBCOMMANDS)) {
    const near = action === undefined ? undefined : nearest(action, Object.keys(SUBCOMMANDS));
    throw new DitsUserError('bad-usage', action === undefined ? 'name a subcommand' : `unknown subcommand 'mirror ${action}'`, { hint: near ? `did you mean \`git dits mirror ${near}\`?` : `usage: ${USAGE}`, exitCode: 2 });
  }
  if (action !== 'sync') {
    for (const k of Object.keys(syncOptions)) {
      if (values[k as keyof typeof values] !== undefined) throw new DitsUserError('unknown-option', `'mirror ${action}' has no option --${k}`, { hint: `usage: ${SUBCOMMANDS[action]!.usage}`, exitCode: 2 });
    }
  }
  const repo = await findRepo(ctx.cwd);
  const cwd = repo.workTree;
  const mirrors = await listMirrors(cwd);
  switch (action) {
    case 'add': {
      const [name, raw] = need(rest, 2, 'add <name> <dits::url>');
      if (!NAME.test(name!)) throw new DitsUserError('bad-usage', `'${name}' is not a valid mirror name`, { hint: 'use letters, digits, - and _', exitCode: 2 });
      if (mirrors.some((m) => m.name === name)) throw new DitsUserError('mirror-exists', `there is already a mirror named '${name}'`, { hint: `remove it first: \`git dits mirror remove ${name}\``, exitCode: 2 });
      const url = raw!.replace(/^dits::/, '');
      const parsed = parseStorageUrl(url, cwd); // a bad URL fails here, with its own hint
      const remotes = await listDitsRemotes(cwd);
      const same = remotes.find((r) => r.url === url);
      if (same) throw new DitsUserError('mirror-is-primary', `'${url}' is the remote '${same.name}' itself`, { hint: 'a mirror is a second location: give another URL', exitCode: 2 });
      // a folder mirror is created here, where the user names it (a sync never creates a
      // location: a typo in a URL must not look like an empty mirror)
      if (parsed.kind === 'file') fs.mkdirSync(parsed.path, { recursive: true });
      await runGit(['config', `dits.mirror.${name}.url`, `dits::${url}`], { cwd });
      out(ctx, `Added mirror '${name}' (dits::${url}). Copy to it with \`git dits mirror sync ${name}\`.`);
      return 0;
    }
    case 'ls': {
      need(rest, 0, 'ls');
      if (values.json) printJson(ctx, mirrors.map((m) => ({ name: m.name, url: `dits::${m.url}` })));
      else if (mirrors.length === 0) out(ctx, 'No mirrors. Add one with `git dits mirror add <name> <dits::url>`.');
      else for (const m of mirrors) out(ctx, `${m.name}\tdits::${m.url}`);
      return 0;
    }
    case 'remove': {
      const [name] = need(rest, 1, 'remove <name>');
      if (!mirrors.some((m) => m.name === name)) throw new DitsUserError('no-such-mirror', `there is no mirror named '${name}'`, { hint: 'list them with `git dits mirror ls`', exitCode: 2 });
      await runGit(['config', '--remove-section', `dits.mirror.${name}`], { cwd });
      out(ctx, `Removed mirror '${name}' (its data stays at dits::${mirrors.find((m) => m.name === name)!.url}).`);
      return 0;
    }
    default:
      return runSync(ctx, cwd, rest, mirrors, values);
  }
}

async function runSync(ctx: CliContext, cwd: string, rest: string[], mirrors: Mirror[], values: { json?: boolean; from?: string; 'dry-run'?: boolean; delete?: boolean; concurrency?: string }): Promise<number> {
  if (rest.length > 1) need(rest, 1, 'sync [<name>]');
  const chosen = rest.length ? mirrors.filter((m) => m.name === rest[0]) : mirrors;
  if (rest.length && chosen.length === 0) throw new DitsUserError('no-such-mirror', `there is no mirror named '${rest[0]}'`, { hint: 'list them with `git dits mirror ls`; add one with `git dits mirror add <name> <dits::url>`', exitCode: 2 });
  if (chosen.length === 0) throw new DitsUserError('no-mirror', 'this repository has no mirror', { hint: 'add one with `git dits mirror add <name> <dits::url>`', exitCode: 2 });
  let concurrency: number | undefined;
  if (values.concurrency !== undefined) {
    concurrency = Number(values.concurrency);
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new DitsUserError('bad-option-value', `--concurrency must be a whole number from 1 to 64, not '${values.concurrency}'`, { hint: 'e.g. --concurrency 4', exitCode: 2 });
  }
  const config = await readDitsConfig(cwd);
  concurrency ??= ditsSettingsFrom(config).concurrency;
  const remotes = await listDitsRemotes(cwd);
  const primary = await defaultDitsRemote(cwd, values.from, { remotes, config });
  if (!primary) throw new DitsUserError('no-remote', 'no primary remote to mirror', { hint: 'name it with --from <remote>, or set dits.remote (a remote with a dits:: URL)', exitCode: 2 });
  const { syncMirror } = await import('../../lifecycle/mirror-sync.js');
  const from = await openRemoteStorage(cwd, primary.url, { remotes, config });
  const results = [];
  let failed = false;
  for (const m of chosen) {
    const to = await openRemoteStorage(cwd, m.url, { remotes, config });
    try {
      const r = await syncMirror(from, to, { dryRun: values['dry-run'], delete: values.delete, concurrency, onProgress: stderrProgress(`Mirroring to ${m.name}`, ctx.interactive && !values.json) });
      results.push({ mirror: m.name, ...r });
      if (r.notCopied.length || r.heldBack.length || r.refs === 'held-back' || r.refs === 'mirror-ahead') failed = true;
      if (!values.json) report(ctx, m.name, primary.name, r);
    } catch (e) {
      if (!values.json || !(e instanceof DitsUserError)) throw e;
      failed = true;
      results.push({ mirror: m.name, error: { code: e.code, message: e.message, hint: e.hint } });
    }
  }
  if (values.json) printJson(ctx, results);
  return failed ? 1 : 0;
}

function report(ctx: CliContext, name: string, primary: string, r: import('../../lifecycle/mirror-sync.js').MirrorSyncResult): void {
  const c = r.copied;
  const verb = r.dryRun ? 'Would copy' : 'Copied';
  const what = [plural(c.packs, 'pack'), plural(c.manifests, 'manifest'), plural(c.bundles, 'git bundle'), plural(c.other, 'record')];
  out(ctx, `${name}: ${verb} ${what.join(', ')} (${formatBytes(c.bytes)}) from ${primary} in ${r.seconds.toFixed(1)} s.`);
  const refs: Record<string, string> = {
    updated: 'refs updated: the mirror now matches the primary',
    unchanged: 'refs unchanged: the mirror already matched the primary',
    'would-update': 'refs would be updated',
    'held-back': 'refs NOT updated: some content was not copied (below); the mirror keeps its older, consistent refs',
    'mirror-ahead': 'refs NOT updated: the mirror holds git data the primary does not (pushed to directly?); left alone',
    none: 'the primary has no refs yet',
  };
  out(ctx, `${name}: ${refs[r.refs]}.`);
  for (const n of r.notCopied) err(ctx, `not copied (${n.reason}): ${n.key}: ${n.message}`);
  if (r.notCopied.some((n) => n.reason === 'frozen')) err(ctx, 'hint: frozen packs rest in an archive class on the primary; thaw them (`git dits thaw`) and sync again');
  if (r.notCopied.some((n) => n.reason === 'corrupt')) err(ctx, `hint: repair the primary from a good copy: \`git dits fsck --remote ${primary} --repair-from ${name}\``);
  if (r.heldBack.length) err(ctx, `held back: ${plural(r.heldBack.length, 'manifest or record')} naming content not copied (first: ${r.heldBack[0]})`);
  if (r.deleted.length) out(ctx, `${name}: ${r.dryRun ? 'would delete' : 'deleted'} ${plural(r.deleted.length, 'object')} the primary no longer holds.`);
  if (r.keptOnMirror) out(ctx, `${name}: kept ${plural(r.keptOnMirror, 'object')} only the mirror holds (packs, manifests, or anything while refs differ).`);
}

const mirror: Command = {
  summary: 'Keep a second Dits remote as a verified copy of the primary: add, ls, remove, sync',
  usage: USAGE,
  options: allOptions,
  subcommands: SUBCOMMANDS,
  run: runMirror,
};

export const commands = { mirror };
