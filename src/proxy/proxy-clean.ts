/**
 * The clean filter's part in checkout modes (checkout-mode.ts). Git re-reads a working-tree
 * file through clean whenever its stat data changed (a touch, `git add`, a racy timestamp):
 *
 * - bytes that are a recorded proxy of the original the index holds at that path answer
 *   that ORIGINAL's pointer, exactly the index's blob: a path showing its proxy is clean,
 *   and `git add -A` stages nothing for it;
 * - other bytes at a path that showed a proxy (an edited proxy) are stored as usual, and
 *   recorded as derived from a proxy (src/store/proxy-derived.ts): pre-commit and push
 *   refuse them (proxy-guard.ts).
 *
 * A store with no variant pays one query per filter process, and nothing per file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { runGit } from '../git/exec.js';
import { batchRead } from '../git/cat-file.js';
import { parsePointer, type Pointer } from '../manifest/pointer.js';
import type { ChunkStore } from '../store/chunk-store.js';
import { defaultCheckoutMode, modeOf, modesFile, readModes, type CheckoutMode, type CheckoutModes } from './checkout-state.js';

export interface CleanedFile {
  pointer: Pointer;
  manifestId: string;
}

/** The index's pointer at `rel` (its exact blob), or null. Git's GIT_INDEX_FILE, if it set one, is the index asked. */
async function indexPointerAt(workTree: string, rel: string): Promise<{ pointer: Pointer; bytes: Buffer } | null> {
  const ls = await runGit(['--literal-pathspecs', 'ls-files', '-s', '-z', '--', rel], { cwd: workTree, allowFail: true });
  const m = /^\d+ ([0-9a-f]+) 0\t/.exec(ls.stdout.toString('utf8'));
  if (ls.exitCode !== 0 || !m) return null;
  const bytes = (await batchRead(workTree, [m[1]!])).get(m[1]!);
  const pointer = bytes ? parsePointer(bytes) : null;
  return pointer && bytes ? { pointer, bytes: Buffer.from(bytes) } : null;
}

/**
 * Returns the check the clean filter runs on each file it stored: the original's pointer
 * bytes to answer instead, or null to answer the file's own pointer.
 */
export function createProxyCleanCheck(deps: { workTree: string; gitDir: string; store: () => ChunkStore }): (relPath: string, cleaned: CleanedFile) => Promise<Buffer | null> {
  let active: boolean | undefined;
  // the state file, read again only when it changed (a `git add` of many files reads it once)
  let cached: { key: string; modes: CheckoutModes } | undefined;
  const currentModes = (): CheckoutModes => {
    let key = '';
    try {
      const st = fs.statSync(modesFile(deps.gitDir), { bigint: true });
      key = `${st.ino}:${st.size}:${st.mtimeNs}`;
    } catch {
      /* none */
    }
    if (cached?.key !== key) cached = { key, modes: readModes(deps.gitDir) };
    return cached.modes;
  };
  return async (relPath, cleaned) => {
    const store = deps.store();
    active ??= store.hasVariants();
    if (!active) return null;
    const fileId = cleaned.pointer.oid;
    const owner = store.variantOwner(fileId);
    if (owner) {
      const idx = await indexPointerAt(deps.workTree, relPath);
      return idx && idx.pointer.oid === owner.original ? idx.bytes : null;
    }
    const shown = currentModes().paths[relPath.split(path.sep).join('/')]?.shown;
    if (!shown) return null;
    const idx = await indexPointerAt(deps.workTree, relPath);
    if (idx && idx.pointer.oid === shown.original && fileId !== shown.original) {
      store.proxyDerived.put({ fileId, manifest: cleaned.manifestId, proxy: shown.proxy, original: shown.original, path: relPath, at: Date.now() });
    }
    return null;
  };
}

/**
 * For smudge: whether the checkout should leave `relPath` as its pointer for the hook to
 * write its proxy (writeProxiesForCheckout): its mode is proxy and a proxy of this original
 * is recorded. Such files are then neither written inline nor early (that would write the
 * original). One query per filter process when the store has no variant.
 */
export function createProxySmudgeCheck(deps: { workTree: string; gitDir: string; store: () => ChunkStore }): (relPath: string, pointer: Pointer) => Promise<boolean> {
  let active: boolean | undefined;
  let modes: ReturnType<typeof readModes> | undefined;
  let fallback: CheckoutMode | undefined;
  return async (relPath, pointer) => {
    const store = deps.store();
    active ??= store.hasVariants();
    if (!active) return false;
    modes ??= readModes(deps.gitDir);
    fallback ??= await defaultCheckoutMode(deps.workTree).catch(() => 'original' as const);
    if (modeOf(modes, relPath, fallback) !== 'proxy') return false;
    return store.variantsOf(pointer.oid, 'proxy').some((v) => v.status === 'ok');
  };
}
