/**
 * From a git remote to its storage: `dits::<url>` URLs in git config, S3 settings from git
 * config (`dits.s3.endpoint`, `dits.s3.region`, `dits.s3.pathStyle`, `dits.s3.profile`,
 * `dits.s3.conditionalWrites`) over the AWS SDK's usual sources (environment, shared
 * config and credentials files). Nothing secret is ever read from or written to the repo.
 */
import { gitConfigMap } from '../git/exec.js';
import { DitsUserError } from '../errors.js';
import type { ObjectStorage } from '../transfer/object-storage.js';
import { openStorage } from '../transfer/storage-url.js';
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

/** The remote content comes from: `dits.remote`, else origin, else the only dits remote. */
export async function defaultDitsRemote(cwd: string, explicit?: string): Promise<DitsRemote | null> {
  const remotes = await listDitsRemotes(cwd);
  const want = explicit ?? (await gitConfigMap(cwd, '^dits\\.remote$')).get('dits.remote');
  if (want) {
    const r = remotes.find((x) => x.name === want);
    if (!r) throw new DitsUserError('no-such-remote', `'${want}' is not a Dits remote of this repository`, { hint: 'list them with `git remote -v` (Dits remotes have dits:: URLs)' });
    return r;
  }
  return remotes.find((r) => r.name === 'origin') ?? (remotes.length === 1 ? remotes[0]! : null);
}

export async function openRemoteStorage(cwd: string, url: string): Promise<ObjectStorage> {
  const kv = await gitConfigMap(cwd, '^dits\\.s3\\.');
  const get = (k: string): string | undefined => kv.get(`dits.s3.${k.toLowerCase()}`);
  const pathStyle = get('pathStyle');
  return openStorage(url, {
    cwd,
    http: { token: () => serverToken(cwd, url) },
    s3: {
      endpoint: get('endpoint') ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL,
      region: get('region'),
      forcePathStyle: pathStyle === undefined ? Boolean(get('endpoint') ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL) : pathStyle === 'true',
      profile: get('profile'),
      conditionalWrites: get('conditionalWrites') as ConditionalWritesSetting | undefined,
    },
  });
}
