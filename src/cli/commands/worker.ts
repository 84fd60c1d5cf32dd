/**
 * `git dits worker`: runs the server's job workers (proxies of pushed video) in this
 * process, against a server's data dir, until SIGINT/SIGTERM; the running jobs are then
 * handed back at once. Any number of these, on this machine or others sharing the data
 * dir's disk, and `git dits serve --workers N`, share one queue: a job goes to one worker.
 * Content is read where the server recorded it (or `--storage`; S3 settings from the
 * environment, as for `git dits serve`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DitsUserError } from '../../errors.js';
import { err, out, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';
import { resolveDataDir } from '../server-data-dir.js';

const workerOptions = {
  data: { type: 'string', value: '<dir>', description: 'the server\'s data directory (default: as for `git dits serve`)' },
  storage: { type: 'string', value: 's3://bucket/prefix', description: 'where the content is, when the server did not record it' },
  workers: { type: 'string', value: '<n>', description: 'workers in this process (default 1)' },
  lease: { type: 'string', value: '<seconds>', description: 'how long a job stays leased without a heartbeat (default 30; heartbeats every third of it)' },
  id: { type: 'string', value: '<name>', description: 'name of these workers in `git dits server status` (default host-pid)' },
  quiet: { type: 'boolean', short: 'q', description: 'no log on stderr' },
} as const satisfies OptionTable;

export function parseCount(v: string | undefined, what: string, fallback: number, max: number, min = 1): number {
  if (v === undefined) return fallback;
  if (!/^\d{1,6}$/.test(v) || Number(v) < min || Number(v) > max) throw new DitsUserError('bad-usage', `invalid ${what} '${v}'`, { hint: `a whole number from ${min} to ${max}`, exitCode: 2 });
  return Number(v);
}

export async function runWorkers(ctx: CliContext, o: { dataDir: string; storage?: string; workers: number; leaseSeconds: number; id: string; quiet: boolean }, signal: AbortSignal): Promise<void> {
  const server = await import('../../../server/index.js');
  if (!fs.existsSync(server.serverDbPath(o.dataDir))) {
    throw new DitsUserError('no-server-data', `no Dits server data in ${o.dataDir}`, { hint: 'check --data; the workers serve the queue of a server set up with `git dits server user add ... --data <dir>`' });
  }
  // every job needs ffmpeg: say what to install now, not three failed attempts per job later
  const { openFfmpeg } = await import('../../media/ffmpeg.js');
  await openFfmpeg({ env: ctx.env });
  const db = server.openDataDirDb(o.dataDir);
  try {
    const storage = o.storage ?? server.recordedStorageLocation(db) ?? undefined;
    const backend = server.createStorageBackend({ dataDir: o.dataDir, ...(storage === undefined ? {} : { storage }), s3: server.s3OptionsFromEnv(ctx.env) });
    const queue = new server.JobQueue(db, { leaseMs: o.leaseSeconds * 1000 });
    const logger = o.quiet ? server.silentLogger : server.createJsonLogger((line: string) => ctx.stderr.write(line + '\n'));
    const workRoot = path.join(o.dataDir, 'work');
    fs.mkdirSync(workRoot, { recursive: true, mode: 0o700 });
    const holdMs = Number(ctx.env.DITS_WORKER_HOLD_MS ?? 0);
    const handlers = server.jobHandlers();
    await Promise.all(
      Array.from({ length: o.workers }, (_, i) =>
        server.runWorker({
          id: o.workers === 1 ? o.id : `${o.id}-${i + 1}`,
          queue,
          backend,
          handlers,
          signal,
          workRoot,
          indexCacheDir: path.join(o.dataDir, 'cache', 'pack-indexes'),
          logger,
          env: ctx.env,
          ...(Number.isFinite(holdMs) && holdMs > 0 ? { holdMs } : {}),
        }),
      ),
    );
  } finally {
    db.close();
  }
}

const worker: Command = {
  summary: 'Run the Dits server\'s job workers (proxies of pushed video) until Ctrl-C',
  usage: 'git dits worker [--data <dir>] [--storage s3://bucket/prefix] [--workers <n>] [--lease <seconds>] [--id <name>] [--quiet]',
  options: workerOptions,
  async run(args, ctx) {
    const { values } = parseOptions(args, workerOptions);
    const dataDir = resolveDataDir(ctx, values.data);
    const workers = parseCount(values.workers, 'number of workers', 1, 64);
    const leaseSeconds = parseCount(values.lease, 'lease', 30, 3600);
    const ac = new AbortController();
    const stop = (signal: NodeJS.Signals): void => {
      if (ac.signal.aborted) process.exit(signal === 'SIGINT' ? 130 : 143);
      err(ctx, `dits worker: ${signal}, handing the running jobs back`);
      ac.abort();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    if (!fs.existsSync(path.join(dataDir, 'server.sqlite'))) {
      throw new DitsUserError('no-server-data', `no Dits server data in ${dataDir}`, { hint: 'check --data; the workers serve the queue of a server set up with `git dits server user add ... --data <dir>`' });
    }
    if (!values.quiet) out(ctx, `Dits workers (${workers}) on ${dataDir}. Stop with Ctrl-C.`);
    try {
      await runWorkers(ctx, { dataDir, storage: values.storage, workers, leaseSeconds, id: values.id ?? `${os.hostname()}-${process.pid}`, quiet: values.quiet === true }, ac.signal);
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
    return 0;
  },
};

export const commands = { worker };
