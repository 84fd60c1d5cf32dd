/**
 * What media analysis (media-analysis.ts) gives for a file that no container parser takes,
 * told from its first 64 KiB without loading the parser (seven modules, several
 * milliseconds: more than a `git add` of a small file spends storing it).
 *
 * The parser, for such a file, answers "unknown" with the reason identifyOtherContainer
 * gives (or "not a recognised media container"), and cuts it where its leading top-level
 * boxes put a media payload. A file whose bytes 4..8 are not a plausible box type has no
 * leading box (and is not MP4: every box that may open an MP4 has a plausible type), so
 * the answer is known here. Anything else, or any error, is left to the parser (undefined).
 */
import fs from 'node:fs';
import { identifyOtherContainer } from '../media/container-id.js';
import { isPlausibleBoxType } from '../media/mp4-boxes.js';
import type { MediaAnalysis } from './dits-filter.js';

/** The bytes analyzeContainer reads to tell a container (its `head`). */
const HEAD_BYTES = 64 * 1024;

export function sniffPlainFile(absPath: string, known?: { head: Buffer; size: number }): MediaAnalysis | undefined {
  // the first bytes git already sent, when they cover what the parser would read: no open
  if (known && known.head.length >= Math.min(known.size, HEAD_BYTES)) return sniffHead(known.head.subarray(0, Math.min(known.size, HEAD_BYTES)), known.size);
  let fd: number;
  try {
    fd = fs.openSync(absPath, 'r');
  } catch {
    return undefined;
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return { fallback: 'empty file', media: null, cutPlan: undefined };
    const head = Buffer.allocUnsafe(Math.min(size, HEAD_BYTES));
    let filled = 0;
    while (filled < head.length) {
      const n = fs.readSync(fd, head, filled, head.length - filled, filled);
      if (n === 0) break; // the file shrank: as the parser's reader, what is there
      filled += n;
    }
    return sniffHead(head.subarray(0, filled), size);
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** The answer for a file of `size` bytes that starts with `got` (at most the parser's head). */
function sniffHead(got: Buffer, size: number): MediaAnalysis | undefined {
  if (size === 0) return { fallback: 'empty file', media: null, cutPlan: undefined };
  if (size >= 8 && (got.length < 8 || isPlausibleBoxType(got.toString('latin1', 4, 8)))) return undefined;
  return { fallback: identifyOtherContainer(got) ?? 'not a recognised media container', media: null, cutPlan: undefined };
}
