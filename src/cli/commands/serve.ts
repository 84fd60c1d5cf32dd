/**
 * `git dits serve`: the Dits server in the foreground until SIGINT/SIGTERM (graceful
 * shutdown: requests in flight finish, SQLite is closed cleanly). Loopback unless `--host`
 * names another address. The server modules (Hono, SQLite) load only here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { DitsUserError } from '../../errors.js';
import { err, out, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { resolveDataDir } from '../server-data-dir.js';
import { parseOptions, type OptionTable } from '../options.js';
import { parseCount } from './worker.js';
import { readDitsConfig } from '../../git/dits-config.js';
import { readTierPolicy } from '../../tier/policy.js';
import { parseScheduleTime } from '../../../server/tier-scheduler.js';

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1';
}

export function parsePort(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,5}$/.test(v) || Number(v) > 65535) throw new DitsUserError('bad-port', `invalid port '${v}'`, { hint: 'a number from 0 (any free port) to 65535' });
  return Number(v);
}

const serveOptions = {
  data: { type: 'string', value: '<dir>', description: 'the server\'s data directory (default: $XDG_DATA_HOME/dits-server or ~/.local/share/dits-server)' },
  storage: { type: 'string', value: 's3://bucket/prefix', description: 'keep repository content in S3 instead of the data directory' },
  'proxy-bytes': { type: 'boolean', description: 'with --storage: send every byte through this server (clients that cannot reach S3)' },
  port: { type: 'string', value: '<n>', description: 'the port to listen on (0: any free port)', default: '8080' },
  host: { type: 'string', value: '<address>', description: 'the address to listen on (other than loopback: other machines can connect)', default: '127.0.0.1' },
  quiet: { type: 'boolean', short: 'q', description: 'no request log on stderr' },
  workers: { type: 'string', value: '<n>', description: 'also run n job workers (proxies of pushed video), each its own process (default 0: run `git dits worker` apart)' },
  lease: { type: 'string', value: '<seconds>', description: 'with --workers: how long a job stays leased without a heartbeat (default 30)' },
  'tier-folder': { type: 'string', value: '<tier>=<dir>[,...]', description: 'keep tiers of the data dir in other folders, e.g. warm=/mnt/nas/warm,deep=/mnt/tape (remembered in the data dir)' },
  'tier-archive': { type: 'string', value: '<tier>[,...]', description: 'with --tier-folder: tiers whose folder needs a restore step before a read, like tape (e.g. deep)' },
  'tier-schedule': { type: 'string', value: '<HH:MM>|off', description: 'when the tier reaper runs each day, UTC (default dits.tier.schedule, 03:00); the ages and grace come from the dits.tier.* settings of the user running the server' },
  mirror: { type: 'string', value: '<folder>|dits::s3://bucket/prefix', description: 'keep every repository\'s storage copied to <mirror>/<owner>/<name> on a schedule (default dits.server.mirror)' },
  'mirror-schedule': { type: 'string', value: '<schedule>', description: 'with --mirror: when it runs, UTC: 04:00 (the default, dits.server.mirrorSchedule), hourly, *:0/15, off (only POST /api/mirror/run)' },
} as const satisfies OptionTable;

/**
 * `--tier-folder` / `--tier-archive`: written to `<dataDir>/tier-folders.json` (atomically),
 * which every process of this data dir reads (workers, admin commands, later runs), since
 * objects moved there must stay findable even when the flag is not given again.
 */
async function rememberTierFolders(dataDir: string, folderArg: string | undefined, archiveArg: string | undefined): Promise<void> {
  if (folderArg === undefined) {
    if (archiveArg !== undefined) throw new DitsUserError('bad-option-value', '--tier-archive needs --tier-folder', { hint: 'e.g. --tier-folder deep=/mnt/tape --tier-archive deep' });
    return;
  }
  const { parseTierFolderArg, parseTierList } = await import('../../tier/tier-folders.js');
  const { tierFoldersFile } = await import('../../../server/storage-backend.js');
  const folders = parseTierFolderArg(folderArg);
  const archive = archiveArg === undefined ? [] : parseTierList('--tier-archive', archiveArg);
  for (const t of archive) {
    if (t === 'hot' || folders[t] === undefined) throw new DitsUserError('bad-option-value', `--tier-archive ${t}: no --tier-folder for ${t}`, { hint: `add ${t}=<dir> to --tier-folder` });
  }
  const { mkdir, rename, stat, writeFile } = await import('node:fs/promises');
  for (const [tier, dir] of Object.entries(folders)) {
    // checked before it is remembered, so a typo is not written down for every later start
    if (!(await stat(dir).then((st) => st.isDirectory(), () => false))) {
      throw new DitsUserError('tier-folder-missing', `the ${tier} tier folder ${dir} does not exist (or is not a folder)`, { hint: 'create it or mount the share, then start the server again' });
    }
  }
  const file = tierFoldersFile(dataDir);
  await mkdir(dataDir, { recursive: true });
  await writeFile(`${file}.tmp`, JSON.stringify({ folders, archive }, null, 2) + '\n');
  await rename(`${file}.tmp`, file);
}

/**
 * The workers of `serve --workers N`: each a child process running `git dits worker`, not a
 * loop in the server's process. A job decodes a whole video through ffmpeg and hashes every
 * chunk it reads: in the server's process that CPU work would stall requests, a crash or an
 * out-of-memory in one job would take the server down, and one heap could not be held under
 * the per-worker memory budget. A child that dies (killed, crashed) is started again after a
 * second; its job's lease expires and the job is leased again. Shutdown: SIGTERM (each hands
 * its running job back), then SIGKILL after 10 s.
 */
function superviseWorkers(ctx: CliContext, n: number, args: string[]): { stop(): Promise<void> } {
  const children = new Set<ChildProcess>();
  let stopping = false;
  const start = (i: number): void => {
    if (stopping) return;
    const child = spawn(process.execPath, [ctx.ditsBin, 'worker', ...args, '--id', `serve-${process.pid}-${i}`], { stdio: ['ignore', 'ignore', 'pipe'], env: ctx.env });
    children.add(child);
    child.stderr!.on('data', (d: Buffer) => ctx.stderr.write(d));
    child.once('exit', (code, signal) => {
      children.delete(child);
      if (stopping) return;
      err(ctx, `dits serve: worker ${i} (pid ${child.pid}) ended (${signal ?? `exit ${code}`}); starting it again`);
      setTimeout(() => start(i), 1000).unref();
    });
  };
  for (let i = 1; i <= n; i++) start(i);
  return {
    async stop() {
      stopping = true;
      await Promise.all(
        [...children].map(
          (c) =>
            new Promise<void>((resolve) => {
              if (c.exitCode !== null || c.signalCode !== null) return resolve();
              const kill = setTimeout(() => c.kill('SIGKILL'), 10_000);
              c.once('exit', () => {
                clearTimeout(kill);
                resolve();
              });
              c.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}

const serve: Command = {
  summary: 'Run the Dits server (locks, accounts, dits::http remotes) until Ctrl-C',
  usage:
    'git dits serve [--data <dir>] [--storage s3://bucket/prefix [--proxy-bytes]] [--tier-folder <tier>=<dir>[,...] [--tier-archive <tier>]] [--tier-schedule <HH:MM>|off] [--mirror <folder>|dits::s3://bucket/prefix [--mirror-schedule <schedule>]] [--port <n>] [--host <address>] [--workers <n> [--lease <seconds>]] [--quiet]',
  options: serveOptions,
  async run(args, ctx) {
    const { values } = parseOptions(args, serveOptions);
    const dataDir = resolveDataDir(ctx, values.data);
    const port = parsePort(values.port) ?? 8080;
    const workerCount = parseCount(values.workers, 'number of workers', 0, 64, 0);
    if (values.lease !== undefined) parseCount(values.lease, 'lease', 30, 3600);
    const host = values.host ?? '127.0.0.1';
    if (!isLoopback(host)) {
      err(ctx, `warning: listening on ${host}: other machines can reach this server. Every request but /health needs a token; put TLS (a reverse proxy) in front of it for anything but a trusted network.`);
    }
    if (values['tier-folder'] !== undefined && values.storage !== undefined) {
      throw new DitsUserError('bad-option-value', '--tier-folder is for a data dir, not with --storage', { hint: 'on S3 tiers are storage classes: see `git dits tier`' });
    }
    await rememberTierFolders(dataDir, values['tier-folder'], values['tier-archive']);
    // the reaper's policy: the dits.tier.* settings of the user running the server
    const config = await readDitsConfig(ctx.cwd);
    const tierPolicy = readTierPolicy(config);
    const tierSchedule = values['tier-schedule'] ?? tierPolicy.schedule;
    try {
      parseScheduleTime(tierSchedule);
    } catch (e) {
      throw new DitsUserError('bad-option-value', `--tier-schedule: ${(e as Error).message}`, { hint: 'e.g. --tier-schedule 03:00 (UTC), or off' });
    }
    // the mirror: flag, else the git config of the user running the server
    const mirror = values.mirror ?? config.string('dits.server.mirror');
    const mirrorSchedule = values['mirror-schedule'] ?? config.string('dits.server.mirrorSchedule') ?? '04:00';
    if (mirror === undefined && values['mirror-schedule'] !== undefined) throw new DitsUserError('bad-option-value', '--mirror-schedule needs --mirror', { hint: 'e.g. --mirror /mnt/backup/dits --mirror-schedule 04:00' });
    let mirrorUrl: string | undefined;
    if (mirror !== undefined) {
      const { parseMirrorUrl, parseMirrorSchedule } = await import('../../../server/mirror-scheduler.js');
      const root = parseMirrorUrl(mirror, ctx.cwd);
      mirrorUrl = root.kind === 'file' ? root.path : mirror; // a relative path from here
      try {
        parseMirrorSchedule(mirrorSchedule);
      } catch (e) {
        throw new DitsUserError('bad-option-value', `--mirror-schedule: ${(e as Error).message}`, { hint: (e as DitsUserError).hint ?? 'e.g. 04:00 (UTC), hourly, or off' });
      }
    }
    const server = await import('../../../server/index.js');
    const logger = values.quiet ? server.silentLogger : server.createJsonLogger((line: string) => ctx.stderr.write(line + '\n'));
    // `storage` (s3://bucket/prefix): content in S3 instead of the data dir; clients then
    // move pack bytes to and from S3 with presigned URLs, unless --proxy-bytes (clients
    // that cannot reach the S3 endpoint) keeps every byte going through this server.
    const options: Parameters<typeof server.startServer>[0] = {
      dataDir,
      host,
      port,
      logger,
      ...(values.storage === undefined ? {} : { storage: values.storage }),
      ...(values['proxy-bytes'] === true ? { direct: false } : {}),
      tierPolicy,
      tierSchedule,
      ...(mirrorUrl === undefined ? {} : { mirror: mirrorUrl, mirrorSchedule, mirrorHoldMs: Number(ctx.env.DITS_MIRROR_HOLD_MS ?? 0) }),
    };
    let running: Awaited<ReturnType<typeof server.startServer>>;
    try {
      running = await server.startServer(options);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'EADDRINUSE') throw new DitsUserError('port-in-use', `port ${port} on ${host} is already in use`, { hint: 'pick another with --port (0: any free port)' });
      if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new DitsUserError('bad-host', `cannot listen on ${host}: not an address of this machine`);
      throw e;
    }
    out(ctx, `Dits server listening on ${running.url} (data: ${dataDir})`);
    out(ctx, `Remotes: git remote add origin dits::${running.url}/<owner>/<repo>. Stop with Ctrl-C.`);
    if (running.mirror) out(ctx, `Mirror: ${running.mirror.location} (${mirrorSchedule === 'off' ? 'only when asked: POST /api/mirror/run' : `${mirrorSchedule} UTC`}; GET /api/mirror shows the last run).`);
    const workerArgs = ['--data', dataDir, ...(values.storage === undefined ? [] : ['--storage', values.storage]), ...(values.lease === undefined ? [] : ['--lease', values.lease]), ...(values.quiet ? ['--quiet'] : [])];
    const workers = workerCount > 0 ? superviseWorkers(ctx, workerCount, workerArgs) : undefined;
    if (workers) out(ctx, `Job workers: ${workerCount} (\`git dits server status\` shows the queue).`);
    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        // a second signal exits at once
        process.once('SIGINT', () => process.exit(130));
        process.once('SIGTERM', () => process.exit(143));
        err(ctx, `dits serve: ${signal}, shutting down (requests in flight finish first)`);
        Promise.all([running.close(), workers?.stop()]).then(() => resolve(), (e: unknown) => {
          err(ctx, `dits serve: shutdown failed: ${e instanceof Error ? e.message : String(e)}`);
          resolve();
        });
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    return 0;
  },
};

export const commands = { serve };
