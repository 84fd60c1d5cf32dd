import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cronFields, nextRun, parseCalendar, previousRun } from './calendar.js';

// local time, as systemd and cron use it
const at = (h: number, m: number, s = 0, day = 6): number => new Date(2026, 11, day, h, m, s).getTime();

describe('parseCalendar', () => {
  it('reads the named schedules, times of day, hourly minutes and steps', () => {
    expect(parseCalendar('hourly')!.onCalendar).toBe('*-*-* *:00:00');
    expect(parseCalendar('daily')!.onCalendar).toBe('*-*-* 00:00:00');
    expect(parseCalendar('04:00')!.onCalendar).toBe('*-*-* 04:00:00');
    expect(parseCalendar('*-*-* 03:05:00')!.onCalendar).toBe('*-*-* 03:05:00');
    expect(parseCalendar('*:30')!.onCalendar).toBe('*-*-* *:30:00');
    expect(parseCalendar('*:0/15')!.minutes).toEqual([0, 15, 30, 45]);
    expect(parseCalendar('1,13:00')!.hours).toEqual([1, 13]);
    for (const off of ['off', 'OFF', 'never', 'false', 'no']) expect(parseCalendar(off)).toBeNull();
  });

  it('refuses what cron could not express or is no time, naming the forms it takes', () => {
    for (const bad of ['weekly', 'Mon 04:00', '25:00', '04:60', '04:00:30', '*:0/0', 'soon', '']) {
      expect(() => parseCalendar(bad), bad).toThrow(/cannot read the schedule/);
    }
  });
});

describe('nextRun / previousRun', () => {
  it('finds the next and the last firing in local time, across midnight', () => {
    const daily = parseCalendar('04:00')!;
    expect(nextRun(daily, at(3, 59, 59))).toBe(at(4, 0));
    expect(nextRun(daily, at(4, 0))).toBe(at(4, 0, 0, 7)); // strictly after
    expect(previousRun(daily, at(4, 0))).toBe(at(4, 0)); // at or before
    expect(previousRun(daily, at(3, 59))).toBe(at(4, 0, 0, 5));
    const q = parseCalendar('*:0/15')!;
    expect(nextRun(q, at(23, 50))).toBe(at(0, 0, 0, 7));
    expect(previousRun(parseCalendar('hourly')!, at(13, 42, 10))).toBe(at(13, 0));
  });

  it('agrees with systemd-analyze calendar on the next elapse, when it is installed', () => {
    const probe = spawnSync('systemd-analyze', ['--version']);
    if (probe.error) return; // not on this machine: the unit forms are still checked above
    for (const spec of ['04:00', '*:0/15', 'hourly', '1,13:30']) {
      const cal = parseCalendar(spec)!;
      const r = spawnSync('systemd-analyze', ['calendar', cal.onCalendar], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC', SYSTEMD_COLORS: '0' } });
      expect(r.status, r.stderr).toBe(0);
      const m = /Next elapse: \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC/.exec(r.stdout);
      expect(m, r.stdout).not.toBeNull();
      const theirs = Date.parse(m![1]!.replace(' ', 'T') + 'Z');
      // same instant computed in UTC: our nextRun uses local time, so run it under TZ=UTC's view
      const ours = nextRunUtc(spec, Date.now());
      // systemd computed a moment later than our `now`; both must name the same firing unless a minute boundary passed
      expect(Math.abs(theirs - ours) === 0 || theirs === nextRunUtc(spec, ours), `${spec}: systemd ${new Date(theirs).toISOString()} ours ${new Date(ours).toISOString()}`).toBe(true);
    }
  });

  it('gives crontab fields', () => {
    expect(cronFields(parseCalendar('04:00')!)).toBe('0 4 * * *');
    expect(cronFields(parseCalendar('hourly')!)).toBe('0 * * * *');
    expect(cronFields(parseCalendar('*:0/15')!)).toBe('0,15,30,45 * * * *');
    expect(cronFields(parseCalendar('*:*')!)).toBe('* * * * *');
  });
});

/** nextRun when local time is UTC (the test process may run in any zone). */
function nextRunUtc(spec: string, after: number): number {
  const cal = parseCalendar(spec)!;
  const offset = new Date(after).getTimezoneOffset() * 60e3;
  // shift so that local fields read as UTC fields, compute, shift back
  return nextRun(cal, after - offset) + offset;
}
