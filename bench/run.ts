/**
 * `npm run bench`: Dits against its peers (git-lfs, git-annex, restic) on a corpus the
 * benchmark generates itself, printing the figures of the issues with PASS/FAIL.
 * See bench/README.md for what each figure measures. This file is the only part that
 * reads argv, prints and sets the exit code; the measuring lives in bench/lib/.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBenchArgs, USAGE, type BenchOptions, type Section } from './lib/args.js';
import { createSandbox } from './lib/sandbox.js';
import { ensureCoreCorpus, ensureRandomFile } from './lib/corpus.js';
import { runCoreBench, type CoreResults } from './lib/core.js';
import { coreVerdicts, formatCoreReport, formatVerdicts, type Verdict } from './lib/report.js';
import { ensureLongPcmClip, ensureMediaClip, ensureMediaOriginal } from './lib/media-corpus.js';
import { formatSeekReport, runSeekBench, seekVerdicts, type SeekResults } from './lib/mount-seek.js';
import { runMediaBench, type MediaResults } from './lib/media.js';
import { formatMediaReport, mediaVerdicts } from './lib/media-report.js';
import { startS3Loopback } from './lib/s3-loopback.js';
import { runRemoteBench, type RemoteResults } from './lib/remote.js';
import { formatRemoteReport, remoteVerdicts } from './lib/remote-report.js';
import { runManyBench, type ManyResults } from './lib/many.js';
import { formatManyReport, manyVerdicts } from './lib/many-report.js';
import { runProxyBench, type ProxyResults } from './lib/proxy.js';
import { formatProxyReport, proxyVerdicts, PROXY_FIGURE_NAMES } from './lib/proxy-report.js';
import { runTierBench, type TierResults } from './lib/tier.js';
import { formatTierReport, tierVerdicts } from './lib/tier-report.js';

// the AWS SDK (loaded by the tier section) warns about Node 20 once per process, as git-dits does not let it
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (!`${w.name} ${w.message}`.includes('NodeVersionSupportWarning')) process.stderr.write(`${w.name}: ${w.message}\n`);
});
import { runMountBench, type MountResults } from './lib/mount.js';
import { formatMountReport, mountVerdicts } from './lib/mount-report.js';
import { MIRROR_BUCKETS, runMirrorBench, type MirrorResults } from './lib/mirror.js';
import { formatMirrorReport, mirrorVerdicts } from './lib/mirror-report.js';
import { runSnapshotBench, type SnapshotResults } from './lib/snapshot.js';
import { formatSnapshotReport, snapshotVerdicts } from './lib/snapshot-report.js';

/** The repository root: dist/bench/run.js -> ../.., bench/run.ts -> .. */
function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above the benchmark');
    dir = up;
  }
  return dir;
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function machine() {
  return { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '?', memoryBytes: os.totalmem(), node: process.version, platform: `${os.platform()} ${os.release()}`, loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100) };
}

async function main(opts: BenchOptions): Promise<number> {
  const root = repoRoot();
  const work = path.resolve(opts.workDir ?? path.join(root, '.bench'));
  const corpusDir = path.join(work, 'corpus');
  fs.mkdirSync(corpusDir, { recursive: true });
  const started = new Date();
  const machineStart = machine();
  log(`dits bench: ${machineStart.cpus} CPUs (${machineStart.cpuModel}), load average ${machineStart.loadavg.join(' ')}; work dir ${work}`);
  const sandbox = await createSandbox(path.join(work, 'sandbox'), path.join(root, 'bin'));
  const verdicts: Verdict[] = [];
  const raw: { core?: CoreResults; media?: MediaResults; remote?: RemoteResults; many?: ManyResults; proxy?: ProxyResults; tier?: TierResults; mount?: MountResults; mountSeeks?: SeekResults; mirror?: MirrorResults; snapshot?: SnapshotResults } = {};
  const notes: string[] = [];
  const failures: string[] = [];
  const sections: { name: Section; issue: number; run: () => Promise<void> }[] = [
    {
      name: 'core',
      issue: 3,
      run: async () => {
        const corpus = await ensureCoreCorpus(opts.size, { dir: corpusDir, env: sandbox.env, log });
        const big = opts.skipBig ? undefined : await ensureRandomFile(opts.bigSize, { dir: corpusDir, env: sandbox.env, log });
        const core = await runCoreBench(corpus, { runs: opts.runs, memoryIntervalMs: opts.memoryIntervalMs, ...(big ? { big } : {}) }, { sandbox, log });
        raw.core = core;
        const v = coreVerdicts(core);
        verdicts.push(...v);
        process.stdout.write(`\n${formatCoreReport(core, v, opts.runs)}\n`);
      },
    },
    {
      name: 'media',
      issue: 4,
      run: async () => {
        const deps = { dir: corpusDir, env: sandbox.env, log };
        const clips = [await ensureMediaClip('h264-mp4', opts.mediaSize, deps), await ensureMediaClip('prores-mov', opts.mediaSize, deps)];
        const longClip = { file: await ensureLongPcmClip(opts.inspectSeconds, deps), seconds: opts.inspectSeconds };
        const media = await runMediaBench(clips, { runs: opts.runs, memoryIntervalMs: opts.memoryIntervalMs, longClip }, { sandbox, log });
        raw.media = media;
        const v = mediaVerdicts(media);
        verdicts.push(...v);
        process.stdout.write(`\n${formatMediaReport(media, v, opts.runs)}\n`);
      },
    },
    {
      name: 'remote',
      issue: 5,
      run: async () => {
        const corpus = await ensureCoreCorpus(opts.size, { dir: corpusDir, env: sandbox.env, log });
        const s3 = await startS3Loopback({ directory: sandbox.freshDir('s3rver'), bucket: 'bench', repoRoot: root });
        try {
          const remote = await runRemoteBench(corpus, s3, { runs: opts.runs, memoryIntervalMs: opts.memoryIntervalMs, lazyPaths: opts.lazyPaths }, { sandbox, log });
          raw.remote = remote;
          const v = remoteVerdicts(remote);
          verdicts.push(...v);
          process.stdout.write(`\n${formatRemoteReport(remote, v, opts.runs)}\n`);
        } finally {
          await s3.close();
          sandbox.remove(path.join(sandbox.dir, 's3rver'));
        }
      },
    },
    {
      name: 'many',
      issue: 15,
      run: async () => {
        const many = await runManyBench({ runs: opts.runs, statusFiles: opts.statusFiles }, { sandbox, log, corpusDir });
        raw.many = many;
        const v = manyVerdicts(many);
        verdicts.push(...v);
        process.stdout.write(`\n${formatManyReport(many, v, opts.runs)}\n`);
      },
    },
    {
      name: 'proxy',
      issue: 16,
      run: async () => {
        // S3 for the proxy clone's byte count and the worker's source; without s3rver those are skipped.
        const s3 = await startS3Loopback({ directory: sandbox.freshDir('s3rver'), bucket: 'bench', repoRoot: root }).catch((e: unknown) => {
          notes.push(`proxy: no S3 server (${e instanceof Error ? e.message : String(e)}): S3 figures skipped`);
          return undefined;
        });
        try {
          const proxy = await runProxyBench(
            { runs: opts.runs, memoryIntervalMs: opts.memoryIntervalMs, clipSeconds: opts.proxySeconds, clips: opts.proxyClips, switchFileBytes: opts.proxySwitchSize, workerSourceBytes: opts.proxyWorkerSize, statusFiles: opts.proxyStatusFiles, figures: opts.proxyFigures },
            { sandbox, log, corpusDir, ...(s3 ? { s3 } : {}) },
          );
          raw.proxy = proxy;
          const v = proxyVerdicts(proxy);
          verdicts.push(...v);
          process.stdout.write(`\n${formatProxyReport(proxy, v, opts.runs)}\n`);
          // A figure that could not be measured makes the exit status 2, as a section that could not be.
          for (const n of proxy.notMeasured) failures.push(`issue 16, ${PROXY_FIGURE_NAMES[n.figure]}: ${n.why}`);
        } finally {
          await s3?.close();
          sandbox.remove(path.join(sandbox.dir, 's3rver'));
        }
      },
    },
    {
      name: 'tier',
      issue: 17,
      run: async () => {
        const tier = await runTierBench({ runs: opts.runs, memoryIntervalMs: opts.memoryIntervalMs, packs: opts.tierPacks, figures: opts.tierFigures }, { corpusDir, repoRoot: root, env: sandbox.env, log, sandbox });
        raw.tier = tier;
        const v = tierVerdicts(tier);
        verdicts.push(...v);
        process.stdout.write(`\n${formatTierReport(tier, v, opts.runs)}\n`);
        for (const n of tier.notMeasured) failures.push(`issue 17, tier ${n.figure}: ${n.why}`);
      },
    },
    {
      name: 'mount',
      issue: 18,
      run: async () => {
        const corpus = await ensureCoreCorpus(opts.size, { dir: corpusDir, env: sandbox.env, log });
        const s3 = await startS3Loopback({ directory: sandbox.freshDir('s3rver'), bucket: 'bench', repoRoot: root }).catch((e: unknown) => {
          notes.push(`mount: no S3 server (${e instanceof Error ? e.message : String(e)}): remote figures skipped`);
          return undefined;
        });
        try {
          const mount = await runMountBench(corpus.video, { runs: opts.runs, treeFiles: opts.mountFiles, memoryBudgetBytes: opts.mountMemory, firstByteBytes: opts.mountFirstByteSize }, { sandbox, log, ...(s3 ? { s3 } : {}) });
          raw.mount = mount;
          const v = mountVerdicts(mount);
          verdicts.push(...v);
          process.stdout.write(`\n${formatMountReport(mount, v, opts.runs)}\n`);
          const clip = await ensureMediaOriginal('prores-mov', opts.mountClipSize, { dir: corpusDir, env: sandbox.env, log });
          const seeks = await runSeekBench(clip, { seeks: opts.mountSeeks }, { sandbox, log });
          raw.mountSeeks = seeks;
          verdicts.push(...seekVerdicts(seeks));
          process.stdout.write(`\n${formatSeekReport(seeks)}\n`);
        } finally {
          await s3?.close();
          sandbox.remove(path.join(sandbox.dir, 's3rver'));
        }
      },
    },
    {
      name: 'mirror',
      issue: 19,
      run: async () => {
        const corpus = await ensureCoreCorpus(opts.size, { dir: corpusDir, env: sandbox.env, log });
        const s3Dir = sandbox.freshDir('s3rver');
        const s3 = await startS3Loopback({ directory: s3Dir, bucket: MIRROR_BUCKETS.primary, buckets: [MIRROR_BUCKETS.mirror], repoRoot: root });
        try {
          const mirror = await runMirrorBench(corpus.video, s3, { runs: opts.runs }, { sandbox, log, s3Dir });
          raw.mirror = mirror;
          const v = mirrorVerdicts(mirror);
          verdicts.push(...v);
          process.stdout.write(`\n${formatMirrorReport(mirror, v, opts.runs)}\n`);
        } finally {
          await s3.close();
          sandbox.remove(s3Dir);
        }
      },
    },
    {
      name: 'snapshot',
      issue: 19,
      run: async () => {
        const file = await ensureRandomFile(opts.size, { dir: corpusDir, env: sandbox.env, log });
        const snapshot = await runSnapshotBench(file, { runs: opts.runs, files: opts.snapshotFiles }, { sandbox, log });
        raw.snapshot = snapshot;
        const v = snapshotVerdicts(snapshot);
        verdicts.push(...v);
        process.stdout.write(`\n${formatSnapshotReport(snapshot, v, opts.runs)}\n`);
      },
    },
  ];
  try {
    for (const section of sections) {
      if (!opts.only.includes(section.name)) continue;
      log(`== ${section.name} (issue ${section.issue})`);
      // One section failing (a tool error, a check that did not hold) must not lose the
      // figures of the others: it is reported, and the exit status says so.
      try {
        await section.run();
      } catch (e) {
        const msg = `section ${section.name} (issue ${section.issue}) could not be measured: ${e instanceof Error ? e.message : String(e)}`;
        failures.push(msg);
        log(msg);
      }
    }
  } finally {
    sandbox.remove(sandbox.dir);
  }
  const machineEnd = machine();
  process.stdout.write(`\nSummary against the issues' targets\n${formatVerdicts(verdicts)}\n`);
  for (const n of notes) process.stdout.write(`note: ${n}\n`);
  for (const f of failures) process.stdout.write(`FAILED TO MEASURE: ${f}\n`);
  process.stdout.write(`machine: ${machineEnd.cpus} CPUs, load average at start ${machineStart.loadavg.join(' ')}, at end ${machineEnd.loadavg.join(' ')}; ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s\n`);
  if (opts.json) {
    const doc = { startedAt: started.toISOString(), options: opts, machine: { start: machineStart, end: machineEnd }, verdicts, notes, failures, ...raw };
    fs.writeFileSync(opts.json, JSON.stringify(doc, null, 2) + '\n');
    log(`raw numbers written to ${opts.json}`);
  }
  // A missed target is a result, not a failure of the benchmark: exit 0; 2 when a section could not be measured.
  return failures.length ? 2 : 0;
}

let opts: BenchOptions;
try {
  opts = parseBenchArgs(process.argv.slice(2), process.env);
} catch (e) {
  process.stderr.write(`${(e as Error).message}\n\n${USAGE}\n`);
  process.exit(2);
}
if (opts.help) {
  process.stdout.write(`${USAGE}\n`);
} else {
  try {
    process.exitCode = await main(opts);
  } catch (e) {
    process.stderr.write(`bench failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 2;
  }
}
