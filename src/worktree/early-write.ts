/**
 * Early writes: the filter process starts writing a big file's content as soon as Git asks
 * it to smudge that file, instead of leaving all of it to the hook that runs after Git has
 * written every pointer (the hook's own start and Git's work in between then overlap the
 * write). The content goes to `<git dir>/dits/early/`, never through Git's pipe:
 *
 *   <manifest>.<pid>.part    being written by filter process <pid> (created when Git asks)
 *   <manifest>.<pid>.ready   written and verified, dated like any checked-out file
 *
 * The hook (finishCheckout) claims a ready file by renaming it to a name of its own, then
 * renames it into place like the files a fetch prepares (materializeFile's `prepared`);
 * for a part file it waits while that process lives. Anything it finds of a process that
 * is gone it removes. The filter process removes what no hook claimed when Git closes its
 * pipe (Git does that as it exits, after its hooks ran), stopping a write still going: so
 * a smudge that was not a checkout (`git cat-file --filters`, `git archive`) costs at most
 * a partial write, and leaves nothing behind.
 *
 * Only content whose manifest is in the local store is written early (not a lazy clone's),
 * two files at a time, in the order Git asked.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Pointer } from '../manifest/pointer.js';
import type { ChunkStore } from '../store/chunk-store.js';
import { loadManifest, writeContent } from '../store/materialize.js';
import { operationInProgress } from './git-operation.js';
import { processAlive } from '../process-alive.js';

export function earlyDir(gitDir: string): string {
  return path.join(gitDir, 'dits', 'early');
}

/** A hook stops waiting for an early write that has shown no progress for this long. */
const EARLY_STALL_MS = 60_000;

const NAME = /^([0-9a-f]{64})\.(\d+)\.(part|ready|claimed-(\d+))$/;

/** The filter process's side: writes the content of pointers Git smudged, one at a time. */
export class EarlyWriter {
  private readonly queue: { pointer: Pointer; part: string }[] = [];
  /** the writers at work (at most `concurrency`), each taking files from the queue in turn */
  private readonly running = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  /** this process's part and ready files not yet claimed (or removed) */
  private readonly mine = new Set<string>();
  private closed = false;

  constructor(
    private readonly gitDir: string,
    private readonly store: () => ChunkStore,
    /** Files written at once: the copies into the page cache then run on more than one core. */
    private readonly concurrency = 2,
  ) {}

  /** Starts (or queues) the early write of this pointer's content; quietly does nothing when it cannot. */
  schedule(pointer: Pointer): void {
    if (this.closed) return;
    const dir = earlyDir(this.gitDir);
    if (readyElsewhere(dir, pointer.manifest)) return; // made already (commit-mount patched it: worktree-patch.ts)
    const part = path.join(dir, `${pointer.manifest}.${process.pid}.part`);
    if (this.mine.has(part)) return; // the same content at another path: the hook writes that one
    // A rebase, cherry-pick or revert smudges a file again at each step that changes it, and
    // its files are written only when it ends or stops (hook.ts): written early, every
    // intermediate version would be a full copy on disk until git exits, for nothing.
    if (operationInProgress(this.gitDir)) return;
    try {
      if (!this.store().hasManifest(pointer.manifest)) return;
      fs.mkdirSync(dir, { recursive: true });
      fs.closeSync(fs.openSync(part, 'wx', 0o600));
    } catch {
      return;
    }
    this.mine.add(part);
    this.queue.push({ pointer, part });
    if (this.running.size < this.concurrency) {
      const run: Promise<void> = this.drain().finally(() => this.running.delete(run));
      this.running.add(run);
    }
  }

  private async drain(): Promise<void> {
    for (let job = this.queue.shift(); job; job = this.queue.shift()) {
      if (this.abort.signal.aborted) break;
      const { pointer, part } = job;
      const ready = part.replace(/\.part$/, '.ready');
      try {
        const store = this.store();
        // a sign of life for a hook waiting on it, even through runs of zeros (not written)
        let touched = Date.now();
        const onProgress = (): void => {
          const now = Date.now();
          if (now - touched < 1000) return;
          touched = now;
          fs.utimesSync(part, new Date(now), new Date(now));
        };
        await writeContent(store, pointer, loadManifest(store, pointer), part, { started: Date.now(), replace: true, signal: this.abort.signal, onProgress });
        fs.renameSync(part, ready);
        this.mine.delete(part);
        this.mine.add(ready);
      } catch {
        // missing content, a full disk, or stopped: the hook writes (and reports) this file
        fs.rmSync(part, { force: true });
        this.mine.delete(part);
      }
    }
  }

  /** Git is done: stops a write still going and removes what no hook claimed. */
  async close(): Promise<void> {
    this.closed = true;
    this.abort.abort(new Error('the checkout is over'));
    for (const { part } of this.queue.splice(0)) {
      fs.rmSync(part, { force: true });
      this.mine.delete(part);
    }
    await Promise.all(this.running);
    for (const f of this.mine) fs.rmSync(f, { force: true });
    this.mine.clear();
  }
}

/** Is there a ready file of this content from another process (claimable by the hook)? */
function readyElsewhere(dir: string, manifest: string): boolean {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return false;
  }
  return names.some((n) => n.startsWith(manifest) && n.endsWith('.ready') && !n.endsWith(`.${process.pid}.ready`));
}

/**
 * The hook's side: the early-written files for these pointers (by working-tree file), each
 * renamed to a name of the hook's own (the caller renames it into place or removes it).
 * Waits for writes still going; removes files of processes that are gone.
 */
export async function claimEarly(
  gitDir: string,
  items: readonly { file: string; pointer: Pointer }[],
  onProgress?: (bytes: number, total: number) => void,
): Promise<Map<string, { tmp: string; pointer: Pointer }>> {
  const claimed = new Map<string, { tmp: string; pointer: Pointer }>();
  const dir = earlyDir(gitDir);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return claimed;
  }
  /** the filter processes (pids) with a part or ready file of each manifest */
  const byManifest = new Map<string, number[]>();
  for (const name of names) {
    const m = NAME.exec(name);
    if (!m) continue;
    // a claimed file belongs to the hook that claimed it
    const pid = Number(m[4] ?? m[2]);
    if (!processAlive(pid)) {
      fs.rmSync(path.join(dir, name), { force: true }); // left by a process that was killed
      continue;
    }
    if (m[4] !== undefined) continue;
    const pids = byManifest.get(m[1]!) ?? [];
    if (!pids.includes(pid)) pids.push(pid);
    byManifest.set(m[1]!, pids);
  }
  const wanted = items.filter((i) => byManifest.has(i.pointer.manifest));
  const total = wanted.reduce((n, i) => n + i.pointer.size, 0);
  let done = 0;
  for (const { file, pointer } of wanted) {
    // a file already ready first (rather than a write still going for the same content)
    const pids = byManifest.get(pointer.manifest)!;
    const ready = pids.findIndex((p) => fs.existsSync(path.join(dir, `${pointer.manifest}.${p}.ready`)));
    const pid = ready > 0 ? pids.splice(ready, 1)[0] : pids.shift();
    if (pid === undefined) continue; // the same content at two paths: one early copy only
    const base = path.join(dir, `${pointer.manifest}.${pid}`);
    // a part becomes ready, or goes (failed, stopped): wait while its writer lives and
    // shows progress (it touches the file at least every second)
    let seen = '';
    let since = Date.now();
    for (let wait = 2; !fs.existsSync(`${base}.ready`) && processAlive(pid); wait = Math.min(wait * 2, 20)) {
      let st: fs.Stats;
      try {
        st = fs.statSync(`${base}.part`);
      } catch {
        break; // ready, or given up
      }
      const now = `${st.size} ${st.mtimeMs}`;
      if (now !== seen) {
        seen = now;
        since = Date.now();
      } else if (Date.now() - since > EARLY_STALL_MS) break; // stuck: written from the store instead
      onProgress?.(done + st.size, total);
      await new Promise((r) => setTimeout(r, wait));
    }
    const tmp = `${base}.claimed-${process.pid}`;
    try {
      fs.renameSync(`${base}.ready`, tmp);
    } catch {
      continue; // not written, or another hook took it: written from the store instead
    }
    const size = fs.statSync(tmp).size;
    if (size !== pointer.size) {
      fs.rmSync(tmp, { force: true });
      continue;
    }
    claimed.set(file, { tmp, pointer });
    done += pointer.size;
    onProgress?.(done, total);
  }
  return claimed;
}
