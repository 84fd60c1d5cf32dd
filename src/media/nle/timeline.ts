/**
 * The edit list of a project: which source plays where, for `git dits render` (a cuts-only
 * conform from the originals). Where `parseProjectReferences` only lists media, this reads
 * the timeline itself, from the same three interchange formats:
 *
 * - FCPXML 1.x: the project's `sequence` (its `format` gives the frame rate), its primary
 *   `spine` of `asset-clip`, `clip` (wrapping `video`), `video` and `gap`; times are rational
 *   seconds ("1001/30000s"); a clip's `start` is in its asset's time, which begins at the
 *   asset's own `start` (its timecode), so the offset into the file is the difference.
 * - xmeml (FCP7 XML, Premiere, Resolve): the sequence's video tracks of `clipitem`s;
 *   `start`/`end` are record frames, `in`/`out` source frames from the media's first frame,
 *   each at its `rate` (`timebase`, `ntsc` = x1000/1001). Audio clipitems must be cut with
 *   their video (the same file and range); anything else is separate audio.
 * - CMX3600 EDL: event lines with source and record timecodes (`FCM: DROP FRAME` for
 *   29.97 drop-frame); the source timecode becomes an offset into the file once the file's
 *   own start timecode is known (ffprobe), so clips keep it as timecode frames.
 *
 * Everything a cuts-only render cannot reproduce is collected in `unsupported`, each with
 * where it is (record timecode and what it is), instead of being silently dropped: effects
 * and filters, speed changes (retimes, M2 lines, a source range that differs from its record
 * range), transitions, overlapping video (connected clips, a second track over the first),
 * titles and generators, compound/nested/multicam clips, audio not cut with its video.
 *
 * Pure: bytes in, a Timeline out. Malformed projects throw the same DitsUserErrors as the
 * reference parser ('project-corrupt', 'project-format-unknown').
 */
import { DitsUserError } from '../../errors.js';
import { formatTimecode, parseTimecode } from '../timecode.js';
import { baseName, fileUrlToPath } from './file-url.js';
import { gunzipProject, isGzip } from './prproj.js';
import type { ProjectReference } from './project-reference.js';
import { type Rat, ZERO, add, cmp, framesAt, mul, nearestFrame, nominalRate, parseFcpxmlTime, rat, sub } from './rational-time.js';
import { type XmlElement, childText, parseXml, rootElement } from './xml-tree.js';
import { looksLikeEdl } from './edl.js';

export type TimelineFormat = 'fcpxml' | 'xmeml' | 'edl';

export type UnsupportedKind =
  | 'effect'
  | 'speed-change'
  | 'transition'
  | 'overlapping-video'
  | 'title'
  | 'generator'
  | 'compound-clip'
  | 'separate-audio'
  | 'other';

/** Something in the timeline a cuts-only conform cannot reproduce. */
export interface UnsupportedItem {
  kind: UnsupportedKind;
  /** What it is, in the project's words: `transition "Cross Dissolve"`, `clip "A001" (timeMap)`. */
  what: string;
  /** Record timecode where it starts, when known. */
  at?: string;
}

/** Where a clip's first frame is in its source. */
export type SourceStart =
  /** Seconds from the media's first frame (FCPXML, xmeml). */
  | { seconds: Rat }
  /** A source timecode as a frame count at the timeline's nominal rate (EDL): minus the file's start timecode. */
  | { timecode: string; timecodeFrames: number };

export interface TimelineClip {
  /** 1-based, in record order. */
  index: number;
  /** For messages: `clip "A001C003" at 01:00:02:00`. */
  label: string;
  reference: ProjectReference;
  /** Record position, in frames from the timeline's first frame. */
  recordStart: number;
  frames: number;
  source: SourceStart;
  /** Whether the clip's own audio plays (else silence under it). */
  audio: boolean;
}

export interface Timeline {
  format: TimelineFormat;
  name?: string;
  /**
   * Frames per second; null for an EDL whose rate is not known yet: then frame counts are
   * provisional (at 30) and speed changes and overlaps are not looked for; parse again with
   * `frameRate` once it is known.
   */
  frameRate: Rat | null;
  dropFrame: boolean;
  /** The timeline's first frame as a timecode ("01:00:00:00"). */
  startTimecode: string;
  width?: number;
  height?: number;
  /** Frames from the first to after the last clip (gaps included). */
  durationFrames: number;
  clips: TimelineClip[];
  unsupported: UnsupportedItem[];
}

export interface ParseTimelineOptions {
  /** The frame rate of an EDL (EDLs do not say; FCM: DROP FRAME implies 30000/1001). */
  frameRate?: Rat;
  /** Which timeline, by name, when the file holds several (FCPXML projects, xmeml sequences). */
  sequence?: string;
}

/** Reads the edit list of an FCPXML, xmeml or CMX3600 EDL project. */
export function parseTimeline(name: string, bytes: Uint8Array, options: ParseTimelineOptions = {}): Timeline {
  if (isGzip(bytes)) {
    const roots = parseXml(gunzipProject(bytes, 1024 * 1024 * 1024), name);
    throw notConformable(name, rootElement(roots)?.name === 'PremiereData' ? 'a Premiere Pro project (.prproj)' : 'a compressed file');
  }
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8').replace(/^\uFEFF/, '');
  if (/^\s*</.test(text)) {
    const roots = parseXml(text, name);
    const root = rootElement(roots);
    if (root?.name === 'fcpxml') return timelineFromFcpxml(root, name, options.sequence);
    if (root?.name === 'xmeml') return timelineFromXmeml(root, name, options.sequence);
    throw notConformable(name, root?.name === 'PremiereData' ? 'a Premiere Pro project (.prproj)' : `XML with root <${root?.name ?? 'none'}>`);
  }
  if (/\.edl$/i.test(name) || looksLikeEdl(text)) return timelineFromEdl(text, options);
  throw notConformable(name, 'not a known project format');
}

function notConformable(name: string, what: string): DitsUserError {
  return new DitsUserError('project-format-unknown', `${name}: ${what}; render reads the edit list of FCPXML, xmeml (Premiere/FCP7 XML) and CMX3600 EDL`, {
    hint: 'export the timeline from the editor as FCPXML, XML (xmeml) or an EDL',
  });
}

function corrupt(name: string, message: string): DitsUserError {
  return new DitsUserError('project-corrupt', `${name}: ${message}`);
}

// ---------------------------------------------------------------------------------------
// FCPXML

/** Elements that describe, not play: ignored wherever they sit. */
const FCPXML_PASSIVE = new Set(['marker', 'chapter-marker', 'rating', 'keyword', 'note', 'metadata', 'analysis-marker', 'conform-rate', 'adjust-conform', 'bookmark', 'media-rep']);

function timelineFromFcpxml(root: XmlElement, name: string, wanted: string | undefined): Timeline {
  const resources = new Map<string, XmlElement>();
  for (const r of root.children.find((c) => c.name === 'resources')?.children ?? []) if (r.attributes.id) resources.set(r.attributes.id, r);
  // the projects' sequences, not those of compound clips in <resources>
  const projects = findAll(root, 'project', 'resources').flatMap((p) => {
    const seq = p.children.find((c) => c.name === 'sequence');
    return seq ? [{ name: p.attributes.name ?? '', sequence: seq }] : [];
  });
  if (projects.length === 0) {
    const bare = findAll(root, 'sequence', 'resources')[0];
    if (bare) projects.push({ name: bare.attributes.name ?? '', sequence: bare });
  }
  const sequence = chooseTimeline(name, projects, wanted, 'project');
  const projectName = projects.find((p) => p.sequence === sequence)?.name;
  const time = (el: XmlElement, attr: string): Rat | undefined => {
    try {
      return parseFcpxmlTime(el.attributes[attr]);
    } catch (e) {
      throw corrupt(name, `<${el.name}> ${attr}="${el.attributes[attr]}": ${(e as Error).message}`);
    }
  };
  const format = resources.get(sequence.attributes.format ?? '');
  const frameDuration = format ? time(format, 'frameDuration') : undefined;
  if (!frameDuration || frameDuration.num <= 0) throw corrupt(name, 'the sequence has no format with a frameDuration (the frame rate)');
  const rate = rat(frameDuration.den, frameDuration.num);
  const dropFrame = sequence.attributes.tcFormat === 'DF';
  const tcStart = time(sequence, 'tcStart') ?? ZERO;
  const spine = sequence.children.find((c) => c.name === 'spine');
  const items = spine?.children ?? [];
  // spine offsets are in the sequence's time, which begins at tcStart (older exports: at 0)
  const origin = items.every((i) => i.attributes.offset === undefined || cmp(time(i, 'offset')!, tcStart) >= 0) ? tcStart : ZERO;
  const nominal = nominalRate(rate);
  const startFrame = nearestFrame(origin, rate);
  const tcAt = (recordFrame: number): string => formatTimecode(startFrame + Math.max(0, recordFrame), nominal, dropFrame);
  const toFrames = (t: Rat, what: string): number => {
    const f = framesAt(t, rate);
    if (f === null) throw corrupt(name, `${what} is not on a frame boundary at ${rate.num}/${rate.den} fps`);
    return f;
  };

  const clips: TimelineClip[] = [];
  const unsupported: UnsupportedItem[] = [];
  const refOf = (asset: XmlElement): ProjectReference | undefined => {
    const rep = asset.children.find((c) => c.name === 'media-rep' && (c.attributes.kind ?? 'original-media') === 'original-media');
    const src = rep?.attributes.src ?? asset.attributes.src;
    if (!src) return undefined;
    const path = fileUrlToPath(src);
    const ref: ProjectReference = { path, name: baseName(path), origin: rep ? 'fcpxml-media-rep' : 'fcpxml-asset-src' };
    if (asset.attributes.name && asset.attributes.name !== ref.name) ref.clipName = asset.attributes.name;
    return ref;
  };
  const label = (el: XmlElement): string => `${el.name}${el.attributes.name ? ` "${el.attributes.name}"` : ''}`;
  /**
   * Effects, retimes, split edits and connected items inside a spine item. A connected item's
   * offset is in its parent's local time, which starts at the parent's `start` where the parent
   * sits at `local.recordStart`.
   */
  const inspect = (el: XmlElement, at: string, who = label(el), local?: { recordStart: number; localStart: Rat }): void => {
    if (el.attributes.audioStart !== undefined || el.attributes.audioDuration !== undefined) {
      unsupported.push({ kind: 'separate-audio', what: `${who}: split edit (audio cut apart from the video)`, at });
    }
    for (const c of el.children) {
      if (FCPXML_PASSIVE.has(c.name)) continue;
      if (c.attributes.lane !== undefined) {
        const off = time(c, 'offset');
        unsupported.push(connectedItem(c, label, resources, local && off ? tcAt(local.recordStart + nearestFrame(sub(off, local.localStart), rate)) : at));
        continue;
      }
      if (c.name === 'timeMap') unsupported.push({ kind: 'speed-change', what: `${who}: retimed (timeMap)`, at });
      else if (c.name.startsWith('filter-') || c.name.startsWith('adjust-')) {
        const effect = resources.get(c.attributes.ref ?? '');
        const effectName = c.attributes.name ?? effect?.attributes.name ?? c.name;
        if (c.attributes.enabled === '0') continue;
        unsupported.push({ kind: 'effect', what: `${who}: ${c.name.startsWith('adjust-') ? c.name : `effect "${effectName}"`}`, at });
      }
    }
  };

  let pos = origin;
  for (const item of items) {
    if (item.attributes.lane !== undefined) {
      // a lane in the spine itself (hand-made files): it plays over the storyline too
      const off = time(item, 'offset');
      unsupported.push(connectedItem(item, label, resources, off ? tcAt(nearestFrame(sub(off, origin), rate)) : undefined));
      continue;
    }
    const offset = time(item, 'offset') ?? pos;
    const duration = time(item, 'duration') ?? ZERO;
    pos = add(offset, duration);
    const recordStart = toFrames(sub(offset, origin), `${label(item)} offset`);
    const frames = toFrames(duration, `${label(item)} duration`);
    const at = tcAt(recordStart);
    if (item.attributes.enabled === '0') continue; // a disabled clip plays as black
    switch (item.name) {
      case 'gap':
        inspect(item, at, label(item), { recordStart, localStart: time(item, 'start') ?? ZERO });
        break;
      case 'asset-clip':
      case 'video':
      case 'clip': {
        // clip: a container whose local timeline holds the media in a <video> (its audio beside it)
        let media: XmlElement | undefined = item;
        let localShift = ZERO;
        if (item.name === 'clip') {
          const inner = item.children.filter((c) => c.attributes.lane === undefined && !FCPXML_PASSIVE.has(c.name) && !c.name.startsWith('filter-') && !c.name.startsWith('adjust-') && c.name !== 'timeMap');
          const video = inner.find((c) => c.name === 'video');
          if (!video || inner.some((c) => c.name !== 'video' && c.name !== 'audio')) {
            unsupported.push({ kind: 'compound-clip', what: `${label(item)}: a clip holding more than one piece of media`, at });
            break;
          }
          inspect(video, at, label(item));
          const otherAudio = inner.find((c) => c.name === 'audio' && c.attributes.ref !== video.attributes.ref);
          if (otherAudio) {
            // double-system sound: the picture's file does not hold this audio
            unsupported.push({ kind: 'separate-audio', what: `${label(item)}: audio from another file (${resources.get(otherAudio.attributes.ref ?? '')?.attributes.name ?? otherAudio.attributes.ref})`, at });
            break;
          }
          media = video;
          // local time t plays the video's start + (t - its offset)
          localShift = sub(time(item, 'start') ?? ZERO, time(video, 'offset') ?? ZERO);
        }
        const asset = resources.get(media.attributes.ref ?? '');
        if (asset?.name === 'effect') {
          unsupported.push({ kind: 'generator', what: `generator "${asset.attributes.name ?? item.attributes.name ?? media.attributes.ref}"`, at });
          break;
        }
        if (!asset || asset.name !== 'asset') throw corrupt(name, `${label(item)} at ${at} refers to "${media.attributes.ref}", which is not an asset`);
        const assetStart = time(asset, 'start') ?? ZERO;
        // an asset-clip's local time is its asset's; a clip's starts at 0
        inspect(item, at, label(item), { recordStart, localStart: time(item, 'start') ?? (item.name === 'clip' ? ZERO : assetStart) });
        if (item.attributes.srcEnable === 'audio' || asset.attributes.hasVideo === '0') {
          unsupported.push({ kind: 'separate-audio', what: `${label(item)}: audio only in the primary storyline`, at });
          break;
        }
        const ref = refOf(asset);
        if (!ref) throw corrupt(name, `asset "${asset.attributes.name ?? asset.attributes.id}" has no original media`);
        const clipStart = item.name === 'clip' ? add(time(media, 'start') ?? assetStart, localShift) : (time(item, 'start') ?? assetStart);
        const seconds = sub(clipStart, assetStart);
        clips.push({
          index: clips.length + 1,
          label: `${label(item)} at ${at}`,
          reference: ref,
          recordStart,
          frames,
          source: { seconds },
          // a clip plays the audio it holds; an asset-clip its asset's, unless video only
          audio:
            item.name === 'clip'
              ? item.children.some((c) => c.name === 'audio' && c.attributes.lane === undefined)
              : item.attributes.srcEnable !== 'video' && asset.attributes.hasAudio !== '0',
        });
        break;
      }
      case 'transition':
        unsupported.push({ kind: 'transition', what: `transition${item.attributes.name ? ` "${item.attributes.name}"` : ''}`, at });
        break;
      case 'title':
        unsupported.push({ kind: 'title', what: label(item), at });
        break;
      case 'ref-clip':
        unsupported.push({ kind: 'compound-clip', what: `${label(item)} (compound clip)`, at });
        break;
      case 'sync-clip':
        unsupported.push({ kind: 'compound-clip', what: `${label(item)} (synchronized clip)`, at });
        break;
      case 'mc-clip':
        unsupported.push({ kind: 'compound-clip', what: `${label(item)} (multicam clip)`, at });
        break;
      case 'audition':
        unsupported.push({ kind: 'compound-clip', what: `${label(item)} (audition)`, at });
        break;
      case 'audio':
        unsupported.push({ kind: 'separate-audio', what: `${label(item)}: audio only in the primary storyline`, at });
        break;
      default:
        if (!FCPXML_PASSIVE.has(item.name)) unsupported.push({ kind: 'other', what: `<${item.name}> in the primary storyline`, at });
    }
  }
  // anything beside the spine in the sequence plays over it
  for (const c of sequence.children) {
    if (c.name === 'spine' || FCPXML_PASSIVE.has(c.name)) continue;
    const off = time(c, 'offset');
    unsupported.push(connectedItem(c, label, resources, off ? tcAt(nearestFrame(sub(off, origin), rate)) : undefined));
  }
  const last = clips.length ? Math.max(...clips.map((c) => c.recordStart + c.frames)) : 0;
  return {
    format: 'fcpxml',
    name: projectName || sequence.attributes.name,
    frameRate: rate,
    dropFrame,
    startTimecode: tcAt(0),
    width: format?.attributes.width ? Number(format.attributes.width) : undefined,
    height: format?.attributes.height ? Number(format.attributes.height) : undefined,
    durationFrames: Math.max(last, nearestFrame(sub(pos, origin), rate)),
    clips,
    unsupported,
  };
}

function connectedItem(c: XmlElement, label: (el: XmlElement) => string, resources: Map<string, XmlElement>, at: string | undefined): UnsupportedItem {
  const lane = Number(c.attributes.lane ?? '0');
  const asset = resources.get(c.attributes.ref ?? '');
  const where = `on lane ${c.attributes.lane ?? '?'}`;
  if (c.name === 'title') return { kind: 'title', what: `${label(c)} ${where}`, at };
  if (c.name === 'transition') return { kind: 'transition', what: `${label(c)} ${where}`, at };
  if (asset?.name === 'effect') return { kind: 'generator', what: `generator "${asset.attributes.name ?? c.attributes.name}" ${where}`, at };
  const audioOnly = c.name === 'audio' || c.attributes.srcEnable === 'audio' || asset?.attributes.hasVideo === '0' || lane < 0;
  if (audioOnly) return { kind: 'separate-audio', what: `connected audio ${label(c)} ${where} (mixed under the cut)`, at };
  return { kind: 'overlapping-video', what: `connected ${label(c)} ${where} (plays over the primary storyline)`, at };
}

/** Elements named `name` in document order, not looking inside `skip` elements nor inside a match. */
function findAll(root: XmlElement, name: string, skip: string): XmlElement[] {
  const out: XmlElement[] = [];
  const visit = (el: XmlElement): void => {
    for (const c of el.children) {
      if (c.name === skip) continue;
      if (c.name === name) out.push(c);
      else visit(c);
    }
  };
  visit(root);
  return out;
}

/** The one timeline of the file, or the one named `wanted`; several without a name is an error listing them. */
function chooseTimeline(file: string, list: { name: string; sequence: XmlElement }[], wanted: string | undefined, what: string): XmlElement {
  if (list.length === 0) throw corrupt(file, `no ${what} with a sequence in this file`);
  if (wanted !== undefined) {
    const hit = list.find((p) => p.name === wanted);
    if (!hit) throw new DitsUserError('timeline-not-found', `${file}: no ${what} named "${wanted}"`, { hint: `the ${what}s here: ${list.map((p) => `"${p.name}"`).join(', ')}` });
    return hit.sequence;
  }
  if (list.length > 1) {
    throw new DitsUserError('timeline-ambiguous', `${file} holds ${list.length} ${what}s: ${list.map((p) => `"${p.name}"`).join(', ')}`, {
      hint: `name the one to render: --sequence "${list[0]!.name}"`,
    });
  }
  return list[0]!.sequence;
}

// ---------------------------------------------------------------------------------------
// xmeml

function xmemlRate(el: XmlElement | undefined): Rat | undefined {
  const r = el?.children.find((c) => c.name === 'rate');
  const timebase = r ? Number(childText(r, 'timebase')) : NaN;
  if (!(timebase > 0)) return undefined;
  return /^true$/i.test(childText(r!, 'ntsc') ?? '') ? rat(timebase * 1000, 1001) : rat(timebase);
}

const child = (el: XmlElement | undefined, ...path: string[]): XmlElement | undefined => {
  let cur = el;
  for (const p of path) cur = cur?.children.find((c) => c.name === p);
  return cur;
};

const enabled = (el: XmlElement): boolean => !/^false$/i.test(childText(el, 'enabled') ?? 'TRUE');

interface XmemlItem {
  el: XmlElement;
  track: number;
  start: number;
  end: number;
  in: number;
  out: number;
  fileKey: string;
}

function timelineFromXmeml(root: XmlElement, name: string, wanted: string | undefined): Timeline {
  // top-level sequences, or those in a project's bins; not sequences nested in clips
  const sequences = findAll(root, 'sequence', 'clipitem').map((seq) => ({ name: childText(seq, 'name') ?? '', sequence: seq }));
  const sequence = chooseTimeline(name, sequences, wanted, 'sequence');
  const rate = xmemlRate(sequence);
  if (!rate) throw corrupt(name, 'the sequence has no <rate><timebase>');
  const nominal = nominalRate(rate);
  const tc = child(sequence, 'timecode');
  const dropFrame = /^DF$/i.test(childText(tc ?? sequence, 'displayformat') ?? '');
  let startFrame = 0;
  const tcString = tc && childText(tc, 'string');
  if (tc && childText(tc, 'frame') !== undefined) startFrame = Number(childText(tc, 'frame'));
  else if (tcString) startFrame = parseTimecode(tcString, nominal).frame;
  const tcAt = (f: number): string => formatTimecode(startFrame + Math.max(0, f), nominal, dropFrame);

  // files are described once, then referred to by id
  const files = new Map<string, XmlElement>();
  for (const el of walk(sequence)) if (el.name === 'file' && el.attributes.id && childText(el, 'pathurl')) files.set(el.attributes.id, el);
  const fileOf = (item: XmlElement): XmlElement | undefined => {
    const f = child(item, 'file');
    return f && (childText(f, 'pathurl') ? f : files.get(f.attributes.id ?? ''));
  };
  const unsupported: UnsupportedItem[] = [];
  const itemName = (el: XmlElement): string => childText(el, 'name') ?? el.attributes.id ?? el.name;
  const num = (el: XmlElement, k: string): number => {
    const v = Number(childText(el, k));
    if (!Number.isInteger(v)) throw corrupt(name, `<${el.name}> "${itemName(el)}" has no whole <${k}>`);
    return v;
  };
  const media = child(sequence, 'media');
  const read = (kind: 'video' | 'audio'): XmemlItem[] => {
    const out: XmemlItem[] = [];
    const tracks = (child(media, kind)?.children ?? []).filter((t) => t.name === 'track');
    tracks.forEach((track, ti) => {
      if (!enabled(track)) return; // a disabled track plays nothing (still counted: V2 stays V2)
      for (const el of track.children) {
        if (el.name === 'transitionitem') {
          const s = Number(childText(el, 'start'));
          unsupported.push({ kind: 'transition', what: `${kind} transition "${childText(child(el, 'effect') ?? el, 'name') ?? 'transition'}" on ${kind === 'video' ? 'V' : 'A'}${ti + 1}`, at: Number.isInteger(s) ? tcAt(s) : undefined });
          continue;
        }
        if (el.name === 'generatoritem') {
          if (!enabled(el)) continue;
          const effect = child(el, 'effect');
          const isTitle = /text|title/i.test(`${childText(effect ?? el, 'effectcategory') ?? ''} ${childText(effect ?? el, 'name') ?? ''}`);
          unsupported.push({ kind: isTitle ? 'title' : 'generator', what: `${isTitle ? 'title' : 'generator'} "${itemName(el)}" on ${kind === 'video' ? 'V' : 'A'}${ti + 1}`, at: tcAt(num(el, 'start')) });
          continue;
        }
        if (el.name !== 'clipitem' || !enabled(el)) continue;
        if (childText(el, 'start') === undefined || childText(el, 'end') === undefined) {
          unsupported.push({ kind: 'other', what: `clip "${itemName(el)}" on ${kind === 'video' ? 'V' : 'A'}${ti + 1} has no place in the sequence (no <start>/<end>)` });
          continue;
        }
        const start = num(el, 'start');
        const end = num(el, 'end');
        const at = tcAt(start);
        const what = `clip "${itemName(el)}" on ${kind === 'video' ? 'V' : 'A'}${ti + 1}`;
        if (start < 0 || end < 0) continue; // next to a transition (listed with the transition)
        if (child(el, 'sequence') || child(el, 'file', 'media', 'sequence')) {
          unsupported.push({ kind: 'compound-clip', what: `${what} (nested sequence)`, at });
          continue;
        }
        const file = fileOf(el);
        if (!file) throw corrupt(name, `${what} at ${at} names no media file`);
        for (const f of el.children.filter((c) => c.name === 'filter')) {
          if (!enabled(f)) continue;
          const effect = child(f, 'effect');
          const id = childText(effect ?? f, 'effectid') ?? '';
          if (id === 'timeremap') {
            const speed = timeRemapSpeed(effect);
            if (speed !== 100) unsupported.push({ kind: 'speed-change', what: `${what}: speed ${speed}%`, at });
            continue;
          }
          if (isNeutralFilter(id, effect)) continue;
          unsupported.push({ kind: 'effect', what: `${what}: effect "${childText(effect ?? f, 'name') ?? id}"`, at });
        }
        const clipRate = xmemlRate(el) ?? xmemlRate(file) ?? rate;
        const inF = num(el, 'in');
        const outF = num(el, 'out');
        // source and record lengths as times: they differ only when the clip is retimed
        if (cmp(mul(rat(outF - inF), rat(clipRate.den, clipRate.num)), mul(rat(end - start), rat(rate.den, rate.num))) !== 0) {
          unsupported.push({ kind: 'speed-change', what: `${what}: plays ${outF - inF} source frames in ${end - start}`, at });
          continue;
        }
        out.push({ el, track: ti, start, end, in: inF, out: outF, fileKey: childText(file, 'pathurl')! });
      }
    });
    return out;
  };
  const video = read('video').sort((a, b) => a.start - b.start || a.track - b.track);
  const audio = read('audio');
  // each clip against the one that reaches furthest before it (a long clip under several short ones)
  let reach: XmemlItem | undefined;
  for (const b of video) {
    if (reach && b.start < reach.end) {
      unsupported.push({ kind: 'overlapping-video', what: `clip "${itemName(b.el)}" on V${b.track + 1} over "${itemName(reach.el)}" on V${reach.track + 1}`, at: tcAt(b.start) });
    }
    if (!reach || b.end > reach.end) reach = b;
  }
  const sameCut = (v: XmemlItem, a: XmemlItem): boolean => v.fileKey === a.fileKey && v.start === a.start && v.end === a.end && v.in === a.in && v.out === a.out;
  for (const a of audio) {
    if (!video.some((v) => sameCut(v, a))) {
      unsupported.push({ kind: 'separate-audio', what: `audio clip "${itemName(a.el)}" on A${a.track + 1} not cut with a video clip`, at: tcAt(a.start) });
    }
  }
  const clips: TimelineClip[] = video.map((v, i) => {
    const file = fileOf(v.el)!;
    const path = fileUrlToPath(v.fileKey);
    const ref: ProjectReference = { path, name: baseName(path), origin: 'xmeml-pathurl' };
    const fileName = childText(file, 'name');
    if (fileName && fileName !== ref.name) ref.clipName = fileName;
    const clipRate = xmemlRate(v.el) ?? xmemlRate(file) ?? rate;
    return {
      index: i + 1,
      label: `clip "${itemName(v.el)}" on V${v.track + 1} at ${tcAt(v.start)}`,
      reference: ref,
      recordStart: v.start,
      frames: v.end - v.start,
      source: { seconds: mul(rat(v.in), rat(clipRate.den, clipRate.num)) },
      audio: audio.some((a) => sameCut(v, a)),
    };
  });
  const format = child(media, 'video', 'format', 'samplecharacteristics');
  return {
    format: 'xmeml',
    name: childText(sequence, 'name'),
    frameRate: rate,
    dropFrame,
    startTimecode: tcAt(0),
    width: format && childText(format, 'width') ? Number(childText(format, 'width')) : undefined,
    height: format && childText(format, 'height') ? Number(childText(format, 'height')) : undefined,
    durationFrames: clips.length ? Math.max(...clips.map((c) => c.recordStart + c.frames)) : 0,
    clips,
    unsupported,
  };
}

/**
 * Filters some editors write on every clip at their neutral value: Audio Levels at unity gain
 * (level 1, i.e. 0 dB) and Opacity at 100 %. They change nothing, so they are not refused; the
 * same filters at any other value (or keyframed) are.
 */
function isNeutralFilter(id: string, effect: XmlElement | undefined): boolean {
  const neutral: Record<string, [string, number]> = { audiolevels: ['level', 1], opacity: ['opacity', 100] };
  const want = neutral[id.toLowerCase()];
  if (!want || !effect) return false;
  const params = effect.children.filter((c) => c.name === 'parameter');
  return params.length > 0 && params.every((p) => childText(p, 'parameterid') !== want[0] || (!child(p, 'keyframe') && Number(childText(p, 'value')) === want[1]));
}

/** The speed (percent) of a Time Remap filter; reversed playback counts as negative. */
function timeRemapSpeed(effect: XmlElement | undefined): number {
  let speed = 100;
  let reverse = false;
  for (const p of (effect?.children ?? []).filter((c) => c.name === 'parameter')) {
    const id = childText(p, 'parameterid');
    if (id === 'speed') speed = Number(childText(p, 'value') ?? '100');
    if (id === 'reverse') reverse = /^true$/i.test(childText(p, 'value') ?? '');
  }
  return reverse ? -Math.abs(speed) : speed;
}

function* walk(el: XmlElement): Generator<XmlElement> {
  yield el;
  for (const c of el.children) yield* walk(c);
}


// ---------------------------------------------------------------------------------------
// CMX3600 EDL

const TC = '(\\d{2}:\\d{2}:\\d{2}[:;.,]\\d{2})';
const EDL_EVENT = new RegExp(`^(\\d{1,6})\\s+(\\S+)\\s+(\\S+)\\s+(C|D|W\\d{3}|K[BO]?)\\s+(?:(\\d{1,3})\\s+)?${TC}\\s+${TC}\\s+${TC}\\s+${TC}\\s*$`, 'i');
const EDL_M2 = new RegExp(`^M2\\s+(\\S+)\\s+(-?\\d+(?:\\.\\d+)?)\\s+${TC}`, 'i');

interface EdlLine {
  number: string;
  reel: string;
  track: string;
  transition: string;
  srcIn: string;
  srcOut: string;
  recIn: string;
  recOut: string;
}

interface EdlEvent {
  number: string;
  lines: EdlLine[];
  clipNames: string[];
  toClipNames: string[];
  sourceFiles: string[];
  effects: string[];
  speeds: string[];
}

function timelineFromEdl(text: string, options: ParseTimelineOptions): Timeline {
  let title: string | undefined;
  let dropFrame = false;
  const events: EdlEvent[] = [];
  let ev: EdlEvent | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '') continue;
    let m = /^TITLE:\s*(.*)$/i.exec(line);
    if (m) {
      title = m[1]!.trim() || undefined;
      continue;
    }
    m = /^FCM:\s*(.*)$/i.exec(line);
    if (m) {
      // the first FCM gives the record timecode's mode
      if (events.length === 0) dropFrame = /^DROP/i.test(m[1]!.trim());
      continue;
    }
    m = EDL_EVENT.exec(line);
    if (m) {
      const l: EdlLine = { number: m[1]!, reel: m[2]!, track: m[3]!.toUpperCase(), transition: m[4]!.toUpperCase(), srcIn: m[6]!, srcOut: m[7]!, recIn: m[8]!, recOut: m[9]! };
      if (ev && ev.number === l.number) ev.lines.push(l);
      else {
        ev = { number: l.number, lines: [l], clipNames: [], toClipNames: [], sourceFiles: [], effects: [], speeds: [] };
        events.push(ev);
      }
      continue;
    }
    if (!ev) continue;
    m = EDL_M2.exec(line);
    if (m) {
      ev.speeds.push(`${m[1]} at ${m[2]} fps`);
      continue;
    }
    m = /^\*?\s*(FROM CLIP NAME|TO CLIP NAME|SOURCE FILE|CLIP NAME)\s*:\s*(.*?)\s*$/i.exec(line);
    if (m && m[2]) {
      const key = m[1]!.toUpperCase();
      if (key === 'SOURCE FILE') ev.sourceFiles.push(m[2]);
      else if (key === 'TO CLIP NAME') ev.toClipNames.push(m[2]);
      else ev.clipNames.push(m[2]);
      continue;
    }
    m = /^(?:\*\s*)?(?:EFFECTS? NAME(?: IS)?\s*:?|ASC_SOP|ASC_SAT)\s*(.*)$/i.exec(line);
    if (m) ev.effects.push(/ASC_/i.test(line) ? 'colour grade (ASC CDL)' : m[1]!.trim());
  }
  const rate = options.frameRate ?? (dropFrame ? rat(30000, 1001) : null);
  const nominal = rate ? nominalRate(rate) : 30;
  const frameOf = (tc: string): number => parseTimecode(tc, nominal).frame;
  // V, A, A2, AA, AA/V, A2/V; B is both picture and sound
  const hasVideo = (t: string): boolean => /V/.test(t) || t === 'B';
  const videoEvents = events.filter((e) => e.lines.some((l) => hasVideo(l.track)));
  const videoLines = events.flatMap((e) => e.lines.filter((l) => hasVideo(l.track)));
  const recordOrigin = videoLines.length ? Math.min(...videoLines.map((l) => frameOf(l.recIn))) : 0;
  const startTimecode = rate ? formatTimecode(recordOrigin, nominal, dropFrame && nominal % 30 === 0) : (videoLines[0]?.recIn ?? '00:00:00:00');
  const unsupported: UnsupportedItem[] = [];
  const clips: TimelineClip[] = [];
  const audioOnly: { e: EdlEvent; l: EdlLine }[] = [];
  for (const e of events) {
    const at = e.lines[e.lines.length - 1]!.recIn;
    const what = `event ${e.number}`;
    const cut = e.lines.find((l) => l.transition !== 'C');
    if (cut) {
      const kind = cut.transition.startsWith('D') ? 'dissolve' : cut.transition.startsWith('W') ? `wipe ${cut.transition}` : 'key';
      unsupported.push({ kind: 'transition', what: `${what}: ${kind}${e.effects[0] ? ` "${e.effects[0]}"` : ''}`, at });
      continue;
    }
    for (const fx of e.effects) unsupported.push({ kind: 'effect', what: `${what}: effect "${fx}"`, at });
    for (const s of e.speeds) unsupported.push({ kind: 'speed-change', what: `${what}: speed change (M2 ${s})`, at });
    if (e.effects.length || e.speeds.length) continue;
    // the lines of a cut event (a split A and V line share a number) are clips of their own
    for (const line of e.lines) {
      const srcLen = frameOf(line.srcOut) - frameOf(line.srcIn);
      const recLen = frameOf(line.recOut) - frameOf(line.recIn);
      // at an unknown rate the lengths cannot be compared (01:00:01:05 is another frame at 25 and at 30 fps)
      if (rate && srcLen !== recLen) {
        unsupported.push({ kind: 'speed-change', what: `${what}: ${srcLen} source frames in ${recLen} record frames`, at });
        continue;
      }
      if (/^(BL|BLACK)$/i.test(line.reel)) continue; // black: a gap
      if (!hasVideo(line.track)) {
        audioOnly.push({ e, l: line });
        continue;
      }
      const file = e.sourceFiles[0];
      const clipName = e.clipNames[0];
      let ref: ProjectReference;
      if (file) {
        const p = fileUrlToPath(file);
        ref = { path: p, name: baseName(p), origin: 'edl-source-file' };
        if (clipName && clipName !== ref.name) ref.clipName = clipName;
        if (!/^(AX|AUX)$/i.test(line.reel)) ref.reel = line.reel;
      } else if (clipName) {
        ref = { path: clipName, name: baseName(clipName), origin: 'edl-clip-name' };
        if (!/^(AX|AUX)$/i.test(line.reel)) ref.reel = line.reel;
      } else if (!/^(AX|AUX)$/i.test(line.reel)) {
        ref = { path: line.reel, name: line.reel, origin: 'edl-reel', reel: line.reel };
      } else {
        unsupported.push({ kind: 'other', what: `${what}: reel AX with no clip name or source file (nothing says which media)`, at });
        continue;
      }
      clips.push({
        index: 0,
        label: `${what} (${ref.name}) at ${line.recIn}`,
        reference: ref,
        recordStart: frameOf(line.recIn) - recordOrigin,
        frames: recLen,
        source: { timecode: line.srcIn, timecodeFrames: frameOf(line.srcIn) },
        audio: /A/.test(line.track) || line.track === 'B',
      });
    }
  }
  // an audio-only event is fine when it is the audio of a video event (same source and range)
  for (const { e, l } of audioOnly) {
    const rec = frameOf(l.recIn) - recordOrigin;
    const src = frameOf(l.srcIn);
    const match = clips.find((c) => c.recordStart === rec && 'timecodeFrames' in c.source && c.source.timecodeFrames === src && c.frames === frameOf(l.recOut) - frameOf(l.recIn));
    if (match) match.audio = true;
    else unsupported.push({ kind: 'separate-audio', what: `event ${e.number}: audio only (${l.track}) not cut with a video event`, at: l.recIn });
  }
  clips.sort((a, b) => a.recordStart - b.recordStart);
  clips.forEach((c, i) => (c.index = i + 1));
  // each clip against the one that reaches furthest before it
  let reach: TimelineClip | undefined;
  for (const c of rate ? clips : []) {
    if (reach && c.recordStart < reach.recordStart + reach.frames) {
      unsupported.push({ kind: 'overlapping-video', what: `${c.label.replace(/ at .*/, '')} overlaps ${reach.label.replace(/ at .*/, '')}`, at: c.label.replace(/.* at /, '') });
    }
    if (!reach || c.recordStart + c.frames > reach.recordStart + reach.frames) reach = c;
  }
  return {
    format: 'edl',
    name: title,
    frameRate: rate,
    dropFrame: dropFrame && nominal % 30 === 0,
    startTimecode,
    durationFrames: clips.length ? Math.max(...clips.map((c) => c.recordStart + c.frames)) : 0,
    clips,
    unsupported,
  };
}
