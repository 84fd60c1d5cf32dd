/**
 * The local variants index (table `variants`, made on first use): which proxies, posters,
 * sprites and previews exist for each original file version, keyed by the original's file
 * id and the recipe. Reverse lookup by a variant's own file id lets the clean filter know a
 * proxy's bytes for what they are, and a push refuse a proxy standing in for its original.
 *
 * Making the table marks the store format 3 (store-db.ts): a Dits that does not know
 * variants would take their content for unreachable and its gc would drop it.
 * ChunkStore is the facade.
 */
import { parseVariantRecord, type VariantKind, type VariantRecord } from '../manifest/variant-record.js';
import { ensureTables, type StoreDb } from './store-db.js';

interface Row {
  original: string;
  kind: string;
  recipe: string;
  status: string;
  file_id: string | null;
  manifest: string | null;
  body: string;
}

function fromRow(row: Row): VariantRecord | null {
  try {
    return parseVariantRecord(JSON.parse(row.body));
  } catch {
    return null;
  }
}

export class VariantIndex {
  private ready = false;
  constructor(private readonly db: StoreDb) {}

  private ensure(write: boolean): boolean {
    if (this.ready) return true;
    if (!write) {
      const exists = this.db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'variants'`).get();
      if (!exists) return false;
    }
    ensureTables(this.db, 'variants');
    this.ready = true;
    return true;
  }

  /** Adds or replaces the record of (original, kind, recipe). */
  put(rec: VariantRecord): void {
    this.ensure(true);
    this.db
      .prepare('INSERT OR REPLACE INTO variants(original, kind, recipe, status, file_id, manifest, body, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(rec.original, rec.kind, rec.recipe, rec.status, rec.fileId ?? null, rec.manifest ?? null, JSON.stringify(rec), rec.createdAt);
  }

  /** Every record of an original, newest first. */
  of(original: string, kind?: VariantKind): VariantRecord[] {
    if (!this.ensure(false)) return [];
    const rows = (
      kind === undefined
        ? this.db.prepare('SELECT * FROM variants WHERE original = ? ORDER BY at DESC').all(original)
        : this.db.prepare('SELECT * FROM variants WHERE original = ? AND kind = ? ORDER BY at DESC').all(original, kind)
    ) as Row[];
    return rows.map(fromRow).filter((r): r is VariantRecord => r !== null);
  }

  /** The ok record whose variant file is `fileId` (a proxy's bytes seen in the working tree). */
  byFileId(fileId: string): VariantRecord | undefined {
    if (!this.ensure(false)) return undefined;
    const row = this.db.prepare(`SELECT * FROM variants WHERE file_id = ? AND status = 'ok' LIMIT 1`).get(fileId) as Row | undefined;
    return row ? (fromRow(row) ?? undefined) : undefined;
  }

  /** Whether any variant is recorded at all (skips lookups in stores that have none). */
  any(): boolean {
    if (!this.ensure(false)) return false;
    return this.db.prepare('SELECT EXISTS(SELECT 1 FROM variants)').pluck().get() === 1;
  }

  *all(): Generator<VariantRecord> {
    if (!this.ensure(false)) return;
    for (const row of this.db.prepare('SELECT * FROM variants ORDER BY original, kind, recipe').iterate() as IterableIterator<Row>) {
      const r = fromRow(row);
      if (r) yield r;
    }
  }

  delete(original: string, kind: VariantKind, recipe: string): void {
    if (!this.ensure(false)) return;
    this.db.prepare('DELETE FROM variants WHERE original = ? AND kind = ? AND recipe = ?').run(original, kind, recipe);
  }
}
