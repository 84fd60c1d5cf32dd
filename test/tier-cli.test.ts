/**
 * `git dits tier plan|apply|status` end to end: real git, a dits::s3 remote through the
 * Glacier front before s3rver (both in their own processes: git runs synchronously here).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GitSandbox, ROOT, SMALL_CHUNKS, cloneInto, randomBytesSeeded, writeFile } from './helpers/git-env.js';
import { startS3rverProcess, type S3Process } from './helpers/s3rver-process.js';

let sb: GitSandbox;
let s3: S3Process;
let front: ChildProcess;
let frontEndpoint: string;

async function startFrontProcess(s3rverEndpoint: string): Promise<{ child: ChildProcess; endpoint: string }> {
  const mod = pathToFileURL(path.join(ROOT, 'dist/src/transfer/testing/glacier-front.js')).href;
  const script = `
    import(${JSON.stringify(mod)}).then(async (m) => {
      const f = await m.startGlacierFront(${JSON.stringify(s3rverEndpoint)}, { restoreDelayMs: 3600000 });
      process.stdout.write('ENDPOINT ' + f.endpoint + '\\n');
      process.on('SIGTERM', () => f.close().then(() => process.exit(0)));
    });
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const endpoint = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /ENDPOINT (\S+)/.exec(buf);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (c) => reject(new Error(`the front exited (${c}) before listening`)));
  });
  return { child, endpoint };
}

beforeAll(async () => {
  sb = new GitSandbox('dits-tier-cli-');
  s3 = await startS3rverProcess(['tiers']);
  const f = await startFrontProcess(s3.endpoint);
  front = f.child;
  frontEndpoint = f.endpoint;
  Object.assign(sb.env, { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey, AWS_REGION: 'us-east-1' });
  sb.mustGit(['config', '--global', 'dits.s3.endpoint', frontEndpoint], sb.dir);
});
afterAll(async () => {
  if (front && front.exitCode === null) {
    front.kill('SIGTERM');
    await new Promise((r) => front.once('exit', r));
  }
  await s3?.close();
  sb?.cleanup();
});

/**
 * v1 of a.mov pushed, then v2 pushed; b.mov unchanged. a.mov v1 spans more than two 256 KiB
 * packs, so some packs hold only its chunks (the last one shares with b.mov, which stays hot).
 * Tiers: warm at once (ages 0).
 */
function setup(name: string, provider = 'aws'): { repo: string; v1: Buffer } {
  const v1 = randomBytesSeeded(700_000, 81);
  const repo = sb.repo(name, { track: ['*.mov'], config: { ...SMALL_CHUNKS, 'dits.tier.provider': provider, 'dits.tier.warmAfter': '0', 'dits.tier.coldAfter': 'never', 'dits.tier.deepAfter': 'never' }, files: { 'a.mov': v1, 'b.mov': randomBytesSeeded(100_000, 82) } });
  sb.mustGit(['add', '.'], repo);
  sb.mustGit(['commit', '-q', '-m', 'v1'], repo);
  sb.mustGit(['remote', 'add', 'origin', `dits::s3://tiers/${name}`], repo);
  sb.mustGit(['push', '-q', 'origin', 'main'], repo);
  writeFile(path.join(repo, 'a.mov'), randomBytesSeeded(200_000, 83));
  sb.mustGit(['commit', '-q', '-am', 'v2'], repo);
  sb.mustGit(['push', '-q', 'origin', 'main'], repo);
  return { repo, v1 };
}

interface PlanJson {
  plan: { tiered: boolean; phases: Record<string, { packs: number; bytes: number }>; keptHot: { packs: number }; monthlyCostBefore: number; monthlyCostAfter: number; notes: string[] };
  moves: { packId: string; phase: string; toClass: string }[];
  apply?: { marked: number; moved: number; unmarked: number };
}

describe('git dits tier', () => {
  it('plan, apply (mark), apply (move): only the old version leaves hot, and it still checks out byte for byte', () => {
    const { repo, v1 } = setup('cycle');
    const plan = JSON.parse(sb.mustDits(['tier', 'plan', '--json'], repo)) as PlanJson;
    expect(plan.plan.tiered).toBe(true);
    // the packs of v1 only (v1 of a.mov); the default branch's files (v2 of a.mov, b.mov) stay hot
    const old = plan.moves.filter((m) => m.phase === 'mark');
    expect(old.length).toBeGreaterThan(0);
    expect(plan.plan.keptHot.packs).toBeGreaterThan(0);
    expect(plan.moves.every((m) => m.toClass === 'STANDARD_IA')).toBe(true);
    // plan changed nothing: a second plan is the same
    expect((JSON.parse(sb.mustDits(['tier', 'plan', '--json'], repo)) as PlanJson).moves).toEqual(plan.moves);

    const first = JSON.parse(sb.mustDits(['tier', 'apply', '--grace', '0', '--json'], repo)) as PlanJson;
    expect(first.apply).toMatchObject({ marked: old.length, moved: 0 });
    const second = JSON.parse(sb.mustDits(['tier', 'apply', '--grace', '0', '--json'], repo)) as PlanJson;
    expect(second.apply).toMatchObject({ marked: 0, moved: old.length });

    const status = JSON.parse(sb.mustDits(['tier', 'status', '--json'], repo)) as { tiers: Record<string, { packs: number; monthlyCost: number }>; nextRun: Record<string, { packs: number }> };
    expect(status.tiers.warm!.packs).toBe(old.length);
    expect(status.tiers.hot!.packs).toBe(plan.plan.keptHot.packs);
    expect(status.nextRun.mark!.packs + status.nextRun.move!.packs).toBe(0);
    const text = sb.mustDits(['tier', 'status'], repo);
    expect(text).toMatch(/warm +\d+ pack\(s\)/);

    // a fresh clone reads v1 from STANDARD_IA (readable now) byte for byte
    const clone = cloneInto(sb, `dits::s3://tiers/cycle`, 'cycle-clone', SMALL_CHUNKS);
    sb.mustGit(['checkout', '-q', 'HEAD~1'], clone);
    expect(fs.readFileSync(path.join(clone, 'a.mov')).equals(v1)).toBe(true);
  });

  it('a push between the mark and the move, of a default-branch version sharing chunks with the marked packs, keeps them hot (unmarked)', () => {
    const { repo, v1 } = setup('pushrace');
    const first = JSON.parse(sb.mustDits(['tier', 'apply', '--grace', '0', '--json'], repo)) as PlanJson;
    expect(first.apply!.marked).toBeGreaterThan(0);
    // v3: v1 with its first bytes changed, pushed while the packs of v1 are pending
    const v3 = Buffer.from(v1);
    v3.write('edited', 0);
    writeFile(path.join(repo, 'a.mov'), v3);
    sb.mustGit(['commit', '-q', '-am', 'v3'], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    const second = JSON.parse(sb.mustDits(['tier', 'apply', '--grace', '0', '--json'], repo)) as PlanJson;
    expect(second.apply).toMatchObject({ moved: 0, unmarked: first.apply!.marked });
    const status = JSON.parse(sb.mustDits(['tier', 'status', '--json'], repo)) as { tiers: Record<string, { packs: number }> };
    expect(status.tiers.warm!.packs).toBe(0);
  });

  it("a client clock 5 years ahead: apply marks and moves nothing (the storage's clock is used) and says so", () => {
    const v1 = randomBytesSeeded(300_000, 95);
    const repo = sb.repo('clock', { track: ['*.mov'], config: { ...SMALL_CHUNKS, 'dits.tier.provider': 'aws' }, files: { 'a.mov': v1 } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'v1'], repo);
    sb.mustGit(['remote', 'add', 'origin', 'dits::s3://tiers/clock'], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    writeFile(path.join(repo, 'a.mov'), randomBytesSeeded(300_000, 96));
    sb.mustGit(['commit', '-q', '-am', 'v2'], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    // Date.now() as the tier command reads it runs 5 years ahead. Only there: the request
    // signer's clock stays right, since s3rver (unlike AWS, whose SDK corrects its offset on
    // RequestTimeTooSkewed) would refuse the requests.
    const patch = "const r=Date.now.bind(Date);Date.now=()=>r()+(/commands.tier\\.js/.test(new Error().stack)?157680000000:0);";
    const ahead = { NODE_OPTIONS: `--import=data:text/javascript,${encodeURIComponent(patch)}` };
    const dits = (args: string[]) => {
      const r = sb.run(path.join(ROOT, 'bin', 'git-dits'), args, repo, undefined, ahead);
      if (r.status !== 0) throw new Error(`git dits ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    for (let run = 0; run < 2; run++) {
      const r = JSON.parse(dits(['tier', 'apply', '--grace', '0', '--json'])) as PlanJson & { clock: { skewMs: number } };
      expect(r.apply).toMatchObject({ marked: 0, moved: 0 });
      expect(r.clock.skewMs).toBeGreaterThan(4 * 365 * 86_400_000);
      expect(r.plan.notes.join('\n')).toMatch(/this machine's clock is \d+ days ahead of the storage's: the storage's time was used/);
    }
    expect(dits(['tier', 'apply', '--grace', '0'])).toMatch(/note: this machine's clock is \d+ days ahead/);
  });

  it('keep-hot patterns keep what they name hot: branch:<name>, tag:<glob>, path globs', () => {
    const { repo } = setup('keephot');
    expect((JSON.parse(sb.mustDits(['tier', 'plan', '--json'], repo)) as PlanJson).moves.length).toBeGreaterThan(0);
    sb.mustGit(['push', '-q', 'origin', 'main~1:refs/heads/archive'], repo);
    sb.mustGit(['fetch', '-q', 'origin'], repo);
    sb.mustGit(['config', '--add', 'dits.tier.keepHot', 'branch:archive'], repo);
    sb.mustGit(['config', '--add', 'dits.tier.keepHot', 'branch:main'], repo);
    const plan = JSON.parse(sb.mustDits(['tier', 'plan', '--json'], repo)) as PlanJson;
    expect(plan.moves).toEqual([]);
    // the same by a tag of the old version
    sb.mustGit(['config', '--unset-all', 'dits.tier.keepHot'], repo);
    sb.mustGit(['tag', 'v1.0', 'main~1'], repo);
    sb.mustGit(['config', '--add', 'dits.tier.keepHot', 'tag:v1.*'], repo);
    sb.mustGit(['config', '--add', 'dits.tier.keepHot', 'b.mov'], repo);
    const byTag = JSON.parse(sb.mustDits(['tier', 'plan', '--json'], repo)) as PlanJson;
    // v1 of a.mov (tag) and b.mov (path glob) are kept; v2 of a.mov, named by neither, may go
    const v2Only = byTag.moves.filter((m) => m.phase === 'mark');
    expect(v2Only.length).toBeGreaterThan(0);
    expect(v2Only.every((m) => !plan.moves.some((p) => p.packId === m.packId))).toBe(true);
    sb.mustGit(['config', '--add', 'dits.tier.keepHot', 'a.mov'], repo);
    expect((JSON.parse(sb.mustDits(['tier', 'plan', '--json'], repo)) as PlanJson).moves).toEqual([]);
  });

  it('a single-class provider says so, exits 0 and moves nothing', () => {
    const { repo } = setup('wasabi', 'wasabi');
    for (const sub of ['plan', 'apply', 'status']) {
      const r = sb.dits(['tier', sub], repo);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/Wasabi has one storage class: tiering has nothing to move/);
    }
  });

  it('lifecycle-config prints the bucket rules for this remote\'s prefix; a folder remote is told it needs none', () => {
    const repo = sb.repo('lc', { config: { 'dits.tier.provider': 'aws', 'dits.tier.class.cold': 'GLACIER' } });
    sb.mustGit(['remote', 'add', 'origin', 'dits::s3://tiers/lc/sub'], repo);
    const rules = JSON.parse(sb.mustDits(['tier', 'lifecycle-config', '--json'], repo)) as { Rules: { ID: string; Filter: { And?: { Prefix: string; Tags: { Key: string; Value: string }[] } }; Transitions?: { Days: number; StorageClass: string }[] }[] };
    const byId = new Map(rules.Rules.map((r) => [r.ID, r]));
    expect(byId.get('dits-tier-warm')!.Transitions).toEqual([{ Days: 30, StorageClass: 'STANDARD_IA' }]);
    expect(byId.get('dits-tier-cold')!.Transitions).toEqual([{ Days: 180, StorageClass: 'GLACIER' }]);
    expect(byId.get('dits-tier-deep')!.Transitions).toEqual([{ Days: 730, StorageClass: 'DEEP_ARCHIVE' }]);
    expect(byId.get('dits-tier-deep')!.Filter.And).toEqual({ Prefix: 'lc/sub/v1/packs/', Tags: [{ Key: 'dits-tier', Value: 'deep' }] });
    expect(sb.mustDits(['tier', 'lifecycle-config'], repo)).toMatch(/aws s3api put-bucket-lifecycle-configuration --bucket tiers/);
    sb.mustGit(['config', 'dits.tier.deepAfter', 'never'], repo);
    const never = sb.dits(['tier', 'lifecycle-config'], repo);
    expect(never.status).toBe(1);
    expect(never.stderr).toMatch(/dits.tier.deepAfter = never: lifecycle rules need an age/);
    const folder = sb.repo('lc-folder');
    sb.mustGit(['remote', 'add', 'origin', `dits::file://${path.join(sb.dir, 'lc-remote')}`], folder);
    const r = sb.dits(['tier', 'lifecycle-config'], folder);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/lifecycle rules are an S3 feature/);
  });

  it('bad settings and usage are said with what to do, never a stack trace', () => {
    const repo = sb.repo('bad', { config: { 'dits.tier.warmAfter': 'soon' } });
    sb.mustGit(['remote', 'add', 'origin', 'dits::s3://tiers/bad'], repo);
    const r = sb.dits(['tier', 'plan'], repo);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/dits.tier.warmAfter = soon is not a duration/);
    expect(r.stderr).toMatch(/hint: /);
    const u = sb.dits(['tier', 'freeze'], repo);
    expect(u.status).toBe(2);
    expect(u.stderr).toMatch(/unknown subcommand 'tier freeze'/);
    const g = sb.dits(['tier', 'apply', '--grace', 'later'], repo);
    expect(g.status).toBe(2);
    expect(sb.mustDits(['tier', 'apply', '--help'], repo)).toMatch(/--grace <duration>/);
    expect(sb.mustDits(['tier', '--help'], repo)).toMatch(/Subcommands/);
  });

  it('refuses to apply when it cannot tell which files must stay hot', () => {
    const repo = sb.repo('nofetch', { track: ['*.mov'], config: { ...SMALL_CHUNKS, 'dits.tier.provider': 'aws' }, files: { 'a.mov': randomBytesSeeded(50_000, 90) } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'one'], repo);
    sb.mustGit(['remote', 'add', 'origin', 'dits::s3://tiers/nofetch'], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    sb.mustGit(['update-ref', '-d', 'refs/remotes/origin/main'], repo);
    const r = sb.dits(['tier', 'apply'], repo);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cannot tell which files must stay hot/);
    expect(r.stderr).toMatch(/git fetch origin/);
  });

  it('a file remote with folder tiers: packs move into the tier folders (deep is an archive), none is lost, plain objects stay at the root', () => {
    const v1 = randomBytesSeeded(700_000, 91);
    const remote = path.join(sb.dir, 'folder-remote');
    const folders = { warm: path.join(sb.dir, 'nas-warm'), cold: path.join(sb.dir, 'nas-cold'), deep: path.join(sb.dir, 'tape') };
    for (const d of Object.values(folders)) fs.mkdirSync(d, { recursive: true });
    const repo = sb.repo('folders', {
      track: ['*.mov'],
      config: { ...SMALL_CHUNKS, 'dits.tier.warmAfter': '0', 'dits.tier.coldAfter': '0', 'dits.tier.deepAfter': '0', 'dits.tier.folder.warm': folders.warm, 'dits.tier.folder.cold': folders.cold, 'dits.tier.folder.deep': folders.deep, 'dits.tier.archive': 'deep' },
      files: { 'a.mov': v1 },
    });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'v1'], repo);
    sb.mustGit(['remote', 'add', 'origin', `dits::file://${remote}`], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    writeFile(path.join(repo, 'a.mov'), randomBytesSeeded(300_000, 92));
    sb.mustGit(['commit', '-q', '-am', 'v2'], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    const packsAt = (root: string): Map<string, Buffer> => {
      const dir = path.join(root, 'v1', 'packs');
      const out = new Map<string, Buffer>();
      if (fs.existsSync(dir)) for (const n of fs.readdirSync(dir)) if (n.endsWith('.pack')) out.set(n, fs.readFileSync(path.join(dir, n)));
      return out;
    };
    const before = packsAt(remote);
    const plan = JSON.parse(sb.mustDits(['tier', 'plan', '--json'], repo)) as PlanJson;
    const marked = plan.moves.filter((m) => m.phase === 'mark');
    expect(marked.length).toBeGreaterThan(0);
    expect(marked.every((m) => m.toClass === 'deep')).toBe(true);
    expect(plan.plan.monthlyCostBefore).toBe(0); // folder prices: nothing Dits knows of
    sb.mustDits(['tier', 'apply', '--grace', '0'], repo);
    const second = JSON.parse(sb.mustDits(['tier', 'apply', '--grace', '0', '--json'], repo)) as PlanJson;
    expect(second.apply!.moved).toBe(marked.length);
    const root = packsAt(remote);
    const deep = packsAt(folders.deep);
    expect(deep.size).toBe(marked.length);
    expect(root.size + deep.size).toBe(before.size);
    for (const [name, bytes] of [...root, ...deep]) expect(bytes.equals(before.get(name)!), name).toBe(true);
    for (const m of marked) expect(deep.has(`${m.packId}.pack`)).toBe(true);
    // indexes and manifests never leave the root
    expect(fs.readdirSync(path.join(remote, 'v1', 'packs')).filter((n) => n.endsWith('.idx')).length).toBe(before.size);
    expect(fs.existsSync(path.join(folders.deep, 'v1', 'objects'))).toBe(false);
    const status = JSON.parse(sb.mustDits(['tier', 'status', '--json'], repo)) as { tiers: Record<string, { packs: number }> };
    expect(status.tiers.deep!.packs).toBe(marked.length);
  });
});
