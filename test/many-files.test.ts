/**
 * Many tracked files in one git command: every file is one request to the filter process,
 * answered before git sends the next. 1,500 of them once hung `git checkout` for good (the
 * filter's pipe reader ran out of ring: see src/git/fd-reader-worker.ts).
 */
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { GitSandbox } from './helpers/git-env.js';

const sb = new GitSandbox();
afterAll(() => sb.cleanup());

describe('many tracked files', () => {
  it('1,500 files: add, commit, delete, checkout -- folder writes them all back, status clean', () => {
    const repo = sb.repo('many', { track: ['*.dpx'] });
    const dir = path.join(repo, 'seq');
    fs.mkdirSync(dir);
    const count = 1500;
    const name = (i: number) => `frame_${String(i).padStart(5, '0')}.dpx`;
    for (let i = 0; i < count; i++) fs.writeFileSync(path.join(dir, name(i)), `frame ${i} of a sequence\n`);
    sb.mustGit(['add', '.gitattributes', 'seq'], repo);
    sb.mustGit(['commit', '-q', '-m', 'sequence'], repo);
    expect(sb.mustGit(['cat-file', 'blob', `HEAD:seq/${name(7)}`], repo)).toMatch(/^version /); // stored as a pointer
    fs.rmSync(dir, { recursive: true });
    const r = sb.git(['checkout', '--', 'seq'], repo);
    expect(r.status, r.stderr).toBe(0);
    const files = fs.readdirSync(dir);
    expect(files.length).toBe(count);
    for (const i of [0, 777, count - 1]) expect(fs.readFileSync(path.join(dir, name(i)), 'utf8')).toBe(`frame ${i} of a sequence\n`);
    expect(sb.status(repo)).toBe('');
  });
});
