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
import { TierCatalog } from '../../src/tier/catalog.js';
import { DAY_MS, DEFAULT_POLICY } from '../../src/tier/policy.js';
import { TIERS } from '../../src/tier/tiers.js';


export interface TierPlanRun {
  seconds: number;
  cpuSeconds: number;
  memory: TreeMemoryPeak;
  moves: number;
  planSeconds: number;
}

export interface TierResults {
  plan: { packs: number; manifests: number; userRows: number; runs: TierPlanRun[] } | null;
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
  deps: { corpusDir: string; repoRoot: string; env: NodeJS.ProcessEnv; log: (s: string) => void },
): Promise<TierResults> {
  const out: TierResults = { plan: null, notMeasured: [] };
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
