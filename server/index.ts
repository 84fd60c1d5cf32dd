/**
 * What the CLI uses from the server, in one place. `git dits serve` calls
 * `startServer`; `git dits server user|token|repo|status` open the data dir's database
 * with `openDataDirDb` and call the admin functions (the server may be running).
 */
export { startServer, DEFAULT_HOST, type RunningServer, type StartServerOptions } from './main.js';
export { openDataDirDb, serverDbPath, SERVER_DB_FILE } from './data-dir.js';
export { openServerDb, type ServerDb } from './db.js';
export { createApp, type AppDeps } from './app.js';
export { createJsonLogger, silentLogger, type Logger } from './logger.js';
export type { RouteDeps, RouteModule } from './http.js';
export { thawRoutes, thawBudget, setThawBudget, type ThawRoutesOptions } from './routes/thaw.js';
export { storageRoutes, createStorageTransferStats, type StorageTransferStats, type StorageRoutesOptions } from './routes/storage.js';
export { measureRepoSizes, readManifestFileSize, recordStorageLocation, recordedStorageLocation, type RepoSize, type MeasureOptions } from './repo-sizes.js';
export { createRepoChecked, deleteRepoAndContent, type RepoDeletion } from './repo-content.js';
export { createStorageBackend, s3OptionsFromEnv, MAX_PRESIGNED_PUT_BYTES, DEFAULT_PRESIGN_EXPIRES_SECONDS, type StorageBackend, type StorageBackendOptions } from './storage-backend.js';
export {
  addUser,
  getUser,
  listUsers,
  removeUser,
  setSiteAdmin,
  createToken,
  revokeToken,
  listTokens,
  createRepo,
  getRepo,
  listRepos,
  deleteRepo,
  grant,
  revokeGrant,
  listAudit,
  serverStatus,
  ROLES,
  type Role,
  type User,
  type TokenInfo,
  type Repo,
  type RepoSummary,
  type AuditEntry,
  type ServerStatus,
} from './admin.js';
export { JobQueue, JOB_STATES, type Job, type JobState, type JobKind, type Lease, type WorkerInfo, type JobQueueOptions } from './jobs/queue.js';
export { runWorker, type WorkerOptions } from './jobs/worker.js';
export { jobHandlers, type JobHandler, type JobContext } from './jobs/handlers.js';
