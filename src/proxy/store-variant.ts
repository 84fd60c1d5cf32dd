/**
 * Keeping what makeVariants made: each finished output becomes stored content (chunked,
 * deduplicated, in packs, with its manifest, exactly like a tracked file) and then a record
 * in the store's variants index. A failed outcome is recorded too, with its reason and
 * ffmpeg's last lines, so `git dits proxy ls` can say why and nothing offers it.
 *
 * Order: the content and its manifest are committed first, the record after, in the same
 * open store (its writer lease keeps gc away meanwhile); a crash between the two leaves
 * unreferenced content for gc, never a record without its content.
 */
import type { ChunkStore } from '../store/chunk-store.js';
import { ingest } from '../store/ingest.js';
import { openFileSource } from '../store/file-source.js';
import { analyzeForIngest } from '../filter/media-analysis.js';
import type { ChunkerParams } from '../chunking/params.js';
import type { VariantKind, VariantRecord } from '../manifest/variant-record.js';

/** What makeVariants reports for one kind (make-variants.ts). */
export type OutcomeLike =
  | { kind: VariantKind; recipe: string; status: 'ok'; file: string; warnings: string[]; fidelity?: Record<string, unknown> }
  | { kind: VariantKind; recipe: string; status: 'failed'; reason: string; ffmpegTail: string[]; warnings: string[] };

export interface StoredVariant {
  record: VariantRecord;
  /** Bytes this variant added to the store (0 when it was all there already). */
  newBytes: number;
}

/** Stores one outcome's content (when ok) and records it. The output file is left for the caller to remove. */
export async function storeVariant(store: ChunkStore, original: string, outcome: OutcomeLike, chunker: ChunkerParams, now = Date.now()): Promise<StoredVariant> {
  if (outcome.status === 'failed') {
    const record: VariantRecord = {
      original,
      kind: outcome.kind,
      recipe: outcome.recipe,
      status: 'failed',
      reason: outcome.reason,
      ffmpegTail: outcome.ffmpegTail,
      warnings: outcome.warnings,
      createdAt: now,
    };
    store.putVariant(record);
    return { record, newBytes: 0 };
  }
  const analysis = outcome.kind === 'proxy' || outcome.kind === 'preview' ? await analyzeForIngest(outcome.file) : null;
  const source = await openFileSource(outcome.file);
  let res;
  try {
    res = await ingest(store, source, { params: chunker, cutPlan: analysis?.cutPlan, media: analysis?.media ?? null, mediaFallback: analysis?.fallback });
  } finally {
    await source.close();
  }
  const record: VariantRecord = {
    original,
    kind: outcome.kind,
    recipe: outcome.recipe,
    status: 'ok',
    fileId: res.pointer.oid,
    size: res.pointer.size,
    manifest: res.manifestId,
    warnings: outcome.warnings,
    ...(outcome.fidelity ? { fidelity: outcome.fidelity } : {}),
    createdAt: now,
  };
  store.putVariant(record);
  return { record, newBytes: res.newBytes };
}

/** The ok variant of `kind` a checkout should use: the one made with `recipe` if there is one, else the newest. */
export function pickVariant(store: ChunkStore, original: string, kind: VariantKind, recipe?: string): VariantRecord | undefined {
  const ok = store.variantsOf(original, kind).filter((v) => v.status === 'ok');
  return (recipe !== undefined ? ok.find((v) => v.recipe === recipe) : undefined) ?? ok[0];
}
