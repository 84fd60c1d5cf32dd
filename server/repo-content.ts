/**
 * Creating and deleting a repository together with its stored content, for the HTTP
 * routes and `git dits server repo create|delete`.
 *
 * A repository's content (git data, packs, manifests, refs) lives in the storage back
 * end under its name, not in the database. Deleting only the records left that content
 * in place, and a later repository of the same name served it to whoever was granted
 * read on the new one. So:
 *
 * - `deleteRepoAndContent` deletes the records first (access stops at once), then the
 *   content. Interrupted or failed midway, it can be re-run: a name with no record but
 *   content left is deleted again. `keepContent` deletes the records only, and says so.
 * - `createRepoChecked` refuses a name that still has content unless `adoptExisting`
 *   (serve that content as the new repository's: a repository deleted with
 *   `keepContent`, or a data dir restored without its database).
 */
import { DitsUserError } from '../src/errors.js';
import { createRepo, deleteRepo, getRepo, parseRepoName, recordAudit, type AdminOptions, type Repo } from './admin.js';
import type { ServerDb } from './db.js';
import type { StorageBackend } from './storage-backend.js';

export interface RepoDeletion {
  name: string;
  /** Whether the database had a record of it (false: only leftover content was deleted). */
  hadRecord: boolean;
  /** Objects deleted from the storage; null when the content was kept. */
  deletedObjects: number | null;
}

export async function deleteRepoAndContent(
  db: ServerDb,
  backend: StorageBackend,
  name: string,
  opts: AdminOptions & { keepContent?: boolean } = {},
): Promise<RepoDeletion> {
  const valid = parseRepoName(name);
  const actor = opts.actor ?? 'admin';
  const hadRecord = getRepo(db, valid) !== undefined;
  if (opts.keepContent === true) {
    deleteRepo(db, valid, opts); // throws repo-not-found without a record
    return { name: valid, hadRecord, deletedObjects: null };
  }
  // read the storage before deleting anything: a wrong or unreachable storage must not
  // leave the records gone and the content in place
  let stored: number;
  try {
    stored = await backend.countContent(valid);
  } catch (err) {
    throw new DitsUserError('repo-storage-unreachable', `cannot list the content of '${valid}' in ${backend.location}: ${(err as Error).message}; nothing was deleted`, {
      hint: 'check the storage (--storage, the S3 settings in the environment), then re-run',
      cause: err,
    });
  }
  if (!hadRecord && stored === 0) {
    throw new DitsUserError('repo-not-found', `no repository named '${valid}', and no content stored under that name`);
  }
  if (hadRecord) deleteRepo(db, valid, opts);
  let deletedObjects: number;
  try {
    deletedObjects = await backend.deleteContent(valid);
  } catch (err) {
    throw new DitsUserError('repo-content-delete-failed', `deleted the records of '${valid}' but not all of its content in ${backend.location}: ${(err as Error).message}`, {
      hint: `fix that, then re-run \`git dits server repo delete ${valid}\` to delete the rest`,
      cause: err,
    });
  }
  recordAudit(db, { at: (opts.clock ?? (() => new Date()))().toISOString(), actor, action: 'repo.delete-content', repo: valid, detail: `${deletedObjects} object(s)` });
  return { name: valid, hadRecord, deletedObjects };
}

export async function createRepoChecked(
  db: ServerDb,
  backend: StorageBackend,
  name: string,
  opts: AdminOptions & { adoptExisting?: boolean } = {},
): Promise<Repo & { adoptedObjects: number }> {
  const valid = parseRepoName(name);
  if (getRepo(db, valid) !== undefined) throw new DitsUserError('repo-exists', `repository '${valid}' already exists`);
  const left = await backend.countContent(valid);
  if (left > 0 && opts.adoptExisting !== true) {
    throw new DitsUserError('repo-content-exists', `'${valid}' still has ${left} stored object(s) in ${backend.location}, left by an earlier repository of that name`, {
      hint: `delete that content with \`git dits server repo delete ${valid}\`, or serve it as the new repository's with \`git dits server repo create ${valid} --adopt-existing\``,
    });
  }
  const repo = createRepo(db, valid, opts);
  if (left > 0) {
    recordAudit(db, { at: repo.createdAt, actor: opts.actor ?? 'admin', action: 'repo.adopt-content', repo: valid, detail: `${left} object(s)` });
  }
  return { ...repo, adoptedObjects: left };
}
