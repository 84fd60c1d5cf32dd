/**
 * What each kind of job does: THE place where handlers are registered (`jobHandlers`).
 *
 * A handler gets the leased job and a context; it resolves when the job is done, throws to
 * fail it (retried with backoff, dead after 3 failures), or throws
 * RemoteContentNotReadyError when the content is still arriving (deferred, not a failure).
 * It must stop soon after `ctx.signal` aborts (the worker is stopping, or the lease was lost
 * to another worker: its result would be ignored). The worker heartbeats on its own every
 * few seconds; `ctx.heartbeat()` extends the lease at once (e.g. on progress).
 *
 * 'variants': every variant of one original, made from storage and published back to it
 * (variants-handler.ts).
 * 'inspect': a manifest that reached S3 unseen (video-manifests.ts).
 */
import type { ObjectStorage } from '../../src/transfer/object-storage.js';
import { manifestKey } from '../../src/remote/content/layout.js';
import { RemoteContentNotReadyError } from '../../src/remote/content/remote-file-reader.js';
import { StorageError } from '../../src/transfer/storage-error.js';
import type { Logger } from '../logger.js';
import type { Job, JobKind, JobQueue } from './queue.js';
import { enqueueIfVideo } from './video-manifests.js';
import { variantsHandler } from './variants-handler.js';

export interface JobContext {
  /** Aborted when the worker stops or the lease is lost. */
  signal: AbortSignal;
  /** Extends the lease now (the worker also does every few seconds). */
  heartbeat(): void;
  /** The job's repository's storage (folder or S3, as the server's). */
  storage: ObjectStorage;
  repo: string;
  queue: JobQueue;
  /** An empty directory for this attempt's files, removed after it. */
  workDir: string;
  /** Where verified pack indexes are kept between jobs (openRemoteFile's indexCacheDir). */
  indexCacheDir: string;
  env: NodeJS.ProcessEnv;
  logger: Logger;
}

export type JobHandler = (job: Job, ctx: JobContext) => Promise<void>;

/** The handlers the workers run, by kind. The lead's 'variants' goes here. */
export function jobHandlers(): Record<JobKind, JobHandler> {
  return {
    variants: variantsHandler,
    inspect: inspectManifestHandler,
  };
}

/** Reads the manifest's header once it is stored; enqueues 'variants' when it is video. */
export const inspectManifestHandler: JobHandler = async (job, ctx) => {
  try {
    const id = await enqueueIfVideo(ctx.queue, ctx.repo, ctx.storage, manifestKey(job.manifest));
    ctx.logger.info('manifest inspected', { repo: ctx.repo, manifest: job.manifest, variantsJob: id });
  } catch (err) {
    if (err instanceof StorageError && err.code === 'storage-not-found') throw new RemoteContentNotReadyError(ctx.storage.location, `manifest ${job.manifest} is not stored`);
    throw err;
  }
};
