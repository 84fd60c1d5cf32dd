/**
 * Client of the server's lock API (git-lfs locking shape; see server/routes/locks.ts),
 * used by `git dits lock / unlock / locks` and by the pre-push check.
 *
 * Every failure is a DitsUserError with a stable code:
 *   lock-held (LockHeldError, with the lock), lock-not-found, auth-required, forbidden,
 *   repo-not-found, invalid-path, invalid-request, server-unreachable, server-error.
 */
import { DitsUserError } from '../errors.js';
import { checkLockPath } from './lock-path.js';

export interface Lock {
  id: string;
  path: string;
  /** ISO 8601. */
  locked_at: string;
  owner: { name: string };
}

export interface VerifyResult {
  ours: Lock[];
  theirs: Lock[];
}

export interface LockClientOptions {
  /** The repository on the server, e.g. `http://127.0.0.1:8080/team/film`. */
  repoUrl: string;
  /** The token, e.g. from `git credential fill`; asked once per client, when first needed. */
  token: () => string | undefined | Promise<string | undefined>;
  fetch?: typeof globalThis.fetch;
  /** Per request. */
  timeoutMs?: number;
  /** Page size for list and verify. */
  pageSize?: number;
}

/** The path is locked by someone else. */
export class LockHeldError extends DitsUserError {
  constructor(readonly lock: Lock) {
    super('lock-held', `${lock.path} is locked by ${lock.owner.name} since ${lock.locked_at}`, {
      hint: 'ask them to unlock it, or a repository admin to break the lock with --force',
    });
  }
}

interface ErrorBody {
  message?: string;
  code?: string;
  lock?: Lock;
}

export class LockClient {
  private readonly base: string;
  private readonly fetchImpl: typeof globalThis.fetch;
  private tokenPromise: Promise<string | undefined> | undefined;

  constructor(private readonly options: LockClientOptions) {
    this.base = options.repoUrl.replace(/\/+$/, '');
    this.fetchImpl = options.fetch ?? globalThis.fetch;
  }

  /** Locks `path` for the caller. Throws LockHeldError when someone holds it. */
  async lock(path: string, opts: { ref?: string } = {}): Promise<Lock> {
    const body = { path: clientPath(path), ...(opts.ref === undefined ? {} : { ref: { name: opts.ref } }) };
    const res = await this.request('POST', '/locks', body);
    if (res.status === 409) {
      const held = (await res.json().catch(() => ({}))) as ErrorBody;
      if (held.lock !== undefined) throw new LockHeldError(held.lock);
    }
    return ((await this.expectOk(res)) as { lock: Lock }).lock;
  }

  /**
   * Releases a lock, named by path or `{ id }`. Someone else's lock needs `force` and the
   * admin role on the repository.
   */
  async unlock(target: string | { id: string }, opts: { force?: boolean; ref?: string } = {}): Promise<Lock> {
    let id: string;
    if (typeof target === 'string') {
      const path = clientPath(target);
      const [found] = await this.list({ path });
      if (found === undefined) throw new DitsUserError('lock-not-found', `${path} is not locked`);
      id = found.id;
    } else id = target.id;
    const body = { force: opts.force === true, ...(opts.ref === undefined ? {} : { ref: { name: opts.ref } }) };
    const res = await this.request('POST', `/locks/${encodeURIComponent(id)}/unlock`, body);
    return ((await this.expectOk(res, 'lock')) as { lock: Lock }).lock;
  }

  /**
   * All locks (following cursors), or the one on `path`. `mine` lists the caller's own
   * through verify, which (as in git-lfs) needs write access; only writers hold locks.
   */
  async list(opts: { mine?: boolean; path?: string } = {}): Promise<Lock[]> {
    if (opts.mine) {
      const v = await this.verify();
      return opts.path === undefined ? v.ours : v.ours.filter((l) => l.path === clientPath(opts.path!));
    }
    const out: Lock[] = [];
    let cursor: string | undefined;
    do {
      const q = new URLSearchParams();
      if (opts.path !== undefined) q.set('path', clientPath(opts.path));
      if (cursor !== undefined) q.set('cursor', cursor);
      if (this.options.pageSize !== undefined) q.set('limit', String(this.options.pageSize));
      const qs = q.toString();
      const res = await this.request('GET', `/locks${qs === '' ? '' : `?${qs}`}`);
      const page = (await this.expectOk(res)) as { locks: Lock[]; next_cursor?: string };
      out.push(...page.locks);
      cursor = page.next_cursor;
    } while (cursor !== undefined);
    return out;
  }

  /** Every lock in the repository, split into the caller's and everyone else's. */
  async verify(opts: { ref?: string } = {}): Promise<VerifyResult> {
    const result: VerifyResult = { ours: [], theirs: [] };
    let cursor: string | undefined;
    do {
      const body = {
        ...(opts.ref === undefined ? {} : { ref: { name: opts.ref } }),
        ...(cursor === undefined ? {} : { cursor }),
        ...(this.options.pageSize === undefined ? {} : { limit: this.options.pageSize }),
      };
      const res = await this.request('POST', '/locks/verify', body);
      const page = (await this.expectOk(res)) as VerifyResult & { next_cursor?: string };
      result.ours.push(...page.ours);
      result.theirs.push(...page.theirs);
      cursor = page.next_cursor;
    } while (cursor !== undefined);
    return result;
  }

  private async request(method: string, path: string, body?: unknown): Promise<Response> {
    this.tokenPromise ??= Promise.resolve(this.options.token());
    const token = await this.tokenPromise;
    const headers: Record<string, string> = { accept: 'application/vnd.git-lfs+json' };
    if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/vnd.git-lfs+json';
    const url = this.base + path;
    try {
      return await this.fetchImpl(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000),
      });
    } catch (err) {
      throw new DitsUserError('server-unreachable', `cannot reach the Dits server at ${new URL(url).origin}: ${describe(err)}`, {
        hint: 'check the remote URL and that the server is running',
        cause: err,
      });
    }
  }

  private async expectOk(res: Response, notFound: 'repo' | 'lock' = 'repo'): Promise<unknown> {
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text.length === 0 ? {} : JSON.parse(text);
    } catch {
      throw new DitsUserError('server-error', `the server answered ${res.status} with something that is not JSON`);
    }
    if (res.ok) return parsed;
    const body = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as ErrorBody;
    const message = body.message ?? `HTTP ${res.status}`;
    switch (res.status) {
      case 401:
        throw new DitsUserError('auth-required', `the Dits server refused the credentials: ${message}`, {
          hint: 'create a token with `git dits server token create` and store it with `git credential approve`',
        });
      case 403:
        throw new DitsUserError('forbidden', message);
      case 404:
        if (notFound === 'lock' || body.code === 'lock-not-found') throw new DitsUserError('lock-not-found', message);
        throw new DitsUserError('repo-not-found', `repository not found at ${this.base} (or you have no access to it)`);
      case 400:
      case 413:
        throw new DitsUserError(body.code === 'invalid-path' ? 'invalid-path' : 'invalid-request', message);
      default:
        throw new DitsUserError('server-error', `the Dits server answered ${res.status}: ${message}`);
    }
  }
}

/**
 * The lock API's repository URL for a git remote URL: `dits::http://host/team/film`
 * (or the same without `dits::`, with a trailing `/` or `.git`) gives
 * `http://host/team/film`. Other remotes (s3://, file://) have no lock server:
 * DitsUserError 'locks-unsupported'.
 */
export function lockRepoUrl(remoteUrl: string): string {
  const bare = remoteUrl.startsWith('dits::') ? remoteUrl.slice('dits::'.length) : remoteUrl;
  let url: URL;
  try {
    url = new URL(bare);
  } catch {
    throw new DitsUserError('locks-unsupported', `locks need a Dits server remote; ${JSON.stringify(remoteUrl)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new DitsUserError('locks-unsupported', `locks need a Dits server (dits::https://...); ${url.protocol}// remotes have none`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new DitsUserError('invalid-remote', 'put credentials in a git credential helper, not in the remote URL');
  }
  url.search = '';
  url.hash = '';
  return url.toString().replace(/\/+$/, '').replace(/\.git$/, '');
}

function clientPath(path: string): string {
  const r = checkLockPath(path);
  if (!r.ok) throw new DitsUserError('invalid-path', `cannot lock ${JSON.stringify(path)}: ${r.reason}`);
  return r.path;
}

function describe(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code !== undefined) return cause.code;
  if (err instanceof Error && err.name === 'TimeoutError') return 'timed out';
  return err instanceof Error ? err.message : String(err);
}
