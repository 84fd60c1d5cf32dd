/**
 * What `git dits schedule install` writes: a systemd user service and timer per job and
 * repository, or one crontab line per job and repository where there is no systemd.
 *
 * Names are per repository, `dits-<job>-<folder>-<8 hex of the path's sha256>` (the folder name
 * only for people reading `systemctl --user list-timers`; the hash keeps two repositories with
 * the same folder name apart). A template unit (`dits-snapshot@<escaped path>`) could not carry
 * each repository's own schedule from its git config, and a long path does not fit a unit name.
 * Each file's first line names the repository; crontab lines end with `# dits-schedule <id> <job>`,
 * which is how install replaces them and remove finds them.
 *
 * The service runs `git dits lifecycle run <job>` with the absolute node and git-dits of the
 * install, under the PATH of the install (the user manager's PATH lacks ~/.local/bin and nvm's
 * node); its output goes to the journal, and the run logs it to .git/dits/logs as well.
 * Timers are Persistent=true: a run missed while the machine was off happens at the next boot.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { cronFields, type Calendar } from './calendar.js';
import { JOBS, type JobName } from './jobs.js';

export interface UnitContext {
  workTree: string;
  /** absolute argv that runs git dits: [node, entry script] */
  dits: string[];
  /** the PATH the job runs with */
  pathEnv: string;
}

export function repoId(workTree: string): string {
  return createHash('sha256').update(workTree).digest('hex').slice(0, 8);
}

export function unitBaseName(job: JobName, workTree: string): string {
  const folder = path.basename(workTree).replace(/[^A-Za-z0-9_]+/g, '_').slice(0, 40) || 'repo';
  return `dits-${job}-${folder}-${repoId(workTree)}`;
}

/** A value for a unit file: `%` (specifiers) doubled, for Exec lines `$` too, quoted when needed (systemd.service(5) "Command lines"). */
function execWord(s: string): string {
  const escaped = s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /[\s"'\\;]/.test(s) ? `"${escaped}"` : escaped;
}

function unitValue(s: string): string {
  return s.replace(/%/g, '%%');
}

export function serviceUnit(job: JobName, u: UnitContext): string {
  return [
    `# Written by \`git dits schedule install\` for ${u.workTree}; \`git dits schedule remove\` deletes it.`,
    '[Unit]',
    `Description=Dits ${unitValue(JOBS[job].title)} in ${unitValue(u.workTree)}`,
    '',
    '[Service]',
    'Type=oneshot',
    `WorkingDirectory=${unitValue(u.workTree)}`,
    `Environment=${execWord(`PATH=${u.pathEnv}`)}`,
    `ExecStart=${[...u.dits, 'lifecycle', 'run', job].map(execWord).join(' ')}`,
    // background work: the editor in the foreground keeps the disk and the cores
    'Nice=10',
    'IOSchedulingClass=idle',
    '',
  ].join('\n');
}

export function timerUnit(job: JobName, cal: Calendar, u: UnitContext): string {
  return [
    `# Written by \`git dits schedule install\` for ${u.workTree}; the schedule is git config dits.schedule.${job}.`,
    '[Unit]',
    `Description=Dits ${unitValue(JOBS[job].title)} in ${unitValue(u.workTree)}, ${cal.onCalendar}`,
    '',
    '[Timer]',
    `OnCalendar=${cal.onCalendar}`,
    'Persistent=true',
    `Unit=${unitBaseName(job, u.workTree)}.service`,
    '',
    '[Install]',
    'WantedBy=timers.target',
    '',
  ].join('\n');
}

function shellWord(s: string): string {
  return /^[A-Za-z0-9_./=:,+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export const CRON_MARK = '# dits-schedule';

export function cronLine(job: JobName, cal: Calendar, u: UnitContext): string {
  // % ends a crontab command (crontab(5)): escaped in every word
  const cmd = `cd ${shellWord(u.workTree)} && PATH=${shellWord(u.pathEnv)} ${[...u.dits, 'lifecycle', 'run', job].map(shellWord).join(' ')} >/dev/null 2>&1`.replace(/%/g, '\\%');
  return `${cronFields(cal)} ${cmd} ${CRON_MARK} ${repoId(u.workTree)} ${job}`;
}

/** The job a crontab line of this repository runs, if it is one of ours. */
export function cronLineJob(line: string, workTree: string): string | undefined {
  const m = new RegExp(`${CRON_MARK} ([0-9a-f]{8}) (\\S+)\\s*$`).exec(line);
  return m && m[1] === repoId(workTree) ? m[2] : undefined;
}
