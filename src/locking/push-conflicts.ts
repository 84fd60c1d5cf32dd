/**
 * The pre-push check: a push that changes a file locked by someone else is refused,
 * naming who holds each lock and since when. Pure; the caller fetches the verify result
 * (LockClient.verify) and the changed paths (from git).
 */
import { DitsUserError } from '../errors.js';
import type { Lock, VerifyResult } from './lock-client.js';
import { checkLockPath } from './lock-path.js';

export interface PushConflict {
  path: string;
  lock: Lock;
}

/** Changed paths that someone else holds a lock on, sorted by path. */
export function findPushConflicts(changedPaths: Iterable<string>, verify: Pick<VerifyResult, 'theirs'>): PushConflict[] {
  const theirs = new Map<string, Lock>();
  for (const lock of verify.theirs) theirs.set(lock.path, lock);
  const seen = new Set<string>();
  const out: PushConflict[] = [];
  for (const raw of changedPaths) {
    const checked = checkLockPath(raw);
    const path = checked.ok ? checked.path : raw;
    if (seen.has(path)) continue;
    seen.add(path);
    const lock = theirs.get(path);
    if (lock !== undefined) out.push({ path, lock });
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** The error to refuse a push with; `conflicts` must not be empty. */
export function pushConflictError(conflicts: readonly PushConflict[]): DitsUserError {
  const lines = conflicts.map((c) => `  ${c.path}: locked by ${c.lock.owner.name} since ${c.lock.locked_at}`);
  return new DitsUserError(
    'push-locked',
    `refusing to push changes to ${conflicts.length === 1 ? 'a file' : `${conflicts.length} files`} locked by someone else:\n${lines.join('\n')}`,
    { hint: 'ask the lock holder to unlock, or drop your changes to these files' },
  );
}
