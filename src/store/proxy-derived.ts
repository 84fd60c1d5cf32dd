/**
 * Content derived from a proxy (table `proxy_derived`, made on first use): the bytes found
 * at a path that showed a proxy in place of its original (`git dits checkout --mode proxy`)
 * and were edited there. The clean filter stores such bytes like any file, and records
 * them here by their file id, so that the pre-commit hook refuses to commit them and a push
 * refuses to send them (src/proxy/proxy-guard.ts): an original is never replaced by its
 * proxy, nor by an edit of it, in any commit or push. ChunkStore is the facade.
 *
 * A Dits without this table ignores it: its rows only ever refuse, they never keep content.
 */
import { ensureTables, type StoreDb } from './store-db.js';

export interface ProxyDerivedRecord {
  /** The edited bytes' file id, and their manifest. */
  fileId: string;
  manifest: string;
  /** The proxy shown at the path, and the original it stood for. */
  proxy: string;
  original: string;
  /** Where it was seen (for messages). */
  path: string;
  at: number;
}

interface Row {
  file_id: string;
  manifest: string;
  proxy: string;
  original: string;
  path: string;
  at: number;
}

const toRecord = (r: Row): ProxyDerivedRecord => ({ fileId: r.file_id, manifest: r.manifest, proxy: r.proxy, original: r.original, path: r.path, at: r.at });

export class ProxyDerived {
  private ready = false;
  constructor(private readonly db: StoreDb) {}

  private ensure(write: boolean): boolean {
    if (this.ready) return true;
    if (!write) {
      const exists = this.db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'proxy_derived'`).get();
      if (!exists) return false;
    }
    ensureTables(this.db, 'proxy-derived');
    this.ready = true;
    return true;
  }

  put(rec: ProxyDerivedRecord): void {
    this.ensure(true);
    this.db
      .prepare('INSERT OR REPLACE INTO proxy_derived(file_id, manifest, proxy, original, path, at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(rec.fileId, rec.manifest, rec.proxy, rec.original, rec.path, rec.at);
  }

  byFileId(fileId: string): ProxyDerivedRecord | undefined {
    if (!this.ensure(false)) return undefined;
    const row = this.db.prepare('SELECT * FROM proxy_derived WHERE file_id = ?').get(fileId) as Row | undefined;
    return row ? toRecord(row) : undefined;
  }

  byManifest(manifest: string): ProxyDerivedRecord | undefined {
    if (!this.ensure(false)) return undefined;
    const row = this.db.prepare('SELECT * FROM proxy_derived WHERE manifest = ? LIMIT 1').get(manifest) as Row | undefined;
    return row ? toRecord(row) : undefined;
  }

  /** Forgets a mark (the user kept the edited file as a version of its own). */
  delete(fileId: string): void {
    if (!this.ensure(false)) return;
    this.db.prepare('DELETE FROM proxy_derived WHERE file_id = ?').run(fileId);
  }

  any(): boolean {
    if (!this.ensure(false)) return false;
    return this.db.prepare('SELECT EXISTS(SELECT 1 FROM proxy_derived)').pluck().get() === 1;
  }
}
