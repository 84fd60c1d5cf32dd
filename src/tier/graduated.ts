/**
 * Graduation records for the reaper: `git dits graduate` writes
 * `v1/tier/graduated/<repo id>.json` ({ version: 1, tier: "warm", graduatedAt, lastChange,
 * workTree, manifests }) when a repository went idle and gave its disk back; `git dits
 * hydrate` deletes it. The reaper lists them on every run (a handful of small objects: one
 * listing and one GET each) and plans the packs of the named file versions as last used at
 * `lastChange` (plan.ts says how reads after the graduation still count).
 *
 * `since`: a read or upload after this counts as a real use. It is the later of
 * `graduatedAt` (when the graduate run started) and the record's own LastModified (when it
 * was written): the graduate run reads every chunk back from the remote before it writes
 * the record, and through a Dits server those reads are recorded like any other.
 *
 * A record that cannot be read (not JSON, no manifests, a time that does not parse) is
 * reported in `unreadable` and ignored: its packs are planned as if it did not exist.
 */
import { isId } from '../hashing/blake3.js';
import type { TierStorage } from './tier-storage.js';
import type { ObjectStorage } from '../transfer/object-storage.js';

export const GRADUATED_PREFIX = 'v1/tier/graduated/';

export interface GraduationRecord {
  key: string;
  /** ms since the epoch */
  graduatedAt: number;
  lastChange: number;
  /** a read or upload after this is a real use (see the top of this file) */
  since: number;
  workTree: string | null;
  manifests: string[];
}

export interface GraduationRecords {
  records: GraduationRecord[];
  /** `<key>: <why>` of records ignored */
  unreadable: string[];
}

function parseTime(v: unknown): number | null {
  if (typeof v !== 'string') return null;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : null;
}

/** A record's body checked; a string says why it is not one. */
export function parseGraduationRecord(key: string, bytes: Buffer, writtenAt: number): GraduationRecord | string {
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    return 'not JSON';
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'not a JSON object';
  const b = body as Record<string, unknown>;
  if (b.version !== 1) return `version ${JSON.stringify(b.version)} (this dits reads version 1)`;
  const graduatedAt = parseTime(b.graduatedAt);
  if (graduatedAt === null) return 'graduatedAt is not a time';
  const lastChange = parseTime(b.lastChange);
  if (lastChange === null) return 'lastChange is not a time';
  if (!Array.isArray(b.manifests)) return 'manifests is not a list';
  const bad = b.manifests.find((m) => typeof m !== 'string' || !isId(m));
  if (bad !== undefined) return `manifests holds ${JSON.stringify(bad).slice(0, 80)}, not a manifest id`;
  return {
    key,
    graduatedAt,
    lastChange,
    since: Math.max(graduatedAt, writtenAt),
    workTree: typeof b.workTree === 'string' ? b.workTree : null,
    manifests: b.manifests as string[],
  };
}

/** Every graduation record on the remote (a record deleted between the listing and its GET is skipped). */
export async function readGraduationRecords(storage: ObjectStorage & TierStorage): Promise<GraduationRecords> {
  const listed: { key: string; at: number }[] = [];
  for await (const o of storage.listTiered(GRADUATED_PREFIX)) if (o.key.endsWith('.json')) listed.push({ key: o.key, at: o.lastModified });
  listed.sort((a, b) => (a.key < b.key ? -1 : 1));
  const out: GraduationRecords = { records: [], unreadable: [] };
  for (const { key, at } of listed) {
    let bytes: Buffer;
    try {
      bytes = await storage.getBuffer(key);
    } catch (err) {
      if ((err as { code?: string }).code === 'storage-not-found') continue; // hydrated meanwhile
      throw err;
    }
    const r = parseGraduationRecord(key, bytes, at);
    if (typeof r === 'string') out.unreadable.push(`${key}: ${r}`);
    else out.records.push(r);
  }
  return out;
}
