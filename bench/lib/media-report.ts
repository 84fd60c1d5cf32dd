/** Verdicts and tables for issue 4's figures. Pure. */
import { spread, noisePercent } from './stats.js';
import { formatBytes } from './units.js';
import { formatTable, verdictWord, type Verdict } from './report.js';
import { EDITS, type MediaEdit } from './media-corpus.js';
import type { MediaClipResults, MediaResults, MediaTool } from './media.js';

export const MEDIA_TARGETS = {
  /** Edits 1, 2, 5, 6: under 1% of the file size. */
  smallEditShare: 0.01,
  /** Edits 3, 4: under 2% plus the new footage. */
  trimAppendShare: 0.02,
  ingestAwareVsPlain: 0.9,
  inspectPeakBytes: 200 * 2 ** 20,
} as const;

const EDIT_LABEL: Record<MediaEdit, string> = {
  metadata: '1 metadata only',
  faststart: '2 re-mux +faststart',
  trim: '3 trim the end',
  append: '4 append footage',
  audio: '5 replace audio',
  timecode: '6 timecode only',
};

function med(xs: readonly number[] | undefined): number | null {
  return xs?.length ? spread(xs).median : null;
}

/** The byte budget issue 4 allows Dits for one edit of this clip. */
export function editBudget(c: MediaClipResults, edit: MediaEdit): number {
  if (edit === 'trim') return c.bytes * MEDIA_TARGETS.trimAppendShare;
  if (edit === 'append') return c.bytes * MEDIA_TARGETS.trimAppendShare + c.appendedBytes;
  return c.bytes * MEDIA_TARGETS.smallEditShare;
}

export function mediaVerdicts(r: MediaResults): Verdict[] {
  const v: Verdict[] = [];
  for (const c of r.clips) {
    for (const edit of EDITS) {
      const d = med(c.newBytes[edit]?.dits);
      const budget = editBudget(c, edit);
      v.push({ issue: 4, figure: `new bytes, ${c.format}`, subject: `dits, ${EDIT_LABEL[edit]}`, value: d, unit: 'B', target: `< ${Math.floor(budget)} B`, pass: d === null ? null : d < budget });
    }
    for (const edit of ['metadata', 'faststart', 'audio'] as const) {
      const a = med(c.newBytes[edit]?.dits);
      const p = med(c.newBytes[edit]?.['dits (plain FastCDC)']);
      v.push({ issue: 4, figure: `media-aware vs plain, ${c.format}`, subject: EDIT_LABEL[edit], value: a !== null && p !== null && p > 0 ? a / p : null, unit: 'x', target: '< 1x of plain', pass: a === null || p === null ? null : a < p });
    }
    if (c.format === 'prores-mov') {
      const a = med(c.ingest.dits?.map((x) => x.mbps));
      const p = med(c.ingest['dits (plain FastCDC)']?.map((x) => x.mbps));
      v.push({ issue: 4, figure: 'ingest, prores-mov', subject: 'media-aware / plain MB/s', value: a !== null && p ? a / p : null, unit: 'x', target: `>= ${MEDIA_TARGETS.ingestAwareVsPlain}x`, pass: a === null || !p ? null : a / p >= MEDIA_TARGETS.ingestAwareVsPlain });
    }
  }
  if (r.inspect) {
    const m = spread(r.inspect.runs.map((x) => x.memory.peakSumRssBytes)).median;
    v.push({ issue: 4, figure: 'peak memory, inspect', subject: `${r.inspect.seconds} s PCM clip`, value: m, unit: 'B', target: `< ${formatBytes(MEDIA_TARGETS.inspectPeakBytes)}`, pass: m < MEDIA_TARGETS.inspectPeakBytes });
  }
  return v;
}

export function formatMediaReport(r: MediaResults, verdicts: readonly Verdict[], runs: number): string {
  const out: string[] = [`Issue 4, media. Median of ${runs} run(s); each edit measured against a store holding only the original.`];
  const tools: MediaTool[] = ['dits', 'dits (plain FastCDC)', 'git-lfs', 'restic'];
  for (const c of r.clips) {
    out.push('');
    out.push(`${c.format}: ${formatBytes(c.bytes)}, ${c.durationSeconds.toFixed(1)} s; trim/append ${c.editSeconds} s (appended footage ${formatBytes(c.appendedBytes)})`);
    const rows = EDITS.map((edit) => {
      const cells = tools.map((t) => {
        const m = med(c.newBytes[edit]?.[t]);
        return m === null ? '-' : formatBytes(m);
      });
      const d = med(c.newBytes[edit]?.dits);
      const v = verdicts.find((x) => x.figure === `new bytes, ${c.format}` && x.subject === `dits, ${EDIT_LABEL[edit]}`);
      const vp = verdicts.find((x) => x.figure === `media-aware vs plain, ${c.format}` && x.subject === EDIT_LABEL[edit]);
      return [EDIT_LABEL[edit], ...cells, d === null ? '-' : `${((d / c.bytes) * 100).toFixed(3)}%`, `< ${formatBytes(editBudget(c, edit))}`, verdictWord(v?.pass ?? null), vp ? verdictWord(vp.pass) : ''];
    });
    out.push(formatTable(['edit', ...tools, 'dits share', 'target', 'verdict', 'aware<plain'], rows));
    const ingestRows = (['dits', 'dits (plain FastCDC)'] as const).flatMap((t) => {
      const list = c.ingest[t];
      if (!list?.length) return [];
      const s = spread(list.map((x) => x.mbps));
      return [[t, s.median.toFixed(0), s.min.toFixed(0), s.max.toFixed(0), `${noisePercent(s).toFixed(0)}%`]];
    });
    out.push(`ingest (git dits add of the original, empty store), MB/s\n${formatTable(['mode', 'median', 'min', 'max', 'spread'], ingestRows)}`);
  }
  if (r.inspect) {
    const s = spread(r.inspect.runs.map((x) => x.memory.peakSumRssBytes));
    const v = verdicts.find((x) => x.figure === 'peak memory, inspect');
    out.push('');
    out.push(`git dits inspect of a ${r.inspect.seconds} s clip with 48 kHz PCM audio (${formatBytes(r.inspect.bytes)}): tree peak ${formatBytes(s.median)} (min ${formatBytes(s.min)}, max ${formatBytes(s.max)}), target ${v?.target}: ${verdictWord(v?.pass ?? null)}`);
  }
  for (const s of r.skipped) out.push(`skipped: ${s}`);
  return out.join('\n');
}
