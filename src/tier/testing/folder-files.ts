/**
 * Test helper: the files under a folder (relative paths, sorted), leaving out the
 * `.dits-*` bookkeeping of folder storages (temp files, restored copies). For counting
 * what a tier move left where.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';

export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.name.startsWith('.dits-')) continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}
