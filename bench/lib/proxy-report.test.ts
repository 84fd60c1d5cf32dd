import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { proxyVerdicts, formatProxyReport, makeRatio } from './proxy-report.js';
import { breakdown, capabilitiesFromHelp, findProxyEncode, writeToolWrappers, normaliseEncodeArgs, parseTimeOutput, retarget, type CpuRun, type ProxyResults } from './proxy.js';
import { ensureClip, ensureCopies, ensureLongSource, repeatsFor, secondsFor } from './proxy-corpus.js';
import { addSample, type TreeMemoryPeak } from './proc-tree-memory.js';
import { parseBenchArgs } from './args.js';

const cpu = (...s: number[]): CpuRun[] => s.map((x) => ({ seconds: x, cpuSeconds: x * 1.5 }));
const mem = (tree: number, ffmpeg: number): TreeMemoryPeak => ({ peakSumRssBytes: tree, peakSumAnonBytes: 0, peakSingleRssBytes: tree, peakSingleName: 'node', samples: 10, maxProcesses: 3, excluded: { peakSumRssBytes: ffmpeg, peakSingleRssBytes: ffmpeg, names: ['ffmpeg'] } });

function results(): ProxyResults {
  return {
    asked: ['clone', 'make', 'switchFiles', 'worker', 'status'],
    clone: {
      files: 3,
      originalBytes: 600_000_000,
      proxyBytes: 18_000_000,
      runs: [
        { remote: 'dits::file', method: 'clone -c dits.checkoutMode=proxy', measure: "the clone's .git/dits", bytes: 30_000_000, seconds: 2 },
        { remote: 'dits::s3', method: 'clone -c dits.checkoutMode=proxy', measure: 'response bytes read from S3', bytes: 37_000_000, seconds: 3 },
        { remote: 'dits::s3', method: 'lazy clone + fetch-proxy + checkout --mode proxy', measure: 'response bytes read from S3', bytes: 20_000_000, seconds: 4 },
      ],
    },
    make: { clipBytes: 193_000_000, kinds: 'proxy', reference: 'buildProxyEncodeArgs', builtMatchesDits: true, ditsArgs: null, referenceArgs: ['-i', '<input>', '<output>'], dits: cpu(13, 12.5, 14), ffmpeg: cpu(12, 11.8, 12.4), ditsBreakdown: [{ encode: 11, otherTools: 1, rest: 1 }, { encode: 11.5, otherTools: 0.5, rest: 0.5 }, { encode: 12, otherTools: 1, rest: 1 }] },
    switchFiles: { files: 10, fileBytes: 2 ** 30, proxyBytes: 3e8, toProxy: cpu(0.4, 0.5, 0.45), toOriginal: cpu(2.5, 2.1, 2.2) },
    worker: { sourceBytes: 4 * 2 ** 30, runs: [{ seconds: 60, memory: mem(250 * 2 ** 20, 900 * 2 ** 20) }] },
    status: { files: 100, original: [0.02, 0.021, 0.019], proxy: [0.025, 0.026, 0.024] },
    notMeasured: [],
    notes: [],
  };
}

describe('proxy verdicts (issue 16)', () => {
  it('judges each figure against its target', () => {
    const v = proxyVerdicts(results());
    const get = (figure: string, subject: string) => v.find((x) => x.figure.startsWith(figure) && x.subject.startsWith(subject))!;
    // 30 MB of 600 MB is 5%: pass; 37 MB is 6.17%: fail
    expect(get('proxy clone', 'dits::file')).toMatchObject({ value: 5, pass: true });
    expect(get('proxy clone', 'dits::s3, clone').pass).toBe(false);
    expect(get('proxy clone', 'dits::s3, clone').value).toBeCloseTo(6.17, 2);
    expect(get('proxy clone', 'dits::s3, lazy')).toMatchObject({ value: 3.33, pass: true });
    // medians 13 / 12: 8% slower, within 10%
    expect(get('git dits proxy make', 'dits').value).toBeCloseTo(13 / 12, 6);
    expect(get('git dits proxy make', 'dits').pass).toBe(true);
    expect(get('switch 10 files', 'to proxy')).toMatchObject({ value: 0.45, pass: true });
    expect(get('switch 10 files', 'to original')).toMatchObject({ value: 2.2, pass: false });
    expect(get('switch 10 files', 'to proxy').figure).toContain('10 x 1.00 GiB');
    expect(get('worker memory', 'worker tree').pass).toBe(true);
    // 25 / 20 ms: 25% slower, over 20%
    expect(get('git status', 'proxy / original').value).toBeCloseTo(1.25, 6);
    expect(get('git status', 'proxy / original').pass).toBe(false);
  });

  it('a make more than 10% slower fails; the CPU ratio is reported beside, and named the steadier when wall times spread', () => {
    const r = results();
    r.make!.dits = cpu(13.3, 13.4, 13.5);
    r.make!.ffmpeg = cpu(12, 9.8, 15);
    const v = proxyVerdicts(r);
    expect(formatProxyReport(r, v, 3)).toContain('the wall times spread by 43% (ffmpeg) and 1% (Dits) here (a loaded machine): the CPU ratio is the steadier figure');
    expect(v.find((x) => x.figure.startsWith('git dits proxy make'))!.pass).toBe(false);
    expect(makeRatio(r).cpu).toBeCloseTo(13.4 / 12, 6);
  });

  it('a figure not measured has no value and no verdict, and the table says why', () => {
    const r = results();
    r.worker = null;
    r.switchFiles = null;
    r.notMeasured.push({ figure: 'worker', why: 'this build lacks `git dits worker`' }, { figure: 'switchFiles', why: 'this build lacks `git dits checkout --mode`' });
    const v = proxyVerdicts(r);
    const w = v.find((x) => x.figure.startsWith('worker memory'))!;
    expect(w).toMatchObject({ value: null, pass: null });
    expect(v.find((x) => x.figure.startsWith('switch 10 files'))).toMatchObject({ value: null, pass: null });
    const text = formatProxyReport(r, v, 3);
    expect(text).toContain('worker memory, proxy of a source in S3: not measured: this build lacks `git dits worker`');
    expect(text).toContain('switch 10 files proxy <-> original: not measured: this build lacks `git dits checkout --mode`');
  });

  it('figures not asked for (--proxy-figures) have no verdict at all', () => {
    const r = results();
    r.asked = ['make'];
    r.clone = null;
    r.status = null;
    const v = proxyVerdicts(r);
    expect(v.some((x) => x.figure.startsWith('proxy clone'))).toBe(false);
    expect(v.some((x) => x.figure.startsWith('git status'))).toBe(false);
    expect(formatProxyReport(r, v, 1)).toContain('proxy clone of 4K ProRes 422 HQ originals: not asked for (--proxy-figures)');
  });

  it('formats every table with its verdict', () => {
    const r = results();
    const text = formatProxyReport(r, proxyVerdicts(r), 3);
    expect(text).toMatch(/dits::file, clone -c dits.checkoutMode=proxy\s+the clone's \.git\/dits\s+30000000 B \(28\.6 MiB\)\s+5\.00%.*<= 6%\s+PASS/);
    expect(text).toMatch(/dits::s3, clone -c dits.checkoutMode=proxy .*6\.17%.*FAIL/);
    expect(text).toMatch(/dits::s3, lazy clone \+ fetch-proxy \+ checkout --mode proxy .*3\.33%.*PASS/);
    expect(text).toMatch(/git dits proxy make\s+13\.00 s .*1\.08x\s+1\.08x\s+<= 1\.1x\s+PASS/);
    expect(text).toContain('inside git dits proxy make (medians, wall): the encode 11.50 s, other ffmpeg/ffprobe calls 1.00 s, the rest (start-up, hashing the source, storing the proxy) 1.00 s');
    expect(text).toMatch(/to original\s+2\.20 s .*< 2 s\s+FAIL/);
    expect(text).not.toContain('the CPU ratio is the steadier figure');
    expect(text).toMatch(/run 1\s+250 MiB\s+250 MiB \(node\)\s+3\s+900 MiB \(ffmpeg\)\s+60\.0 s\s+< 300 MiB\s+PASS/);
    expect(text).toMatch(/proxy\s+25\.0 ms \(24\.0-26\.0\)\s+1\.25x\s+<= 1\.2x\s+FAIL/);
  });
});

describe('proxy section helpers', () => {
  it('reads capabilities from the help texts', () => {
    // what a build without make prints for `proxy make --help`: the help of `proxy`
    const proxyHelp = 'usage: git dits proxy ls [<path>...] [--json] [-v]\n\nProxies, posters, sprites and previews of tracked video files: list them (and, with make, make them)\n\nSubcommands (each has its own --help):\n  ls             List the variants of tracked files, and why any failed\n';
    const none = capabilitiesFromHelp({ proxy: proxyHelp, proxyMake: proxyHelp, checkout: 'usage: git dits checkout <path>', worker: null, serve: 'usage: git dits serve [--data <dir>]' });
    expect(none).toEqual({ make: false, kindsOption: false, checkoutMode: false, worker: false, serveWorkers: false });
    expect(capabilitiesFromHelp({ proxy: `${proxyHelp}  make           Make proxies\n`, proxyMake: proxyHelp, checkout: null, worker: null, serve: null }).make).toBe(true);
    const all = capabilitiesFromHelp({ proxy: 'git dits proxy make', proxyMake: 'usage: git dits proxy make [--all] [--kinds <list>]', checkout: '  --mode <proxy|original>', worker: 'usage: git dits worker --data <dir>', serve: '  --workers <n>' });
    expect(all).toEqual({ make: true, kindsOption: true, checkoutMode: true, worker: true, serveWorkers: true });
  });

  it('finds the proxy encode among logged ffmpeg calls and compares argv without paths', () => {
    const probe = ['-version'];
    const poster = ['-y', '-ss', '1.000', '-i', 'file:/a.mov', '-frames:v', '1', 'file:/p.jpg'];
    const enc = ['-nostdin', '-y', '-i', 'file:/repo/a.mov', '-c:v', 'prores_ks', '-profile:v', '0', 'file:/tmp/x.mov'];
    expect(findProxyEncode([probe, poster, enc])).toBe(enc);
    expect(findProxyEncode([probe, ['-c:v', 'prores_ks', '-profile:v', '3', '-i', 'x', 'y']])).toBeNull();
    expect(normaliseEncodeArgs(enc)).toEqual(['-nostdin', '-y', '-i', '<input>', '-c:v', 'prores_ks', '-profile:v', '0', '<output>']);
    expect(retarget(enc, '/c/clip.mov', '/o/ref.mov')).toEqual(['-nostdin', '-y', '-i', 'file:/c/clip.mov', '-c:v', 'prores_ks', '-profile:v', '0', 'file:/o/ref.mov']);
    expect(() => retarget(['a'], 'x', 'y')).toThrow(/no -i/);
  });

  it('the ffmpeg and ffprobe wrappers log each call exactly, with its times, and run the real tools', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-wrap-it's-"));
    try {
      const which = (t: string) => execFileSync('sh', ['-c', `command -v ${t}`], { encoding: 'utf8' }).trim();
      const w = writeToolWrappers(dir, { ffmpeg: which('ffmpeg'), ffprobe: which('ffprobe') });
      expect(w.calls()).toEqual([]);
      const before = Date.now() / 1000;
      expect(execFileSync(w.ffmpeg, ['-version'], { encoding: 'utf8' })).toMatch(/^ffmpeg version/);
      const out = path.join(dir, 'a b.mov');
      execFileSync(w.ffmpeg, ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'color=c=red:s=32x32:d=0.2', '-metadata', "title=it's two words", '-y', out]);
      expect(fs.statSync(out).size).toBeGreaterThan(0);
      expect(execFileSync(path.join(dir, 'ffprobe'), ['-v', 'error', '-show_entries', 'format=format_name', '-of', 'csv=p=0', out], { encoding: 'utf8' })).toMatch(/mov/);
      // a failing run keeps its exit status
      expect(() => execFileSync(w.ffmpeg, ['-i', path.join(dir, 'missing.mov'), '-f', 'null', '-'], { stdio: 'ignore' })).toThrow();
      const calls = w.calls();
      expect(calls.map((c) => [c.tool, c.args])).toEqual([
        ['ffmpeg', ['-version']],
        ['ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'color=c=red:s=32x32:d=0.2', '-metadata', "title=it's two words", '-y', out]],
        ['ffprobe', ['-v', 'error', '-show_entries', 'format=format_name', '-of', 'csv=p=0', out]],
        ['ffmpeg', ['-i', path.join(dir, 'missing.mov'), '-f', 'null', '-']],
      ]);
      for (const c of calls) {
        expect(c.start).toBeGreaterThanOrEqual(before - 1);
        expect(c.end).toBeGreaterThanOrEqual(c.start);
      }
      w.reset();
      expect(w.calls()).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('splits Dits\' time into the encode, other tool calls and the rest', () => {
    const enc = ['-i', 'file:/a.mov', '-c:v', 'prores_ks', '-profile:v', '0', 'file:/o.mov'];
    const b = breakdown(20, [
      { tool: 'ffprobe', start: 100, end: 101, args: ['-show_streams', 'a.mov'] },
      { tool: 'ffmpeg', start: 101, end: 116, args: enc },
      { tool: 'ffprobe', start: 116, end: 118, args: ['-count_packets', 'o.mov'] },
    ]);
    expect(b).toEqual({ encode: 15, otherTools: 3, rest: 2 });
  });

  it('reads user + sys from /usr/bin/time output, also after a status line', () => {
    expect(parseTimeOutput('12.03 11.90 0.14\n')).toBeCloseTo(12.04, 6);
    expect(parseTimeOutput('Command exited with non-zero status 1\n0.50 0.25 0.05\n')).toBeCloseTo(0.3, 6);
    expect(() => parseTimeOutput('garbage')).toThrow(/cannot read/);
  });

  it('counts excluded processes (ffmpeg) apart from the tree', () => {
    const peak: TreeMemoryPeak = { peakSumRssBytes: 0, peakSumAnonBytes: 0, peakSingleRssBytes: 0, peakSingleName: '', samples: 0, maxProcesses: 0 };
    const isFfmpeg = (n: string) => n === 'ffmpeg';
    addSample(peak, [{ pid: 1, name: 'node', rssBytes: 100, anonBytes: 60 }, { pid: 2, name: 'ffmpeg', rssBytes: 1000, anonBytes: 900 }], isFfmpeg);
    addSample(peak, [{ pid: 1, name: 'node', rssBytes: 150, anonBytes: 70 }, { pid: 2, name: 'ffmpeg', rssBytes: 400, anonBytes: 300 }, { pid: 3, name: 'ffmpeg', rssBytes: 700, anonBytes: 1 }], isFfmpeg);
    expect(peak).toMatchObject({ peakSumRssBytes: 150, peakSumAnonBytes: 70, peakSingleRssBytes: 150, peakSingleName: 'node', samples: 2, maxProcesses: 3 });
    expect(peak.excluded).toEqual({ peakSumRssBytes: 1100, peakSingleRssBytes: 1000, names: ['ffmpeg'] });
    const plain: TreeMemoryPeak = { peakSumRssBytes: 0, peakSumAnonBytes: 0, peakSingleRssBytes: 0, peakSingleName: '', samples: 0, maxProcesses: 0 };
    addSample(plain, [{ pid: 1, name: 'node', rssBytes: 100, anonBytes: 60 }, { pid: 2, name: 'ffmpeg', rssBytes: 1000, anonBytes: 900 }]);
    expect(plain.peakSumRssBytes).toBe(1100);
    expect(plain.excluded).toBeUndefined();
  });

  it('sizes: seconds of clip for a file size, joins for a long source', () => {
    expect(secondsFor(2 ** 30, 193_000_000, 2)).toBe(11);
    expect(secondsFor(192 * 2 ** 20, 193_361_059, 2)).toBe(2);
    expect(secondsFor(1000, 193_000_000, 2)).toBe(1);
    expect(repeatsFor(4 * 2 ** 30, 193_000_000)).toBe(23);
    expect(repeatsFor(1, 193_000_000)).toBe(1);
  });

  it('parses the proxy section options', () => {
    const d = parseBenchArgs(['--only', 'proxy'], {});
    expect(parseBenchArgs(['--proxy-figures', 'make,switch'], {}).proxyFigures).toEqual(['make', 'switch']);
    expect(() => parseBenchArgs(['--proxy-figures', 'speed'], {})).toThrow(/unknown figure/);
    expect(d).toMatchObject({ proxyFigures: ['clone', 'make', 'switch', 'worker', 'status'], only: ['proxy'], proxySeconds: 2, proxyClips: 3, proxySwitchSize: 192 * 2 ** 20, proxyWorkerSize: 512 * 2 ** 20, proxyStatusFiles: 100 });
    const o = parseBenchArgs(['--proxy-seconds', '3', '--proxy-clips', '2', '--proxy-switch-size', '1G', '--proxy-worker-size', '4G', '--proxy-status-files', '20'], {});
    expect(o).toMatchObject({ proxySeconds: 3, proxyClips: 2, proxySwitchSize: 2 ** 30, proxyWorkerSize: 4 * 2 ** 30, proxyStatusFiles: 20 });
    expect(() => parseBenchArgs(['--proxy-clips', '0'], {})).toThrow(/positive/);
  });
});

describe('proxy corpus (real ffmpeg, tiny clips)', () => {
  it('makes a ProRes 422 HQ clip with PCM audio and timecode, retitled copies that differ, and a joined long source', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-proxy-corpus-'));
    try {
      const deps = { dir, env: process.env, log: () => {} };
      const clip = await ensureClip({ width: 64, height: 36, seconds: 1, seed: 3 }, deps);
      const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', clip], { encoding: 'utf8' })) as { streams: { codec_type: string; codec_name: string; profile?: string; pix_fmt?: string; width?: number }[]; format: { tags?: Record<string, string> } };
      const v = probe.streams.find((s) => s.codec_type === 'video')!;
      expect(v).toMatchObject({ codec_name: 'prores', profile: 'HQ', pix_fmt: 'yuv422p10le', width: 64 });
      expect(probe.streams.find((s) => s.codec_type === 'audio')!.codec_name).toBe('pcm_s16le');
      expect(JSON.stringify(probe)).toContain('01:00:00:00');
      // cached: a second call does not make it again
      const mtime = fs.statSync(clip).mtimeMs;
      expect(await ensureClip({ width: 64, height: 36, seconds: 1, seed: 3 }, deps)).toBe(clip);
      expect(fs.statSync(clip).mtimeMs).toBe(mtime);
      const copies = await ensureCopies(clip, 3, 'c', deps);
      expect(copies.map((c) => path.basename(c))).toEqual(['c_000.mov', 'c_001.mov', 'c_002.mov']);
      const bytes = copies.map((c) => fs.readFileSync(c));
      expect(bytes[0]!.equals(bytes[1]!)).toBe(false);
      const long = await ensureLongSource(fs.statSync(clip).size * 2.5, clip, deps);
      expect(path.basename(long)).toMatch(/^proxy-long-3x-/);
      const dur = Number(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', long], { encoding: 'utf8' }));
      expect(dur).toBeGreaterThan(2.9);
      expect(fs.readdirSync(dir).filter((f) => f.includes('partial'))).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
