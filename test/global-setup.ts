import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The end-to-end tests run bin/git-dits, which runs the compiled code: compile first.
 * tsc still writes JavaScript when there are type errors; those fail `npm run build`
 * (run by `npm test` before vitest), so here they are only reported.
 */
export default function setup(): void {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const r = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json')], { encoding: 'utf8' });
  if (r.status !== 0) process.stderr.write(`warning: tsc reported errors (the compiled code may be stale):\n${r.stdout}${r.stderr}`);
}
