#!/usr/bin/env node
// Builds the native FastCDC scanner (native/ -> native/build/Release/dits_chunker.node).
// Run at install time; it must never fail the install: when the build cannot be done
// (no compiler, no Python, no node-gyp, no headers) it prints one line and exits 0, and
// Dits uses the JavaScript chunker (same cut points, slower).
// BLAKE3: on x86-64 Linux with Debian's librust-blake3-dev installed (scripts/setup.sh
// installs it), the addon is built with the BLAKE3 team's C library and its assembly from
// those sources (DITS_BLAKE3_C=<dir> names another copy); otherwise, or when that build
// fails, with Dits' own implementation (native/b3.c).
// Set DITS_BUILD_VERBOSE=1 to see node-gyp's output.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const verbose = process.env.DITS_BUILD_VERBOSE === '1';

/** The BLAKE3 C sources to build with, or null. */
function blake3Sources() {
  const usable = (dir) => ['blake3.c', 'blake3_dispatch.c', 'blake3_avx2_x86-64_unix.S'].every((f) => existsSync(join(dir, f)));
  if (process.env.DITS_BLAKE3_C) return usable(process.env.DITS_BLAKE3_C) ? process.env.DITS_BLAKE3_C : null;
  if (process.platform !== 'linux' || process.arch !== 'x64') return null;
  const registry = '/usr/share/cargo/registry';
  let names = [];
  try {
    names = readdirSync(registry).filter((n) => /^blake3-\d+\.\d+\.\d+$/.test(n));
  } catch {
    return null;
  }
  // the newest version first
  const version = (n) => n.slice(7).split('.').map(Number);
  names.sort((a, b) => {
    const [x, y] = [version(a), version(b)];
    return y[0] - x[0] || y[1] - x[1] || y[2] - x[2];
  });
  for (const n of names) if (usable(join(registry, n, 'c'))) return join(registry, n, 'c');
  return null;
}

class Skipped extends Error {}

function fallback(why) {
  console.log(`dits: native chunker not built (${why}); the JavaScript chunker will be used.`);
  throw new Skipped(why);
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
  const build = (extra) =>
    spawnSync(process.execPath, [...args, ...extra], {
      cwd: root,
      stdio: verbose ? 'inherit' : ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
      timeout: 300_000,
    });
  const b3 = blake3Sources();
  // gyp takes sources inside the project only: they are reached through a link (git-ignored)
  const link = join(root, 'native', 'blake3-c');
  rmSync(link, { force: true });
  let r = null;
  if (b3) {
    symlinkSync(b3, link);
    r = build(['--blake3_c=blake3-c']);
  }
  if (r && (r.error || r.status !== 0)) {
    console.log(`dits: building with the BLAKE3 C library in ${b3} failed; using Dits' own BLAKE3.`);
    r = null;
  }
  r ??= build([]);
  if (r.error) fallback(r.error.message);
  if (r.status !== 0) {
    const lastError = `${r.stderr ?? ''}`.split('\n').filter((l) => /error/i.test(l)).pop();
    fallback(lastError ? lastError.trim().slice(0, 160) : `node-gyp exited with ${r.status ?? r.signal}`);
  }
  if (!existsSync(join(root, 'native', 'build', 'Release', 'dits_chunker.node'))) fallback('no addon produced');
  if (verbose) console.log('dits: native chunker built.');
} catch (err) {
  if (!(err instanceof Skipped)) console.log(`dits: native chunker not built (${err instanceof Error ? err.message : String(err)}); the JavaScript chunker will be used.`);
}

// Dits' read-only FUSE binding (native/fuse/ -> native/fuse/build/Release/dits_fuse.node),
// on libfuse3's headers (Debian's libfuse3-dev, with pkg-config). Without it, read-only
// mounts use fuse-native, as writable ones do.
try {
  const gyp = [join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'), process.env.npm_config_node_gyp].find((p) => p !== undefined && p !== '' && existsSync(p));
  const pc = spawnSync('pkg-config', ['--exists', 'fuse3']);
  if (process.platform !== 'linux') {
    if (verbose) console.log('dits: FUSE binding not built (Linux only).');
  } else if (gyp === undefined) {
    console.log('dits: FUSE binding not built (node-gyp not found); read-only mounts will use fuse-native.');
  } else if (pc.error || pc.status !== 0) {
    console.log('dits: FUSE binding not built (no libfuse3 headers: install libfuse3-dev and pkg-config); read-only mounts will use fuse-native.');
  } else {
    const args = [gyp, 'rebuild', '--directory', join('native', 'fuse')];
    const prefix = join(dirname(process.execPath), '..');
    if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
    const r = spawnSync(process.execPath, args, { cwd: root, stdio: verbose ? 'inherit' : ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 300_000 });
    if (r.error || r.status !== 0 || !existsSync(join(root, 'native', 'fuse', 'build', 'Release', 'dits_fuse.node'))) {
      const lastError = `${r.stderr ?? ''}`.split('\n').filter((l) => /error/i.test(l)).pop();
      console.log(`dits: FUSE binding not built (${r.error?.message ?? lastError?.trim().slice(0, 160) ?? `node-gyp exited with ${r.status ?? r.signal}`}); read-only mounts will use fuse-native.`);
    } else if (verbose) console.log('dits: FUSE binding built.');
  }
} catch (err) {
  console.log(`dits: FUSE binding not built (${err instanceof Error ? err.message : String(err)}); read-only mounts will use fuse-native.`);
}
