/**
 * The compiled file of a worker thread's entry module, for `new Worker(...)`: beside the
 * calling module when it runs compiled (dist/src/...), else the same path under dist/
 * (tests run the TypeScript sources, and a worker can only start compiled JavaScript).
 *
 * `from` is the caller's import.meta.url, `rel` the entry's path from the repository root's
 * src/ (e.g. 'store/piece-cutter-worker.js').
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export function workerScript(from: string, rel: string): URL {
  const beside = new URL(`./${path.basename(rel)}`, from);
  if (fs.existsSync(beside)) return beside;
  const srcDir = path.resolve(path.dirname(fileURLToPath(from)), path.relative(path.dirname(rel), '.'));
  const compiled = pathToFileURL(path.join(srcDir, '..', 'dist', 'src', rel));
  if (fs.existsSync(compiled)) return compiled;
  throw new Error(`the worker ${rel} is not built (${fileURLToPath(beside)}); run \`npm run build\``);
}
