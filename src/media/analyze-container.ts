/**
 * Entry point of media awareness for the chunking pipeline: which container is this,
 * what does it hold, and where should chunks be cut.
 *
 * Contract: `analyzeContainer` never throws for any content of the file. Whatever it
 * does not understand (MXF, damaged tables, a truncated moov, I/O errors from the
 * reader) comes back as `kind: 'unknown'` with a `fallbackReason` and an empty cut plan,
 * and the pipeline chunks the file plainly. Byte-exactness never depends on this code.
 */
import { openFileReader, type RandomAccessReader } from './random-access-reader.js';
import { looksLikeMp4, parseMp4Container, type Mp4ParseOptions } from './mp4-container.js';
import { type ContainerAnalysis, emptyCutPlan } from './media-structure.js';

export type AnalyzeOptions = Mp4ParseOptions;

/** SMPTE universal label prefix of an MXF partition pack key (SMPTE 377M). */
const MXF_PARTITION_KEY = Buffer.from([0x06, 0x0e, 0x2b, 0x34, 0x02, 0x05, 0x01, 0x01, 0x0d, 0x01, 0x02]);

export async function analyzeContainer(reader: RandomAccessReader, options: AnalyzeOptions = {}): Promise<ContainerAnalysis> {
  const unknown = (fallbackReason: string): ContainerAnalysis => ({ kind: 'unknown', fallbackReason, cutPlan: emptyCutPlan() });
  try {
    if (reader.size === 0) return unknown('empty file');
    const head = await reader.read(0, Math.min(reader.size, 64 * 1024));
    if (!looksLikeMp4(head)) return unknown(identifyOtherContainer(head) ?? 'not a recognised media container');
    const { kind, structure, cutPlan } = await parseMp4Container(reader, options);
    return { kind, structure, cutPlan };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return unknown(`MP4/QuickTime parse failed: ${message}`);
  }
}

/**
 * `analyzeContainer` over a file on disk (opens and closes it). Unlike `analyzeContainer`,
 * this rejects when the file cannot be opened (ENOENT, EACCES): that is the caller's
 * problem to report, not a property of the content.
 */
export async function analyzeFile(path: string, options: AnalyzeOptions = {}): Promise<ContainerAnalysis> {
  const reader = await openFileReader(path);
  try {
    return await analyzeContainer(reader, options);
  } finally {
    await reader.close();
  }
}

/**
 * Names containers we recognise but do not parse yet, as the fallback reason shown by
 * `git dits inspect`. Returns undefined when the bytes are none of them.
 */
export function identifyOtherContainer(head: Buffer): string | undefined {
  // MXF may have a run-in of up to 64 KiB before the header partition key.
  const mxfAt = head.indexOf(MXF_PARTITION_KEY);
  if (mxfAt >= 0 && mxfAt < 65536) {
    return 'MXF: plain chunking for now';
  }
  if (head.length >= 4 && head.readUInt32BE(0) === 0x1a45dfa3) return 'Matroska/WebM: plain chunking for now';
  if (head.length >= 12 && head.toString('latin1', 0, 4) === 'RIFF') {
    const form = head.toString('latin1', 8, 12).trim();
    return `RIFF ${form} (${form === 'WAVE' ? 'WAV' : form === 'AVI' ? 'AVI' : 'RIFF'}): plain chunking for now`;
  }
  if (head.length >= 4 && head.toString('latin1', 0, 4) === 'FORM') return 'AIFF: plain chunking for now';
  if (head.length >= 4 && head.readUInt32BE(0) === 0x000001ba) return 'MPEG program stream: plain chunking for now';
  if (head.length >= 188 * 3 && head[0] === 0x47 && head[188] === 0x47 && head[376] === 0x47) {
    return 'MPEG transport stream: plain chunking for now';
  }
  if (head.length >= 4 && head.toString('latin1', 0, 4) === 'RED2') return 'REDCODE R3D: plain chunking for now';
  return undefined;
}
