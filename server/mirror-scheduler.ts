/**
 * The server's storage mirrored on a schedule (`git dits serve --mirror <url or path>
 * [--mirror-schedule 04:00]`): at each scheduled time every repository's storage is copied to
 * the mirror with syncMirror (src/lifecycle/mirror-sync.ts: only what the mirror lacks,
 * streamed and verified, refs last by compare-and-swap, nothing deleted), one repository
 * after another, into `<mirror>/<owner>/<name>`: the same layout as the server's own data
 * dir or S3 prefix, so each repository's copy is a remote a clone can use directly
 * (`dits::file://<mirror>/<owner>/<name>`) and the whole mirror can back a server
 * (`--storage`).
 *
 * Schedule: the forms `git dits schedule` takes (src/lifecycle/calendar.ts: `04:00` daily,
 * `hourly`, `*:0/15`, `off`), in UTC like `--tier-schedule`. The last due time done is kept
 * in the `settings` table (`mirror.lastDue`), so a restart neither skips nor repeats a run
 * and a server down at the time catches up when it starts; a new server's first run is the
 * next scheduled one. `runNow()` (POST /api/mirror/run, site admins) is the same run.
 *
 * One at a time: a run asked for while one is going joins it. Each repository's sync runs
 * inside `exclusive` (the server passes one lock shared with the tier reaper's per
 * repository runs), so a pack is never copied while the reaper changes its class or
 * moves it to a tier folder; a pack already in an archive class (frozen) is not copied
 * (syncMirror lists it, the mirror keeps its older refs) and is tried again next run.
 *
 * Faults: a mirror that cannot be reached (its folder missing: a share not mounted, S3 down)
 * fails the run before anything is written anywhere; a repository whose sync throws is
 * logged and the others go on; either way the primary is only read, and the next run
 * starts over from the two listings (syncMirror copies only what is missing, so a run
 * killed anywhere, the server with it, is completed by the next one). The state (running,
 * last run and its result per repository, next run) is kept in `settings` (`mirror.state`)
 * for GET /api/mirror, `/api/status` and `git dits server status`; a run found `running`
 * at start-up (the server was killed) is shown as interrupted, and run again at once.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseCalendar, type Calendar } from '../src/lifecycle/calendar.js';
import { MirrorUnreachableError, syncMirror } from '../src/lifecycle/mirror-sync.js';
import { DitsUserError } from '../src/errors.js';
import type { ObjectStorage } from '../src/transfer/object-storage.js';
import { openStorage, parseStorageUrl, type OpenStorageOptions } from '../src/transfer/storage-url.js';
import type { ServerDb } from './db.js';
import type { Logger } from './logger.js';
import { MIRROR_STATE, readMirrorState, type MirrorRun, type MirrorState } from './mirror-state.js';

export { readMirrorState, type MirrorRun, type MirrorState };

export interface MirrorSchedulerOptions {
  /** the mirror: a path, file:// or s3:// URL, with or without `dits::` */
  url: string;
  /** calendar.ts forms, in UTC; default 04:00 */
  schedule?: string;
  clock: () => Date;
  logger: Logger;
  /** the repositories of one run (default: every repository in `repos`) */
  repos?: () => string[];
  /** a repository's storage on this server */
  storageOf: (repo: string) => Promise<ObjectStorage>;
  /** runs `fn` while no other storage job (the tier reaper) runs on the server */
  exclusive?: <T>(fn: () => Promise<T>) => Promise<T>;
  s3?: OpenStorageOptions['s3'];
  checkEveryMs?: number;
  concurrency?: number;
  /** tests only (`DITS_MIRROR_HOLD_MS`): each write to the mirror waits this long first, so a test can kill the server mid-run */
  holdMs?: number;
}

export interface MirrorScheduler {
  readonly location: string;
  /** a run now (or the one running): what the schedule and POST /api/mirror/run call */
  runNow(trigger?: MirrorRun['trigger']): Promise<MirrorRun>;
  /** runs if one is due (the timer calls it) */
  tick(): Promise<void>;
  state(): MirrorState;
  stop(): Promise<void>;
}

const LAST_DUE = 'mirror.lastDue';
const FIRST_NOT_COPIED = 5;

/** The mirror's root: `dits::` stripped; a Dits server is refused (a mirror of a server's storage is a folder or a bucket). */
export function parseMirrorUrl(url: string, cwd = process.cwd()): { kind: 'file'; path: string } | { kind: 's3'; bucket: string; prefix: string } {
  const text = url.trim().replace(/^dits::/, '');
  const parsed = parseStorageUrl(text, cwd);
  if (parsed.kind === 'http') {
    throw new DitsUserError('bad-option-value', `--mirror ${url}: a Dits server cannot be the mirror of a server's storage`, {
      hint: 'give a folder (a path or dits::file:///path) or a bucket (dits::s3://bucket/prefix); each repository is copied to <mirror>/<owner>/<name>',
    });
  }
  return parsed;
}

/** The schedule, checked (null: off). */
export function parseMirrorSchedule(spec: string): Calendar | null {
  return parseCalendar(spec);
}

function firesUtc(cal: Calendar, d: Date): boolean {
  return cal.hours.includes(d.getUTCHours()) && cal.minutes.includes(d.getUTCMinutes());
}

/** The last time it fired at or before `at` (UTC), ms. */
export function previousFireUtc(cal: Calendar, at: number): number {
  let t = Math.floor(at / 60_000) * 60_000;
  for (let i = 0; i <= 2 * 24 * 60; i++, t -= 60_000) if (firesUtc(cal, new Date(t))) return t;
  throw new Error(`schedule ${cal.onCalendar} never fires`);
}

/** The first time it fires strictly after `after` (UTC), ms. */
export function nextFireUtc(cal: Calendar, after: number): number {
  let t = Math.floor(after / 60_000) * 60_000 + 60_000;
  for (let i = 0; i <= 2 * 24 * 60; i++, t += 60_000) if (firesUtc(cal, new Date(t))) return t;
  throw new Error(`schedule ${cal.onCalendar} never fires`);
}

export function startMirrorScheduler(db: ServerDb, opts: MirrorSchedulerOptions): MirrorScheduler {
  const root = parseMirrorUrl(opts.url);
  const scheduleSpec = opts.schedule ?? '04:00';
  const cal = parseMirrorSchedule(scheduleSpec);
  const location = root.kind === 'file' ? root.path : `s3://${root.bucket}${root.prefix ? `/${root.prefix}` : ''}`;
  const repos = opts.repos ?? ((): string[] => (db.stmt('SELECT name FROM repos ORDER BY name').all() as { name: string }[]).map((r) => r.name));
  const exclusive = opts.exclusive ?? (<T>(fn: () => Promise<T>): Promise<T> => fn());
  const setting = (key: string, value: string): void => {
    db.stmt('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  };
  const getSetting = (key: string): string | null => (db.stmt('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined)?.value ?? null;
  const now = (): number => opts.clock().getTime();

  // what the last process left: a run still 'running' was cut short (killed)
  const before = readMirrorState(db);
  const state: MirrorState = { mirror: location, schedule: scheduleSpec, nextRun: null, running: null, lastRun: before?.lastRun ?? null };
  if (before?.running) {
    state.lastRun = { ...before.running, result: 'interrupted', error: 'the server stopped during this run; the next run completes it' };
    opts.logger.warn('mirror run interrupted (the server stopped during it): running it again now', { mirror: location, startedAt: before.running.startedAt });
  }
  const save = (): void => {
    state.nextRun = cal === null ? null : new Date(nextFireUtc(cal, now())).toISOString();
    setting(MIRROR_STATE, JSON.stringify(state));
  };
  save();

  const target = async (repo: string): Promise<ObjectStorage> => {
    if (root.kind === 'file') {
      // the root is never created here: a share unmounted mid-run must not fill the mount point
      await checkRoot().catch((err: unknown) => {
        throw new MirrorUnreachableError(root.path, err);
      });
      const dir = path.join(root.path, ...repo.split('/'));
      await fs.mkdir(dir, { recursive: true });
      return openStorage(dir);
    }
    return openStorage(`s3://${root.bucket}/${root.prefix ? `${root.prefix}/` : ''}${repo}`, { s3: opts.s3 });
  };

  /** The mirror's root must be there (a share not mounted is not an empty mirror to fill). */
  const checkRoot = async (): Promise<void> => {
    if (root.kind === 'file') {
      const st = await fs.stat(root.path).catch(() => null);
      if (!st?.isDirectory()) throw new Error(`the mirror folder ${root.path} does not exist (or is not a folder): mount the share or create it`);
      return;
    }
    const probe = await openStorage(`s3://${root.bucket}${root.prefix ? `/${root.prefix}` : ''}`, { s3: opts.s3 });
    await probe.checkAccess?.();
  };

  const held = (to: ObjectStorage): ObjectStorage => {
    const holdMs = opts.holdMs ?? 0;
    if (holdMs <= 0) return to;
    return new Proxy(to, {
      get(t, prop) {
        const v = Reflect.get(t, prop, t) as unknown;
        if (typeof v !== 'function') return v;
        const f = v as (...a: unknown[]) => unknown;
        if (prop !== 'put') return f.bind(t);
        return async (...a: unknown[]) => {
          await new Promise((r) => setTimeout(r, holdMs));
          return f.apply(t, a);
        };
      },
    });
  };

  let running: Promise<MirrorRun> | null = null;
  let stopped = false;
  const abort = new AbortController();

  const run = async (trigger: MirrorRun['trigger']): Promise<MirrorRun> => {
    const r: MirrorRun = { trigger, startedAt: new Date(now()).toISOString(), repos: [] };
    state.running = r;
    save();
    opts.logger.info('mirror run started', { mirror: location, trigger });
    try {
      await checkRoot();
    } catch (err) {
      r.error = `the mirror at ${location} cannot be reached: ${err instanceof Error ? err.message : String(err)}; nothing was changed, the next run tries again`;
      r.result = 'failed';
    }
    if (r.result === undefined) {
      for (const repo of repos()) {
        if (abort.signal.aborted) break;
        try {
          const res = await exclusive(async () => syncMirror(await opts.storageOf(repo), held(await target(repo)), { concurrency: opts.concurrency }));
          const clean = res.notCopied.length === 0 && res.heldBack.length === 0 && res.refs !== 'held-back';
          r.repos.push({
            repo,
            result: clean ? 'ok' : 'partial',
            refs: res.refs,
            copied: res.copied,
            notCopied: res.notCopied.slice(0, FIRST_NOT_COPIED),
            notCopiedCount: res.notCopied.length,
            heldBack: res.heldBack.length,
          });
          opts.logger.info('mirror: repository done', { repo, refs: res.refs, copied: res.copied, notCopied: res.notCopied.length, seconds: res.seconds });
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          if ((err as { code?: string }).code === 'no-such-remote') {
            r.repos.push({ repo, result: 'ok', refs: 'none', note: 'nothing pushed yet' });
            continue;
          }
          r.repos.push({ repo, result: 'failed', error: message });
          opts.logger.error('mirror: repository failed, tried again next run', { repo, error: message });
          // the mirror went away mid-run: the other repositories would fail the same way
          if ((err as { code?: string }).code === 'mirror-unreachable') {
            r.error = message;
            break;
          }
        }
      }
      const failed = r.repos.filter((x) => x.result === 'failed').length;
      r.result = abort.signal.aborted ? 'interrupted' : r.error !== undefined || failed > 0 ? 'failed' : r.repos.some((x) => x.result === 'partial') ? 'partial' : 'ok';
    }
    r.finishedAt = new Date(now()).toISOString();
    state.running = null;
    state.lastRun = r;
    save();
    const fields = { mirror: location, result: r.result, repos: r.repos.length, failed: r.repos.filter((x) => x.result === 'failed').length, ...(r.error ? { error: r.error } : {}) };
    if (r.result === 'ok') opts.logger.info('mirror run finished', fields);
    else opts.logger.error('mirror run did not complete, tried again next run', fields);
    return r;
  };

  const runNow = (trigger: MirrorRun['trigger'] = 'admin'): Promise<MirrorRun> => {
    if (running) return running;
    if (stopped) return Promise.reject(new Error('the server is stopping'));
    running = run(trigger).finally(() => {
      running = null;
    });
    return running;
  };

  const tick = async (): Promise<void> => {
    if (cal === null || stopped || running) return;
    const due = previousFireUtc(cal, now());
    const last = getSetting(LAST_DUE);
    if (last === null) {
      // a new server: the first run is the next scheduled one
      setting(LAST_DUE, String(due));
      save();
      return;
    }
    if (due <= Number(last)) return;
    // done or failed, this due time is taken: a failed run is tried again at the next one
    setting(LAST_DUE, String(due));
    await runNow('schedule');
  };

  const timer = cal === null ? null : setInterval(() => void tick().catch((err: unknown) => opts.logger.error('mirror schedule failed', { err })), opts.checkEveryMs ?? 30_000);
  timer?.unref();
  // a run the last process was killed in is completed now; else whatever is due
  const interrupted = before?.running != null;
  setImmediate(() => {
    if (interrupted && !stopped) void runNow('schedule').catch((err: unknown) => opts.logger.error('mirror run failed', { err }));
    else if (cal !== null) void tick().catch((err: unknown) => opts.logger.error('mirror schedule failed', { err }));
  });
  return {
    location,
    runNow,
    tick,
    state: () => ({ ...state }),
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      abort.abort();
      await running?.catch(() => {});
    },
  };
}
