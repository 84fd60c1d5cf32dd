/**
 * Making the proxies (and, when asked, the posters, sprites and previews) of original file
 * versions local: their records from the remotes' variants indexes, then their content,
 * verified like any content. The originals' own content is not fetched: a clone in proxy
 * mode downloads only proxies, and the originals stay lazy.
 */
import type { RepoPaths } from '../git/repo.js';
import type { ChunkStore } from '../store/chunk-store.js';
import { contentPresent } from '../store/materialize.js';
import { contentRemotes } from '../worktree/remote-fetch.js';
import { openRemoteStorage } from '../remote/open-remote.js';
import { recordingReads } from '../tier/access-records.js';
import { isUserError } from '../errors.js';
import type { TransferProgress } from '../transfer/transfer-queue.js';
import type { VariantKind, VariantRecord } from '../manifest/variant-record.js';
import { fetchVariantContent, fetchVariantRecords } from './remote-variants.js';
import { pickVariant } from './store-variant.js';

export interface ProxyFetchReport {
  /** original file id -> the variant now local, per kind asked */
  local: Map<string, VariantRecord[]>;
  /** originals for which no remote (and not this store) has an ok variant of the first kind asked */
  none: string[];
  bytes: number;
  /** remotes that failed, with why (the others may still have provided everything) */
  failures: { remote: string; message: string }[];
}

/**
 * For each original, the newest ok variant of each kind (recipe preferred when given), made
 * local: records from the remotes first when this store has none, then content.
 */
export async function ensureVariantsLocal(
  repo: RepoPaths,
  store: ChunkStore,
  originals: readonly string[],
  o: { kinds?: VariantKind[]; recipeOf?: (original: string) => string | undefined; remote?: string; onProgress?: (p: TransferProgress) => void } = {},
): Promise<ProxyFetchReport> {
  const kinds = o.kinds ?? ['proxy'];
  const report: ProxyFetchReport = { local: new Map(), none: [], bytes: 0, failures: [] };
  const unique = [...new Set(originals)];
  const wanted = (): { original: string; rec: VariantRecord }[] => {
    const out: { original: string; rec: VariantRecord }[] = [];
    for (const original of unique) {
      for (const kind of kinds) {
        const rec = pickVariant(store, original, kind, o.recipeOf?.(original));
        if (rec) out.push({ original, rec });
      }
    }
    return out;
  };
  const isLocal = (r: VariantRecord): boolean => contentPresent(store, r.manifest!);
  let missing = wanted().filter((w) => !isLocal(w.rec));
  const noRecord = unique.filter((orig) => !pickVariant(store, orig, kinds[0]!, o.recipeOf?.(orig)));
  if (missing.length || noRecord.length) {
    for (const remote of await contentRemotes(repo, o.remote)) {
      try {
        const storage = await openRemoteStorage(repo.workTree, remote.url);
        // records: every original here has to ask (a newer recipe may exist), cheap listings
        await fetchVariantRecords(storage, store, unique);
        missing = wanted().filter((w) => !isLocal(w.rec));
        if (missing.length === 0) break;
        const r = await recordingReads(repo, remote.url, storage, (access) =>
          fetchVariantContent(
            storage,
            store,
            missing.map((m) => m.rec),
            { remoteName: remote.name, onProgress: o.onProgress, access },
          ),
        );
        report.bytes += r.bytes;
        missing = wanted().filter((w) => !isLocal(w.rec));
        if (missing.length === 0) break;
      } catch (err) {
        if (!isUserError(err)) throw err;
        report.failures.push({ remote: remote.name, message: err.message });
      }
    }
  }
  for (const w of wanted()) {
    if (!isLocal(w.rec)) continue;
    const list = report.local.get(w.original) ?? [];
    list.push(w.rec);
    report.local.set(w.original, list);
  }
  report.none = unique.filter((orig) => !report.local.get(orig)?.some((r) => r.kind === kinds[0]));
  return report;
}
