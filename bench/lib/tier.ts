/**
 * Issue 17's planner figure: `tier plan` over a repository of 1,000,000 packs, from a
 * synthetic catalog (the index a sync would have built: packs, manifests, which manifests
 * use which packs, classes, reads, pending marks), measured as a whole child process
 * (wall and CPU seconds, peak RSS of its tree).
 *
 * The synthetic repository: `packs / 2` file versions uploaded over 3 years, each with two
 * packs of its own (64 MiB) and, for 30% of them, a chunk in one older pack; 20% read
 * since their upload; packs already in the class of their tier as of 10 days ago (80%) or
 * still STANDARD; 5% marked pending in the last 3 days; 1% of file versions pinned (variants);
 * 2,000 keep-hot file versions. Built once per size and kept in the corpus folder.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { run as runProcess } from './exec.js';
import type { TreeMemoryPeak } from './proc-tree-memory.js';
import type { TierFigureName } from './args.js';
import type { Sandbox } from './sandbox.js';
import { startS3Loopback } from './s3-loopback.js';
import { startGlacierFront } from '../../src/transfer/testing/glacier-front.js';
import { randomBytes } from 'node:crypto';
import { TierCatalog } from '../../src/tier/catalog.js';
import { DAY_MS, DEFAULT_POLICY } from '../../src/tier/policy.js';
import { TIERS } from '../../src/tier/tiers.js';
import { loadS3Storage, runThawFigures, type ThawFiguresResult } from './tier-thaw.js';


export interface TierPlanRun {
  seconds: number;
  cpuSeconds: number;
  memory: TreeMemoryPeak;
  moves: number;
  planSeconds: number;
}

export interface TierMovesResult {
  files: number;
  fileBytes: number;
  /** objects under the remote's prefix before the moves (key -> size), and after, the reaper's own v1/tier/ objects left out */
  objectsBefore: number;
  objectsAfter: number;
  /** keys there before and gone after */
  deleted: number;
  /** keys whose size changed */
  sizeChanged: number;
  movedPacks: number;
  /** packs in DEEP_ARCHIVE afterwards (the front's record) */
  deepPacks: number;
  /** requests the moves made at the front: CopyObject, and bytes received in PUT bodies (the reaper's small JSON only) */
  copies: number;
  bytesUploaded: number;
  deletesAtFront: number;
}

export interface TierResults {
  plan: { packs: number; manifests: number; userRows: number; runs: TierPlanRun[] } | null;
  moves?: TierMovesResult | null;
  /** thaw-file, thaw-range, cost, frozen-checkout (lib/tier-thaw.ts) */
  thaw?: ThawFiguresResult | null;
  notMeasured: { figure: TierFigureName; why: string }[];
}

/** The synthetic catalogs' clock: a fixed "now" so a cached catalog gives the same plan. */
export const SYNTHETIC_NOW = Date.UTC(2026, 11, 1);

function idOf(kind: string, i: number): string {
  return createHash('sha256').update(`${kind}${i}`).digest('hex');
}

/** Deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CLASS_OF_TIER = { hot: 'STANDARD', warm: 'STANDARD_IA', cold: 'GLACIER_IR', deep: 'DEEP_ARCHIVE' } as const;

export function ensureSyntheticCatalog(dir: string, packs: number, log: (s: string) => void): { file: string; keepHotFile: string; manifests: number; userRows: number } {
  // the version in the name: a catalog cached by an older build of this generator is not reused
  const base = path.join(dir, `tier-catalog-v2-${packs}`);
  const file = `${base}.sqlite`;
  const keepHotFile = `${base}.keep-hot.json`;
  const metaFile = `${base}.json`;
  if (fs.existsSync(file) && fs.existsSync(metaFile) && fs.existsSync(keepHotFile)) return { file, keepHotFile, ...(JSON.parse(fs.readFileSync(metaFile, 'utf8')) as { manifests: number; userRows: number }) };
  for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
  log(`tier: building a synthetic catalog of ${packs} packs`);
  const started = Date.now();
  const rand = prng(17);
  const catalog = TierCatalog.open(file);
  const db = catalog.db;
  const manifests = Math.floor(packs / 2);
  const span = 3 * 365 * DAY_MS;
  const addPack = db.prepare('INSERT INTO packs (n, id, size, class, uploaded_at, class_since, last_read_at, pending_tier, pending_at, indexed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)');
  const addManifest = db.prepare('INSERT INTO manifests (n, id, uploaded_at, last_read_at, complete) VALUES (?, ?, ?, ?, 1)');
  const link = db.prepare('INSERT OR IGNORE INTO manifest_packs (pack, manifest) VALUES (?, ?)');
  const pin = db.prepare('INSERT OR IGNORE INTO pins (manifest_id) VALUES (?)');
  const tierAt = (age: number): (typeof TIERS)[number] =>
    age >= DEFAULT_POLICY.deepAfterDays * DAY_MS ? 'deep' : age >= DEFAULT_POLICY.coldAfterDays * DAY_MS ? 'cold' : age >= DEFAULT_POLICY.warmAfterDays * DAY_MS ? 'warm' : 'hot';
  let userRows = 0;
  const keepHot: string[] = [];
  // file versions in upload order (oldest first), so "an older pack" has a smaller number
  const uploads = Array.from({ length: manifests }, () => SYNTHETIC_NOW - span * rand()).sort((a, b) => a - b);
  const BATCH = 20_000;
  for (let start = 0; start < manifests; start += BATCH) {
    catalog.tx(() => {
      for (let j = start; j < Math.min(manifests, start + BATCH); j++) {
        const up = Math.round(uploads[j]!);
        const read = rand() < 0.2 ? Math.round(up + (SYNTHETIC_NOW - up) * rand()) : 0;
        const mId = idOf('m', j);
        addManifest.run(j + 1, mId, up, read);
        const lastUse = Math.max(up, read);
        for (const k of [2 * j + 1, 2 * j + 2]) {
          if (k > packs) continue;
          const cls = rand() < 0.8 ? CLASS_OF_TIER[tierAt(SYNTHETIC_NOW - 10 * DAY_MS - lastUse)] : 'STANDARD';
          const pending = rand() < 0.05;
          const pendingAt = pending ? Math.round(SYNTHETIC_NOW - 3 * DAY_MS * rand()) : null;
          addPack.run(k, idOf('p', k), 64 * 2 ** 20, cls, up, up, 0, pending ? TIERS.indexOf('warm') : null, pendingAt);
          link.run(k, j + 1);
          userRows++;
        }
        if (j > 0 && rand() < 0.3) {
          link.run(1 + Math.floor(rand() * Math.min(packs, 2 * j)), j + 1);
          userRows++;
        }
        if (rand() < 0.01) pin.run(mId);
        if (keepHot.length < 2000 && rand() < 0.01) keepHot.push(mId);
      }
    });
  }
  for (let k = 2 * manifests + 1; k <= packs; k++) addPack.run(k, idOf('p', k), 64 * 2 ** 20, 'STANDARD', SYNTHETIC_NOW - DAY_MS, SYNTHETIC_NOW - DAY_MS, 0, null, null);
  db.pragma('wal_checkpoint(TRUNCATE)');
  catalog.close();
  fs.writeFileSync(keepHotFile, JSON.stringify({ manifests: keepHot }));
  fs.writeFileSync(metaFile, JSON.stringify({ manifests, userRows }));
  log(`tier: catalog built in ${((Date.now() - started) / 1000).toFixed(1)} s (${(fs.statSync(file).size / 2 ** 20).toFixed(0)} MiB)`);
  return { file, keepHotFile, manifests, userRows };
}

export async function runTierBench(
  opts: { runs: number; memoryIntervalMs: number; packs: number; figures: readonly TierFigureName[] },
  deps: { corpusDir: string; repoRoot: string; env: NodeJS.ProcessEnv; log: (s: string) => void; sandbox?: Sandbox },
): Promise<TierResults> {
  const out: TierResults = { plan: null, moves: null, notMeasured: [] };
  if (opts.figures.includes('moves')) {
    if (!deps.sandbox) out.notMeasured.push({ figure: 'moves', why: 'no sandbox given' });
    else out.moves = await runMovesFigure(deps.sandbox, deps);
  }
  const thawFigures = { thawFile: opts.figures.includes('thaw-file'), thawRange: opts.figures.includes('thaw-range'), cost: opts.figures.includes('cost'), frozenCheckout: opts.figures.includes('frozen-checkout') };
  if (Object.values(thawFigures).some(Boolean)) {
    if (!deps.sandbox) {
      for (const f of ['thaw-file', 'thaw-range', 'cost', 'frozen-checkout'] as const) if (opts.figures.includes(f)) out.notMeasured.push({ figure: f, why: 'no sandbox given' });
    } else out.thaw = await runThawFigures(thawFigures, opts.runs, { sandbox: deps.sandbox, repoRoot: deps.repoRoot, corpusDir: deps.corpusDir, log: deps.log });
  }
  if (!opts.figures.includes('plan')) return out;
  const child = path.join(deps.repoRoot, 'dist', 'bench', 'lib', 'tier-plan-child.js');
  if (!fs.existsSync(child)) {
    out.notMeasured.push({ figure: 'plan', why: `${child} is missing: build first (npx tsc -p tsconfig.json)` });
    return out;
  }
  const cat = ensureSyntheticCatalog(deps.corpusDir, opts.packs, deps.log);
  out.plan = { packs: opts.packs, manifests: cat.manifests, userRows: cat.userRows, runs: [] };
  const timeFile = path.join(deps.corpusDir, 'tier-plan.time');
  for (let i = 0; i < opts.runs; i++) {
    // the catalog file is read cold-ish the first time and from the page cache after: a page-cache read, as on a server that just synced
    const r = await runProcess('/usr/bin/time', ['-f', '%e %U %S', '-o', timeFile, process.execPath, child, cat.file, cat.keepHotFile, String(SYNTHETIC_NOW)], {
      cwd: deps.corpusDir,
      env: deps.env,
      memoryIntervalMs: opts.memoryIntervalMs,
    });
    const [, user, sys] = fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
    const summary = JSON.parse(r.stdout) as { moveCount: number; seconds: number };
    out.plan.runs.push({ seconds: r.seconds, cpuSeconds: user! + sys!, memory: r.memory!, moves: summary.moveCount, planSeconds: summary.seconds });
    deps.log(`tier plan: ${r.seconds.toFixed(2)} s wall, ${(user! + sys!).toFixed(2)} s CPU, peak RSS ${(r.memory!.peakSumRssBytes / 2 ** 20).toFixed(0)} MiB, ${summary.moveCount} moves`);
  }
  return out;
}

/**
 * "Objects deleted by any tier move: 0": a repository whose first version of 8 files
 * (2 MiB each) is replaced by a second, both pushed to dits::s3 through the Glacier front
 * before s3rver; every tier age set to 0 so the first version's packs go to DEEP_ARCHIVE;
 * `git dits tier apply --grace 0` twice (mark, then move). Every object under the remote's
 * prefix is listed before and after: none may be gone or change size.
 */
async function runMovesFigure(sb: Sandbox, deps: { repoRoot: string; log: (s: string) => void }): Promise<TierMovesResult> {
  const s3 = await startS3Loopback({ directory: sb.freshDir('s3rver-tier'), bucket: 'bench', repoRoot: deps.repoRoot });
  const front = await startGlacierFront(s3.endpoint);
  try {
    const prefix = `tier-${Date.now()}`;
    const env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_REGION: 'us-east-1' };
    const dir = sb.freshDir('tier-moves');
    const git = (args: string[]) => sb.run('git', args, dir, { env });
    await git(['init', '-q', '.']);
    for (const [k, v] of Object.entries({ 'dits.s3.endpoint': front.endpoint, 'dits.tier.provider': 'aws', 'dits.packSize': '1M', 'dits.tier.warmAfter': '0', 'dits.tier.coldAfter': '0', 'dits.tier.deepAfter': '0' })) await git(['config', k, v]);
    await git(['dits', 'init']);
    await git(['dits', 'track', '*.bin']);
    const files = 8;
    const fileBytes = 2 * 2 ** 20;
    const write = () => {
      for (let i = 0; i < files; i++) fs.writeFileSync(path.join(dir, `f${i}.bin`), randomBytes(fileBytes));
    };
    write();
    await git(['add', '.']);
    await git(['commit', '-q', '-m', 'v1']);
    await git(['remote', 'add', 'origin', `dits::s3://${s3.bucket}/${prefix}`]);
    await git(['push', '-q', 'origin', 'main']);
    write();
    await git(['commit', '-q', '-am', 'v2']);
    await git(['push', '-q', 'origin', 'main']);
    const { S3Storage } = await loadS3Storage();
    const storage = new S3Storage({ bucket: s3.bucket, prefix, endpoint: front.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
    const listAll = async (): Promise<Map<string, number>> => {
      const m = new Map<string, number>();
      for await (const o of storage.list('')) if (!o.key.startsWith('v1/tier/')) m.set(o.key, o.size);
      return m;
    };
    const before = await listAll();
    front.resetCounts();
    await git(['dits', 'tier', 'apply', '--grace', '0', '--json']);
    const second = JSON.parse((await git(['dits', 'tier', 'apply', '--grace', '0', '--json'])).stdout) as { apply: { moved: number } };
    const counts = { ...front.counts };
    const after = await listAll();
    let deleted = 0;
    let sizeChanged = 0;
    for (const [k, size] of before) {
      const a = after.get(k);
      if (a === undefined) deleted++;
      else if (a !== size) sizeChanged++;
    }
    let deepPacks = 0;
    for (const k of after.keys()) if (k.endsWith('.pack') && front.classOf(`${prefix}/${k}`) === 'DEEP_ARCHIVE') deepPacks++;
    const r: TierMovesResult = { files, fileBytes, objectsBefore: before.size, objectsAfter: after.size, deleted, sizeChanged, movedPacks: second.apply.moved, deepPacks, copies: counts.copies, bytesUploaded: counts.bytesUploaded, deletesAtFront: counts.deletes };
    deps.log(`tier moves: ${r.movedPacks} packs moved to DEEP_ARCHIVE (${deepPacks} seen there), ${r.objectsBefore} objects before, ${r.objectsAfter} after, ${deleted} gone, ${sizeChanged} resized; ${r.copies} CopyObject, ${r.bytesUploaded} bytes uploaded`);
    return r;
  } finally {
    await front.close();
    await s3.close();
  }
}
