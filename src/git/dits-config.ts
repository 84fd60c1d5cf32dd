/**
 * Dits settings from git config (repo, then global). Tunables are read once per command
 * and passed down as parameters.
 */
import { gitConfigMap } from './exec.js';
import { DitsUserError } from '../errors.js';
import { DEFAULT_CHUNKER_PARAMS, type ChunkerParams } from '../chunking/chunker.js';

export interface DitsSettings {
  chunker: ChunkerParams;
  /** Files up to this size go through Git's smudge pipe; larger ones are written by Dits. */
  smudgeInlineMax: number;
  /** The filter process starts writing big files while Git checks out (dits.earlyWrite; worktree/early-write.ts). */
  earlyWrite: boolean;
  /** Media-aware cutting for MP4/MOV. */
  mediaAware: boolean;
  /** fsync packs before indexing them (dits.fsync). */
  durable: boolean;
  /** Pack writes bypass the page cache (dits.directWrite; store/direct-appender.ts). */
  directWrite: boolean;
  /** Target size of packs sent to remotes (dits.packSize); undefined: the transfer default. */
  packSize?: number;
  /** Transfers in flight at once (dits.concurrency, default 8). */
  concurrency: number;
}

export const DEFAULT_SMUDGE_INLINE_MAX = 32 * 1024 * 1024;

/** "64k", "32M", "1.5G", "4096" -> bytes; null when the text is not a size. */
export function parseByteSize(v: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(v.trim());
  if (!m) return null;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.round(Number(m[1]) * mult);
}

function sizeSetting(kv: Map<string, string>, key: string, fallback: number): number {
  const v = kv.get(key);
  if (v === undefined) return fallback;
  const n = parseByteSize(v);
  if (n === null || n <= 0) throw new DitsUserError('bad-config', `git config ${key} = '${v}' is not a size`, { hint: `use a number of bytes with an optional k/M/G suffix, e.g. \`git config ${key} 64k\`` });
  return n;
}

export async function readDitsSettings(cwd: string): Promise<DitsSettings> {
  const kv = await gitConfigMap(cwd, '^dits\\.');
  return {
    chunker: {
      minSize: sizeSetting(kv, 'dits.chunkmin', DEFAULT_CHUNKER_PARAMS.minSize),
      avgSize: sizeSetting(kv, 'dits.chunkavg', DEFAULT_CHUNKER_PARAMS.avgSize),
      maxSize: sizeSetting(kv, 'dits.chunkmax', DEFAULT_CHUNKER_PARAMS.maxSize),
    },
    smudgeInlineMax: sizeSetting(kv, 'dits.smudgeinlinemax', DEFAULT_SMUDGE_INLINE_MAX),
    earlyWrite: (kv.get('dits.earlywrite') ?? 'true') !== 'false',
    mediaAware: (kv.get('dits.mediaaware') ?? 'true') !== 'false',
    durable: (kv.get('dits.fsync') ?? 'false') === 'true',
    directWrite: (kv.get('dits.directwrite') ?? 'true') !== 'false',
    packSize: kv.has('dits.packsize') ? sizeSetting(kv, 'dits.packsize', 0) : undefined,
    concurrency: Math.max(1, Math.min(64, Number(kv.get('dits.concurrency') ?? 8) || 8)),
  };
}
