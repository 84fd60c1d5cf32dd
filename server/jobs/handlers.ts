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
 * 'variants' (to be wired to makeVariants + recording the outcomes as content): until then
 * it streams the source from storage through the range source and has ffmpeg decode every
 * video frame of it, so the path storage -> verified chunks -> HTTP ranges -> ffmpeg runs
 * end to end; a source ffmpeg cannot decode fails the job with ffmpeg's last lines.
 * 'inspect': a manifest that reached S3 unseen (video-manifests.ts).
 */
import { spawn } from 'node:child_process';
import type { ObjectStorage } from '../../src/transfer/object-storage.js';
import { openRemoteFile } from '../../src/remote/content/remote-file-reader.js';
import { manifestKey } from '../../src/remote/content/layout.js';
import { RemoteContentNotReadyError } from '../../src/remote/content/remote-file-reader.js';
import { StorageError } from '../../src/transfer/storage-error.js';
import { openFfmpeg, LastLines } from '../../src/media/ffmpeg.js';
import { serveRangeSource } from '../../src/proxy/range-source.js';
import type { Logger } from '../logger.js';
import type { Job, JobKind, JobQueue } from './queue.js';
import { enqueueIfVideo } from './video-manifests.js';

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
    variants: decodeSourceHandler,
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

/**
 * The source streamed from storage into ffmpeg, every video frame decoded (`-f null`):
 * proves the file is a video ffmpeg reads and exercises the streaming path. No output.
 */
export const decodeSourceHandler: JobHandler = async (job, ctx) => {
  const ffmpeg = await openFfmpeg({ env: ctx.env });
  const reader = await openRemoteFile(ctx.storage, job.manifest, { indexCacheDir: ctx.indexCacheDir });
  const served = await serveRangeSource(reader, { name: 'source', onError: (err) => ctx.logger.warn('source read failed', { job: job.id, err }) });
  try {
    const started = Date.now();
    await runTool(ffmpeg.ffmpegPath, ['-nostdin', '-hide_banner', '-v', 'error', '-i', served.url, '-map', '0:v:0', '-f', 'null', '-'], ctx.signal);
    ctx.logger.info('source decoded', { job: job.id, bytes: reader.size, ranges: reader.stats.rangeRequests, ms: Date.now() - started });
  } finally {
    await served.close();
    await reader.close();
  }
};

/** Runs ffmpeg (URL input: not through ffmpeg.ts's file: arguments); rejects with its last lines. */
function runTool(command: string, args: string[], signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const tail = new LastLines();
    child.stderr.on('data', (d: Buffer) => tail.push(d.toString('utf8')));
    const onAbort = (): void => {
      child.kill('SIGKILL');
    };
    signal.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      reject(err);
    });
    child.once('close', (code, sig) => {
      signal.removeEventListener('abort', onAbort);
      if (signal.aborted) return reject(signal.reason);
      if (code === 0) return resolve();
      const lines = tail.get();
      reject(new Error(`ffmpeg could not decode the source (${sig ?? `exit ${code}`})${lines.length ? `: ${lines.join(' | ')}` : ''}`));
    });
  });
}
