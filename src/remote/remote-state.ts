/**
 * The git side of a remote's layout, version 1, under the storage root:
 *
 *   v1/format.json          {"format":"dits-remote","version":1}  written once, checked by every client
 *   v1/refs                 the ref state (versioned object, only changed by compare-and-swap):
 *                           { version: 1, head, refs: {name: oid}, bundles: [{key, tips, prereqs, size}] }
 *   v1/git/<sha256>.bundle  git objects of one push: `git bundle` of the pushed tips minus
 *                           what the remote already had, so pushes are incremental
 *   (content: v1/objects/.. manifests and v1/packs/.. packs, see content/README.md)
 *
 * Order of a push: content, then the bundle, then the ref state by compare-and-swap, so a
 * ref never names a commit whose objects or content are not stored yet.
 */
import { DitsUserError } from '../errors.js';
import type { ObjectStorage } from '../transfer/object-storage.js';

export const FORMAT_KEY = 'v1/format.json';
export const REFS_KEY = 'v1/refs';
export const REMOTE_FORMAT_VERSION = 1;

export interface BundleRecord {
  key: string;
  /** Objects this bundle makes available (the pushed tips). */
  tips: string[];
  /** Commits the bundle needs already present (what the remote had before). */
  prereqs: string[];
  size: number;
}

export interface RefState {
  version: 1;
  head: string | null;
  refs: Record<string, string>;
  bundles: BundleRecord[];
}

export function emptyState(): RefState {
  return { version: 1, head: null, refs: {}, bundles: [] };
}

export function parseRefState(body: Buffer, location: string): RefState {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    throw new DitsUserError('remote-corrupt', `the ref state at ${location} is not valid JSON`, { hint: 'the remote was damaged; restore v1/refs from a backup' });
  }
  const s = v as Partial<RefState>;
  if (typeof s !== 'object' || s === null || typeof s.version !== 'number') throw new DitsUserError('remote-corrupt', `the ref state at ${location} is malformed`);
  if (s.version > 1) throw new DitsUserError('remote-too-new', `the remote at ${location} was written by a newer Dits (ref state version ${s.version})`, { hint: 'upgrade dits on this machine' });
  return { version: 1, head: s.head ?? null, refs: { ...(s.refs ?? {}) }, bundles: [...(s.bundles ?? [])] };
}

export function encodeRefState(s: RefState): Buffer {
  return Buffer.from(JSON.stringify(s), 'utf8');
}

/** Refuses a remote written by a newer format; returns whether the remote exists at all. */
export async function checkFormat(storage: ObjectStorage): Promise<boolean> {
  let body: Buffer;
  try {
    body = await storage.getBuffer(FORMAT_KEY);
  } catch (err) {
    if ((err as { code?: string }).code === 'storage-not-found') return false;
    throw err;
  }
  let f: { format?: string; version?: number };
  try {
    f = JSON.parse(body.toString('utf8'));
  } catch {
    throw new DitsUserError('remote-corrupt', `${storage.location}/${FORMAT_KEY} is not valid JSON`, { hint: 'is this URL really a Dits remote?' });
  }
  if (f.format !== 'dits-remote') throw new DitsUserError('not-a-dits-remote', `${storage.location} is not a Dits remote`, { hint: 'check the URL' });
  if ((f.version ?? 0) > REMOTE_FORMAT_VERSION) {
    throw new DitsUserError('remote-too-new', `the remote at ${storage.location} uses format version ${f.version}; this dits understands ${REMOTE_FORMAT_VERSION}`, { hint: 'upgrade dits to use this remote' });
  }
  return true;
}

export async function writeFormat(storage: ObjectStorage): Promise<void> {
  await storage.put(FORMAT_KEY, Buffer.from(JSON.stringify({ format: 'dits-remote', version: REMOTE_FORMAT_VERSION }) + '\n'));
}

export async function readRefState(storage: ObjectStorage): Promise<{ state: RefState; etag: string | null }> {
  const v = await storage.getVersioned(REFS_KEY);
  if (!v) return { state: emptyState(), etag: null };
  return { state: parseRefState(v.body, storage.location), etag: v.etag };
}
