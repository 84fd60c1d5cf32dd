/**
 * Issue 17's thaw and frozen-checkout figures, on real runs: real git, real `git dits`
 * processes, s3rver (behind the counting proxy) with the Glacier front
 * (src/transfer/testing/glacier-front.ts, in this process) before it, all on loopback.
 *
 * - thaw of one file out of 1,000: the RestoreObject requests the front received, and the
 *   packs it holds a restore for, against the packs that file's chunks are in (read from
 *   the remote's pack indexes, not from Dits' own plan);
 * - thaw of a 2-minute range of a 1-hour clip: packs restored (both stages: the container's
 *   index first when it is frozen too, then the range) against the clip's packs;
 * - cost estimate: the thaw's `--json` estimate against prices.ts `restoreCost` on the
 *   bytes and RestoreObject requests the front counted;
 * - frozen checkout: `git dits pull` in a fresh lazy clone whose some files' packs are in
 *   DEEP_ARCHIVE: whole-process wall and CPU time, its exit code and frozen files, and
 *   every other file compared byte for byte.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import type { Sandbox } from './sandbox.js';
import { startS3Loopback } from './s3-loopback.js';
import { cachedMedia } from './media-corpus.js';
import { run as runProcess } from './exec.js';
import { startGlacierFront, type GlacierFront } from '../../src/transfer/testing/glacier-front.js';
import type { S3Storage } from '../../src/transfer/s3-storage.js';
import { decodePackIndex } from '../../src/remote/content/pack-index.js';
import { manifestKey, parsePackKey, PACKS_PREFIX } from '../../src/remote/content/layout.js';
import { Manifest } from '../../src/manifest/manifest.js';
import { parsePointer } from '../../src/manifest/pointer.js';
import { AWS_US_EAST_1, restoreCost } from '../../src/tier/prices.js';
import type { RetrievalTier } from '../../src/tier/tiers.js';

/**
 * The S3 client, loaded when the tier section runs, not when the bench starts: loading
 * @aws-sdk/client-s3 into this process made the counting proxy of s3-loopback.ts, which
 * runs here, spend its time in V8's full collections (2.5-3.3 CPU s to pass 1 GiB,
 * against 0.9-1.4 s without it: src/mount/README.md), a cost every earlier section's S3
 * figures paid on the machine's 2 cores. The sections run in SECTIONS order, tier after
 * remote, many and proxy.
 */
export function loadS3Storage(): Promise<typeof import('../../src/transfer/s3-storage.js')> {
  return import('../../src/transfer/s3-storage.js');
}

export interface ThawFileResult {
  files: number;
  fileBytes: number;
  /** packs on the remote */
  packsTotal: number;
  path: string;
  /** packs holding a chunk of the file, from the remote's .idx files */
  filePacks: number;
  /** RestoreObject requests the front received, and those that started a restore */
  restoreRequests: number;
  restoresStarted: number;
  /** packs the front holds a restore for afterwards */
  restoredPacks: number;
  /** restored packs that are not the file's, and file's packs not restored */
  extra: number;
  missing: number;
}

export interface ThawRangeResult {
  clip: { seconds: number; bytes: number; size: string; fps: number; gopSeconds: number; videoKbps: number; moovAtEnd: boolean };
  settings: Record<string, string>;
  range: string;
  packsTotal: number;
  /** packs holding a chunk of the clip (pack indexes) */
  clipPacks: number;
  /** `git dits thaw --yes` runs it took (2 when the index was frozen: index first, then the range) */
  stages: number;
  indexPacks: number;
  /** the moov box (from the file's top-level boxes) and the packs holding the chunks it overlaps: what an exact index stage would restore */
  moov: { offset: number; bytes: number; packs: number };
  restoreRequests: number;
  restoresStarted: number;
  restoredPacks: number;
  /** restored packs that hold none of the clip's chunks */
  foreign: number;
}

export interface CostCheck {
  what: string;
  storageClass: string;
  tier: string;
  /** what the thaw's --json estimate said */
  estimate: { bytes: number; requests: number; total: number };
  /** restoreCost on the bytes of the packs the front restored and the RestoreObject requests it counted */
  expected: { bytes: number; requests: number; total: number };
}

export interface FrozenCheckoutResult {
  files: number;
  fileBytes: number;
  frozenFiles: number;
  /** the files whose packs are in DEEP_ARCHIVE */
  frozenNames: string[];
  runs: { seconds: number; cpuSeconds: number; exitCode: number; reported: string[]; exact: number; wrong: string[] }[];
}

export interface ThawFiguresResult {
  thawFile?: ThawFileResult | null;
  thawRange?: ThawRangeResult | null;
  cost?: CostCheck[] | null;
  frozenCheckout?: FrozenCheckoutResult | null;
}

interface Env {
  sb: Sandbox;
  front: GlacierFront;
  bucket: string;
  env: NodeJS.ProcessEnv;
  storage(prefix: string): S3Storage;
  log: (s: string) => void;
}

const DAYS = 7;

/** A command whose non-zero exit is a result (pull's 3), timed under /usr/bin/time. */
function runStatus(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeFile: string): Promise<{ status: number; stdout: string; stderr: string; seconds: number; cpuSeconds: number }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', '%e %U %S', '-o', timeFile, cmd, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    let seconds = 0;
    child.on('exit', () => (seconds = Number(process.hrtime.bigint() - started) / 1e9));
    child.on('close', (status) => {
      const [, u, s] = fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
      resolve({ status: status ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), seconds, cpuSeconds: u! + s! });
    });
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** chunk id (hex) -> pack ids holding it, from every .idx under the prefix; and pack sizes. */
async function packIndexes(storage: S3Storage): Promise<{ chunkPacks: Map<string, string[]>; sizes: Map<string, number> }> {
  const chunkPacks = new Map<string, string[]>();
  const sizes = new Map<string, number>();
  for await (const o of storage.list(PACKS_PREFIX)) {
    const k = parsePackKey(o.key);
    if (k?.kind === 'pack') sizes.set(k.packId, o.size);
    if (k?.kind !== 'idx') continue;
    for (const e of decodePackIndex(await storage.getBuffer(o.key))) {
      const id = e.idRaw.toString('hex');
      const l = chunkPacks.get(id) ?? [];
      l.push(k.packId);
      chunkPacks.set(id, l);
    }
  }
  return { chunkPacks, sizes };
}

/** The packs holding a chunk of the file at `rel` in `repo`'s HEAD (its pointer -> manifest on the remote -> chunk ids -> pack indexes). */
async function packsOfFile(e: Env, repo: string, rel: string, storage: S3Storage, chunkPacks: Map<string, string[]>): Promise<Set<string>> {
  const text = (await e.sb.run('git', ['cat-file', 'blob', `HEAD:${rel}`], repo, { env: { GIT_NO_REPLACE_OBJECTS: '1' } })).stdout;
  const p = parsePointer(text);
  if (!p) throw new Error(`${rel}: HEAD holds no Dits pointer`);
  const m = Manifest.parse(await storage.getBuffer(manifestKey(p.manifest)));
  const out = new Set<string>();
  for (let i = 0; i < m.chunkCount; i++) {
    const packs = chunkPacks.get(m.idRawAt(i).toString('hex'));
    if (!packs?.length) throw new Error(`${rel}: chunk ${i} is in no pack index`);
    for (const x of packs) out.add(x);
  }
  return out;
}

/** The packs holding the chunks of `rel` that overlap bytes [start, end). */
async function packsOfBytes(e: Env, repo: string, rel: string, storage: S3Storage, chunkPacks: Map<string, string[]>, start: number, end: number): Promise<Set<string>> {
  const p = parsePointer((await e.sb.run('git', ['cat-file', 'blob', `HEAD:${rel}`], repo, { env: {} })).stdout)!;
  const m = Manifest.parse(await storage.getBuffer(manifestKey(p.manifest)));
  const out = new Set<string>();
  let at = 0;
  for (let i = 0; i < m.chunkCount; i++) {
    const len = m.lengthAt(i);
    if (at < end && at + len > start) for (const x of chunkPacks.get(m.idRawAt(i).toString('hex')) ?? []) out.add(x);
    at += len;
  }
  return out;
}

/** The top-level moov box of an MP4 file: offset and size. */
function moovOf(file: string): { offset: number; bytes: number } {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const h = Buffer.alloc(16);
    for (let off = 0; off + 8 <= size; ) {
      fs.readSync(fd, h, 0, 16, off);
      let n = h.readUInt32BE(0);
      if (n === 1) n = Number(h.readBigUInt64BE(8));
      if (n === 0) n = size - off;
      if (h.toString('latin1', 4, 8) === 'moov') return { offset: off, bytes: n };
      if (n < 8) break;
      off += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  throw new Error(`${file}: no top-level moov box`);
}

async function freezeAll(e: Env, prefix: string, packIds: Iterable<string>): Promise<void> {
  for (const id of packIds) e.front.setClass(`${prefix}/${PACKS_PREFIX}${id}.pack`, 'DEEP_ARCHIVE', e.bucket);
}

function restoredOf(e: Env, prefix: string, packIds: Iterable<string>): Set<string> {
  const out = new Set<string>();
  for (const id of packIds) if (e.front.restoreOf(`${prefix}/${PACKS_PREFIX}${id}.pack`, e.bucket)) out.add(id);
  return out;
}

interface ThawJson {
  files: { path: string; packs: string[]; stage?: string }[];
  packs: { packId: string; size: number; storageClass: string; state: string }[];
  estimates: { storageClass: string; tier: string; bytes: number; requests: number; total: number }[];
}

async function initRepo(e: Env, dir: string, config: Record<string, string>, track: string): Promise<(args: string[]) => Promise<string>> {
  const git = async (args: string[]) => (await e.sb.run('git', args, dir, { env: e.env })).stdout;
  await git(['init', '-q', '.']);
  for (const [k, v] of Object.entries(config)) await git(['config', k, v]);
  await git(['dits', 'init']);
  await git(['dits', 'track', track]);
  return git;
}

async function lazyClone(e: Env, url: string, dest: string, config: Record<string, string>): Promise<void> {
  const cfg = Object.entries({ ...config, 'dits.s3.endpoint': e.front.endpoint, 'dits.fetchMode': 'lazy' }).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
  await e.sb.run('git', ['clone', '-q', ...cfg, url, dest], path.dirname(dest), { env: e.env });
}

function costChecks(what: string, est: ThawJson['estimates'], restoredBytes: number, requests: number): CostCheck[] {
  return est.map((x) => {
    const r = restoreCost(AWS_US_EAST_1, x.storageClass, x.tier as RetrievalTier, restoredBytes, requests, DAYS);
    return { what, storageClass: x.storageClass, tier: x.tier, estimate: { bytes: x.bytes, requests: x.requests, total: x.total }, expected: { bytes: r.bytes, requests: r.requests, total: r.total } };
  });
}

/** One file out of 1,000 (32 KiB each, small chunks, 128 KiB packs: a file's chunks in one or two packs). */
async function thawFileFigure(e: Env, cost: CostCheck[]): Promise<ThawFileResult> {
  const prefix = `thaw1-${Date.now()}`;
  const config = { 'dits.chunkMin': '1024', 'dits.chunkAvg': '4096', 'dits.chunkMax': '16384', 'dits.smudgeInlineMax': '1k', 'dits.packSize': '128k' };
  const files = 1000;
  const fileBytes = 32 * 1024;
  const src = e.sb.freshDir('tier-thaw1-src');
  const git = await initRepo(e, src, { ...config, 'dits.s3.endpoint': e.front.endpoint, 'dits.tier.provider': 'aws' }, '*.bin');
  for (let i = 0; i < files; i++) fs.writeFileSync(path.join(src, `f${String(i).padStart(4, '0')}.bin`), randomBytes(fileBytes));
  await git(['add', '.']);
  await git(['commit', '-q', '-m', '1000 files']);
  const url = `dits::s3://${e.bucket}/${prefix}`;
  await git(['remote', 'add', 'origin', url]);
  await git(['push', '-q', 'origin', 'main']);
  const storage = e.storage(prefix);
  const { chunkPacks, sizes } = await packIndexes(storage);
  // the file whose chunks span the most packs (a file in one pack would make "exactly" easy)
  let pick = '';
  let filePacks = new Set<string>();
  for (const i of [100, 250, 500, 750, 900]) {
    const rel = `f${String(i).padStart(4, '0')}.bin`;
    const ps = await packsOfFile(e, src, rel, storage, chunkPacks);
    if (ps.size > filePacks.size) [pick, filePacks] = [rel, ps];
  }
  const dest = path.join(e.sb.freshDir('tier-thaw1-clone'), 'c');
  await lazyClone(e, url, dest, { ...config, 'dits.tier.provider': 'aws' });
  await freezeAll(e, prefix, sizes.keys());
  e.front.resetCounts();
  const plan = JSON.parse((await e.sb.run('git', ['dits', 'thaw', '--json', '--dry-run', pick], dest, { env: e.env })).stdout) as ThawJson;
  await e.sb.run('git', ['dits', 'thaw', '--json', '--yes', pick], dest, { env: e.env });
  const counts = { ...e.front.counts };
  const restored = restoredOf(e, prefix, sizes.keys());
  const restoredBytes = [...restored].reduce((s, id) => s + sizes.get(id)!, 0);
  cost.push(...costChecks(`thaw of ${pick}`, plan.estimates, restoredBytes, counts.restoresStarted));
  const r: ThawFileResult = {
    files,
    fileBytes,
    packsTotal: sizes.size,
    path: pick,
    filePacks: filePacks.size,
    restoreRequests: counts.restores,
    restoresStarted: counts.restoresStarted,
    restoredPacks: restored.size,
    extra: [...restored].filter((x) => !filePacks.has(x)).length,
    missing: [...filePacks].filter((x) => !restored.has(x)).length,
  };
  e.log(`tier thaw of one file: ${pick} in ${r.filePacks} pack(s) of ${r.packsTotal}; ${r.restoreRequests} RestoreObject (${r.restoresStarted} started), ${r.restoredPacks} restored, ${r.extra} extra, ${r.missing} missing`);
  return r;
}

/** A long H.264 clip: 160x90, 25 fps, a keyframe every 2 s, ~100 kbit/s video, no audio, moov at the end (ffmpeg's default). */
export const LONG_CLIP = { size: '160x90', fps: 25, gopSeconds: 2, videoKbps: 100 } as const;

async function ensureLongClip(dir: string, seconds: number, e: Env): Promise<string> {
  const c = LONG_CLIP;
  const file = path.join(dir, `tier-long-${seconds}s-${c.size}-${c.fps}fps-g${c.gopSeconds}-${c.videoKbps}k.mp4`);
  return cachedMedia(file, { dir, env: e.sb.env, log: e.log }, `a ${seconds} s low-resolution H.264 clip`, (tmp) =>
    runProcess(
      'ffmpeg',
      ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${c.size}:rate=${c.fps}`, '-t', String(seconds), '-c:v', 'libx264', '-preset', 'ultrafast', '-g', String(c.fps * c.gopSeconds), '-b:v', `${c.videoKbps}k`, '-maxrate', `${c.videoKbps}k`, '-bufsize', `${2 * c.videoKbps}k`, '-pix_fmt', 'yuv420p', tmp],
      { cwd: dir, env: e.sb.env },
    ).then(() => undefined),
  );
}

async function thawRangeFigure(e: Env, corpusDir: string, cost: CostCheck[]): Promise<ThawRangeResult> {
  const seconds = 3600;
  const clipFile = await ensureLongClip(corpusDir, seconds, e);
  const bytes = fs.statSync(clipFile).size;
  const prefix = `thaw-range-${Date.now()}`;
  const settings = { 'dits.chunkMin': '16k', 'dits.chunkAvg': '64k', 'dits.chunkMax': '256k', 'dits.packSize': '512k' };
  const src = e.sb.freshDir('tier-range-src');
  const git = await initRepo(e, src, { ...settings, 'dits.s3.endpoint': e.front.endpoint, 'dits.tier.provider': 'aws' }, '*.mp4');
  fs.copyFileSync(clipFile, path.join(src, 'clip.mp4'));
  await git(['add', '.']);
  await git(['commit', '-q', '-m', 'clip']);
  const url = `dits::s3://${e.bucket}/${prefix}`;
  await git(['remote', 'add', 'origin', url]);
  await git(['push', '-q', 'origin', 'main']);
  const storage = e.storage(prefix);
  const { chunkPacks, sizes } = await packIndexes(storage);
  const clipPacks = await packsOfFile(e, src, 'clip.mp4', storage, chunkPacks);
  const moovBox = moovOf(clipFile);
  const moovPacks = await packsOfBytes(e, src, 'clip.mp4', storage, chunkPacks, moovBox.offset, moovBox.offset + moovBox.bytes);
  const dest = path.join(e.sb.freshDir('tier-range-clone'), 'c');
  await lazyClone(e, url, dest, { ...settings, 'dits.tier.provider': 'aws' });
  await freezeAll(e, prefix, sizes.keys());
  e.front.resetCounts();
  const range = '00:10:00-00:12:00';
  let stages = 0;
  let indexPacks = 0;
  const estimates: ThawJson['estimates'][] = [];
  const restoredBefore = new Set<string>();
  for (;;) {
    const plan = JSON.parse((await e.sb.run('git', ['dits', 'thaw', '--range', range, '--json', '--dry-run', 'clip.mp4'], dest, { env: e.env })).stdout) as ThawJson;
    if (!plan.packs.some((p) => p.state === 'frozen')) break;
    if (++stages > 3) throw new Error('thaw --range: still frozen packs after 3 stages');
    const isIndex = plan.files.some((f) => f.stage === 'index');
    const before = e.front.counts.restoresStarted;
    await e.sb.run('git', ['dits', 'thaw', '--range', range, '--json', '--yes', 'clip.mp4'], dest, { env: e.env });
    const started = e.front.counts.restoresStarted - before;
    const now = restoredOf(e, prefix, sizes.keys());
    const bytesNow = [...now].filter((x) => !restoredBefore.has(x)).reduce((s, id) => s + sizes.get(id)!, 0);
    cost.push(...costChecks(`thaw --range ${range}, stage ${stages}${isIndex ? ' (container index)' : ''}`, plan.estimates, bytesNow, started));
    estimates.push(plan.estimates);
    if (isIndex) indexPacks += started;
    for (const x of now) restoredBefore.add(x);
    e.front.finishRestores();
  }
  const counts = { ...e.front.counts };
  const restored = restoredOf(e, prefix, sizes.keys());
  const r: ThawRangeResult = {
    clip: { seconds, bytes, size: LONG_CLIP.size, fps: LONG_CLIP.fps, gopSeconds: LONG_CLIP.gopSeconds, videoKbps: LONG_CLIP.videoKbps, moovAtEnd: true },
    settings,
    range,
    packsTotal: sizes.size,
    clipPacks: clipPacks.size,
    stages,
    indexPacks,
    moov: { ...moovBox, packs: moovPacks.size },
    restoreRequests: counts.restores,
    restoresStarted: counts.restoresStarted,
    restoredPacks: restored.size,
    foreign: [...restored].filter((x) => !clipPacks.has(x)).length,
  };
  e.log(`tier thaw of a range: ${r.restoredPacks} of ${r.clipPacks} packs restored in ${stages} stage(s) (${indexPacks} for the index; the moov, ${moovBox.bytes} bytes, is in ${moovPacks.size}); ${r.restoreRequests} RestoreObject`);
  return r;
}

/** 16 files of 512 KiB, the first 4 pushed alone so their packs hold nothing else; those packs to DEEP_ARCHIVE. */
async function frozenCheckoutFigure(e: Env, runs: number): Promise<FrozenCheckoutResult> {
  const prefix = `frozen-${Date.now()}`;
  const config = { 'dits.packSize': '1M' };
  const files = 16;
  const frozenFiles = 4;
  const fileBytes = 512 * 1024;
  const src = e.sb.freshDir('tier-frozen-src');
  const git = await initRepo(e, src, { ...config, 'dits.s3.endpoint': e.front.endpoint, 'dits.tier.provider': 'aws' }, '*.bin');
  const url = `dits::s3://${e.bucket}/${prefix}`;
  await git(['remote', 'add', 'origin', url]);
  const want = new Map<string, string>();
  const storage = e.storage(prefix);
  const packIds = async () => new Set([...(await packIndexes(storage)).sizes.keys()]);
  const writeGroup = async (from: number, to: number, msg: string) => {
    for (let i = from; i < to; i++) {
      const b = randomBytes(fileBytes);
      const name = `${i < frozenFiles ? 'old' : 'new'}${String(i).padStart(2, '0')}.bin`;
      fs.writeFileSync(path.join(src, name), b);
      want.set(name, sha(b));
    }
    await git(['add', '.']);
    await git(['commit', '-q', '-m', msg]);
    await git(['push', '-q', 'origin', 'main']);
  };
  await writeGroup(0, frozenFiles, 'old');
  const oldPacks = await packIds();
  await writeGroup(frozenFiles, files, 'new');
  await freezeAll(e, prefix, oldPacks);
  const frozenNames = [...want.keys()].filter((n) => n.startsWith('old')).sort();
  const out: FrozenCheckoutResult = { files, fileBytes, frozenFiles, frozenNames, runs: [] };
  const timeFile = path.join(e.sb.freshDir('tier-frozen-time'), 'time');
  for (let i = 0; i < runs; i++) {
    const dest = path.join(e.sb.freshDir(`tier-frozen-clone${i}`), 'c');
    await lazyClone(e, url, dest, { ...config, 'dits.tier.provider': 'aws' });
    const r = await runStatus('git', ['dits', 'pull', '--json'], dest, { ...e.sb.env, ...e.env }, timeFile);
    let reported: string[] = [];
    try {
      const j = JSON.parse(r.stdout) as { frozen: { files: { path: string }[] } | null };
      reported = (j.frozen?.files ?? []).map((f) => f.path).sort();
    } catch {
      throw new Error(`git dits pull --json printed no JSON (exit ${r.status}): ${r.stderr.slice(-2000)}`);
    }
    let exact = 0;
    const wrong: string[] = [];
    for (const [name, h] of want) {
      if (frozenNames.includes(name)) continue;
      const f = path.join(dest, name);
      if (fs.existsSync(f) && sha(fs.readFileSync(f)) === h) exact++;
      else wrong.push(name);
    }
    // the frozen ones: still pointers, never half-written
    for (const name of frozenNames) if (fs.statSync(path.join(dest, name)).size >= 1024) wrong.push(name);
    out.runs.push({ seconds: r.seconds, cpuSeconds: r.cpuSeconds, exitCode: r.status, reported, exact, wrong });
    e.log(`tier frozen checkout: git dits pull ${r.seconds.toFixed(2)} s wall, ${r.cpuSeconds.toFixed(2)} s CPU, exit ${r.status}, frozen reported ${reported.join(' ')}; ${exact} other files exact, wrong: ${wrong.join(' ') || 'none'}`);
  }
  return out;
}

export async function runThawFigures(
  figures: { thawFile: boolean; thawRange: boolean; cost: boolean; frozenCheckout: boolean },
  runs: number,
  deps: { sandbox: Sandbox; repoRoot: string; corpusDir: string; log: (s: string) => void },
): Promise<ThawFiguresResult> {
  const sb = deps.sandbox;
  const s3 = await startS3Loopback({ directory: sb.freshDir('s3rver-thaw'), bucket: 'bench', repoRoot: deps.repoRoot });
  const front = await startGlacierFront(s3.endpoint, { restoreDelayMs: 60_000 });
  const creds = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
  const { S3Storage } = await loadS3Storage();
  const e: Env = {
    sb,
    front,
    bucket: s3.bucket,
    env: { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_REGION: 'us-east-1' },
    storage: (prefix) => new S3Storage({ bucket: s3.bucket, prefix, endpoint: front.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: creds, tier: { provider: 'aws' } }),
    log: deps.log,
  };
  const out: ThawFiguresResult = {};
  const cost: CostCheck[] = [];
  try {
    if (figures.thawFile || figures.cost) out.thawFile = await thawFileFigure(e, cost);
    if (figures.thawRange || figures.cost) out.thawRange = await thawRangeFigure(e, deps.corpusDir, cost);
    if (figures.cost) out.cost = cost;
    if (figures.frozenCheckout) out.frozenCheckout = await frozenCheckoutFigure(e, runs);
    if (!figures.thawFile) delete out.thawFile;
    if (!figures.thawRange) delete out.thawRange;
    return out;
  } finally {
    await front.close();
    await s3.close();
  }
}
