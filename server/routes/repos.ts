/**
 * Repository administration over HTTP (the CLI does the same directly on the database
 * through admin.ts):
 *
 *   GET    /api/user                          -> {user: {name, is_admin}}
 *   GET    /api/repos                         -> {repos: [{name, created_at, locks, role}]}  (those you can read)
 *   POST   /api/repos  {name, adopt_existing?} -> 201 {repo}   site admins only; 409 repo-content-exists
 *                                            when content is stored under the name (left by a deleted
 *                                            repository) unless adopt_existing: true
 *   GET    /api/repos/:owner/:repo            -> {repo}        read
 *   DELETE /api/repos/:owner/:repo[?keep_content=1] -> {deleted, deleted_objects}
 *                                            site admin or repository admin; deletes the records and
 *                                            the stored content (keep_content: the records only). A
 *                                            site admin may delete content left under a name with no
 *                                            repository.
 *   GET    /api/repos/:owner/:repo/audit?limit= -> {entries}   repository admin
 *   GET    /api/status                        -> serverStatus() site admins only
 */
import { Hono } from 'hono';
import { createRepo, deleteRepo, getRepo, listAudit, listRepos, serverStatus } from '../admin.js';
import { HttpError, readJson, requireRepoAccess, validated, type AppEnv, type RouteDeps } from '../http.js';
import { createRepoChecked, deleteRepoAndContent } from '../repo-content.js';
import { bool, checkRepoName, obj, oneOf, optional, parseIntParam, parseQuery, str } from '../validate.js';

export function repoRoutes(deps: RouteDeps): Hono<AppEnv> {
  const { db, clock } = deps;
  const app = new Hono<AppEnv>();

  app.get('/api/user', (c) => {
    const p = c.get('principal');
    return c.json({ user: { name: p.name, is_admin: p.isAdmin } });
  });

  app.get('/api/status', (c) => {
    if (!c.get('principal').isAdmin) throw new HttpError(403, 'only site admins can see server status', 'forbidden');
    validated(() => parseQuery(c.req.url, []));
    return c.json(serverStatus(db));
  });

  app.get('/api/repos', (c) => {
    validated(() => parseQuery(c.req.url, []));
    const repos = listRepos(db, { forUser: c.get('principal').name });
    return c.json({ repos: repos.map((r) => ({ name: r.name, created_at: r.createdAt, locks: r.locks, role: r.role })) });
  });

  app.post('/api/repos', async (c) => {
    const p = c.get('principal');
    if (!p.isAdmin) throw new HttpError(403, 'only site admins can create repositories', 'forbidden');
    const body = await readJson(c, obj({ name: str({ max: 200 }), adopt_existing: optional(bool()) }), deps.maxJsonBytes);
    const opts = { clock, actor: p.name, adoptExisting: body.adopt_existing === true };
    // without a storage back end this app serves no content, so there is none to find
    const repo = deps.storage === undefined ? createRepo(db, body.name, opts) : await createRepoChecked(db, deps.storage, body.name, opts);
    return c.json({ repo: { name: repo.name, created_at: repo.createdAt } }, 201);
  });

  app.get('/api/repos/:owner/:repo', (c) => {
    const { repo, role } = requireRepoAccess(c, db, 'read');
    const locks = (db.stmt('SELECT COUNT(*) AS n FROM locks WHERE repo_id = ?').get(repo.id) as { n: number }).n;
    return c.json({ repo: { name: repo.name, created_at: repo.createdAt, locks, role } });
  });

  app.delete('/api/repos/:owner/:repo', async (c) => {
    const q = validated(() => parseQuery(c.req.url, ['keep_content'] as const));
    const flag = q.keep_content === undefined ? undefined : validated(() => oneOf(['0', '1', 'true', 'false'] as const)(q.keep_content, 'keep_content'));
    const keepContent = flag === '1' || flag === 'true';
    const principal = c.get('principal');
    const name = `${c.req.param('owner')}/${c.req.param('repo')}`;
    // a site admin may also delete content left under a name that has no repository
    const leftover = principal.isAdmin && checkRepoName(name).ok && getRepo(db, name) === undefined;
    if (!leftover) requireRepoAccess(c, db, 'admin');
    if (deps.storage === undefined) {
      if (!keepContent) {
        throw new HttpError(409, 'this server was started without its storage, so it cannot delete the repository\'s content; pass keep_content=1 to delete only its records', 'content-unknown');
      }
      deleteRepo(db, name, { clock, actor: principal.name });
      return c.json({ deleted: name, deleted_objects: null });
    }
    const done = await deleteRepoAndContent(db, deps.storage, name, { clock, actor: principal.name, keepContent });
    return c.json({ deleted: done.name, deleted_objects: done.deletedObjects });
  });

  app.get('/api/repos/:owner/:repo/audit', (c) => {
    const { repo } = requireRepoAccess(c, db, 'admin');
    const q = validated(() => parseQuery(c.req.url, ['limit'] as const));
    const limit = validated(() => parseIntParam(q.limit, 'limit', { min: 1, max: 1000 })) ?? 100;
    const entries = listAudit(db, { repo: repo.name, limit }).map((e) => ({
      id: e.id,
      at: e.at,
      actor: e.actor,
      action: e.action,
      path: e.path,
      lock_id: e.lockId,
      detail: e.detail,
    }));
    return c.json({ entries });
  });

  return app;
}
