/**
 * Reading many small blobs at once through one `git cat-file --batch`.
 * Output grammar (git-cat-file(1), BATCH OUTPUT):
 *   <oid> SP <type> SP <size> LF <contents> LF      |   <object> SP missing LF
 */
import { runGit } from './exec.js';

export interface BlobInfo {
  oid: string;
  type: string;
  size: number;
}

export async function batchCheck(cwd: string, oids: string[]): Promise<Map<string, BlobInfo>> {
  const out = new Map<string, BlobInfo>();
  if (oids.length === 0) return out;
  const r = await runGit(['cat-file', '--batch-check'], { cwd, input: oids.join('\n') + '\n' });
  for (const line of r.stdout.toString('utf8').split('\n')) {
    const [oid, type, size] = line.split(' ');
    if (oid && type && type !== 'missing' && size !== undefined) out.set(oid, { oid, type, size: Number(size) });
  }
  return out;
}

/** Contents of the given objects (all expected to exist and be small). */
export async function batchRead(cwd: string, oids: string[]): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  if (oids.length === 0) return out;
  const r = await runGit(['cat-file', '--batch'], { cwd, input: oids.join('\n') + '\n' });
  const buf = r.stdout;
  let at = 0;
  while (at < buf.length) {
    const nl = buf.indexOf(0x0a, at);
    if (nl < 0) break;
    const head = buf.toString('utf8', at, nl).split(' ');
    at = nl + 1;
    if (head[1] === 'missing' || head.length < 3) continue;
    const size = Number(head[2]);
    out.set(head[0]!, buf.subarray(at, at + size));
    at += size + 1;
  }
  return out;
}

/** The object id Git gives a blob with these bytes. */
export async function blobOid(content: Buffer, hashAlgo: 'sha1' | 'sha256'): Promise<string> {
  const { createHash } = await import('node:crypto');
  return createHash(hashAlgo).update(`blob ${content.length}\0`).update(content).digest('hex');
}
