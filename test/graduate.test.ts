/**
 * `git dits graduate` and `git dits hydrate`: idle repositories give their disk back once
 * everything is on the remote and verified; any doubt refuses them, listed with why. Real git
 * in temp repos, remotes on file:// and on s3rver; the faults: unpushed commits, a never-pushed
 * branch, uncommitted changes, a .keep-local file, a remote that lost a pack, a clock that
 * disagrees, and a run killed after writing pointers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { DITS_BIN, GitSandbox, SMALL_CHUNKS, cloneInto, randomBytesSeeded, writeFile } from './helpers/git-env.js';
import { startS3rverProcess, type S3Process } from './helpers/s3rver-process.js';
import { S3Storage } from '../src/transfer/s3-storage.js';

let sb: GitSandbox;
let s3: S3Process;
beforeAll(async () => {
  sb = new GitSandbox('dits-graduate-');
  s3 = await startS3rverProcess(['grad']);
  Object.assign(sb.env, { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey, AWS_REGION: 'us-east-1' });
  sb.mustGit(['config', '--global', 'dits.s3.endpoint', s3.endpoint], sb.dir);
});
afterAll(async () => {
  await s3?.close();
  sb?.cleanup();
});

const DAY = 86400e3;
const OLD = new Date(Date.now() - 40 * DAY);
const oldDate = `${Math.floor(OLD.getTime() / 1000)} +0000`;
const CLIP = (seed: number) => randomBytesSeeded(300_000, seed);

interface Result {
  repo: string;
  status: string;
  reasons: string[];
  files: number;
  worktreeBytesFreed: number;
  chunks: number;
  storeBytesFreed: number;
  record?: string;
  skipped: { path: string; reason: string }[];
}

/** Commits and file times 40 days old, as if nobody had touched the repository since. */
function age(repo: string): void {
  const files = sb.mustGit(['ls-files', '-co', '--exclude-standard'], repo).split('\n').filter(Boolean);
  for (const f of files) fs.utimesSync(path.join(repo, f), OLD, OLD);
}

/** A repository with two clips and a text file, committed 40 days ago and pushed to `url`. */
function idleRepo(name: string, url: string): string {
  const repo = sb.repo(name, { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': CLIP(1), 'shots/b.mov': CLIP(2), 'notes.txt': 'cut 3\n' } });
  sb.mustGit(['add', '-A'], repo);
  sb.mustGit(['commit', '-qm', 'c1'], repo, undefined, { GIT_COMMITTER_DATE: oldDate, GIT_AUTHOR_DATE: oldDate });
  sb.mustGit(['remote', 'add', 'origin', url], repo);
  sb.mustGit(['push', '-q', '-u', 'origin', 'main'], repo);
  age(repo);
  return repo;
}

function graduate(args: string[], cwd: string): Result[] {
  return JSON.parse(sb.mustDits(['graduate', '--json', ...args], cwd)) as Result[];
}


function expectPointer(repo: string, file: string): void {
  const text = fs.readFileSync(path.join(repo, file), 'utf8');
  expect(text).toMatch(/^version dits\/1\noid blake3:/);
}

describe('git dits graduate', () => {
  it('dehydrates an idle, fully pushed repository (file:// remote): big files become pointers, git status stays clean, local chunks go, the reaper gets a record; hydrate brings it back byte-exact', () => {
    const remoteDir = path.join(sb.dir, 'remotes', 'file1');
    const repo = idleRepo('file1', `dits::file://${remoteDir}`);
    const dry = graduate(['--dry-run'], repo);
    expect(dry[0]).toMatchObject({ status: 'would-graduate', files: 2 });
    expect(fs.statSync(path.join(repo, 'a.mov')).size).toBe(300_000); // a dry run changes nothing
    const [r] = graduate([], repo);
    expect(r).toMatchObject({ status: 'graduated', files: 2, reasons: [], skipped: [] });
    expect(r!.worktreeBytesFreed).toBeGreaterThan(2 * 300_000 - 2 * 200);
    expect(r!.storeBytesFreed).toBeGreaterThan(500_000);
    expectPointer(repo, 'a.mov');
    expectPointer(repo, 'shots/b.mov');
    expect(fs.readFileSync(path.join(repo, 'notes.txt'), 'utf8')).toBe('cut 3\n');
    expect(Math.abs(fs.statSync(path.join(repo, 'a.mov')).mtimeMs - OLD.getTime())).toBeLessThan(1); // still idle
    expect(sb.status(repo)).toBe('');
    const record = JSON.parse(fs.readFileSync(path.join(remoteDir, r!.record!), 'utf8'));
    expect(record).toMatchObject({ version: 1, tier: 'warm', workTree: repo });
    expect(record.manifests).toHaveLength(2);
    // nothing left to free: a second run changes nothing and frees nothing
    const [again] = graduate([], repo);
    expect(again).toMatchObject({ status: 'graduated', files: 0, chunks: 0 });
    const h = JSON.parse(sb.mustDits(['hydrate', '--json'], repo));
    expect(h).toMatchObject({ files: 2, bytes: 600_000, left: 0, recordRemoved: r!.record });
    expect(fs.readFileSync(path.join(repo, 'a.mov')).equals(CLIP(1))).toBe(true);
    expect(fs.readFileSync(path.join(repo, 'shots/b.mov')).equals(CLIP(2))).toBe(true);
    expect(sb.status(repo)).toBe('');
    expect(fs.existsSync(path.join(remoteDir, r!.record!))).toBe(false);
  });

  it('works the same against an S3 remote (s3rver)', () => {
    const repo = idleRepo('s3one', 'dits::s3://grad/s3one');
    const [r] = graduate(['--idle', '30d'], repo);
    expect(r).toMatchObject({ status: 'graduated', files: 2 });
    expectPointer(repo, 'a.mov');
    expect(sb.status(repo)).toBe('');
    sb.mustDits(['hydrate'], repo);
    expect(fs.readFileSync(path.join(repo, 'shots/b.mov')).equals(CLIP(2))).toBe(true);
  });

  it('refuses, listing every reason, and changes nothing: recent work, unpushed commits, a never-pushed branch, uncommitted changes, .keep-local, no remote', () => {
    const remoteDir = path.join(sb.dir, 'remotes', 'busy');
    const repo = idleRepo('busy', `dits::file://${remoteDir}`);
    sb.mustGit(['branch', 'side'], repo);
    writeFile(path.join(repo, 'notes.txt'), 'cut 4\n');
    sb.mustGit(['commit', '-qam', 'local only'], repo);
    writeFile(path.join(repo, 'a.mov'), CLIP(9));
    writeFile(path.join(repo, '.keep-local'), '');
    const [r] = graduate(['--idle', '30d'], repo);
    expect(r!.status).toBe('refused');
    const text = r!.reasons.join('\n');
    expect(text).toMatch(/\.keep-local/);
    expect(text).toMatch(/not idle: \S+ changed 0\.\d\d d ago \(30 d asked\)/);
    expect(text).toMatch(/uncommitted changes: 1 file\(s\) \(a\.mov/);
    expect(text).toMatch(/branch main has 1 unpushed commit\(s\) \(ahead of origin\/main\)/);
    expect(text).toMatch(/branch side was never pushed/);
    expect(fs.readFileSync(path.join(repo, 'a.mov')).equals(CLIP(9))).toBe(true);
    const human = sb.mustDits(['graduate'], repo);
    expect(human).toMatch(/refused:\n  - /);
    const lone = sb.repo('lone', { files: { 'x.txt': 'x\n' } });
    expect(graduate(['--idle', '0'], lone)[0]!.reasons.join('\n')).toMatch(/no Dits remote/);
  });

  it('refuses content the remote does not hold or cannot prove: a lost remote pack, a local chunk never pushed', () => {
    const remoteDir = path.join(sb.dir, 'remotes', 'lost');
    const repo = idleRepo('lost', `dits::file://${remoteDir}`);
    const packs = path.join(remoteDir, 'v1', 'packs');
    const pack = fs.readdirSync(packs).find((n) => n.endsWith('.pack'))!;
    const away = path.join(sb.dir, 'pack.away');
    fs.renameSync(path.join(packs, pack), away);
    const [r] = graduate(['--idle', '30d'], repo);
    expect(r!.status).toBe('refused');
    expect(r!.reasons.join('\n')).toMatch(/fail verification on origin/);
    expect(fs.readFileSync(path.join(repo, 'a.mov')).equals(CLIP(1))).toBe(true);
    fs.renameSync(away, path.join(packs, pack));
    // a file added to the store but never committed or pushed: local-only content
    writeFile(path.join(repo, 'scratch.mov'), CLIP(7));
    sb.mustGit(['add', 'scratch.mov'], repo);
    sb.mustGit(['rm', '-q', '--cached', 'scratch.mov'], repo);
    fs.rmSync(path.join(repo, 'scratch.mov'));
    const [r2] = graduate(['--idle', '30d'], repo);
    expect(r2!.status).toBe('refused');
    expect(r2!.reasons.join('\n')).toMatch(/local-only content: \d+ chunk\(s\) in the local store that origin does not hold/);
    expect(fs.readFileSync(path.join(repo, 'a.mov')).equals(CLIP(1))).toBe(true);
  });

  it('a clock that disagrees: a file dated in the future is a change now, never idle', () => {
    const repo = idleRepo('future', `dits::file://${path.join(sb.dir, 'remotes', 'future')}`);
    const later = new Date(Date.now() + 2 * DAY);
    fs.utimesSync(path.join(repo, 'notes.txt'), later, later);
    const [r] = graduate(['--idle', '0'], repo);
    expect(r!.status).toBe('refused');
    expect(r!.reasons.join('\n')).toMatch(/notes\.txt was changed at .* after this machine's time .*clocks disagree/);
  });

  it('graduates each repository of a folder, listing those it refuses', () => {
    const folder = path.join(sb.dir, 'projects');
    fs.mkdirSync(folder);
    const a = idleRepo('projects/done', `dits::file://${path.join(sb.dir, 'remotes', 'pa')}`);
    const b = idleRepo('projects/active', `dits::file://${path.join(sb.dir, 'remotes', 'pb')}`);
    writeFile(path.join(b, 'notes.txt'), 'today\n');
    sb.mustGit(['commit', '-qam', 'today'], b);
    const rs = graduate([folder], sb.dir);
    expect(rs.map((r) => [path.basename(r.repo), r.status])).toEqual([
      ['active', 'refused'],
      ['done', 'graduated'],
    ]);
    expectPointer(a, 'a.mov');
    expect(fs.readFileSync(path.join(b, 'a.mov')).equals(CLIP(1))).toBe(true);
  });

  it('killed after writing pointers, before the index and the store were updated: nothing is lost, the next run completes', () => {
    const repo = idleRepo('killed', `dits::file://${path.join(sb.dir, 'remotes', 'killed')}`);
    // the state such a kill leaves: the marker, one file already its pointer (its mtime kept), the index not refreshed
    const gitDits = path.join(repo, '.git', 'dits');
    fs.writeFileSync(path.join(gitDits, 'graduate.json'), JSON.stringify({ state: 'started', at: Date.now(), remote: 'origin' }));
    fs.writeFileSync(path.join(repo, 'a.mov'), sb.mustGit(['cat-file', 'blob', 'HEAD:a.mov'], repo));
    fs.utimesSync(path.join(repo, 'a.mov'), OLD, OLD);
    expect(sb.status(repo)).toBe(' M a.mov\n');
    // resumed with --idle longer than the repository was idle: the killed run had decided already
    const [r] = graduate(['--idle', '60d'], repo);
    expect(r).toMatchObject({ status: 'graduated', files: 1 });
    expectPointer(repo, 'a.mov');
    expectPointer(repo, 'shots/b.mov');
    expect(sb.status(repo)).toBe('');
    sb.mustDits(['hydrate'], repo);
    expect(fs.readFileSync(path.join(repo, 'a.mov')).equals(CLIP(1))).toBe(true);
    expect(fs.readFileSync(path.join(repo, 'shots/b.mov')).equals(CLIP(2))).toBe(true);
    // a killed run long ago, and work since: judged afresh, not resumed
    fs.writeFileSync(path.join(gitDits, 'graduate.json'), JSON.stringify({ state: 'started', at: OLD.getTime() + 1000, remote: 'origin' }));
    writeFile(path.join(repo, 'notes.txt'), 'new cut\n');
    sb.mustGit(['commit', '-qam', 'new cut'], repo);
    sb.mustGit(['push', '-q'], repo);
    const [fresh] = graduate(['--idle', '30d'], repo);
    expect(fresh!.status).toBe('refused');
    expect(fresh!.reasons.join('\n')).toMatch(/not idle/);
  });

  it('runs as the scheduled graduate job when dits.graduate.enabled is true (and dits.graduate.idle sets the age)', () => {
    const repo = idleRepo('job', `dits::file://${path.join(sb.dir, 'remotes', 'job')}`);
    const off = JSON.parse(sb.mustDits(['lifecycle', 'run', 'graduate', '--json'], repo));
    expect(off.ran[0]).toMatchObject({ result: 'skipped' });
    sb.mustGit(['config', 'dits.graduate.enabled', 'true'], repo);
    sb.mustGit(['config', 'dits.graduate.idle', '60d'], repo);
    const notYet = JSON.parse(sb.mustDits(['lifecycle', 'run', 'graduate', '--json'], repo));
    expect(notYet.ran[0]).toMatchObject({ result: 'ok' });
    expect(fs.readFileSync(notYet.ran[0].log, 'utf8')).toMatch(/git dits graduate \. --idle 60d\n.*refused:\n  - not idle: .* \(60 d asked\)/);
    expect(fs.readFileSync(path.join(repo, 'a.mov')).equals(CLIP(1))).toBe(true);
    sb.mustGit(['config', 'dits.graduate.idle', '30d'], repo);
    const done = JSON.parse(sb.mustDits(['lifecycle', 'run', 'graduate', '--json'], repo));
    expect(done.ran[0]).toMatchObject({ result: 'ok' });
    expectPointer(repo, 'a.mov');
    expect(sb.status(repo)).toBe('');
  });

  it('a real SIGKILL during a run: the next run completes, and every file comes back byte-exact', async () => {
    const repo = sb.repo('sigkill', { track: ['*.mov'], config: SMALL_CHUNKS, files: Object.fromEntries([1, 2, 3, 4, 5, 6].map((i) => [`c${i}.mov`, CLIP(20 + i)])) });
    sb.mustGit(['add', '-A'], repo);
    sb.mustGit(['commit', '-qm', 'c1'], repo, undefined, { GIT_COMMITTER_DATE: oldDate, GIT_AUTHOR_DATE: oldDate });
    sb.mustGit(['remote', 'add', 'origin', `dits::file://${path.join(sb.dir, 'remotes', 'sigkill')}`], repo);
    sb.mustGit(['push', '-q', '-u', 'origin', 'main'], repo);
    age(repo);
    const { spawn } = await import('node:child_process');
    const child = spawn(DITS_BIN, ['graduate', '--idle', '30d'], { cwd: repo, env: sb.env, stdio: 'ignore' });
    const marker = path.join(repo, '.git', 'dits', 'graduate.json');
    for (let i = 0; i < 1000 && !fs.existsSync(marker) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.on('exit', r)));
    const [r] = graduate(['--idle', '30d'], repo);
    expect(r!.status, JSON.stringify(r)).toBe('graduated');
    for (let i = 1; i <= 6; i++) expectPointer(repo, `c${i}.mov`);
    expect(sb.status(repo)).toBe('');
    expect(sb.mustGit(['status', '--porcelain', '--ignored'], repo)).toBe(''); // no temp file left behind
    sb.mustDits(['hydrate'], repo);
    for (let i = 1; i <= 6; i++) expect(fs.readFileSync(path.join(repo, `c${i}.mov`)).equals(CLIP(20 + i))).toBe(true);
  });
});

interface TierMove {
  packId: string;
  phase: string;
  toTier: string;
  reason: string;
}
interface TierPlanJson {
  plan: { graduated: { records: number; manifests: number; packs: number } };
  moves: TierMove[];
  apply?: { marked: number; moved: number; unmarked: number };
}

/** The pack ids in a file remote's (or a tier folder's) v1/packs/. */
function packsAt(root: string): string[] {
  const dir = path.join(root, 'v1', 'packs');
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.endsWith('.pack')).map((n) => n.slice(0, -5)).sort() : [];
}

describe('the tier reaper and graduation records', () => {
  it('file remote with tier folders: a graduated repository\'s packs go warm (reason graduated) before the warm age; a pack shared with a version in use stays; hydrate before the grace ends cancels', () => {
    const remoteDir = path.join(sb.dir, 'remotes', 'reap1');
    const warm = path.join(sb.dir, 'reap1-warm');
    const tierCfg = { 'dits.tier.folder.warm': warm, 'dits.tier.folder.cold': path.join(sb.dir, 'reap1-cold') };
    for (const d of Object.values(tierCfg)) fs.mkdirSync(d, { recursive: true });
    // two pushes: a.mov in one pack, b.mov in another (each under dits.packSize)
    const SMALL = (seed: number): Buffer => randomBytesSeeded(200_000, seed);
    const repo = sb.repo('reap1', { track: ['*.mov'], config: { ...SMALL_CHUNKS, ...tierCfg }, files: { 'a.mov': SMALL(11) } });
    sb.mustGit(['add', '-A'], repo);
    sb.mustGit(['commit', '-qm', 'c1'], repo, undefined, { GIT_COMMITTER_DATE: oldDate, GIT_AUTHOR_DATE: oldDate });
    sb.mustGit(['remote', 'add', 'origin', `dits::file://${remoteDir}`], repo);
    sb.mustGit(['push', '-q', '-u', 'origin', 'main'], repo);
    const packA = packsAt(remoteDir);
    writeFile(path.join(repo, 'b.mov'), SMALL(12));
    sb.mustGit(['add', '-A'], repo);
    sb.mustGit(['commit', '-qm', 'c2'], repo, undefined, { GIT_COMMITTER_DATE: oldDate, GIT_AUTHOR_DATE: oldDate });
    sb.mustGit(['push', '-q'], repo);
    const packB = packsAt(remoteDir).filter((p) => !packA.includes(p));
    expect(packA).toHaveLength(1);
    expect(packB).toHaveLength(1);
    age(repo);
    // pushed just now: nothing is warm by age (30 days)
    const before = JSON.parse(sb.mustDits(['tier', 'plan', '--json'], repo)) as TierPlanJson;
    expect(before.moves).toEqual([]);

    // someone else's clone (made before the graduation: its reads are older than the record)
    const other = cloneInto(sb, `dits::file://${remoteDir}`, 'reap1-other', SMALL_CHUNKS);
    expect(graduate([], repo)[0]).toMatchObject({ status: 'graduated' });
    // ... pushes a version sharing b.mov's first 60 KB: b.mov's pack stays hot
    writeFile(path.join(other, 'c.mov'), Buffer.concat([SMALL(12).subarray(0, 60_000), randomBytesSeeded(100_000, 13)]));
    sb.mustGit(['add', 'c.mov'], other);
    sb.mustGit(['commit', '-qm', 'c3'], other);
    sb.mustGit(['push', '-q'], other);

    const plan = JSON.parse(sb.mustDits(['tier', 'plan', '--json'], repo)) as TierPlanJson;
    expect(plan.moves.map((m) => [m.packId, m.phase, m.toTier, m.reason])).toEqual([[packA[0], 'mark', 'warm', 'graduated']]);
    expect(plan.plan.graduated).toMatchObject({ records: 1, manifests: 2, packs: 1 });
    const text = sb.mustDits(['tier', 'plan'], repo);
    expect(text).toMatch(/mark\s+\w+ .* -> warm, last used .* \(graduated\)/);
    expect(text).toMatch(/Graduated: 1 repository record\(s\) naming 2 file version\(s\)/);
    const status = JSON.parse(sb.mustDits(['tier', 'status', '--json'], repo)) as { graduated: { records: number; goingColder: { packs: number } } };
    expect(status.graduated).toMatchObject({ records: 1, goingColder: { packs: 1 } });

    // the first run marks; hydrate comes before the grace ends; the next run takes the mark back
    const first = JSON.parse(sb.mustDits(['tier', 'apply', '--json'], repo)) as TierPlanJson;
    expect(first.apply).toMatchObject({ marked: 1, moved: 0 });
    expect(fs.existsSync(path.join(remoteDir, 'v1', 'tier', 'pending', `${packA[0]}.json`))).toBe(true);
    sb.mustDits(['hydrate'], repo);
    const second = JSON.parse(sb.mustDits(['tier', 'apply', '--grace', '0', '--json'], repo)) as TierPlanJson;
    expect(second.apply).toMatchObject({ marked: 0, moved: 0, unmarked: 1 });
    expect(fs.existsSync(path.join(remoteDir, 'v1', 'tier', 'pending', `${packA[0]}.json`))).toBe(false);
    expect(packsAt(warm)).toEqual([]);

    // graduated again: marked, then moved into the warm folder, byte for byte
    age(repo);
    expect(graduate([], repo)[0]).toMatchObject({ status: 'graduated' });
    const bytes = fs.readFileSync(path.join(remoteDir, 'v1', 'packs', `${packA[0]}.pack`));
    sb.mustDits(['tier', 'apply'], repo);
    const moved = JSON.parse(sb.mustDits(['tier', 'apply', '--grace', '0', '--json'], repo)) as TierPlanJson;
    expect(moved.apply).toMatchObject({ moved: 1 });
    expect(packsAt(warm)).toEqual(packA);
    expect(fs.readFileSync(path.join(warm, 'v1', 'packs', `${packA[0]}.pack`)).equals(bytes)).toBe(true);
    expect(packsAt(remoteDir)).not.toContain(packA[0]);
    // still readable: hydrate brings a.mov back from the warm folder
    sb.mustDits(['hydrate'], repo);
    expect(fs.readFileSync(path.join(repo, 'a.mov')).equals(SMALL(11))).toBe(true);
  });

  it('S3 (s3rver): graduate, then the plan marks the packs warm (STANDARD_IA) with the reason graduated; a malformed record is said and ignored', async () => {
    const repo = idleRepo('reaps3', 'dits::s3://grad/reaps3');
    sb.mustGit(['config', 'dits.tier.provider', 'aws'], repo); // s3rver speaks AWS storage classes
    expect((JSON.parse(sb.mustDits(['tier', 'plan', '--json'], repo)) as TierPlanJson).moves).toEqual([]);
    expect(graduate([], repo)[0]).toMatchObject({ status: 'graduated' });
    const storage = new S3Storage({ bucket: 'grad', prefix: 'reaps3', endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: s3.credentials });
    await storage.put('v1/tier/graduated/0badf00d.json', Buffer.from('{"version": 1, "manifests": "all"}'));
    const plan = JSON.parse(sb.mustDits(['tier', 'plan', '--json'], repo)) as TierPlanJson & { plan: { notes: string[] } };
    expect(plan.moves.length).toBeGreaterThan(0);
    expect(plan.moves.every((m) => m.phase === 'mark' && m.toTier === 'warm' && m.reason === 'graduated' && (m as unknown as { toClass: string }).toClass === 'STANDARD_IA')).toBe(true);
    expect(plan.plan.notes.some((n) => n.includes('v1/tier/graduated/0badf00d.json: graduatedAt is not a time') && n.includes('ignored'))).toBe(true);
    const text = sb.mustDits(['tier', 'status'], repo);
    expect(text).toMatch(/note: graduation record v1\/tier\/graduated\/0badf00d.json/);
    expect(text).toMatch(/Graduated: 1 repository record/);
    sb.mustDits(['hydrate'], repo);
    expect((JSON.parse(sb.mustDits(['tier', 'plan', '--json'], repo)) as TierPlanJson).moves).toEqual([]);
  });
});
