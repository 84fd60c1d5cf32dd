// Runs only the transfer tests, without the repository's global build step (which
// compiles everything and fails while other folders are mid-change):
//   npx vitest run --config test/transfer/vitest.config.ts
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..'),
  test: {
    include: ['src/transfer/**/*.test.ts', 'test/transfer/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
