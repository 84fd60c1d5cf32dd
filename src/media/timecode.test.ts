import { describe, expect, it } from 'vitest';
import { formatTimecode, parseTimecode } from './timecode.js';

describe('formatTimecode', () => {
  it('non-drop at 25 and 24 fps', () => {
    expect(formatTimecode(0, 25, false)).toBe('00:00:00:00');
    expect(formatTimecode(90_000, 25, false)).toBe('01:00:00:00');
    expect(formatTimecode(90_000 + 24, 25, false)).toBe('01:00:00:24');
    expect(formatTimecode(86_399, 24, false)).toBe('00:59:59:23');
  });

  it('drop-frame at 29.97 skips frames 0 and 1 of each minute except every tenth', () => {
    expect(formatTimecode(1799, 30, true)).toBe('00:00:59;29');
    expect(formatTimecode(1800, 30, true)).toBe('00:01:00;02');
    expect(formatTimecode(17_981, 30, true)).toBe('00:09:59;29');
    expect(formatTimecode(17_982, 30, true)).toBe('00:10:00;00');
    expect(formatTimecode(107_892, 30, true)).toBe('01:00:00;00');
  });

  it('drop-frame at 59.94 drops four frame numbers', () => {
    expect(formatTimecode(3599, 60, true)).toBe('00:00:59;59');
    expect(formatTimecode(3600, 60, true)).toBe('00:01:00;04');
    expect(formatTimecode(215_784, 60, true)).toBe('01:00:00;00');
  });

  it('wraps past 24 hours', () => {
    expect(formatTimecode(24 * 3600 * 25 + 3, 25, false)).toBe('00:00:00:03');
  });

  it('parseTimecode inverts formatTimecode', () => {
    for (const [fps, drop] of [[25, false], [30, true], [60, true], [24, false]] as const) {
      for (let frame = 0; frame < 200_000; frame += 997) {
        const text = formatTimecode(frame, fps, drop);
        expect(parseTimecode(text, fps)).toEqual({ frame, dropFrame: drop });
      }
    }
  });

  it('rejects nonsense', () => {
    expect(() => formatTimecode(-1, 25, false)).toThrow(RangeError);
    expect(() => formatTimecode(1, 0, false)).toThrow(RangeError);
    expect(() => parseTimecode('1:2:3', 25)).toThrow(RangeError);
  });
});
