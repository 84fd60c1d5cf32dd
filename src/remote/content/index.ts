/** The content side of remotes: the public surface (see README.md). */
export { manifestKey, packKey, indexKey, parsePackKey, PACKS_PREFIX, OBJECTS_PREFIX } from './layout.js';
export { encodePackIndex, decodePackIndex, PackIndexError, type PackIndexEntry } from './pack-index.js';
export { RemoteIndex, type RemoteChunkLocation, type RemotePackInfo } from '../../store/remote-index.js';
export { syncRemoteIndex, type SyncOptions, type SyncResult } from './sync-remote-index.js';
export { pushContent, pushChunks, DEFAULT_PACK_SIZE, defaultPackSize, type PushContentOptions, type PushContentResult, type PushChunksResult } from './push-content.js';
export {
  fetchContent,
  fetchManifests,
  ensureLocal,
  RemotePackCorruptError,
  RemoteContentMissingError,
  DEFAULT_MAX_RANGE_BYTES,
  type FetchContentOptions,
  type FetchContentResult,
  type FetchManifestsOptions,
  type CorruptChunk,
} from './fetch-content.js';
export { CountingStorage, S3_DEFAULT_MULTIPART, type MultipartShape } from './counting-storage.js';
export { planPrune, applyPrune, type PrunePlanOptions, type PrunePlan, type PrunePackPlan, type PruneResult, type PruneVerify, type FailedRemotePack } from './prune.js';
export { ChunkUsageTracker, trackChunkUsage, markChunksUsed, type ChunkUsageTrackerOptions } from './chunk-usage.js';
