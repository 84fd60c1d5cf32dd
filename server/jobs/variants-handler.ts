/**
 * The server's 'variants' job: every variant of one original video version, made from the
 * repository's storage and published back to it, the way a client's `git dits proxy make`
 * plus `git push` would. The source streams from storage (verified chunks, ranged reads)
 * through a 127.0.0.1 range source into ffmpeg: never whole in memory or on disk. The
 * variants are stored in a scratch store under the job's work dir and pushed (content, then
 * records: src/proxy/publish.ts). Records already on the storage for this original (a
 * client made them, or an earlier attempt finished) are not made again.
 *
 * The server has no working tree, so it uses the recipe dits.proxy.* defaults give
 * (ProRes 422 Proxy, 1080 lines); per-path .gitattributes settings apply to local makes.
 */
import { openRemoteFile } from '../../src/remote/content/remote-file-reader.js';
import { openFfmpeg } from '../../src/media/ffmpeg.js';
import type { MediaStructure } from '../../src/media/media-structure.js';
import { serveRangeSource } from '../../src/proxy/range-source.js';
import { makeVariants, variantRecipe } from '../../src/proxy/make-variants.js';
import { DEFAULT_PROXY_CODEC, DEFAULT_PROXY_HEIGHT, recipeKey, type Recipe } from '../../src/proxy/recipe.js';
import { publishOutcomes } from '../../src/proxy/publish.js';
import { VARIANTS_PREFIX, variantKey } from '../../src/proxy/remote-variants.js';
import { VARIANT_KINDS, type VariantKind } from '../../src/manifest/variant-record.js';
import { DEFAULT_CHUNKER_PARAMS, type ChunkerParams } from '../../src/chunking/params.js';
import type { JobHandler } from './handlers.js';

export const SERVER_RECIPE: Recipe = { codec: DEFAULT_PROXY_CODEC, height: DEFAULT_PROXY_HEIGHT, key: recipeKey(DEFAULT_PROXY_CODEC, DEFAULT_PROXY_HEIGHT) };

export const variantsHandler: JobHandler = async (job, ctx) => {
  // what the storage already has for this original
  const have = new Set<string>();
  for await (const o of ctx.storage.list(`${VARIANTS_PREFIX}${job.original}/`)) have.add(o.key);
  const kinds = VARIANT_KINDS.filter((k: VariantKind) => !have.has(variantKey({ original: job.original, kind: k, recipe: variantRecipe(k, SERVER_RECIPE) })));
  if (kinds.length === 0) {
    ctx.logger.info('variants already stored', { job: job.id, original: job.original });
    return;
  }
  const ffmpeg = await openFfmpeg({ env: ctx.env });
  const reader = await openRemoteFile(ctx.storage, job.manifest, { indexCacheDir: ctx.indexCacheDir });
  try {
    if (reader.header.oid !== job.original) throw new Error(`manifest ${job.manifest} describes ${reader.header.oid}, not ${job.original}`);
    const ext = /\.[A-Za-z0-9]{1,5}$/.exec(job.pathHint ?? '')?.[0] ?? '.mov';
    const served = await serveRangeSource(reader, { name: `source${ext}`, onError: (err) => ctx.logger.warn('source read failed', { job: job.id, err }) });
    let outcomes;
    try {
      let last = 0;
      outcomes = await makeVariants(
        { source: served.url, displayPath: job.pathHint ?? job.original, originalMedia: (reader.header.media as unknown as MediaStructure | null) ?? null },
        SERVER_RECIPE,
        ctx.workDir,
        {
          ffmpeg,
          kinds,
          signal: ctx.signal,
          onProgress: () => {
            if (Date.now() - last > 2000) {
              last = Date.now();
              ctx.heartbeat();
            }
          },
        },
      );
    } finally {
      await served.close();
    }
    const chunker: ChunkerParams = { ...DEFAULT_CHUNKER_PARAMS, ...chunkerOf(reader.header.chunker) };
    const records = await publishOutcomes(ctx.storage, job.original, outcomes, { scratchDir: ctx.workDir, chunker });
    ctx.logger.info('variants made', {
      job: job.id,
      original: job.original,
      ok: records.filter((r) => r.status === 'ok').map((r) => r.kind),
      failed: records.filter((r) => r.status === 'failed').map((r) => `${r.kind}: ${r.reason}`),
      sourceRangeRequests: reader.stats.rangeRequests,
    });
  } finally {
    await reader.close();
  }
};

/** The original's chunker sizes, so the variant's chunks are cut like the repository's. */
function chunkerOf(c: { min?: number; avg?: number; max?: number } | undefined): Partial<ChunkerParams> {
  if (!c || !c.min || !c.avg || !c.max) return {};
  return { minSize: c.min, avgSize: c.avg, maxSize: c.max };
}
