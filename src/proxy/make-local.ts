/**
 * `git dits proxy make`: the variants of tracked video file versions, made here with ffmpeg
 * and kept as stored content with their records (store-variant.ts).
 *
 * - Resumable: a variant already recorded for the same original and recipe is not made
 *   again (a failed one neither, unless asked), and each finished one is recorded at once,
 *   so an interrupted run keeps what it finished.
 * - The source is the working-tree file when it hashes to the original's file id (no copy),
 *   else the content from the local store, served to ffmpeg over a local range source
 *   (never a second copy on disk).
 * - One original at several paths (or branches) is made once: variants are keyed by file id.
 * - Nothing partial is recorded: outputs are recorded only once finished and stored; a disk
 *   error stops the run, and the temp folder of each job is removed whatever happens.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { RepoPaths } from '../git/repo.js';
import type { IndexPointer } from '../git/pointers.js';
import type { ChunkStore } from '../store/chunk-store.js';
import { contentPresent, loadManifest } from '../store/materialize.js';
import { StreamHasher } from '../hashing/blake3.js';
import type { Ffmpeg } from '../media/ffmpeg.js';
import type { MediaStructure } from '../media/media-structure.js';
import type { ChunkerParams } from '../chunking/params.js';
import type { VariantKind, VariantRecord } from '../manifest/variant-record.js';
import { isVideoCandidate, resolveRecipes, type Recipe } from './recipe.js';
import { makeVariants, variantRecipe } from './make-variants.js';
import { storeVariant } from './store-variant.js';
import { serveStoreContent } from './store-source.js';

export interface MakePlanItem {
  /** The paths of this original (the first is shown). */
  paths: string[];
  original: IndexPointer['pointer'];
  recipe: Recipe;
  kinds: VariantKind[];
  media: MediaStructure | null;
}

export interface MakeSkip {
  path: string;
  why: 'not-video' | 'no-proxy-wanted' | 'done' | 'failed-before' | 'content-not-here';
}

/** Which originals need which kinds, and why the others are skipped. */
export async function planMake(
  repo: RepoPaths,
  store: ChunkStore,
  entries: readonly IndexPointer[],
  o: { kinds: VariantKind[]; retryFailed: boolean; force: boolean },
): Promise<{ items: MakePlanItem[]; skipped: MakeSkip[] }> {
  const recipes = await resolveRecipes(repo.workTree, entries.map((e) => e.path));
  const byOriginal = new Map<string, MakePlanItem>();
  const skipped: MakeSkip[] = [];
  for (const e of entries) {
    const known = byOriginal.get(e.pointer.oid);
    if (known) {
      known.paths.push(e.path);
      continue;
    }
    let media: MediaStructure | null = null;
    try {
      media = (loadManifest(store, e.pointer).header.media as unknown as MediaStructure | null) ?? null;
    } catch {
      media = null; // manifest not here: the extension decides (and ffmpeg later)
    }
    if (!isVideoCandidate(e.path, media)) {
      skipped.push({ path: e.path, why: 'not-video' });
      continue;
    }
    const recipe = recipes.get(e.path);
    if (!recipe) {
      // `-dits-proxy` or `dits-proxy=none` in .gitattributes
      skipped.push({ path: e.path, why: 'no-proxy-wanted' });
      continue;
    }
    const have = store.variantsOf(e.pointer.oid);
    const recorded = (k: VariantKind): VariantRecord | undefined => have.find((v) => v.kind === k && v.recipe === variantRecipe(k, recipe));
    const kinds = o.kinds.filter((k) => {
      if (o.force) return true;
      const rec = recorded(k);
      return !rec || (rec.status === 'failed' && o.retryFailed);
    });
    if (kinds.length === 0) {
      const failed = o.kinds.some((k) => recorded(k)?.status === 'failed');
      skipped.push({ path: e.path, why: failed ? 'failed-before' : 'done' });
      continue;
    }
    byOriginal.set(e.pointer.oid, { paths: [e.path], original: e.pointer, recipe, kinds, media });
  }
  return { items: [...byOriginal.values()], skipped };
}

/** Whether the working-tree file at `abs` is exactly this original (size, then BLAKE3 of all of it). */
async function worktreeHolds(abs: string, pointer: { oid: string; size: number }): Promise<boolean> {
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    return false;
  }
  if (!st.isFile() || st.size !== pointer.size) return false;
  const h = new StreamHasher();
  try {
    for await (const b of fs.createReadStream(abs, { highWaterMark: 4 * 1024 * 1024 })) h.update(b as Buffer);
  } catch {
    return false;
  }
  return h.digestHex() === pointer.oid;
}

export interface MadeVariant {
  paths: string[];
  original: string;
  records: VariantRecord[];
  newBytes: number;
}

export interface MakeRunOptions {
  ffmpeg: Ffmpeg;
  chunker: ChunkerParams;
  jobs: number;
  signal?: AbortSignal;
  onProgress?: (doneFraction: number) => void;
  onMade?: (m: MadeVariant) => void;
}

/**
 * Makes the planned variants, `jobs` originals at a time; each outcome is stored and recorded
 * as soon as its original's run ends (stores are written one at a time). Items whose content
 * is neither in the working tree nor in the store are returned as skipped.
 */
export async function runMake(repo: RepoPaths, store: ChunkStore, items: readonly MakePlanItem[], o: MakeRunOptions): Promise<{ made: MadeVariant[]; skipped: MakeSkip[] }> {
  const made: MadeVariant[] = [];
  const skipped: MakeSkip[] = [];
  const fractions = new Array<number>(items.length).fill(0);
  const total = items.reduce((n, i) => n + i.original.size, 0) || 1;
  const report = (): void => o.onProgress?.(items.reduce((n, it, i) => n + fractions[i]! * it.original.size, 0) / total);
  let storing: Promise<unknown> = Promise.resolve();
  let next = 0;
  let stopped = false;
  const tmpRoot = path.join(repo.ditsDir, 'tmp');
  fs.mkdirSync(tmpRoot, { recursive: true });

  const one = async (index: number): Promise<void> => {
    const item = items[index]!;
    const abs = path.join(repo.workTree, item.paths[0]!);
    let source: string;
    let close: (() => Promise<void>) | null = null;
    if (await worktreeHolds(abs, item.original)) source = abs;
    else if (contentPresent(store, item.original.manifest)) {
      const served = await serveStoreContent(store, item.original, path.extname(item.paths[0]!));
      source = served.url;
      close = served.close;
    } else {
      skipped.push({ path: item.paths[0]!, why: 'content-not-here' });
      fractions[index] = 1;
      report();
      return;
    }
    const workDir = path.join(tmpRoot, `proxy-${randomBytes(6).toString('hex')}`);
    fs.mkdirSync(workDir);
    try {
      const outcomes = await makeVariants({ source, displayPath: item.paths[0]!, originalMedia: item.media }, item.recipe, workDir, {
        ffmpeg: o.ffmpeg,
        kinds: item.kinds,
        signal: o.signal,
        onProgress: (f) => {
          fractions[index] = Math.min(1, Math.max(0, f));
          report();
        },
      });
      await close?.();
      close = null;
      // one writer at a time into the store; each original's records land together
      const stored: Promise<{ records: VariantRecord[]; newBytes: number }> = storing.then(async () => {
        const records: VariantRecord[] = [];
        let newBytes = 0;
        for (const out of outcomes) {
          const s = await storeVariant(store, item.original.oid, out, o.chunker);
          records.push(s.record);
          newBytes += s.newBytes;
        }
        return { records, newBytes };
      });
      storing = stored.catch(() => undefined);
      const { records, newBytes } = await stored;
      const m: MadeVariant = { paths: item.paths, original: item.original.oid, records, newBytes };
      made.push(m);
      o.onMade?.(m);
    } finally {
      await close?.();
      fs.rmSync(workDir, { recursive: true, force: true });
      fractions[index] = 1;
      report();
    }
  };

  const workers = Array.from({ length: Math.max(1, Math.min(o.jobs, items.length)) }, async () => {
    while (next < items.length && !stopped) {
      if (o.signal?.aborted) return;
      try {
        await one(next++);
      } catch (err) {
        stopped = true;
        throw err;
      }
    }
  });
  // the first failure (a disk error, an abort) stops the others once their current job ends
  const results = await Promise.allSettled(workers);
  const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
  if (failed) throw failed.reason;
  if (o.signal?.aborted) throw o.signal.reason;
  return { made, skipped };
}
