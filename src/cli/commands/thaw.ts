/**
 * `git dits thaw`: restores archived (frozen) content, saying first exactly what it will
 * cost and how long it takes (DESIGN invariant 6). The plan and the restores live in
 * src/tier/thaw-plan.ts and thaw.ts; this file parses, asks, prints.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { findRepo, requireInitialised, type RepoPaths } from '../../git/repo.js';
import { runGit } from '../../git/exec.js';
import { listTreePointers } from '../../git/pointers.js';
import { readDitsConfig, type DitsConfig } from '../../git/dits-config.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { listDitsRemotes, openRemoteStorage } from '../../remote/open-remote.js';
import { ensureLocal, fetchManifests } from '../../remote/content/fetch-content.js';
import { syncRemoteIndex } from '../../remote/content/sync-remote-index.js';
import { contentRemotes } from '../../worktree/remote-fetch.js';
import { readWorktreePointer } from '../../worktree/materialize-worktree.js';
import { DitsUserError } from '../../errors.js';
import { Manifest } from '../../manifest/manifest.js';
import { isMediaStructure } from '../../media/media-structure.js';
import { resolveReferences } from '../../media/nle/index.js';
import { parseTimeline } from '../../media/nle/timeline.js';
import { nominalRate, parseRate, type Rat } from '../../media/nle/rational-time.js';
import { parseTimecode } from '../../media/timecode.js';
import { FOLDER_PRICES, formatDollars, formatHours, loadPriceTable, type PriceTable } from '../../tier/prices.js';
import { tierStorageOf, type TierStorage } from '../../tier/tier-storage.js';
import { RETRIEVAL_TIERS, type RetrievalTier } from '../../tier/tiers.js';
import { planThaw, thawPlanJson, totalsByTier, type ThawPlan, type ThawTarget } from '../../tier/thaw-plan.js';
import { isReadable, listThaws, packProgress, startThaw, waitForThaw, type PackProgress } from '../../tier/thaw.js';
import { formatRange, parseTimeRange, type TimeRange } from '../../tier/time-range.js';
import { notifyThawDone } from '../../tier/thaw-notify.js';
import type { ObjectStorage } from '../../transfer/object-storage.js';
import { HttpStorage } from '../../transfer/http-storage.js';
import { finishCheckout } from '../finish-checkout.js';
import { err, formatBytes, out, printJson, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';

const thawOptions = {
  project: { type: 'string', value: '<edit.fcpxml>', description: 'thaw the parts of the clips an editing timeline uses (FCPXML, Premiere/FCP7 XML, CMX3600 EDL)' },
  range: { type: 'string', value: '<start-end>', description: 'only this time range of the videos, e.g. 00:10:00-00:12:00' },
  tier: { type: 'string', value: 'expedited|standard|bulk', description: 'how fast (and how dear) the restore is', default: 'standard' },
  days: { type: 'string', value: '<n>', description: 'days the restored copy stays readable', default: '7' },
  yes: { type: 'boolean', short: 'y', description: 'restore without asking (the cost is still printed)' },
  'dry-run': { type: 'boolean', description: 'print what would be restored and its cost; restore nothing' },
  wait: { type: 'boolean', description: 'wait for the restores, then write the files' },
  status: { type: 'boolean', description: 'show the thaws asked for on the remote and how far they are' },
  json: { type: 'boolean', description: 'print the plan (or the status) as JSON' },
  remote: { type: 'string', value: '<name>', description: 'the dits:: remote to thaw on (default: as `git dits pull` chooses)' },
  'notify-url': { type: 'string', value: '<url>', description: 'with --wait: POST the outcome as JSON to this URL when done' },
  'poll-interval': { type: 'string', value: '<duration>', description: 'with --wait: time between two checks (e.g. 30s, 5m, 200ms)', default: '60s' },
} as const satisfies OptionTable;

function parseDuration(v: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new DitsUserError('bad-option-value', `${what} ${v}: not a duration`, { hint: 'e.g. 200ms, 30s, 5m, 1h', exitCode: 2 });
  return Number(m[1]) * { ms: 1, s: 1e3, m: 60e3, h: 3600e3 }[(m[2] ?? 's') as 's'];
}

const thaw: Command = {
  summary: 'Restore frozen (archived) content: says what it costs and how long it takes, asks, then restores only the packs needed',
  usage: `git dits thaw [<rev>] [--] <path>... [--range <start-end>] [--tier expedited|standard|bulk] [--days <n>] [--yes] [--wait]
       git dits thaw <rev>                (every file of a commit)
       git dits thaw --project <edit.fcpxml> [<options>]
       git dits thaw --status [--json]`,
  options: thawOptions,
  async run(args, ctx) {
    const { values, positionals } = parseOptions(args, thawOptions, { positionals: true });
    const tier = values.tier as RetrievalTier;
    if (!RETRIEVAL_TIERS.includes(tier)) throw new DitsUserError('bad-option-value', `--tier ${values.tier}: not a retrieval tier`, { hint: 'use --tier expedited, standard or bulk', exitCode: 2 });
    const days = Number(values.days);
    if (!Number.isInteger(days) || days < 1 || days > 30000) throw new DitsUserError('bad-option-value', `--days ${values.days}: not a whole number of days`, { hint: 'e.g. --days 7', exitCode: 2 });
    const range = values.range !== undefined ? parseTimeRange(values.range) : undefined;
    if (range && values.project) throw new DitsUserError('bad-usage', '--range and --project do not go together: the project says which ranges', { hint: 'give one of them', exitCode: 2 });
    const interval = parseDuration(values['poll-interval']!, '--poll-interval');

    const repo = await findRepo(ctx.cwd);
    requireInitialised(repo);
    const config = await readDitsConfig(repo.workTree);
    const remote = await chooseRemote(repo, values.remote);
    const storage = await openRemoteStorage(repo.workTree, remote.url, { config });
    const tiered = tierStorageOf(storage);
    if (values.status) return showStatus(ctx, remote.name, storage, tiered, values.json === true);
    const targets = await chooseTargets(ctx, repo, positionals, values.project, range);
    // with --json, stdout carries only JSON: what is said on the way goes to stderr
    const talk: CliContext = values.json ? { ...ctx, stdout: ctx.stderr } : ctx;
    const store = ChunkStore.open(repo.ditsDir, { create: true });
    try {
      await resolveTimecodes(targets, storage, store, remote.name);
      const backend = await thawBackend(repo, store, storage, tiered, remote.name, config, days);
      let plan = await backend.plan(targets.list);
      const restoredPacks = new Set<string>();
      if (values.json && (values['dry-run'] || (!values.yes && !hasFrozen(plan)))) {
        printJson(ctx, thawPlanJson(plan, tier));
        return 0;
      }
      // a provider Dits knows no classes of: "not frozen" may only mean "not known to be"
      if (backend.note && plan.notFrozen.length && !values.json) err(ctx, `note: ${backend.note}`);
      for (let round = 1; ; round++) {
        if (!values.json) printPlan(ctx, plan, tier);
        if (values['dry-run']) return 0;
        // nothing frozen or under way: with --wait the files are written now
        if (!hasFrozen(plan) && !plan.packs.length) {
          if (!values.wait) return 0;
          break;
        }
        let started: StartSummary | null = null;
        if (hasFrozen(plan)) {
          const total = totalsByTier(plan).find((t) => t.tier === tier)!;
          if (total.unavailableFor.length) {
            throw new DitsUserError('restore-tier-unavailable', `${total.unavailableFor.join(', ')} offers no ${tier} retrieval`, {
              hint: `choose another --tier (${totalsByTier(plan).filter((t) => !t.unavailableFor.length).map((t) => t.tier).join(', ')})`,
            });
          }
          // a free restore of minutes (an archive folder's local copy) is neither paid nor slow: no question
          const freeAndQuick = total.total === 0 && total.hours[1] < 1;
          await confirm(ctx, plan, tier, total.total, values.yes === true || freeAndQuick);
          started = await backend.start(plan, targets.list, tier);
          printStarted(ctx, started, values.json === true);
          if (started.failed.length && started.failed.length === plan.packs.filter((p) => p.state === 'frozen').length) return 1;
        }
        if (!values.wait) {
          if (!values.json) out(ctx, `See how far it is with \`git dits thaw --status\`; \`git dits thaw --wait ${targets.words.join(' ')}\` waits and then writes the files.`);
          return started?.failed.length ? 1 : 0;
        }
        const waited = await backend.wait(plan, targets.list, { intervalMs: interval, onProgress: progressPrinter(ctx) });
        if (!waited.ready) {
          const bad = waited.packs.filter((p) => !isReadable(p));
          throw new DitsUserError('thaw-not-ready', `${bad.length} pack(s) are not being restored (${bad.map((p) => `${p.packId.slice(0, 12)} ${p.state}`).slice(0, 3).join(', ')})`, {
            hint: 'run the same `git dits thaw` again: it asks for what is missing',
          });
        }
        for (const p of plan.packs) restoredPacks.add(p.packId);
        if (!plan.files.some((f) => f.stage === 'index') || round > 2) break;
        // a range whose container index is restored now: the range's own packs
        out(talk, 'The container index is readable now; finding the packs of the range.');
        plan = await backend.plan(targets.list);
      }
      for (const p of plan.packs) restoredPacks.add(p.packId);
      const written = await writeFiles(talk, repo, store, storage, remote.name, restoredPacks, targets);
      const files = [...new Set(targets.list.map((t) => t.path))];
      const payload = { event: 'thaw-done', remote: remote.name, files, written };
      const n = await notifyThawDone({ env: ctx.env, title: 'git dits thaw: done', body: `${files.length} file(s) restored from ${remote.name}`, url: values['notify-url'], payload });
      if (n.webhook && !n.webhook.ok) err(ctx, `warning: the notification to ${values['notify-url']} failed (${n.webhook.error ?? `HTTP ${n.webhook.status}`})`);
      return 0;
    } finally {
      store.close();
    }
  },
};

interface StartSummary {
  id: string | null;
  started: number;
  alreadyRunning: number;
  alreadyRestored: number;
  failed: { packId: string; message: string }[];
}

/**
 * Where the restores are asked: the remote's own storage (S3, a folder tier map) from here,
 * or a Dits server, which asks its archive itself (POST /<owner>/<repo>/thaw) under the
 * repository's budget. The same plan shape either way.
 */
interface ThawBackend {
  /** said when the provider's profile has no classes (tiering does nothing there) */
  note?: string;
  plan(targets: ThawTarget[]): Promise<ThawPlan>;
  start(plan: ThawPlan, targets: ThawTarget[], tier: RetrievalTier): Promise<StartSummary>;
  wait(plan: ThawPlan, targets: ThawTarget[], opts: { intervalMs: number; onProgress: (p: PackProgress[]) => void }): Promise<{ ready: boolean; packs: PackProgress[] }>;
}

async function thawBackend(repo: RepoPaths, store: ChunkStore, storage: ObjectStorage, tiered: (ObjectStorage & TierStorage) | null, remoteName: string, config: DitsConfig, days: number): Promise<ThawBackend> {
  if (tiered) {
    const prices = pricesFor(tiered, config);
    const by = await whoAmI(repo);
    return {
      ...(tiered.tierProfile.classes === null && tiered.tierProfile.note ? { note: tiered.tierProfile.note } : {}),
      plan: (targets) => planThaw(tiered, store, targets, { remoteName, prices, days }),
      async start(plan, _targets, tier) {
        const r = await startThaw(tiered, plan, { tier, days, by });
        return { id: r.record.id, started: r.started, alreadyRunning: r.alreadyRunning, alreadyRestored: r.alreadyRestored, failed: r.failed };
      },
      wait: (plan, _targets, opts) => waitForThaw(tiered, plan.packs, opts),
    };
  }
  if (storage instanceof HttpStorage) {
    const files = (targets: ThawTarget[]) => targets.map((t) => ({ manifest: t.manifest, path: t.path, ...(t.range ? { range: t.range } : {}) }));
    const ask = async (targets: ThawTarget[], tier: RetrievalTier, dryRun: boolean) =>
      (await storage.requestThaw({ files: files(targets), tier, days, dryRun })) as { id?: string; plan: ThawPlan; started: number; alreadyRunning: number; alreadyRestored: number; failed: { packId: string; message: string }[] };
    return {
      plan: async (targets) => (await ask(targets, 'standard', true)).plan,
      async start(_plan, targets, tier) {
        const r = await ask(targets, tier, false);
        return { id: r.id ?? null, started: r.started, alreadyRunning: r.alreadyRunning, alreadyRestored: r.alreadyRestored, failed: r.failed };
      },
      // the server's plan, asked again: the packs it still waits for (restored ones leave it)
      async wait(plan, targets, opts) {
        const total = plan.packs;
        for (;;) {
          const now = (await ask(targets, 'standard', true)).plan.packs;
          const left = new Map(now.map((p) => [p.packId, p.state]));
          const packs: PackProgress[] = total.map((p) => ({ packId: p.packId, key: p.key, storageClass: p.storageClass, size: p.size, state: left.get(p.packId) ?? 'restored' }));
          opts.onProgress(packs);
          if (packs.every(isReadable)) return { ready: true, packs };
          if (packs.some((p) => p.state === 'frozen')) return { ready: false, packs };
          await new Promise((r) => setTimeout(r, opts.intervalMs));
        }
      },
    };
  }
  throw new DitsUserError('thaw-unsupported', `the remote ${remoteName} (${storage.location}) has no storage tiers: nothing on it is frozen`, {
    hint: 'tiers exist on S3 remotes (dits.tier.provider) and on folder remotes with dits.tier.folder.* set',
  });
}

function hasFrozen(plan: ThawPlan): boolean {
  return plan.packs.some((p) => p.state === 'frozen');
}

async function chooseRemote(repo: RepoPaths, explicit: string | undefined): Promise<{ name: string; url: string }> {
  if (explicit) {
    const all = await listDitsRemotes(repo.workTree);
    const r = all.find((x) => x.name === explicit);
    if (!r) throw new DitsUserError('no-such-remote', `'${explicit}' is not a Dits remote of this repository`, { hint: 'list them with `git remote -v` (Dits remotes have dits:: URLs)' });
    return r;
  }
  const [first] = await contentRemotes(repo);
  if (!first) throw new DitsUserError('no-remote', 'this repository has no Dits remote: nothing can be frozen', { hint: 'git remote add origin dits::s3://bucket/prefix' });
  return first;
}

function pricesFor(storage: TierStorage, config: DitsConfig): PriceTable {
  if (storage.tierProfile.name === 'folder') return FOLDER_PRICES;
  return loadPriceTable(config.string('dits.tier.priceTable'));
}

/** Who asks, for the record: git's committer e-mail (config or environment), else the login name. */
async function whoAmI(repo: RepoPaths): Promise<string> {
  const r = await runGit(['var', 'GIT_COMMITTER_IDENT'], { cwd: repo.workTree, allowFail: true });
  const email = /<([^>]*)>/.exec(r.stdout.toString('utf8'))?.[1];
  return email || process.env.USER || 'unknown';
}

/** EDL clips, whose source is a timecode: made ranges once the files' start timecodes (manifests) are read. */
interface TimecodedClips {
  name: string;
  bytes: Buffer;
  timelineRate: Rat | null;
  clips: { target: number; clip: number }[];
}

interface Targets {
  list: ThawTarget[];
  timecoded?: TimecodedClips;
  /** HEAD's files (to write when done), else null (another revision: its content goes into the store) */
  atHead: boolean;
  /** the words to repeat in hints */
  words: string[];
}

async function commitOf(cwd: string, rev: string): Promise<string | null> {
  const r = await runGit(['rev-parse', '--verify', '--quiet', '--end-of-options', `${rev}^{commit}`], { cwd, allowFail: true });
  return r.exitCode === 0 ? r.stdout.toString('utf8').trim() : null;
}

async function chooseTargets(ctx: CliContext, repo: RepoPaths, positionals: string[], project: string | undefined, range: TimeRange | undefined): Promise<Targets> {
  const words = [...positionals];
  let rev = 'HEAD';
  let revGiven = false;
  if (words.length && !fs.existsSync(path.resolve(ctx.cwd, words[0]!)) && (await commitOf(repo.workTree, words[0]!))) {
    rev = words.shift()!;
    revGiven = true;
  }
  const atHead = (await commitOf(repo.workTree, rev)) === (await commitOf(repo.workTree, 'HEAD'));
  if (project !== undefined) return { ...(await projectTargets(repo, ctx.cwd, project, rev)), atHead, words: ['--project', project] };
  if (words.length === 0 && !revGiven) {
    throw new DitsUserError('bad-usage', 'name what to thaw: paths, a revision, or --project <edit.fcpxml>', { hint: 'git dits thaw clips/A001.mov  (or: git dits thaw v1.0; git dits thaw --status)', exitCode: 2 });
  }
  const specs = words.map((p) => path.relative(repo.workTree, path.resolve(ctx.cwd, p)) || '.');
  const pointers = await listTreePointers(repo.workTree, rev, specs);
  if (pointers.length === 0) {
    throw new DitsUserError('no-tracked-match', `no file tracked by Dits matches ${words.length ? words.map((w) => `'${w}'`).join(', ') : rev}${rev !== 'HEAD' ? ` at ${rev}` : ''}`, {
      hint: 'give paths of tracked files (`git dits ls-files` lists them)',
    });
  }
  return { list: pointers.map((p) => ({ path: p.path, manifest: p.pointer.manifest, ...(range ? { range } : {}) })), atHead, words: positionals };
}

/** The clips of an editing timeline, each as the time range of its file the timeline uses. */
async function projectTargets(repo: RepoPaths, cwd: string, project: string, rev: string): Promise<{ list: ThawTarget[]; timecoded?: TimecodedClips }> {
  const abs = path.resolve(cwd, project);
  const rel = path.relative(repo.workTree, abs).split(path.sep).join('/');
  if (!fs.existsSync(abs)) throw new DitsUserError('no-such-file', `${project}: no such file`, { hint: 'name an editing project in the working tree (FCPXML, Premiere/FCP7 XML, CMX3600 EDL)' });
  const file = fs.statSync(abs).isDirectory() ? path.join(abs, 'Info.fcpxml') : abs;
  if (readWorktreePointer(file)) throw new DitsUserError('not-checked-out', `${project} is a pointer; its content is not here`, { hint: `run \`git dits pull -- ${project}\` first` });
  const bytes = fs.readFileSync(file);
  const timeline = parseTimeline(path.basename(abs), bytes);
  const pointers = await listTreePointers(repo.workTree, rev, []);
  const tracked = pointers.map((p) => p.path);
  const dir = path.posix.dirname(rel);
  const resolved = resolveReferences(timeline.clips.map((c) => c.reference), tracked, dir === '.' ? '' : dir);
  const byPath = new Map(pointers.map((p) => [p.path, p.pointer.manifest]));
  const fps = timeline.frameRate ? timeline.frameRate.num / timeline.frameRate.den : null;
  const out: ThawTarget[] = [];
  const missing: string[] = [];
  const timecoded: TimecodedClips = { name: path.basename(abs), bytes, timelineRate: timeline.frameRate, clips: [] };
  timeline.clips.forEach((c, i) => {
    const p = resolved[i]!.resolvedPath;
    if (!p) return void missing.push(`${c.label}: ${c.reference.path}`);
    const manifest = byPath.get(p)!;
    if ('seconds' in c.source && fps) {
      const start = c.source.seconds.num / c.source.seconds.den;
      out.push({ path: p, manifest, range: { startSec: start, endSec: start + c.frames / fps } });
    } else {
      // a source timecode (EDL): the whole file until its start timecode is known (resolveTimecodes)
      if ('timecode' in c.source) timecoded.clips.push({ target: out.length, clip: i });
      out.push({ path: p, manifest });
    }
  });
  if (missing.length) {
    throw new DitsUserError('thaw-media-missing', `${rel}: ${missing.length} clip(s) use media that is not tracked: ${missing.slice(0, 3).join('; ')}`, {
      hint: `\`git dits deps ${rel}\` lists what the project references`,
    });
  }
  if (out.length === 0) throw new DitsUserError('thaw-empty-project', `${rel}: the timeline uses no clips`, { hint: 'name a project whose timeline has clips' });
  return timecoded.clips.length ? { list: out, timecoded } : { list: out };
}

/**
 * The EDL clips' ranges: source timecode minus the file's start timecode (from its manifest),
 * at the timeline's rate, or (an EDL does not say) the first clip's video rate, as `git dits
 * render` reads it. A clip whose file has no video rate or lies before its start stays whole.
 */
async function resolveTimecodes(targets: Targets, storage: ObjectStorage, store: ChunkStore, remoteName: string): Promise<void> {
  const tc = targets.timecoded;
  if (!tc) return;
  const ids = [...new Set(tc.clips.map((c) => targets.list[c.target]!.manifest))];
  await fetchManifests(storage, store, ids, { remoteName });
  const media = new Map(ids.map((id) => [id, Manifest.parse(store.getManifestBytes(id)).header.media]));
  let rate = tc.timelineRate;
  if (!rate) {
    for (const m of media.values()) {
      const v = isMediaStructure(m) ? m.tracks.find((t) => t.type === 'video')?.frameRate : undefined;
      if (v) {
        rate = parseRate(String(v)) ?? null;
        break;
      }
    }
  }
  if (!rate) return;
  const timeline = tc.timelineRate ? parseTimeline(tc.name, tc.bytes) : parseTimeline(tc.name, tc.bytes, { frameRate: rate });
  const fps = rate.num / rate.den;
  for (const { target, clip } of tc.clips) {
    const c = timeline.clips[clip];
    const t = targets.list[target]!;
    const m = media.get(t.manifest);
    if (!c || !('timecode' in c.source) || !isMediaStructure(m)) continue;
    const fileStart = m.startTimecode ? parseTimecode(m.startTimecode, nominalRate(rate)).frame : 0;
    const start = c.source.timecodeFrames - fileStart;
    if (start < 0) continue;
    t.range = { startSec: start / fps, endSec: (start + c.frames) / fps };
  }
}


function printPlan(ctx: CliContext, plan: ThawPlan, tier: RetrievalTier): void {
  for (const p of plan.notFrozen) out(ctx, `${p} is not frozen: it is readable now, nothing to restore or pay.`);
  if (plan.files.length === 0) return;
  const frozen = plan.packs.filter((p) => p.state === 'frozen');
  const running = plan.packs.filter((p) => p.state === 'restoring');
  for (const f of plan.files) {
    const what = f.range ? ` ${formatRange(f.range)}` : '';
    const idx = f.stage === 'index' ? ' (its container index first: the range itself is found once that is restored)' : '';
    const frozenHere = f.packs.filter((p) => plan.packs.find((x) => x.packId === p)?.state === 'frozen').length;
    if (frozenHere === 0) out(ctx, `${f.path}${what}: ${f.packs.length} pack(s) being restored`);
    else out(ctx, `${f.path}${what}: ${formatBytes(f.frozenBytes)} frozen of ${formatBytes(f.bytes)}, in ${f.packs.length} pack(s)${idx}`);
  }
  if (running.length) out(ctx, `${running.length} pack(s) are being restored already (nothing to pay again).`);
  if (frozen.length === 0) return;
  const bytes = frozen.reduce((s, p) => s + p.size, 0);
  const classes = [...new Set(frozen.map((p) => p.storageClass))].join(', ');
  out(ctx, `To restore: ${frozen.length} pack(s), ${formatBytes(bytes)} (${classes}), kept ${plan.days} day(s):`);
  for (const t of totalsByTier(plan)) {
    const mark = t.tier === tier ? '*' : ' ';
    if (t.unavailableFor.length) out(ctx, ` ${mark} ${t.tier.padEnd(9)} not offered by ${t.unavailableFor.join(', ')}`);
    else out(ctx, ` ${mark} ${t.tier.padEnd(9)} ${formatDollars(t.total).padStart(9)}  ${t.requests} request(s)  ${formatHours(t.hours)}`);
  }
}

async function confirm(ctx: CliContext, plan: ThawPlan, tier: RetrievalTier, dollars: number, yes: boolean): Promise<void> {
  if (yes) return;
  const frozen = plan.packs.filter((p) => p.state === 'frozen');
  const question = `Restore ${frozen.length} pack(s) at ${tier} for ${formatDollars(dollars)}? [y/N] `;
  const stdin = ctx.stdin as NodeJS.ReadStream;
  if (!ctx.interactive || !stdin.isTTY) {
    throw new DitsUserError('thaw-needs-yes', `a restore costs money (${formatDollars(dollars)} at ${tier}) and nobody is here to say yes`, {
      hint: 'add --yes to restore (the figures are above), or --dry-run to only see them',
    });
  }
  const rl = createInterface({ input: stdin, output: ctx.stderr });
  try {
    const answer = (await rl.question(question)).trim().toLowerCase();
    if (answer !== 'y' && answer !== 'yes') throw new DitsUserError('thaw-declined', 'nothing was restored', { hint: 'run it again and answer y, or add --yes' });
  } finally {
    rl.close();
  }
}

function printStarted(ctx: CliContext, r: StartSummary, json: boolean): void {
  if (json) {
    printJson(ctx, { id: r.id, started: r.started, alreadyRunning: r.alreadyRunning, alreadyRestored: r.alreadyRestored, failed: r.failed });
    return;
  }
  const parts = [`${r.started} restore(s) started`];
  if (r.alreadyRunning) parts.push(`${r.alreadyRunning} already running (not asked again)`);
  if (r.alreadyRestored) parts.push(`${r.alreadyRestored} already restored`);
  out(ctx, `${parts.join(', ')}${r.id ? `; recorded as thaw ${r.id}` : ''}.`);
  for (const f of r.failed) err(ctx, `error: the restore of pack ${f.packId.slice(0, 12)} was refused: ${f.message}`);
  if (r.failed.length) err(ctx, 'hint: run the same command again to ask for the refused packs once more (what is under way is not asked twice)');
}

function progressPrinter(ctx: CliContext): (packs: PackProgress[]) => void {
  let last = '';
  return (packs) => {
    const ready = packs.filter(isReadable);
    const bytes = packs.reduce((s, p) => s + p.size, 0);
    const done = ready.reduce((s, p) => s + p.size, 0);
    const line = `Restored ${ready.length}/${packs.length} pack(s), ${formatBytes(done)} of ${formatBytes(bytes)}`;
    if (line === last) return;
    last = line;
    if (ctx.interactive) ctx.stderr.write(`\r${line}\x1b[K${ready.length === packs.length ? '\n' : ''}`);
    else err(ctx, line);
  };
}

/** Once restored: HEAD's files are written (as `git dits pull` does); another revision's or a range's content goes into the local store. */
async function writeFiles(ctx: CliContext, repo: RepoPaths, store: ChunkStore, storage: ObjectStorage, remoteName: string, restored: ReadonlySet<string>, targets: Targets): Promise<number> {
  const ranged = targets.list.filter((t) => t.range);
  const whole = targets.list.filter((t) => !t.range);
  if (ranged.length) {
    await fetchManifests(storage, store, ranged.map((t) => t.manifest), { remoteName });
    const chunkIds: Buffer[] = [];
    for (const t of ranged) {
      const m = Manifest.parse(store.getManifestBytes(t.manifest));
      if (!isMediaStructure(m.header.media)) continue;
      // every chunk of the file held by a pack this thaw restored: the range's, and what else of the file those packs hold
      for (let i = 0; i < m.chunkCount; i++) chunkIds.push(m.idRawAt(i));
    }
    const wanted = restored;
    // (a server planned it: this store's cache of the remote's packs may be behind)
    await syncRemoteIndex(storage, store, remoteName);
    const index = store.remoteIndex(remoteName, storage.location);
    const fromRestored = chunkIds.filter((id) => !store.hasChunk(id) && index.locations(id).some((l) => wanted.has(l.packId)));
    if (fromRestored.length) await ensureLocal(storage, store, { chunkIds: fromRestored }, { remoteName, sync: 'never' });
    out(ctx, `The range's content (${fromRestored.length} chunk(s)) is in the local store; the rest of ${ranged.length === 1 ? 'the file' : 'those files'} stays frozen.`);
  }
  if (whole.length === 0) return 0;
  if (!targets.atHead) {
    const r = await ensureLocal(storage, store, { manifestIds: whole.map((t) => t.manifest) }, { remoteName });
    out(ctx, `Fetched ${formatBytes(r.bytes)} into the local store; checking that revision out writes the files.`);
    return 0;
  }
  const todo = whole.map((t) => t.path).filter((p) => readWorktreePointer(path.join(repo.workTree, p)));
  if (todo.length === 0) return 0;
  store.close();
  const done = await finishCheckout(ctx, todo, true, remoteName);
  if (done.written > 0) out(ctx, `Wrote ${done.written} file(s).`);
  return done.written;
}

async function showStatus(ctx: CliContext, remoteName: string, storage: ObjectStorage, tiered: (ObjectStorage & TierStorage) | null, json: boolean): Promise<number> {
  const records = await listThaws(storage);
  const rows = [];
  for (const r of records) {
    let packs: PackProgress[] = [];
    const list = r.packs.map((p) => ({ ...p, key: `v1/packs/${p.packId}.pack` }));
    if (tiered) packs = await packProgress(tiered, list);
    else if (storage instanceof HttpStorage) {
      // the server's archive: its word on each pack
      const states = new Map((await storage.thawProgress(r.id)).progress.map((p) => [p.packId, p]));
      packs = list.map((p) => {
        const s = states.get(p.packId);
        return { packId: p.packId, key: p.key, storageClass: p.storageClass, size: p.size, state: (s?.state ?? 'gone') as PackProgress['state'], ...(s?.expiry ? { expiry: Date.parse(s.expiry) } : {}) };
      });
    }
    rows.push({ record: r, packs });
  }
  if (json) {
    printJson(ctx, rows.map(({ record, packs }) => ({ ...record, progress: packs.map((p) => ({ packId: p.packId, state: p.state, ...(p.expiry !== undefined ? { expiry: new Date(p.expiry).toISOString() } : {}) })) })));
    return 0;
  }
  if (rows.length === 0) {
    out(ctx, `No thaw was asked for on ${remoteName}.`);
    return 0;
  }
  for (const { record, packs } of rows) {
    const ready = packs.filter(isReadable).length;
    const expiries = packs.map((p) => p.expiry).filter((e): e is number => e !== undefined);
    const exp = expiries.length ? `, readable until ${new Date(Math.min(...expiries)).toISOString().slice(0, 16).replace('T', ' ')} UTC` : '';
    const state = packs.length === 0 ? '' : ready === packs.length ? `restored${exp}` : `${ready}/${packs.length} pack(s) restored, ${packs.filter((p) => p.state === 'restoring').length} restoring${packs.some((p) => p.state === 'frozen') ? `, ${packs.filter((p) => p.state === 'frozen').length} frozen (not asked: run the thaw again)` : ''}`;
    out(ctx, `${record.id}  ${record.tier}  by ${record.by}  ${record.paths.slice(0, 3).join(', ')}${record.paths.length > 3 ? ` (+${record.paths.length - 3})` : ''}: ${state}`);
  }
  return 0;
}

export const commands = { thaw };
