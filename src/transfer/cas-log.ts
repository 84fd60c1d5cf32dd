/**
 * Compare-and-swap without conditional writes: how versioned objects (refs) stay safe on
 * storage that offers only plain PUT, GET, LIST and DELETE (s3rver, older MinIO, some
 * S3-compatible services). Used by S3Storage when conditional writes are off or absent.
 *
 * Each versioned key K has a log of slots under `<root>/<encoded K>/`; slot n holds the
 * n-th version. The value of a slot is decided by one instance of Disk Paxos (Gafni and
 * Lamport, "Disk Paxos", 2003), in which every proposer only ever writes objects of its
 * own (names carry a random proposer id) and reads everyone's. It needs no locks, no
 * leases and no clocks, only what S3 guarantees since December 2020: a PUT is atomic and
 * read-after-write consistent, and a LIST started after a PUT completed shows its key.
 *
 * Objects of slot n (`<inv>` is 9999999999 - n, so on S3 the newest slot lists first):
 *   `<inv>/d`                      decided marker: the chosen record (JSON)
 *   `<inv>/p<ballot>.1`            phase 1 ("I am trying ballot b"), empty
 *   `<inv>/p<ballot>.2`            phase 2 ("I accepted this record at ballot b")
 * where a ballot is `<10-digit number>.<proposer id>`, ordered as a string.
 *
 * Deciding slot n with ballot b: write `p<b>.1`, list the slot; if any ballot above b is
 * present, back off and retry higher. Otherwise adopt the record of the highest phase-2
 * object seen (or our own record if none), write `p<b>.2` with it, list again; if still
 * no higher ballot, the record is chosen: write `d` and report it. Why two proposers can
 * never choose different records: each writes before it lists, so of two proposers with
 * ballots b < c, either b's second list sees c (and b aborts) or c's first list starts
 * after b's phase-2 write and sees it (and c adopts b's record). Every list checks for `d`
 * first. Markers of the newest 64 slots are kept (older ones and phase objects of decided
 * slots are pruned), and before writing `d` a proposer checks that no later slot exists:
 * if one does, its slot was decided long ago and it reports the recorded marker, or
 * "unknown" (never a win) if that was pruned. So a proposer that slept through any number
 * of updates never reports a stale win. The listing order of the server does not matter.
 *
 * putIf(K, body, expected): read the newest decided slot D. If a slot D+1 is in progress,
 * take part in it (with our record if our expectation holds, with a no-op record that
 * repeats D's value otherwise) so a crashed writer never blocks the key. If our
 * expectation does not hold, report the current etag; else decide slot D+1 with our
 * record. We win only if the chosen record is ours (records carry a unique id). Readers
 * (getVersioned) complete an in-progress slot the same way, so a value once reported as
 * written is what every later read returns.
 *
 * Etags are value-based (a BLAKE3 prefix of the body), like S3's MD5 etags: a CAS compares
 * contents. Phase objects of decided slots are deleted as a courtesy; markers are kept.
 */
import { randomBytes } from 'node:crypto';
import { hashHex } from '../hashing/blake3.js';
import type { PutIfResult, VersionedObject } from './object-storage.js';
import { StorageError } from './storage-error.js';

/** The plain operations the log needs, on full keys (no validation, reserved names allowed). */
export interface CasLogBackend {
  putRaw(key: string, body: Buffer): Promise<void>;
  /** null when absent */
  getRaw(key: string): Promise<Buffer | null>;
  /** Keys starting with prefix, ascending byte order; may stop early when the caller breaks. */
  listRaw(prefix: string): AsyncIterable<string>;
  deleteRaw(key: string): Promise<void>;
}

export interface CasLogOptions {
  /** Full key prefix under which logs live, ending in '/'. */
  root: string;
  /** Rounds of contention before giving up with storage-cas-contended (default 40). */
  maxRounds?: number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

interface CasRecord {
  /** unique id of the proposal that carried this record */
  id: string;
  /** base64 of the value, or null for "absent" */
  body: string | null;
}

interface SlotView {
  decided: boolean;
  /** phase objects: ballot string and phase */
  phases: { key: string; ballot: string; phase: 1 | 2 }[];
}

const MAX_SLOT = 9_999_999_999;
/** Decided markers kept below the newest; older ones are pruned. */
const KEEP_MARKERS = 64;
/** Stands for "decided long ago, record pruned": never equal to a proposal of ours. */
const UNKNOWN_RECORD: CasRecord = { id: 'unknown', body: null };

export function etagOfValue(body: Buffer): string {
  return `b3-${hashHex(body).slice(0, 32)}`;
}

export class CasLog {
  private readonly root: string;
  private readonly maxRounds: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;

  constructor(
    private readonly backend: CasLogBackend,
    options: CasLogOptions,
  ) {
    this.root = options.root;
    this.maxRounds = options.maxRounds ?? 40;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = options.random ?? Math.random;
  }

  async getVersioned(key: string): Promise<VersionedObject | null> {
    for (let round = 0; round < this.maxRounds; round++) {
      const state = await this.readState(key);
      if (state.pendingSlot === undefined) {
        const body = state.current ? decodeBody(state.current) : null;
        return body ? { body, etag: etagOfValue(body) } : null;
      }
      // finish the slot in progress (with a no-op if nothing was accepted), then look again
      await this.decide(key, state.pendingSlot, this.newRecord(state.current ? decodeBody(state.current) : null));
    }
    throw new StorageError('storage-cas-contended', `Too many concurrent updates of ${key}; gave up after ${this.maxRounds} rounds`, {
      key,
      retryable: true,
    });
  }

  async putIf(key: string, value: Buffer, expected: { etag: string } | 'absent'): Promise<PutIfResult> {
    const mine = this.newRecord(value);
    for (let round = 0; round < this.maxRounds; round++) {
      const state = await this.readState(key);
      const currentBody = state.current ? decodeBody(state.current) : null;
      const matches = expected === 'absent' ? currentBody === null : currentBody !== null && etagOfValue(currentBody) === expected.etag;
      let slot: number;
      let proposal: CasRecord;
      if (state.pendingSlot !== undefined) {
        slot = state.pendingSlot;
        proposal = matches ? mine : this.newRecord(currentBody);
      } else if (!matches) {
        return { ok: false, current: currentBody ? { etag: etagOfValue(currentBody) } : null };
      } else {
        slot = state.decidedSlot + 1;
        proposal = mine;
      }
      const chosen = await this.decide(key, slot, proposal);
      if (chosen.id === mine.id) {
        await this.tidy(key, slot);
        return { ok: true, etag: etagOfValue(value) };
      }
      // someone else's record (or a no-op) took the slot: look again
    }
    throw new StorageError('storage-cas-contended', `Too many concurrent updates of ${key}; gave up after ${this.maxRounds} rounds`, {
      key,
      retryable: true,
    });
  }

  // ---- internals ----

  private newRecord(body: Buffer | null): CasRecord {
    return { id: randomBytes(12).toString('hex'), body: body ? body.toString('base64') : null };
  }

  private logPrefix(key: string): string {
    return `${this.root}${encodeURIComponent(key)}/`;
  }

  private slotPrefix(key: string, slot: number): string {
    return `${this.logPrefix(key)}${String(MAX_SLOT - slot).padStart(10, '0')}/`;
  }

  /** Every slot of the key's log with its marker and phase objects; any listing order. */
  private async listLog(key: string): Promise<Map<number, SlotView>> {
    const prefix = this.logPrefix(key);
    const slots = new Map<number, SlotView>();
    for await (const full of this.backend.listRaw(prefix)) {
      const [inv, name] = full.slice(prefix.length).split('/');
      const slot = MAX_SLOT - Number(inv);
      if (!/^\d{10}$/.test(inv) || name === undefined) continue;
      let view = slots.get(slot);
      if (!view) slots.set(slot, (view = { decided: false, phases: [] }));
      addToView(view, full, name);
    }
    return slots;
  }

  /**
   * The newest decided slot (0 = none) and its record, and the slot above it if a decision
   * there is in progress (a slot n+1 is only started once slot n is decided).
   */
  private async readState(key: string): Promise<{ decidedSlot: number; current: CasRecord | null; pendingSlot?: number; log: Map<number, SlotView> }> {
    const log = await this.listLog(key);
    let top = 0;
    let decided = 0;
    for (const [slot, view] of log) {
      top = Math.max(top, slot);
      if (view.decided) decided = Math.max(decided, slot);
    }
    const current = decided > 0 ? await this.readMarker(key, decided) : null;
    return top > decided ? { decidedSlot: decided, current, pendingSlot: top, log } : { decidedSlot: decided, current, log };
  }

  private async readMarker(key: string, slot: number): Promise<CasRecord> {
    const record = await this.readRecord(`${this.slotPrefix(key, slot)}d`, key);
    // only pruning removes markers, and only 64 slots below the newest: a retry reads afresh
    if (!record) throw new StorageError('storage-cas-contended', `Decided marker of ${key} slot ${slot} was pruned while being read`, { key, retryable: true });
    return record;
  }

  /**
   * Reads a record object. A listed object may still read as empty on servers whose PUT is
   * not atomic (s3rver writes in place), so an unparsable record is read again a few times
   * before it counts as corrupt.
   */
  private async readRecord(fullKey: string, key: string): Promise<CasRecord | null> {
    for (let attempt = 0; ; attempt++) {
      const raw = await this.backend.getRaw(fullKey);
      if (raw === null) return null;
      const record = parseRecord(raw);
      if (record) return record;
      if (attempt >= 5) throw new StorageError('storage-cas-corrupt', `A version record of ${key} (${fullKey}) is not valid`, { key });
      await this.sleep(10 * (attempt + 1));
    }
  }

  private async viewSlot(key: string, slot: number): Promise<SlotView> {
    const prefix = this.slotPrefix(key, slot);
    const view: SlotView = { decided: false, phases: [] };
    for await (const full of this.backend.listRaw(prefix)) addToView(view, full, full.slice(prefix.length));
    return view;
  }

  /** Runs Disk Paxos on one slot until a record is chosen; returns the chosen record. */
  private async decide(key: string, slot: number, proposal: CasRecord): Promise<CasRecord> {
    const prefix = this.slotPrefix(key, slot);
    const proposer = randomBytes(8).toString('hex');
    let view = await this.viewSlot(key, slot);
    for (let round = 0; round < this.maxRounds; round++) {
      const started = performance.now();
      if (view.decided) return this.readMarker(key, slot);
      const highest = view.phases.reduce((max, p) => Math.max(max, Number(p.ballot.slice(0, 10))), 0);
      const ballot = `${String(highest + 1).padStart(10, '0')}.${proposer}`;

      await this.backend.putRaw(`${prefix}p${ballot}.1`, Buffer.alloc(0));
      view = await this.viewSlot(key, slot);
      if (view.decided) return this.readMarker(key, slot);
      if (view.phases.some((p) => p.ballot > ballot)) {
        await this.backOff(round, performance.now() - started);
        continue;
      }
      const accepted = view.phases.filter((p) => p.phase === 2).sort((a, b) => (a.ballot < b.ballot ? 1 : -1))[0];
      let record = proposal;
      if (accepted) record = (await this.readRecord(accepted.key, key)) ?? proposal;

      await this.backend.putRaw(`${prefix}p${ballot}.2`, Buffer.from(JSON.stringify(record)));
      view = await this.viewSlot(key, slot);
      if (view.decided) return this.readMarker(key, slot);
      if (view.phases.some((p) => p.ballot > ballot)) {
        await this.backOff(round, performance.now() - started);
        continue;
      }
      // If a later slot exists, this slot was decided long ago and its objects were pruned
      // (we slept through many updates): what was chosen is then the marker, or unknown.
      const log = await this.listLog(key);
      if ([...log.keys()].some((s) => s > slot)) return (await this.readRecord(`${prefix}d`, key)) ?? UNKNOWN_RECORD;
      await this.backend.putRaw(`${prefix}d`, Buffer.from(JSON.stringify(record)));
      return record;
    }
    throw new StorageError('storage-cas-contended', `Too many concurrent updates of ${key}; gave up after ${this.maxRounds} rounds`, {
      key,
      retryable: true,
    });
  }

  /**
   * A preempted proposer waits a random time, growing with the round, and at least about as
   * long as a round takes here: on a slow server (or a loaded machine) a fixed cap shorter
   * than a round lets proposers keep preempting each other (Paxos is live only when
   * proposers give a leader time to finish a round).
   */
  private async backOff(round: number, roundMs: number): Promise<void> {
    await this.sleep(this.random() * Math.max(Math.min(500, 10 * 2 ** round), Math.min(5000, 2 * roundMs)));
  }

  /**
   * Courtesy clean-up after a successful write: phase objects of decided slots, and
   * markers more than KEEP_MARKERS slots old, so listings stay one page long.
   */
  private async tidy(key: string, slot: number): Promise<void> {
    try {
      const log = await this.listLog(key);
      const doomed: string[] = [];
      for (const [s, view] of log) {
        if (s > slot) continue;
        if (view.decided) doomed.push(...view.phases.map((p) => p.key));
        if (s <= slot - KEEP_MARKERS) doomed.push(`${this.slotPrefix(key, s)}d`);
      }
      for (let i = 0; i < doomed.length; i += 16) await Promise.all(doomed.slice(i, i + 16).map((k) => this.backend.deleteRaw(k)));
    } catch {
      // courtesy only: leftovers cost a few listed keys, never correctness
    }
  }
}

function addToView(view: SlotView, full: string, name: string): void {
  if (name === 'd') view.decided = true;
  const m = /^p(\d{10}\.[0-9a-f]+)\.([12])$/.exec(name);
  if (m) view.phases.push({ key: full, ballot: m[1], phase: Number(m[2]) as 1 | 2 });
}

function decodeBody(record: CasRecord): Buffer | null {
  return record.body === null ? null : Buffer.from(record.body, 'base64');
}

function parseRecord(raw: Buffer): CasRecord | null {
  try {
    const parsed = JSON.parse(raw.toString('utf8')) as CasRecord;
    if (typeof parsed.id === 'string' && (parsed.body === null || typeof parsed.body === 'string')) return parsed;
  } catch {
    // fall through
  }
  return null;
}
