/**
 * Repository administration over HTTP (the CLI does the same directly on the database
 * through admin.ts):
 *
 *   GET    /api/user                          -> {user: {name, is_admin}}
 *   GET    /api/repos                         -> {repos: [{name, created_at, locks, role}]}  (those you can read)
 *   POST   /api/repos  {name}                 -> 201 {repo}    site admins only
 *   GET    /api/repos/:owner/:repo            -> {repo}        read
 *   DELETE /api/repos/:owner/:repo            -> {deleted}     site admin or repository admin
 *   GET    /api/repos/:owner/:repo/audit?limit= -> {entries}   repository admin
 *   GET    /api/status                        -> serverStatus() site admins only
 */
import { Hono } from 'hono';
import { createRepo, deleteRepo, listAudit, listRepos, serverStatus } from '../admin.js';
import { HttpError, readJson, requireRepoAccess, validated, type AppEnv, type RouteDeps } from '../http.js';
import { obj, parseIntParam, parseQuery, str } from '../validate.js';

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
    const body = await readJson(c, obj({ name: str({ max: 200 }) }), deps.maxJsonBytes);
    const repo = createRepo(db, body.name, { clock, actor: p.name });
    return c.json({ repo: { name: repo.name, created_at: repo.createdAt } }, 201);
  });

  app.get('/api/repos/:owner/:repo', (c) => {
    const { repo, role } = requireRepoAccess(c, db, 'read');
    const locks = (db.stmt('SELECT COUNT(*) AS n FROM locks WHERE repo_id = ?').get(repo.id) as { n: number }).n;
    return c.json({ repo: { name: repo.name, created_at: repo.createdAt, locks, role } });
  });

  app.delete('/api/repos/:owner/:repo', (c) => {
    const { repo, principal } = requireRepoAccess(c, db, 'admin');
    deleteRepo(db, repo.name, { clock, actor: principal.name });
    return c.json({ deleted: repo.name });
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
