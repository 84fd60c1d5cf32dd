/**
 * The clean and smudge handlers behind `git dits filter-process`.
 *
 * clean : content that already is a pointer passes unchanged; anything else is ingested
 *         (chunks into the store) and replaced by its pointer.
 * smudge: a pointer for content up to `smudgeInlineMax` that is in the local store comes
 *         back as the real bytes; a larger one (or one whose content is not here) comes back
 *         as the pointer itself and its path is added to the pending list, for the
 *         post-checkout/post-merge/reference-transaction hook to write outside Git's pipe.
 *         Non-pointers pass through unchanged.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FilterContent, FilterHandlers, FilterRequest, FilterResult } from './protocol.js';
import { EMPTY_FILE_ID, MAX_POINTER_SIZE, parsePointer } from '../manifest/pointer.js';
import type { ChunkStore } from '../store/chunk-store.js';
import { ingest, type ByteSource, type CutPlan } from '../store/ingest.js';
import type { CutWorker } from '../store/cut-pipeline.js';
import { loadManifest, readContent } from '../store/materialize.js';
import type { DitsSettings } from '../git/dits-config.js';
import { addPending } from '../worktree/pending.js';
import { copyBytes } from '../chunking/native.js';

export interface MediaAnalysis {
  cutPlan?: CutPlan;
  media?: Record<string, unknown> | null;
  fallback?: string;
}

export interface DitsFilterDeps {
  workTree: string;
  gitDir: string;
  settings: DitsSettings;
  /** Opened on first use (a checkout of plain files never opens SQLite). */
  store: () => ChunkStore;
  /**
   * A cutting worker for content of about `size` bytes (the working-tree file's size, a
   * hint only), or undefined to cut on this thread. Owned by the caller.
   */
  cutWorker?: (size: number) => CutWorker | undefined;
  /** Media-aware cut plan for a working-tree file, when the settings ask for it. */
  analyze?: (absPath: string) => Promise<MediaAnalysis | null>;
  /** Awaited once, when smudge first leaves a pointer for the hooks (makes sure they exist before git looks for them). */
  onPending?: () => Promise<void> | void;
  log?: (line: string) => void;
}

/** Reads up to `limit` + 1 bytes ahead, so a small pointer can be recognised. */
async function peek(content: AsyncIterable<Buffer>, limit: number): Promise<{ head: Buffer; rest: AsyncIterator<Buffer>; ended: boolean }> {
  const it = content[Symbol.asyncIterator]();
  const parts: Buffer[] = [];
  let n = 0;
  while (n <= limit) {
    const next = await it.next();
    if (next.done) return { head: Buffer.concat(parts), rest: it, ended: true };
    parts.push(next.value);
    n += next.value.length;
  }
  return { head: Buffer.concat(parts), rest: it, ended: false };
}

async function* prepend(head: Buffer, rest: AsyncIterator<Buffer>, ended: boolean): AsyncGenerator<Buffer> {
  if (head.length) yield head;
  if (ended) return;
  for (;;) {
    const next = await rest.next();
    if (next.done) return;
    yield next.value;
  }
}

/** The content as a ByteSource: the peeked head, then the rest read straight into ingest's buffers. */
function afterHead(head: Buffer, ended: boolean, content: FilterContent): ByteSource {
  let at = 0;
  return {
    async read(buf: Buffer): Promise<number> {
      let n = 0;
      if (at < head.length) {
        n = Math.min(head.length - at, buf.length);
        copyBytes(head.subarray(at, at + n), buf, 0);
        at += n;
      }
      return ended || n === buf.length ? n : n + (await content.readInto(buf.subarray(n)));
    },
  };
}

export function createDitsFilter(deps: DitsFilterDeps): FilterHandlers {
  let pendingAnnounced = false;
  return {
    async clean(req: FilterRequest, content: FilterContent): Promise<FilterResult> {
      const { head, rest, ended } = await peek(content, MAX_POINTER_SIZE);
      if (ended && parsePointer(head)) return head;
      const file = path.join(deps.workTree, req.pathname);
      let analysis: MediaAnalysis | null = null;
      if (deps.settings.mediaAware && deps.analyze && !ended) {
        try {
          analysis = await deps.analyze(file);
        } catch {
          analysis = null; // the plan is only a hint: ids come from the bytes git sends
        }
      }
      let worker: CutWorker | undefined;
      if (!ended && deps.cutWorker) {
        // git does not say how long the content is; the file it came from is a good guess
        let size = 0;
        try {
          size = fs.statSync(file).size;
        } catch {
          /* content from elsewhere (git hash-object --stdin --path): cut on this thread */
        }
        worker = deps.cutWorker(size);
      }
      const res = await ingest(deps.store(), afterHead(head, ended, content), {
        params: deps.settings.chunker,
        worker,
        cutPlan: analysis?.cutPlan,
        media: analysis?.media ?? null,
        mediaFallback: analysis?.fallback,
      });
      return res.pointerBytes;
    },

    async smudge(req: FilterRequest, content: FilterContent): Promise<FilterResult> {
      const { head, rest, ended } = await peek(content, MAX_POINTER_SIZE);
      if (!ended) return prepend(head, rest, ended);
      const pointer = parsePointer(head);
      if (!pointer) return head;
      // The empty file needs no stored content at all (its id is known).
      if (pointer.size === 0 && pointer.oid === EMPTY_FILE_ID) return Buffer.alloc(0);
      if (pointer.size <= deps.settings.smudgeInlineMax) {
        try {
          const store = deps.store();
          const manifest = loadManifest(store, pointer);
          // Verify every chunk is present before answering, so a failure leaves a pointer
          // (and a clear message later) rather than a half-written file.
          for (let i = 0; i < manifest.chunkCount; i++) {
            if (!store.locate(manifest.idRawAt(i))) throw new Error('missing chunk');
          }
          return readContent(store, manifest);
        } catch {
          /* fall through: leave the pointer, the hook reports what is missing */
        }
      }
      addPending(deps.gitDir, req.pathname);
      if (!pendingAnnounced) {
        pendingAnnounced = true;
        await deps.onPending?.();
      }
      return head;
    },

    onError(req, err) {
      deps.log?.(`dits: ${req.command} ${req.pathname}: ${err instanceof Error ? err.message : String(err)}`);
    },
  };
}
