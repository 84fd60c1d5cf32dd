/**
 * Variants on a remote. Each record is one small JSON object,
 *
 *   v1/variants/<original file id>/<kind>.<first 16 hex of sha256(recipe)>.json
 *
 * written after the variant's content (its packs and manifest, pushed like any content),
 * so a record on a remote always names content that is there. One object per record (not a
 * list per original) so two pushers never overwrite each other's records. Listing
 * `v1/variants/<original>/` finds every variant of an original, from any clone of any branch.
 */
import { createHash } from 'node:crypto';
import type { ObjectStorage } from '../transfer/object-storage.js';
import type { ChunkStore } from '../store/chunk-store.js';
import { Manifest } from '../manifest/manifest.js';
import { parseVariantRecord, type VariantRecord } from '../manifest/variant-record.js';
import { pushContent, type PushContentOptions } from '../remote/content/push-content.js';
import { ensureLocal, type FetchContentOptions } from '../remote/content/fetch-content.js';
import { runLimited } from '../remote/content/push-content.js';

export const VARIANTS_PREFIX = 'v1/variants/';

export function variantKey(r: Pick<VariantRecord, 'original' | 'kind' | 'recipe'>): string {
  const h = createHash('sha256').update(r.recipe).digest('hex').slice(0, 16);
  return `${VARIANTS_PREFIX}${r.original}/${r.kind}.${h}.json`;
}

/** The original file ids of these manifests (those here and readable). */
export function originalsOf(store: ChunkStore, manifestIds: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const id of manifestIds) {
    if (!store.hasManifest(id)) continue;
    try {
      out.add(Manifest.parse(store.getManifestBytes(id)).header.oid);
    } catch {
      /* unreadable: the content push reports it */
    }
  }
  return [...out];
}

export interface PushVariantsResult {
  records: number;
  manifests: number;
  bytes: number;
}

/**
 * Pushes the variants recorded here for the originals of `manifestIds`: the ok ones'
 * content first (only what the remote lacks), then each record the remote does not have.
 * A variant whose content is not here (never fetched) is left out: the remote either has it
 * already or never will from this clone.
 */
export async function pushVariants(
  storage: ObjectStorage,
  store: ChunkStore,
  manifestIds: Iterable<string>,
  opts: PushRecordsOptions,
): Promise<PushVariantsResult> {
  if (!store.hasVariants()) return { records: 0, manifests: 0, bytes: 0 };
  const records: VariantRecord[] = [];
  for (const original of originalsOf(store, manifestIds)) {
    for (const r of store.variantsOf(original)) {
      if (r.status === 'ok' && !store.hasManifest(r.manifest!)) continue;
      records.push(r);
    }
  }
  return pushVariantRecords(storage, store, records, opts);
}

type PushRecordsOptions = Pick<PushContentOptions, 'remoteName' | 'packSize' | 'concurrency' | 'onProgress' | 'dryRun'>;

/**
 * Pushes these records (and the content of the ok ones, which must be in `store`) that the
 * remote does not have yet: content first, then the records. One listing per original.
 */
export async function pushVariantRecords(storage: ObjectStorage, store: ChunkStore, records: readonly VariantRecord[], opts: PushRecordsOptions): Promise<PushVariantsResult> {
  if (records.length === 0) return { records: 0, manifests: 0, bytes: 0 };
  const onRemote = new Set<string>();
  for (const original of new Set(records.map((r) => r.original))) {
    for await (const o of storage.list(`${VARIANTS_PREFIX}${original}/`)) onRemote.add(o.key);
  }
  const todo = records.filter((r) => !onRemote.has(variantKey(r)));
  if (todo.length === 0) return { records: 0, manifests: 0, bytes: 0 };
  const contentIds = todo.filter((r) => r.status === 'ok').map((r) => r.manifest!);
  const pushed = contentIds.length ? await pushContent(storage, store, contentIds, opts) : { manifests: 0, bytes: 0 };
  if (!opts.dryRun) {
    await runLimited(todo, 8, async (r) => {
      await storage.put(variantKey(r), Buffer.from(JSON.stringify(r) + '\n'));
    });
  }
  return { records: todo.length, manifests: pushed.manifests, bytes: pushed.bytes };
}

/**
 * Reads the remote's records for these originals into the local index (a record already
 * here with the same key is replaced only by a newer one). Returns how many were new.
 */
export async function fetchVariantRecords(storage: ObjectStorage, store: ChunkStore, originals: readonly string[], concurrency = 8): Promise<number> {
  let added = 0;
  const found: VariantRecord[] = [];
  await runLimited(originals, concurrency, async (original) => {
    for await (const o of storage.list(`${VARIANTS_PREFIX}${original}/`)) {
      if (!o.key.endsWith('.json')) continue;
      let rec: VariantRecord | null = null;
      try {
        rec = parseVariantRecord(JSON.parse((await storage.getBuffer(o.key)).toString('utf8')));
      } catch {
        rec = null;
      }
      // a record that does not parse, or is filed under another original, is ignored
      if (rec && rec.original === original && variantKey(rec) === o.key) found.push(rec);
    }
  });
  for (const rec of found) {
    const here = store.variantsOf(rec.original, rec.kind).find((v) => v.recipe === rec.recipe);
    if (here && here.createdAt >= rec.createdAt) continue;
    store.putVariant(rec);
    added++;
  }
  return added;
}

/** Makes the content of these variant records local (manifests and chunks, verified). */
export async function fetchVariantContent(storage: ObjectStorage, store: ChunkStore, records: readonly VariantRecord[], opts: FetchContentOptions) {
  const ids = records.filter((r) => r.status === 'ok').map((r) => r.manifest!);
  return ensureLocal(storage, store, { manifestIds: ids }, opts);
}
