/**
 * `git dits server ...`: administration of a Dits server, directly on its data dir's
 * SQLite (WAL lets this run while the server does). Users, tokens, repositories, grants,
 * status. Every subcommand takes `--data DIR` (default as for `git dits serve`).
 * `status` also lists each repository's storage (where the running server recorded it,
 * or `--storage`; S3 settings from the environment as for `git dits serve`).
 */
import fs from 'node:fs';
import { DitsUserError } from '../../errors.js';
import { formatBytes, out, printJson, type CliContext } from '../context.js';
import type { Command, Subcommand } from '../main.js';
import { nearest, parseOptions, type OptionTable } from '../options.js';
import { resolveDataDir } from '../server-data-dir.js';

type ServerModule = typeof import('../../../server/index.js');
type Db = ReturnType<ServerModule['openDataDirDb']>;

const USAGE = `git dits server <subcommand> [--data <dir>] [--json]
  user add <name> [--admin]
  token create <user> <token-name> [--url http://host:port]
  token revoke <user> <token-name>
  token list [<user>]
  repo create <owner/name> [--adopt-existing]
      refuses a name that still has stored content (left by a repository deleted with
      --keep-content, or restored storage); --adopt-existing serves that content as the
      new repository's
  repo list
  repo delete <owner/name> [--keep-content]
      deletes the repository's records and its stored content (git data, packs,
      manifests, refs), and only that repository's; re-run it if it was interrupted.
      --keep-content deletes the records only
  (repo create/delete find the content where the running server recorded it, or --storage)
  repo budget <owner/name> [<dollars>|none]
      the repository's monthly thaw budget (restores through the server that would
      exceed it are refused); without a value, shows it and this month's spend
  grant <user> <owner/name> <read|write|admin>
  status [--storage s3://bucket/prefix] [--quick]
      per repository: stored size, logical size, dedup ratio (one listing of its storage;
      --quick skips them), locks, reads; the job queue and its workers; recent activity`;

/** Options every subcommand takes. */
const serverOptions = {
  data: { type: 'string', value: '<dir>', description: 'the server\'s data directory (default: as for `git dits serve`)' },
  json: { type: 'boolean', description: 'print the result as JSON' },
} as const satisfies OptionTable;

/** `--storage` of the subcommands that find a repository's content. */
const storageOption = { type: 'string', value: 's3://bucket/prefix', description: 'where the content is, when the server did not record it' } as const;

/** Each subcommand with its own usage and options (`git dits server token create --help`). */
const SUBCOMMANDS = {
  'user add': { usage: 'git dits server user add <name> [--admin]', summary: 'Add a user (the first should be a site admin)', options: { admin: { type: 'boolean', description: 'a site admin: may create repositories and manage every one' } } },
  'token create': {
    usage: 'git dits server token create <user> <token-name> [--url http://host:port]',
    summary: 'Create an access token for a user; it is printed only this once',
    options: { url: { type: 'string', value: '<url>', description: 'the server\'s URL, to print the exact `git credential approve` line' } },
  },
  'token revoke': { usage: 'git dits server token revoke <user> <token-name>', summary: 'Revoke a token: requests with it are refused from now on' },
  'token list': { usage: 'git dits server token list [<user>]', summary: 'List tokens (never their secrets): created, last used, revoked' },
  'repo create': {
    usage: 'git dits server repo create <owner/name> [--adopt-existing]',
    summary: 'Create a repository (refused while the name still has stored content)',
    options: {
      'adopt-existing': { type: 'boolean', description: 'serve the content already stored under this name (left by a delete with --keep-content, or restored) as the new repository\'s' },
      storage: storageOption,
    },
  },
  'repo list': { usage: 'git dits server repo list', summary: 'List repositories' },
  'repo delete': {
    usage: 'git dits server repo delete <owner/name> [--keep-content]',
    summary: 'Delete a repository: its grants, locks and stored content (git data, packs, manifests, refs), and only its own; re-run it if it was interrupted',
    options: {
      'keep-content': { type: 'boolean', description: 'delete the records only; the content stays for `repo create --adopt-existing`' },
      storage: storageOption,
    },
  },
  'repo budget': {
    usage: 'git dits server repo budget <owner/name> [<dollars>|none]',
    summary: "Set (or show) a repository's monthly thaw budget in dollars: restores through the server that would exceed it are refused; `none` removes the limit",
  },
  grant: { usage: 'git dits server grant <user> <owner/name> <read|write|admin>', summary: 'Give a user a role on a repository' },
  status: {
    usage: 'git dits server status [--storage s3://bucket/prefix] [--quick]',
    summary: 'Users, tokens, locks; per repository: stored size, logical size, dedup ratio, reads; jobs and workers; recent activity',
    options: {
      storage: storageOption,
      quick: { type: 'boolean', description: 'skip listing each repository\'s storage (no sizes)' },
    },
  },
} as const satisfies Record<string, Subcommand>;

type SubcommandOptions = { [K in keyof typeof SUBCOMMANDS]: (typeof SUBCOMMANDS)[K] extends { options: infer O } ? O : never }[keyof typeof SUBCOMMANDS];
/** The union of every subcommand's options: parsed together, then checked against the one named. */
const allOptions = Object.assign({}, serverOptions, ...Object.values(SUBCOMMANDS).map((s) => ('options' in s ? s.options : {}))) as typeof serverOptions & UnionToIntersection<SubcommandOptions>;
type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;

const KNOWN = new Set(Object.keys(SUBCOMMANDS));
const CREATES = new Set(['user add', 'repo create']);

function need(positionals: string[], n: number, what: string): string[] {
  if (positionals.length !== n) throw new DitsUserError('bad-usage', `expected ${what}`, { hint: `usage: ${USAGE}` });
  return positionals;
}

/** How to store a new token, for people and for scripts. */
function tokenStorageHelp(user: string, token: string, url: string | undefined): string[] {
  let protocol = '<http|https>';
  let host = '<server host:port>';
  if (url !== undefined) {
    try {
      const u = new URL(url.replace(/^dits::/, ''));
      protocol = u.protocol.replace(/:$/, '');
      host = u.host;
    } catch {
      throw new DitsUserError('bad-url', `cannot read the server URL '${url}'`, { hint: 'e.g. --url http://127.0.0.1:8080' });
    }
  }
  return [
    'Store it with your git credential helper (git asks it for the server\'s host):',
    `  printf 'protocol=${protocol}\\nhost=${host}\\nusername=${user}\\npassword=${token}\\n\\n' | git credential approve`,
    'or set it in the environment of the git and git dits commands:',
    `  export DITS_TOKEN=${token}`,
  ];
}

async function runServerAdmin(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseOptions(args, allOptions, { positionals: true });
  const [group, action, ...rest] = positionals;
  if (group === undefined) throw new DitsUserError('bad-usage', 'name a subcommand', { hint: `usage: ${USAGE}`, exitCode: 2 });
  const key = group === 'grant' || group === 'status' ? group : `${group} ${action ?? ''}`;
  if (!KNOWN.has(key)) {
    const near = nearest(group === 'grant' || group === 'status' || action === undefined ? group : key, KNOWN);
    throw new DitsUserError('bad-usage', `unknown subcommand 'server ${positionals.slice(0, 2).join(' ')}'`, { hint: near ? `did you mean \`git dits server ${near}\`? (\`git dits server --help\` lists them)` : `usage: ${USAGE}`, exitCode: 2 });
  }
  // an option of another subcommand is unknown to this one
  const own: OptionTable = { ...serverOptions, ...('options' in SUBCOMMANDS[key as keyof typeof SUBCOMMANDS] ? (SUBCOMMANDS[key as keyof typeof SUBCOMMANDS] as { options: OptionTable }).options : {}) };
  for (const [name, v] of Object.entries(values)) {
    if (v === undefined || name in own) continue;
    const near = nearest(`--${name}`, Object.keys(own).map((k) => `--${k}`));
    throw new DitsUserError('unknown-option', `'server ${key}' has no option --${name}`, { hint: near ? `did you mean ${near}?` : 'see --help for the options', exitCode: 2 });
  }
  const server: ServerModule = await import('../../../server/index.js');
  const dataDir = resolveDataDir(ctx, values.data);
  // Only the commands that set a server up may create its data dir: a mistyped --data
  // must not look like an empty server.
  if (!CREATES.has(key) && !fs.existsSync(server.serverDbPath(dataDir))) {
    throw new DitsUserError('no-server-data', `no Dits server data in ${dataDir}`, { hint: 'check --data; a new server starts with `git dits server user add <name> --admin --data <dir>`' });
  }
  const db: Db = server.openDataDirDb(dataDir);
  const json = values.json === true;
  // where repositories' content lives: as for `git dits serve`, recorded by the running server
  const storageBackend = () => {
    const storage = values.storage ?? server.recordedStorageLocation(db) ?? undefined;
    return server.createStorageBackend({ dataDir, ...(storage === undefined ? {} : { storage }), s3: server.s3OptionsFromEnv(ctx.env) });
  };
  try {
    switch (key) {
      case 'user add': {
        const [name] = need(rest, 1, 'user add <name> [--admin]');
        const user = server.addUser(db, name!, { admin: values.admin === true });
        if (json) printJson(ctx, { user });
        else out(ctx, `Added user ${user.name}${user.isAdmin ? ' (site admin)' : ''}. Next: git dits server token create ${user.name} <token-name>`);
        return 0;
      }
      case 'token create': {
        const [user, name] = need(rest, 2, 'token create <user> <token-name>');
        const token = server.createToken(db, user!, name!);
        if (json) printJson(ctx, { user, name, token });
        else {
          out(ctx, `Token '${name}' for ${user} (shown only this once; the server keeps only its hash):`);
          out(ctx, `  ${token}`);
          for (const line of tokenStorageHelp(user!, token, values.url)) out(ctx, line);
        }
        return 0;
      }
      case 'token revoke': {
        const [user, name] = need(rest, 2, 'token revoke <user> <token-name>');
        server.revokeToken(db, user!, name!);
        if (json) printJson(ctx, { revoked: { user, name } });
        else out(ctx, `Revoked token '${name}' of ${user}: requests with it are refused from now on.`);
        return 0;
      }
      case 'token list': {
        if (rest.length > 1) need(rest, 1, 'token list [<user>]');
        const tokens = server.listTokens(db, rest[0]);
        if (json) printJson(ctx, { tokens });
        else if (tokens.length === 0) out(ctx, 'No tokens.');
        else
          for (const t of tokens) {
            const state = t.revokedAt ? `revoked ${t.revokedAt}` : t.lastUsedAt ? `last used ${t.lastUsedAt}` : 'never used';
            out(ctx, `${t.user}\t${t.name}\tcreated ${t.createdAt}\t${state}`);
          }
        return 0;
      }
      case 'repo create': {
        const [name] = need(rest, 1, 'repo create <owner/name> [--adopt-existing]');
        const repo = await server.createRepoChecked(db, storageBackend(), name!, { adoptExisting: values['adopt-existing'] === true });
        if (json) printJson(ctx, { repo });
        else {
          if (repo.adoptedObjects > 0) out(ctx, `Serving the ${repo.adoptedObjects} object(s) already stored under ${repo.name} as its content.`);
          out(ctx, `Created repository ${repo.name}. Next: git dits server grant <user> ${repo.name} write`);
        }
        return 0;
      }
      case 'repo list': {
        need(rest, 0, 'repo list');
        const repos = server.listRepos(db);
        if (json) printJson(ctx, { repos });
        else if (repos.length === 0) out(ctx, 'No repositories.');
        else for (const r of repos) out(ctx, `${r.name}\tcreated ${r.createdAt}\t${r.locks} lock(s)`);
        return 0;
      }
      case 'repo delete': {
        const [name] = need(rest, 1, 'repo delete <owner/name> [--keep-content]');
        const backend = storageBackend();
        const done = await server.deleteRepoAndContent(db, backend, name!, { keepContent: values['keep-content'] === true });
        if (json) printJson(ctx, { deleted: done.name, deletedObjects: done.deletedObjects, storage: backend.location });
        else if (done.deletedObjects === null) {
          out(ctx, `Deleted repository ${done.name} (its grants and locks). Its content stays in ${backend.location}: \`git dits server repo delete ${done.name}\` deletes it, \`repo create ${done.name} --adopt-existing\` serves it again.`);
        } else if (done.hadRecord) out(ctx, `Deleted repository ${done.name} (its grants and locks) and its ${done.deletedObjects} stored object(s) in ${backend.location}.`);
        else out(ctx, `Deleted the ${done.deletedObjects} object(s) left under ${done.name} in ${backend.location}.`);
        return 0;
      }
      case 'repo budget': {
        if (rest.length < 1 || rest.length > 2) need(rest, 2, 'repo budget <owner/name> [<dollars>|none]');
        const [name, value] = rest;
        const repo = server.getRepo(db, name!);
        if (!repo) throw new DitsUserError('repo-not-found', `no repository ${name}`, { hint: '`git dits server repo list` lists them' });
        if (value !== undefined) {
          const dollars = value === 'none' ? null : Number(value.replace(/^\$/, ''));
          if (dollars !== null && !(Number.isFinite(dollars) && dollars >= 0)) {
            throw new DitsUserError('bad-usage', `'${value}' is not an amount of dollars`, { hint: 'e.g. git dits server repo budget team/film 50 (or none for no limit)', exitCode: 2 });
          }
          server.setThawBudget(db, repo.id, dollars);
        }
        const month = new Date().toISOString().slice(0, 7);
        const b = server.thawBudget(db, repo.id, month);
        if (json) printJson(ctx, { repo: repo.name, month, monthly: b.monthly, spent: b.spent });
        else out(ctx, `${repo.name}: thaw budget ${b.monthly === null ? 'none (no limit)' : `$${b.monthly.toFixed(2)} a month`}; spent in ${month}: $${b.spent.toFixed(2)}.`);
        return 0;
      }
      case 'grant': {
        const [user, repo, role] = need(positionals.slice(1), 3, 'grant <user> <owner/name> <read|write|admin>');
        if (!(server.ROLES as readonly string[]).includes(role!)) throw new DitsUserError('invalid-role', `role must be one of ${server.ROLES.join(', ')}`);
        server.grant(db, user!, repo!, role as (typeof server.ROLES)[number]);
        if (json) printJson(ctx, { grant: { user, repo, role } });
        else out(ctx, `${user} now has ${role} on ${repo}.`);
        return 0;
      }
      case 'status': {
        need(positionals.slice(1), 0, 'status');
        const s = server.serverStatus(db);
        let storage: string | null = null;
        let sizes: Awaited<ReturnType<ServerModule['measureRepoSizes']>> | undefined;
        if (values.quick !== true) {
          storage = values.storage ?? server.recordedStorageLocation(db) ?? null;
          const backend = server.createStorageBackend({ dataDir, ...(storage === null ? {} : { storage }), s3: server.s3OptionsFromEnv(ctx.env) });
          sizes = await server.measureRepoSizes(db, backend);
        }
        const sizeOf = new Map((sizes ?? []).map((r) => [r.name, r]));
        const queue = new server.JobQueue(db);
        const jobs = { counts: queue.counts(), workers: queue.listWorkers(), dead: queue.list({ state: 'dead', limit: 5 }) };
        if (json) {
          const repos = s.repos.map((r) => ({ ...r, size: sizeOf.get(r.name) ?? null }));
          printJson(ctx, { dataDir, storage: sizes === undefined ? undefined : (storage ?? `${dataDir}/repos`), ...s, repos, jobs });
          return 0;
        }
        out(ctx, `Data: ${dataDir} (schema ${s.schemaVersion})${sizes === undefined ? '' : `; content: ${storage ?? 'in the data dir'}`}`);
        out(ctx, `Users: ${s.users} (${s.siteAdmins} site admin(s)); tokens: ${s.tokens.live} live, ${s.tokens.revoked} revoked; locks: ${s.locks}`);
        out(ctx, `Repositories: ${s.repos.length}`);
        for (const r of s.repos) {
          out(ctx, `  ${r.name}\t${r.members} member(s)\t${r.locks} lock(s)\t${r.trackedObjects} object(s) read${r.lastReadAt ? `, last ${r.lastReadAt}` : ''}`);
          const z = sizeOf.get(r.name);
          if (z === undefined) continue;
          if (z.error !== undefined) {
            out(ctx, `    storage: cannot list it: ${z.error}`);
            continue;
          }
          const ratio = z.dedupRatio === null ? 'n/a' : `${z.dedupRatio.toFixed(2)}x`;
          const unread = z.unreadManifests > 0 ? ` (${z.unreadManifests} manifest(s) unreadable, not counted)` : '';
          out(ctx, `    stored ${formatBytes(z.storedBytes)} in ${z.objects} object(s) (${z.packs} pack(s), ${formatBytes(z.packBytes)}); logical ${formatBytes(z.logicalBytes)} in ${z.manifests} file version(s)${unread}; dedup ratio ${ratio}`);
        }
        const c = jobs.counts;
        out(ctx, `Jobs: ${c.queued} queued, ${c.leased} leased, ${c.done} done, ${c.failed} failed (to retry), ${c.dead} dead`);
        for (const d of jobs.dead) out(ctx, `  dead #${d.id} ${d.kind} ${d.repo} ${d.original.slice(0, 12)} after ${d.attempts} attempt(s): ${d.lastError ?? '?'}`);
        if (s.mirror) {
          const m = s.mirror;
          const last = m.lastRun;
          out(ctx, `Mirror: ${m.mirror} (${m.schedule} UTC); ${m.running ? `running since ${m.running.startedAt}; ` : ''}last run: ${last ? `${last.result ?? 'running'} at ${last.finishedAt ?? last.startedAt}${last.error ? ` (${last.error})` : ''}` : 'none yet'}; next: ${m.nextRun ?? 'not scheduled'}`);
          for (const r of last?.repos ?? []) if (r.result !== 'ok') out(ctx, `  ${r.repo}: ${r.result}${r.error ? `: ${r.error}` : r.notCopiedCount ? `: ${r.notCopiedCount} object(s) not copied (${r.notCopied?.[0]?.reason ?? '?'}), refs ${r.refs}` : ''}`);
        }
        out(ctx, `Workers: ${jobs.workers.length}${jobs.workers.length === 0 ? ' (start them with `git dits serve --workers N` or `git dits worker`)' : ''}`);
        for (const w of jobs.workers) out(ctx, `  ${w.id}\tpid ${w.pid} on ${w.host}\t${w.jobId === null ? 'idle' : `job #${w.jobId}`}\t${w.jobsDone} done, ${w.jobsFailed} failed`);
        if (s.recentActivity.length > 0) {
          out(ctx, 'Recent activity:');
          for (const a of s.recentActivity) {
            const what = [a.repo, a.path, a.detail].filter((x) => x !== null && x !== undefined).join(' ');
            out(ctx, `  ${a.at}  ${a.actor}  ${a.action}${what ? `  ${what}` : ''}`);
          }
        }
        return 0;
      }
      default:
        throw new DitsUserError('bad-usage', `unknown subcommand 'server ${positionals.slice(0, 2).join(' ')}'`, { hint: `usage: ${USAGE}` });
    }
  } finally {
    db.close();
  }
}

const server: Command = {
  summary: 'Administer a Dits server\'s data dir: users, tokens, repositories, grants, status',
  usage: USAGE,
  options: serverOptions,
  subcommands: SUBCOMMANDS,
  run: runServerAdmin,
};

export const commands = { server };
