/**
 * Input validation: repository names, and a small strict validator for JSON bodies and
 * query strings (unknown fields are errors, so a typo in a client never silently does
 * something else). Pure; no DB or FS access.
 */

export class ValidationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ValidationError';
  }
}

// ---------------------------------------------------------------------------
// repository names

export const MAX_REPO_SEGMENT = 64;
/** Owners that would collide with the server's own top-level routes. */
export const RESERVED_OWNERS: ReadonlySet<string> = new Set(['api', 'health', 'info', 'admin']);
const SEGMENT = /^[a-z0-9][a-z0-9._-]*$/;

export type RepoNameResult = { ok: true; name: string; owner: string; repo: string } | { ok: false; reason: string };

/**
 * `owner/name`: two segments of lowercase letters, digits, `.`, `_`, `-`, each starting
 * with a letter or digit, at most 64 characters, no `..`, not ending in `.`, `.git`
 * or `.lock`. Lowercase only, so names never collide on case-insensitive file systems.
 */
export function checkRepoName(input: unknown): RepoNameResult {
  if (typeof input !== 'string') return { ok: false, reason: 'repository name must be a string' };
  const parts = input.split('/');
  if (parts.length !== 2) return { ok: false, reason: "repository name must be 'owner/name'" };
  for (const part of parts) {
    const why = checkSegment(part);
    if (why !== undefined) return { ok: false, reason: why };
  }
  const [owner, repo] = parts as [string, string];
  if (RESERVED_OWNERS.has(owner)) return { ok: false, reason: `'${owner}' is reserved and cannot be an owner` };
  return { ok: true, name: input, owner, repo };
}

function checkSegment(part: string): string | undefined {
  if (part.length === 0) return 'repository name has an empty segment';
  if (part.length > MAX_REPO_SEGMENT) return `each part of a repository name is at most ${MAX_REPO_SEGMENT} characters`;
  if (!SEGMENT.test(part)) {
    return 'repository names use lowercase letters, digits, ".", "_" and "-", and start with a letter or digit';
  }
  if (part.includes('..')) return "repository name contains '..'";
  if (part.endsWith('.') || part.endsWith('.git') || part.endsWith('.lock')) {
    return "repository name must not end in '.', '.git' or '.lock'";
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// strict shapes

/** A validator returns the typed value or throws ValidationError naming `where`. */
export type Check<T> = (value: unknown, where: string) => T;
type Optional<T> = Check<T | undefined> & { optional: true };

export function str(opts: { max?: number; min?: number } = {}): Check<string> {
  const max = opts.max ?? 4096;
  const min = opts.min ?? 0;
  return (v, where) => {
    if (typeof v !== 'string') throw new ValidationError(`${where} must be a string`);
    if (v.length < min) throw new ValidationError(`${where} must not be empty`);
    if (v.length > max) throw new ValidationError(`${where} is longer than ${max} characters`);
    return v;
  };
}

export function bool(): Check<boolean> {
  return (v, where) => {
    if (typeof v !== 'boolean') throw new ValidationError(`${where} must be true or false`);
    return v;
  };
}

export function int(opts: { min: number; max: number }): Check<number> {
  return (v, where) => {
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new ValidationError(`${where} must be an integer`);
    if (v < opts.min || v > opts.max) throw new ValidationError(`${where} must be between ${opts.min} and ${opts.max}`);
    return v;
  };
}

export function oneOf<const T extends string>(values: readonly T[]): Check<T> {
  return (v, where) => {
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
      throw new ValidationError(`${where} must be one of ${values.map((x) => `'${x}'`).join(', ')}`);
    }
    return v as T;
  };
}

export function optional<T>(check: Check<T>): Optional<T> {
  const f = ((v: unknown, where: string) => (v === undefined ? undefined : check(v, where))) as Optional<T>;
  f.optional = true;
  return f;
}

type Shape = Record<string, Check<unknown>>;
type OptionalKeys<S extends Shape> = { [K in keyof S]: S[K] extends { optional: true } ? K : never }[keyof S];
type RequiredKeys<S extends Shape> = Exclude<keyof S, OptionalKeys<S>>;
export type Infer<S extends Shape> = { [K in RequiredKeys<S>]: S[K] extends Check<infer T> ? T : never } & {
  [K in OptionalKeys<S>]?: S[K] extends Check<infer T> ? Exclude<T, undefined> : never;
};

/** A plain object with exactly the fields of `shape` (optional ones may be absent). */
export function obj<S extends Shape>(shape: S): Check<Infer<S>> {
  return (v, where) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ValidationError(`${where} must be a JSON object`);
    const input = v as Record<string, unknown>;
    for (const key of Object.keys(input)) {
      if (!Object.prototype.hasOwnProperty.call(shape, key)) {
        throw new ValidationError(`unknown field ${JSON.stringify(key)} in ${where}`);
      }
    }
    const out: Record<string, unknown> = {};
    for (const [key, check] of Object.entries(shape)) {
      const value = check(input[key], `${where}.${key}`);
      if (value !== undefined) out[key] = value;
    }
    return out as Infer<S>;
  };
}

/**
 * Query parameters: each allowed key at most once, unknown keys refused. Values stay
 * strings; `parse` converts them.
 */
export function parseQuery<K extends string>(url: string, allowed: readonly K[]): Partial<Record<K, string>> {
  const params = new URL(url).searchParams;
  const out: Partial<Record<K, string>> = {};
  for (const [key, value] of params) {
    if (!(allowed as readonly string[]).includes(key)) throw new ValidationError(`unknown query parameter ${JSON.stringify(key)}`);
    if (key in out) throw new ValidationError(`query parameter ${JSON.stringify(key)} given more than once`);
    out[key as K] = value;
  }
  return out;
}

export function parseIntParam(value: string | undefined, name: string, opts: { min: number; max: number }): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,15}$/.test(value)) throw new ValidationError(`${name} must be a non-negative integer`);
  const n = Number(value);
  if (n < opts.min || n > opts.max) throw new ValidationError(`${name} must be between ${opts.min} and ${opts.max}`);
  return n;
}
