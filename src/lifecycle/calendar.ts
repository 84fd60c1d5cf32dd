/**
 * The schedule of a lifecycle job, written as systemd writes a calendar event (systemd.time(7),
 * "Calendar Events"), in the subset that both systemd timers and cron can express:
 *
 *   hourly | daily | minutely | off
 *   [*-*-* ]<hours>:<minutes>[:00]      hours, minutes: `*`, a number, a list `1,5`, a step `0/15`
 *
 * `04:00` is daily at 04:00, `*:30` hourly at half past, `*:0/15` every quarter hour. Dates and
 * weekdays are not taken (a crontab line could not carry every form systemd has); times are
 * the machine's local time, as for both systemd and cron.
 */
import { DitsUserError } from '../errors.js';

export interface Calendar {
  /** the hours (0-23) and minutes (0-59) it fires at, sorted */
  hours: number[];
  minutes: number[];
  /** normalised, as `systemd-analyze calendar` prints it: `*-*-* 04:00:00` */
  onCalendar: string;
}

const FORMS = 'hourly, daily, off, HH:MM (daily), *:MM (hourly), *:0/15 (every 15 minutes), or *-*-* HH:MM:00';

function field(text: string, max: number, what: string, spec: string): number[] {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    let m: RegExpExecArray | null;
    if (part === '*') for (let i = 0; i <= max; i++) out.add(i);
    else if ((m = /^(\d{1,2})\/(\d{1,2})$/.exec(part))) {
      const start = Number(m[1]);
      const step = Number(m[2]);
      if (step < 1 || start > max) throw badSpec(spec, `the step '${part}' of the ${what}`);
      for (let i = start; i <= max; i += step) out.add(i);
    } else if (/^\d{1,2}$/.test(part) && Number(part) <= max) out.add(Number(part));
    else throw badSpec(spec, `the ${what} '${part}'`);
  }
  return [...out].sort((a, b) => a - b);
}

function badSpec(spec: string, what: string): DitsUserError {
  return new DitsUserError('bad-schedule', `cannot read the schedule '${spec}' (${what})`, { hint: `use ${FORMS}`, exitCode: 2 });
}

function show(values: number[], max: number): string {
  if (values.length === max + 1) return '*';
  return values.map((v) => String(v).padStart(2, '0')).join(',');
}

/** The schedule, or null for `off` (also `false`, `no`, `never`, `disabled`). */
export function parseCalendar(spec: string): Calendar | null {
  const s = spec.trim();
  const lower = s.toLowerCase();
  if (['off', 'false', 'no', 'never', 'disabled', 'none'].includes(lower)) return null;
  let hm: string;
  if (lower === 'hourly') hm = '*:00';
  else if (lower === 'daily') hm = '00:00';
  else if (lower === 'minutely') hm = '*:*';
  else hm = s.replace(/^\*-\*-\*\s+/, '');
  const m = /^([^:\s]+):([^:\s]+)(?::(\d{1,2}))?$/.exec(hm);
  if (!m) throw badSpec(spec, 'not a time of day');
  if (m[3] !== undefined && Number(m[3]) !== 0) throw badSpec(spec, 'seconds other than :00 (cron has none)');
  const hours = field(m[1]!, 23, 'hour', spec);
  const minutes = field(m[2]!, 59, 'minute', spec);
  return { hours, minutes, onCalendar: `*-*-* ${show(hours, 23)}:${show(minutes, 59)}:00` };
}

function fires(cal: Calendar, d: Date): boolean {
  return cal.hours.includes(d.getHours()) && cal.minutes.includes(d.getMinutes());
}

/** The first time it fires strictly after `after` (ms since the epoch). */
export function nextRun(cal: Calendar, after: number): number {
  const d = new Date(after);
  d.setSeconds(0, 0);
  for (let i = 0; i <= 2 * 24 * 60; i++) {
    d.setMinutes(d.getMinutes() + 1);
    if (fires(cal, d)) return d.getTime();
  }
  throw new Error(`calendar ${cal.onCalendar} never fires`);
}

/** The last time it fired at or before `at`. */
export function previousRun(cal: Calendar, at: number): number {
  const d = new Date(at);
  d.setSeconds(0, 0);
  for (let i = 0; i <= 2 * 24 * 60; i++) {
    if (fires(cal, d)) return d.getTime();
    d.setMinutes(d.getMinutes() - 1);
  }
  throw new Error(`calendar ${cal.onCalendar} never fires`);
}

/** The minute and hour fields of a crontab line (crontab(5)). */
export function cronFields(cal: Calendar): string {
  return `${cal.minutes.length === 60 ? '*' : cal.minutes.join(',')} ${cal.hours.length === 24 ? '*' : cal.hours.join(',')} * * *`;
}
