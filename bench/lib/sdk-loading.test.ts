import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

/**
 * The modules `from` loads at start: its static imports, followed (`import type` and
 * `export type` load nothing; dynamic `import()` is not followed), as paths from the
 * repository's root.
 */
function loadedAtStart(from: string): Set<string> {
  const seen = new Set<string>();
  const queue = [path.resolve(root, from)];
  while (queue.length > 0) {
    const file = queue.shift()!;
    const rel = path.relative(root, file);
    if (seen.has(rel) || !fs.existsSync(file)) continue;
    seen.add(rel);
    const src = fs.readFileSync(file, 'utf8');
    for (const m of src.matchAll(/^\s*(import|export)\s+(type\s+)?[^'";]*?from\s+'(\.[^']+)'/gm)) {
      if (m[2] !== undefined) continue;
      queue.push(path.resolve(path.dirname(file), m[3]!.replace(/\.js$/, '.ts')));
    }
    for (const m of src.matchAll(/^\s*import\s+'(\.[^']+)'/gm)) queue.push(path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts')));
  }
  return seen;
}

describe('the benchmark process', () => {
  it('does not load the S3 client (and the AWS SDK with it) at start: the counting proxy runs in it', () => {
    const loaded = loadedAtStart('bench/run.ts');
    expect(loaded.has('bench/lib/s3-loopback.ts')).toBe(true); // the walk follows the imports
    expect(loaded.has('bench/lib/tier-thaw.ts')).toBe(true);
    expect(loaded.has('src/transfer/s3-storage.ts')).toBe(false);
  });
});
