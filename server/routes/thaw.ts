/**
 * Thaws through the server (the archive behind it is the server's; clients have no S3
 * credentials of their own):
 *
 *   POST /:owner/:repo/thaw      write  {files: [{manifest, path?, range?: {startSec, endSec}}],
 *                                        tier?: expedited|standard|bulk (standard), days?: 1..365 (7),
 *                                        dryRun?: bool}
 *                                        -> 200 {id?, plan, started, alreadyRunning, alreadyRestored, failed, budget}
 *                                        402 {code: 'thaw-over-budget', estimate, budget} when the month's budget
 *                                        would be exceeded (nothing asked); 409 'thaw-unsupported' when the
 *                                        storage behind has no tiers
 *   GET  /:owner/:repo/thaw/:id  read   the record and each pack's progress (HEAD's x-amz-restore)
 *
 * The client resolves paths and revisions to manifest ids (the server has no working tree).
 * Budget: `thaw_budgets.monthly_dollars` (set by `git dits server repo budget`), against the
 * estimates of thaws recorded this calendar month (UTC). The estimate of a request is
 * reserved in one IMMEDIATE transaction before any restore is asked, so two requests at
 * once cannot both pass a budget that holds only one; afterwards the reservation becomes
 * the estimate of what was actually started (restores already running cost nothing).
 * Without a budget row, nothing is refused.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Hono } from 'hono';
import { ChunkStore } from '../../src/store/chunk-store.js';
import { AWS_US_EAST_1, FOLDER_PRICES, type PriceTable } from '../../src/tier/prices.js';
import { tierStorageOf } from '../../src/tier/tier-storage.js';
import { RETRIEVAL_TIERS, type RetrievalTier } from '../../src/tier/tiers.js';
import { estimateRestore, planThaw, thawPlanJson, totalsByTier, type ThawTarget } from '../../src/tier/thaw-plan.js';
import { packProgress, readThaw, startThaw } from '../../src/tier/thaw.js';
import { HttpError, readJson, requireRepoAccess, type AppEnv, type RouteDeps, type RouteModule } from '../http.js';
import type { ServerDb } from '../db.js';
import type { StorageBackend } from '../storage-backend.js';
import { ValidationError, type Check } from '../validate.js';

export interface ThawRoutesOptions {
  /** where the per-repository caches of pack indexes live (`<dataDir>/tier/thaw-cache`) */
  cacheDir: string;
  /** the price table for estimates (default: AWS us-east-1; folders: none) */
  prices?: PriceTable;
}

interface ThawBody {
  files: ThawTarget[];
  tier: RetrievalTier;
  days: number;
  dryRun: boolean;
}

const MAX_FILES = 10_000;

const bodyCheck: Check<ThawBody> = (value, where) => {
  const fail = (msg: string): never => {
    throw new ValidationError(`${where}: ${msg}`);
  };
  if (typeof value !== 'object' || value === null) fail('must be an object');
  const v = value as Record<string, unknown>;
  for (const k of Object.keys(v)) if (!['files', 'tier', 'days', 'dryRun'].includes(k)) fail(`unknown field ${k}${k === 'paths' || k === 'rev' ? ' (send manifest ids: the client resolves paths and revisions)' : ''}`);
  if (!Array.isArray(v.files) || v.files.length === 0 || v.files.length > MAX_FILES) fail(`files must be a list of 1..${MAX_FILES}`);
  const files = (v.files as unknown[]).map((f, i): ThawTarget => {
    if (typeof f !== 'object' || f === null) fail(`files[${i}] must be an object`);
    const o = f as Record<string, unknown>;
    if (typeof o.manifest !== 'string' || !/^[0-9a-f]{64}$/.test(o.manifest)) fail(`files[${i}].manifest must be a manifest id`);
    if (o.path !== undefined && (typeof o.path !== 'string' || o.path.length > 4096)) fail(`files[${i}].path must be a string`);
    const t: ThawTarget = { manifest: o.manifest as string, path: (o.path as string | undefined) ?? (o.manifest as string) };
    if (o.range !== undefined) {
      const r = o.range as Record<string, unknown>;
      if (typeof r !== 'object' || r === null || typeof r.startSec !== 'number' || typeof r.endSec !== 'number' || !(r.startSec >= 0) || !(r.endSec > r.startSec)) {
        fail(`files[${i}].range must be {startSec, endSec} with endSec > startSec >= 0`);
      }
      t.range = { startSec: r.startSec as number, endSec: r.endSec as number };
    }
    return t;
  });
  const tier = (v.tier ?? 'standard') as RetrievalTier;
  if (!RETRIEVAL_TIERS.includes(tier)) fail(`tier must be one of ${RETRIEVAL_TIERS.join(', ')}`);
  const days = v.days ?? 7;
  if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > 365) fail('days must be 1..365');
  if (v.dryRun !== undefined && typeof v.dryRun !== 'boolean') fail('dryRun must be true or false');
  return { files, tier, days: days as number, dryRun: v.dryRun === true };
};

export function monthOf(d: Date): string {
  return d.toISOString().slice(0, 7);
}

export function thawBudget(db: ServerDb, repoId: number, month: string): { monthly: number | null; spent: number } {
  const row = db.stmt('SELECT monthly_dollars AS m FROM thaw_budgets WHERE repo_id = ?').get(repoId) as { m: number } | undefined;
  const spent = db.stmt('SELECT COALESCE(SUM(dollars), 0) AS s FROM thaw_spend WHERE repo_id = ? AND month = ?').get(repoId, month) as { s: number };
  return { monthly: row?.m ?? null, spent: spent.s };
}

/** Sets (dollars) or removes (null) a repository's monthly thaw budget. */
export function setThawBudget(db: ServerDb, repoId: number, dollars: number | null): void {
  if (dollars === null) db.stmt('DELETE FROM thaw_budgets WHERE repo_id = ?').run(repoId);
  else db.stmt('INSERT INTO thaw_budgets (repo_id, monthly_dollars) VALUES (?, ?) ON CONFLICT(repo_id) DO UPDATE SET monthly_dollars = excluded.monthly_dollars').run(repoId, dollars);
}


export function thawRoutes(backend: StorageBackend, options: ThawRoutesOptions): RouteModule {
  return (deps: RouteDeps) => {
    const app = new Hono<AppEnv>();

    app.post('/:owner/:repo/thaw', async (c) => {
      const { repo, principal } = requireRepoAccess(c, deps.db, 'write');
      const body = await readJson(c, bodyCheck, deps.maxJsonBytes);
      const storage = tierStorageOf(await backend.forRepo(repo.name));
      if (!storage) throw new HttpError(409, `the storage behind ${repo.name} (${backend.location}) has no storage tiers: nothing is frozen there`, 'thaw-unsupported');
      const prices = options.prices ?? (storage.tierProfile.name === 'folder' ? FOLDER_PRICES : AWS_US_EAST_1);
      const dir = path.join(options.cacheDir, ...repo.name.split('/'));
      fs.mkdirSync(dir, { recursive: true });
      const store = ChunkStore.open(dir, { create: true });
      try {
        const plan = await planThaw(storage, store, body.files, { remoteName: 'server', prices, days: body.days });
        const total = totalsByTier(plan).find((t) => t.tier === body.tier)!;
        const frozen = plan.packs.some((p) => p.state === 'frozen');
        if (frozen && total.unavailableFor.length) {
          throw new HttpError(400, `${total.unavailableFor.join(', ')} offers no ${body.tier} retrieval`, 'restore-tier-unavailable', { plan: thawPlanJson(plan, body.tier) });
        }
        const now = deps.clock();
        const month = monthOf(now);
        const budgetNow = thawBudget(deps.db, repo.id, month);
        const budgetJson = (b: { monthly: number | null; spent: number }) => ({ monthly: b.monthly, spent: b.spent, month, remaining: b.monthly === null ? null : Math.max(0, b.monthly - b.spent) });
        if (body.dryRun || !frozen) {
          return c.json({ plan: thawPlanJson(plan, body.tier), started: 0, alreadyRunning: 0, alreadyRestored: 0, failed: [], budget: budgetJson(budgetNow) });
        }
        // reserve the estimate (or refuse) before anything is asked
        const reservation = deps.db.tx(() => {
          const b = thawBudget(deps.db, repo.id, month);
          if (b.monthly !== null && b.spent + total.total > b.monthly + 1e-9) return { refused: b };
          const id = deps.db.stmt('INSERT INTO thaw_spend (repo_id, thaw_id, month, at, actor, dollars) VALUES (?, ?, ?, ?, ?, ?)').run(repo.id, 'pending', month, now.toISOString(), principal.name, total.total).lastInsertRowid;
          return { row: Number(id) };
        });
        if ('refused' in reservation) {
          const b = reservation.refused!;
          throw new HttpError(402, `this thaw would cost ${total.total.toFixed(4)} USD at ${body.tier}; ${repo.name} has ${Math.max(0, b.monthly! - b.spent).toFixed(4)} of its ${b.monthly!.toFixed(2)} USD thaw budget left for ${month}`, 'thaw-over-budget', {
            estimate: total,
            budget: budgetJson(b),
            plan: thawPlanJson(plan, body.tier),
          });
        }
        let result;
        try {
          result = await startThaw(storage, plan, { tier: body.tier, days: body.days, by: principal.name, now: now.getTime() });
        } catch (err) {
          deps.db.stmt('DELETE FROM thaw_spend WHERE id = ?').run(reservation.row);
          throw err;
        }
        // what was actually started is what it costs
        const startedPacks = plan.packs.filter((p) => result.record.packs.find((r) => r.packId === p.packId)?.result === 'started');
        const cost = estimateRestore(prices, startedPacks, body.days).filter((e) => e.tier === body.tier).reduce((s, e) => s + e.total, 0);
        deps.db.stmt('UPDATE thaw_spend SET thaw_id = ?, dollars = ? WHERE id = ?').run(result.record.id, cost, reservation.row);
        return c.json({
          id: result.record.id,
          plan: thawPlanJson(plan, body.tier),
          started: result.started,
          alreadyRunning: result.alreadyRunning,
          alreadyRestored: result.alreadyRestored,
          failed: result.failed,
          budget: budgetJson(thawBudget(deps.db, repo.id, month)),
        });
      } finally {
        store.close();
      }
    });

    app.get('/:owner/:repo/thaw/:id', async (c) => {
      const { repo } = requireRepoAccess(c, deps.db, 'read');
      const id = c.req.param('id');
      if (!/^[0-9TZ]{16}-[0-9a-f]{8}$/.test(id)) throw new HttpError(400, 'not a thaw id', 'invalid-request');
      const raw = await backend.forRepo(repo.name);
      const record = await readThaw(raw, id);
      if (record === null) throw new HttpError(404, `no thaw ${id} in ${repo.name}`, 'thaw-not-found');
      const storage = tierStorageOf(raw);
      const progress = storage ? await packProgress(storage, record.packs.map((p) => ({ ...p, key: `v1/packs/${p.packId}.pack` }))) : [];
      return c.json({
        ...record,
        progress: progress.map((p) => ({ packId: p.packId, state: p.state, ...(p.expiry !== undefined ? { expiry: new Date(p.expiry).toISOString() } : {}) })),
        done: progress.length > 0 && progress.every((p) => p.state === 'restored' || p.state === 'readable'),
      });
    });

    return app;
  };
}
