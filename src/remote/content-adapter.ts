/**
 * Binds the git side of a remote (session.ts) to the content side (content/): the local
 * store of the repository and progress on stderr when it is a terminal.
 */
import { findRepo } from '../git/repo.js';
import { readDitsSettings, type DitsSettings } from '../git/dits-config.js';
import { pushVariants } from '../proxy/remote-variants.js';
import { ChunkStore } from '../store/chunk-store.js';
import type { ObjectStorage } from '../transfer/object-storage.js';
import type { TransferProgress } from '../transfer/transfer-queue.js';
import { progressLine } from '../cli/progress.js';
import { pushContent } from './content/push-content.js';
import type { ContentPusher } from './session.js';
import { assertNoProxyContent } from '../proxy/proxy-guard.js';
import { batchByMissingContent, obtainMissingChunks, obtainMissingManifests, OBTAIN_BATCH_BYTES, releaseObtained } from './push-sources.js';

export function stderrProgress(label: string, interactive: boolean): ((p: TransferProgress) => void) | undefined {
  if (!interactive) return undefined;
  let last = 0;
  return (p) => {
    // finished: every item known so far is done and no bytes are outstanding
    const finished = p.doneItems + p.failedItems >= p.totalItems && p.doneBytes >= p.totalBytes;
    const now = Date.now();
    if (now - last < 100 && !finished) return;
    last = now;
    process.stderr.write(`\r${progressLine(label + ':', p.doneBytes, p.totalBytes, p.rateBytesPerSec, p.etaSec)}\x1b[K`);
    if (finished && p.totalBytes > 0) process.stderr.write('\n');
  };
}

export async function createContentPusher(o: { cwd: string; gitDir: string; storage: ObjectStorage; remoteName: string; interactive: boolean; settings?: DitsSettings }): Promise<ContentPusher> {
  const [repo, settings] = await Promise.all([findRepo(o.cwd), o.settings ?? readDitsSettings(o.cwd)]);
  return {
    async push(manifestIds, { dryRun, from }) {
      const store = ChunkStore.open(repo.ditsDir, { create: true });
      try {
        // the pointers of commits (`from`): never a proxy (or an edit of one) in place of its
        // original, whatever the commit hooks said (variants' own content is pushed without `from`)
        if (from) assertNoProxyContent(store, manifestIds, from.paths, o.remoteName);
        const sources = { workTree: repo.workTree, store, target: o.remoteName, from, log: (l: string) => process.stderr.write(l + '\n') };
        await obtainMissingManifests(sources, manifestIds);
        const total = { manifests: 0, chunks: 0, bytes: 0, requests: 0 };
        // Content not kept here is obtained, pushed and released a batch at a time, so the
        // local store holds at most about a batch of it at once (dry runs: one plan).
        for (const batch of dryRun ? [manifestIds] : batchByMissingContent(store, manifestIds, OBTAIN_BATCH_BYTES)) {
          let obtained: Buffer[] = [];
          const r = await pushContent(o.storage, store, batch, {
            remoteName: o.remoteName,
            dryRun,
            packSize: settings.packSize,
            concurrency: settings.concurrency,
            onProgress: stderrProgress('Uploading content', o.interactive),
            // content a checkout kept only in the working tree, or prune dropped: from the files, else the remote holding it
            obtainMissing: async (missing) => (obtained = await obtainMissingChunks(sources, missing)),
          });
          // what was obtained only to be sent on leaves the store again (a push keeps no second copy)
          if (!dryRun && obtained.length) releaseObtained(store, obtained, o.remoteName);
          total.manifests += r.manifests;
          total.chunks += r.chunks;
          total.bytes += r.bytes;
          total.requests += r.requests;
        }
        // proxies, posters and sprites of these versions go too (content first, records last)
        const v = await pushVariants(o.storage, store, manifestIds, {
          remoteName: o.remoteName,
          dryRun,
          packSize: settings.packSize,
          concurrency: settings.concurrency,
          onProgress: stderrProgress('Uploading proxies', o.interactive),
        });
        total.manifests += v.manifests;
        total.bytes += v.bytes;
        return total;
      } finally {
        store.close();
      }
    },
  };
}
