/**
 * The reaper's schedule on the server: once a day at `at` ("HH:MM" in UTC, default 03:00,
 * `dits.tier.schedule` / `git dits serve --tier-schedule`), every repository's tiers are planned and applied, one
 * repository after another, never two runs at once. The day of the last completed round
 * is kept in the `settings` table, so a server restarted at 02:59 or 03:01 neither skips
 * nor repeats a night, and one that was down at 03:00 catches up as soon as it starts. A
 * new server runs its first round at the next scheduled time, not at start-up.
 *
 * A repository whose run fails is logged and tried again at the next round; the others
 * go on. A clock that jumps (set back by hours, forward by years) at most moves one round
 * earlier or later: the round itself takes its ages from the storage (tier/plan.ts), and
 * a day already done is never run twice.
 */
import type { ServerDb } from './db.js';
import type { Logger } from './logger.js';

export interface TierSchedulerOptions {
  /** "HH:MM" (24 h, UTC), or 'off'. */
  at: string;
  clock: () => Date;
  /** How often to look whether a round is due (default 60 s). */
  checkEveryMs?: number;
  /** The repositories of one round (default: every repository in `repos`). */
  repos?: () => string[];
  /** Plans and applies one repository's tiers. */
  reap: (repo: string, signal: AbortSignal) => Promise<unknown>;
  logger: Logger;
}

export interface TierScheduler {
  /** Runs a round now if one is due (what the timer calls); resolves when it is done. */
  tick(): Promise<void>;
  /** The current round, if one runs. */
  readonly running: Promise<void> | null;
  /** Stops the timer and aborts a running round (between repositories, or through `signal`). */
  stop(): Promise<void>;
}

const SETTING = 'tier.lastRound';

/** Parses "HH:MM"; null for 'off'. */
export function parseScheduleTime(at: string): { hour: number; minute: number } | null {
  if (at === 'off') return null;
  const m = /^([01]?\d|2[0-3]):([0-5]\d)$/.exec(at.trim());
  if (!m) throw new Error(`not a time of day: ${JSON.stringify(at)} (use HH:MM, e.g. 03:00, or off)`);
  return { hour: Number(m[1]), minute: Number(m[2]) };
}

/** The UTC day ("YYYY-MM-DD") of the latest round due at `now`: today's once its time has come, else yesterday's. */
export function dueDay(now: Date, time: { hour: number; minute: number }): string {
  const todayAt = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), time.hour, time.minute);
  const day = new Date(now.getTime() >= todayAt ? todayAt : todayAt - 86_400_000);
  return day.toISOString().slice(0, 10);
}

export function startTierScheduler(db: ServerDb, opts: TierSchedulerOptions): TierScheduler {
  const time = parseScheduleTime(opts.at);
  const abort = new AbortController();
  let running: Promise<void> | null = null;
  let stopped = false;
  const repos = opts.repos ?? ((): string[] => (db.stmt('SELECT name FROM repos ORDER BY name').all() as { name: string }[]).map((r) => r.name));
  const lastRound = (): string | null => (db.stmt('SELECT value FROM settings WHERE key = ?').get(SETTING) as { value: string } | undefined)?.value ?? null;

  const round = async (day: string): Promise<void> => {
    const names = repos();
    opts.logger.info('tier round started', { day, repos: names.length });
    let failed = 0;
    for (const repo of names) {
      if (abort.signal.aborted) return; // the day stays undone: the next start runs it
      try {
        const r = await opts.reap(repo, abort.signal);
        opts.logger.info('tier round: repository done', { repo, result: r as Record<string, unknown> });
      } catch (err) {
        failed++;
        opts.logger.error('tier round: repository failed, tried again next round', { repo, error: err instanceof Error ? err.message : String(err) });
      }
    }
    if (abort.signal.aborted) return;
    db.stmt('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(SETTING, day);
    opts.logger.info('tier round finished', { day, repos: names.length, failed });
  };

  const tick = async (): Promise<void> => {
    if (time === null || stopped) return;
    if (running) return running;
    const day = dueDay(opts.clock(), time);
    const last = lastRound();
    if (last === null) {
      // a new server: the first round is the next scheduled one, not one at start-up
      db.stmt('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING').run(SETTING, day);
      return;
    }
    // a day at or before the last round is done (a clock set back does not repeat it)
    if (day <= last) return;
    running = round(day).finally(() => {
      running = null;
    });
    return running;
  };

  const timer = time === null ? null : setInterval(() => void tick(), opts.checkEveryMs ?? 60_000);
  timer?.unref();
  if (time !== null) setImmediate(() => void tick());
  return {
    tick,
    get running() {
      return running;
    },
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      abort.abort();
      await running?.catch(() => {});
    },
  };
}
