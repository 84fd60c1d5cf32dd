/** Byte sizes as the benchmark reads and prints them. */

const SUFFIX: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/**
 * "64M", "1G", "8GiB", "512KiB", "1000" -> bytes. Suffixes are binary (K = 1024), as in
 * ffmpeg and dd; "MB"-style suffixes are read the same way.
 */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*$/.exec(text);
  if (!m) throw new Error(`not a size: ${JSON.stringify(text)} (examples: 64M, 1G, 8GiB)`);
  const n = Number(m[1]) * SUFFIX[m[2]!.toLowerCase()]!;
  if (!Number.isFinite(n) || n < 1) throw new Error(`size out of range: ${text}`);
  return Math.round(n);
}

/** Binary units for sizes: 1.00 GiB, 64.0 MiB, 300 KiB (KiB = 1024 bytes). */
export function formatBytes(n: number): string {
  const neg = n < 0;
  let v = Math.abs(n);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const digits = u === 0 ? 0 : v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${neg ? '-' : ''}${v.toFixed(digits)} ${units[u]}`;
}

/** Throughput in MB/s with MB = 10^6 bytes (the unit of the figures in the issues). */
export function megabytesPerSecond(bytes: number, seconds: number): number {
  return seconds > 0 ? bytes / 1e6 / seconds : Infinity;
}
