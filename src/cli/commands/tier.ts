/**
 * `git dits tier plan|apply|status|lifecycle-config`: storage tiers of a Dits remote.
 * Thin: the catalog, planner and reaper are in src/tier/; this reads config, opens the
 * remote, renders.
 */
import path from 'node:path';
import { findRepo, requireInitialised, type RepoPaths } from '../../git/repo.js';
import { readDitsConfig, type DitsConfig } from '../../git/dits-config.js';
import { defaultDitsRemote, openRemoteStorage, type DitsRemote } from '../../remote/open-remote.js';
import { DitsUserError } from '../../errors.js';
import { err, formatBytes, out, printJson, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';
import { createProgressBar } from '../progress.js';
import type { ObjectStorage } from '../../transfer/object-storage.js';
import { tierStorageOf, type TierStorage } from '../../tier/tier-storage.js';
import { TIERS, type Tier } from '../../tier/tiers.js';
import { parseTierDuration, readTierPolicy, type TierPolicy } from '../../tier/policy.js';
import { formatDollars, loadPriceTable, type PriceTable } from '../../tier/prices.js';
import type { AccessEntry } from '../../tier/catalog.js';
import type { TierPlan } from '../../tier/plan.js';
import type { ReaperResult } from '../../tier/reaper.js';
import type { ThawOverview } from '../../tier/thaw.js';

interface TierContext {
  repo: RepoPaths;
  remote: DitsRemote;
  config: DitsConfig;
  policy: TierPolicy;
  storage: (ObjectStorage & TierStorage) | null;
  plainStorage: ObjectStorage;
  catalogFile: string;
}

async function openTier(ctx: CliContext, remoteName: string | undefined): Promise<TierContext> {
  const repo = await findRepo(ctx.cwd);
  requireInitialised(repo);
  const config = await readDitsConfig(repo.workTree);
  const remote = await defaultDitsRemote(repo.workTree, remoteName, { config });
  if (!remote) throw new DitsUserError('no-remote', 'this repository has no Dits remote', { hint: 'git remote add origin dits::s3://bucket/prefix (or dits::file:///path); or name one with --remote' });
  const policy = readTierPolicy(config);
  const plainStorage = await openRemoteStorage(repo.workTree, remote.url, { config });
  const catalogFile = path.join(repo.ditsDir, 'tier', `${encodeURIComponent(remote.name)}.sqlite`);
  return { repo, remote, config, policy, storage: tierStorageOf(plainStorage), plainStorage, catalogFile };
}

/** Said when the remote's storage has no tiers Dits can drive from here; exit 0, nothing done. */
function noTiersNote(t: TierContext): string {
  if (/^https?:/.test(t.remote.url)) return `${t.remote.name} is a Dits server: the server moves content between tiers itself (nightly); nothing to do from here`;
  return `${t.remote.name} (${t.plainStorage.location}) has no storage tiers: map tiers to folders with \`git config dits.tier.folder.warm <dir>\` (and cold, deep), or use an S3 remote`;
}

function pricesFor(t: TierContext): PriceTable | undefined {
  const file = t.config.string('dits.tier.priceTable');
  return file ? loadPriceTable(path.resolve(t.repo.workTree, file)) : undefined;
}

/**
 * Reads of this remote's content recorded by clients under `v1/access/` (tier/access-records.ts;
 * reads through a Dits server are recorded by the server). With `send`, this clone's reads
 * not sent yet (a run that crashed, a send that failed) go up first.
 */
async function* remoteAccess(t: TierContext, storage: ObjectStorage, send: boolean): AsyncIterable<AccessEntry> {
  const { AccessRecorder, readAccessRecords } = await import('../../tier/access-records.js');
  if (send) await AccessRecorder.open(t.repo.ditsDir, storage.location).flush(storage).catch(() => undefined);
  yield* readAccessRecords(storage);
}

/** Restored copies expiring within this long are listed as "about to expire". */
const EXPIRING_SOON_MS = 2 * 86_400_000;

/**
 * Thaws in progress and restored copies about to expire, for `tier status`, from the thaw
 * records under `v1/tier/thaws/` and each of their packs' HEAD (thawOverview): a thaw is
 * in progress while any of its packs is restoring; a finished one is listed as expiring
 * when its earliest restored copy goes within two days (the provider's clock).
 */
export async function thawsForStatus(storage: ObjectStorage & TierStorage, now = Date.now()): Promise<{ inProgress: ThawOverview[]; expiring: ThawOverview[] }> {
  const { thawOverview } = await import('../../tier/thaw.js');
  const all = await thawOverview(storage);
  return {
    inProgress: all.filter((t) => t.restoring > 0),
    expiring: all.filter((t) => t.restoring === 0 && t.restored > 0 && t.expiresAt !== undefined && t.expiresAt - now <= EXPIRING_SOON_MS),
  };
}

function describeThaw(t: ThawOverview): string {
  const what = t.paths.length === 0 ? `${t.packs} pack(s)` : t.paths.length <= 3 ? t.paths.join(', ') : `${t.paths.slice(0, 3).join(', ')} and ${t.paths.length - 3} more`;
  const state = t.restoring > 0 ? `${t.restored}/${t.packs} restored, ${t.restoring} restoring` : `${t.restored}/${t.packs} restored`;
  const expiry = t.expiresAt === undefined ? '' : `, copies expire ${new Date(t.expiresAt).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  return `  ${t.id} (${t.tier}, by ${t.by}): ${what}, ${formatBytes(t.bytes)}; ${state}${expiry}`;
}

const remoteOption = { remote: { type: 'string', value: '<name>', description: 'the Dits remote (default: dits.remote, else origin, else the only dits:: remote)' } } as const satisfies OptionTable;
const jsonOption = { json: { type: 'boolean', description: 'print JSON' } } as const satisfies OptionTable;
const planOptions = { ...remoteOption, ...jsonOption, limit: { type: 'string', value: '<n>', description: 'list at most this many packs (default 20; --json lists all)' } } as const satisfies OptionTable;
const applyOptions = {
  ...remoteOption,
  ...jsonOption,
  grace: { type: 'string', value: '<duration>', description: 'time between a pack\'s mark and its move (default dits.tier.grace, 24h; 0 only when no push can be running)' },
  'dry-run': { type: 'boolean', description: 'show what this run would do, and do nothing' },
} as const satisfies OptionTable;
const statusOptions = { ...remoteOption, ...jsonOption } as const satisfies OptionTable;
const lifecycleOptions = { ...remoteOption, json: { type: 'boolean', description: 'print only the JSON for put-bucket-lifecycle-configuration' } } as const satisfies OptionTable;

function tierLine(plan: TierPlan, which: 'before' | 'after'): string {
  const totals = plan[which];
  const cost = which === 'before' ? plan.tierCostBefore : plan.tierCostAfter;
  return TIERS.map((t) => `${t} ${totals[t].packs} pack(s) ${formatBytes(totals[t].bytes)} ${formatDollars(cost[t])}/mo`).join(' | ');
}

/** "24 h", "2 d", "30 min", "0" */
function formatGrace(ms: number): string {
  if (ms === 0) return '0';
  if (ms >= 2 * 86_400_000) return `${Math.round(ms / 86_400_000)} d`;
  if (ms >= 3_600_000) return `${Math.round(ms / 3_600_000)} h`;
  return `${Math.max(1, Math.round(ms / 60_000))} min`;
}

function describePolicy(p: TierPolicy): string {
  const d = (n: number): string => (Number.isFinite(n) ? `${n} d` : 'never');
  return `warm after ${d(p.warmAfterDays)}, cold after ${d(p.coldAfterDays)}, deep after ${d(p.deepAfterDays)} without use; grace ${formatGrace(p.graceMs)}; mode ${p.mode}`;
}

/** What graduation records (git dits graduate) did to the plan. */
function graduatedLine(plan: TierPlan): string {
  const g = plan.graduated;
  const going = graduatedMoving(plan);
  return `Graduated: ${g.records} repository record(s) naming ${g.manifests} file version(s); ${g.packs} pack(s) (${formatBytes(g.bytes)}) used by them only, ${going.packs} (${formatBytes(going.bytes)}) going colder because of it`;
}

/** Packs marked, waiting or moving colder because their users graduated. */
function graduatedMoving(plan: TierPlan): { packs: number; bytes: number } {
  const going = { packs: 0, bytes: 0 };
  for (const m of plan.moves) {
    if (m.reason !== 'graduated') continue;
    going.packs++;
    going.bytes += m.size;
  }
  return going;
}

function renderPlan(ctx: CliContext, t: TierContext, policy: TierPolicy, r: ReaperResult, prices: PriceTable, limit: number, heading: string): void {
  const { plan } = r;
  out(ctx, `${t.remote.name} (${t.storage!.location}), ${plan.provider} classes; ${describePolicy(policy)}`);
  out(ctx, `Now:   ${tierLine(plan, 'before')}`);
  out(ctx, `After: ${tierLine(plan, 'after')}`);
  out(ctx, `Monthly storage: ${formatDollars(plan.monthlyCostBefore)} now, ${formatDollars(plan.monthlyCostAfter)} after; class changes ${formatDollars(plan.transitionCost)}; early-deletion charges ${formatDollars(plan.earlyDeletion)}`);
  const p = plan.phases;
  out(ctx, `${heading}: mark ${p.mark.packs} pack(s) (${formatBytes(p.mark.bytes)}), move ${p.move.packs} (${formatBytes(p.move.bytes)}), waiting out the grace ${p.wait.packs}, unmark ${p.unmark.packs}; kept hot by keep-hot or variants: ${plan.keptHot.packs} pack(s)`);
  for (const m of plan.moves.list(undefined, limit)) {
    out(ctx, `  ${m.phase.padEnd(6)} ${m.packId.slice(0, 16)} ${formatBytes(m.size).padStart(9)} ${m.fromClass} -> ${m.phase === 'unmark' ? '(stays)' : m.toClass}, last used ${new Date(m.lastUse).toISOString().slice(0, 10)}${m.reason === 'graduated' ? ' (graduated)' : ''}`);
  }
  if (plan.moves.length > limit) out(ctx, `  ... ${plan.moves.length - limit} more (--limit, or --json for all)`);
  if (plan.graduated.records) out(ctx, graduatedLine(plan));
  for (const n of plan.notes) out(ctx, `note: ${n}`);
  out(ctx, `Prices: ${prices.provider} ${prices.region} as of ${prices.asOf} (dits.tier.priceTable names another table).`);
}

/** JSON with the moves streamed one per line (a plan may hold a million). */
function printPlanJson(ctx: CliContext, head: Record<string, unknown>, plan: TierPlan): void {
  const { moves, ...rest } = plan;
  const body = JSON.stringify({ ...head, plan: { ...rest, moveCount: moves.length } }, null, 2);
  ctx.stdout.write(body.slice(0, -2) + ',\n  "moves": [');
  for (let i = 0; i < moves.length; i++) ctx.stdout.write(`${i ? ',' : ''}\n    ${JSON.stringify(moves.at(i))}`);
  ctx.stdout.write(`${moves.length ? '\n  ' : ''}]\n}\n`);
}

async function runTier(ctx: CliContext, t: TierContext, opts: { dryRun: boolean; graceMs?: number; json: boolean; progress: boolean }): Promise<{ result: ReaperResult; prices: PriceTable }> {
  const { reapOnce, defaultPrices } = await import('../../tier/reaper.js');
  const { TierCatalog } = await import('../../tier/catalog.js');
  const { computeKeepHot, publishKeepHot } = await import('../../tier/keep-hot.js');
  const storage = t.storage!;
  const policy = opts.graceMs === undefined ? t.policy : { ...t.policy, graceMs: opts.graceMs };
  const prices = pricesFor(t) ?? defaultPrices(storage);
  const now = Date.now();
  const keepHot = await computeKeepHot(t.repo.workTree, t.remote.name, policy.keepHot, now);
  const unresolved = keepHot.resolved.filter((r) => r.ref === null);
  if (policy.keepHot.length === 0 && unresolved.length) {
    throw new DitsUserError('tier-keep-hot-unknown', `cannot tell which files must stay hot: ${unresolved[0]!.note}`, {
      hint: `run \`git fetch ${t.remote.name}\`, or name what stays hot: \`git config --add dits.tier.keepHot branch:<name>\``,
    });
  }
  for (const u of unresolved) if (!opts.json) err(ctx, `warning: dits.tier.keepHot ${u.pattern}: ${u.note}`);
  if (!opts.dryRun) await publishKeepHot(storage, keepHot);
  const catalog = TierCatalog.open(t.catalogFile);
  const abort = new AbortController();
  const onSignal = (): void => abort.abort(new DitsUserError('interrupted', 'interrupted: every move made so far is recorded; run `git dits tier apply` again to go on', { exitCode: 130 }));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // bytes of packs moved (marks and unmarks are tiny and not counted); the pack indexes a
  // first sync reads are counted on their own line
  const bar = opts.progress ? createProgressBar(ctx, 'Moving packs', 0) : { update() {}, done() {} };
  const syncLine = opts.progress ? countLine(ctx, 'Reading new pack indexes') : { update() {}, done() {} };
  let moveBytes = 0;
  try {
    const result = await reapOnce(storage, catalog, policy, {
      now,
      prices,
      dryRun: opts.dryRun,
      keepHotManifests: new Set(keepHot.manifests),
      keepHotIsDefault: policy.keepHot.length === 0,
      access: remoteAccess(t, storage, !opts.dryRun),
      apply: {
        signal: abort.signal,
        onProgress: (p) => {
          if (moveBytes > 0) bar.update(p.bytes, moveBytes);
        },
      },
      onSyncProgress: (done, total) => syncLine.update(done, total),
      onPlan: (plan) => {
        syncLine.done();
        moveBytes = plan.phases.move.bytes;
      },
    }).catch((e: unknown) => {
      throw abort.signal.aborted ? abort.signal.reason : e;
    });
    if (!opts.dryRun) {
      // records older than a day fold into the summary (nothing is lost: readers take both)
      const { compactAccessRecords } = await import('../../tier/access-records.js');
      await compactAccessRecords(storage, { olderThanMs: 24 * 3600_000, now }).catch((e: unknown) => err(ctx, `warning: the access records were not compacted: ${e instanceof Error ? e.message : String(e)}`));
    }
    return { result, prices };
  } finally {
    syncLine.done();
    bar.done();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    catalog.close();
  }
}

/** "Reading new pack indexes: 1200/5000" on a terminal (stderr), at most 10 times a second. */
function countLine(ctx: CliContext, label: string): { update(done: number, total: number): void; done(): void } {
  if (!ctx.interactive) return { update() {}, done() {} };
  let last = 0;
  let drawn = false;
  return {
    update(done, total) {
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      drawn = true;
      ctx.stderr.write(`\r${label}: ${done}/${total}\x1b[K`);
    },
    done() {
      if (drawn) ctx.stderr.write('\n');
      drawn = false;
    },
  };
}

function singleClass(ctx: CliContext, t: TierContext, json: boolean): number | null {
  if (t.storage === null) {
    const note = noTiersNote(t);
    if (json) printJson(ctx, { remote: t.remote.name, tiered: false, notes: [note] });
    else out(ctx, note);
    return 0;
  }
  if (t.storage.tierProfile.classes === null) {
    const note = t.storage.tierProfile.note ?? 'this provider has one storage class: nothing to move';
    if (json) printJson(ctx, { remote: t.remote.name, provider: t.storage.tierProfile.name, tiered: false, notes: [note] });
    else out(ctx, `${t.remote.name}: ${note}`);
    return 0;
  }
  return null;
}

function parseLimit(v: string | undefined): number {
  if (v === undefined) return 20;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new DitsUserError('bad-option-value', `--limit ${v}: give a whole number`, { exitCode: 2 });
  return n;
}

async function tierPlan(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseOptions(args, planOptions);
  const limit = parseLimit(values.limit);
  const t = await openTier(ctx, values.remote);
  const done = singleClass(ctx, t, !!values.json);
  if (done !== null) return done;
  const { result, prices } = await runTier(ctx, t, { dryRun: true, json: !!values.json, progress: false });
  if (values.json) printPlanJson(ctx, { remote: t.remote.name, policy: t.policy, prices: { provider: prices.provider, region: prices.region, asOf: prices.asOf }, sync: result.sync, clock: result.clock }, result.plan);
  else renderPlan(ctx, t, t.policy, result, prices, limit, 'The next run would');
  return 0;
}

async function tierApply(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseOptions(args, applyOptions);
  let graceMs: number | undefined;
  if (values.grace !== undefined) {
    const g = parseTierDuration(values.grace);
    if (g === null || !Number.isFinite(g)) throw new DitsUserError('bad-option-value', `--grace ${values.grace}: not a duration`, { hint: 'e.g. --grace 24h, --grace 2d, --grace 0', exitCode: 2 });
    graceMs = g;
  }
  const t = await openTier(ctx, values.remote);
  const done = singleClass(ctx, t, !!values.json);
  if (done !== null) return done;
  const dryRun = !!values['dry-run'];
  const { result, prices } = await runTier(ctx, t, { dryRun, graceMs, json: !!values.json, progress: !values.json });
  const a = result.apply;
  if (values.json) {
    printPlanJson(ctx, { remote: t.remote.name, dryRun, apply: a, sync: result.sync, clock: result.clock }, result.plan);
    return a && a.skipped.length ? 1 : 0;
  }
  const policy = graceMs === undefined ? t.policy : { ...t.policy, graceMs };
  renderPlan(ctx, t, policy, result, prices, 20, dryRun ? 'This run would' : 'This run');
  if (a) {
    out(ctx, `Done: ${a.marked} pack(s) marked, ${a.moved} moved (${formatBytes(a.movedBytes)}), ${a.unmarked} unmarked, ${a.waiting} waiting out the grace.`);
    if (a.marked) out(ctx, `Marked packs move on ${policy.graceMs === 0 ? 'the next run' : `a run at least ${formatGrace(policy.graceMs)} from now`}, if nothing has used them meanwhile.`);
    for (const s of a.skipped) err(ctx, `warning: pack ${s.packId} ${s.reason}`);
    return a.skipped.length ? 1 : 0;
  }
  return 0;
}

async function tierStatus(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseOptions(args, statusOptions);
  const t = await openTier(ctx, values.remote);
  const done = singleClass(ctx, t, !!values.json);
  if (done !== null) return done;
  const { result, prices } = await runTier(ctx, t, { dryRun: true, json: !!values.json, progress: false });
  const thaws = await thawsForStatus(t.storage!);
  const { plan } = result;
  const tiers = Object.fromEntries(TIERS.map((x: Tier) => [x, { ...plan.before[x], monthlyCost: plan.tierCostBefore[x] }]));
  if (values.json) {
    printJson(ctx, {
      remote: t.remote.name,
      provider: plan.provider,
      tiers,
      monthlyCost: plan.monthlyCostBefore,
      nextRun: { ...plan.phases, transitionCost: plan.transitionCost, earlyDeletion: plan.earlyDeletion, monthlyCostAfter: plan.monthlyCostAfter },
      keptHot: plan.keptHot,
      graduated: { ...plan.graduated, goingColder: graduatedMoving(plan) },
      thaws,
      notes: plan.notes,
      prices: { provider: prices.provider, region: prices.region, asOf: prices.asOf },
    });
    return 0;
  }
  out(ctx, `${t.remote.name} (${t.storage!.location}), ${plan.provider} classes`);
  for (const x of TIERS) out(ctx, `  ${x.padEnd(5)} ${String(plan.before[x].packs).padStart(8)} pack(s) ${formatBytes(plan.before[x].bytes).padStart(10)}  ${formatDollars(plan.tierCostBefore[x])}/month`);
  out(ctx, `  total ${formatDollars(plan.monthlyCostBefore)}/month (prices: ${prices.provider} ${prices.region} as of ${prices.asOf})`);
  const p = plan.phases;
  out(ctx, `Next run: mark ${p.mark.packs} pack(s) (${formatBytes(p.mark.bytes)}), move ${p.move.packs} (${formatBytes(p.move.bytes)}), ${p.wait.packs} waiting out the grace; then ${formatDollars(plan.monthlyCostAfter)}/month`);
  if (plan.graduated.records) out(ctx, graduatedLine(plan));
  out(ctx, `Thaws in progress: ${thaws.inProgress.length}; restored copies expiring within 2 days: ${thaws.expiring.length}`);
  for (const th of thaws.inProgress) out(ctx, describeThaw(th));
  if (thaws.expiring.length) out(ctx, 'Expiring soon (`git dits thaw <path> --days N` again to keep them):');
  for (const th of thaws.expiring) out(ctx, describeThaw(th));
  for (const n of plan.notes) out(ctx, `note: ${n}`);
  return 0;
}

async function tierLifecycleConfig(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseOptions(args, lifecycleOptions);
  const t = await openTier(ctx, values.remote);
  const { parseStorageUrl } = await import('../../transfer/storage-url.js');
  const url = parseStorageUrl(t.remote.url, t.repo.workTree);
  if (url.kind !== 's3' || t.storage === null) {
    throw new DitsUserError('tier-unsupported', `lifecycle rules are an S3 feature, and ${t.remote.name} is ${url.kind === 'http' ? 'a Dits server' : 'a folder remote'}`, {
      hint: url.kind === 'file' ? 'folder tiers move with `git dits tier apply` (leave dits.tier.mode unset)' : 'the server moves its content itself',
    });
  }
  for (const [key, days] of [['warmAfter', t.policy.warmAfterDays], ['coldAfter', t.policy.coldAfterDays], ['deepAfter', t.policy.deepAfterDays]] as const) {
    if (!Number.isFinite(days)) {
      throw new DitsUserError('tier-unsupported', `dits.tier.${key} = never: lifecycle rules need an age for every tier`, {
        hint: `give it an age (\`git config dits.tier.${key} 2y\`), or keep dits.tier.mode = copy, which honours never`,
      });
    }
  }
  const { lifecycleConfiguration } = await import('../../tier/lifecycle-config.js');
  const config = lifecycleConfiguration(t.storage.tierProfile, t.policy, { prefix: url.prefix });
  const json = JSON.stringify(config, null, 2);
  if (values.json) {
    out(ctx, json);
    return 0;
  }
  out(ctx, `# Lifecycle rules for s3://${url.bucket}${url.prefix ? `/${url.prefix}` : ''}: packs tagged dits-tier=<tier> by \`git dits tier apply\` move to that tier's class.`);
  out(ctx, '# They REPLACE the bucket\'s whole lifecycle configuration: merge in rules of your own first.');
  out(ctx, `# Save the JSON below as rules.json, then: aws s3api put-bucket-lifecycle-configuration --bucket ${url.bucket} --lifecycle-configuration file://rules.json`);
  out(ctx, `# and: git config dits.tier.mode lifecycle${t.policy.mode === 'lifecycle' ? ' (already set)' : ''}`);
  out(ctx, json);
  return 0;
}

const tier: Command = {
  summary: 'Move content nobody uses to colder, cheaper storage classes (plan, apply, status)',
  usage: `git dits tier plan [--remote <name>] [--json] [--limit <n>]
       git dits tier apply [--remote <name>] [--grace <duration>] [--dry-run] [--json]
       git dits tier status [--remote <name>] [--json]
       git dits tier lifecycle-config [--remote <name>] [--json]

Packs move hot -> warm -> cold -> deep by the last use of every file version using them
(dits.tier.warmAfter 30d, coldAfter 6m, deepAfter 2y), never while a keep-hot file version
(dits.tier.keepHot: path globs, branch:<name>, tag:<glob>; default: the remote's default
branch's current files) or a proxy, poster or sprite uses them. A run first marks packs
(v1/tier/pending/), and moves them on a later run after dits.tier.grace (24h) if they are
still unused. Manifests, git data, pack indexes and variants never leave hot. File versions of
a graduated repository (git dits graduate) count as last used at its last change: their packs
go warm without waiting for the warm age (shown as "(graduated)"), until git dits hydrate.`,
  options: { ...applyOptions, ...planOptions },
  subcommands: {
    plan: { usage: 'git dits tier plan [--remote <name>] [--json] [--limit <n>]', summary: 'What the next run would move, bytes per tier, monthly cost before and after, early-deletion charges (changes nothing on the remote)', options: planOptions },
    apply: { usage: 'git dits tier apply [--remote <name>] [--grace <duration>] [--dry-run] [--json]', summary: 'Mark packs to move, and move those marked earlier that are still unused (in place: never a re-upload or a delete)', options: applyOptions },
    status: { usage: 'git dits tier status [--remote <name>] [--json]', summary: 'Bytes and monthly cost per tier, what the next run would move, thaws in progress', options: statusOptions },
    'lifecycle-config': { usage: 'git dits tier lifecycle-config [--remote <name>] [--json]', summary: 'Print the S3 bucket lifecycle rules that move packs tagged by `tier apply` (dits.tier.mode = lifecycle)', options: lifecycleOptions },
  },
  async run(args, ctx) {
    const [sub, ...rest] = args;
    if (sub === 'plan') return tierPlan(rest, ctx);
    if (sub === 'apply') return tierApply(rest, ctx);
    if (sub === 'status') return tierStatus(rest, ctx);
    if (sub === 'lifecycle-config') return tierLifecycleConfig(rest, ctx);
    throw new DitsUserError('bad-usage', sub ? `unknown subcommand 'tier ${sub}'` : 'say what to do: `git dits tier plan`, `apply`, `status` or `lifecycle-config`', { hint: 'see `git dits tier --help`', exitCode: 2 });
  },
};

export const commands = { tier };
