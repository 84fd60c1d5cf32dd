/**
 * Git objects travel as bundles (gitformat-bundle(5)): one per push, holding the objects
 * reachable from the pushed tips and not from what the remote already had. Fetch applies
 * them in push order, so every bundle's prerequisites are present when it is applied.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { runGit } from '../git/exec.js';

export async function hasObject(cwd: string, oid: string): Promise<boolean> {
  const r = await runGit(['cat-file', '-e', `${oid}^{object}`], { cwd, allowFail: true });
  return r.exitCode === 0;
}

/** Which of `oids` exist locally. */
export async function presentObjects(cwd: string, oids: string[]): Promise<Set<string>> {
  const out = new Set<string>();
  if (oids.length === 0) return out;
  const r = await runGit(['cat-file', '--batch-check=%(objectname)'], { cwd, input: oids.join('\n') + '\n' });
  for (const line of r.stdout.toString('utf8').split('\n')) if (/^[0-9a-f]{40,64}$/.test(line)) out.add(line);
  return out;
}

/** Whether any object is reachable from `tips` and not from `exclude`. */
export async function hasNewObjects(cwd: string, tips: string[], exclude: string[]): Promise<boolean> {
  const r = await runGit(['rev-list', '--objects', '--max-count=1', '--stdin'], { cwd, input: [...tips, ...exclude.map((e) => `^${e}`)].join('\n') + '\n' });
  return r.stdout.length > 0;
}

/**
 * Writes a bundle of `tips` minus `exclude` to a temp file in `tmpDir`; returns its path,
 * size and sha256 (its name on the remote). Null when there is nothing new to send.
 */
export async function createBundle(cwd: string, tmpDir: string, tips: string[], exclude: string[]): Promise<{ file: string; size: number; sha256: string } | null> {
  if (!(await hasNewObjects(cwd, tips, exclude))) return null;
  fs.mkdirSync(tmpDir, { recursive: true });
  const file = path.join(tmpDir, `push-${process.pid}-${randomBytes(4).toString('hex')}.bundle`);
  // git bundle records named refs only: name each tip with a temporary ref, all in one
  // transaction, with hooks off (these refs are the helper's own: the reference-transaction
  // hooks would otherwise run twice for each update, each a shell and a git process).
  const refs = tips.map((_, i) => `refs/dits-push/${process.pid}/${i}`);
  const quiet = ['-c', 'core.hooksPath=/dev/null'];
  try {
    await runGit([...quiet, 'update-ref', '--no-deref', '--stdin'], { cwd, input: refs.map((r, i) => `update ${r} ${tips[i]!}\n`).join('') });
    await runGit(['bundle', 'create', '-q', file, '--stdin'], { cwd, input: [...refs, ...exclude.map((e) => `^${e}`)].join('\n') + '\n' });
  } finally {
    await runGit([...quiet, 'update-ref', '--no-deref', '--stdin'], { cwd, input: refs.map((r) => `delete ${r}\n`).join(''), allowFail: true });
  }
  const hash = createHash('sha256');
  for await (const c of fs.createReadStream(file)) hash.update(c as Buffer);
  return { file, size: fs.statSync(file).size, sha256: hash.digest('hex') };
}

/** Applies a bundle file: its objects land in the repository's object store. */
export async function applyBundle(cwd: string, file: string): Promise<void> {
  await runGit(['bundle', 'unbundle', file], { cwd });
}
