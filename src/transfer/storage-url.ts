/**
 * Remote storage URLs, as written after `dits::` in a git remote:
 *   s3://bucket/prefix     S3 or S3-compatible (endpoint etc. from AWS config / git config)
 *   file:///abs/path       a local directory or NAS mount
 *   /abs/path, ./rel/path  the same, as a plain path
 *   http(s)://host/o/r     repository o/r on a Dits server (HttpStorage)
 * `openStorage` turns one into an ObjectStorage; the S3 SDK is loaded only for s3 URLs.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DitsUserError } from '../errors.js';
import { BOOLEAN_FORMS, parseConfigBool } from '../git/dits-config.js';
import type { ObjectStorage } from './object-storage.js';
import type { S3StorageOptions, S3TierOptions } from './s3-storage.js';
import { isProviderName, isTier, TIERS, type Tier } from '../tier/tiers.js';
import type { TierFolderMap } from '../tier/tier-folders.js';
import type { FileStorageOptions } from './file-storage.js';
import type { HttpStorageOptions } from './http-storage.js';

export type StorageUrl =
  | { kind: 's3'; bucket: string; prefix: string }
  | { kind: 'file'; path: string }
  | { kind: 'http'; baseUrl: string };

// S3 bucket names: 3-63 chars of lowercase letters, digits, dots and hyphens (AWS rules;
// some compatible services also allow uppercase and underscores, which we accept).
const BUCKET = /^[A-Za-z0-9][A-Za-z0-9._-]{1,62}$/;

function badUrl(url: string, why: string, hint: string): DitsUserError {
  return new DitsUserError('bad-storage-url', `Invalid remote storage URL ${JSON.stringify(url)}: ${why}`, { hint });
}

const FORMS = 'Use dits::s3://<bucket>/<prefix>, dits::http(s)://<server>/<owner>/<repo>, dits::file:///<absolute path> or dits::/<absolute path>.';

export function parseStorageUrl(url: string, cwd: string = process.cwd()): StorageUrl {
  const text = url.trim();
  if (text === '') throw badUrl(url, 'empty', FORMS);
  if (text.startsWith('/') || text.startsWith('./') || text.startsWith('../')) {
    return { kind: 'file', path: path.resolve(cwd, text) };
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/.exec(text);
  if (!scheme) throw badUrl(url, 'no scheme and not a path', FORMS);
  const name = scheme[1].toLowerCase();
  if (name === 's3') {
    const m = /^s3:\/\/([^/]*)\/?(.*)$/i.exec(text);
    if (!m) throw badUrl(url, 's3 URLs start with s3:// (two slashes)', 'Write it as s3://<bucket>/<prefix>.');
    const bucket = m[1];
    if (bucket === '') throw badUrl(url, 'missing bucket name', 'Write it as s3://<bucket>/<prefix>, e.g. s3://my-team-media/project.');
    if (!BUCKET.test(bucket)) {
      throw badUrl(url, `"${bucket}" is not a valid bucket name`, 'Bucket names are 3-63 letters, digits, dots or hyphens.');
    }
    const prefix = m[2].replace(/\/+$/, '');
    if (prefix.split('/').some((s) => s === '.' || s === '..' || (s === '' && prefix !== ''))) {
      throw badUrl(url, 'the prefix has an empty, "." or ".." segment', 'Write it as s3://<bucket>/<folder>/<folder>.');
    }
    return { kind: 's3', bucket, prefix };
  }
  if (name === 'file') {
    if (!/^file:\/\//i.test(text)) throw badUrl(url, 'file URLs start with file:// ', 'Write it as file:///absolute/path (three slashes).');
    try {
      return { kind: 'file', path: fileURLToPath(text) };
    } catch (err) {
      throw badUrl(url, (err as Error).message, 'Write it as file:///absolute/path (three slashes; the host must be empty or localhost).');
    }
  }
  const near = ['s3', 'file', 'http', 'https'].find((known) => editDistance(name, known) <= 1 && name !== known);
  if (name === 'http' || name === 'https') {
    let parsed: URL;
    try {
      parsed = new URL(text);
    } catch (err) {
      throw badUrl(url, (err as Error).message, 'Write it as http(s)://<host>[:<port>]/<owner>/<repo>.');
    }
    const parts = parsed.pathname.split('/').filter((s) => s !== '');
    if (parts.length !== 2 || parsed.search !== '' || parsed.hash !== '' || parsed.username !== '' || parsed.password !== '') {
      const what = parts.length !== 2 ? `the path ${JSON.stringify(parsed.pathname)} is not supported` : 'a query, fragment or credentials in the URL are not supported';
      throw badUrl(url, `${what}: a Dits server remote names exactly <owner>/<repo> (tokens come from git's credential helpers)`, 'Write it as http(s)://<host>[:<port>]/<owner>/<repo>, e.g. dits::http://127.0.0.1:8080/team/film.');
    }
    return { kind: 'http', baseUrl: `${parsed.protocol}//${parsed.host}/${parts.join('/')}` };
  }
  throw badUrl(url, `unknown scheme "${scheme[1]}:"${near ? ` (did you mean "${near}:"?)` : ''}`, FORMS);
}

export interface OpenStorageOptions {
  /** Options for S3 remotes (filled by the CLI from git config `dits.s3.*`). */
  s3?: Omit<S3StorageOptions, 'bucket' | 'prefix'>;
  file?: FileStorageOptions;
  /** Options for Dits server remotes (the CLI passes a token provider). */
  http?: Omit<HttpStorageOptions, 'baseUrl'>;
  /** A folder per tier for file remotes (git config `dits.tier.folder.<tier>`): opens a TieredFolderStorage. */
  tierFolders?: TierFolderMap;
  cwd?: string;
}

/** Opens the ObjectStorage a URL names. */
export async function openStorage(url: string, options: OpenStorageOptions = {}): Promise<ObjectStorage> {
  const parsed = parseStorageUrl(url, options.cwd);
  if (parsed.kind === 'file') {
    if (options.tierFolders !== undefined) {
      const { TieredFolderStorage } = await import('../tier/tier-folders.js');
      return new TieredFolderStorage(parsed.path, { ...options.tierFolders, file: options.file });
    }
    const { FileStorage } = await import('./file-storage.js');
    return new FileStorage(parsed.path, options.file);
  }
  if (parsed.kind === 'http') {
    const { HttpStorage } = await import('./http-storage.js');
    return new HttpStorage({ ...options.http, baseUrl: parsed.baseUrl });
  }
  const { S3Storage } = await import('./s3-storage.js');
  return new S3Storage({ ...options.s3, bucket: parsed.bucket, prefix: parsed.prefix });
}

/** git config values of `dits.s3.*` (strings as git prints them) to S3 options. */
export function s3OptionsFromGitConfig(config: Record<string, string | undefined>): Omit<S3StorageOptions, 'bucket' | 'prefix'> {
  const out: Omit<S3StorageOptions, 'bucket' | 'prefix'> = {};
  const get = (name: string) => config[name] ?? config[name.toLowerCase()];
  const endpoint = get('dits.s3.endpoint');
  if (endpoint) {
    if (!/^https?:\/\/[^/\s]+/.test(endpoint)) {
      throw new DitsUserError('bad-storage-url', `dits.s3.endpoint ${JSON.stringify(endpoint)} is not an http(s) URL`, {
        hint: 'Set it like `git config dits.s3.endpoint https://s3.example.com` (or http://127.0.0.1:9000).',
      });
    }
    out.endpoint = endpoint;
  }
  const region = get('dits.s3.region');
  if (region) out.region = region;
  const profile = get('dits.s3.profile');
  if (profile) out.profile = profile;
  const pathStyle = get('dits.s3.pathStyle');
  if (pathStyle !== undefined) out.forcePathStyle = parseGitBool('dits.s3.pathStyle', pathStyle);
  const tier = tierOptionsFromGitConfig(get);
  if (tier !== undefined) out.tier = tier;
  const cw = get('dits.s3.conditionalWrites');
  if (cw !== undefined) {
    const v = cw.toLowerCase();
    if (v === 'auto') out.conditionalWrites = 'auto';
    else out.conditionalWrites = parseGitBool('dits.s3.conditionalWrites', v, 'auto') ? 'on' : 'off';
  }
  return out;
}

/**
 * `dits.tier.provider` (aws, b2, r2, wasabi, generic; default from the endpoint's host) and
 * `dits.tier.class.<tier>` (e.g. cold = GLACIER) for an S3 remote; undefined when none is
 * set. Class names are checked when tiers are first used (providerProfile), so a typo
 * fails tier commands with a hint, not every fetch.
 */
export function tierOptionsFromGitConfig(get: (name: string) => string | undefined): S3TierOptions | undefined {
  const out: S3TierOptions = {};
  const provider = get('dits.tier.provider')?.trim().toLowerCase();
  if (provider !== undefined && provider !== '') {
    if (!isProviderName(provider) || provider === 'folder') {
      throw new DitsUserError('bad-config', `git config dits.tier.provider = '${provider}' is not an S3 provider Dits knows`, {
        hint: 'use one of aws, b2, r2, wasabi, generic (or unset it: the endpoint decides)',
      });
    }
    out.provider = provider;
  }
  const overrides: Partial<Record<Tier, string>> = {};
  for (const t of TIERS) {
    const cls = get(`dits.tier.class.${t}`)?.trim();
    if (cls) overrides[t] = cls;
  }
  if (Object.keys(overrides).length > 0) out.overrides = overrides;
  return out.provider === undefined && out.overrides === undefined ? undefined : out;
}

/**
 * The tier folder map of a `dits::file://` remote from git config: `dits.tier.folder.<tier>`
 * (paths relative to `cwd`) and `dits.tier.archive` (tiers separated by commas or spaces).
 * undefined when no tier folder is set.
 */
export function tierFoldersFromGitConfig(get: (name: string) => string | undefined, cwd: string): TierFolderMap | undefined {
  const folders: TierFolderMap['folders'] = {};
  for (const t of ['warm', 'cold', 'deep'] as const) {
    const v = get(`dits.tier.folder.${t}`)?.trim();
    if (v) folders[t] = path.resolve(cwd, v);
  }
  const archiveText = get('dits.tier.archive')?.trim();
  if (Object.keys(folders).length === 0) {
    if (archiveText) throw new DitsUserError('bad-config', 'dits.tier.archive is set but no dits.tier.folder.<tier>', { hint: 'set the folders first: `git config dits.tier.folder.deep /mnt/tape`' });
    return undefined;
  }
  const archive = archiveText ? parseTierList('dits.tier.archive', archiveText) : [];
  return { folders, archive };
}

export function parseTierList(name: string, text: string): Tier[] {
  const out: Tier[] = [];
  for (const word of text.split(/[\s,]+/).filter((s) => s !== '')) {
    if (!isTier(word)) throw new DitsUserError('bad-config', `${name} = ${text}: ${word} is not a tier`, { hint: `tiers are ${TIERS.join(', ')}` });
    out.push(word);
  }
  return out;
}

/** Git's boolean rules (git/dits-config.ts); `alsoAllowed` only names another form the caller accepted first. */
export function parseGitBool(name: string, value: string, alsoAllowed?: string): boolean {
  try {
    return parseConfigBool(name, value);
  } catch (e) {
    if (alsoAllowed === undefined) throw e;
    throw new DitsUserError('bad-config', `git config ${name} = '${value}' is not a boolean or ${alsoAllowed}`, { hint: `${name} accepts ${BOOLEAN_FORMS} or ${alsoAllowed}` });
  }
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length][b.length];
}
