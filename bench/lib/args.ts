/** The benchmark's command line. Pure: argv and environment in, options out. */
import { parseArgs } from 'node:util';
import { parseSize } from './units.js';

export type Section = 'core' | 'media' | 'remote' | 'many' | 'proxy' | 'tier' | 'mount' | 'mirror' | 'snapshot';
export const SECTIONS: readonly Section[] = ['core', 'media', 'remote', 'many', 'proxy', 'tier', 'mount', 'mirror', 'snapshot'];

export type ProxyFigureName = 'clone' | 'make' | 'switch' | 'worker' | 'status';
export const PROXY_FIGURES: readonly ProxyFigureName[] = ['clone', 'make', 'switch', 'worker', 'status'];

export type TierFigureName = 'plan' | 'moves' | 'thaw-file' | 'thaw-range' | 'cost' | 'frozen-checkout';
export const TIER_FIGURES: readonly TierFigureName[] = ['plan', 'moves', 'thaw-file', 'thaw-range', 'cost', 'frozen-checkout'];

export interface BenchOptions {
  size: number;
  bigSize: number;
  runs: number;
  only: Section[];
  skipBig: boolean;
  /** Size of each issue 4 clip (H.264 .mp4, ProRes .mov); default half of `size`. */
  mediaSize: number;
  /** Length of the PCM clip for the inspect figure; default one hour, scaled down with `size`. */
  inspectSeconds: number;
  /** Paths in the lazy-clone repository (each pointing at the video). */
  lazyPaths: number;
  json: string | null;
  /** Where the corpus is cached and the sandboxes are made. */
  workDir: string | null;
  memoryIntervalMs: number;
  /** Tracked files in the status figure of the many-files section (issue 15: 10,000). */
  statusFiles: number;
  /** Issue 16: length of each 4K ProRes 422 HQ clip (seconds) and how many (the proxy-clone repository). */
  proxySeconds: number;
  proxyClips: number;
  /** Issue 16: size of each of the 10 files switched proxy <-> original (1 GiB in the issue). */
  proxySwitchSize: number;
  /** Issue 16: size of the source the server's worker makes a proxy of (4 GiB in the issue). */
  proxyWorkerSize: number;
  /** Issue 16: proxy files in the `git status` figure (100 in the issue). */
  proxyStatusFiles: number;
  /** Issue 16: which of its figures to measure (default all). */
  proxyFigures: ProxyFigureName[];
  /** Issue 17: packs in the synthetic catalog of the tier plan figure (1,000,000 in the issue). */
  tierPacks: number;
  /** Issue 17: which of its figures to measure (default all). */
  tierFigures: TierFigureName[];
  /** Issue 18: files in the `ls -lR` tree (10,000 in the issue). */
  mountFiles: number;
  /** Issue 18: the mount's RAM budget (`git dits mount --memory`). */
  mountMemory: number;
  /** Issue 18: ffmpeg seeks through the mount (100 in the issue), in a ProRes clip of mountClipSize. */
  mountSeeks: number;
  mountClipSize: number;
  /** Issue 18: size of the random file whose first byte is timed (the issue: 20 GiB); 0 = only the --size video. */
  mountFirstByteSize: number;
  /** Issue 19: files of `--size` each in the snapshot section's tree (10 x 1 GiB in the issue). */
  snapshotFiles: number;
  help: boolean;
}

export const USAGE = `npm run bench -- [options]

  --size <n>        size of the generated video (default BENCH_SIZE or 1G)
  --big-size <n>    size of the random file for the memory figures (default BENCH_BIG_SIZE or 8G)
  --runs <n>        runs per figure; medians are printed (default 3)
  --only <list>     sections, comma-separated: core, media, remote, many, proxy, tier, mount,
                    mirror, snapshot (default: all)
  --skip-big        skip the big-file memory figures
  --media-size <n>  size of each issue 4 clip (default half of --size: 512M)
  --inspect-seconds <s>  PCM clip length for the inspect figure (default 3600 x size/1G, at least 60)
  --lazy-paths <n>  paths in the lazy-clone repository, each the video (default 20: 20 GiB)
  --json <file>     write every run's raw numbers to <file>
  --work-dir <dir>  corpus cache and sandboxes (default .bench/ in the repository)
  --interval <ms>   memory sampling interval (default 50)
  --status-files <n>  tracked files for the status figure of the many section (default 10000)
  --proxy-seconds <s>   length of each 4K ProRes 422 HQ clip of the proxy section (default 2: about 190 MB)
  --proxy-clips <n>     4K clips in the proxy-clone repository (default 3)
  --proxy-switch-size <n>  size of each of the 10 files switched proxy <-> original (default 192M; the issue: 1G)
  --proxy-worker-size <n>  size of the source the server's worker makes a proxy of (default 512M; the issue: 4G)
  --proxy-status-files <n> proxy files in the git status figure (default 100)
  --proxy-figures <list>   figures of the proxy section: clone, make, switch, worker, status (default: all)
  --tier-packs <n>         packs in the synthetic catalog of the tier plan figure (default 1000000)
  --tier-figures <list>    figures of the tier section: plan, moves, thaw-file,
                           thaw-range, cost, frozen-checkout (default: all)
  --mount-files <n>  files in the ls -lR tree of the mount section (default 10000)
  --mount-memory <n> RAM budget given to git dits mount --memory (default 256M)
  --mount-seeks <n>  ffmpeg seeks through the mount (default 100)
  --mount-clip-size <n>  size of the ProRes clip they seek in (default --size: 1G, as the issue)
  --mount-first-byte-size <n>  also time the first byte of a random file this big, local and
                    from S3, and the commit of a 100-byte edit in it from a writable mount
                    against re-adding it (the issue: 20G; needs about 2x that on disk;
                    default 0: off)
  --snapshot-files <n>  files of --size each in the snapshot section's tree (default 10: 10 GiB)

Sizes take binary suffixes: 64M, 1G, 8GiB. Quick check: --size 64M --big-size 256M --runs 1`;

export function parseBenchArgs(argv: readonly string[], env: NodeJS.ProcessEnv): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      size: { type: 'string' },
      'big-size': { type: 'string' },
      runs: { type: 'string' },
      only: { type: 'string' },
      'skip-big': { type: 'boolean' },
      'media-size': { type: 'string' },
      'inspect-seconds': { type: 'string' },
      'lazy-paths': { type: 'string' },
      json: { type: 'string' },
      'work-dir': { type: 'string' },
      interval: { type: 'string' },
      'status-files': { type: 'string' },
      'proxy-seconds': { type: 'string' },
      'proxy-clips': { type: 'string' },
      'proxy-switch-size': { type: 'string' },
      'proxy-worker-size': { type: 'string' },
      'proxy-status-files': { type: 'string' },
      'proxy-figures': { type: 'string' },
      'tier-packs': { type: 'string' },
      'tier-figures': { type: 'string' },
      'mount-files': { type: 'string' },
      'mount-memory': { type: 'string' },
      'mount-seeks': { type: 'string' },
      'mount-clip-size': { type: 'string' },
      'mount-first-byte-size': { type: 'string' },
      'snapshot-files': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const runs = positiveInt(values.runs ?? '3', '--runs');
  const interval = Number(values.interval ?? '50');
  if (!(interval >= 1)) throw new Error(`--interval must be at least 1 ms, not ${values.interval}`);
  const only = (values.only ?? SECTIONS.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of only) if (!SECTIONS.includes(s as Section)) throw new Error(`--only: unknown section ${JSON.stringify(s)} (${SECTIONS.join(', ')})`);
  const proxyFigures = (values['proxy-figures'] ?? PROXY_FIGURES.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const f of proxyFigures) if (!PROXY_FIGURES.includes(f as ProxyFigureName)) throw new Error(`--proxy-figures: unknown figure ${JSON.stringify(f)} (${PROXY_FIGURES.join(', ')})`);
  const tierFigures = (values['tier-figures'] ?? TIER_FIGURES.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const f of tierFigures) if (!TIER_FIGURES.includes(f as TierFigureName)) throw new Error(`--tier-figures: unknown figure ${JSON.stringify(f)} (${TIER_FIGURES.join(', ')})`);
  const size = parseSize(values.size ?? env.BENCH_SIZE ?? '1G');
  const inspectSeconds = values['inspect-seconds'] !== undefined ? Number(values['inspect-seconds']) : Math.max(60, Math.round(3600 * Math.min(1, size / 2 ** 30)));
  if (!Number.isInteger(inspectSeconds) || inspectSeconds < 1) throw new Error(`--inspect-seconds must be a positive integer, not ${values['inspect-seconds']}`);
  return {
    size,
    mediaSize: values['media-size'] !== undefined ? parseSize(values['media-size']) : Math.floor(size / 2),
    inspectSeconds,
    lazyPaths: positiveInt(values['lazy-paths'] ?? '20', '--lazy-paths'),
    bigSize: parseSize(values['big-size'] ?? env.BENCH_BIG_SIZE ?? '8G'),
    runs,
    only: only as Section[],
    skipBig: values['skip-big'] ?? false,
    json: values.json ?? null,
    workDir: values['work-dir'] ?? null,
    memoryIntervalMs: interval,
    statusFiles: positiveInt(values['status-files'] ?? '10000', '--status-files'),
    proxySeconds: positiveInt(values['proxy-seconds'] ?? '2', '--proxy-seconds'),
    proxyClips: positiveInt(values['proxy-clips'] ?? '3', '--proxy-clips'),
    proxySwitchSize: parseSize(values['proxy-switch-size'] ?? '192M'),
    proxyWorkerSize: parseSize(values['proxy-worker-size'] ?? '512M'),
    proxyStatusFiles: positiveInt(values['proxy-status-files'] ?? '100', '--proxy-status-files'),
    proxyFigures: proxyFigures as ProxyFigureName[],
    tierPacks: positiveInt(values['tier-packs'] ?? '1000000', '--tier-packs'),
    tierFigures: tierFigures as TierFigureName[],
    mountFiles: positiveInt(values['mount-files'] ?? '10000', '--mount-files'),
    mountMemory: parseSize(values['mount-memory'] ?? '256M'),
    mountSeeks: positiveInt(values['mount-seeks'] ?? '100', '--mount-seeks'),
    mountClipSize: values['mount-clip-size'] !== undefined ? parseSize(values['mount-clip-size']) : size,
    mountFirstByteSize: values['mount-first-byte-size'] !== undefined ? parseSize(values['mount-first-byte-size']) : 0,
    snapshotFiles: positiveInt(values['snapshot-files'] ?? '10', '--snapshot-files'),
    help: values.help ?? false,
  };
}

function positiveInt(text: string, name: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, not ${text}`);
  return n;
}
