/**
 * The stored state of the server's scheduled mirror (server/mirror-scheduler.ts), in the
 * `settings` table: read by `git dits server status` and /api/status without loading the
 * mirror code.
 */
import type { MirrorSyncResult } from '../src/lifecycle/mirror-sync.js';
import type { ServerDb } from './db.js';

export const MIRROR_STATE = 'mirror.state';

export type MirrorRunResult = 'ok' | 'partial' | 'failed' | 'interrupted';

export interface MirrorRepoOutcome {
  repo: string;
  result: 'ok' | 'partial' | 'failed';
  refs?: MirrorSyncResult['refs'];
  copied?: MirrorSyncResult['copied'];
  /** objects not copied (frozen, corrupt, missing, failed), first few */
  notCopied?: { key: string; reason: string; message: string }[];
  notCopiedCount?: number;
  heldBack?: number;
  error?: string;
  note?: string;
}

export interface MirrorRun {
  trigger: 'schedule' | 'admin';
  startedAt: string;
  finishedAt?: string;
  result?: MirrorRunResult;
  /** why the whole run failed (the mirror unreachable) */
  error?: string;
  repos: MirrorRepoOutcome[];
}

export interface MirrorState {
  mirror: string;
  schedule: string;
  nextRun: string | null;
  running: MirrorRun | null;
  lastRun: MirrorRun | null;
}

/** The stored state of the mirror job (null: no mirror was ever configured), for status. */
export function readMirrorState(db: ServerDb): MirrorState | null {
  const row = db.stmt('SELECT value FROM settings WHERE key = ?').get(MIRROR_STATE) as { value: string } | undefined;
  if (row === undefined) return null;
  try {
    return JSON.parse(row.value) as MirrorState;
  } catch {
    return null;
  }
}

