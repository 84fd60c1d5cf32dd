/** Small statistics over repeated runs: the benchmark reports medians with their spread. */

export interface Spread {
  min: number;
  median: number;
  max: number;
  runs: number;
}

/** Median of a non-empty list (the mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error('median of no values');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function spread(xs: readonly number[]): Spread {
  if (xs.length === 0) throw new Error('spread of no values');
  return { min: Math.min(...xs), median: median(xs), max: Math.max(...xs), runs: xs.length };
}

/** Relative spread (max - min) / median, in percent: the noise of the machine for one figure. */
export function noisePercent(s: Spread): number {
  return s.median === 0 ? 0 : ((s.max - s.min) / s.median) * 100;
}
