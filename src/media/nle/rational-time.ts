/**
 * Exact rational time for the timeline parsers: FCPXML writes times as "1001/30000s" or
 * "3600s", frame rates are 30000/1001, and a conform must land on frames, so nothing here
 * goes through floating point until a value is printed. Numerators and denominators stay
 * small (a day at 1/120000 s is 1e10, far below 2^53), and every result is reduced.
 */

export interface Rat {
  num: number;
  den: number;
}

function gcd(a: number, b: number): number {
  a = Math.abs(a);
  b = Math.abs(b);
  while (b !== 0) [a, b] = [b, a % b];
  return a || 1;
}

export function rat(num: number, den = 1): Rat {
  if (!Number.isSafeInteger(num) || !Number.isSafeInteger(den) || den === 0) throw new RangeError(`invalid rational ${num}/${den}`);
  const g = gcd(num, den);
  const s = den < 0 ? -1 : 1;
  return { num: (s * num) / g, den: (s * den) / g };
}

export const ZERO: Rat = { num: 0, den: 1 };

export const add = (a: Rat, b: Rat): Rat => rat(a.num * b.den + b.num * a.den, a.den * b.den);
export const sub = (a: Rat, b: Rat): Rat => rat(a.num * b.den - b.num * a.den, a.den * b.den);
export const mul = (a: Rat, b: Rat): Rat => rat(a.num * b.num, a.den * b.den);
export const div = (a: Rat, b: Rat): Rat => rat(a.num * b.den, a.den * b.num);
export const cmp = (a: Rat, b: Rat): number => Math.sign(a.num * b.den - b.num * a.den);
export const toNumber = (a: Rat): number => a.num / a.den;

/**
 * An FCPXML time value: "0s", "5s", "1001/30000s", "3600.5s" (decimals are rare but legal).
 * Undefined when absent; throws RangeError when malformed.
 */
export function parseFcpxmlTime(s: string | undefined): Rat | undefined {
  if (s === undefined || s.trim() === '') return undefined;
  const t = s.trim();
  let m = /^(-?\d+)\/(\d+)s$/.exec(t);
  if (m) return rat(Number(m[1]), Number(m[2]));
  m = /^(-?\d+)(?:\.(\d+))?s?$/.exec(t);
  if (m) {
    const frac = m[2] ?? '';
    const den = 10 ** frac.length;
    const whole = Number(m[1]);
    return rat(whole * den + (whole < 0 || m[1]!.startsWith('-') ? -1 : 1) * Number(frac || '0'), den);
  }
  throw new RangeError(`not an FCPXML time: ${s}`);
}

/** `t` (seconds) as a whole number of frames at `rate` (frames per second), or null when it falls between frames. */
export function framesAt(t: Rat, rate: Rat): number | null {
  const f = mul(t, rate);
  return f.den === 1 ? f.num : null;
}

/** Nearest whole frame (for values that fall between frames, reported by the caller). */
export function nearestFrame(t: Rat, rate: Rat): number {
  const f = mul(t, rate);
  return Math.round(f.num / f.den);
}

/** The nominal (timecode) frame rate: 30 for 30000/1001, 25 for 25. */
export function nominalRate(rate: Rat): number {
  return Math.round(rate.num / rate.den);
}

/** "25", "29.97", "23.976": a rate as people write it. */
export function formatRate(rate: Rat): string {
  const v = rate.num / rate.den;
  return Number.isInteger(v) ? String(v) : String(Math.round(v * 1000) / 1000);
}

/** "25", "30000/1001", "29.97" (read as 30000/1001), "23.976" (24000/1001), "59.94". */
export function parseRate(s: string): Rat | undefined {
  const t = s.trim();
  let m = /^(\d+)\/(\d+)$/.exec(t);
  if (m && Number(m[1]) > 0 && Number(m[2]) > 0) return rat(Number(m[1]), Number(m[2]));
  m = /^(\d+)(?:\.(\d+))?$/.exec(t);
  if (!m) return undefined;
  const v = Number(t);
  if (!(v > 0)) return undefined;
  if (Number.isInteger(v)) return rat(v);
  // the NTSC rates, as written with two or three decimals
  for (const base of [24, 30, 48, 60, 120]) {
    if (Math.abs(v - (base * 1000) / 1001) < 0.006) return rat(base * 1000, 1001);
  }
  const den = 10 ** (m[2]?.length ?? 0);
  return rat(Math.round(v * den), den);
}
