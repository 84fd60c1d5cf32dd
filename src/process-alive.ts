/**
 * Whether process `pid` runs: a signal 0 reaches it (EPERM: it runs as another user), and
 * it is not a zombie (dead, not yet reaped by its parent: /proc/<pid>/stat state Z). This
 * process counts as alive; a pid that is not a positive integer does not (kill(0) would
 * signal the whole process group). One rule for every "is the owner of this lock,
 * journal or mount still there" question (early writes, access journals, mounts,
 * snapshots' temporary indexes).
 */
import fs from 'node:fs';
import { errnoCode } from './errors.js';

export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    return stat.slice(close + 2, close + 3) !== 'Z';
  } catch {
    return true; // no /proc (or it just exited): the signal test is all there is
  }
}
