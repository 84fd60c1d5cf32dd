/**
 * What the container parser reports. `MediaStructure` is stored in manifests, so it is
 * plain JSON (no undefined values, no typed arrays, no Dates) and versioned: a later
 * version may add fields; readers must ignore fields they do not know.
 */

export const MEDIA_STRUCTURE_VERSION = 1;

export type TrackType = 'video' | 'audio' | 'timecode' | 'other';

export interface MediaTrack {
  /** Track id from `tkhd`. */
  id: number;
  type: TrackType;
  /** Sample entry four-character code as written, trailing spaces trimmed ('avc1', 'apch', 'sowt', 'tmcd'). */
  codec: string;
  /** Handler type from `hdlr` ('vide', 'soun', 'tmcd', 'text', ...), for types reported as 'other'. */
  handler?: string;
  width?: number;
  height?: number;
  /** Frames per second, rounded to 3 decimals (29.97 for 30000/1001). */
  frameRate?: number;
  sampleRate?: number;
  channels?: number;
  /** Bits per audio sample, for uncompressed audio. */
  bitsPerSample?: number;
  sampleCount: number;
  /** Video tracks: number of sync samples (keyframes); equals sampleCount when all are sync. */
  syncSampleCount?: number;
  durationSeconds: number;
}

export interface MediaStructure {
  version: typeof MEDIA_STRUCTURE_VERSION;
  container: 'mp4' | 'mov';
  /** Major brand first, then the compatible brands, as four-character codes (e.g. 'qt  ', 'isom'). */
  brands: string[];
  durationSeconds: number;
  /** ISO 8601 UTC, from `mvhd`; absent when the file says 0 (unset). */
  creationTime?: string;
  /** HH:MM:SS:FF, or HH:MM:SS;FF for drop-frame, from the first timecode track. */
  startTimecode?: string;
  /** True when `moov` comes before the first `mdat` (progressive download layout). */
  fastStart: boolean;
  tracks: MediaTrack[];
}

export interface CutRegion {
  /** Absolute offsets, `start` inclusive, `end` exclusive. */
  start: number;
  end: number;
  /**
   * 'metadata': top-level boxes other than media payload (ftyp, moov, free, the mdat
   * header...); 'payload': the bytes inside an mdat (or another large top-level box).
   */
  kind: 'metadata' | 'payload';
  /** Top-level box types the region covers, in file order. */
  boxes: string[];
  /** Payload regions only: true when a video keyframe starts exactly at `start`. */
  startsAtKeyframe?: boolean;
}

/**
 * Where the chunking pipeline must or should cut. Empty (no forced, no preferred, no
 * regions) when the container was not understood: then plain chunking applies.
 */
export interface CutPlan {
  /** Sorted absolute offsets, strictly between 0 and the file size, where a chunk must end. */
  forced: number[];
  /**
   * Sorted, distinct absolute offsets strictly inside payload regions where a video sync
   * sample (keyframe) starts. The pipeline cuts at one when the current chunk is >= its
   * minimum size. Float64Array: 8 bytes per keyframe, never one object each.
   */
  preferred: Float64Array;
  /**
   * Sorted offsets strictly inside payload regions where the data passes from one track's
   * chunk to another track's (the muxer's interleaving). Also good cut points: cutting
   * there keeps each track's bytes in their own chunks, so replacing one track (a new
   * audio mix) leaves the chunks of the others intact. Not keyframes.
   */
  trackSwitches: Float64Array;
  /** The file split into metadata and payload regions, in order, covering it exactly. */
  regions: CutRegion[];
  /** Set when keyframe offsets were thinned or dropped to stay within bounds. */
  note?: string;
}

export type ContainerKind = 'mp4' | 'mov' | 'unknown';

export interface ContainerAnalysis {
  kind: ContainerKind;
  structure?: MediaStructure;
  /** Why the file is chunked plainly (MXF, damaged tables, ...); set iff kind is 'unknown'. */
  fallbackReason?: string;
  cutPlan: CutPlan;
}

export function emptyCutPlan(): CutPlan {
  return { forced: [], preferred: new Float64Array(0), trackSwitches: new Float64Array(0), regions: [] };
}

/**
 * True when a video keyframe starts at `offset` (for the manifest's per-chunk flag):
 * a preferred cut, or the start of a payload region that begins with a keyframe.
 * O(log n) over the sorted `preferred` list.
 */
export function startsAtKeyframe(plan: CutPlan, offset: number): boolean {
  const p = plan.preferred;
  let lo = 0;
  let hi = p.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (p[mid]! < offset) lo = mid + 1;
    else hi = mid;
  }
  if (lo < p.length && p[lo] === offset) return true;
  return plan.regions.some((r) => r.kind === 'payload' && r.start === offset && r.startsAtKeyframe === true);
}

/**
 * Checks that `value` (e.g. read back from a stored manifest) has the shape of a
 * MediaStructure this code understands: version 1, known container, tracks with id,
 * type, codec and counts. Extra fields are allowed (written by later versions).
 */
export function isMediaStructure(value: unknown): value is MediaStructure {
  if (typeof value !== 'object' || value === null) return false;
  const s = value as Record<string, unknown>;
  if (s['version'] !== MEDIA_STRUCTURE_VERSION) return false;
  if (s['container'] !== 'mp4' && s['container'] !== 'mov') return false;
  if (!Array.isArray(s['brands']) || !s['brands'].every((b) => typeof b === 'string')) return false;
  if (typeof s['durationSeconds'] !== 'number' || typeof s['fastStart'] !== 'boolean') return false;
  if (s['startTimecode'] !== undefined && typeof s['startTimecode'] !== 'string') return false;
  if (s['creationTime'] !== undefined && typeof s['creationTime'] !== 'string') return false;
  if (!Array.isArray(s['tracks'])) return false;
  return s['tracks'].every((t: unknown) => {
    if (typeof t !== 'object' || t === null) return false;
    const r = t as Record<string, unknown>;
    return (
      typeof r['id'] === 'number' &&
      ['video', 'audio', 'timecode', 'other'].includes(r['type'] as string) &&
      typeof r['codec'] === 'string' &&
      typeof r['sampleCount'] === 'number' &&
      typeof r['durationSeconds'] === 'number'
    );
  });
}
