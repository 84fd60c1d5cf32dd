#!/usr/bin/env node
// Builds the native FastCDC scanner (native/ -> native/build/Release/dits_chunker.node).
// Run at install time; it must never fail the install: when the build cannot be done
// (no compiler, no Python, no node-gyp, no headers) it prints one line and exits 0, and
// Dits uses the JavaScript chunker (same cut points, slower).
// Set DITS_BUILD_VERBOSE=1 to see node-gyp's output.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const verbose = process.env.DITS_BUILD_VERBOSE === '1';

function fallback(why) {
  console.log(`dits: native chunker not built (${why}); the JavaScript chunker will be used.`);
  process.exit(0);
}

try {
  // The project's own node-gyp (a devDependency), else the one npm runs install scripts with.
  const candidates = [join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'), process.env.npm_config_node_gyp];
  const gyp = candidates.find((p) => p !== undefined && p !== '' && existsSync(p));
  if (gyp === undefined) fallback('node-gyp not found');

  const args = [gyp, 'rebuild', '--directory', 'native'];
  // Use the headers that come with this Node when present, so nothing is downloaded.
  if (!process.env.npm_config_nodedir) {
    const prefix = join(dirname(process.execPath), '..');
    if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
  }
  const r = spawnSync(process.execPath, args, {
    cwd: root,
    stdio: verbose ? 'inherit' : ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (r.error) fallback(r.error.message);
  if (r.status !== 0) {
    const lastError = `${r.stderr ?? ''}`.split('\n').filter((l) => /error/i.test(l)).pop();
    fallback(lastError ? lastError.trim().slice(0, 160) : `node-gyp exited with ${r.status ?? r.signal}`);
  }
  if (!existsSync(join(root, 'native', 'build', 'Release', 'dits_chunker.node'))) fallback('no addon produced');
  if (verbose) console.log('dits: native chunker built.');
} catch (err) {
  fallback(err instanceof Error ? err.message : String(err));
}
