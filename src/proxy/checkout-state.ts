/**
 * The checkout-mode state of a working tree (checkout-mode.ts says what it means): the file
 * `<git dir>/dits/checkout-modes.json` and the mode a path has. Kept apart, with no heavy
 * imports, for the clean and smudge filter, which read it on their hot path.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DitsUserError } from '../errors.js';
import { gitConfigGet } from '../git/exec.js';

export const CHECKOUT_MODES = ['proxy', 'original'] as const;
export type CheckoutMode = (typeof CHECKOUT_MODES)[number];

/** A file as stat saw it: enough to know it again without reading it (ctime changes with every rename). */
export interface FileStamp {
  size: number;
  ino: number;
  mtimeNs: string;
}

export interface PathMode {
  /** chosen for this path; none: dits.checkoutMode decides */
  mode?: CheckoutMode;
  shown?: { original: string; proxy: string; stamp: FileStamp };
}

export interface ParkedFile {
  manifest: string;
  stamp: FileStamp;
  at: number;
}

export interface CheckoutModes {
  version: 1;
  paths: Record<string, PathMode>;
  parked: Record<string, ParkedFile>;
}

export function modesFile(gitDir: string): string {
  return path.join(gitDir, 'dits', 'checkout-modes.json');
}

export function parkedDir(gitDir: string): string {
  return path.join(gitDir, 'dits', 'parked');
}

/** The state of this working tree; empty when there is none (or it cannot be read: then parked files are checked by their bytes). */
export function readModes(gitDir: string): CheckoutModes {
  try {
    const v = JSON.parse(fs.readFileSync(modesFile(gitDir), 'utf8')) as Partial<CheckoutModes>;
    if (v && v.version === 1 && typeof v.paths === 'object' && typeof v.parked === 'object' && v.paths && v.parked) return v as CheckoutModes;
  } catch {
    /* none yet, or unreadable */
  }
  return { version: 1, paths: {}, parked: {} };
}

/** Replaces the state file atomically (a temp file, fsync, rename). */
export function writeModes(gitDir: string, modes: CheckoutModes): void {
  const file = modesFile(gitDir);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    fs.writeSync(fd, JSON.stringify(modes));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

export function parseCheckoutMode(value: string | undefined, what: string): CheckoutMode | undefined {
  if (value === undefined || value === '') return undefined;
  if ((CHECKOUT_MODES as readonly string[]).includes(value)) return value as CheckoutMode;
  throw new DitsUserError('bad-checkout-mode', `${what} is '${value}', not a checkout mode`, { hint: `use one of ${CHECKOUT_MODES.join(', ')}`, exitCode: 2 });
}

/** `dits.checkoutMode`: the mode of paths with none of their own (default original). */
export async function defaultCheckoutMode(cwd: string): Promise<CheckoutMode> {
  return parseCheckoutMode(await gitConfigGet('dits.checkoutMode', cwd), 'git config dits.checkoutMode') ?? 'original';
}

export function modeOf(modes: CheckoutModes, relPath: string, fallback: CheckoutMode): CheckoutMode {
  return modes.paths[relPath]?.mode ?? fallback;
}

export function stampOf(st: fs.BigIntStats): FileStamp {
  return { size: Number(st.size), ino: Number(st.ino), mtimeNs: st.mtimeNs.toString() };
}

export function sameStamp(a: FileStamp | undefined, st: fs.BigIntStats): boolean {
  return a !== undefined && a.size === Number(st.size) && a.ino === Number(st.ino) && a.mtimeNs === st.mtimeNs.toString();
}
