/**
 * The process the `tier plan` figure measures: opens a tier catalog, plans over it with
 * the default policy, AWS's classes and the shipped price table, and prints the summary
 * `git dits tier plan` would (as JSON on stdout). Usage:
 *   node dist/bench/lib/tier-plan-child.js <catalog.sqlite> <keep-hot.json> <now ms>
 */
import fs from 'node:fs';
import { TierCatalog } from '../../src/tier/catalog.js';
import { planTiers } from '../../src/tier/plan.js';
import { DEFAULT_POLICY } from '../../src/tier/policy.js';
import { AWS_US_EAST_1 } from '../../src/tier/prices.js';
import { providerProfile } from '../../src/tier/tiers.js';

const [file, keepHotFile, nowText] = process.argv.slice(2);
if (!file || !keepHotFile || !nowText) {
  process.stderr.write('usage: tier-plan-child <catalog.sqlite> <keep-hot.json> <now ms>\n');
  process.exit(2);
}
const started = process.hrtime.bigint();
const keepHot = new Set((JSON.parse(fs.readFileSync(keepHotFile, 'utf8')) as { manifests: string[] }).manifests);
const catalog = TierCatalog.open(file);
const plan = planTiers(catalog, DEFAULT_POLICY, providerProfile('aws'), AWS_US_EAST_1, { now: Number(nowText), keepHotManifests: keepHot });
const first = plan.moves.list(undefined, 20);
catalog.close();
const { moves, ...rest } = plan;
process.stdout.write(
  JSON.stringify({ ...rest, moveCount: moves.length, firstMoves: first.length, seconds: Number(process.hrtime.bigint() - started) / 1e9, heapUsed: process.memoryUsage().heapUsed }) + '\n',
);
