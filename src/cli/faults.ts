/**
 * Faults of the environment (the disk, the file system, permissions, another process
 * holding the store or the index) turned into a message and a next step, for the CLI's
 * one error reporter (main.ts reportError). They are not bugs in Dits, so they never end
 * as "internal error (please report it)" with a stack trace. Library code throws Node's and
 * SQLite's errors unchanged (or wrapped, with `cause`); this is the one place that reads them.
 */

export interface Fault {
  message: string;
  hint: string;
}

interface SystemErrorLike {
  code?: unknown;
  path?: unknown;
  dest?: unknown;
  syscall?: unknown;
  message?: unknown;
  stderr?: unknown;
  cause?: unknown;
}

/** Where a system error happened, as the user can find it: ` on /path` or ''. */
function where(e: SystemErrorLike): string {
  return typeof e.path === 'string' ? ` on ${e.path}` : '';
}

function errnoFault(e: SystemErrorLike): Fault | null {
  const at = where(e);
  const file = typeof e.path === 'string' ? e.path : 'the file named';
  switch (e.code) {
    case 'EIO':
      return {
        message: `input/output error${at}: the disk or file system failed to read or write`,
        hint: 'check the disk and the file system (`dmesg`, a file system check); nothing half-written is kept as content, so re-run once the disk is healthy',
      };
    case 'ENOSPC':
      return { message: `no space left on the device${at}`, hint: 'free disk space there (`df -h` shows how much is left), then re-run; an interrupted add or fetch resumes' };
    case 'EDQUOT':
      return { message: `disk quota exceeded${at}`, hint: 'free space within your quota (`quota -s`) or ask for a larger one, then re-run' };
    case 'EROFS':
      return { message: `the file system is read-only${at}`, hint: 'this command writes to the repository (.git/dits and the working tree): remount it read-write or work in a writable clone' };
    case 'EACCES':
    case 'EPERM':
      return {
        message: `permission denied${at}`,
        hint: `check the owner and mode of ${file} and its directory (\`ls -ld\`); the repository's .git/dits must be writable by you (an immutable file: \`lsattr\`)`,
      };
    case 'EEXIST':
      if (e.syscall !== 'mkdir') return null;
      return { message: `cannot make the directory ${file}: a file is in its place`, hint: `move that file out of the way (inside .git/dits the directory is recreated), then re-run` };
    case 'ENOTDIR':
      return { message: `not a directory${at}: a file is where a directory should be`, hint: `move that file out of the way (inside .git/dits the directory is recreated), then re-run` };
    case 'EMFILE':
    case 'ENFILE':
      return { message: 'too many open files', hint: 'raise the limit (`ulimit -n 4096`) or lower `git config dits.concurrency`, then re-run' };
    default:
      return null;
  }
}

function sqliteFault(e: SystemErrorLike): Fault | null {
  if (typeof e.code !== 'string' || !e.code.startsWith('SQLITE_')) return null;
  const code = e.code;
  const msg = typeof e.message === 'string' ? e.message : code;
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return {
      message: "the Dits store (.git/dits/index.sqlite) is being written by another process, and it did not finish within the wait",
      hint: 'wait for the other git or git dits command to finish (`ps aux | grep git`), then re-run',
    };
  }
  if (code.startsWith('SQLITE_READONLY') || code === 'SQLITE_PERM' || code.startsWith('SQLITE_CANTOPEN')) {
    return {
      message: `${code.startsWith('SQLITE_CANTOPEN') ? 'cannot open' : 'cannot write'} the Dits store's index, .git/dits/index.sqlite (${msg}); even reading it needs a writable .git/dits`,
      hint: 'make .git/dits and the files in it writable by you (`ls -la .git/dits`; a read-only mount or immutable attribute: `lsattr -d .git/dits`), then re-run',
    };
  }
  if (code === 'SQLITE_FULL') return { message: 'no space left for the Dits store (.git/dits)', hint: 'free disk space (`df -h .git`), then re-run' };
  if (code.startsWith('SQLITE_IOERR')) {
    return {
      message: `input/output error in the Dits store (.git/dits/index.sqlite): ${msg}`,
      hint: 'check the disk and the file system (`dmesg`); once healthy, re-run and then `git dits fsck`',
    };
  }
  if (code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB') {
    return {
      message: `the Dits store's index (.git/dits/index.sqlite) is damaged: ${msg}`,
      hint: 'keep a copy of .git/dits, then run `git dits fsck`; content also on a remote can be fetched again',
    };
  }
  return null;
}

/** Git failing because another git holds a lock file (index.lock, a ref's .lock). */
function gitLockFault(e: SystemErrorLike): Fault | null {
  if (typeof e.stderr !== 'string') return null;
  const m = /Unable to create '([^']+\.lock)': File exists/.exec(e.stderr);
  if (!m) return null;
  return {
    message: `another git process is writing the repository: ${m[1]} exists`,
    hint: `wait for it to finish and re-run; if no git process is running (a crash left it), remove ${m[1]}`,
  };
}

/** The fault behind `e` (or behind its causes), or null when it is not one of the environment. */
export function describeFault(e: unknown): Fault | null {
  const seen = new Set<unknown>();
  let cur: unknown = e;
  while (cur !== null && typeof cur === 'object' && !seen.has(cur)) {
    seen.add(cur);
    const x = cur as SystemErrorLike;
    const f = errnoFault(x) ?? sqliteFault(x) ?? gitLockFault(x);
    if (f) return f;
    cur = x.cause;
  }
  return null;
}
