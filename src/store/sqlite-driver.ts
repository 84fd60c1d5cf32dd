/**
 * better-sqlite3 for the store, loaded once. Its native binding is named directly when it
 * is where npm builds it: the package's own finder (the `bindings` module) loads two more
 * modules and probes a dozen paths on every start. Anywhere else, the finder looks.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

const require = createRequire(import.meta.url);

export interface SqliteDriver {
  Database: typeof BetterSqlite3;
  /** Options every store database is opened with (the binding, when found). */
  options: BetterSqlite3.Options;
}

let driver: SqliteDriver | undefined;

export function sqliteDriver(): SqliteDriver {
  if (!driver) {
    const main = require.resolve('better-sqlite3'); // <package>/lib/index.js
    const Database = require(main) as typeof BetterSqlite3;
    const binding = path.join(path.dirname(main), '..', 'build', 'Release', 'better_sqlite3.node');
    driver = { Database, options: fs.existsSync(binding) ? { nativeBinding: binding } : {} };
  }
  return driver;
}
