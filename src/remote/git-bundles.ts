/**
 * Git objects travel as bundles (gitformat-bundle(5)): one per push, holding the objects
 * reachable from the pushed tips and not from what the remote already had. Fetch applies
 * them in push order, so every bundle's prerequisites are present when it is applied.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { runGit } from '../git/exec.js';
import { DitsUserError } from '../errors.js';
import type { ObjectStorage } from '../transfer/object-storage.js';
import type { BundleRecord } from './remote-state.js';

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

/**
 * Downloads and applies, in push order, the bundles whose tips are not all in `present`
 * (a fetch, and the server's cache of a repository's git data); returns how many were
 * applied. A bundle listed but missing from the storage is the remote's damage.
 */
export async function applyMissingBundles(cwd: string, storage: ObjectStorage, bundles: readonly BundleRecord[], present: ReadonlySet<string>, tmpDir: string): Promise<number> {
  fs.mkdirSync(tmpDir, { recursive: true });
  let applied = 0;
  for (const b of bundles) {
    if (b.tips.every((t) => present.has(t))) continue;
    const file = path.join(tmpDir, `fetch-${process.pid}-${path.basename(b.key)}`);
    try {
      const stream = await storage.get(b.key);
      await new Promise<void>((resolve, reject) => {
        const out = fs.createWriteStream(file);
        stream.on('error', reject);
        out.on('error', reject);
        out.on('finish', resolve);
        stream.pipe(out);
      });
      await applyBundle(cwd, file);
      applied++;
    } catch (err) {
      if ((err as { code?: string }).code === 'storage-not-found') {
        throw new DitsUserError('remote-corrupt', `the remote lists git data ${b.key} but it is missing from ${storage.location}`, { hint: 'the remote was damaged; push again from a clone that has these commits' });
      }
      throw err;
    } finally {
      fs.rmSync(file, { force: true });
    }
  }
  return applied;
}
