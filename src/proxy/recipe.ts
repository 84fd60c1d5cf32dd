/**
 * How a file's variants are made (its recipe): the proxy codec, the most lines high, and a
 * LUT for log footage. From git config, overridden per path pattern in .gitattributes:
 *
 *   git config dits.proxy.codec prores_proxy     # or dnxhr_lb, h264 (default prores_proxy)
 *   git config dits.proxy.height 1080            # at most this many lines (default 1080)
 *
 *   *.mxf              dits-proxy=dnxhr_lb
 *   *.mp4              dits-proxy-height=540
 *   A-cam/**\/*.mov     dits-lut=luts/slog3-to-709.cube
 *   renders/**         -dits-proxy              # no variants for these paths
 *
 * A recipe's `key` names the settings a variant was made with, so that changing any of them
 * (the LUT's content included, not only its name) makes a new variant instead of reusing a
 * stale one: `prores_proxy/h1080`, `dnxhr_lb/h720/lut=1a2b3c4d` (the first 8 hex of the
 * SHA-256 of the LUT file's bytes).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DitsUserError, errnoCode } from '../errors.js';
import { runGit } from '../git/exec.js';
import { readDitsConfig, type DitsConfig } from '../git/dits-config.js';
import type { ProxyCodec } from '../media/ffmpeg.js';
import type { MediaStructure } from '../media/media-structure.js';

export type { ProxyCodec };

export const PROXY_CODECS: readonly ProxyCodec[] = ['prores_proxy', 'dnxhr_lb', 'h264'];
export const DEFAULT_PROXY_CODEC: ProxyCodec = 'prores_proxy';
export const DEFAULT_PROXY_HEIGHT = 1080;
/** Heights accepted: from a thumbnail-sized proxy to 8K (4320 lines). */
export const MIN_PROXY_HEIGHT = 16;
export const MAX_PROXY_HEIGHT = 4320;
/** Largest LUT file read (a 65^3 .cube is ~7 MiB of text). */
const MAX_LUT_BYTES = 64 * 1024 * 1024;

export interface Recipe {
  codec: ProxyCodec;
  /** At most this many lines high (never upscaled). */
  height: number;
  /** `file` is absolute; `sha256` of its bytes. */
  lut?: { file: string; sha256: string };
  key: string;
}

/** The attributes read, in the order `git check-attr` is asked for them. */
const ATTRS = ['dits-proxy', 'dits-proxy-height', 'dits-lut'] as const;

/** The recipe key for these settings (see the file comment). */
export function recipeKey(codec: ProxyCodec, height: number, lutSha256?: string): string {
  return `${codec}/h${height}${lutSha256 !== undefined ? `/lut=${lutSha256.slice(0, 8)}` : ''}`;
}

/**
 * The recipe of each of `paths` (repo-relative, POSIX), from git config and the
 * .gitattributes of the work tree (one `git check-attr` for all of them). A path whose
 * attributes say `-dits-proxy` or `dits-proxy=none` gets no recipe (it is left out of the
 * map). Throws DitsUserError naming the setting and what to do when a value is wrong: an
 * unknown codec, a height that is not a whole number within 16..4320, a LUT that is
 * missing, unreadable, outside the work tree or not a .cube file.
 */
export async function resolveRecipes(workTree: string, paths: string[]): Promise<Map<string, Recipe>> {
  const config = await readDitsConfig(workTree);
  const defaults = defaultsFrom(config);
  const out = new Map<string, Recipe>();
  if (paths.length === 0) return out;
  const attrs = await readAttributes(workTree, paths);
  const luts = new Map<string, { file: string; sha256: string }>();
  for (const p of paths) {
    const a = attrs.get(p) ?? {};
    const codecAttr = a['dits-proxy'];
    if (codecAttr === 'unset' || codecAttr?.toLowerCase() === 'none') continue;
    const codec = codecAttr === undefined || codecAttr === 'set' ? defaults.codec : parseCodec(codecAttr, p);
    const heightAttr = a['dits-proxy-height'];
    const height = heightAttr === undefined ? defaults.height : parseHeightAttr(heightAttr, p);
    const lutAttr = a['dits-lut'];
    let lut: { file: string; sha256: string } | undefined;
    if (lutAttr !== undefined && lutAttr !== 'unset') {
      if (lutAttr === 'set') throw badAttribute(p, 'dits-lut', '(no value)', 'the path of a .cube file from the top of the repository, e.g. dits-lut=luts/slog3-to-709.cube');
      lut = luts.get(lutAttr) ?? readLut(workTree, lutAttr, p);
      luts.set(lutAttr, lut);
    }
    out.set(p, { codec, height, ...(lut ? { lut } : {}), key: recipeKey(codec, height, lut?.sha256) });
  }
  return out;
}

function defaultsFrom(config: DitsConfig): { codec: ProxyCodec; height: number } {
  return {
    codec: config.oneOf('dits.proxy.codec', PROXY_CODECS, DEFAULT_PROXY_CODEC),
    height: config.int('dits.proxy.height', DEFAULT_PROXY_HEIGHT, { min: MIN_PROXY_HEIGHT, max: MAX_PROXY_HEIGHT }),
  };
}

/** path -> attribute -> value ('set', 'unset' or the text); unspecified attributes are absent. */
async function readAttributes(workTree: string, paths: string[]): Promise<Map<string, Record<string, string>>> {
  const r = await runGit(['check-attr', '-z', '--stdin', ...ATTRS], { cwd: workTree, input: paths.join('\0') + '\0' });
  // -z output: <path> NUL <attribute> NUL <value> NUL, repeated
  const f = r.stdout.toString('utf8').split('\0');
  const out = new Map<string, Record<string, string>>();
  for (let i = 0; i + 2 < f.length; i += 3) {
    const value = f[i + 2]!;
    if (value === 'unspecified') continue;
    const rec = out.get(f[i]!) ?? {};
    rec[f[i + 1]!] = value;
    out.set(f[i]!, rec);
  }
  return out;
}

function badAttribute(p: string, attr: string, value: string, accepted: string): DitsUserError {
  return new DitsUserError('bad-attribute', `.gitattributes gives ${p} ${attr}=${value}, which is not valid`, {
    hint: `${attr} takes ${accepted}; fix the line of .gitattributes that matches ${p} (\`git check-attr ${attr} -- ${p}\` shows the value)`,
  });
}

function parseCodec(value: string, p: string): ProxyCodec {
  const hit = PROXY_CODECS.find((c) => c === value.trim().toLowerCase());
  if (hit === undefined) throw badAttribute(p, 'dits-proxy', value, `one of ${PROXY_CODECS.join(', ')} (or none)`);
  return hit;
}

function parseHeightAttr(value: string, p: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!(n >= MIN_PROXY_HEIGHT && n <= MAX_PROXY_HEIGHT)) {
    throw badAttribute(p, 'dits-proxy-height', value, `a whole number of lines from ${MIN_PROXY_HEIGHT} to ${MAX_PROXY_HEIGHT}, e.g. dits-proxy-height=720`);
  }
  return n;
}

/** Reads and checks the LUT named (repo-relative) by `p`'s dits-lut attribute. */
function readLut(workTree: string, name: string, p: string): { file: string; sha256: string } {
  const fix = `fix the dits-lut of ${p} in .gitattributes, or add the LUT (a .cube file) to the repository`;
  const file = path.resolve(workTree, name);
  const rel = path.relative(path.resolve(workTree), file);
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new DitsUserError('bad-lut', `the LUT ${name} of ${p} is outside the repository`, { hint: `name a .cube file inside the repository; ${fix}` });
  }
  if (path.extname(name).toLowerCase() !== '.cube') {
    throw new DitsUserError('bad-lut', `the LUT ${name} of ${p} is not a .cube file`, { hint: `Dits reads 3D LUTs in the .cube format; ${fix}` });
  }
  let bytes: Buffer;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
    if (st.size > MAX_LUT_BYTES) throw new DitsUserError('bad-lut', `the LUT ${name} of ${p} is ${st.size} bytes: too large for a .cube file`, { hint: fix });
    bytes = fs.readFileSync(file);
  } catch (err) {
    if (err instanceof DitsUserError) throw err;
    const code = errnoCode(err);
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'cannot be read (permission denied)' : code === 'EISDIR' ? 'is not a file' : `cannot be read (${code ?? String(err)})`;
    throw new DitsUserError('bad-lut', `the LUT ${name} of ${p} ${why}`, { hint: fix, cause: err });
  }
  if (bytes.subarray(0, 13).toString('latin1') === 'version dits/') {
    throw new DitsUserError('bad-lut', `the LUT ${name} of ${p} is not checked out (the file holds a Dits pointer)`, {
      hint: `get its content with \`git dits checkout -- ${name}\`, then run it again`,
    });
  }
  if (!/^\s*LUT_3D_SIZE\s+\d+/m.test(bytes.toString('latin1'))) {
    throw new DitsUserError('bad-lut', `the LUT ${name} of ${p} is not a 3D .cube LUT (it has no LUT_3D_SIZE line)`, { hint: fix });
  }
  return { file, sha256: crypto.createHash('sha256').update(bytes).digest('hex') };
}

/** Extensions of the containers a proxy is made for. */
const VIDEO_EXTENSIONS = new Set(['.mov', '.mp4', '.m4v', '.mxf', '.mkv']);

/**
 * Whether `p` should get variants: a file with a video container's extension (MOV/MP4 and
 * MXF/MKV, which Dits' parser does not read: ffprobe decides), or any file Dits' parser
 * found a video track in. A .mov that turns out audio-only or a still image is still a
 * candidate: making its variants records why there are none, once, instead of retrying.
 */
export function isVideoCandidate(p: string, media: MediaStructure | null): boolean {
  if (VIDEO_EXTENSIONS.has(path.extname(p).toLowerCase())) return true;
  return media !== null && media.tracks.some((t) => t.type === 'video');
}
