/**
 * What every route module shares: the Hono environment type, the dependencies routes
 * receive, HTTP errors, strict JSON body reading and repository access checks.
 *
 * Access rule (no existence oracle): a repository the caller cannot read answers
 * exactly like one that does not exist (404 'repository not found'); a repository the
 * caller can read but not change as asked answers 403.
 */
import type { Context, Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { AccessTracker } from './access-tracker.js';
import { getRepo, roleAllows, roleOn, type Repo, type Role } from './admin.js';
import type { Principal } from './auth.js';
import type { ServerDb } from './db.js';
import type { Logger } from './logger.js';
import type { StorageBackend } from './storage-backend.js';
import { checkRepoName, ValidationError, type Check } from './validate.js';

export type AppEnv = { Variables: { principal: Principal } };
export type AppContext = Context<AppEnv>;

/** What route modules receive: createApp's deps with defaults filled in. */
export interface RouteDeps {
  db: ServerDb;
  clock: () => Date;
  logger: Logger;
  /** Present when the caller tracks reads (the push/fetch routes record into it). */
  access?: AccessTracker;
  maxJsonBytes: number;
  /** Where repositories' content lives; repository create and delete check and delete it. */
  storage?: StorageBackend;
}

/** A feature router: mounted at '/', sees only authenticated requests. */
export type RouteModule = (deps: RouteDeps) => Hono<AppEnv>;

export class HttpError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    message: string,
    readonly code?: string,
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Answers with `{ message, code?, ...extra }` and the given status. */
export function errorBody(err: HttpError): Record<string, unknown> {
  return { message: err.message, ...(err.code === undefined ? {} : { code: err.code }), ...err.extra };
}

/**
 * Reads the body as JSON (an empty body is `{}`) and validates it with `check`.
 * Bodies over `limit` bytes answer 413 without being read to the end; malformed JSON
 * and shape errors answer 400.
 */
export async function readJson<T>(c: AppContext, check: Check<T>, limit: number): Promise<T> {
  const declared = c.req.header('content-length');
  if (declared !== undefined && Number(declared) > limit) {
    throw new HttpError(413, `request body is larger than ${limit} bytes`, 'body-too-large');
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (declared !== undefined && /^\d+$/.test(declared)) {
    // The HTTP parser never delivers more than the declared length, so the whole body
    // can be read at once (node-server's fast path: no web stream).
    const buf = new Uint8Array(await c.req.raw.arrayBuffer());
    chunks.push(buf);
    total = buf.byteLength;
  } else if (c.req.raw.body !== null) {
    const body = c.req.raw.body;
    const reader = body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limit) {
        await reader.cancel().catch(() => {});
        throw new HttpError(413, `request body is larger than ${limit} bytes`, 'body-too-large');
      }
      chunks.push(value);
    }
  }
  const text = Buffer.concat(chunks, total).toString('utf8');
  let value: unknown = {};
  if (text.trim().length > 0) {
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new HttpError(400, `malformed JSON in request body: ${(err as Error).message}`, 'malformed-json');
    }
  }
  try {
    return check(value, 'body');
  } catch (err) {
    if (err instanceof ValidationError) throw new HttpError(400, err.message, 'invalid-request');
    throw err;
  }
}

/** Runs a validation step, turning ValidationError into a 400. */
export function validated<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ValidationError) throw new HttpError(400, err.message, 'invalid-request');
    throw err;
  }
}

export interface RepoAccess {
  repo: Repo;
  role: Role;
  principal: Principal;
}

/**
 * The repository named by the `:owner/:repo` route parameters, if the caller holds at
 * least `need` on it. Invalid name: 400 (before any lookup). Unknown or unreadable:
 * 404. Readable but `need` not met: 403.
 */
export function requireRepoAccess(c: AppContext, db: ServerDb, need: Role): RepoAccess {
  const name = `${c.req.param('owner') ?? ''}/${c.req.param('repo') ?? ''}`;
  const checked = checkRepoName(name);
  if (!checked.ok) throw new HttpError(400, `invalid repository name: ${checked.reason}`, 'invalid-repo-name');
  const principal = c.get('principal');
  const repo = getRepo(db, checked.name);
  const role = repo === undefined ? undefined : roleOn(db, { id: principal.userId, isAdmin: principal.isAdmin }, repo.id);
  if (repo === undefined || role === undefined) throw new HttpError(404, 'repository not found', 'repo-not-found');
  if (!roleAllows(role, need)) {
    throw new HttpError(403, `this needs ${need} access to ${repo.name}; you have ${role}`, 'forbidden');
  }
  return { repo, role, principal };
}
