/**
 * The lifecycle jobs the scheduler runs, each as a `git dits` command in the repository, and
 * what each one does with the repository's git config. A job with nothing configured to do
 * (no tiering policy, no mirror) is `skipped`, not failed: installing every schedule on a
 * repository that uses only some of them is harmless.
 */
import { DitsUserError } from '../errors.js';
import { parseByteSize, type DitsConfig } from '../git/dits-config.js';
import { parseCalendar, type Calendar } from './calendar.js';

export const JOB_NAMES = ['snapshot', 'tier', 'graduate', 'mirror', 'retention'] as const;
export type JobName = (typeof JOB_NAMES)[number];

export interface JobInfo {
  name: JobName;
  /** what it does, for status and the unit's Description */
  title: string;
  /** when it runs unless `dits.schedule.<name>` says otherwise */
  defaultSchedule: string;
}

export const JOBS: Readonly<Record<JobName, JobInfo>> = {
  snapshot: { name: 'snapshot', title: 'snapshot of the working tree', defaultSchedule: 'hourly' },
  tier: { name: 'tier', title: 'local tiering (prune by dits.prune.olderThan / maxLocalSize)', defaultSchedule: 'hourly' },
  graduate: { name: 'graduate', title: 'graduation of idle work', defaultSchedule: '03:00' },
  mirror: { name: 'mirror', title: 'mirror sync', defaultSchedule: '04:00' },
  retention: { name: 'retention', title: 'snapshot retention (snapshot prune)', defaultSchedule: '05:00' },
};

export function isJobName(s: string): s is JobName {
  return (JOB_NAMES as readonly string[]).includes(s);
}

export function requireJobName(s: string): JobName {
  if (!isJobName(s)) throw new DitsUserError('unknown-job', `'${s}' is not a lifecycle job`, { hint: `the jobs are ${JOB_NAMES.join(', ')}`, exitCode: 2 });
  return s;
}

/** The job's schedule from `dits.schedule.<job>` (else its default); null when off. */
export function jobSchedule(config: DitsConfig, job: JobName): Calendar | null {
  const key = `dits.schedule.${job}`;
  const v = config.raw(key);
  if (v === null) throw new DitsUserError('bad-config', `git config ${key} has no value`, { hint: `set it to a schedule (hourly, daily, 04:00, off): \`git config ${key} 04:00\`` });
  try {
    return parseCalendar(v ?? JOBS[job].defaultSchedule);
  } catch (e) {
    if (e instanceof DitsUserError) throw new DitsUserError('bad-config', `git config ${key}: ${e.message}`, { hint: `${e.hint}; fix it with \`git config ${key} <schedule>\`` });
    throw e;
  }
}

/** What a run of the job does: the `git dits` arguments, or why it has nothing to do. */
export type JobCommand = { args: string[] } | { skip: string };

const AGE = /^(\d+)\s*(s|m|h|d|w)?$/;

/** The local tiering policy in git config (seed 004): `dits.prune.olderThan`, `dits.prune.maxLocalSize`. */
export function tieringPolicy(config: DitsConfig): { olderThan?: string; maxLocalSize?: string; remote?: string } {
  const olderThan = config.string('dits.prune.olderThan')?.trim();
  const maxLocalSize = config.string('dits.prune.maxLocalSize')?.trim();
  if (olderThan !== undefined && olderThan !== 'now' && !AGE.test(olderThan))
    throw new DitsUserError('bad-config', `git config dits.prune.olderThan = '${olderThan}' is not an age`, { hint: 'use e.g. 30d, 2w or 12h: `git config dits.prune.olderThan 30d`' });
  if (maxLocalSize !== undefined && parseByteSize(maxLocalSize) === null)
    throw new DitsUserError('bad-config', `git config dits.prune.maxLocalSize = '${maxLocalSize}' is not a size`, { hint: 'use e.g. 50G or 500M: `git config dits.prune.maxLocalSize 50G`' });
  return { olderThan: olderThan || undefined, maxLocalSize: maxLocalSize || undefined, remote: config.string('dits.prune.remote')?.trim() || undefined };
}

/**
 * `mirrors`: how many mirrors `git dits mirror add` recorded (dits.mirror.<name>.url). Reading
 * a bad value throws (the run records it as the job's failure, with the fix).
 */
export function jobCommand(job: JobName, config: DitsConfig, mirrors: number): JobCommand {
  switch (job) {
    case 'snapshot':
      return { args: ['snapshot'] };
    case 'tier': {
      const p = tieringPolicy(config);
      if (!p.olderThan && !p.maxLocalSize) return { skip: 'no tiering policy (set dits.prune.olderThan and/or dits.prune.maxLocalSize)' };
      return { args: ['prune', ...(p.olderThan ? ['--older-than', p.olderThan] : []), ...(p.maxLocalSize ? ['--max-local-size', p.maxLocalSize] : []), ...(p.remote ? ['--remote', p.remote] : [])] };
    }
    case 'graduate':
      if (!config.bool('dits.graduate.enabled', false)) return { skip: 'graduation is off for this repository (git config dits.graduate.enabled true turns it on)' };
      return { args: ['graduate', '.', ...(config.string('dits.graduate.idle') ? ['--idle', config.string('dits.graduate.idle')!.trim()] : [])] };
    case 'mirror':
      if (mirrors === 0) return { skip: 'no mirror (`git dits mirror add <name> <dits::url>` adds one)' };
      return { args: ['mirror', 'sync'] };
    case 'retention':
      return { args: ['snapshot', 'prune'] };
  }
}
