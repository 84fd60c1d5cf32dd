// The benchmark's own unit tests (bench/ is outside the repository's test globs):
//   npx vitest run --config bench/lib/vitest.config.ts
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..'),
  test: {
    include: ['bench/**/*.test.ts'],
    testTimeout: 60_000,
    pool: 'forks',
  },
});
