/**
 * A progress bar on stderr: bytes, rate, ETA. Draws only when the context is interactive
 * (a terminal, not CI), at most 10 times a second; otherwise every call is a no-op.
 */
import type { CliContext } from './context.js';
import { formatBytes } from './context.js';

export interface ProgressBar {
  update(done: number, total?: number): void;
  done(): void;
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
    const rate = cur / secs;
    const width = 24;
    const frac = tot > 0 ? Math.min(cur / tot, 1) : 0;
    const bar = tot > 0 ? '[' + '#'.repeat(Math.round(frac * width)).padEnd(width, '.') + '] ' : '';
    const eta = tot > 0 && rate > 0 ? ` ETA ${Math.max(0, Math.round((tot - cur) / rate))}s` : '';
    const pct = tot > 0 ? `${(frac * 100).toFixed(0).padStart(3)}% ` : '';
    ctx.stderr.write(`\r${label} ${bar}${pct}${formatBytes(cur)}${tot > 0 ? '/' + formatBytes(tot) : ''} ${formatBytes(rate)}/s${eta}\x1b[K`);
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
