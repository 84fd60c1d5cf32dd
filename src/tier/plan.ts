/**
 * planTiers: from the catalog, the policy and the provider's profile, what the reaper would
 * do now, and what that costs. Pure: it reads the catalog and changes nothing.
 *
 * Rules (docs in PLAN17 / DESIGN "Archive tiers"):
 * - last use of a manifest = max(its last read, its upload time); last use of a pack =
 *   max(its own last read, its upload time, the last use of every manifest using it);
 * - target tier from `now - lastUse` against warm/cold/deep ages; a pack used by a
 *   keep-hot or a variant manifest: hot; never warmer than it is (warming is a thaw);
 * - two phases: a pack first gets a pending mark ('mark'); a later run moves it ('move')
 *   once `graceMs` passed since the mark and it is still eligible; a mark whose pack is no
 *   longer eligible is taken back ('unmark');
 * - `now` earlier than something the storage stamped (an upload) by more than a day: the
 *   clock is wrong, and nothing is planned;
 * - graduated file versions (`v1/tier/graduated/`, graduated.ts): a manifest a graduation
 *   record names is last used at the record's `lastChange`, plus any read or upload after
 *   the record's `since` (someone else using it since is a real use and wins); a pack all
 *   of whose users are graduated counts its own reads and upload only after the earliest
 *   `since` among them, so it goes warm (or colder, by `lastChange`'s age) without waiting
 *   for the warm age of its upload; a pack that also holds a chunk of a non-graduated file
 *   version keeps that version's last use (the usual max). Variants still keep packs hot,
 *   and so do keep-hot manifests, except that with `keepHotIsDefault` (no keep-hot pattern
 *   configured anywhere: the default branch's current files stand in for "needed now") a
 *   graduated manifest is not held hot by that default. Such moves say reason 'graduated'.
 *
 * Memory: two typed arrays over manifests and two over packs (about 17 bytes a pack and
 * 9 a manifest), plus the moves in a compact table (about 60 bytes a move); rows are read
 * raw and dropped.
 */
import { DitsUserError } from '../errors.js';
import {
  earlyDeletionCharge,
  monthlyStorageCost,
  transitionCost,
  type PriceTable,
} from './prices.js';
import { TIERS, colder, tierOfClass, tierRank, type ProviderProfile, type Tier } from './tiers.js';
import type { TierCatalog } from './catalog.js';
import { DAY_MS, type TierPolicy } from './policy.js';

export type MovePhase = 'mark' | 'move' | 'wait' | 'unmark';
/** why a pack goes colder: the age of its last use, or its users' graduation; unmark: it is in use (or kept hot) again */
export type MoveReason = 'age' | 'graduated' | 'in-use';

export interface PackMove {
  packId: string;
  size: number;
  fromClass: string;
  fromTier: Tier;
  /** mark/move/wait: the tier it goes to; unmark: the tier the stale mark named */
  toTier: Tier;
  toClass: string;
  phase: MovePhase;
  /** ms since the epoch */
  lastUse: number;
  /** when it entered its current class (for early-deletion charges) */
  classSince: number;
  reason: MoveReason;
}

const PHASES: readonly MovePhase[] = ['mark', 'move', 'wait', 'unmark'];

/** Moves in a compact table: raw ids back to back and typed columns (no object per move until read). */
export class PackMoves implements Iterable<PackMove> {
  private ids = Buffer.alloc(32 * 1024);
  private size = new Float64Array(1024);
  private lastUse = new Float64Array(1024);
  private classSince = new Float64Array(1024);
  private codes = new Uint8Array(1024 * 4); // fromClass idx, fromTier, toTier, phase
  private graduated = new Uint8Array(1024);
  private readonly classes: string[] = [];
  private readonly classIndex = new Map<string, number>();
  length = 0;

  constructor(private readonly toClassOf: (t: Tier) => string) {}

  add(packId: string, size: number, fromClass: string, fromTier: Tier, toTier: Tier, phase: MovePhase, lastUse: number, classSince: number, graduated = false): void {
    if (this.length === this.size.length) this.grow();
    const i = this.length++;
    this.ids.write(packId, i * 32, 32, 'hex');
    this.size[i] = size;
    this.lastUse[i] = lastUse;
    this.classSince[i] = classSince;
    let c = this.classIndex.get(fromClass);
    if (c === undefined) {
      c = this.classes.length;
      this.classes.push(fromClass);
      this.classIndex.set(fromClass, c);
    }
    this.codes[i * 4] = c;
    this.codes[i * 4 + 1] = tierRank(fromTier);
    this.codes[i * 4 + 2] = tierRank(toTier);
    this.codes[i * 4 + 3] = PHASES.indexOf(phase);
    this.graduated[i] = graduated ? 1 : 0;
  }

  private grow(): void {
    const n = this.size.length * 2;
    const ids = Buffer.alloc(n * 32);
    this.ids.copy(ids);
    this.ids = ids;
    const f64 = (a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> => {
      const b = new Float64Array(n);
      b.set(a);
      return b;
    };
    this.size = f64(this.size);
    this.lastUse = f64(this.lastUse);
    this.classSince = f64(this.classSince);
    const codes = new Uint8Array(n * 4);
    codes.set(this.codes);
    this.codes = codes;
    const graduated = new Uint8Array(n);
    graduated.set(this.graduated);
    this.graduated = graduated;
  }

  at(i: number): PackMove {
    const toTier = TIERS[this.codes[i * 4 + 2]!]!;
    const phase = PHASES[this.codes[i * 4 + 3]!]!;
    return {
      packId: this.ids.toString('hex', i * 32, i * 32 + 32),
      size: this.size[i]!,
      fromClass: this.classes[this.codes[i * 4]!]!,
      fromTier: TIERS[this.codes[i * 4 + 1]!]!,
      toTier,
      toClass: this.toClassOf(toTier),
      phase,
      lastUse: this.lastUse[i]!,
      classSince: this.classSince[i]!,
      reason: phase === 'unmark' ? 'in-use' : this.graduated[i] ? 'graduated' : 'age',
    };
  }

  phaseAt(i: number): MovePhase {
    return PHASES[this.codes[i * 4 + 3]!]!;
  }

  *[Symbol.iterator](): Iterator<PackMove> {
    for (let i = 0; i < this.length; i++) yield this.at(i);
  }

  /** The moves of some phases (a new array of objects: for output, not for a million moves). */
  list(phases?: readonly MovePhase[], limit = Infinity): PackMove[] {
    const out: PackMove[] = [];
    for (let i = 0; i < this.length && out.length < limit; i++) if (!phases || phases.includes(this.phaseAt(i))) out.push(this.at(i));
    return out;
  }

  toJSON(): PackMove[] {
    return this.list();
  }
}

export interface TierTotals {
  packs: number;
  bytes: number;
}

export interface TierPlan {
  now: number;
  provider: string;
  /** false: the provider has one class; `notes` says so and nothing is planned */
  tiered: boolean;
  moves: PackMoves;
  /** counts of moves per phase */
  phases: Record<MovePhase, TierTotals>;
  /** per tier, now and once every planned move (mark and move) is made */
  before: Record<Tier, TierTotals>;
  after: Record<Tier, TierTotals>;
  /** $ per month for the packs, now and after */
  monthlyCostBefore: number;
  monthlyCostAfter: number;
  /** the same per tier */
  tierCostBefore: Record<Tier, number>;
  tierCostAfter: Record<Tier, number>;
  /** $ for the class changes (one COPY or transition per move) */
  transitionCost: number;
  /** $ billed for leaving classes before their minimum duration */
  earlyDeletion: number;
  /** packs kept hot by keep-hot patterns or variants */
  keptHot: TierTotals;
  /** graduation records read, the file versions they name that the catalog holds, and the packs whose use they set (all users graduated) */
  graduated: { records: number; manifests: number; packs: number; bytes: number };
  notes: string[];
}

/** One graduation record as the planner needs it (graduated.ts reads them). */
export interface GraduatedInput {
  manifests: Iterable<string>;
  lastChange: number;
  since: number;
}

export interface PlanOptions {
  now: number;
  keepHotManifests: ReadonlySet<string> | Iterable<string>;
  /** an upload stamped this much after `now` means the clock is wrong (default 1 day) */
  clockToleranceMs?: number;
  /** graduation records (see the top of this file) */
  graduated?: readonly GraduatedInput[];
  /** the keep-hot list is the default (no pattern configured): it does not hold graduated manifests hot */
  keepHotIsDefault?: boolean;
}

function zeroTotals(): Record<Tier, TierTotals> {
  return { hot: { packs: 0, bytes: 0 }, warm: { packs: 0, bytes: 0 }, cold: { packs: 0, bytes: 0 }, deep: { packs: 0, bytes: 0 } };
}

export function planTiers(catalog: TierCatalog, policy: TierPolicy, profile: ProviderProfile, prices: PriceTable, opts: PlanOptions): TierPlan {
  const now = opts.now;
  const notes: string[] = [];
  const phases: Record<MovePhase, TierTotals> = { mark: { packs: 0, bytes: 0 }, move: { packs: 0, bytes: 0 }, wait: { packs: 0, bytes: 0 }, unmark: { packs: 0, bytes: 0 } };
  const classes = profile.classes;
  const moves = new PackMoves((t) => (classes ? classes[t] : 'STANDARD'));
  const before = zeroTotals();
  const after = zeroTotals();
  const keptHot = { packs: 0, bytes: 0 };
  const plan: TierPlan = { now, provider: profile.name, tiered: classes !== null, moves, phases, before, after, monthlyCostBefore: 0, monthlyCostAfter: 0, tierCostBefore: { hot: 0, warm: 0, cold: 0, deep: 0 }, tierCostAfter: { hot: 0, warm: 0, cold: 0, deep: 0 }, transitionCost: 0, earlyDeletion: 0, keptHot, graduated: { records: opts.graduated?.length ?? 0, manifests: 0, packs: 0, bytes: 0 }, notes };
  if (classes === null) {
    notes.push(profile.note ?? `${profile.name} has one storage class: nothing to move`);
    return plan;
  }
  // the newest time the storage stamped, seen while scanning (checked before the plan is returned)
  let newest = 0;

  // 1. last use and hotness of every manifest; graduated ones: [lastChange, since] (two
  // records naming one version: the later lastChange, the earlier since)
  const max = catalog.maxNumbers();
  const grad = new Map<number, [number, number]>();
  for (const g of opts.graduated ?? []) {
    for (const n of catalog.manifestNumbers(g.manifests)) {
      const had = grad.get(n);
      grad.set(n, had ? [Math.max(had[0], g.lastChange), Math.min(had[1], g.since)] : [g.lastChange, g.since]);
    }
  }
  plan.graduated.manifests = grad.size;
  const mUse = new Float64Array(max.manifest + 1);
  const mHot = new Uint8Array(max.manifest + 1);
  for (const [n, uploaded, read, pinned] of catalog.iterateManifestUse()) {
    if (uploaded > newest) newest = uploaded;
    const g = grad.get(n);
    mUse[n] = g === undefined ? Math.max(uploaded, read) : Math.max(g[0], uploaded > g[1] ? uploaded : 0, read > g[1] ? read : 0);
    if (pinned) mHot[n] = 1;
  }
  for (const n of catalog.manifestNumbers(opts.keepHotManifests)) if (!(opts.keepHotIsDefault && grad.has(n))) mHot[n] = 1;

  // 2. fold users into packs; with graduation records, whether every user is graduated
  // (pGrad 1: all so far, 2: one is not) and the earliest `since` among them
  const pUse = new Float64Array(max.pack + 1);
  const pHot = new Uint8Array(max.pack + 1);
  const pGrad = grad.size ? new Uint8Array(max.pack + 1) : null;
  const pSince = grad.size ? new Float64Array(max.pack + 1) : null;
  for (const [p, m] of catalog.iterateUsers()) {
    if (mUse[m]! > pUse[p]!) pUse[p] = mUse[m]!;
    if (mHot[m]) pHot[p] = 1;
    if (pGrad !== null && pGrad[p] !== 2) {
      const g = grad.get(m);
      if (g === undefined) pGrad[p] = 2;
      else if (pGrad[p] === 0) {
        pGrad[p] = 1;
        pSince![p] = g[1];
      } else if (g[1] < pSince![p]!) pSince![p] = g[1];
    }
  }

  // 3. each pack: where it is, where it should be
  const warmMs = policy.warmAfterDays * DAY_MS;
  const coldMs = policy.coldAfterDays * DAY_MS;
  const deepMs = policy.deepAfterDays * DAY_MS;
  const byClassBefore = new Map<string, TierTotals>();
  const byClassAfter = new Map<string, TierTotals>();
  const into = new Map<string, number>();
  const add = (m: Map<string, TierTotals>, cls: string, bytes: number): void => {
    const t = m.get(cls);
    if (t) {
      t.packs++;
      t.bytes += bytes;
    } else m.set(cls, { packs: 1, bytes });
  };
  const unpriced = new Set<string>();
  const price = <T>(cls: string, f: () => T, zero: T): T => {
    if (prices.classes[cls] === undefined) {
      unpriced.add(cls);
      return zero;
    }
    return f();
  };
  for (const [n, id, size, cls, uploaded, classSince, read, pendingRank, pendingAt, taggedRank] of catalog.iteratePacks()) {
    if (uploaded > newest) newest = uploaded;
    if (classSince > newest) newest = classSince;
    const byClass = tierOfClass(profile, cls);
    // lifecycle mode: tagged for a tier the bucket's rules have not applied yet counts as there
    const current = taggedRank === null ? byClass : colder(byClass, TIERS[taggedRank]!);
    // a pack only graduated versions use: its own reads and upload count after their graduation
    const graduated = pGrad !== null && pGrad[n] === 1;
    const since = graduated ? pSince![n]! : -Infinity;
    const lastUse = Math.max(pUse[n]!, uploaded > since ? uploaded : 0, read > since ? read : 0);
    if (graduated) {
      plan.graduated.packs++;
      plan.graduated.bytes += size;
    }
    const age = now - lastUse;
    let target: Tier = age >= deepMs ? 'deep' : age >= coldMs ? 'cold' : age >= warmMs ? 'warm' : 'hot';
    if (pHot[n]) {
      target = 'hot';
      keptHot.packs++;
      keptHot.bytes += size;
    }
    before[current].packs++;
    before[current].bytes += size;
    add(byClassBefore, cls, size);
    const pending = pendingRank === null ? null : TIERS[pendingRank]!;
    const colderNow = tierRank(target) > tierRank(current) && classes[target] !== cls;
    const currentClass = current === byClass ? cls : classes[current];
    let phase: MovePhase | null = null;
    let to: Tier = target;
    if (!colderNow) {
      if (pending !== null) {
        phase = 'unmark';
        to = pending;
      }
    } else if (pending === null || tierRank(pending) <= tierRank(current)) phase = 'mark';
    else if (pendingAt !== null && now - pendingAt >= policy.graceMs) phase = 'move';
    else phase = 'wait';
    if (phase !== null) {
      moves.add(id, size, cls, current, to, phase, lastUse, classSince, graduated);
      phases[phase].packs++;
      phases[phase].bytes += size;
    }
    const end: Tier = phase === 'mark' || phase === 'move' || phase === 'wait' ? target : current;
    const endClass = end === current ? currentClass : classes[end];
    after[end].packs++;
    after[end].bytes += size;
    add(byClassAfter, endClass, size);
    if (endClass !== currentClass) {
      into.set(endClass, (into.get(endClass) ?? 0) + 1);
      plan.earlyDeletion += price(cls, () => earlyDeletionCharge(prices, cls, size, 1, (now - classSince) / DAY_MS), 0);
    }
  }
  const tolerance = opts.clockToleranceMs ?? DAY_MS;
  if (newest > now + tolerance) {
    throw new DitsUserError('clock-skew', `this machine's clock (${new Date(now).toISOString()}) is behind the storage's (an object was written at ${new Date(newest).toISOString()})`, {
      hint: 'set the clock right (e.g. enable NTP) and run again; nothing was planned or moved',
    });
  }
  for (const [cls, t] of byClassBefore) {
    const cost = price(cls, () => monthlyStorageCost(prices, cls, t.bytes, t.packs), 0);
    plan.monthlyCostBefore += cost;
    plan.tierCostBefore[tierOfClass(profile, cls)] += cost;
  }
  for (const [cls, t] of byClassAfter) {
    const cost = price(cls, () => monthlyStorageCost(prices, cls, t.bytes, t.packs), 0);
    plan.monthlyCostAfter += cost;
    plan.tierCostAfter[tierOfClass(profile, cls)] += cost;
  }
  for (const [cls, count] of into) plan.transitionCost += price(cls, () => transitionCost(prices, cls, count), 0);
  if (unpriced.size) notes.push(`the price table (${prices.provider} ${prices.region}) has no prices for ${[...unpriced].join(', ')}: those packs count $0`);
  return plan;
}
