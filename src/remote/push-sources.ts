/**
 * Where a push finds content the local store does not keep. A normal clone writes fetched
 * content only into the working tree (remote-held chunks), and prune drops chunks a remote
 * holds; pushing to another remote then needs those chunks again. In order:
 *
 *   1. working-tree files: each checked-out file (and each `.git/dits/wt/<manifest>` link,
 *      and each original parked by a checkout-mode switch, `.git/dits/parked/<file id>`)
 *      is cut at its manifest's chunk boundaries; a chunk is taken only if its bytes hash to
 *      its id (a file edited since just yields fewer chunks);
 *   2. the remotes: the one recorded as holding the chunk first, then every other dits::
 *      remote of the repository; chunks are fetched and verified by ensureLocal.
 *
 * What is found is stored in the local store (verified), so the push reads it as usual. What
 * is found nowhere fails with a DitsUserError naming the remote pushed to, the remotes
 * tried, and for a few files the path and the commit that holds that version.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DitsUserError } from '../errors.js';
import { runGit } from '../git/exec.js';
import { listIndexPointers } from '../git/pointers.js';
import { hashBytes } from '../hashing/blake3.js';
import { Manifest } from '../manifest/manifest.js';
import type { ChunkStore } from '../store/chunk-store.js';
import { CODEC_NONE } from '../store/pack-format.js';
import { ensureLocal, fetchManifests } from './content/fetch-content.js';
import { recordingReads } from '../tier/access-records.js';
import type { MissingChunk } from './content/push-content.js';
import { defaultDitsRemote, listDitsRemotes, openRemoteStorage } from './open-remote.js';
import type { PushedManifests } from './session.js';

export interface ObtainContext {
  workTree: string;
  store: ChunkStore;
  /** the remote being pushed to (never asked) */
  target: string;
  from?: PushedManifests;
  /** chunks stored per source, for the caller's log */
  log?: (line: string) => void;
}

/** Content obtained (and released) per push batch: bounds the extra disk a push takes. */
export const OBTAIN_BATCH_BYTES = 2 * 1024 * 1024 * 1024;

/**
 * Splits the manifests of a push into batches: those whose chunks are all local in the first,
 * then those with chunks not kept here, up to `maxBytes` of file size a batch (a file larger
 * than that is a batch of its own). Usually one batch.
 */
export function batchByMissingContent(store: ChunkStore, manifestIds: readonly string[], maxBytes: number): string[][] {
  if (store.remoteHeldStats().chunks === 0) return [[...manifestIds]]; // all content is kept here (the usual case)
  const local: string[] = [];
  const batches: string[][] = [];
  let cur: string[] = [];
  let curBytes = 0;
  for (const id of manifestIds) {
    const m = Manifest.parse(store.getManifestBytes(id));
    let complete = true;
    for (let i = 0; i < m.chunkCount && complete; i++) if (!store.locate(m.idRawAt(i))) complete = false;
    if (complete) {
      local.push(id);
      continue;
    }
    if (cur.length && curBytes + m.header.size > maxBytes) {
      batches.push(cur);
      cur = [];
      curBytes = 0;
    }
    cur.push(id);
    curBytes += m.header.size;
  }
  if (cur.length) batches.push(cur);
  if (batches.length === 0) return [local];
  batches[0] = [...local, ...batches[0]!];
  return batches;
}

/**
 * Stores locally (verified) the missing chunks from the sources above; throws when some are
 * found nowhere. Returns the ids stored, for releaseObtained once the push is done.
 */
export async function obtainMissingChunks(ctx: ObtainContext, missing: MissingChunk[]): Promise<Buffer[]> {
  const { store } = ctx;
  const want = new Map<string, MissingChunk>();
  for (const m of missing) want.set(m.idRaw.toString('hex'), m);

  // 1. working-tree files and the links of files checkout wrote
  const files = new Map<string, Set<string>>(); // manifest -> candidate files
  const addFile = (manifest: string, file: string): void => {
    let set = files.get(manifest);
    if (!set) files.set(manifest, (set = new Set()));
    set.add(file);
  };
  for (const p of await listIndexPointers(ctx.workTree)) addFile(p.pointer.manifest, path.join(ctx.workTree, p.path));
  for (const m of new Set(missing.map((x) => x.manifestId))) {
    addFile(m, path.join(store.dir, 'wt', m));
    // an original set aside by `git dits checkout --mode proxy` (the main working tree's parked/, by file id)
    if (store.hasManifest(m)) addFile(m, path.join(store.dir, 'parked', Manifest.parse(store.getManifestBytes(m)).header.oid));
    const at = ctx.from?.paths.get(m);
    if (at) addFile(m, path.join(ctx.workTree, at));
  }
  let fromFiles = 0;
  for (const [manifestId, candidates] of files) {
    if (want.size === 0) break;
    if (!store.hasManifest(manifestId)) continue;
    const m = Manifest.parse(store.getManifestBytes(manifestId));
    let wanted = false;
    for (let i = 0; i < m.chunkCount && !wanted; i++) wanted = want.has(m.idRawAt(i).toString('hex'));
    if (!wanted) continue; // nothing this version holds is needed: its files stay unread
    for (const file of candidates) fromFiles += takeVerifiedChunks(store, m, file, want);
  }
  store.commit();
  if (fromFiles) ctx.log?.(`dits: took ${fromFiles} chunk(s) from working-tree files (each verified against its id)`);

  // 2. the other remotes: the recorded holder first
  const tried: { name: string; outcome: string }[] = [];
  if (want.size) {
    const holders = new Map<string, number>();
    for (const m of want.values()) {
      const h = store.remoteHeldBy(m.idRaw);
      if (h && h !== ctx.target) holders.set(h, (holders.get(h) ?? 0) + 1);
    }
    const remotes = (await listDitsRemotes(ctx.workTree)).filter((r) => r.name !== ctx.target);
    remotes.sort((a, b) => (holders.get(b.name) ?? 0) - (holders.get(a.name) ?? 0));
    for (const remote of remotes) {
      if (want.size === 0) break;
      const before = want.size;
      try {
        const storage = await openRemoteStorage(ctx.workTree, remote.url);
        await recordingReads({ ditsDir: store.dir, workTree: ctx.workTree }, remote.url, storage, (access) => ensureLocal(storage, store, { chunkIds: [...want.values()].map((m) => m.idRaw) }, { remoteName: remote.name, access }));
        tried.push({ name: remote.name, outcome: 'had them' });
      } catch (err) {
        tried.push({ name: remote.name, outcome: err instanceof Error ? err.message : String(err) });
      }
      for (const [hex, m] of want) if (store.hasChunk(m.idRaw)) want.delete(hex);
      if (want.size < before) ctx.log?.(`dits: fetched ${before - want.size} chunk(s) from ${remote.name} to push them on`);
    }
  }
  if (want.size === 0) return missing.map((m) => m.idRaw);
  throw await missingError(ctx, [...want.values()], tried);
}

/**
 * After a push: drops from the local store the chunks obtainMissingChunks stored only to send
 * them on, so a push to a second remote leaves the store as it found it (a clone keeps content
 * in the working tree only; prune's work is not undone). Each is on `target` now (the push
 * verified it as it streamed and the upload completed) and stays recorded as remote-held.
 */
export function releaseObtained(store: ChunkStore, ids: readonly Buffer[], target: string): number {
  const byPack = new Map<number, Buffer[]>();
  for (const id of ids) {
    const loc = store.locate(id);
    if (!loc) continue;
    let list = byPack.get(loc.pack);
    if (!list) byPack.set(loc.pack, (list = []));
    list.push(id);
  }
  const held: { idRaw: Buffer; rawLength: number }[] = [];
  let dropped = 0;
  for (const [pack, list] of byPack) {
    for (const id of list) if (!store.isRemoteHeld(id)) held.push({ idRaw: id, rawLength: store.locate(id)!.rawLength });
    store.markRemoteHeld(held.splice(0), target);
    const drop = new Set(list.map((id) => id.toString('latin1')));
    dropped += store.rewritePack(pack, (id) => !drop.has(id.toString('latin1'))).dropped;
  }
  return dropped;
}

/**
 * Manifests being pushed that the local store lacks (a clone fetches a version's manifest only
 * when it checks it out): fetched, each verified by its id, from the other dits:: remotes
 * (dits.remote / origin first). Those found nowhere fail like missing chunks.
 */
export async function obtainMissingManifests(ctx: ObtainContext, ids: readonly string[]): Promise<void> {
  let want = ids.filter((id) => !ctx.store.hasManifest(id));
  if (want.length === 0) return;
  const tried: { name: string; outcome: string }[] = [];
  const preferred = await defaultDitsRemote(ctx.workTree).catch(() => null);
  const remotes = (await listDitsRemotes(ctx.workTree)).filter((r) => r.name !== ctx.target);
  remotes.sort((a, b) => Number(b.name === preferred?.name) - Number(a.name === preferred?.name));
  for (const remote of remotes) {
    try {
      const storage = await openRemoteStorage(ctx.workTree, remote.url);
      await fetchManifests(storage, ctx.store, want, { remoteName: remote.name });
      tried.push({ name: remote.name, outcome: 'had them' });
    } catch (err) {
      tried.push({ name: remote.name, outcome: err instanceof Error ? err.message : String(err) });
    }
    want = want.filter((id) => !ctx.store.hasManifest(id));
    if (want.length === 0) return;
  }
  throw await missingError(
    ctx,
    want.map((id) => ({ idRaw: Buffer.alloc(0), manifestId: id, rawLength: 0 })),
    tried,
    'manifest',
  );
}

/** Stores the wanted chunks `file` holds (cut at `m`'s boundaries, each hashed). Returns how many. */
function takeVerifiedChunks(store: ChunkStore, m: Manifest, file: string, want: Map<string, MissingChunk>): number {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return 0;
  }
  let taken = 0;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size !== m.header.size) return 0; // another version, or edited
    let offset = 0;
    for (let i = 0; i < m.chunkCount; i++) {
      const len = m.lengthAt(i);
      const idRaw = m.idRawAt(i);
      const hex = idRaw.toString('hex');
      if (want.has(hex)) {
        const buf = Buffer.allocUnsafe(len);
        let done = 0;
        while (done < len) {
          const n = fs.readSync(fd, buf, done, len - done, offset + done);
          if (n === 0) break;
          done += n;
        }
        if (done === len && hashBytes(buf).equals(idRaw)) {
          store.putStoredChunk(Buffer.from(idRaw), CODEC_NONE, len, buf);
          want.delete(hex);
          taken++;
        }
      }
      offset += len;
    }
  } catch {
    /* unreadable: what was taken stays, the rest comes from elsewhere */
  } finally {
    fs.closeSync(fd);
  }
  return taken;
}

async function missingError(ctx: ObtainContext, missing: MissingChunk[], tried: { name: string; outcome: string }[], kind: 'chunk' | 'manifest' = 'chunk'): Promise<DitsUserError> {
  const byManifest = new Map<string, number>();
  for (const m of missing) byManifest.set(m.manifestId, (byManifest.get(m.manifestId) ?? 0) + 1);
  const lines: string[] = [];
  for (const [manifestId, n] of [...byManifest].slice(0, 5)) {
    const file = ctx.from?.paths.get(manifestId);
    const rev = await revisionOf(ctx, manifestId);
    lines.push(`  ${file ?? `manifest ${manifestId}`}${rev ? `, the version committed in ${rev}` : ''}${kind === 'chunk' ? `: ${n} chunk(s)` : ': its manifest'}`);
  }
  if (byManifest.size > 5) lines.push(`  ... and ${byManifest.size - 5} more file version(s)`);
  const where = tried.length ? tried.map((t) => `${t.name} (${t.outcome.split('\n')[0]})`).join('; ') : 'no other Dits remote is configured';
  return new DitsUserError(
    'push-content-missing',
    kind === 'chunk'
      ? `cannot push to ${ctx.target}: ${missing.length} chunk(s) of these file versions are not in the local store, not in the working tree (no file there verifies), and not on the other remotes tried:\n${lines.join('\n')}\nremotes tried: ${where}`
      : `cannot push to ${ctx.target}: the manifests of these file versions are not in the local store nor on the other remotes tried:\n${lines.join('\n')}\nremotes tried: ${where}`,
    {
      hint: `make a remote that holds this content reachable and push again (the content is fetched from it), or push to ${ctx.target} from a machine that has these versions; \`git dits fsck\` lists what is missing here`,
    },
  );
}

/** The commit (short id and subject) that brought this manifest's pointer, among the commits pushed. */
async function revisionOf(ctx: ObtainContext, manifestId: string): Promise<string | null> {
  const blob = ctx.from?.blobs.get(manifestId);
  if (!blob || !ctx.from) return null;
  // commits that add or remove the pointer blob, newest first: the last one added it
  const r = await runGit(['log', '--format=%h "%s"', `--find-object=${blob}`, ...ctx.from.tips, '--not', ...ctx.from.exclude, '--'], { cwd: ctx.workTree, allowFail: true });
  const lines = r.stdout.toString('utf8').trim().split('\n').filter(Boolean);
  return r.exitCode === 0 && lines.length ? lines[lines.length - 1]! : null;
}
