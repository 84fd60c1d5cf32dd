import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { descendants, parseStat, parseStatusMemory, sampleTree, watchTreeMemory } from './proc-tree-memory.js';

describe('/proc parsing', () => {
  it('reads pid, name and ppid even when the name has spaces and parentheses', () => {
    expect(parseStat('1234 (git) S 99 1234 1234 0 -1')).toEqual({ pid: 1234, name: 'git', ppid: 99 });
    expect(parseStat('77 (a) b (c)) R 5 77 77 0')).toEqual({ pid: 77, name: 'a) b (c)', ppid: 5 });
    expect(parseStat('garbage')).toBeNull();
  });
  it('reads VmRSS and RssAnon in bytes', () => {
    const text = 'Name:\tgit\nVmPeak:\t  9999 kB\nVmRSS:\t    2048 kB\nRssAnon:\t    1024 kB\nRssFile:\t 1024 kB\n';
    expect(parseStatusMemory(text)).toEqual({ rssBytes: 2048 * 1024, anonBytes: 1024 * 1024 });
    expect(parseStatusMemory('Name:\tzombie\n')).toEqual({ rssBytes: 0, anonBytes: 0 });
  });
  it('finds every descendant and nothing else', () => {
    const parents = new Map([[10, 1], [11, 10], [12, 11], [13, 10], [20, 1], [21, 20]]);
    expect(descendants(10, parents).sort()).toEqual([10, 11, 12, 13]);
    expect(descendants(21, parents)).toEqual([21]);
  });
});

describe('live sampling', () => {
  it('sees a child that holds 200 MiB and counts it in the tree peak', async () => {
    // A shell whose node child fills 200 MiB and waits: the tree is sh -> node.
    const script = 'const b = Buffer.alloc(200 * 1024 * 1024, 1); setTimeout(() => console.log(b[5]), 600);';
    const child = spawn('sh', ['-c', `"${process.execPath}" -e '${script}'`], { stdio: 'ignore' });
    const watch = watchTreeMemory(child.pid!, 20);
    await new Promise((r) => child.on('exit', r));
    const peak = watch.stop();
    expect(peak.samples).toBeGreaterThan(3);
    expect(peak.maxProcesses).toBeGreaterThanOrEqual(2);
    expect(peak.peakSingleName).toBe('node');
    expect(peak.peakSingleRssBytes).toBeGreaterThan(200 * 2 ** 20);
    expect(peak.peakSumRssBytes).toBeGreaterThan(peak.peakSingleRssBytes);
    expect(peak.peakSumAnonBytes).toBeGreaterThan(190 * 2 ** 20);
  });
  it('returns nothing for a pid that does not exist', () => {
    expect(sampleTree(2 ** 22 + 12345)).toEqual([]);
  });
});
