/**
 * The server's data directory: `server.sqlite` (with its WAL files) now; repository
 * content later. The CLI's admin commands open the same database with
 * `openDataDirDb` while the server runs (WAL allows it).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openServerDb, type OpenServerDbOptions, type ServerDb } from './db.js';

export const SERVER_DB_FILE = 'server.sqlite';

export function serverDbPath(dataDir: string): string {
  return join(dataDir, SERVER_DB_FILE);
}

/** Opens (creating the directory, owner-only, and the database if needed). */
export function openDataDirDb(dataDir: string, options: OpenServerDbOptions = {}): ServerDb {
  if (!options.readonly) mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  return openServerDb(serverDbPath(dataDir), options);
}
