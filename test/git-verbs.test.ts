/**
 * Everyday Git verbs leave real files, never pointers (issue 15). Files above
 * dits.smudgeInlineMax (64k here) take the big-file path: smudge leaves a pointer, and Dits
 * writes the real file outside Git's pipe, from a hook or, where Git runs none (stash apply,
 * sparse-checkout, the steps of a rebase), from the filter process when Git closes its pipe.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { GitSandbox, SMALL_CHUNKS, cloneInto, randomBytesSeeded, writeFile } from './helpers/git-env.js';

let sb: GitSandbox;
beforeAll(() => {
  sb = new GitSandbox('dits-verbs-');
});
afterAll(() => sb.cleanup());

const read = (repo: string, f: string): Buffer => fs.readFileSync(path.join(repo, f));
/** Asserts the file holds exactly `want` (a pointer left behind fails here with its size). */
function expectBytes(repo: string, f: string, want: Buffer): void {
  const got = read(repo, f);
  expect(got.length, `${f}: size`).toBe(want.length);
  expect(got.equals(want), `${f}: bytes`).toBe(true);
}

/** A repository with big a.mov and b.mov and a small notes.txt, committed on main. */
function bigRepo(name: string): { repo: string; a: Buffer; b: Buffer } {
  const a = randomBytesSeeded(300_000, 1);
  const b = randomBytesSeeded(200_000, 2);
  const repo = sb.repo(name, { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': a, 'b.mov': b, 'notes.txt': 'n\n' } });
  sb.mustGit(['add', '.'], repo);
  sb.mustGit(['commit', '-q', '-m', 'one'], repo);
  return { repo, a, b };
}

describe('stash', () => {
  it('apply, apply --index and pop with two entries leave real files and the status Git would show', () => {
    const { repo, a, b } = bigRepo('stash');
    const a2 = randomBytesSeeded(250_000, 3);
    const b2 = randomBytesSeeded(260_000, 4);
    // stash 1: a.mov changed in the working tree only
    writeFile(path.join(repo, 'a.mov'), a2);
    sb.mustGit(['stash', '-q'], repo);
    expectBytes(repo, 'a.mov', a);
    // stash 0: b.mov changed and staged
    writeFile(path.join(repo, 'b.mov'), b2);
    sb.mustGit(['add', 'b.mov'], repo);
    sb.mustGit(['stash', '-q'], repo);
    expectBytes(repo, 'b.mov', b);
    expect(sb.status(repo)).toBe('');

    sb.mustGit(['stash', 'apply', '-q', 'stash@{1}'], repo);
    expectBytes(repo, 'a.mov', a2);
    expect(sb.status(repo)).toBe(' M a.mov\n');
    sb.mustGit(['reset', '-q', '--hard'], repo);
    expectBytes(repo, 'a.mov', a);

    sb.mustGit(['stash', 'apply', '--index', '-q'], repo);
    expectBytes(repo, 'b.mov', b2);
    expect(sb.status(repo)).toBe('M  b.mov\n');
    sb.mustGit(['reset', '-q', '--hard'], repo);
    expectBytes(repo, 'b.mov', b);

    // not quiet: git runs `git status` itself at the end
    sb.mustGit(['stash', 'pop'], repo);
    expectBytes(repo, 'b.mov', b2);
    expect(sb.status(repo)).toBe(' M b.mov\n');
    sb.mustGit(['reset', '-q', '--hard'], repo);
    sb.mustGit(['stash', 'pop', '-q'], repo);
    expectBytes(repo, 'a.mov', a2);
    expect(sb.status(repo)).toBe(' M a.mov\n');
    expect(sb.mustGit(['stash', 'list'], repo)).toBe('');
  });
});

/** main: one (a, b) then a commit that only touches notes.txt; feat (from one): two commits that change a.mov. */
function divergedRepo(name: string): { repo: string; a: Buffer; b: Buffer; f1: Buffer; f2: Buffer } {
  const { repo, a, b } = bigRepo(name);
  const f1 = randomBytesSeeded(300_000, 11);
  const f2 = randomBytesSeeded(310_000, 12);
  sb.mustGit(['switch', '-q', '-c', 'feat'], repo);
  writeFile(path.join(repo, 'a.mov'), f1);
  sb.mustGit(['commit', '-q', '-am', 'f1'], repo);
  writeFile(path.join(repo, 'a.mov'), f2);
  sb.mustGit(['commit', '-q', '-am', 'f2'], repo);
  sb.mustGit(['switch', '-q', 'main'], repo);
  writeFile(path.join(repo, 'notes.txt'), 'main\n');
  sb.mustGit(['commit', '-q', '-am', 'm1'], repo);
  return { repo, a, b, f1, f2 };
}

describe('the sequencer: rebase, pull --rebase, cherry-pick, revert', () => {
  it('git rebase of a branch that changes a big file twice', () => {
    const { repo, f2 } = divergedRepo('rebase');
    sb.mustGit(['switch', '-q', 'feat'], repo);
    const r = sb.git(['rebase', 'main'], repo);
    expect(r.status, r.stderr).toBe(0);
    expectBytes(repo, 'a.mov', f2);
    expect(read(repo, 'notes.txt').toString()).toBe('main\n');
    expect(sb.status(repo)).toBe('');
    expect(sb.mustGit(['log', '--format=%s', 'main..HEAD'], repo)).toBe('f2\nf1\n');

    // An exec step after each pick sees the real file and a clean status (git re-reads the
    // index after an exec, so the hook writes files before one); and no early writes while it
    // runs (each would be a full copy of a version a later step replaces).
    const seen = path.join(sb.dir, 'rebase-exec-seen');
    sb.mustGit(['reset', '-q', '--hard', 'ORIG_HEAD'], repo);
    const look = `stat -c %s a.mov >> '${seen}'; git status --porcelain >> '${seen}'; ls .git/dits/early >> '${seen}' 2>/dev/null; true`;
    const x = sb.git(['rebase', '--force-rebase', '--exec', look, 'main'], repo);
    expect(x.status, x.stderr).toBe(0);
    expect(fs.readFileSync(seen, 'utf8')).toBe('300000\n310000\n');
    expectBytes(repo, 'a.mov', f2);
    expect(sb.status(repo)).toBe('');
    // an exec before the first pick sees a pointer (documented), and the rebase goes through
    sb.mustGit(['reset', '-q', '--hard', 'ORIG_HEAD'], repo);
    const first = sb.git(['rebase', '-i', 'main'], repo, undefined, { GIT_SEQUENCE_EDITOR: "sed -i '1i exec true'" });
    expect(first.status, first.stderr).toBe(0);
    expectBytes(repo, 'a.mov', f2);
    expect(sb.status(repo)).toBe('');
  });

  it('git rebase -i (todo unchanged) and git pull --rebase', () => {
    const { repo, f2 } = divergedRepo('rebase-i');
    sb.mustGit(['switch', '-q', 'feat'], repo);
    const r = sb.git(['rebase', '-i', 'main'], repo, undefined, { GIT_SEQUENCE_EDITOR: 'true' });
    expect(r.status, r.stderr).toBe(0);
    expectBytes(repo, 'a.mov', f2);
    expect(sb.status(repo)).toBe('');

    const d = divergedRepo('pull-rebase');
    sb.mustGit(['switch', '-q', 'feat'], d.repo);
    const p = sb.git(['pull', '--rebase', '.', 'main'], d.repo);
    expect(p.status, p.stderr).toBe(0);
    expectBytes(d.repo, 'a.mov', d.f2);
    expect(sb.status(d.repo)).toBe('');
  });

  it('git pull --rebase from a Dits remote, with local commits that change a big file', () => {
    const remote = `dits::file://${path.join(sb.dir, 'remotes', 'pull-rebase')}`;
    const { repo } = bigRepo('pull-rebase-src');
    sb.mustGit(['remote', 'add', 'origin', remote], repo);
    sb.mustGit(['push', '-q', '-u', 'origin', 'main'], repo);
    const c = cloneInto(sb, remote, 'pull-rebase-clone', SMALL_CHUNKS);
    const theirs = randomBytesSeeded(290_000, 41);
    writeFile(path.join(repo, 'b.mov'), theirs);
    sb.mustGit(['commit', '-q', '-am', 'theirs'], repo);
    sb.mustGit(['push', '-q'], repo);
    for (const seed of [42, 43]) {
      writeFile(path.join(c, 'a.mov'), randomBytesSeeded(300_000, seed));
      sb.mustGit(['commit', '-q', '-am', `ours ${seed}`], c);
    }
    const r = sb.git(['pull', '--rebase'], c);
    expect(r.status, r.stderr).toBe(0);
    expectBytes(c, 'a.mov', randomBytesSeeded(300_000, 43));
    expectBytes(c, 'b.mov', theirs);
    expect(sb.status(c)).toBe('');
    expect(sb.mustGit(['log', '--format=%s'], c)).toBe('ours 43\nours 42\ntheirs\none\n');
  });

  it('a rebase that stops to edit leaves real files, and --continue finishes', () => {
    const { repo, f1, f2 } = divergedRepo('rebase-stop');
    const m = randomBytesSeeded(280_000, 13);
    writeFile(path.join(repo, 'b.mov'), m);
    sb.mustGit(['commit', '-q', '-am', 'm2'], repo);
    sb.mustGit(['switch', '-q', 'feat'], repo);
    // an edit stop after f1: the working tree must hold f1 while the user works there
    const r = sb.git(['rebase', '-i', 'main'], repo, undefined, { GIT_SEQUENCE_EDITOR: "sed -i '1s/^pick/edit/'" });
    expect(r.status, r.stderr).toBe(0);
    expectBytes(repo, 'a.mov', f1);
    expectBytes(repo, 'b.mov', m);
    expect(sb.status(repo)).toBe('');
    const c = sb.git(['rebase', '--continue'], repo);
    expect(c.status, c.stderr).toBe(0);
    expectBytes(repo, 'a.mov', f2);
    expect(sb.status(repo)).toBe('');
  });

  it('git rebase --apply, and git am of the same commits', () => {
    const { repo, f2 } = divergedRepo('rebase-apply');
    sb.mustGit(['switch', '-q', 'feat'], repo);
    const patches = path.join(sb.dir, 'rebase-apply-patches');
    sb.mustGit(['format-patch', '-q', '-o', patches, 'main~1..feat'], repo);
    const r = sb.git(['rebase', '--apply', 'main'], repo);
    expect(r.status, r.stderr).toBe(0);
    expectBytes(repo, 'a.mov', f2);
    expect(sb.status(repo)).toBe('');
    sb.mustGit(['switch', '-q', '-c', 'am', 'main'], repo);
    const am = sb.git(['am', '-q', ...fs.readdirSync(patches).sort().map((f) => path.join(patches, f))], repo);
    expect(am.status, am.stderr).toBe(0);
    expectBytes(repo, 'a.mov', f2);
    expect(sb.status(repo)).toBe('');
  });

  it('git cherry-pick of two commits, then git revert of both', () => {
    const { repo, a, f1, f2 } = divergedRepo('cherry');
    const r = sb.git(['cherry-pick', 'main..feat'], repo);
    expect(r.status, r.stderr).toBe(0);
    expectBytes(repo, 'a.mov', f2);
    expect(sb.status(repo)).toBe('');
    const one = sb.git(['revert', '--no-edit', 'HEAD'], repo);
    expect(one.status, one.stderr).toBe(0);
    expectBytes(repo, 'a.mov', f1);
    expect(sb.status(repo)).toBe('');
    sb.mustGit(['reset', '-q', '--hard', 'HEAD~1'], repo);
    const two = sb.git(['revert', '--no-edit', 'HEAD~2..HEAD'], repo);
    expect(two.status, two.stderr).toBe(0);
    expectBytes(repo, 'a.mov', a);
    expect(sb.status(repo)).toBe('');
  });
});

describe('sparse-checkout', () => {
  for (const sparseIndex of [false, true]) {
    it(`set, add and disable bring real files into the cone${sparseIndex ? ' (sparse index)' : ''}`, () => {
      const files = { 'd1/a.mov': randomBytesSeeded(300_000, 21), 'd2/b.mov': randomBytesSeeded(300_000, 22), 'top.mov': randomBytesSeeded(200_000, 23) };
      const repo = sb.repo(`sparse-${sparseIndex}`, { track: ['*.mov'], config: SMALL_CHUNKS, files });
      sb.mustGit(['add', '.'], repo);
      sb.mustGit(['commit', '-q', '-m', 'one'], repo);
      const all = (): void => {
        for (const [f, want] of Object.entries(files)) expectBytes(repo, f, want);
      };
      sb.mustGit(['sparse-checkout', 'set', ...(sparseIndex ? ['--sparse-index'] : []), 'd1'], repo);
      expect(fs.existsSync(path.join(repo, 'd2'))).toBe(false);
      expectBytes(repo, 'd1/a.mov', files['d1/a.mov']);
      // a file that leaves the cone and comes back is written again (git removed it)
      sb.mustGit(['sparse-checkout', 'set', 'd2'], repo);
      expect(fs.existsSync(path.join(repo, 'd1'))).toBe(false);
      expectBytes(repo, 'd2/b.mov', files['d2/b.mov']);
      expect(sb.status(repo)).toBe('');
      sb.mustGit(['sparse-checkout', 'add', 'd1'], repo);
      all();
      expect(sb.status(repo)).toBe('');
      sb.mustGit(['sparse-checkout', 'set', 'd1'], repo);
      sb.mustGit(['sparse-checkout', 'disable'], repo);
      all();
      expect(sb.status(repo)).toBe('');
    });
  }
});

describe('checkout, restore, reset, switch, worktree', () => {
  it('every way back to a committed version writes the real file', () => {
    const { repo, a } = bigRepo('ways-back');
    const a2 = randomBytesSeeded(320_000, 31);
    writeFile(path.join(repo, 'a.mov'), a2);
    sb.mustGit(['commit', '-q', '-am', 'two'], repo);
    const clean = (want: Buffer, status = ''): void => {
      expectBytes(repo, 'a.mov', want);
      expect(sb.status(repo)).toBe(status);
    };
    writeFile(path.join(repo, 'a.mov'), 'junk');
    sb.mustGit(['checkout', '--', 'a.mov'], repo);
    clean(a2);
    writeFile(path.join(repo, 'a.mov'), 'junk');
    sb.mustGit(['restore', 'a.mov'], repo);
    clean(a2);
    sb.mustGit(['restore', '--source=HEAD~1', 'a.mov'], repo);
    clean(a, ' M a.mov\n');
    sb.mustGit(['restore', '--source=HEAD~1', '--staged', '--worktree', 'a.mov'], repo);
    clean(a, 'M  a.mov\n');
    sb.mustGit(['checkout', 'HEAD', '--', 'a.mov'], repo);
    clean(a2);
    sb.mustGit(['reset', '-q', '--hard', 'HEAD~1'], repo);
    clean(a);
    sb.mustGit(['reset', '-q', '--hard', 'ORIG_HEAD'], repo);
    clean(a2);
    sb.mustGit(['reset', '-q', '--keep', 'HEAD~1'], repo);
    clean(a);
    sb.mustGit(['reset', '-q', '--merge', 'ORIG_HEAD'], repo);
    clean(a2);
    sb.mustGit(['switch', '-q', '-c', 'old', 'HEAD~1'], repo);
    clean(a);
    sb.mustGit(['switch', '-q', 'main'], repo);
    clean(a2);
    sb.mustGit(['switch', '-q', '--detach', 'HEAD~1'], repo);
    clean(a);
    sb.mustGit(['switch', '-q', 'main'], repo);
    // plumbing runs no hook at all
    fs.rmSync(path.join(repo, 'a.mov'));
    sb.mustGit(['checkout-index', '-f', '-a'], repo);
    clean(a2);
    writeFile(path.join(repo, 'a.mov'), 'junk');
    sb.mustGit(['read-tree', '-u', '--reset', 'HEAD'], repo);
    clean(a2);
    sb.mustGit(['read-tree', '-u', '-m', 'HEAD', 'HEAD~1'], repo);
    clean(a, 'M  a.mov\n');
    sb.mustGit(['reset', '-q', '--hard'], repo);

    // new worktrees, on a branch and detached: real files there too
    const wt1 = path.join(sb.dir, 'ways-back-wt1');
    const wt2 = path.join(sb.dir, 'ways-back-wt2');
    sb.mustGit(['worktree', 'add', '-q', wt1, 'old'], repo);
    expectBytes(wt1, 'a.mov', a);
    expect(sb.status(wt1)).toBe('');
    sb.mustGit(['worktree', 'add', '-q', '--detach', wt2, 'main'], repo);
    expectBytes(wt2, 'a.mov', a2);
    expect(sb.status(wt2)).toBe('');
    // a stash applied in a worktree writes into that worktree
    writeFile(path.join(wt2, 'a.mov'), a);
    sb.mustGit(['stash', '-q'], wt2);
    sb.mustGit(['stash', 'apply', '-q'], wt2);
    expectBytes(wt2, 'a.mov', a);
    expect(sb.status(wt2)).toBe(' M a.mov\n');
    clean(a2);
  });
});

describe('without the Dits hooks', () => {
  it('core.hooksPath pointing elsewhere (as husky sets it): checkout, switch and reset still write real files', () => {
    const { repo, a } = bigRepo('hooks-path');
    const a2 = randomBytesSeeded(280_000, 61);
    writeFile(path.join(repo, 'a.mov'), a2);
    sb.mustGit(['commit', '-q', '-am', 'two'], repo);
    const elsewhere = path.join(sb.dir, 'hooks-path-elsewhere');
    fs.mkdirSync(elsewhere, { recursive: true });
    sb.mustGit(['config', 'core.hooksPath', elsewhere], repo);
    sb.mustGit(['checkout', '-q', 'HEAD~1'], repo);
    expectBytes(repo, 'a.mov', a);
    expect(sb.status(repo)).toBe('');
    sb.mustGit(['switch', '-q', 'main'], repo);
    expectBytes(repo, 'a.mov', a2);
    sb.mustGit(['reset', '-q', '--hard', 'HEAD~1'], repo);
    expectBytes(repo, 'a.mov', a);
    expect(sb.status(repo)).toBe('');
  });
});

describe('nothing the user changed is overwritten', () => {
  it('a smudge that is not a checkout (cat-file --filters, archive) leaves an edited file alone at exit', () => {
    const { repo } = bigRepo('keep-edits');
    const mine = randomBytesSeeded(123_456, 51);
    writeFile(path.join(repo, 'a.mov'), mine);
    // the filter process puts a.mov on the pending list, and writes what is left there when git exits
    expect(sb.mustGit(['cat-file', '--filters', 'HEAD:a.mov'], repo)).toMatch(/^version dits\/1\n/);
    sb.mustGit(['archive', '-o', path.join(sb.dir, 'keep-edits.tar'), 'HEAD'], repo);
    expectBytes(repo, 'a.mov', mine);
    // a file of the user's that holds a pointer's text is not in Git's index: left alone too
    const ptr = sb.mustGit(['cat-file', 'blob', 'HEAD:b.mov'], repo);
    writeFile(path.join(repo, 'copy.mov'), ptr);
    sb.mustGit(['stash', '-q'], repo);
    sb.mustGit(['stash', 'apply', '-q'], repo);
    expectBytes(repo, 'a.mov', mine);
    expect(read(repo, 'copy.mov').toString()).toBe(ptr);
    expect(sb.status(repo)).toBe(' M a.mov\n?? copy.mov\n');
  });
});

describe('messages tell the truth', () => {
  it('git dits checkout and pull in a lazy clone count what they wrote and what they left', () => {
    const { repo, a } = bigRepo('lazy-src');
    sb.mustGit(['remote', 'add', 'origin', `dits::file://${path.join(sb.dir, 'remotes', 'lazy')}`], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    const c = cloneInto(sb, `dits::file://${path.join(sb.dir, 'remotes', 'lazy')}`, 'lazy', { ...SMALL_CHUNKS, 'dits.fetchMode': 'lazy' });
    expect(read(c, 'a.mov').length).toBeLessThan(1024);

    // lazy: nothing written, and it says so (it said "Wrote 2 file(s).")
    const co = sb.dits(['checkout'], c);
    expect(co.status, co.stderr).toBe(0);
    expect(co.stdout).not.toMatch(/Wrote|have their content/);
    expect(co.stderr).toMatch(/2 file\(s\) left as pointers \(lazy fetch\)/);
    // paths that name no tracked file: an error, not "All tracked files have their content"
    const bad = sb.dits(['pull', '--', 'nosuch.mov'], c);
    expect(bad.status).toBe(1);
    expect(bad.stdout).not.toMatch(/have their content/);
    expect(bad.stderr).toMatch(/'nosuch\.mov' is neither a Dits remote nor a tracked path/);
    expect(bad.stderr).toMatch(/hint:/);
    expect(sb.dits(['checkout', 'notes.txt'], c).status).toBe(1);

    const one = sb.dits(['pull', 'a.mov'], c);
    expect(one.status, one.stderr).toBe(0);
    expect(one.stdout).toBe('Wrote 1 file(s).\n');
    expectBytes(c, 'a.mov', a);
    expect(sb.mustDits(['checkout', 'a.mov'], c)).toBe('These files have their content in the working tree.\n');
    // `pull origin main`: remote and branch (pull-remote.test.ts), here the rest of HEAD's files
    const pull = sb.dits(['pull', 'origin', 'main'], c);
    expect(pull.status, pull.stderr).toBe(0);
    expect(pull.stdout).toBe('Wrote 1 file(s) with content from origin.\n');
    expect(sb.mustDits(['checkout'], c)).toBe('All tracked files have their content in the working tree.\n');
    expect(sb.status(c)).toBe('');
  });
});
