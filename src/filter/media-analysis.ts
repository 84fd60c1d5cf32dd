/**
 * Media-aware cutting for ingest: asks the container parser for a cut plan of the file on
 * disk. The plan is a hint only: chunk and file ids come from the bytes ingested, so a file
 * that changed between analysis and ingest is still stored exactly.
 */
import { analyzeContainer } from '../media/analyze-container.js';
import { headFirstReader, openFileReader, type ClosableReader, type RandomAccessReader } from '../media/random-access-reader.js';
import { isPlausibleBoxType, payloadStart, readBoxHeader } from '../media/mp4-boxes.js';

/** Payload starts of the `mdat` boxes among the top-level boxes that parse, from offset 0. */
async function leadingPayloadStarts(reader: RandomAccessReader): Promise<number[]> {
  const out: number[] = [];
  let offset = 0;
  for (let i = 0; i < 64 && offset < reader.size; i++) {
    let box;
    try {
      box = await readBoxHeader(reader, offset, reader.size);
    } catch {
      break;
    }
    if (!isPlausibleBoxType(box.type)) break;
    if (box.type === 'mdat' && payloadStart(box) < reader.size) out.push(payloadStart(box));
    if (box.toEnd) break;
    offset = box.end;
  }
  return out;
}
import type { MediaAnalysis } from './dits-filter.js';

/**
 * The cut plan for the file at `absPath`. `known`: its size and first bytes, when the caller
 * has them (the file is then opened only if the parser reads past them).
 */
export async function analyzeForIngest(absPath: string, known?: { head: Buffer; size: number }): Promise<MediaAnalysis | null> {
  let reader: ClosableReader;
  try {
    reader = known ? headFirstReader(absPath, known.head, known.size) : await openFileReader(absPath);
  } catch {
    return null;
  }
  try {
    return await analyzeReaderForIngest(reader);
  } finally {
    await reader.close();
  }
}

/** analyzeForIngest over any reader (a mount's view of a file, say); the caller closes it. */
export async function analyzeReaderForIngest(reader: RandomAccessReader): Promise<MediaAnalysis> {
  const a = await analyzeContainer(reader);
  if (a.kind === 'unknown') {
    // Not understood (damaged, or bytes inserted by hand): still split where the leading
    // top-level boxes that do parse put the media payload, as a parsed version would, so
    // the two share the pieces around those edges.
    const forced = await leadingPayloadStarts(reader);
    return { fallback: a.fallbackReason, media: null, cutPlan: forced.length ? { forced, preferred: [] } : undefined };
  }
  // A payload that starts with a keyframe is marked on its region, not in `preferred`.
  const regionKeyframes = a.cutPlan.regions.filter((r) => r.kind === 'payload' && r.startsAtKeyframe).map((r) => r.start);
  const preferred = regionKeyframes.length ? Float64Array.from([...a.cutPlan.preferred, ...regionKeyframes]).sort() : a.cutPlan.preferred;
  // Where interleaved tracks switch, always split (even below the minimum chunk size):
  // each track's bytes then sit in pieces of their own, so replacing the audio leaves the
  // video pieces as they were.
  const forced = a.cutPlan.trackSwitches.length ? Float64Array.from([...a.cutPlan.forced, ...a.cutPlan.trackSwitches]).sort() : a.cutPlan.forced;
  return {
    cutPlan: { forced, preferred },
    media: (a.structure as unknown as Record<string, unknown>) ?? null,
  };
}
