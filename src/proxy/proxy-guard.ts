/**
 * The guard that keeps proxies out of history: an original is never replaced by its proxy
 * (nor by an edit of a proxy) in any commit or push. A pointer stands in wrongly when its
 * content is a recorded variant (a proxy, poster, sprite or preview: variantOwner) or was
 * recorded as derived from a proxy by the clean filter (proxy-clean.ts). The pre-commit hook
 * checks the staged pointers; a push checks every pointer it sends, so commits made with
 * `--no-verify` are refused there too. One function each, for the hook and the remote helper.
 */
import { DitsUserError } from '../errors.js';
import { runGit } from '../git/exec.js';
import { resolvePointers } from '../git/pointers.js';
import { Manifest } from '../manifest/manifest.js';
import type { ChunkStore } from '../store/chunk-store.js';

export interface ProxyStandIn {
  path?: string;
  manifest: string;
  /** what the content is: a variant of `original` (its kind), or an edit of one of its proxies */
  kind: 'proxy' | 'poster' | 'sprite' | 'sprite-vtt' | 'preview' | 'derived';
  original: string;
}

/** Which of these file versions (by manifest, and file id when known) are variants or derived from a proxy. */
export function findProxyStandIns(store: ChunkStore, items: { manifest: string; fileId?: string; path?: string }[]): ProxyStandIn[] {
  const variants = store.hasVariants();
  const derived = store.proxyDerived.any();
  if (!variants && !derived) return [];
  const byManifest = new Map<string, { kind: ProxyStandIn['kind']; original: string }>();
  if (variants) for (const v of store.listVariants()) if (v.status === 'ok' && v.manifest) byManifest.set(v.manifest, { kind: v.kind, original: v.original });
  const out: ProxyStandIn[] = [];
  for (const it of items) {
    // the same bytes cut with other chunk sizes have another manifest: the file id decides too
    const fileId = it.fileId ?? fileIdOf(store, it.manifest);
    const v = byManifest.get(it.manifest) ?? (fileId ? store.variantOwner(fileId) : undefined);
    if (v) {
      out.push({ path: it.path, manifest: it.manifest, kind: v.kind, original: v.original });
      continue;
    }
    const d = derived ? (store.proxyDerived.byManifest(it.manifest) ?? (fileId ? store.proxyDerived.byFileId(fileId) : undefined)) : undefined;
    if (d) out.push({ path: it.path ?? d.path, manifest: it.manifest, kind: 'derived', original: d.original });
  }
  return out;
}

/** The file id a local manifest records, or undefined (not here, unreadable). */
function fileIdOf(store: ChunkStore, manifest: string): string | undefined {
  try {
    return store.hasManifest(manifest) ? Manifest.parse(store.getManifestBytes(manifest)).header.oid : undefined;
  } catch {
    return undefined;
  }
}

function describe(s: ProxyStandIn): string {
  const what = s.kind === 'derived' ? 'an edited proxy' : s.kind === 'proxy' ? 'a proxy' : `a ${s.kind}`;
  return `  ${s.path ?? `manifest ${s.manifest}`}: ${what} of original ${s.original.slice(0, 12)}, not the original`;
}

/**
 * For a push: throws when any file version being pushed is a variant or derived from a
 * proxy, naming them (`paths`: manifest id to a path that holds it, for the message).
 */
export function assertNoProxyContent(store: ChunkStore, manifestIds: readonly string[], paths?: ReadonlyMap<string, string>, target?: string): void {
  const found = findProxyStandIns(
    store,
    manifestIds.map((m) => ({ manifest: m, path: paths?.get(m) })),
  );
  if (found.length === 0) return;
  const list = found.slice(0, 10).map(describe);
  if (found.length > 10) list.push(`  ... and ${found.length - 10} more`);
  throw new DitsUserError(
    'push-proxy-content',
    `refusing to push${target ? ` to ${target}` : ''}: ${found.length} committed file version(s) are proxies (or edits of proxies) in place of their originals:\n${list.join('\n')}`,
    {
      hint: `rewrite the commits that hold them with the originals: \`git dits checkout --mode original <path>\`, then \`git add <path>\` and \`git commit --amend\` (or \`git rebase -i\` for older commits); then push again`,
    },
  );
}

/** The staged pointers (index against HEAD) that are proxies or derived from one. Run at the top of the work tree. */
export async function stagedProxyStandIns(cwd: string, store: ChunkStore): Promise<ProxyStandIn[]> {
  if (!store.hasVariants() && !store.proxyDerived.any()) return [];
  const head = await runGit(['rev-parse', '--verify', '--quiet', 'HEAD'], { cwd, allowFail: true });
  const base = head.exitCode === 0 ? 'HEAD' : '4b825dc642cb6eb9a060e54bf8d69288fbee4904'; // the empty tree
  const diff = await runGit(['diff-index', '--cached', '-z', '--no-renames', '--diff-filter=AMT', base], { cwd });
  // -z: ":<mode> <mode> <oid> <oid> <status>" NUL <path> NUL
  const f = diff.stdout.toString('utf8').split('\0');
  const entries: { path: string; oid: string; mode: string }[] = [];
  for (let i = 0; i + 1 < f.length; i += 2) {
    const head = f[i]!.split(' ');
    if (head.length >= 5) entries.push({ path: f[i + 1]!, oid: head[3]!, mode: head[1]! });
  }
  const pointers = await resolvePointers(cwd, entries);
  return findProxyStandIns(
    store,
    pointers.map((p) => ({ manifest: p.pointer.manifest, fileId: p.pointer.oid, path: p.path })),
  );
}

/** The lines the pre-commit hook prints for them: what and how to get the original back. */
export function proxyCommitRefusal(found: ProxyStandIn[]): string[] {
  const lines = [`error: ${found.length} staged file(s) are proxies or edited proxies, not their originals; committing would replace the originals in history:`];
  for (const s of found.slice(0, 20)) lines.push(describe(s));
  if (found.length > 20) lines.push(`  ... and ${found.length - 20} more`);
  const paths = found.map((s) => s.path ?? '').filter(Boolean).slice(0, 5).join(' ');
  lines.push(`hint: to commit the original instead: \`git restore --staged ${paths}\` (the edited file stays in the working tree)`);
  lines.push(`hint: to get the original back in the working tree: move the edited file away (to keep it), then \`git dits checkout --mode original ${paths}\``);
  lines.push(`hint: if it is a new version of its own, not an edit of the proxy: \`git dits checkout --mode original --keep ${paths}\`, then \`git add\` and commit`);
  return lines;
}
