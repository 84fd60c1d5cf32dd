/**
 * `git dits render <project> --out master.mov`: a cuts-only conform of a timeline from the
 * original media (issue 16, "Render on demand").
 *
 * Read, plan, apply: the project's edit list is read (src/media/nle/timeline.ts) and anything
 * a cuts-only render cannot do is refused, listed with where it is, before anything is
 * fetched; the clips' media are resolved to tracked files as `git dits deps` does; only
 * those files are fetched when they are still pointers (the same path as `git dits pull`);
 * ffprobe says what each file is; the plan (src/media/conform.ts) puts every segment on
 * frames; ffmpeg encodes once into a temporary name beside the output, renamed when done.
 * `--dry-run` and `--json` print the plan without fetching or encoding.
 */
import fs from 'node:fs';
import path from 'node:path';
import { findRepo, requireInitialised, type RepoPaths } from '../../git/repo.js';
import { runGit } from '../../git/exec.js';
import { listIndexPointers } from '../../git/pointers.js';
import { DitsUserError } from '../../errors.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { contentPresent } from '../../store/materialize.js';
import { readWorktreePointer } from '../../worktree/materialize-worktree.js';
import { resolveReferences, type ResolvedReference } from '../../media/nle/index.js';
import { parseTimeline, type Timeline, type TimelineClip, type UnsupportedItem } from '../../media/nle/timeline.js';
import { formatRate, parseRate, type Rat } from '../../media/nle/rational-time.js';
import { formatTimecode, parseTimecode } from '../../media/timecode.js';
import { type ConformSource, framesToSeconds, planConform } from '../../media/conform.js';
import { finishCheckout } from '../finish-checkout.js';
import { err, formatBytes, out, printJson, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';

const CODECS = ['prores_hq', 'prores', 'dnxhr_hq', 'h264', 'ffv1'] as const;
type Codec = (typeof CODECS)[number];

/**
 * Segments per ffmpeg run. ffmpeg opens every input at the start and keeps it (demuxer,
 * decoder, frame pools) until the run ends: measured with 1080p ProRes 422 HQ sources, peak
 * RSS 203 MB with 4 segments, 350 MB with 8, 947 MB with 24, 3.6 GB with 96 (about 37 MB
 * each, four times that at 4K). Passes of 8 keep it near 350 MB whatever the cut count (96
 * segments: 360 MB and 36.7 CPU s in passes, against 3.6 GB and 38.6 CPU s in one run).
 */
const DEFAULT_PASS_SIZE = 8;

const renderOptions = {
  out: { type: 'string', short: 'o', value: '<file>', description: 'the master to write (.mov, .mkv; .mp4 for h264)' },
  codec: { type: 'string', value: '<codec>', default: 'prores_hq', description: `video codec of the master: ${CODECS.join(', ')}` },
  sequence: { type: 'string', value: '<name>', description: 'the project (FCPXML) or sequence (XML) to render when the file holds several' },
  fps: { type: 'string', value: '<rate>', description: 'frame rate of an EDL (25, 24000/1001, 29.97); default: FCM DROP FRAME means 29.97, else the first source\'s rate' },
  'pass-size': { type: 'string', value: '<n>', default: String(DEFAULT_PASS_SIZE), description: 'segments per ffmpeg pass (each is one open decoder); a longer timeline is rendered in passes joined without re-encoding' },
  force: { type: 'boolean', short: 'f', description: 'overwrite the output file if it exists' },
  'dry-run': { type: 'boolean', short: 'n', description: 'print the plan (segments, files needed, bytes to fetch); fetch and encode nothing' },
  json: { type: 'boolean', description: 'print the plan (with --dry-run) or the result as JSON' },
} as const satisfies OptionTable;

const render: Command = {
  summary: 'Render a cuts-only timeline (FCPXML, Premiere/FCP7 XML, EDL) from the original media, fetching only the files it uses',
  usage: `git dits render <project.fcpxml|.xml|.edl> --out <master.mov> [--codec <codec>] [--dry-run] [--json]

  The timeline's clips are conformed from the original files the project references (resolved to
  tracked files as \`git dits deps\` does); files still pointers are fetched first, and only those.
  Cuts only: effects and filters, speed changes, transitions, overlapping video tracks, titles and
  generators, compound clips and audio not cut with its video are refused, each listed with its
  record timecode. Gaps become black and silence. The master is written to a temporary name
  beside --out and renamed when complete.`,
  options: renderOptions,
  async run(args, ctx: CliContext) {
    const { values, positionals } = parseOptions(args, renderOptions, { positionals: true });
    const project = positionals[0];
    if (!project || positionals.length > 1) {
      throw new DitsUserError('bad-usage', project ? `one project at a time (got ${positionals.length})` : 'name a project file', { hint: 'git dits render edit/cut.fcpxml --out master.mov', exitCode: 2 });
    }
    const dryRun = values['dry-run'] === true;
    if (!values.out && !dryRun) throw new DitsUserError('bad-usage', 'say where to write the master: --out <file>', { hint: 'git dits render edit/cut.fcpxml --out master.mov (or --dry-run to see the plan)', exitCode: 2 });
    const codec = (values.codec ?? 'prores_hq') as Codec;
    if (!CODECS.includes(codec)) throw new DitsUserError('bad-option-value', `--codec ${codec}: not a master codec`, { hint: `one of ${CODECS.join(', ')}`, exitCode: 2 });
    let fps: Rat | undefined;
    if (values.fps !== undefined) {
      fps = parseRate(values.fps);
      if (!fps) throw new DitsUserError('bad-option-value', `--fps ${values.fps}: not a frame rate`, { hint: 'e.g. --fps 25, --fps 24000/1001, --fps 29.97', exitCode: 2 });
    }
    const passSize = Number(values['pass-size'] ?? DEFAULT_PASS_SIZE);
    if (!Number.isInteger(passSize) || passSize < 1) throw new DitsUserError('bad-option-value', `--pass-size ${values['pass-size']}: not a whole number of segments`, { hint: 'e.g. --pass-size 24', exitCode: 2 });
    const outFile = values.out ? path.resolve(ctx.cwd, values.out) : undefined;
    const container = outFile ? containerOf(outFile, codec) : 'mov';

    const repo = await findRepo(ctx.cwd);
    requireInitialised(repo);
    const { rel, name, bytes } = readProject(repo, ctx.cwd, project);
    let timeline = parseTimeline(name, bytes, { frameRate: fps, sequence: values.sequence });
    if (timeline.unsupported.length) return refuse(ctx, rel, timeline.unsupported, values.json === true);
    if (timeline.clips.length === 0) throw new DitsUserError('render-empty', `${rel}: the timeline has no clips to render`);

    // -- the media: resolved as `git dits deps` does, then which are still pointers
    const ls = await runGit(['ls-files', '-z'], { cwd: repo.workTree });
    const tracked = ls.stdout.toString('utf8').split('\0').filter(Boolean);
    const dir = path.posix.dirname(rel);
    const resolved = resolveReferences(timeline.clips.map((c) => c.reference), tracked, dir === '.' ? '' : dir);
    const pathOfClip = new Map<TimelineClip, string>();
    const missing: string[] = [];
    timeline.clips.forEach((c, i) => {
      const r = resolved[i]!;
      if (r.resolvedPath) pathOfClip.set(c, r.resolvedPath);
      else missing.push(`${c.label}: ${r.reference.path}${describeMissing(r)}`);
    });
    if (missing.length) {
      throw new DitsUserError('render-media-missing', `${rel}: ${missing.length} clip(s) use media that is not in the repository:\n  ${missing.join('\n  ')}`, {
        hint: `add the media (git add / git dits add), or relink the clips in the editor; \`git dits deps ${rel}\` lists what the project references`,
      });
    }
    const files = [...new Set(pathOfClip.values())];
    const need = inspectFiles(repo, files);
    await refuseNonOriginals(repo, need);

    if (dryRun) return printPlan(ctx, rel, timeline, pathOfClip, need, values.json === true);
    if (!fs.existsSync(path.dirname(outFile!))) throw new DitsUserError('no-such-directory', `${path.dirname(values.out!)}: no such directory`, { hint: 'create it first, or name another --out' });
    if (files.some((f) => path.join(repo.workTree, f) === outFile)) throw new DitsUserError('output-is-source', `--out ${values.out} is one of the timeline's sources`, { hint: 'name another --out' });
    if (fs.existsSync(outFile!) && !values.force) {
      throw new DitsUserError('output-exists', `${values.out} exists`, { hint: 'name another --out, or add --force to overwrite it' });
    }

    // ffmpeg is loaded only here, and looked for before anything is downloaded
    const { openFfmpeg, MASTER_CODECS, buildConformArgs, buildConcatList, buildJoinArgs } = await import('../../media/ffmpeg.js');
    const ff = await openFfmpeg({ env: ctx.env });

    // -- fetch (only the files this timeline uses), as `git dits pull <paths>` does
    const pointers = need.filter((n) => n.pointer);
    if (pointers.length) {
      const fetchBytes = pointers.filter((n) => !n.local).reduce((s, n) => s + n.size, 0);
      err(ctx, `Fetching ${pointers.length} of ${files.length} file(s) the timeline uses (${formatBytes(fetchBytes)} to download)...`);
      const done = await finishCheckout(ctx, pointers.map((n) => n.path), true);
      const still = pointers.filter((n) => readWorktreePointer(path.join(repo.workTree, n.path)));
      if (done.code !== 0 || still.length) {
        throw new DitsUserError('render-fetch-failed', `the content of ${still.length || done.failed} file(s) the timeline uses could not be written: ${still.map((s) => s.path).join(', ')}`, {
          hint: `\`git dits pull -- ${still.map((s) => s.path).join(' ')}\` says why; then run render again`,
        });
      }
    }

    // -- what each file is
    const sources = new Map<string, ConformSource>();
    for (const p of files) sources.set(p, await probeSource(ff, repo, p));
    if (!timeline.frameRate) {
      // an EDL without a rate: the rate of the first clip's source; now speed changes show
      const first = sources.get(pathOfClip.get(timeline.clips[0]!)!)!;
      const refs = timeline.clips.map((c) => pathOfClip.get(c)!);
      timeline = parseTimeline(name, bytes, { frameRate: first.frameRate, sequence: values.sequence });
      if (timeline.unsupported.length) return refuse(ctx, rel, timeline.unsupported, values.json === true);
      // the same events in the same order: only their frame counts changed
      timeline.clips.forEach((c, i) => pathOfClip.set(c, refs[i]!));
    }
    const plan = planConform(timeline, sources, (c) => pathOfClip.get(c)!);
    for (const w of plan.warnings) err(ctx, `warning: ${w}`);

    // -- encode into a temporary name beside the output, then rename. A long timeline goes in
    // passes of at most --pass-size segments (each segment is one decoder in ffmpeg, so this
    // bounds its memory), joined without re-encoding.
    const temp = (suffix: string): string => path.join(path.dirname(outFile!), `.${path.basename(outFile!)}.dits-render-${process.pid}${suffix}`);
    const tmp = temp('.tmp');
    const passes: (typeof plan.segments)[] = [];
    for (let i = 0; i < plan.segments.length; i += passSize) passes.push(plan.segments.slice(i, i + passSize));
    const partContainer = container === 'matroska' ? 'matroska' : 'mov';
    const parts = passes.length > 1 ? passes.map((_, i) => temp(`.part${i}.${partContainer === 'mov' ? 'mov' : 'mkv'}`)) : [];
    const listFile = temp('.list');
    const bar = frameProgress(ctx, plan.frames);
    // Ctrl-C or a kill: ffmpeg's process group is stopped and the partial files removed
    const abort = new AbortController();
    const stop = (): void => abort.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      let done = 0;
      for (const [i, segments] of passes.entries()) {
        const recordOffset = done;
        await ff.run(
          buildConformArgs({
            segments,
            frameRate: plan.frameRate,
            width: plan.width,
            height: plan.height,
            audio: plan.audio,
            codec,
            pixelFormat: plan.pixelFormat,
            output: parts.length ? parts[i]! : tmp,
            container: parts.length ? partContainer : container,
            timecode: parts.length ? undefined : plan.startTimecode,
            recordOffset,
          }),
          { onProgress: (p) => bar.update(recordOffset + (p.frame ?? 0)), signal: abort.signal },
        );
        done += segments.reduce((n, seg) => n + seg.frames, 0);
      }
      if (parts.length) {
        fs.writeFileSync(listFile, buildConcatList(parts.map((file, i) => ({ file, frames: passes[i]!.reduce((n, seg) => n + seg.frames, 0) })), plan.frameRate));
        await ff.run(buildJoinArgs({ listFile, output: tmp, container, audio: plan.audio !== null, timecode: plan.startTimecode }), { signal: abort.signal });
      }
      bar.done();
      fs.renameSync(tmp, outFile!);
    } catch (e) {
      bar.done();
      fs.rmSync(tmp, { force: true });
      if (abort.signal.aborted) {
        err(ctx, 'dits: render interrupted; nothing was written');
        return 130;
      }
      throw e;
    } finally {
      for (const f of [...parts, listFile]) fs.rmSync(f, { force: true });
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
    const clipsUsed = plan.segments.filter((s) => s.kind === 'clip').length;
    const seconds = framesToSeconds(plan.frames, plan.frameRate);
    if (values.json) {
      printJson(ctx, {
        project: rel,
        output: path.relative(ctx.cwd, outFile!) || outFile,
        codec,
        frames: plan.frames,
        frameRate: formatRate(plan.frameRate),
        seconds,
        width: plan.width,
        height: plan.height,
        startTimecode: plan.startTimecode,
        segments: plan.segments,
        files,
        fetched: pointers.map((p) => p.path),
        warnings: plan.warnings,
      });
    } else {
      out(
        ctx,
        `Rendered ${values.out}: ${plan.frames} frames (${seconds.toFixed(2)} s at ${formatRate(plan.frameRate)} fps, ${plan.width}x${plan.height}, ${MASTER_CODECS[codec].describe}) from ${clipsUsed} clip(s) of ${files.length} file(s)${pointers.length ? `; fetched ${pointers.length} file(s)` : ''}.`,
      );
    }
    return 0;
  },
};

function describeMissing(r: ResolvedReference): string {
  return r.candidates?.length ? ` (ambiguous: ${r.candidates.join(', ')})` : ' (no tracked file matches)';
}

function containerOf(file: string, codec: Codec): 'mov' | 'mp4' | 'matroska' {
  const ext = path.extname(file).toLowerCase();
  const container = ext === '.mov' || ext === '.qt' ? 'mov' : ext === '.mp4' || ext === '.m4v' ? 'mp4' : ext === '.mkv' ? 'matroska' : null;
  if (!container) throw new DitsUserError('bad-option-value', `--out ${path.basename(file)}: render writes .mov, .mkv or .mp4`, { hint: 'e.g. --out master.mov', exitCode: 2 });
  if (container === 'mp4' && codec !== 'h264') throw new DitsUserError('bad-option-value', `--codec ${codec} does not go in an .mp4`, { hint: 'write a .mov, or use --codec h264 for an .mp4', exitCode: 2 });
  return container;
}

function readProject(repo: RepoPaths, cwd: string, project: string): { rel: string; name: string; bytes: Buffer } {
  const abs = path.resolve(cwd, project);
  const rel = path.relative(repo.workTree, abs).split(path.sep).join('/');
  if (rel.startsWith('..')) throw new DitsUserError('outside-repo', `${project} is outside the repository`);
  if (!fs.existsSync(abs)) throw new DitsUserError('no-such-file', `${project}: no such file`, { hint: 'name an editing project in the working tree (FCPXML, Premiere/FCP7 XML, EDL)' });
  // Final Cut Pro 10.6+ exports a bundle directory with the document inside
  const file = fs.statSync(abs).isDirectory() ? path.join(abs, 'Info.fcpxml') : abs;
  if (!fs.existsSync(file)) throw new DitsUserError('not-a-file', `${project} is a directory`, { hint: 'name an editing project file in it' });
  if (readWorktreePointer(file)) throw new DitsUserError('not-checked-out', `${project} is a pointer; its content is not here`, { hint: `run \`git dits pull -- ${project}\` first` });
  return { rel, name: path.basename(abs), bytes: fs.readFileSync(file) };
}

interface FileNeed {
  path: string;
  /** Still a pointer in the working tree. */
  pointer: boolean;
  /** Its content is in the local store (written without a download). */
  local: boolean;
  size: number;
}

function inspectFiles(repo: RepoPaths, files: string[]): FileNeed[] {
  const wps = files.map((p) => ({ p, wp: readWorktreePointer(path.join(repo.workTree, p)) }));
  if (!wps.some((w) => w.wp)) return files.map((p) => ({ path: p, pointer: false, local: true, size: fileSize(repo, p) }));
  const store = ChunkStore.open(repo.ditsDir, { create: true });
  try {
    return wps.map(({ p, wp }) => (wp ? { path: p, pointer: true, local: contentPresent(store, wp.pointer.manifest), size: wp.pointer.size } : { path: p, pointer: false, local: true, size: fileSize(repo, p) }));
  } finally {
    store.close();
  }
}

/**
 * A file present in the working tree whose size is not its pointer's (in the index) is not
 * the original: a proxy checked out at the original's path, or an edit not added. A master
 * conformed from it would be wrong without a word, so it is refused. (Same size, other bytes:
 * not looked for; that would mean reading every source whole.)
 */
async function refuseNonOriginals(repo: RepoPaths, need: FileNeed[]): Promise<void> {
  const present = need.filter((n) => !n.pointer);
  if (present.length === 0) return;
  const index = new Map((await listIndexPointers(repo.workTree, present.map((n) => `:(literal)${n.path}`))).filter((e) => e.stage === 0).map((e) => [e.path, e.pointer]));
  const bad = present.flatMap((n) => {
    const original = index.get(n.path);
    return original && original.size !== n.size ? [`${n.path}: ${formatBytes(n.size)} here, the original is ${formatBytes(original.size)}`] : [];
  });
  if (bad.length) {
    throw new DitsUserError('render-not-original', `${bad.length} file(s) the timeline uses are not the originals in the working tree:\n  ${bad.join('\n  ')}`, {
      hint: 'render conforms from the originals: put them back (a proxy: check out the original; an edit: commit it, or `git checkout -- <path>` to drop it)',
    });
  }
}

function fileSize(repo: RepoPaths, p: string): number {
  try {
    return fs.statSync(path.join(repo.workTree, p)).size;
  } catch {
    throw new DitsUserError('render-media-missing', `${p} is tracked but not in the working tree`, { hint: `restore it: git checkout -- ${p}` });
  }
}

function refuse(ctx: CliContext, rel: string, items: UnsupportedItem[], json: boolean): never {
  if (json) {
    printJson(ctx, { project: rel, conformable: false, unsupported: items });
  }
  const lines = items.map((i) => `${i.at ?? '          '}  ${i.kind.padEnd(17)} ${i.what}`);
  throw new DitsUserError('render-unsupported', `${rel}: a cuts-only render cannot conform ${items.length} thing(s) in this timeline:\n  ${lines.join('\n  ')}`, {
    hint: 'render those parts in the editor (or remove them) and export the timeline again; render conforms cuts, gaps and the clips\' own audio',
  });
}

function printPlan(ctx: CliContext, rel: string, timeline: Timeline, pathOf: Map<TimelineClip, string>, need: FileNeed[], json: boolean): number {
  const rate = timeline.frameRate;
  const nominal = rate ? Math.round(rate.num / rate.den) : undefined;
  const tc = (frames: number): string | undefined => {
    if (!rate || !nominal) return undefined;
    return formatTimecode(parseTimecode(timeline.startTimecode, nominal).frame + frames, nominal, timeline.dropFrame);
  };
  const fetchBytes = need.filter((n) => n.pointer && !n.local).reduce((s, n) => s + n.size, 0);
  const segments = timeline.clips.map((c) => ({
    clip: c.index,
    label: c.label,
    path: pathOf.get(c)!,
    recordStart: rate ? c.recordStart : null,
    frames: rate ? c.frames : null,
    recordIn: tc(c.recordStart),
    source: 'seconds' in c.source ? { seconds: c.source.seconds.num / c.source.seconds.den, timecode: undefined } : { seconds: undefined, timecode: c.source.timecode },
    audio: c.audio,
  }));
  if (json) {
    printJson(ctx, {
      project: rel,
      format: timeline.format,
      conformable: true,
      frameRate: rate ? formatRate(rate) : null,
      startTimecode: timeline.startTimecode,
      frames: rate ? timeline.durationFrames : null,
      segments,
      files: need,
      filesToFetch: need.filter((n) => n.pointer && !n.local).map((n) => n.path),
      bytesToFetch: fetchBytes,
    });
    return 0;
  }
  const length = rate ? `${timeline.durationFrames} frames at ${formatRate(rate)} fps` : 'frame rate from the first source (give --fps to count frames and look for speed changes now)';
  out(ctx, `${rel} (${timeline.format}${timeline.name ? `, "${timeline.name}"` : ''}): ${timeline.clips.length} clip(s), ${length}, from ${timeline.startTimecode}`);
  for (const s of segments) {
    const src = s.source.seconds !== undefined ? `${s.source.seconds.toFixed(3)} s` : s.source.timecode;
    out(ctx, `  ${String(s.clip).padStart(3)}  ${s.recordIn ?? s.label.replace(/.* at /, '')}  ${s.frames === null ? '' : `${String(s.frames).padStart(6)} frames  `}${s.path} from ${src}${s.audio ? '' : ' (no audio)'}`);
  }
  out(ctx, `Files: ${need.length}; to fetch: ${need.filter((n) => n.pointer && !n.local).length} (${formatBytes(fetchBytes)}); to write from the local store: ${need.filter((n) => n.pointer && n.local).length}.`);
  return 0;
}

async function probeSource(ff: Awaited<ReturnType<typeof import('../../media/ffmpeg.js').openFfmpeg>>, repo: RepoPaths, p: string): Promise<ConformSource> {
  const file = path.join(repo.workTree, p);
  const info = await ff.probe(file);
  const video = info.streams.find((s) => s.type === 'video');
  if (!video || video.type !== 'video') throw new DitsUserError('render-no-video', `${p} has no video stream`, { hint: 'a cuts-only render plays clips with picture; relink the clip to the right file' });
  const rate = video.avgFrameRate ?? video.realFrameRate;
  if (!rate) throw new DitsUserError('render-no-rate', `${p}: ffprobe gives no frame rate`);
  let frames = video.nbFrames;
  if (frames === undefined) {
    const counted = await ff.probe(file, { countPackets: true });
    const v = counted.streams.find((s) => s.type === 'video');
    frames = v && v.type === 'video' ? v.nbReadPackets : undefined;
  }
  if (frames === undefined) throw new DitsUserError('render-no-frames', `${p}: cannot count its frames`);
  const audio = info.streams.filter((s): s is Extract<typeof s, { type: 'audio' }> => s.type === 'audio');
  return {
    path: p,
    file,
    frameRate: { num: rate.num, den: rate.den },
    frames,
    width: video.width,
    height: video.height,
    pixelFormat: video.pixelFormat,
    startTimecode: info.timecode,
    audio: audio.length
      ? { streams: audio.length, channels: audio.reduce((n, a) => n + a.channels, 0), layout: audio[0]!.channelLayout, sampleRate: audio[0]!.sampleRate ?? 48000 }
      : null,
  };
}

function frameProgress(ctx: CliContext, total: number): { update(frame: number): void; done(): void } {
  if (!ctx.interactive) return { update() {}, done() {} };
  let last = 0;
  let drawn = false;
  return {
    update(frame) {
      const now = Date.now();
      if (now - last < 200) return;
      last = now;
      drawn = true;
      ctx.stderr.write(`\rRendering: ${Math.min(frame, total)}/${total} frames (${Math.floor((100 * Math.min(frame, total)) / Math.max(total, 1))}%)\x1b[K`);
    },
    done() {
      if (drawn) ctx.stderr.write('\n');
    },
  };
}

export const commands = { render };
