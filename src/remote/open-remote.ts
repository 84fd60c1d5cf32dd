/**
 * From a git remote to its storage: `dits::<url>` URLs in git config, S3 settings from git
 * config (`dits.s3.endpoint`, `dits.s3.region`, `dits.s3.pathStyle`, `dits.s3.profile`,
 * `dits.s3.conditionalWrites`, and for tiers `dits.tier.provider`, `dits.tier.class.<tier>`;
 * for folder remotes `dits.tier.folder.<tier>` and `dits.tier.archive`)
 * over the AWS SDK's usual sources (environment, shared config and credentials files).
 * Nothing secret is ever read from or written to the repo.
 */
import { gitConfigMap } from '../git/exec.js';
import { parseConfigBool, readDitsConfig, type DitsConfig } from '../git/dits-config.js';
import { DitsUserError } from '../errors.js';
import type { ObjectStorage } from '../transfer/object-storage.js';
import { openStorage, tierFoldersFromGitConfig, tierOptionsFromGitConfig } from '../transfer/storage-url.js';
import { serverToken } from './credentials.js';
import type { ConditionalWritesSetting } from '../transfer/s3-storage.js';

export interface DitsRemote {
  name: string;
  /** The URL after `dits::`. */
  url: string;
}

export async function listDitsRemotes(cwd: string): Promise<DitsRemote[]> {
  const kv = await gitConfigMap(cwd, '^remote\\..*\\.url$');
  const out: DitsRemote[] = [];
  for (const [k, v] of kv) {
    if (!v.startsWith('dits::')) continue;
    out.push({ name: k.slice('remote.'.length, -'.url'.length), url: v.slice('dits::'.length) });
  }
  return out;
}

/**
 * What a caller already read, so a command that needs several of these reads git config
 * once (each read is a git process): the Dits remotes and the `dits.*` settings.
 */
export interface KnownConfig {
  remotes?: DitsRemote[];
  config?: DitsConfig;
}

/** The remote content comes from: `dits.remote`, else origin, else the only dits remote. */
export async function defaultDitsRemote(cwd: string, explicit?: string, known: KnownConfig = {}): Promise<DitsRemote | null> {
  const remotes = known.remotes ?? (await listDitsRemotes(cwd));
  const want = explicit ?? (known.config ?? (await readDitsConfig(cwd))).string('dits.remote');
  if (want) {
    const r = remotes.find((x) => x.name === want);
    if (!r) throw new DitsUserError('no-such-remote', `'${want}' is not a Dits remote of this repository`, { hint: 'list them with `git remote -v` (Dits remotes have dits:: URLs)' });
    return r;
  }
  return remotes.find((r) => r.name === 'origin') ?? (remotes.length === 1 ? remotes[0]! : null);
}

/** dits.s3.conditionalWrites: auto, or a boolean (on/off). */
function conditionalWrites(config: DitsConfig): ConditionalWritesSetting | undefined {
  const v = config.raw('dits.s3.conditionalWrites');
  if (v === undefined) return undefined;
  if (v !== null && v.trim().toLowerCase() === 'auto') return 'auto';
  return parseConfigBool('dits.s3.conditionalWrites', v) ? 'on' : 'off';
}

export async function openRemoteStorage(cwd: string, url: string, known: KnownConfig = {}): Promise<ObjectStorage> {
  const config = known.config ?? (await readDitsConfig(cwd));
  const get = (k: string): string | undefined => config.string(`dits.s3.${k}`);
  return openStorage(url, {
    cwd,
    tierFolders: url.startsWith('s3:') || /^https?:/.test(url) ? undefined : tierFoldersFromGitConfig((k) => config.string(k), cwd),
    http: { token: () => serverToken(cwd, url) },
    s3: {
      endpoint: get('endpoint') ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL,
      region: get('region'),
      forcePathStyle: config.bool('dits.s3.pathStyle', Boolean(get('endpoint') ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL)),
      profile: get('profile'),
      conditionalWrites: conditionalWrites(config),
      tier: tierOptionsFromGitConfig((k) => config.string(k)),
    },
  });
}
