/**
 * Issue 15 as a user met it, through real processes: `git dits serve`, a push over
 * `dits::http://`, then `git dits server repo delete` and `repo create` of the same name
 * (the CLI on the data dir while the server runs) and a reader newly granted on it
 * cloning. The old repository's content must be gone; its neighbour `team/film2` intact.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DITS_BIN, GitSandbox, randomBytesSeeded } from '../test/helpers/git-env.js';

const CFG = { 'dits.chunkMin': '1024', 'dits.chunkAvg': '4096', 'dits.chunkMax': '16384', 'dits.smudgeInlineMax': '64k', 'dits.packSize': '256k' };

let alice: GitSandbox;
let newbie: GitSandbox;
let dataDir: string;
let server: ChildProcessWithoutNullStreams;
let serverExit: Promise<number | null>;
let baseUrl: string;

function admin(args: string[]) {
  return alice.dits(['server', ...args, '--data', dataDir], alice.dir);
}
function mustAdmin(args: string[]): string {
  const r = admin(args);
  expect(r.status, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
}

beforeAll(async () => {
  alice = new GitSandbox('dits-repo-delete-alice-');
  newbie = new GitSandbox('dits-repo-delete-newbie-');
  dataDir = path.join(alice.dir, 'server-data');
  mustAdmin(['user', 'add', 'alice']);
  mustAdmin(['user', 'add', 'newbie']);
  mustAdmin(['repo', 'create', 'team/film']);
  mustAdmin(['repo', 'create', 'team/film2']);
  mustAdmin(['grant', 'alice', 'team/film', 'write']);
  mustAdmin(['grant', 'alice', 'team/film2', 'write']);
  alice.env.DITS_TOKEN = (JSON.parse(mustAdmin(['token', 'create', 'alice', 't', '--json'])) as { token: string }).token;
  newbie.env.DITS_TOKEN = (JSON.parse(mustAdmin(['token', 'create', 'newbie', 't', '--json'])) as { token: string }).token;

  server = spawn(DITS_BIN, ['serve', '--data', dataDir, '--port', '0', '--quiet'], { env: alice.env, stdio: ['pipe', 'pipe', 'pipe'] });
  serverExit = new Promise((res) => server.once('exit', (code) => res(code)));
  baseUrl = await new Promise<string>((resolve, reject) => {
    let out = '';
    let errText = '';
    server.stderr.on('data', (d: Buffer) => (errText += d.toString()));
    server.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    void serverExit.then((code) => reject(new Error(`git dits serve exited (${code}): ${errText}`)));
  });
});

afterAll(async () => {
  if (server && server.exitCode === null) {
    server.kill('SIGKILL');
    await serverExit;
  }
  alice?.cleanup();
  newbie?.cleanup();
});

function push(name: string, seed: number): string {
  const repo = alice.repo(name.replace('/', '-'), { track: ['*.mov'], config: CFG, files: { 'clip.mov': randomBytesSeeded(300_000, seed), 'notes.txt': `${name}\n` } });
  alice.mustGit(['add', '.'], repo);
  alice.mustGit(['commit', '-q', '-m', `first cut of ${name}`], repo);
  alice.mustGit(['remote', 'add', 'origin', `dits::${baseUrl}/${name}`], repo);
  alice.mustGit(['push', '-q', '-u', 'origin', 'main'], repo);
  return repo;
}

function clone(sb: GitSandbox, name: string, dest: string) {
  const args = ['clone', '-q'];
  for (const [k, v] of Object.entries(CFG)) args.push('-c', `${k}=${v}`);
  return sb.git([...args, `dits::${baseUrl}/${name}`, path.join(sb.dir, dest)], sb.dir);
}

describe('git dits server repo delete / create', () => {
  it('a reader granted on a re-created repository gets none of the deleted one\'s content; the neighbour is intact', () => {
    const film = push('team/film', 1);
    const film2 = push('team/film2', 2);
    const film2Files = filesUnder(path.join(dataDir, 'repos', 'team', 'film2'));
    expect(filesUnder(path.join(dataDir, 'repos', 'team', 'film')).length).toBeGreaterThan(0);

    const del = mustAdmin(['repo', 'delete', 'team/film']);
    mustAdmin(['repo', 'create', 'team/film']);
    mustAdmin(['grant', 'newbie', 'team/film', 'read']);
    mustAdmin(['grant', 'newbie', 'team/film2', 'read']);

    const c = clone(newbie, 'team/film', 'film');
    const cloned = path.join(newbie.dir, 'film');
    const leaked = fs.existsSync(path.join(cloned, 'clip.mov')) || fs.existsSync(path.join(cloned, 'notes.txt'));
    expect(leaked, `${c.stdout}\n${c.stderr}`).toBe(false);
    if (c.status === 0) expect(newbie.git(['rev-parse', '--verify', '-q', 'HEAD'], cloned).status).not.toBe(0);
    expect(del).toMatch(/Deleted repository team\/film \(its grants and locks\) and its \d+ stored object\(s\)/);

    // the neighbour, whose name starts with the deleted one's, still clones byte for byte
    expect(filesUnder(path.join(dataDir, 'repos', 'team', 'film2'))).toEqual(film2Files);
    const c2 = clone(newbie, 'team/film2', 'film2');
    expect(c2.status, c2.stderr).toBe(0);
    expect(fs.readFileSync(path.join(newbie.dir, 'film2', 'clip.mov')).equals(fs.readFileSync(path.join(film2, 'clip.mov')))).toBe(true);
    expect(fs.existsSync(film)).toBe(true);
  });

  it('--keep-content says where the content stays; create then refuses until --adopt-existing; delete re-run removes leftovers', () => {
    mustAdmin(['repo', 'create', 'team/doc']);
    mustAdmin(['grant', 'alice', 'team/doc', 'write']);
    push('team/doc', 3);
    const kept = mustAdmin(['repo', 'delete', 'team/doc', '--keep-content']);
    expect(kept).toMatch(/Its content stays in .*repo create team\/doc --adopt-existing/);

    const refused = admin(['repo', 'create', 'team/doc']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/'team\/doc' still has \d+ stored object\(s\)/);
    expect(refused.stderr).toContain('--adopt-existing');
    expect(refused.stderr).toContain('git dits server repo delete team/doc');
    expect(refused.stderr).not.toMatch(/internal error|at .*\.js:\d+/);

    // what a delete interrupted after the records leaves: deleting again finishes it
    const left = mustAdmin(['repo', 'delete', 'team/doc']);
    expect(left).toMatch(/Deleted the \d+ object\(s\) left under team\/doc/);
    expect(filesUnder(path.join(dataDir, 'repos', 'team', 'doc'))).toEqual([]);
    const nothing = admin(['repo', 'delete', 'team/doc']);
    expect(nothing.status).toBe(1);
    expect(nothing.stderr).toContain("no repository named 'team/doc'");
    mustAdmin(['repo', 'create', 'team/doc']);
  });

  it('--adopt-existing serves the kept content again', () => {
    mustAdmin(['repo', 'create', 'team/keep']);
    mustAdmin(['grant', 'alice', 'team/keep', 'write']);
    const repo = push('team/keep', 4);
    mustAdmin(['repo', 'delete', 'team/keep', '--keep-content']);
    expect(mustAdmin(['repo', 'create', 'team/keep', '--adopt-existing'])).toMatch(/Serving the \d+ object\(s\) already stored under team\/keep/);
    mustAdmin(['grant', 'newbie', 'team/keep', 'read']);
    const c = clone(newbie, 'team/keep', 'keep');
    expect(c.status, c.stderr).toBe(0);
    expect(fs.readFileSync(path.join(newbie.dir, 'keep', 'clip.mov')).equals(fs.readFileSync(path.join(repo, 'clip.mov')))).toBe(true);
  });

  it('--help names the flags', () => {
    const help = alice.dits(['server', '--help'], alice.dir);
    expect(help.stdout + help.stderr).toContain('--adopt-existing');
    expect(help.stdout + help.stderr).toContain('--keep-content');
  });
});
