/**
 * One style for error codes: every code Dits gives an error, answers over HTTP or prints
 * in JSON is kebab-case (ERROR_CODE_STYLE in errors.ts). This walks the source (src/,
 * server/, bench/, test/) for the places a code is written or compared, so a new code in
 * another style, or a comparison left behind with an old name, fails here.
 *
 * Codes that are not ours are compared too: Node's errno (ENOENT) and ERR_* codes,
 * SQLite's (SQLITE_BUSY) and S3's error names (NoSuchKey); those keep their own spelling.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CODE_STYLE, RENAMED_ERROR_CODES, currentErrorCode } from './errors.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FOREIGN = [/^E[A-Z0-9_]+$/, /^(UND_)?ERR_[A-Z0-9_]*$/, /^SQLITE_[A-Z_]*$/, /^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+$/];

interface Found {
  code: string;
  where: string;
  /** A code given to an error of ours (may not be foreign), or one compared or expected. */
  kind: 'given' | 'compared';
}

/** The top-level arguments of the call whose `(` is at `open`, as source text. */
function callArgs(src: string, open: number): string[] {
  const args: string[] = [];
  let depth = 0;
  let start = open + 1;
  for (let i = open; i < src.length; i++) {
    const ch = src[i];
    if (ch === "'" || ch === '"' || ch === '`') {
      // skip the string (template holes rarely hold quotes of the same kind)
      for (i++; i < src.length && src[i] !== ch; i++) if (src[i] === '\\') i++;
      continue;
    }
    if (ch === '(' || ch === '[' || ch === '{') depth++;
    else if (ch === ')' || ch === ']' || ch === '}') {
      depth--;
      if (depth === 0) {
        args.push(src.slice(start, i).trim());
        return args;
      }
    } else if (ch === ',' && depth === 1) {
      args.push(src.slice(start, i).trim());
      start = i + 1;
    }
  }
  return args;
}

const literals = (list: string): string[] => [...list.matchAll(/'([^'\\]*)'/g)].map((m) => m[1]);
/** The codes an argument can be: a literal, or the literals of `cond ? 'a' : 'b'`. */
const argCodes = (arg: string | undefined): string[] => (arg !== undefined && /^[^`(]*'$/.test(arg) ? literals(arg) : []);

/** Every error code written or compared in `src` (the text of file `name`). */
export function findErrorCodes(src: string, name: string): Found[] {
  const found: Found[] = [];
  const lineOf = (index: number): string => `${name}:${src.slice(0, index).split('\n').length}`;
  const add = (code: string, index: number, kind: Found['kind']): void => {
    found.push({ code, where: lineOf(index), kind });
  };
  // given: the first argument of our error classes, super(code, message) in their subclasses,
  // the third of the server's HttpError(status, message, code), code fields and properties
  for (const m of src.matchAll(/new (DitsUserError|StorageError|TransferError|HttpError)\(/g)) {
    const args = callArgs(src, m.index + m[0].length - 1);
    for (const code of argCodes(m[1] === 'HttpError' ? args[2] : args[0])) add(code, m.index, 'given');
  }
  for (const m of src.matchAll(/\bsuper\(\s*'([^']*)'\s*,/g)) add(m[1], m.index, 'given');
  for (const m of src.matchAll(/\bcode\s*=\s*'([^']*)'/g)) add(m[1], m.index, 'given');
  for (const m of src.matchAll(/\bcode\??\s*:\s*'([^']*)'/g)) add(m[1], m.index, 'compared'); // also mocks of Node's and S3's errors
  // compared: ===/!==, startsWith, lists and sets of codes, switch cases, test expectations
  for (const m of src.matchAll(/\bcode\)?\s*[!=]==?\s*'([^']*)'/g)) add(m[1], m.index, 'compared');
  for (const m of src.matchAll(/'([^']*)'\s*[!=]==?\s*[\w.?()]*\bcode\b/g)) add(m[1], m.index, 'compared');
  for (const m of src.matchAll(/\bcode\)?\??\.startsWith\(\s*'([^']*)'/g)) add(m[1].replace(/-$/, ''), m.index, 'compared');
  for (const m of src.matchAll(/\[([^\]]*)\]\.includes\([\w.?]*\bcode\)/g)) for (const c of literals(m[1])) add(c, m.index, 'compared');
  for (const m of src.matchAll(/[A-Z_]*CODES\b[^=\n]*=\s*new Set\(\[([^\]]*)\]/g)) for (const c of literals(m[1])) add(c, m.index, 'compared');
  for (const m of src.matchAll(/\b[A-Z_]*(?:CODES?|STATUS)\b\s*:\s*Record<string[^=\n]*=\s*\{([^}]*)\}/g)) {
    for (const k of m[1].matchAll(/'([^']*)'\s*:/g)) add(k[1], m.index, 'compared'); // a table keyed by code
  }
  for (const m of src.matchAll(/\bcode\)\.toBe\(\s*'([^']*)'/g)) add(m[1], m.index, 'compared');
  for (const m of src.matchAll(/\bexpectCode\([^;]*?,\s*'([^']*)'\)/g)) add(m[1], m.index, 'compared');
  for (const m of src.matchAll(/\bswitch \(([^)]*\bcode)\)\s*\{/g)) {
    let depth = 0;
    let end = m.index + m[0].length - 1;
    for (; end < src.length; end++) {
      if (src[end] === '{') depth++;
      else if (src[end] === '}' && --depth === 0) break;
    }
    const body = src.slice(m.index, end);
    for (const c of body.matchAll(/\bcase '([^']*)':/g)) add(c[1], m.index + c.index, 'compared');
  }
  return found;
}

/** Why `f` breaks the style, or null. */
function offence(f: Found): string | null {
  if (ERROR_CODE_STYLE.test(f.code)) return null;
  if (f.kind === 'compared' && FOREIGN.some((re) => re.test(f.code))) return null;
  const renamed = currentErrorCode(f.code);
  return `${f.where}: '${f.code}' is not kebab-case${renamed !== f.code ? ` (it is '${renamed}' now)` : ''}`;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name === 'dist' || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

describe('error codes', () => {
  it('are kebab-case everywhere in the source', () => {
    const all: Found[] = [];
    for (const top of ['src', 'server', 'bench', 'test']) {
      if (!fs.existsSync(path.join(ROOT, top))) continue;
      for (const file of sourceFiles(path.join(ROOT, top))) {
        if (file === fileURLToPath(import.meta.url)) continue; // its own examples below
        all.push(...findErrorCodes(fs.readFileSync(file, 'utf8'), path.relative(ROOT, file)));
      }
    }
    expect(all.map(offence).filter((o) => o !== null)).toEqual([]);
    // the walk does see the codes: given by each kind of place, and many of them
    const given = new Set(all.filter((f) => f.kind === 'given').map((f) => f.code));
    for (const code of ['bad-usage', 'storage-not-found', 'transfer-failed', 'object-not-found', 'manifest-corrupt', 'chunk-missing', 'lock-held']) {
      expect(given, code).toContain(code);
    }
    expect(given.size).toBeGreaterThan(90);
    const compared = new Set(all.filter((f) => f.kind === 'compared').map((f) => f.code));
    for (const code of ['lock-dirty', 'storage-not-found', 'ENOENT', 'SQLITE_FULL', 'storage-bad-range', 'grant-not-found']) expect(compared, code).toContain(code);
  });

  it('the walk finds a code in each kind of place, and flags the old styles', () => {
    const src = [
      "throw new StorageError('S3_ERROR', `a, b (${x})`, { key });",
      "throw new HttpError(400, 'bad, really', 'STORAGE_BAD_KEY');",
      "class E extends DitsUserError { constructor() { super('Chunk_Missing', 'm'); } }",
      "class F extends Error { readonly code = 'pkt_line'; }",
      "if ((err as { code?: string }).code === 'STORAGE_NOT_FOUND') return;",
      "if (['lock-not-found', 'BAD'].includes(e.code)) return;",
      'switch (err.code) {\n  case \'ENOENT\':\n  case \'TRANSFER_FAILED\':\n    break;\n}',
      "if (e.code === 'ENOENT' || e.code === 'NoSuchKey' || e.code.startsWith('SQLITE_BUSY')) return;",
      "throw new DitsUserError('bad-usage', 'fine');",
      "return new StorageError(retryable ? 'server-error' : 'SERVER_REFUSED', `m`);",
      "const USER_ERROR_STATUS: Record<string, number> = {\n  'repo-exists': 409,\n  'NOT_FOUND': 404,\n};",
    ].join('\n');
    const offences = findErrorCodes(src, 'x.ts').map(offence).filter((o) => o !== null);
    expect(offences.sort()).toEqual(
      [
        "x.ts:1: 'S3_ERROR' is not kebab-case (it is 's3-error' now)",
        "x.ts:2: 'STORAGE_BAD_KEY' is not kebab-case (it is 'storage-bad-key' now)",
        "x.ts:3: 'Chunk_Missing' is not kebab-case",
        "x.ts:4: 'pkt_line' is not kebab-case",
        "x.ts:5: 'STORAGE_NOT_FOUND' is not kebab-case (it is 'storage-not-found' now)",
        "x.ts:6: 'BAD' is not kebab-case",
        "x.ts:9: 'TRANSFER_FAILED' is not kebab-case (it is 'transfer-failed' now)",
        "x.ts:14: 'SERVER_REFUSED' is not kebab-case (it is 'server-refused' now)",
        "x.ts:15: 'NOT_FOUND' is not kebab-case",
      ].sort(),
    );
  });

  it('old names map to current kebab-case ones', () => {
    for (const [old, now] of Object.entries(RENAMED_ERROR_CODES)) {
      expect(ERROR_CODE_STYLE.test(now), now).toBe(true);
      expect(currentErrorCode(old)).toBe(now);
    }
    expect(currentErrorCode('bad-usage')).toBe('bad-usage');
    expect(currentErrorCode(undefined)).toBeUndefined();
    expect(currentErrorCode('toString')).toBe('toString');
  });
});
