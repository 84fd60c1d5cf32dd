/**
 * SMPTE timecode (SMPTE 12M) from a frame count, as stored in a QuickTime `tmcd` sample.
 *
 * Drop-frame (29.97 and 59.94 fps) skips frame numbers 0 and 1 (0-3 at 59.94) at the
 * start of every minute except minutes divisible by ten; the separator before the
 * frames becomes ';'. Counts past 24 hours wrap, as on a deck.
 */

/** Formats `frame` (0-based count from 00:00:00:00) at nominal rate `fps` (e.g. 30 for 29.97). */
export function formatTimecode(frame: number, fps: number, dropFrame: boolean): string {
  if (!Number.isInteger(frame) || frame < 0) throw new RangeError(`invalid frame count ${frame}`);
  if (!Number.isInteger(fps) || fps <= 0) throw new RangeError(`invalid nominal frame rate ${fps}`);
  let n = frame;
  const drop = dropFrame && fps % 30 === 0 ? (fps / 30) * 2 : 0;
  if (drop > 0) {
    const perMinute = fps * 60 - drop;
    const perTenMinutes = fps * 600 - drop * 9;
    const tens = Math.floor(n / perTenMinutes);
    const rest = n % perTenMinutes;
    n += drop * 9 * tens;
    if (rest > drop) n += drop * Math.floor((rest - drop) / perMinute);
  }
  const ff = n % fps;
  const totalSeconds = Math.floor(n / fps);
  const ss = totalSeconds % 60;
  const mm = Math.floor(totalSeconds / 60) % 60;
  const hh = Math.floor(totalSeconds / 3600) % 24;
  const two = (v: number): string => String(v).padStart(2, '0');
  return `${two(hh)}:${two(mm)}:${two(ss)}${drop > 0 ? ';' : ':'}${two(ff)}`;
}

/** Parses HH:MM:SS:FF or HH:MM:SS;FF back to a frame count (the inverse of formatTimecode). */
export function parseTimecode(text: string, fps: number): { frame: number; dropFrame: boolean } {
  const m = /^(\d{2}):(\d{2}):(\d{2})([:;.,])(\d{2,3})$/.exec(text);
  if (!m) throw new RangeError(`not a timecode: ${text}`);
  const [hh, mm, ss, ff] = [m[1], m[2], m[3], m[5]].map(Number) as [number, number, number, number];
  const dropFrame = m[4] === ';' || m[4] === ',';
  const drop = dropFrame && fps % 30 === 0 ? (fps / 30) * 2 : 0;
  const totalMinutes = hh * 60 + mm;
  const frame = (totalMinutes * 60 + ss) * fps + ff - drop * (totalMinutes - Math.floor(totalMinutes / 10));
  return { frame, dropFrame: drop > 0 };
}
