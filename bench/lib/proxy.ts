/**
 * Issue 16's figures (proxies), driven as a user would with `git dits proxy make`,
 * `git push`, `git clone -c dits.checkoutMode=proxy`, `git dits checkout --mode` and the
 * server's workers, against plain ffmpeg in the same run:
 *
 * 1. proxy clone: a repository of 4K ProRes 422 HQ originals with their proxies made and
 *    pushed; `git clone -c dits.checkoutMode=proxy` from a dits::file remote (bytes =
 *    everything the clone's .git/dits holds afterwards: what Dits downloaded and kept) and
 *    from dits::s3 through the counting proxy (bytes = response bodies read from S3);
 *    against the originals' bytes.
 * 2. proxy make of one 4K clip against the ffmpeg command line running the same arguments
 *    (captured from Dits' own run through a DITS_FFMPEG wrapper; else built with
 *    buildProxyEncodeArgs), A/B alternating; the Dits side includes probing, the fidelity
 *    check and storing the proxy.
 * 3. switching 10 files proxy <-> original with both versions local.
 * 4. the server's worker making the proxy of a big source kept in S3: peak RSS of the
 *    worker's process tree without ffmpeg, ffmpeg's own beside it.
 * 5. `git status` with N files in proxy mode against original mode.
 *
 * A figure whose command this build lacks is not measured, with the reason (never a guess).
 * Returns every run's raw numbers; verdicts and tables are proxy-report.ts's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { run as runProcess, CommandError } from './exec.js';
import { treeBytes, warmFile, type CorpusDeps } from './corpus.js';
import { ensureFourKClips, ensureLongSource, ensureSmallFiles, ensureSwitchFiles } from './proxy-corpus.js';
import { watchTreeMemory, type TreeMemoryPeak } from './proc-tree-memory.js';
import type { Sandbox } from './sandbox.js';
import type { S3Loopback } from './s3-loopback.js';
import type { ProxyFigureName } from './args.js';
import { buildProxyEncodeArgs, RUN_PREFIX, type ProxyEncodeOptions } from '../../src/media/ffmpeg.js';

export interface CpuRun {
  /** Wall seconds from spawn to exit. */
  seconds: number;
  /** user + sys of the command and every child it waited for (/usr/bin/time). */
  cpuSeconds: number;
}

export type CloneMethod = 'clone -c dits.checkoutMode=proxy' | 'lazy clone + fetch-proxy + checkout --mode proxy';

export interface CloneRun {
  remote: 'dits::file' | 'dits::s3';
  method: CloneMethod;
  /** What the bytes are: the clone's .git/dits, or response bodies counted at the S3 proxy. */
  measure: string;
  bytes: number;
  seconds: number;
}

export interface ProxyFigures {
  clone: { files: number; originalBytes: number; proxyBytes: number; runs: CloneRun[] } | null;
  make: { clipBytes: number; kinds: string; reference: string; builtMatchesDits: boolean | null; ditsArgs: string[] | null; referenceArgs: string[]; dits: CpuRun[]; ffmpeg: CpuRun[]; ditsBreakdown: { encode: number; otherTools: number; rest: number }[] } | null;
  switchFiles: { files: number; fileBytes: number; proxyBytes: number; toProxy: CpuRun[]; toOriginal: CpuRun[] } | null;
  worker: { sourceBytes: number; runs: { seconds: number; memory: TreeMemoryPeak }[] } | null;
  status: { files: number; original: number[]; proxy: number[] } | null;
}

export type ProxyFigure = keyof ProxyFigures;

export interface ProxyResults extends ProxyFigures {
  /** The figures this run was asked to measure (--proxy-figures). */
  asked: ProxyFigure[];
  /** Figures that could not be measured, and why. */
  notMeasured: { figure: ProxyFigure; why: string }[];
  notes: string[];
}

export interface ProxyOptions {
  runs: number;
  memoryIntervalMs: number;
  clipSeconds: number;
  clips: number;
  switchFileBytes: number;
  workerSourceBytes: number;
  statusFiles: number;
  /** Which figures to measure (the others are left out, not "not measured"). */
  figures: readonly ProxyFigureName[];
}

export interface ProxyDeps {
  sandbox: Sandbox;
  log: (line: string) => void;
  corpusDir: string;
  s3?: S3Loopback;
}

/** What this build's `git dits` offers, read from its help. */
export interface Capabilities {
  make: boolean;
  kindsOption: boolean;
  checkoutMode: boolean;
  worker: boolean;
  serveWorkers: boolean;
}

/** Capabilities from the help texts (null: the command failed, i.e. is unknown). */
export function capabilitiesFromHelp(help: { proxy: string | null; proxyMake: string | null; checkout: string | null; worker: string | null; serve: string | null }): Capabilities {
  return {
    // `proxy make --help` of a build without make prints the help of `proxy` (exit 0): look
    // for make's own usage line, or make among the listed subcommands.
    make: /git dits proxy make\b/.test(help.proxyMake ?? '') || /^\s+make\s{2,}/m.test(help.proxy ?? ''),
    kindsOption: /--kinds\b/.test(help.proxyMake ?? ''),
    checkoutMode: /--mode\b/.test(help.checkout ?? ''),
    worker: help.worker !== null,
    serveWorkers: /--workers\b/.test(help.serve ?? ''),
  };
}

/** The proxy encode among logged ffmpeg calls (one argv per entry): ProRes profile 0 to a .mov. */
export function findProxyEncode(calls: readonly string[][]): string[] | null {
  return calls.find((a) => a.includes('prores_ks') && a.some((x, i) => x === '-profile:v' && a[i + 1] === '0') && a.includes('-i')) ?? null;
}

/** argv with the input (after -i) and the output (last) replaced by placeholders, to compare two runs. */
export function normaliseEncodeArgs(args: readonly string[]): string[] {
  const out = [...args];
  const i = out.indexOf('-i');
  if (i >= 0 && i + 1 < out.length) out[i + 1] = '<input>';
  if (out.length) out[out.length - 1] = '<output>';
  return out;
}

/** The same argv with another input and output. */
export function retarget(args: readonly string[], input: string, output: string): string[] {
  const out = [...args];
  const i = out.indexOf('-i');
  if (i < 0 || i + 1 >= out.length) throw new Error(`no -i in ${args.join(' ')}`);
  out[i + 1] = `file:${input}`;
  out[out.length - 1] = `file:${output}`;
  return out;
}

export interface ToolCall {
  tool: 'ffmpeg' | 'ffprobe';
  /** Wall-clock start and end, seconds since the epoch. */
  start: number;
  end: number;
  args: string[];
}

/**
 * Executables `ffmpeg` and `ffprobe` in `dir` (Dits prefers an ffprobe beside DITS_FFMPEG)
 * that run the real ones and then log the call: start and end time and every argument
 * (fields ended by 0x1f, one call per line; Dits passes no arguments with newlines).
 * calls(): the calls so far; reset() forgets them.
 */
export function writeToolWrappers(dir: string, real: { ffmpeg: string; ffprobe: string }): { ffmpeg: string; calls(): ToolCall[]; reset(): void } {
  const logFile = path.join(dir, 'calls.log');
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  for (const tool of ['ffmpeg', 'ffprobe'] as const) {
    const script = [
      '#!/bin/sh',
      's=$(date +%s.%N)',
      `${q(real[tool])} "$@"`,
      'rc=$?',
      'e=$(date +%s.%N)',
      `{ printf '%s\\037%s\\037%s\\037' ${tool} "$s" "$e"; printf '%s\\037' "$@"; printf '\\n'; } >> ${q(logFile)}`,
      'exit $rc',
      '',
    ].join('\n');
    fs.writeFileSync(path.join(dir, tool), script, { mode: 0o755 });
  }
  return {
    ffmpeg: path.join(dir, 'ffmpeg'),
    calls: () =>
      fs.existsSync(logFile)
        ? fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => {
            const [tool, start, end, ...args] = l.split('\x1f').slice(0, -1);
            return { tool: tool as ToolCall['tool'], start: Number(start), end: Number(end), args };
          })
        : [],
    reset: () => fs.rmSync(logFile, { force: true }),
  };
}

/** Seconds inside `git dits proxy make` by what ran: the proxy encode, other ffmpeg/ffprobe calls, the rest. */
export function breakdown(total: number, calls: readonly ToolCall[]): { encode: number; otherTools: number; rest: number } {
  const enc = findProxyEncode(calls.filter((c) => c.tool === 'ffmpeg').map((c) => c.args));
  let encode = 0;
  let otherTools = 0;
  for (const c of calls) {
    if (c.args === enc) encode += c.end - c.start;
    else otherTools += c.end - c.start;
  }
  return { encode, otherTools, rest: total - encode - otherTools };
}

/** "12.03 11.90 0.14" (the last line /usr/bin/time -f '%e %U %S' wrote) -> CPU seconds. */
export function parseTimeOutput(text: string): number {
  const last = text.trim().split('\n').pop() ?? '';
  const [, u, s] = last.trim().split(/\s+/).map(Number);
  if (!Number.isFinite(u) || !Number.isFinite(s)) throw new Error(`cannot read /usr/bin/time output: ${JSON.stringify(text)}`);
  return u! + s!;
}

const TIME = '/usr/bin/time';
let timeFiles = 0;

export async function timed(sb: Sandbox, cmd: string, args: readonly string[], cwd: string, env?: NodeJS.ProcessEnv): Promise<CpuRun & { stdout: string }> {
  const f = path.join(sb.dir, `time-${timeFiles++}.txt`);
  const r = await sb.run(TIME, ['-f', '%e %U %S', '-o', f, cmd, ...args], cwd, env ? { env } : {}).catch((e: unknown) => {
    // name the command itself, not the /usr/bin/time wrapper
    throw e instanceof CommandError ? new CommandError([cmd, ...args].join(' '), e.status, e.stderr) : e;
  });
  const cpuSeconds = parseTimeOutput(fs.readFileSync(f, 'utf8'));
  fs.rmSync(f, { force: true });
  return { seconds: r.seconds, cpuSeconds, stdout: r.stdout };
}

async function sync(sb: Sandbox): Promise<void> {
  await runProcess('sync', [], { cwd: sb.dir, env: sb.env });
}

/** stdout of a help command, or null when it fails (an unknown command). */
async function help(sb: Sandbox, args: string[]): Promise<string | null> {
  try {
    const r = await sb.run('git', ['dits', ...args, '--help'], sb.dir);
    return r.stdout + r.stderr;
  } catch {
    return null;
  }
}

export async function probeCapabilities(sb: Sandbox): Promise<Capabilities> {
  return capabilitiesFromHelp({
    proxy: await help(sb, ['proxy']),
    proxyMake: await help(sb, ['proxy', 'make']),
    checkout: await help(sb, ['checkout']),
    worker: await help(sb, ['worker']),
    serve: await help(sb, ['serve']),
  });
}

interface Repo {
  dir: string;
  /** Working-tree path -> corpus file it was made from. */
  files: Map<string, string>;
}

/** A repository tracking *.mov with `files` hard-linked under media/ and committed. */
async function repoWith(sb: Sandbox, name: string, files: readonly string[]): Promise<Repo> {
  const dir = sb.freshDir(name);
  await sb.run('git', ['init', '-q', '.'], dir);
  await sb.run('git', ['dits', 'init'], dir);
  await sb.run('git', ['dits', 'track', '*.mov'], dir);
  fs.mkdirSync(path.join(dir, 'media'));
  const map = new Map<string, string>();
  for (const f of files) {
    const rel = `media/${path.basename(f)}`;
    fs.linkSync(f, path.join(dir, rel));
    map.set(rel, f);
  }
  await sb.run('git', ['add', '.gitattributes', 'media'], dir);
  await sb.run('git', ['commit', '-q', '-m', 'originals'], dir);
  return { dir, files: map };
}

interface ProxyInfo {
  original: string;
  proxyBytes: number;
}

/** Per path: the original's file id and its proxy's size, from `git dits proxy ls --json`. */
async function proxiesOf(sb: Sandbox, repo: string): Promise<Map<string, ProxyInfo>> {
  const r = await sb.run('git', ['dits', 'proxy', 'ls', '--json'], repo);
  const rows = JSON.parse(r.stdout) as { path: string; original: string; variants: { kind: string; status: string; size?: number; reason?: string }[] }[];
  const out = new Map<string, ProxyInfo>();
  const failed: string[] = [];
  for (const row of rows) {
    const p = row.variants.find((v) => v.kind === 'proxy');
    if (p?.status === 'ok' && p.size !== undefined) out.set(row.path, { original: row.original, proxyBytes: p.size });
    else failed.push(`${row.path}: ${p ? `${p.status} ${p.reason ?? ''}` : 'no proxy'}`);
  }
  if (failed.length) throw new Error(`proxies missing after git dits proxy make:\n${failed.slice(0, 10).join('\n')}`);
  return out;
}

function makeArgs(cap: Capabilities, paths: readonly string[]): string[] {
  return ['dits', 'proxy', 'make', ...(paths.length ? paths : ['--all']), ...(cap.kindsOption ? ['--kinds', 'proxy'] : [])];
}

/** Every path has the size `want` says (proxy or original): the checkout put those bytes there. */
function checkSizes(repo: string, want: Map<string, number>, what: string): void {
  for (const [rel, size] of want) {
    const got = fs.statSync(path.join(repo, rel)).size;
    if (got !== size) throw new Error(`${what}: ${rel} has ${got} bytes, expected ${size}`);
  }
}

async function checkClean(sb: Sandbox, repo: string, what: string): Promise<void> {
  const st = (await sb.run('git', ['status', '--porcelain'], repo)).stdout.trim();
  if (st) throw new Error(`${what}: git status not clean:\n${st.slice(0, 2000)}`);
}

async function sameBytes(sb: Sandbox, a: string, b: string): Promise<boolean> {
  return runProcess('cmp', ['-s', a, b], { cwd: sb.dir, env: sb.env }).then(() => true, () => false);
}

const sum = (xs: Iterable<number>) => [...xs].reduce((a, b) => a + b, 0);
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

export async function runProxyBench(opts: ProxyOptions, deps: ProxyDeps): Promise<ProxyResults> {
  const { sandbox: sb, log } = deps;
  const asked: Record<ProxyFigure, ProxyFigureName> = { clone: 'clone', make: 'make', switchFiles: 'switch', worker: 'worker', status: 'status' };
  const res: ProxyResults = { asked: (Object.keys(asked) as ProxyFigure[]).filter((f) => opts.figures.includes(asked[f])), clone: null, make: null, switchFiles: null, worker: null, status: null, notMeasured: [], notes: [] };
  const corpus: CorpusDeps = { dir: deps.corpusDir, env: sb.env, log };
  const cap = await probeCapabilities(sb);
  log(`  this build: proxy make ${cap.make ? 'yes' : 'no'}${cap.kindsOption ? ' (--kinds)' : ''}, checkout --mode ${cap.checkoutMode ? 'yes' : 'no'}, worker ${cap.worker ? 'yes' : 'no'}, serve --workers ${cap.serveWorkers ? 'yes' : 'no'}`);
  if (cap.make && !cap.kindsOption) res.notes.push('git dits proxy make has no --kinds option here: it made every kind (proxy, poster, sprite, preview), and its times include them');
  const skip = (figure: ProxyFigure, why: string) => {
    res.notMeasured.push({ figure, why });
    log(`  ${figure}: not measured: ${why}`);
  };
  // One figure failing must not lose the others: each is tried on its own.
  const attempt = async (figure: ProxyFigure, needs: [boolean, string][], fn: () => Promise<void>) => {
    if (!res.asked.includes(figure)) return;
    const missing = needs.filter(([ok]) => !ok).map(([, what]) => what);
    if (missing.length) return skip(figure, `this build lacks ${missing.join(' and ')}`);
    try {
      await fn();
    } catch (e) {
      skip(figure, e instanceof CommandError ? `${e.command} failed (exit ${e.status}): ${e.stderr.trim().split('\n').slice(-6).join(' / ')}` : e instanceof Error ? e.message : String(e));
    }
  };

  // the 4K clips, generated (once, then cached) only when a figure asks for them
  let clipsMade: string[] | undefined;
  const fourKClips = async () => (clipsMade ??= await ensureFourKClips(opts.clipSeconds, opts.clips, corpus));

  // ---- 1. proxy clone of a repository of 4K originals
  await attempt('clone', [[cap.make, '`git dits proxy make`'], [cap.checkoutMode, 'checkout modes (`git dits checkout --mode`, with which dits.checkoutMode=proxy comes)']], async () => {
    const clips = await fourKClips();
    const repo = await repoWith(sb, 'proxy-src', clips);
    const made = await timed(sb, 'git', makeArgs(cap, []), repo.dir);
    log(`  proxy make of ${clips.length} 4K clips: ${made.seconds.toFixed(1)} s`);
    const proxies = await proxiesOf(sb, repo.dir);
    const originalBytes = sum(clips.map((c) => fs.statSync(c).size));
    const proxyWant = new Map([...proxies].map(([p, i]) => [p, i.proxyBytes] as const));
    const out: NonNullable<ProxyFigures['clone']> = { files: clips.length, originalBytes, proxyBytes: sum(proxyWant.values()), runs: [] };
    const remotes: { name: 'dits::file' | 'dits::s3'; url: string; env?: NodeJS.ProcessEnv }[] = [{ name: 'dits::file', url: `dits::file://${path.join(sb.dir, 'proxy-remote')}` }];
    if (deps.s3) {
      remotes.push({ name: 'dits::s3', url: `dits::s3://${deps.s3.bucket}/proxy-${Date.now()}/proj`, env: { AWS_ACCESS_KEY_ID: deps.s3.accessKeyId, AWS_SECRET_ACCESS_KEY: deps.s3.secretAccessKey, AWS_REGION: 'us-east-1' } });
      await sb.run('git', ['config', '--global', 'dits.s3.endpoint', deps.s3.endpoint], sb.dir);
    }
    for (const rm of remotes) {
      const remoteName = rm.name === 'dits::file' ? 'origin' : 's3';
      await sb.run('git', ['remote', 'add', remoteName, rm.url], repo.dir);
      await sb.run('git', ['push', '-q', remoteName, 'main'], repo.dir, rm.env ? { env: rm.env } : {});
    }
    // The issue's way (clone straight into proxy mode), and the way through commands a user of
    // any clone has (lazy clone, fetch the proxies, switch); each timed as a whole.
    type Step = { args: string[]; inClone: boolean };
    const methods: { name: CloneMethod; steps: (url: string, dir: string) => Step[] }[] = [
      { name: 'clone -c dits.checkoutMode=proxy', steps: (url, dir) => [{ args: ['clone', '-q', '-c', 'dits.checkoutMode=proxy', url, dir], inClone: false }] },
      {
        name: 'lazy clone + fetch-proxy + checkout --mode proxy',
        steps: (url, dir) => [
          { args: ['clone', '-q', '-c', 'dits.fetchMode=lazy', url, dir], inClone: false },
          { args: ['dits', 'fetch-proxy', 'media'], inClone: true },
          { args: ['dits', 'checkout', '--mode', 'proxy', 'media'], inClone: true },
        ],
      },
    ];
    const broken = new Set<CloneMethod>();
    const originalWant = new Map([...repo.files].map(([p, f]) => [p, fs.statSync(f).size] as const));
    for (let r = 0; r < opts.runs; r++) {
      for (const rm of remotes) {
        for (const m of methods) {
          if (broken.has(m.name)) continue;
          const dir = path.join(sb.dir, 'proxy-clone');
          sb.remove(dir);
          await sync(sb);
          deps.s3?.reset();
          try {
            let seconds = 0;
            for (const step of m.steps(rm.url, dir)) seconds += (await sb.run('git', step.args, step.inClone ? dir : sb.dir, rm.env ? { env: rm.env } : {})).seconds;
            const rel = [...proxyWant.keys()][0]!;
            const got = fs.statSync(path.join(dir, rel)).size;
            if (got === originalWant.get(rel)) throw new Error(`it checked out the original (${rel}: ${got} bytes), not the proxy (${proxyWant.get(rel)} bytes)`);
            checkSizes(dir, proxyWant, 'proxies in the working tree');
            await checkClean(sb, dir, 'in proxy mode');
            const run: CloneRun =
              rm.name === 'dits::s3'
                ? { remote: rm.name, method: m.name, measure: 'response bytes read from S3', bytes: deps.s3!.counts().bytesDown, seconds }
                : { remote: rm.name, method: m.name, measure: "the clone's .git/dits", bytes: treeBytes(path.join(dir, '.git', 'dits')), seconds };
            out.runs.push(run);
            log(`  proxy checkout (${m.name}) from ${rm.name} run ${r + 1}: ${run.bytes} B (${((run.bytes / originalBytes) * 100).toFixed(2)}% of ${originalBytes} B of originals), ${seconds.toFixed(2)} s`);
          } catch (e) {
            // this way does not work in this build: said, and the figure rests on the other
            broken.add(m.name);
            skip('clone', `${m.name} from ${rm.name}: ${e instanceof CommandError ? `${e.command} failed (exit ${e.status}): ${e.stderr.trim().split('\n').slice(-4).join(' / ')}` : e instanceof Error ? e.message : String(e)}`);
          }
          sb.remove(dir);
        }
      }
    }
    if (!out.runs.length) throw new Error('no way of checking out proxies worked (see above)');
    res.clone = out;
    sb.remove(repo.dir);
    sb.remove(path.join(sb.dir, 'proxy-remote'));
  });

  // ---- 2. proxy make of one 4K clip against the ffmpeg command line
  await attempt('make', [[cap.make, '`git dits proxy make`']], async () => {
    const clip = (await fourKClips())[0]!;
    const ffmpegPath = (await runProcess('sh', ['-c', 'command -v ffmpeg'], { cwd: sb.dir, env: sb.env })).stdout.trim();
    const ffprobePath = (await runProcess('sh', ['-c', 'command -v ffprobe'], { cwd: sb.dir, env: sb.env })).stdout.trim();
    const wrapDir = sb.freshDir('ffmpeg-wrapper');
    const wrap = writeToolWrappers(wrapDir, { ffmpeg: ffmpegPath, ffprobe: ffprobePath });
    const wrapEnv = { DITS_FFMPEG: wrap.ffmpeg };
    // Untimed first run through the wrappers (also the warm-up): which arguments Dits runs.
    const first = await repoWith(sb, 'proxy-make', [clip]);
    await sb.run('git', makeArgs(cap, []), first.dir, { env: wrapEnv });
    const ditsArgs = findProxyEncode(wrap.calls().filter((c) => c.tool === 'ffmpeg').map((c) => c.args));
    sb.remove(first.dir);
    const probe = await runProcess('ffprobe', ['-v', 'error', '-show_entries', 'format_tags=timecode:stream_tags=timecode', '-of', 'json', clip], { cwd: sb.dir, env: sb.env });
    const tags = JSON.parse(probe.stdout) as { format?: { tags?: { timecode?: string } }; streams?: { tags?: { timecode?: string } }[] };
    const timecode = tags.format?.tags?.timecode ?? tags.streams?.find((s) => s.tags?.timecode)?.tags?.timecode;
    const outFile = path.join(sb.dir, 'reference-proxy.mov');
    // As make-variants builds it for this clip: PCM audio copied, its timecode, every tag kept.
    const built: ProxyEncodeOptions = { input: clip, output: outFile, codec: 'prores_proxy', maxHeight: 1080, audio: 'copy', ...(timecode ? { timecode } : {}), keepAllTags: true };
    const builtArgs = [...RUN_PREFIX, ...buildProxyEncodeArgs(built)];
    // The reference runs exactly what Dits ran when the wrapper saw it; else the builder's.
    const referenceArgs = ditsArgs ? retarget(ditsArgs, clip, outFile) : builtArgs;
    const builtMatchesDits = ditsArgs ? JSON.stringify(normaliseEncodeArgs(ditsArgs)) === JSON.stringify(normaliseEncodeArgs(builtArgs)) : null;
    if (!ditsArgs) res.notes.push('proxy make: the ffmpeg call of Dits was not seen through DITS_FFMPEG; the reference runs buildProxyEncodeArgs\' arguments');
    else if (!builtMatchesDits) res.notes.push(`proxy make: Dits ran other arguments than buildProxyEncodeArgs' defaults; the reference runs Dits' own: ${normaliseEncodeArgs(ditsArgs).join(' ')}`);
    const out: NonNullable<ProxyFigures['make']> = {
      clipBytes: fs.statSync(clip).size,
      kinds: cap.kindsOption ? 'proxy' : 'all kinds (no --kinds option)',
      reference: ditsArgs ? "the arguments Dits ran (seen through DITS_FFMPEG)" : 'buildProxyEncodeArgs',
      builtMatchesDits,
      ditsArgs: ditsArgs ? normaliseEncodeArgs(ditsArgs) : null,
      referenceArgs: normaliseEncodeArgs(referenceArgs),
      dits: [],
      ffmpeg: [],
      ditsBreakdown: [],
    };
    const runFfmpeg = async () => {
      await sync(sb);
      warmFile(clip);
      // through the same wrapper as Dits' ffmpeg, so both sides pay it
      const t = await timed(sb, wrap.ffmpeg, referenceArgs, sb.dir);
      if (!fs.existsSync(outFile) || fs.statSync(outFile).size === 0) throw new Error('the reference ffmpeg run wrote no proxy');
      fs.rmSync(outFile, { force: true });
      out.ffmpeg.push(t);
      return t;
    };
    const runDits = async () => {
      const repo = await repoWith(sb, 'proxy-make', [clip]);
      await sync(sb);
      warmFile(clip);
      wrap.reset();
      // through the wrappers (a shell and two `date` per call, milliseconds): where the time goes
      const t = await timed(sb, 'git', makeArgs(cap, []), repo.dir, { ...sb.env, ...wrapEnv });
      await proxiesOf(sb, repo.dir);
      sb.remove(repo.dir);
      out.dits.push(t);
      out.ditsBreakdown.push(breakdown(t.seconds, wrap.calls()));
      return t;
    };
    for (let r = 0; r < opts.runs; r++) {
      // A/B alternating, so drift of the machine's load falls on both sides.
      let f: CpuRun;
      let d: CpuRun;
      if (r % 2 === 0) {
        f = await runFfmpeg();
        d = await runDits();
      } else {
        d = await runDits();
        f = await runFfmpeg();
      }
      log(`  proxy make run ${r + 1}: ffmpeg ${f.seconds.toFixed(2)} s (${f.cpuSeconds.toFixed(2)} s CPU), git dits proxy make ${d.seconds.toFixed(2)} s (${d.cpuSeconds.toFixed(2)} s CPU)`);
    }
    res.make = out;
    sb.remove(wrapDir);
  });

  // ---- 3. switch 10 files proxy <-> original, both local
  await attempt('switchFiles', [[cap.make, '`git dits proxy make`'], [cap.checkoutMode, '`git dits checkout --mode`']], async () => {
    const files = await ensureSwitchFiles(opts.switchFileBytes, 10, { file: (await fourKClips())[0]!, seconds: opts.clipSeconds }, corpus);
    const repo = await repoWith(sb, 'proxy-switch', files);
    const made = await timed(sb, 'git', [...makeArgs(cap, []), '--jobs', '2'], repo.dir);
    log(`  proxy make of 10 files: ${made.seconds.toFixed(1)} s`);
    const proxies = await proxiesOf(sb, repo.dir);
    const proxyWant = new Map([...proxies].map(([p, i]) => [p, i.proxyBytes] as const));
    const originalWant = new Map([...repo.files].map(([p, f]) => [p, fs.statSync(f).size] as const));
    const out: NonNullable<ProxyFigures['switchFiles']> = { files: files.length, fileBytes: Math.round(sum(originalWant.values()) / files.length), proxyBytes: sum(proxyWant.values()), toProxy: [], toOriginal: [] };
    const to = async (mode: 'proxy' | 'original', timedRun: boolean): Promise<CpuRun> => {
      await sync(sb);
      const t = await timed(sb, 'git', ['dits', 'checkout', '--mode', mode, 'media'], repo.dir);
      checkSizes(repo.dir, mode === 'proxy' ? proxyWant : originalWant, `git dits checkout --mode ${mode}`);
      await checkClean(sb, repo.dir, `after git dits checkout --mode ${mode}`);
      if (timedRun) (mode === 'proxy' ? out.toProxy : out.toOriginal).push(t);
      return t;
    };
    // Untimed round trip first: the first switch to proxy may write the proxies out of the store.
    const w1 = await to('proxy', false);
    const w2 = await to('original', false);
    log(`  switch warm-up: to proxy ${w1.seconds.toFixed(2)} s, to original ${w2.seconds.toFixed(2)} s`);
    for (let r = 0; r < opts.runs; r++) {
      const p = await to('proxy', true);
      const o = await to('original', true);
      log(`  switch run ${r + 1}: to proxy ${p.seconds.toFixed(2)} s (${p.cpuSeconds.toFixed(2)} s CPU), to original ${o.seconds.toFixed(2)} s (${o.cpuSeconds.toFixed(2)} s CPU)`);
    }
    for (const [rel, src] of repo.files) if (!(await sameBytes(sb, path.join(repo.dir, rel), src))) throw new Error(`after switching back, ${rel} differs from the original`);
    res.switchFiles = out;
    sb.remove(repo.dir);
  });

  // ---- 4. the server's worker making a proxy of a big source kept in S3
  await attempt('worker', [[cap.worker, '`git dits worker`'], [deps.s3 !== undefined, 'an S3 server (s3rver)']], async () => {
    res.worker = await workerFigure(opts, deps, (await fourKClips())[0]!, corpus, cap);
  });

  // ---- 5. git status with N files in proxy mode against original mode
  await attempt('status', [[cap.make, '`git dits proxy make`'], [cap.checkoutMode, '`git dits checkout --mode`']], async () => {
    const files = await ensureSmallFiles(opts.statusFiles, corpus);
    const repo = await repoWith(sb, 'proxy-status', files);
    const made = await timed(sb, 'git', [...makeArgs(cap, []), '--jobs', '2'], repo.dir);
    log(`  proxy make of ${files.length} small files: ${made.seconds.toFixed(1)} s`);
    const proxies = await proxiesOf(sb, repo.dir);
    const proxyWant = new Map([...proxies].map(([p, i]) => [p, i.proxyBytes] as const));
    const originalWant = new Map([...repo.files].map(([p, f]) => [p, fs.statSync(f).size] as const));
    const out: NonNullable<ProxyFigures['status']> = { files: files.length, original: [], proxy: [] };
    const REPEATS = 20;
    for (let r = 0; r < opts.runs; r++) {
      for (const mode of ['original', 'proxy'] as const) {
        await sb.run('git', ['dits', 'checkout', '--mode', mode, 'media'], repo.dir);
        checkSizes(repo.dir, mode === 'proxy' ? proxyWant : originalWant, `git dits checkout --mode ${mode}`);
        await checkClean(sb, repo.dir, `${mode} mode`); // also refreshes the index's stat info, as any user's first status
        for (let k = 0; k < REPEATS; k++) {
          const st = await sb.run('git', ['status', '--porcelain'], repo.dir);
          if (st.stdout.trim()) throw new Error(`${mode} mode: git status not clean:\n${st.stdout.slice(0, 2000)}`);
          out[mode].push(st.seconds);
        }
      }
      log(`  status run ${r + 1}: original mode ${out.original.slice(-REPEATS).map((s) => (s * 1000).toFixed(0)).join('/')} ms, proxy mode ${out.proxy.slice(-REPEATS).map((s) => (s * 1000).toFixed(0)).join('/')} ms`);
    }
    res.status = out;
    sb.remove(repo.dir);
  });
  return res;
}

/** Waits for `pattern` on the child's stdout; rejects when it exits first or after `ms`. */
function waitForLine(child: ReturnType<typeof spawn>, pattern: RegExp, ms: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no ${pattern} within ${ms / 1000} s; output: ${text.slice(-2000)}`)), ms);
    const onData = (d: Buffer) => {
      text += d.toString();
      const m = pattern.exec(text);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolve(m);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => {
      text += d.toString();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before ${pattern}: ${text.slice(-2000)}`));
    });
  });
}

async function stop(child: ReturnType<typeof spawn>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

interface JobsAnswer {
  counts: Record<string, number>;
  jobs: { kind: string; state: string; last_error?: string | null }[];
}

/** The server's queue (GET /api/jobs, site admin). */
async function jobs(url: string, token: string): Promise<JobsAnswer> {
  const r = await fetch(`${url}/api/jobs`, { headers: { authorization: `Bearer ${token}` } });
  if (!r.ok) throw new Error(`GET /api/jobs: ${r.status} ${(await r.text()).slice(0, 500)}`);
  return (await r.json()) as JobsAnswer;
}

/**
 * The worker figure: a Dits server keeping content in S3 (s3rver behind the counting
 * proxy) with no workers of its own, a push of a `workerSourceBytes` source (which queues
 * its variants job), then `git dits worker --data DIR` in its own process with its tree
 * sampled (ffmpeg and ffprobe apart) until the queue says the job is done (GET /api/jobs,
 * polled every 2 s), then stopped. The proxy must then be fetchable from the server
 * (`git dits fetch-proxy`): a job done without one is not the figure.
 */
async function workerFigure(opts: ProxyOptions, deps: ProxyDeps, clip: string, corpus: CorpusDeps, cap: Capabilities): Promise<NonNullable<ProxyFigures['worker']>> {
  const { sandbox: sb, log } = deps;
  const s3 = deps.s3!;
  const source = await ensureLongSource(opts.workerSourceBytes, clip, corpus);
  const sourceBytes = fs.statSync(source).size;
  // the server and its workers take the S3 endpoint from the environment
  const s3Env: NodeJS.ProcessEnv = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: s3.endpoint };
  const out: NonNullable<ProxyFigures['worker']> = { sourceBytes, runs: [] };
  for (let r = 0; r < opts.runs; r++) {
    const data = sb.freshDir('proxy-server');
    const storage = `s3://${s3.bucket}/server-${Date.now()}-${r}`;
    const admin = (args: string[]) => sb.run('git', ['dits', 'server', ...args, '--data', data], sb.dir, { env: s3Env });
    await admin(['user', 'add', 'bench', '--admin']);
    await admin(['repo', 'create', 'bench/proxy']);
    await admin(['grant', 'bench', 'bench/proxy', 'write']);
    const token = (JSON.parse((await admin(['token', 'create', 'bench', 'bench', '--json'])).stdout) as { token: string }).token;
    const env = { ...sb.env, ...s3Env, DITS_TOKEN: token };
    const server = spawn('git-dits', ['serve', '--data', data, '--storage', storage, '--port', '0', '--quiet', ...(cap.serveWorkers ? ['--workers', '0'] : [])], { cwd: sb.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let worker: ReturnType<typeof spawn> | null = null;
    try {
      const url = (await waitForLine(server, /listening on (http:\/\/\S+)/, 60_000))[1]!;
      const repo = await repoWith(sb, 'proxy-worker-src', [source]);
      await sb.run('git', ['remote', 'add', 'origin', `dits::${url}/bench/proxy`], repo.dir, { env });
      await sb.run('git', ['push', '-q', 'origin', 'main'], repo.dir, { env });
      log(`  worker run ${r + 1}: pushed ${sourceBytes} B through the server to S3; starting git dits worker`);
      const started = Date.now();
      worker = spawn('git-dits', ['worker', '--data', data, '--storage', storage], { cwd: sb.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let workerOut = '';
      const keep = (d: Buffer) => (workerOut = (workerOut + d.toString()).slice(-4000));
      worker.stdout!.on('data', keep);
      worker.stderr!.on('data', keep);
      const watch = watchTreeMemory(worker.pid!, opts.memoryIntervalMs, (name) => name === 'ffmpeg' || name === 'ffprobe');
      let memory: TreeMemoryPeak;
      let seconds: number;
      try {
        const deadline = Date.now() + Math.max(600_000, (sourceBytes / 2 ** 20) * 2_000);
        for (;;) {
          if (worker.exitCode !== null) throw new Error(`git dits worker exited (${worker.exitCode}) before its job was done: ${workerOut}`);
          const q = await jobs(url, token);
          // the variants job: a manifest over 1 MiB goes straight to S3 and first has an
          // 'inspect' job of its own (done in a second), which is not the figure
          if (q.jobs.some((j) => j.kind === 'variants' && j.state === 'done')) break;
          const bad = q.jobs.find((j) => j.state === 'failed' || j.state === 'dead');
          if (bad) throw new Error(`the worker's job ${bad.state}: ${bad.last_error ?? '(no error kept)'}`);
          if (Date.now() > deadline) throw new Error(`the job was not done after ${((Date.now() - started) / 1000).toFixed(0)} s (queue: ${JSON.stringify(q.counts)}): ${workerOut}`);
          await new Promise((res) => setTimeout(res, 2000));
        }
      } finally {
        memory = watch.stop();
        seconds = (Date.now() - started) / 1000;
      }
      const measured = `worker tree without ffmpeg ${mib(memory.peakSumRssBytes)}, ffmpeg ${mib(memory.excluded?.peakSumRssBytes ?? 0)}, ${seconds.toFixed(0)} s`;
      const f = JSON.parse((await sb.run('git', ['dits', 'fetch-proxy', '--json'], repo.dir, { env })).stdout) as { local: string[] };
      if (f.local.length === 0) throw new Error(`the worker's job was done (${measured}) but the server has no proxy of the source: this build's job makes none`);
      out.runs.push({ seconds, memory });
      log(`  worker run ${r + 1}: job done, proxy fetched; ${measured}`);
      sb.remove(repo.dir);
    } finally {
      if (worker) await stop(worker);
      await stop(server);
      sb.remove(data);
    }
  }
  return out;
}
