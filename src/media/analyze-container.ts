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
import { identifyOtherContainer } from './container-id.js';

export { identifyOtherContainer };

export type AnalyzeOptions = Mp4ParseOptions;

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
