/**
 * The only impure entry of the server: opens the data dir's database, puts the app on
 * a socket, and shuts down gracefully.
 *
 * `startServer` is what `git dits serve` calls. Run directly
 * (`node dist/server/main.js --data DIR [--host H] [--port N]`) it logs JSON lines to
 * stdout, and on SIGINT/SIGTERM closes and exits 0.
 *
 * Shutdown (`close()`): stop accepting connections; let requests in flight finish (up
 * to `shutdownTimeoutMs`, then their connections are cut); flush the access tracker;
 * checkpoint and close SQLite.
 */
import path from 'node:path';
import { realpathSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { serve } from '@hono/node-server';
import { createAccessTracker, type AccessTracker } from './access-tracker.js';
import { createApp } from './app.js';
import { openDataDirDb, serverDbPath } from './data-dir.js';
import type { ServerDb } from './db.js';
import type { RouteModule } from './http.js';
import { createJsonLogger, silentLogger, type Logger } from './logger.js';
import { startWalCheckpointer } from './wal-checkpointer.js';
import { createStorageTransferStats, storageRoutes, type StorageTransferStats } from './routes/storage.js';
import { thawRoutes } from './routes/thaw.js';
import { recordStorageLocation } from './repo-sizes.js';
import { createStorageBackend, s3OptionsFromEnv, type StorageBackendOptions } from './storage-backend.js';
import { JobQueue } from './jobs/queue.js';
import { enqueueIfVideo, enqueueInspection, manifestIdOfKey } from './jobs/video-manifests.js';
import { startTierScheduler, type TierScheduler } from './tier-scheduler.js';
import { accessEntriesOf, tierCatalogFile } from './tier-access.js';
import { serverKeepHot, tierGitCacheDir } from './tier-keep-hot.js';
import { runReaper } from '../src/tier/reaper.js';
import { DEFAULT_POLICY, type TierPolicy } from '../src/tier/policy.js';
import { tierStorageOf } from '../src/tier/tier-storage.js';
import { parseMirrorSchedule, parseMirrorUrl, startMirrorScheduler, type MirrorScheduler } from './mirror-scheduler.js';
import { mirrorRoutes } from './routes/mirror.js';

export interface StartServerOptions {
  dataDir: string;
  /** Loopback unless another address is passed explicitly. */
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  logger?: Logger;
  clock?: () => Date;
  /** How long in-flight requests may take to finish once shutdown starts. */
  shutdownTimeoutMs?: number;
  accessFlushIntervalMs?: number;
  /** How often the background worker checkpoints the WAL. */
  checkpointIntervalMs?: number;
  maxJsonBytes?: number;
  /** Feature routers added to the app (see server/README.md). */
  routes?: readonly RouteModule[];
  /** Where repositories' objects live: `s3://bucket/prefix`, or (default) `<dataDir>/repos/`. */
  storage?: string;
  /** S3 settings for `storage` (default: endpoint from AWS_ENDPOINT_URL[_S3], the SDK's chain for the rest). */
  s3?: StorageBackendOptions['s3'];
  /**
   * With S3 behind: hand clients presigned URLs so pack bytes go direct (default true).
   * false when clients cannot reach the S3 endpoint: every byte then passes through here.
   */
  direct?: boolean;
  /** Validity of presigned URLs (default 15 minutes). */
  presignExpiresInSeconds?: number;
  /** A folder per tier for the folder back end (default: `<dataDir>/tier-folders.json` if present). */
  tierFolders?: StorageBackendOptions['tierFolders'];
  /** The reaper's policy for every repository (default: DEFAULT_POLICY: 30 d, 6 months, 2 years, nightly at 03:00 UTC). */
  tierPolicy?: TierPolicy;
  /** When the reaper runs: "HH:MM" UTC, or 'off' (default: the policy's schedule). */
  tierSchedule?: string;
  /** Keep the storage mirrored there (a folder, file:// or s3:// URL, `dits::` allowed): server/mirror-scheduler.ts. */
  mirror?: string;
  /** When the mirror runs (calendar forms, UTC; default 04:00). */
  mirrorSchedule?: string;
  /** tests only: each write to the mirror waits this long (see mirror-scheduler.ts) */
  mirrorHoldMs?: number;
}

export interface RunningServer {
  url: string;
  host: string;
  port: number;
  db: ServerDb;
  access: AccessTracker;
  /** Bytes proxied through this server and presigned URLs handed out, since start. */
  storageStats: StorageTransferStats;
  /** The nightly tier reaper (tests call `tick()`). */
  tierScheduler: TierScheduler;
  /** The scheduled mirror, when `mirror` is set. */
  mirror: MirrorScheduler | null;
  /** Graceful shutdown; resolves when SQLite is closed. Idempotent. */
  close(): Promise<void>;
}

export const DEFAULT_HOST = '127.0.0.1';

export async function startServer(options: StartServerOptions): Promise<RunningServer> {
  const host = options.host ?? DEFAULT_HOST;
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? (() => new Date());
  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? 10_000;
  // first, so a bad storage URL fails before anything is opened
  const backend = createStorageBackend({
    dataDir: options.dataDir,
    storage: options.storage,
    s3: options.s3 ?? s3OptionsFromEnv(process.env),
    direct: options.direct,
    presignExpiresInSeconds: options.presignExpiresInSeconds,
    clock,
    tierFolders: options.tierFolders,
  });
  // a bad mirror URL or schedule fails before anything is opened, too
  if (options.mirror !== undefined) {
    parseMirrorUrl(options.mirror);
    parseMirrorSchedule(options.mirrorSchedule ?? '04:00');
  }
  const db = openDataDirDb(options.dataDir);
  // Checkpoints run in a worker (see wal-checkpointer.ts); the automatic one only if
  // the WAL reaches ~40 MB.
  db.sqlite.pragma('wal_autocheckpoint = 10000');
  const checkpointer = startWalCheckpointer(serverDbPath(options.dataDir), {
    intervalMs: options.checkpointIntervalMs,
    onError: (message) => logger.warn('background checkpoint failed', { message }),
  });
  const access = createAccessTracker(db, {
    clock,
    flushIntervalMs: options.accessFlushIntervalMs,
    onError: (err) => logger.error('access flush failed', { err }),
  });
  // `git dits server status` reads where the content lives from the data dir
  recordStorageLocation(db, options.storage ?? null);
  const storageStats = createStorageTransferStats();
  // a push that stores a new video manifest fills the job queue (server/jobs/)
  const jobs = new JobQueue(db, { now: () => clock().getTime() });
  const storage = storageRoutes(backend, {
    stats: storageStats,
    onStored: (repo, key, repoStorage) => {
      if (manifestIdOfKey(key) === null) return;
      enqueueIfVideo(jobs, repo, repoStorage, key).then(
        (id) => id !== null && logger.info('job queued', { repo, key, job: id }),
        (err: unknown) => logger.warn('could not read a new manifest\'s header', { repo, key, err }),
      );
    },
    onPresignedPut: (repo, key) => {
      if (enqueueInspection(jobs, repo, key) !== null) logger.info('manifest inspection queued', { repo, key });
    },
  });
  // storage jobs (the tier reaper's run on a repository, the mirror's sync of one) one at a
  // time: a pack is never copied to the mirror while the reaper changes its class or folder
  let storageJobs: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = storageJobs.then(fn);
    storageJobs = next.catch(() => undefined);
    return next;
  };
  const mirror = options.mirror === undefined ? null : startMirrorScheduler(db, {
    url: options.mirror,
    schedule: options.mirrorSchedule,
    clock,
    logger,
    storageOf: (repo) => backend.forRepo(repo),
    exclusive,
    s3: options.s3 ?? s3OptionsFromEnv(process.env),
    holdMs: options.mirrorHoldMs,
  });
  const app = createApp({ db, clock, logger, access, maxJsonBytes: options.maxJsonBytes, storage: backend, routes: [storage, thawRoutes(backend, { cacheDir: path.join(options.dataDir, 'tier', 'thaw-cache') }), mirrorRoutes(mirror), ...(options.routes ?? [])] });

  let server: Server;
  let info: AddressInfo;
  try {
    [server, info] = await new Promise<[Server, AddressInfo]>((resolve, reject) => {
      const s = serve({ fetch: app.fetch, hostname: host, port: options.port ?? 0 }, (addr) => resolve([s as Server, addr]));
      s.once('error', reject);
    });
  } catch (err) {
    await mirror?.stop();
    access.close();
    await checkpointer.stop();
    db.close();
    throw err;
  }

  server.on('error', (err) => logger.error('server error', { err }));

  // the tier reaper, nightly: each repository's catalog in <dataDir>/tier/, its reads from
  // the access table (flushed first), its keep-hot set from its git data and the list a
  // client published (server/tier-keep-hot.ts)
  const tierPolicy = options.tierPolicy ?? DEFAULT_POLICY;
  const tierScheduler = startTierScheduler(db, {
    at: options.tierSchedule ?? tierPolicy.schedule,
    clock,
    logger,
    reap: (repo, signal) => exclusive(async () => {
      const tiered = tierStorageOf(await backend.forRepo(repo));
      if (tiered === null) return { skipped: 'this storage has no tiers' };
      if (tiered.tierProfile.classes === null) return { skipped: tiered.tierProfile.note };
      // keep-hot from the repository's git data and the published list (a throw: nothing moves)
      const keepHot = await serverKeepHot(tiered, tierGitCacheDir(options.dataDir, repo), tierPolicy.keepHot, clock().getTime());
      access.flush();
      const r = await runReaper(tiered, tierCatalogFile(options.dataDir, repo), tierPolicy, {
        access: accessEntriesOf(db, repo),
        now: clock().getTime(),
        apply: { signal },
        ...(keepHot.manifests ? { keepHotManifests: keepHot.manifests } : {}),
        // no pattern set here nor published: the default branch, which graduation overrides
        keepHotIsDefault: keepHot.summary.patterns.every((p) => p === '(default branch)'),
      });
      return { marked: r.apply?.marked ?? 0, moved: r.apply?.moved ?? 0, movedBytes: r.apply?.movedBytes ?? 0, waiting: r.apply?.waiting ?? 0, graduated: r.plan.graduated, notes: r.plan.notes, keepHot: keepHot.summary };
    }),
  });

  let inFlight = 0;
  let closing: Promise<void> | undefined;
  // prepended: runs before the app can write the response head
  server.prependListener('request', (_req, res) => {
    inFlight++;
    res.once('close', () => inFlight--);
    // requests that arrive on kept-alive connections during shutdown are the last on them
    if (closing !== undefined) res.shouldKeepAlive = false;
  });

  const urlHost = info.family === 'IPv6' ? `[${info.address}]` : info.address;
  const url = `http://${urlHost}:${info.port}`;
  logger.info('listening', { url, dataDir: options.dataDir, storage: backend.location, direct: backend.direct });

  const close = (): Promise<void> => {
    closing ??= (async () => {
      // close() stops listening at once; the callback waits for open connections
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      logger.info('shutting down', { inFlight });
      // Idle keep-alive connections would hold close() open; connections whose request
      // finishes after this point go idle and are closed on the next tick of the poll.
      const poll = setInterval(() => server.closeIdleConnections(), 25);
      const deadline = setTimeout(() => {
        logger.warn('shutdown timeout: closing connections with requests in flight', { inFlight });
        server.closeAllConnections();
      }, shutdownTimeoutMs);
      server.closeIdleConnections();
      try {
        await closed;
      } finally {
        clearInterval(poll);
        clearTimeout(deadline);
      }
      await tierScheduler.stop();
      await mirror?.stop();
      logger.info('storage transfer totals', { ...storageStats });
      try {
        access.close();
      } catch (err) {
        logger.error('final access flush failed', { err });
      }
      await checkpointer.stop();
      db.close(); // checkpoints what is left and truncates the WAL
      logger.info('stopped');
    })();
    return closing;
  };

  return { url, host: info.address, port: info.port, db, access, storageStats, tierScheduler, mirror, close };
}

/** `--data DIR --host H --port N --storage s3://… --proxy-bytes`; throws on anything else. */
export function parseServerArgs(argv: readonly string[]): { dataDir: string; host?: string; port?: number; storage?: string; direct?: boolean } {
  let dataDir: string | undefined;
  let direct: boolean | undefined;
  let storage: string | undefined;
  let host: string | undefined;
  let port: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = argv[i + 1];
    if (arg === '--proxy-bytes') {
      direct = false;
      continue;
    }
    if (arg !== '--data' && arg !== '--host' && arg !== '--port' && arg !== '--storage') throw new Error(`unknown argument ${arg}`);
    if (value === undefined) throw new Error(`${arg} needs a value`);
    i++;
    if (arg === '--data') dataDir = value;
    else if (arg === '--host') host = value;
    else if (arg === '--storage') storage = value;
    else {
      if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw new Error(`invalid port ${value}`);
      port = Number(value);
    }
  }
  if (dataDir === undefined) throw new Error('--data DIR is required');
  return { dataDir, host, port, ...(storage === undefined ? {} : { storage }), ...(direct === undefined ? {} : { direct }) };
}

async function runAsProcess(): Promise<void> {
  // One write per turn of the event loop, not one per request line.
  let pending: string[] = [];
  let scheduled = false;
  const flushLogs = (): void => {
    scheduled = false;
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    process.stdout.write(text);
  };
  const logger = createJsonLogger((line) => {
    pending.push(line + '\n');
    if (!scheduled) {
      scheduled = true;
      setImmediate(flushLogs);
    }
  });
  const exit = (code: number): never => {
    flushLogs();
    process.exit(code);
  };
  let args: ReturnType<typeof parseServerArgs>;
  try {
    args = parseServerArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`dits server: ${(err as Error).message}\nusage: main.js --data DIR [--host 127.0.0.1] [--port 0] [--storage s3://bucket/prefix] [--proxy-bytes]\n`);
    process.exitCode = 2;
    return;
  }
  const running = await startServer({ ...args, logger });
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      logger.warn('second signal: exiting now', { signal });
      exit(1);
    }
    logger.info('signal', { signal });
    running.close().then(
      () => exit(0),
      (err: unknown) => {
        logger.error('shutdown failed', { err });
        exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

function isMainModule(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isMainModule()) {
  runAsProcess().catch((err: unknown) => {
    process.stderr.write(`dits server: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
