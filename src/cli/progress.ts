/**
 * Progress on stderr: bytes, rate, ETA. Bars draw only when the context is interactive
 * (a terminal, not CI), at most 10 times a second; otherwise every call is a no-op.
 *
 * A total is shown only while it is known and not below what is done: transfers of
 * objects whose size is learnt only when they finish count their bytes as done first and
 * add them to the total after, which printed "0.1/0.0 MiB".
 */
import type { CliContext } from './context.js';
import { formatBytes } from './context.js';

export interface ProgressBar {
  update(done: number, total?: number): void;
  done(): void;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/**
 * "3.2/10.0 MiB": done and total in one unit (the total's), or only done ("3.2 MiB") when
 * the total is unknown (0 or undefined) or below done. Done is never shown above the total
 * by rounding: both are rounded the same way in the same unit.
 */
export function formatBytesOf(done: number, total?: number): string {
  if (total === undefined || total <= 0 || total < done) return formatBytes(done);
  let u = 0;
  let scale = 1;
  while (total / scale >= 1024 && u < UNITS.length - 1) {
    scale *= 1024;
    u++;
  }
  const digits = u === 0 ? 0 : 1;
  return `${(done / scale).toFixed(digits)}/${(total / scale).toFixed(digits)} ${UNITS[u]}`;
}

/** One progress line (no carriage return): label, optional bar and percentage, bytes, rate, ETA. */
export function progressLine(label: string, done: number, total: number | undefined, rateBytesPerSec: number, etaSec?: number | null): string {
  const known = total !== undefined && total > 0 && total >= done;
  const width = 24;
  const frac = known ? Math.min(done / total, 1) : 0;
  const bar = known ? '[' + '#'.repeat(Math.round(frac * width)).padEnd(width, '.') + '] ' : '';
  const pct = known ? `${Math.floor(frac * 100).toFixed(0).padStart(3)}% ` : '';
  const eta = known ? (etaSec ?? (rateBytesPerSec > 0 ? (total - done) / rateBytesPerSec : null)) : null;
  const etaText = eta !== null && Number.isFinite(eta) ? ` ETA ${Math.max(0, Math.round(eta))}s` : '';
  return `${label} ${bar}${pct}${formatBytesOf(done, known ? total : undefined)} ${formatBytes(rateBytesPerSec)}/s${etaText}`;
}

export function createProgressBar(ctx: CliContext, label: string, total = 0): ProgressBar {
  if (!ctx.interactive) return { update() {}, done() {} };
  const start = Date.now();
  let last = 0;
  let drawn = false;
  let cur = 0;
  let tot = total;
  const draw = (): void => {
    const secs = Math.max((Date.now() - start) / 1000, 0.001);
    ctx.stderr.write(`\r${progressLine(label, cur, tot, cur / secs)}\x1b[K`);
    drawn = true;
  };
  return {
    update(done: number, t?: number) {
      cur = done;
      if (t !== undefined) tot = t;
      const now = Date.now();
      if (now - last >= 100) {
        last = now;
        draw();
      }
    },
    done() {
      if (drawn) {
        draw();
        ctx.stderr.write('\n');
      }
    },
  };
}
