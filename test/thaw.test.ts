/**
 * `git dits thaw` end to end: real git, a dits::s3:// remote on s3rver behind the Glacier
 * front (each in its own process), packs moved to GLACIER by the front's test hook, a clone
 * that left the files as pointers. Cost first, no spending without a yes, one restore per
 * pack, --status, --wait writing the files byte for byte, a webhook at the end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { DITS_BIN, GitSandbox, ROOT, SMALL_CHUNKS, randomBytesSeeded, writeFile } from './helpers/git-env.js';
import { startGlacierFrontProcess, type GlacierFrontProcess } from './helpers/glacier-front-process.js';
import { openStorage } from '../src/transfer/storage-url.js';
import { decodePackIndex } from '../src/remote/content/pack-index.js';
import { Manifest } from '../src/manifest/manifest.js';
import { parsePointer } from '../src/manifest/pointer.js';
import { ChunkStore } from '../src/store/chunk-store.js';
import { AWS_US_EAST_1, formatDollars, restoreCost } from '../src/tier/prices.js';

let sb: GitSandbox;
let front: GlacierFrontProcess;
let hook: Webhook;

/** A webhook in its own process (spawnSync blocks this one) that appends each POST body to a file. */
interface Webhook {
  url: string;
  received(): unknown[];
  close(): Promise<void>;
}

async function startWebhook(): Promise<Webhook> {
  const file = path.join(sb.dir, 'webhook.jsonl');
  fs.writeFileSync(file, '');
  const script = `
    const http = require('node:http');
    const fs = require('node:fs');
    const s = http.createServer((req, res) => {
      const parts = [];
      req.on('data', (d) => parts.push(d));
      req.on('end', () => { fs.appendFileSync(${JSON.stringify(file)}, Buffer.concat(parts).toString('utf8').replace(/\\n/g, ' ') + '\\n'); res.end('ok'); });
    });
    s.listen(0, '127.0.0.1', () => process.stdout.write('PORT ' + s.address().port + '\\n'));
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /PORT (\d+)/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (c) => reject(new Error(`the webhook exited (${c})`)));
  });
  return {
    url: `http://127.0.0.1:${port}/done`,
    received: () => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown),
    async close() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

beforeAll(async () => {
  sb = new GitSandbox('dits-thaw-');
  front = await startGlacierFrontProcess(['media']);
  hook = await startWebhook();
  // this process reads the remote too (pack indexes, sizes)
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: front.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: front.credentials.secretAccessKey, AWS_REGION: 'us-east-1' });
  Object.assign(sb.env, { AWS_ACCESS_KEY_ID: front.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: front.credentials.secretAccessKey, AWS_REGION: 'us-east-1' });
  sb.mustGit(['config', '--global', 'dits.s3.endpoint', front.endpoint], sb.dir);
  sb.mustGit(['config', '--global', 'dits.tier.provider', 'aws'], sb.dir);
}, 60_000);
afterAll(async () => {
  await hook?.close();
  await front?.close();
  sb?.cleanup();
});

const CFG = { ...SMALL_CHUNKS, 'dits.packSize': '128k' };

interface World {
  repo: string;
  clone: string;
  prefix: string;
  files: Record<string, Buffer>;
  /** pack keys (bucket-relative) holding each file's chunks */
  packsOf: Record<string, Set<string>>;
  allPacks: string[];
}

async function storageOf(prefix: string) {
  return openStorage(`s3://media/${prefix}`, { s3: { endpoint: front.endpoint, region: 'us-east-1', forcePathStyle: true } });
}

/** Three files pushed in their own packs, every pack moved to GLACIER, a lazy clone (pointers). */
async function world(name: string): Promise<World> {
  const files = { 'a.mov': randomBytesSeeded(300_000, 11), 'b.mov': randomBytesSeeded(300_000, 12), 'c.mov': randomBytesSeeded(200_000, 13) };
  const repo = sb.repo(name, { track: ['*.mov'], config: CFG, files: { 'a.mov': files['a.mov'], 'b.mov': files['b.mov'] } });
  sb.mustGit(['add', '.'], repo);
  sb.mustGit(['commit', '-q', '-m', 'footage'], repo);
  const prefix = `${name}-${Date.now()}`;
  sb.mustGit(['remote', 'add', 'origin', `dits::s3://media/${prefix}`], repo);
  sb.mustGit(['push', '-q', 'origin', 'main'], repo);
  // c.mov in a push of its own: packs of its own
  writeFile(path.join(repo, 'c.mov'), files['c.mov']);
  sb.mustGit(['add', '.'], repo);
  sb.mustGit(['commit', '-q', '-m', 'more'], repo);
  sb.mustGit(['push', '-q', 'origin', 'main'], repo);
  const storage = await storageOf(prefix);
  const packsOf: Record<string, Set<string>> = {};
  const byChunk = new Map<string, string>();
  const allPacks: string[] = [];
  for await (const o of storage.list('v1/packs/')) {
    if (o.key.endsWith('.pack')) allPacks.push(o.key);
    if (!o.key.endsWith('.idx')) continue;
    for (const e of decodePackIndex(await storage.getBuffer(o.key))) byChunk.set(e.idRaw.toString('hex'), o.key.replace(/\.idx$/, '.pack'));
  }
  const store = ChunkStore.open(path.join(repo, '.git', 'dits'));
  try {
    for (const f of Object.keys(files)) {
      const ptr = parsePointer(Buffer.from(sb.mustGit(['cat-file', 'blob', `HEAD:${f}`], repo)))!;
      const m = Manifest.parse(store.getManifestBytes(ptr.manifest));
      packsOf[f] = new Set([...m.distinctIds()].map((id) => byChunk.get(id)!));
    }
  } finally {
    store.close();
  }
  for (const k of allPacks) await front.setClass(`${prefix}/${k}`, 'GLACIER', 'media');
  const clone = path.join(sb.dir, `${name}-clone`);
  sb.mustGit(['clone', '-q', '-c', 'dits.fetchMode=lazy', `dits::s3://media/${prefix}`, clone], sb.dir);
  sb.mustGit(['config', 'dits.fetchMode', 'lazy'], clone);
  return { repo, clone, prefix, files, packsOf, allPacks };
}

function isPointer(file: string): boolean {
  return fs.statSync(file).size < 1024;
}

describe('git dits thaw', () => {
  let w: World;
  beforeAll(async () => {
    w = await world('film');
  }, 120_000);

  it('says what a restore costs and takes, and without a terminal nor --yes restores nothing', async () => {
    expect(isPointer(path.join(w.clone, 'a.mov'))).toBe(true);
    await front.resetCounts();
    const r = sb.dits(['thaw', 'a.mov', '--tier', 'bulk', '--days', '3'], w.clone);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/add --yes/);
    const n = w.packsOf['a.mov']!.size;
    expect(r.stdout).toMatch(new RegExp(`a\\.mov: .* frozen of .*, in ${n} pack\\(s\\)`));
    // the figures are the price table's arithmetic
    const storage = await storageOf(w.prefix);
    let bytes = 0;
    for (const k of w.packsOf['a.mov']!) bytes += (await storage.head(k))!.size;
    for (const tier of ['expedited', 'standard', 'bulk'] as const) {
      const e = restoreCost(AWS_US_EAST_1, 'GLACIER', tier, bytes, n, 3);
      expect(r.stdout).toContain(`${tier.padEnd(9)} ${formatDollars(e.total).padStart(9)}  ${n} request(s)`);
    }
    expect((await front.counts()).restores).toBe(0);
    await front.resetCounts();
    sb.mustDits(['thaw', 'a.mov', '--dry-run'], w.clone);
    // planning again (pack indexes cached): two listings and one HEAD per archived pack of the file, nothing else
    const c = await front.counts();
    expect({ lists: c.lists, heads: c.heads, gets: c.gets, restores: c.restores }).toEqual({ lists: 2, heads: n, gets: 0, restores: 0 });
  });

  it('a path that is not frozen: says so, costs nothing', async () => {
    const hot = await world('hot');
    // c.mov's packs go back to STANDARD (none of them shared with the others)
    for (const k of hot.packsOf['c.mov']!) await front.setClass(`${hot.prefix}/${k}`, 'STANDARD', 'media');
    const shared = [...hot.packsOf['c.mov']!].some((k) => hot.packsOf['a.mov']!.has(k) || hot.packsOf['b.mov']!.has(k));
    expect(shared).toBe(false);
    await front.resetCounts();
    const r = sb.dits(['thaw', 'c.mov'], hot.clone);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/c\.mov is not frozen: it is readable now, nothing to restore or pay/);
    expect(r.stderr).toBe('');
    expect((await front.counts()).restores).toBe(0);
    // an endpoint Dits knows no storage classes of: says so beside "not frozen"
    sb.mustGit(['config', 'dits.tier.provider', 'generic'], hot.clone);
    const generic = sb.dits(['thaw', 'c.mov'], hot.clone);
    expect(generic.status, generic.stderr).toBe(0);
    expect(generic.stderr).toMatch(/note: this S3-compatible endpoint is not known to offer storage classes/);
  }, 120_000);

  it('--yes restores exactly the packs of that file, once; --status shows them; --wait writes the file and notifies', async () => {
    await front.resetCounts();
    await front.setRestoreDelay(60_000);
    const r = sb.dits(['thaw', 'a.mov', '--yes', '--tier', 'standard'], w.clone);
    expect(r.status, r.stderr).toBe(0);
    const n = w.packsOf['a.mov']!.size;
    expect(r.stdout).toMatch(new RegExp(`${n} restore\\(s\\) started; recorded as thaw `));
    let c = await front.counts();
    expect(c.restoresStarted).toBe(n);
    expect(n).toBeLessThan(w.allPacks.length);

    // the same again (another person, or a re-run): nothing new is asked, nothing paid
    const again = sb.dits(['thaw', 'a.mov', '--yes'], w.clone);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toMatch(new RegExp(`${n} pack\\(s\\) are being restored already`));
    c = await front.counts();
    expect(c.restoresStarted).toBe(n);

    const st = sb.dits(['thaw', '--status'], w.clone);
    expect(st.status, st.stderr).toBe(0);
    expect(st.stdout).toMatch(new RegExp(`standard  by test@example.com  a\\.mov: 0/${n} pack\\(s\\) restored, ${n} restoring`));

    // git dits tier status lists the thaw while it runs
    const ts = JSON.parse(sb.mustDits(['tier', 'status', '--json'], w.clone)) as { thaws: { inProgress: { paths: string[]; restoring: number }[]; expiring: unknown[] } };
    expect(ts.thaws.inProgress).toEqual([expect.objectContaining({ paths: ['a.mov'], restoring: n })]);
    const tsText = sb.mustDits(['tier', 'status'], w.clone);
    expect(tsText).toContain('Thaws in progress: 1;');
    expect(tsText).toContain(`(standard, by test@example.com): a.mov, `);
    expect(tsText).toContain(`0/${n} restored, ${n} restoring`);

    await front.finishRestores();
    const done = JSON.parse(sb.mustDits(['tier', 'status', '--json'], w.clone)) as { thaws: { inProgress: unknown[]; expiring: unknown[] } };
    // restored for 7 days: neither running nor about to expire
    expect(done.thaws).toEqual({ inProgress: [], expiring: [] });
    const st2 = JSON.parse(sb.mustDits(['thaw', '--status', '--json'], w.clone)) as { paths: string[]; progress: { state: string; expiry?: string }[] }[];
    expect(st2[0]!.progress.every((p) => p.state === 'restored' && p.expiry)).toBe(true);

    // restored now: --wait writes it at once (nothing asked), and notifies
    // a desktop with notify-send (a tiny stand-in that writes down what it was asked)
    const fakeBin = path.join(sb.dir, 'fake-bin');
    const shown = path.join(sb.dir, 'notify-send.txt');
    writeFile(path.join(fakeBin, 'notify-send'), `#!/bin/sh\nprintf '%s|' "$@" >> ${shown}\n`);
    fs.chmodSync(path.join(fakeBin, 'notify-send'), 0o755);
    const wait = sb.run(DITS_BIN, ['thaw', 'a.mov', '--wait', '--poll-interval', '50ms', '--notify-url', hook.url], w.clone, undefined, { PATH: `${fakeBin}:${sb.env.PATH}`, DISPLAY: ':99' });
    expect(wait.status, wait.stderr).toBe(0);
    expect(fs.readFileSync(shown, 'utf8')).toBe('--app-name=git dits|git dits thaw: done|1 file(s) restored from origin|');
    expect(fs.readFileSync(path.join(w.clone, 'a.mov')).equals(w.files['a.mov']!)).toBe(true);
    expect(isPointer(path.join(w.clone, 'b.mov'))).toBe(true);
    expect(sb.status(w.clone)).toBe('');
    const notes = hook.received() as { event: string; files: string[] }[];
    expect(notes).toEqual([expect.objectContaining({ event: 'thaw-done', files: ['a.mov'] })]);
    expect((await front.counts()).restoresStarted).toBe(n);

    // --yes --wait: asks, polls with a progress line until the restores finish, writes
    await front.setRestoreDelay(1500);
    // a pack b.mov shares with a.mov is restored already: not asked, not waited for
    const m = [...w.packsOf['b.mov']!].filter((k) => !w.packsOf['a.mov']!.has(k)).length;
    const both = sb.dits(['thaw', 'b.mov', '--yes', '--wait', '--poll-interval', '100ms'], w.clone);
    expect(both.status, both.stderr).toBe(0);
    expect(both.stderr).toMatch(new RegExp(`Restored 0/${m} pack\\(s\\)`));
    expect(both.stderr).toMatch(new RegExp(`Restored ${m}/${m} pack\\(s\\)`));
    expect(fs.readFileSync(path.join(w.clone, 'b.mov')).equals(w.files['b.mov']!)).toBe(true);
    expect(sb.status(w.clone)).toBe('');
  }, 120_000);

  it('a restore the provider refuses: said, the others go on; the re-run asks only the refused one', async () => {
    const x = await world('refused');
    await front.setRestoreDelay(60_000);
    await front.resetCounts();
    const first = [...x.packsOf['b.mov']!].sort()[0]!;
    await front.failNext('restore', 403, 'AccessDenied', { key: `${x.prefix}/${first}` });
    const r = sb.dits(['thaw', 'b.mov', '--yes'], x.clone);
    const n = x.packsOf['b.mov']!.size;
    expect(r.stderr).toMatch(/was refused/);
    expect((await front.counts()).restoresStarted).toBe(n - 1);
    const again = sb.dits(['thaw', 'b.mov', '--yes'], x.clone);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/1 restore\(s\) started/);
    expect((await front.counts()).restoresStarted).toBe(n);
  }, 120_000);

  it('the network cut while restores are asked: the re-run asks only what is missing', async () => {
    const x = await world('cut');
    await front.setRestoreDelay(60_000);
    await front.resetCounts();
    const n = new Set([...x.packsOf['a.mov']!, ...x.packsOf['b.mov']!]).size;
    expect(n).toBeGreaterThan(3);
    // every attempt at one pack's restore loses its connection (the client tries 3 times)
    const victim = [...x.packsOf['a.mov']!].sort()[0]!;
    await front.failNext('restore', 'cut', undefined, { times: 3, key: `${x.prefix}/${victim}` });
    const r = sb.dits(['thaw', 'a.mov', 'b.mov', '--yes'], x.clone);
    expect(r.status).toBe(1);
    expect(r.stderr).not.toMatch(/internal error/);
    const first = await front.counts();
    expect(first.restoresStarted).toBeLessThan(n);
    const again = sb.dits(['thaw', 'a.mov', 'b.mov', '--yes'], x.clone);
    expect(again.status, again.stderr).toBe(0);
    const c = await front.counts();
    expect(c.restoresStarted).toBe(n);
    // the re-run asked only the packs whose restore had not started
    expect(c.restores - first.restores).toBe(n - first.restoresStarted);
  }, 120_000);

  it('two people thawing the same file at once (two clones, two processes): one restore per pack', async () => {
    const x = await world('together');
    const other = path.join(sb.dir, 'together-clone-2');
    sb.mustGit(['clone', '-q', '-c', 'dits.fetchMode=lazy', `dits::s3://media/${x.prefix}`, other], sb.dir);
    await front.setRestoreDelay(60_000);
    await front.resetCounts();
    const run = (cwd: string) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(DITS_BIN, ['thaw', 'a.mov', '--yes'], { cwd, env: sb.env });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('close', (status) => resolve({ status, stdout, stderr }));
      });
    const [one, two] = await Promise.all([run(x.clone), run(other)]);
    expect(one.status, one.stderr).toBe(0);
    expect(two.status, two.stderr).toBe(0);
    const n = x.packsOf['a.mov']!.size;
    const c = await front.counts();
    expect(c.restoresStarted).toBe(n);
    // between them every pack was asked for at least once, and started exactly once
    const started = (out: string) => Number(/(\d+) restore\(s\) started/.exec(out)?.[1] ?? 0);
    expect(started(one.stdout) + started(two.stdout)).toBe(n);
  }, 120_000);

  it("a clock far off: the provider's clock is 40 days behind this machine's; its word on restores is what counts", async () => {
    const x = await world('clock');
    const DAY = 24 * 3600 * 1000;
    await front.setRestoreDelay(0);
    await front.resetCounts();
    await front.advanceClock(-40 * DAY);
    try {
      const r = sb.dits(['thaw', 'a.mov', '--yes', '--days', '7', '--wait', '--poll-interval', '50ms'], x.clone);
      expect(r.status, r.stderr).toBe(0);
      expect(fs.readFileSync(path.join(x.clone, 'a.mov')).equals(x.files['a.mov']!)).toBe(true);
      // the restored copies expire 7 days after the provider's now: 33 days before ours, and still restored
      const st = JSON.parse(sb.mustDits(['thaw', '--status', '--json'], x.clone)) as { progress: { state: string; expiry?: string }[] }[];
      expect(st[0]!.progress.length).toBe(x.packsOf['a.mov']!.size);
      for (const p of st[0]!.progress) {
        expect(p.state).toBe('restored');
        expect(Date.parse(p.expiry!)).toBeLessThan(Date.now() - 30 * DAY);
      }
      expect((await front.counts()).restoresStarted).toBe(x.packsOf['a.mov']!.size);
    } finally {
      await front.advanceClock(40 * DAY);
    }
  }, 120_000);

  it('on a terminal it asks: no restores nothing, yes restores', async () => {
    const x = await world('prompt');
    await front.setRestoreDelay(60_000);
    await front.resetCounts();
    // a pseudo-terminal (script(1)); the answer typed on it
    const onTty = (answer: string) =>
      sb.run('script', ['-qec', `${DITS_BIN} thaw a.mov --tier standard`, '/dev/null'], x.clone, `${answer}\n`, { CI: '' });
    const no = onTty('n');
    expect(no.stdout).toMatch(/Restore \d+ pack\(s\) at standard for \$[0-9.]+\? \[y\/N\]/);
    expect(no.stdout).toMatch(/nothing was restored/);
    expect((await front.counts()).restores).toBe(0);
    const yes = onTty('y');
    expect(yes.stdout).toMatch(new RegExp(`${x.packsOf['a.mov']!.size} restore\\(s\\) started`));
    expect((await front.counts()).restoresStarted).toBe(x.packsOf['a.mov']!.size);
  }, 120_000);

  it('a revision thaws every file of that commit; Deep Archive offers no expedited retrieval (said, nothing asked)', async () => {
    const x = await world('deep');
    for (const k of x.allPacks) await front.setClass(`${x.prefix}/${k}`, 'DEEP_ARCHIVE', 'media');
    await front.resetCounts();
    const plan = JSON.parse(sb.mustDits(['thaw', 'HEAD', '--dry-run', '--json'], x.clone)) as { files: { path: string }[]; packs: unknown[]; byTier: { tier: string; unavailableFor: string[] }[] };
    expect(plan.files.map((f) => f.path).sort()).toEqual(['a.mov', 'b.mov', 'c.mov']);
    expect(plan.packs.length).toBe(x.allPacks.length);
    expect(plan.byTier.find((t) => t.tier === 'expedited')!.unavailableFor).toEqual(['DEEP_ARCHIVE']);
    const r = sb.dits(['thaw', 'HEAD', '--tier', 'expedited', '--yes'], x.clone);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/expedited +not offered by DEEP_ARCHIVE/);
    expect(r.stderr).toMatch(/DEEP_ARCHIVE offers no expedited retrieval/);
    expect(r.stderr).toMatch(/--tier \(?standard, bulk|choose another --tier \(standard, bulk\)/);
    expect((await front.counts()).restores).toBe(0);
  }, 120_000);

  it('bad input: no path, a path not tracked, a bad tier, a bad range', () => {
    expect(sb.dits(['thaw'], w.clone).status).toBe(2);
    const nt = sb.dits(['thaw', 'nope.mov'], w.clone);
    expect(nt.status).toBe(1);
    expect(nt.stderr).toMatch(/no file tracked by Dits matches 'nope\.mov'/);
    const bt = sb.dits(['thaw', 'a.mov', '--tier', 'fast'], w.clone);
    expect(bt.status).toBe(2);
    expect(bt.stderr).toMatch(/not a retrieval tier/);
    const br = sb.dits(['thaw', 'b.mov', '--range', '00:02:00-00:01:00'], w.clone);
    expect(br.status).toBe(2);
    expect(br.stderr).toMatch(/not a time range/);
  });
});

const CUT = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE fcpxml>
<fcpxml version="1.10">
  <resources>
    <format id="r1" name="FFVideoFormat320x240p25" frameDuration="100/2500s" width="320" height="240"/>
    <asset id="ra" name="a" start="3600s" duration="2s" hasVideo="1" hasAudio="1" format="r1">
      <media-rep kind="original-media" src="file:///Volumes/Shoot/Media/a.mov"/>
    </asset>
  </resources>
  <library>
    <event name="Day 1">
      <project name="Cut 1">
        <sequence format="r1" duration="10/25s" tcStart="3600s" tcFormat="NDF">
          <spine>
            <asset-clip ref="ra" offset="3600s" name="a" start="90020/25s" duration="10/25s"/>
          </spine>
        </sequence>
      </project>
    </event>
  </library>
</fcpxml>
`;

// the same cut as an EDL: source timecode 01:00:00:20-01:00:01:05 of a clip that starts at 01:00:00:00 (25 fps)
const CUT_EDL = `TITLE: CUT
FCM: NON-DROP FRAME

001  AX       V     C        01:00:00:20 01:00:01:05 01:00:00:00 01:00:00:10
* FROM CLIP NAME: a.mov
`;

describe('git dits thaw --range / --project (a real ProRes clip, moov at the end)', () => {
  let clip: Buffer;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    const { makeClips } = await import('./fixtures/media/make-clips.js');
    const clips = await makeClips(['prores.mov']);
    clip = fs.readFileSync(clips.path('prores.mov'));
    cleanup = clips.cleanup;
  }, 60_000);
  afterAll(async () => cleanup?.());

  /** Media/a.mov (the clip) and Media/c.mov pushed in packs of 64 kB, all frozen, a lazy clone. */
  async function clipWorld(name: string): Promise<{ clone: string; prefix: string; aPacks: Set<string>; cPacks: Set<string> }> {
    const cfg = { ...SMALL_CHUNKS, 'dits.packSize': '64k' };
    const repo = sb.repo(name, { track: ['*.mov'], config: cfg, files: { 'Media/a.mov': clip, 'Media/c.mov': randomBytesSeeded(150_000, 21), 'edit/cut.fcpxml': CUT, 'edit/cut.edl': CUT_EDL } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'shoot'], repo);
    const prefix = `${name}-${Date.now()}`;
    sb.mustGit(['remote', 'add', 'origin', `dits::s3://media/${prefix}`], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    const storage = await storageOf(prefix);
    const byChunk = new Map<string, string>();
    const packs: string[] = [];
    for await (const o of storage.list('v1/packs/')) {
      if (o.key.endsWith('.pack')) packs.push(o.key);
      if (o.key.endsWith('.idx')) for (const e of decodePackIndex(await storage.getBuffer(o.key))) byChunk.set(e.idRaw.toString('hex'), o.key.replace(/\.idx$/, '.pack'));
    }
    const store = ChunkStore.open(path.join(repo, '.git', 'dits'));
    const packsOfFile = (f: string): Set<string> => {
      const ptr = parsePointer(Buffer.from(sb.mustGit(['cat-file', 'blob', `HEAD:${f}`], repo)))!;
      return new Set([...Manifest.parse(store.getManifestBytes(ptr.manifest)).distinctIds()].map((id) => byChunk.get(id)!));
    };
    const aPacks = packsOfFile('Media/a.mov');
    const cPacks = packsOfFile('Media/c.mov');
    store.close();
    for (const k of packs) await front.setClass(`${prefix}/${k}`, 'GLACIER', 'media');
    const clone = path.join(sb.dir, `${name}-clone`);
    sb.mustGit(['clone', '-q', '-c', 'dits.fetchMode=lazy', `dits::s3://media/${prefix}`, clone], sb.dir);
    return { clone, prefix, aPacks, cPacks };
  }

  it('--range: the container index first, then only the packs of the range; afterwards the range is readable', async () => {
    const x = await clipWorld('ranged');
    expect(x.aPacks.size).toBeGreaterThan(8);
    await front.setRestoreDelay(0);
    await front.resetCounts();
    const dry = sb.dits(['thaw', 'Media/a.mov', '--range', '00:00:00.8-00:00:01.0', '--dry-run'], x.clone);
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/Media\/a\.mov 00:00:00\.800-00:00:01\.000: .*its container index first/);
    const r = sb.dits(['thaw', 'Media/a.mov', '--range', '00:00:00.8-00:00:01.0', '--yes', '--wait', '--poll-interval', '50ms'], x.clone);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/The container index is readable now/);
    expect(r.stdout).toMatch(/The range's content \(\d+ chunk\(s\)\) is in the local store/);
    const started = (await front.counts()).restoresStarted;
    expect(started).toBeGreaterThan(0);
    expect(started).toBeLessThan(x.aPacks.size);
    // the file stays a pointer (the rest of it is frozen); the range needs nothing more
    expect(isPointer(path.join(x.clone, 'Media/a.mov'))).toBe(true);
    const after = sb.dits(['thaw', 'Media/a.mov', '--range', '00:00:00.8-00:00:01.0', '--dry-run'], x.clone);
    expect(after.stdout).toMatch(/Media\/a\.mov is not frozen/);
    // the whole file still needs the packs not restored
    const whole = sb.dits(['thaw', 'Media/a.mov', '--dry-run', '--json'], x.clone);
    const plan = JSON.parse(whole.stdout) as { packs: { state: string }[] };
    expect(plan.packs.filter((p) => p.state === 'frozen').length).toBe(x.aPacks.size - started);
  }, 120_000);

  it('--project: the used range of each clip the timeline names; media not in the cut stays frozen', async () => {
    const x = await clipWorld('project');
    await front.setRestoreDelay(0);
    await front.resetCounts();
    const dry = sb.dits(['thaw', '--project', 'edit/cut.fcpxml', '--dry-run'], x.clone);
    expect(dry.status, dry.stderr).toBe(0);
    // 90020/25 s - 3600 s = 0.8 s, 10 frames at 25 fps
    expect(dry.stdout).toMatch(/Media\/a\.mov 00:00:00\.800-00:00:01\.200: /);
    // the EDL: its source timecode less the clip's start timecode (read from its manifest), at the clip's 25 fps
    const edl = sb.dits(['thaw', '--project', 'edit/cut.edl', '--dry-run'], x.clone);
    expect(edl.status, edl.stderr).toBe(0);
    expect(edl.stdout).toMatch(/Media\/a\.mov 00:00:00\.800-00:00:01\.200: /);
    expect(dry.stdout).not.toMatch(/c\.mov/);
    const r = sb.dits(['thaw', '--project', 'edit/cut.fcpxml', '--yes', '--wait', '--poll-interval', '50ms'], x.clone);
    expect(r.status, r.stderr).toBe(0);
    const started = (await front.counts()).restoresStarted;
    expect(started).toBeLessThan(x.aPacks.size);
    for (const k of x.cPacks) if (!x.aPacks.has(k)) expect(await front.classOf(`${x.prefix}/${k}`, 'media')).toBe('GLACIER');
    const after = sb.dits(['thaw', '--project', 'edit/cut.fcpxml', '--dry-run'], x.clone);
    expect(after.stdout).toMatch(/Media\/a\.mov is not frozen/);
  }, 120_000);
});

describe('git dits thaw through a Dits server (S3 with Glacier behaviour behind it)', () => {
  let server: ChildProcess;
  let url: string;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = path.join(sb.dir, 'server-data');
    sb.mustDits(['server', 'user', 'add', 'root', '--admin', '--data', dataDir], sb.dir);
    const token = sb.mustDits(['server', 'token', 'create', 'root', 'ci', '--data', dataDir, '--json'], sb.dir);
    sb.env.DITS_TOKEN = (JSON.parse(token) as { token: string }).token;
    sb.mustDits(['server', 'repo', 'create', 'team/film', '--data', dataDir], sb.dir);
    sb.mustDits(['server', 'repo', 'create', 'team/clip', '--data', dataDir], sb.dir);
    server = spawn(process.execPath, [path.join(ROOT, 'dist', 'server', 'main.js'), '--data', dataDir, '--port', '0', '--storage', 's3://media/srv'], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, AWS_ENDPOINT_URL: front.endpoint, DITS_TIER_PROVIDER: 'aws' },
    });
    url = await new Promise<string>((resolve, reject) => {
      let buf = '';
      server.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const m = /"msg":"listening"[^\n]*"url":"([^"]+)"/.exec(buf) ?? /"url":"([^"]+)"[^\n]*"msg":"listening"/.exec(buf);
        if (m) resolve(m[1]!);
      });
      server.once('exit', (c) => reject(new Error(`the server exited (${c})`)));
    });
  }, 60_000);
  afterAll(async () => {
    if (server && server.exitCode === null) {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
    }
  });

  it('cost first, restores through the server (one per pack), its budget refuses what would exceed it, --wait writes the file', async () => {
    const files = { 'a.mov': randomBytesSeeded(300_000, 31), 'b.mov': randomBytesSeeded(300_000, 32) };
    const repo = sb.repo('via-server', { track: ['*.mov'], config: CFG, files });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'footage'], repo);
    sb.mustGit(['remote', 'add', 'origin', `dits::${url}/team/film`], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    const storage = await storageOf('srv/team/film');
    const packs: string[] = [];
    for await (const o of storage.list('v1/packs/')) if (o.key.endsWith('.pack')) packs.push(o.key);
    expect(packs.length).toBeGreaterThan(2);
    for (const k of packs) await front.setClass(`srv/team/film/${k}`, 'GLACIER', 'media');
    const clone = path.join(sb.dir, 'via-server-clone');
    sb.mustGit(['clone', '-q', '-c', 'dits.fetchMode=lazy', `dits::${url}/team/film`, clone], sb.dir);
    expect(isPointer(path.join(clone, 'a.mov'))).toBe(true);
    await front.setRestoreDelay(0);
    await front.resetCounts();

    const dry = sb.dits(['thaw', 'a.mov', '--dry-run'], clone);
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/a\.mov: .* frozen of .*, in \d+ pack\(s\)/);
    expect(dry.stdout).toMatch(/\* standard /);
    expect((await front.counts()).restores).toBe(0);

    // a budget of nothing: refused with the figures, nothing asked
    sb.mustDits(['server', 'repo', 'budget', 'team/film', '0', '--data', dataDir], sb.dir);
    const refused = sb.dits(['thaw', 'a.mov', '--yes', '--tier', 'expedited'], clone);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/thaw budget/);
    expect(refused.stderr).toMatch(/git dits server repo budget team\/film/);
    expect((await front.counts()).restores).toBe(0);

    sb.mustDits(['server', 'repo', 'budget', 'team/film', '5', '--data', dataDir], sb.dir);
    const r = sb.dits(['thaw', 'a.mov', '--yes', '--tier', 'expedited', '--wait', '--poll-interval', '50ms'], clone);
    expect(r.status, r.stderr).toBe(0);
    const n = Number(/in (\d+) pack\(s\)/.exec(dry.stdout)![1]);
    expect(r.stdout).toMatch(new RegExp(`${n} restore\\(s\\) started; recorded as thaw `));
    expect((await front.counts()).restoresStarted).toBe(n);
    expect(fs.readFileSync(path.join(clone, 'a.mov')).equals(files['a.mov'])).toBe(true);
    expect(isPointer(path.join(clone, 'b.mov'))).toBe(true);
    const budget = JSON.parse(sb.mustDits(['server', 'repo', 'budget', 'team/film', '--data', dataDir, '--json'], sb.dir)) as { spent: number };
    expect(budget.spent).toBeGreaterThan(0);
    const st = sb.dits(['thaw', '--status'], clone);
    expect(st.stdout).toMatch(/expedited  by root  a\.mov: restored/);
  }, 180_000);

  it('--range through the server: it reads the clip\'s index from its archive once restored, then restores the range\'s packs; the range lands in the local store', async () => {
    const { makeClips } = await import('./fixtures/media/make-clips.js');
    const clips = await makeClips(['prores.mov']);
    const clip = fs.readFileSync(clips.path('prores.mov'));
    await clips.cleanup();
    const repo = sb.repo('via-server-clip', { track: ['*.mov'], config: { ...SMALL_CHUNKS, 'dits.packSize': '64k' }, files: { 'Media/a.mov': clip } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'shoot'], repo);
    sb.mustGit(['remote', 'add', 'origin', `dits::${url}/team/clip`], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    const storage = await storageOf('srv/team/clip');
    const packs: string[] = [];
    for await (const o of storage.list('v1/packs/')) if (o.key.endsWith('.pack')) packs.push(o.key);
    for (const k of packs) await front.setClass(`srv/team/clip/${k}`, 'GLACIER', 'media');
    const clone = path.join(sb.dir, 'via-server-clip-clone');
    sb.mustGit(['clone', '-q', '-c', 'dits.fetchMode=lazy', `dits::${url}/team/clip`, clone], sb.dir);
    sb.mustDits(['server', 'repo', 'budget', 'team/clip', 'none', '--data', dataDir], sb.dir);
    await front.setRestoreDelay(0);
    await front.resetCounts();
    const r = sb.dits(['thaw', 'Media/a.mov', '--range', '0.8-1.0', '--yes', '--wait', '--poll-interval', '50ms'], clone);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/its container index first/);
    expect(r.stdout).toMatch(/The container index is readable now/);
    expect(r.stdout).toMatch(/The range's content \(\d+ chunk\(s\)\) is in the local store/);
    const started = (await front.counts()).restoresStarted;
    expect(started).toBeGreaterThan(0);
    expect(started).toBeLessThan(packs.length);
    const after = sb.dits(['thaw', 'Media/a.mov', '--range', '0.8-1.0', '--dry-run'], clone);
    expect(after.stdout).toMatch(/Media\/a\.mov is not frozen/);
  }, 180_000);
});

describe('git dits thaw on a local-directory remote with an archive folder (dits.tier.archive = deep)', () => {
  it('restores (copies into the archive folder\'s restored area) exactly the file\'s packs, free and without a question, then writes it', async () => {
    const { TieredFolderStorage } = await import('../src/tier/tier-folders.js');
    const remoteDir = path.join(sb.dir, 'folder-remote');
    const deepDir = path.join(sb.dir, 'folder-deep');
    fs.mkdirSync(remoteDir, { recursive: true });
    fs.mkdirSync(deepDir, { recursive: true });
    const tierCfg = { 'dits.tier.folder.deep': deepDir, 'dits.tier.archive': 'deep' };
    const files = { 'a.mov': randomBytesSeeded(300_000, 41), 'b.mov': randomBytesSeeded(300_000, 42) };
    const repo = sb.repo('folder-tiers', { track: ['*.mov'], config: { ...CFG, ...tierCfg }, files });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'footage'], repo);
    sb.mustGit(['remote', 'add', 'origin', `dits::file://${remoteDir}`], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    // every pack to the archive folder
    const tiers = new TieredFolderStorage(remoteDir, { folders: { deep: deepDir }, archive: ['deep'] });
    const packs: string[] = [];
    for await (const o of tiers.listTiered('v1/packs/')) if (o.key.endsWith('.pack')) packs.push(o.key);
    for (const k of packs) await tiers.setStorageClass(k, 'deep', { size: (await tiers.head(k))!.size });
    expect(fs.existsSync(path.join(remoteDir, packs[0]!))).toBe(false);
    const aPacks = new Set<string>();
    {
      const store = ChunkStore.open(path.join(repo, '.git', 'dits'));
      const ptr = parsePointer(Buffer.from(sb.mustGit(['cat-file', 'blob', 'HEAD:a.mov'], repo)))!;
      const ids = Manifest.parse(store.getManifestBytes(ptr.manifest)).distinctIds();
      store.close();
      for (const k of packs.map((p) => p.replace(/\.pack$/, '.idx'))) {
        if ((decodePackIndex(await tiers.getBuffer(k)) as { idRaw: Buffer }[]).some((e) => ids.has(e.idRaw.toString('hex')))) aPacks.add(k.replace(/\.idx$/, '.pack'));
      }
    }
    const clone = path.join(sb.dir, 'folder-tiers-clone');
    const cfg = Object.entries({ ...tierCfg, 'dits.fetchMode': 'lazy' }).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
    sb.mustGit(['clone', '-q', ...cfg, `dits::file://${remoteDir}`, clone], sb.dir);
    expect(isPointer(path.join(clone, 'a.mov'))).toBe(true);

    const r = sb.dits(['thaw', 'a.mov', '--wait', '--poll-interval', '50ms'], clone);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`To restore: ${aPacks.size} pack\\(s\\), .* \\(deep\\)`));
    expect(r.stdout).toMatch(/\* standard +\$0 /);
    expect(r.stdout).toMatch(new RegExp(`${aPacks.size} restore\\(s\\) started`));
    const restored = fs.readdirSync(path.join(deepDir, '.dits-restored', 'v1', 'packs')).map((n) => `v1/packs/${n}`);
    expect(new Set(restored)).toEqual(aPacks);
    expect(fs.readFileSync(path.join(clone, 'a.mov')).equals(files['a.mov'])).toBe(true);
    expect(isPointer(path.join(clone, 'b.mov'))).toBe(true);
    // the archive copies are all still there
    for (const k of packs) expect(fs.existsSync(path.join(deepDir, k))).toBe(true);
    // --json: stdout is one JSON document, whatever else is said on the way
    const j = sb.dits(['thaw', 'b.mov', '--wait', '--json', '--poll-interval', '50ms'], clone);
    expect(j.status, j.stderr).toBe(0);
    const answer = JSON.parse(j.stdout) as { id: string; started: number };
    expect(answer.started).toBeGreaterThan(0);
    expect(j.stderr).toMatch(/Wrote 1 file\(s\)/);
    expect(fs.readFileSync(path.join(clone, 'b.mov')).equals(files['b.mov'])).toBe(true);
  }, 120_000);
});
