/**
 * Filling the queue: a push that stores a new manifest whose header says "video" gets a
 * 'variants' job for (repository, original file id, manifest id).
 *
 * Video, from the manifest header alone (no byte of the file is read):
 * - `media` (MP4/QuickTime structure found by the parser) with a video track;
 * - or the container was recognised but not parsed (`mediaFallback` starts with "MXF" or
 *   "Matroska"): ffmpeg decides later whether it reads it.
 *
 * Manifests that come through the storage routes are inspected right after they are
 * stored (one ranged read of their header). A manifest put straight into S3 with a
 * presigned URL (at least 1 MiB: a file of tens of thousands of chunks) is never seen
 * arriving, so its presign enqueues an 'inspect' job instead: a worker reads the header
 * once the manifest is there (deferred until then) and enqueues 'variants' when it is video.
 */
import { MANIFEST_MAGIC, type ManifestHeader } from '../../src/manifest/manifest.js';
import { OBJECTS_PREFIX } from '../../src/remote/content/layout.js';
import type { ObjectStorage } from '../../src/transfer/object-storage.js';
import type { JobQueue } from './queue.js';

/** The manifest id a key `v1/objects/<2>/<62>` names, or null. */
export function manifestIdOfKey(key: string): string | null {
  if (!key.startsWith(OBJECTS_PREFIX)) return null;
  const id = key.slice(OBJECTS_PREFIX.length).replace('/', '');
  return /^[0-9a-f]{64}$/.test(id) && key.length === OBJECTS_PREFIX.length + 65 ? id : null;
}

export function isVideoHeader(header: Pick<ManifestHeader, 'media' | 'mediaFallback'>): boolean {
  const tracks = (header.media as { tracks?: unknown } | null)?.tracks;
  if (Array.isArray(tracks) && tracks.some((t) => (t as { type?: unknown })?.type === 'video')) return true;
  return typeof header.mediaFallback === 'string' && /^(MXF|Matroska)/.test(header.mediaFallback);
}

const HEADER_PROBE_BYTES = 16 * 1024;

/** A manifest's header from a ranged read (not its chunk table). */
export async function readManifestHeader(storage: ObjectStorage, key: string): Promise<ManifestHeader> {
  let head = await storage.getBuffer(key, { start: 0, end: HEADER_PROBE_BYTES - 1 });
  if (head.length < 16 || !head.subarray(0, 8).equals(MANIFEST_MAGIC)) throw new Error(`${key} is not a dits manifest`);
  const headerLen = head.readUInt32LE(12);
  if (16 + headerLen > head.length) head = await storage.getBuffer(key, { start: 0, end: 16 + headerLen - 1 });
  if (16 + headerLen > head.length) throw new Error(`${key}: manifest header runs past its end`);
  return JSON.parse(head.toString('utf8', 16, 16 + headerLen)) as ManifestHeader;
}

/**
 * Reads the header of the manifest stored at `key` and enqueues a 'variants' job when it is
 * video. Returns the job id, or null (not a manifest key, not video, repository gone).
 */
export async function enqueueIfVideo(queue: JobQueue, repo: string, storage: ObjectStorage, key: string): Promise<number | null> {
  const manifest = manifestIdOfKey(key);
  if (manifest === null) return null;
  const header = await readManifestHeader(storage, key);
  if (!isVideoHeader(header) || !/^[0-9a-f]{64}$/.test(header.oid)) return null;
  return queue.enqueue({ repo, kind: 'variants', original: header.oid, manifest })?.id ?? null;
}

/** For a manifest about to be put straight into S3: an 'inspect' job (keyed by the manifest id). */
export function enqueueInspection(queue: JobQueue, repo: string, key: string): number | null {
  const manifest = manifestIdOfKey(key);
  if (manifest === null) return null;
  return queue.enqueue({ repo, kind: 'inspect', original: manifest, manifest })?.id ?? null;
}
