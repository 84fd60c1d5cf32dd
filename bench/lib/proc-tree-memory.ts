/**
 * Peak resident memory of a whole process tree (git plus the filter and hook processes it
 * starts), sampled from /proc: every `intervalMs` the descendants of the root are found
 * by their parent pid (/proc/<pid>/stat) and their VmRSS and RssAnon are read from
 * /proc/<pid>/status. The peak of the sum and the peak of any single process are kept.
 *
 * Linux only. A process that lives shorter than one interval can be missed; a process
 * that exits between the two reads is skipped.
 */
import fs from 'node:fs';

export interface ProcessMemory {
  pid: number;
  name: string;
  rssBytes: number;
  anonBytes: number;
}

export interface TreeMemoryPeak {
  /** Highest sum of VmRSS over the tree seen in one sample. */
  peakSumRssBytes: number;
  /** Highest sum of RssAnon (heap, stacks; no file pages) over the tree in one sample. */
  peakSumAnonBytes: number;
  /** Highest VmRSS of one process, and which. */
  peakSingleRssBytes: number;
  peakSingleName: string;
  samples: number;
  /** Most processes seen at once in the tree. */
  maxProcesses: number;
  /**
   * With `exclude`: the processes it matched (e.g. ffmpeg) are left out of every figure
   * above and their own peaks are here (highest sum of their VmRSS in one sample, highest one).
   */
  excluded?: { peakSumRssBytes: number; peakSingleRssBytes: number; names: string[] };
}

/** Parses /proc/<pid>/stat: the command name may contain spaces and parentheses. */
export function parseStat(text: string): { pid: number; name: string; ppid: number } | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const pid = Number(text.slice(0, open).trim());
  const rest = text.slice(close + 2).split(' ');
  const ppid = Number(rest[1]);
  if (!Number.isInteger(pid) || !Number.isInteger(ppid)) return null;
  return { pid, name: text.slice(open + 1, close), ppid };
}

/** VmRSS and RssAnon in bytes from /proc/<pid>/status text (0 when absent, e.g. zombies). */
export function parseStatusMemory(text: string): { rssBytes: number; anonBytes: number } {
  const kb = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : 0;
  };
  return { rssBytes: kb('VmRSS'), anonBytes: kb('RssAnon') };
}

/** All descendants of `root` (and root itself) from a pid -> ppid table. */
export function descendants(root: number, parents: ReadonlyMap<number, number>): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of parents) {
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length) {
    const p = todo.pop()!;
    out.push(p);
    for (const c of children.get(p) ?? []) todo.push(c);
  }
  return out;
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** One sample: the memory of every live process in the tree under `root`. */
export function sampleTree(root: number, procDir = '/proc'): ProcessMemory[] {
  const parents = new Map<number, number>();
  const names = new Map<number, string>();
  for (const entry of fs.readdirSync(procDir)) {
    if (!/^\d+$/.test(entry)) continue;
    const st = readText(`${procDir}/${entry}/stat`);
    const parsed = st && parseStat(st);
    if (!parsed) continue;
    parents.set(parsed.pid, parsed.ppid);
    names.set(parsed.pid, parsed.name);
  }
  if (!parents.has(root)) return [];
  const out: ProcessMemory[] = [];
  for (const pid of descendants(root, parents)) {
    const status = readText(`${procDir}/${pid}/status`);
    if (!status) continue;
    out.push({ pid, name: names.get(pid) ?? '?', ...parseStatusMemory(status) });
  }
  return out;
}

/**
 * Folds one sample into `peak`. Processes `exclude` matches (by name) count only in
 * `peak.excluded`, so "the worker without ffmpeg" and "ffmpeg" are separate figures.
 */
export function addSample(peak: TreeMemoryPeak, procs: readonly ProcessMemory[], exclude?: (name: string) => boolean): void {
  if (procs.length === 0) return;
  peak.samples++;
  peak.maxProcesses = Math.max(peak.maxProcesses, procs.length);
  let sum = 0;
  let anon = 0;
  let exSum = 0;
  for (const p of procs) {
    if (exclude?.(p.name)) {
      const ex = (peak.excluded ??= { peakSumRssBytes: 0, peakSingleRssBytes: 0, names: [] });
      exSum += p.rssBytes;
      ex.peakSingleRssBytes = Math.max(ex.peakSingleRssBytes, p.rssBytes);
      if (!ex.names.includes(p.name)) ex.names.push(p.name);
      continue;
    }
    sum += p.rssBytes;
    anon += p.anonBytes;
    if (p.rssBytes > peak.peakSingleRssBytes) {
      peak.peakSingleRssBytes = p.rssBytes;
      peak.peakSingleName = p.name;
    }
  }
  peak.peakSumRssBytes = Math.max(peak.peakSumRssBytes, sum);
  peak.peakSumAnonBytes = Math.max(peak.peakSumAnonBytes, anon);
  if (peak.excluded) peak.excluded.peakSumRssBytes = Math.max(peak.excluded.peakSumRssBytes, exSum);
}

/**
 * Samples the tree under `root` until stop() is called; stop() returns the peaks.
 * `exclude`: processes counted apart (see addSample).
 */
export function watchTreeMemory(root: number, intervalMs = 50, exclude?: (name: string) => boolean): { stop(): TreeMemoryPeak } {
  const peak: TreeMemoryPeak = { peakSumRssBytes: 0, peakSumAnonBytes: 0, peakSingleRssBytes: 0, peakSingleName: '', samples: 0, maxProcesses: 0 };
  const take = (): void => addSample(peak, sampleTree(root), exclude);
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}
