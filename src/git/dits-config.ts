/**
 * Dits settings from git config (repo, then global). Tunables are read once per command
 * and passed down as parameters.
 */
import { runGit } from './exec.js';
import { DEFAULT_CHUNKER_PARAMS, type ChunkerParams } from '../chunking/chunker.js';

export interface DitsSettings {
  chunker: ChunkerParams;
  /** Files up to this size go through Git's smudge pipe; larger ones are written by Dits. */
  smudgeInlineMax: number;
  /** Media-aware cutting for MP4/MOV. */
  mediaAware: boolean;
  /** fsync packs before indexing them (dits.fsync). */
  durable: boolean;
  /** Target size of packs sent to remotes (dits.packSize); undefined: the transfer default. */
  packSize?: number;
  /** Transfers in flight at once (dits.concurrency, default 8). */
  concurrency: number;
}

export const DEFAULT_SMUDGE_INLINE_MAX = 32 * 1024 * 1024;

function parseSize(v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const m = /^(\d+)\s*([kmgt]?)i?b?$/i.exec(v.trim());
  if (!m) return fallback;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Number(m[1]) * mult;
}

export async function readDitsSettings(cwd: string): Promise<DitsSettings> {
  const r = await runGit(['config', '-z', '--get-regexp', '^dits\\.'], { cwd, allowFail: true });
  const kv = new Map<string, string>();
  for (const rec of r.stdout.toString('utf8').split('\0')) {
    const nl = rec.indexOf('\n');
    if (nl > 0) kv.set(rec.slice(0, nl).toLowerCase(), rec.slice(nl + 1));
  }
  return {
    chunker: {
      minSize: parseSize(kv.get('dits.chunkmin'), DEFAULT_CHUNKER_PARAMS.minSize),
      avgSize: parseSize(kv.get('dits.chunkavg'), DEFAULT_CHUNKER_PARAMS.avgSize),
      maxSize: parseSize(kv.get('dits.chunkmax'), DEFAULT_CHUNKER_PARAMS.maxSize),
    },
    smudgeInlineMax: parseSize(kv.get('dits.smudgeinlinemax'), DEFAULT_SMUDGE_INLINE_MAX),
    mediaAware: (kv.get('dits.mediaaware') ?? 'true') !== 'false',
    durable: (kv.get('dits.fsync') ?? 'false') === 'true',
    packSize: kv.has('dits.packsize') ? parseSize(kv.get('dits.packsize'), 0) || undefined : undefined,
    concurrency: Math.max(1, Math.min(64, Number(kv.get('dits.concurrency') ?? 8) || 8)),
  };
}
