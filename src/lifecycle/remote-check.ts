/**
 * Checking a Dits remote's storage (`git dits fsck --remote`), and repairing it from
 * another copy (`--repair-from`).
 *
 * Check: one listing of `v1/`; every `.idx` verified by its name and its `.pack` present
 * at the size the index implies; every git bundle the refs name present; every manifest
 * in `manifestIds` (those the refs' pointers need, found by the caller in git) present;
 * then chunks re-hashed: a random sample of `sample` chunks by ranged reads (each entry
 * head checked against the index, the chunk decoded and hashed), or with `full` every pack
 * streamed through a PackVerifier and every listed manifest checked against its id.
 *
 * Repair: for each damaged or missing pack, index, manifest or bundle, the other copy is
 * first verified in full (a read-only pass), then copied over the damaged key through the
 * same verifier. Puts are atomic, so the damaged object is replaced in one step and never
 * deleted first; a copy that does not verify leaves the damaged one in place, reported.
 */
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { hashHex } from '../hashing/blake3.js';
import { ENTRY_HEAD_SIZE } from '../store/pack-format.js';
import { checkStoredChunk } from '../remote/content/chunk-verify.js';
import { indexKey, manifestKey, packKey, parsePackKey } from '../remote/content/layout.js';
import type { PackIndexEntry } from '../remote/content/pack-index.js';
import { parseRefState, REFS_KEY } from '../remote/remote-state.js';
import { isFrozenError } from '../tier/tier-storage.js';
import type { ObjectStorage } from '../transfer/object-storage.js';
import { copyContext, copyPack, readPackIndex, VERSIONED_KEYS } from './mirror-sync.js';
import { PackVerifier, packSizeOf } from './pack-verifier.js';
import { runLimited } from '../remote/content/push-content.js';

export type RemoteProblemKind = 'pack-missing' | 'pack-size' | 'pack-corrupt' | 'index-corrupt' | 'manifest-missing' | 'manifest-corrupt' | 'bundle-missing';

export interface RemoteProblem {
  kind: RemoteProblemKind;
  key: string;
  detail: string;
}

export interface Repair {
  key: string;
  ok: boolean;
  detail: string;
}

export interface RemoteCheckOptions {
  /** Manifests the refs' pointers need (from git). */
  manifestIds?: readonly string[];
  full?: boolean;
  /** Chunks re-hashed when not `full` (default 32). */
  sample?: number;
  concurrency?: number;
  random?: () => number;
}

export interface RemoteCheckResult {
  location: string;
  packs: number;
  manifests: number;
  manifestsNeeded: number;
  bundles: number;
  full: boolean;
  chunksChecked: number;
  bytesChecked: number;
  /** packs without an index: an interrupted upload (a push or sync run again completes it) */
  incomplete: string[];
  /** packs that could not be read now (archived): not checked */
  frozen: string[];
  problems: RemoteProblem[];
}

interface Listed {
  keys: Map<string, number>;
}

async function listRemote(storage: ObjectStorage): Promise<Listed> {
  const keys = new Map<string, number>();
  for await (const o of storage.list('v1/')) if (!VERSIONED_KEYS.has(o.key)) keys.set(o.key, o.size);
  return { keys };
}

async function drain(stream: NodeJS.ReadableStream, verifier: PackVerifier): Promise<void> {
  await pipeline(stream, verifier, new Writable({ write: (_c, _e, done) => done() }));
}

export async function checkRemote(storage: ObjectStorage, opts: RemoteCheckOptions = {}): Promise<RemoteCheckResult> {
  const concurrency = opts.concurrency ?? 4;
  const random = opts.random ?? Math.random;
  const sampleSize = opts.sample ?? 32;
  const { keys } = await listRemote(storage);
  const res: RemoteCheckResult = { location: storage.location, packs: 0, manifests: 0, manifestsNeeded: opts.manifestIds?.length ?? 0, bundles: 0, full: Boolean(opts.full), chunksChecked: 0, bytesChecked: 0, incomplete: [], frozen: [], problems: [] };

  // refs -> bundles
  const refs = await storage.getVersioned(REFS_KEY);
  if (refs) {
    for (const b of parseRefState(refs.body, storage.location).bundles) {
      res.bundles++;
      if (!keys.has(b.key)) res.problems.push({ kind: 'bundle-missing', key: b.key, detail: 'the refs name this git data, but the remote does not hold it' });
    }
  }
  for (const id of opts.manifestIds ?? []) if (!keys.has(manifestKey(id))) res.problems.push({ kind: 'manifest-missing', key: manifestKey(id), detail: 'a pointer of the refs names it, but the remote does not hold it' });

  // packs and their indexes
  const packs: { packId: string; entries: PackIndexEntry[]; size: number }[] = [];
  const ids = new Set<string>();
  for (const k of keys.keys()) {
    const pk = parsePackKey(k);
    if (pk) ids.add(pk.packId);
    else if (k.startsWith('v1/objects/')) res.manifests++;
  }
  await runLimited([...ids], concurrency, async (packId) => {
    const packSize = keys.get(packKey(packId));
    if (!keys.has(indexKey(packId))) {
      res.incomplete.push(packKey(packId));
      return;
    }
    res.packs++;
    let entries: PackIndexEntry[];
    try {
      entries = await readPackIndex(storage, packId);
    } catch (err) {
      res.problems.push({ kind: 'index-corrupt', key: indexKey(packId), detail: (err as Error).message });
      return;
    }
    if (packSize === undefined) {
      res.problems.push({ kind: 'pack-missing', key: packKey(packId), detail: 'its index is there, the pack is not' });
      return;
    }
    if (packSize !== packSizeOf(entries)) {
      res.problems.push({ kind: 'pack-size', key: packKey(packId), detail: `${packSize} bytes, its index says ${packSizeOf(entries)}` });
      return;
    }
    packs.push({ packId, entries, size: packSize });
  });

  if (opts.full) {
    await runLimited(packs, concurrency, async (p) => {
      const v = new PackVerifier(packKey(p.packId), p.entries);
      try {
        await drain(await storage.get(packKey(p.packId)), v);
        res.chunksChecked += v.chunks;
        res.bytesChecked += p.size;
      } catch (err) {
        if (isFrozenError(err)) res.frozen.push(packKey(p.packId));
        else res.problems.push({ kind: 'pack-corrupt', key: packKey(p.packId), detail: v.failure?.message ?? (err as Error).message });
      }
    });
    const manifests = [...keys.keys()].filter((k) => k.startsWith('v1/objects/'));
    await runLimited(manifests, concurrency, async (k) => {
      const bytes = await storage.getBuffer(k);
      const id = k.slice('v1/objects/'.length).replace('/', '');
      if (hashHex(bytes) !== id) res.problems.push({ kind: 'manifest-corrupt', key: k, detail: 'its bytes do not match its id' });
    });
  } else {
    // a uniform sample of all chunks (reservoir: memory bounded by the sample)
    const picked: { pack: (typeof packs)[number]; entry: PackIndexEntry }[] = [];
    let seen = 0;
    for (const pack of packs) {
      for (const entry of pack.entries) {
        seen++;
        if (picked.length < sampleSize) picked.push({ pack, entry });
        else {
          const j = Math.floor(random() * seen);
          if (j < sampleSize) picked[j] = { pack, entry };
        }
      }
    }
    const bad = new Set<string>();
    await runLimited(picked, concurrency, async ({ pack, entry }) => {
      const key = packKey(pack.packId);
      let bytes: Buffer;
      try {
        bytes = await storage.getBuffer(key, { start: entry.offset - ENTRY_HEAD_SIZE, end: entry.offset + entry.storedLength - 1 });
      } catch (err) {
        if (isFrozenError(err)) {
          if (!res.frozen.includes(key)) res.frozen.push(key);
          return;
        }
        throw err;
      }
      res.chunksChecked++;
      res.bytesChecked += bytes.length;
      const head = bytes.subarray(0, ENTRY_HEAD_SIZE);
      let why: string | null = null;
      if (bytes.length !== ENTRY_HEAD_SIZE + entry.storedLength) why = 'the pack is shorter than its index says';
      else if (!head.subarray(0, 32).equals(entry.idRaw) || head[32] !== entry.codec || head.readUInt32LE(33) !== entry.rawLength || head.readUInt32LE(37) !== entry.storedLength) why = 'an entry head disagrees with the index';
      else why = await checkStoredChunk(entry.idRaw, entry.codec, entry.rawLength, bytes.subarray(ENTRY_HEAD_SIZE));
      if (why && !bad.has(key)) {
        bad.add(key);
        res.problems.push({ kind: 'pack-corrupt', key, detail: `chunk ${entry.idRaw.toString('hex')}: ${why}` });
      }
    });
  }
  res.problems.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return res;
}

/**
 * Replaces what `problems` name on `target` from `source`, each copy verified in full on
 * `source` before anything is written, then copied through the verifier again.
 */
export async function repairRemote(target: ObjectStorage, source: ObjectStorage, problems: readonly RemoteProblem[]): Promise<Repair[]> {
  const ctx = copyContext();
  const out: Repair[] = [];
  for (const p of problems) {
    try {
      const pk = parsePackKey(p.key);
      if (pk) {
        const entries = await readPackIndex(source, pk.packId);
        const size = packSizeOf(entries);
        const head = await source.head(packKey(pk.packId));
        if (!head) throw new Error(`${source.location} does not hold ${packKey(pk.packId)} either`);
        if (head.size !== size) throw new Error(`the copy on ${source.location} is damaged too (${head.size} bytes, its index says ${size})`);
        // 1. the other copy, verified in full before anything is written
        const v = new PackVerifier(`${source.location}/${packKey(pk.packId)}`, entries);
        await drain(await source.get(packKey(pk.packId)), v).catch((err: unknown) => {
          throw v.failure ?? err;
        });
        // 2. copied over the damaged one (verified again as it streams), then its index (a
        // damaged index gets its pack copied too: nothing vouched for the pack beside it)
        await copyPack(source, target, { packId: pk.packId, size, indexOnly: false }, ctx);
        out.push({ key: p.key, ok: true, detail: `replaced from ${source.location} (${v.chunks} chunks verified)` });
      } else if (p.key.startsWith('v1/objects/')) {
        const id = p.key.slice('v1/objects/'.length).replace('/', '');
        const bytes = await source.getBuffer(p.key);
        if (hashHex(bytes) !== id) throw new Error(`the copy on ${source.location} is damaged too`);
        await target.put(p.key, bytes);
        out.push({ key: p.key, ok: true, detail: `replaced from ${source.location}` });
      } else if (p.kind === 'bundle-missing') {
        const want = /([0-9a-f]{64})\.bundle$/.exec(p.key)?.[1];
        const bytes = await source.getBuffer(p.key);
        if (want && createHash('sha256').update(bytes).digest('hex') !== want) throw new Error(`the copy on ${source.location} is damaged too`);
        await target.put(p.key, bytes); // git data of one push: small (pointers, not media)
        out.push({ key: p.key, ok: true, detail: `replaced from ${source.location}` });
      } else out.push({ key: p.key, ok: false, detail: 'nothing to replace it with' });
    } catch (err) {
      out.push({ key: p.key, ok: false, detail: isFrozenError(err) ? `the copy on ${source.location} is frozen: thaw it first` : (err as Error).message });
    }
  }
  return out;
}
