/**
 * The clean and smudge handlers behind `git dits filter-process`.
 *
 * clean : content that already is a pointer passes unchanged; anything else is ingested
 *         (chunks into the store) and replaced by its pointer.
 * smudge: a pointer for content up to `smudgeInlineMax` that is in the local store comes
 *         back as the real bytes; a larger one (or one whose content is not here) comes back
 *         as the pointer itself and its path is added to the pending list, for the
 *         post-checkout/post-merge/reference-transaction hook to write outside Git's pipe.
 *         Non-pointers pass through unchanged. Content that claims to be a pointer (starts
 *         with its version line) but does not parse is a damaged pointer: it too passes
 *         through unchanged, with a warning naming the path (`git dits status` and `fsck`
 *         report it as well).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DELAYED, type FilterContent, type FilterHandlers, type FilterRequest, type FilterResult } from './protocol.js';
import type { DelayedSmudge } from './delayed-smudge.js';
import { EMPTY_FILE_ID, MAX_POINTER_SIZE, parsePointer, pointerDamage, type Pointer } from '../manifest/pointer.js';
import type { ChunkStore } from '../store/chunk-store.js';
import { ingest, type ByteSource, type CutPlan } from '../store/ingest.js';
import type { CutWorker } from '../store/cut-pipeline.js';
import { ReadBuffers, loadManifest, readContent } from '../store/materialize.js';
import type { DitsSettings } from '../git/dits-config.js';
import { addPending } from '../worktree/pending.js';
import { copyBytes } from '../native-addon.js';
import { readFileBuffers } from '../store/file-source.js';
import { createProxyCleanCheck, createProxySmudgeCheck } from '../proxy/proxy-clean.js';

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
  /** Writes smudged big files early, for the hook to rename into place (worktree/early-write.ts). */
  early?: { schedule(pointer: Pointer): void };
  /** Reads small files ahead when Git lets smudge delay them (delayed-smudge.ts). */
  delayed?: DelayedSmudge;
  /** Media-aware cut plan for a working-tree file (`known`: its size and first bytes), when the settings ask for it. */
  analyze?: (absPath: string, known?: { head: Buffer; size: number }) => Promise<MediaAnalysis | null>;
  /** Told each path smudge leaves as a pointer (added to the pending list). */
  leftPending?: (relPath: string) => void;
  /** Awaited once, when smudge first leaves a pointer for the hooks (makes sure they exist before git looks for them). */
  onPending?: () => Promise<void> | void;
  log?: (line: string) => void;
}

/** Reads up to `limit` + 1 bytes ahead, so a small pointer can be recognised. */
async function peek(content: AsyncIterable<Buffer>, limit: number): Promise<{ head: Buffer; rest: AsyncIterator<Buffer>; ended: boolean }> {
  return peekMore(content[Symbol.asyncIterator](), Buffer.alloc(0), limit);
}

/** `head`, then more of `it` until over `limit` bytes or the end. */
async function peekMore(it: AsyncIterator<Buffer>, head: Buffer, limit: number): Promise<{ head: Buffer; rest: AsyncIterator<Buffer>; ended: boolean }> {
  const parts: Buffer[] = head.length ? [head] : [];
  let n = head.length;
  while (n <= limit) {
    const next = await it.next();
    if (next.done) return { head: Buffer.concat(parts), rest: it, ended: true };
    parts.push(next.value);
    n += next.value.length;
  }
  return { head: Buffer.concat(parts), rest: it, ended: false };
}

/** What the media analysis reads first (analyze-container.ts): taken from git's pipe, the file needs no open to tell it is no container. */
const ANALYSIS_HEAD = 64 * 1024;

async function* prepend(head: Buffer, rest: AsyncIterator<Buffer>, ended: boolean): AsyncGenerator<Buffer> {
  if (head.length) yield head;
  if (ended) return;
  for (;;) {
    const next = await rest.next();
    if (next.done) return;
    yield next.value;
  }
}

/** Content kept in memory up to this size; beyond it, spooled to a temp file. */
const PASS_THROUGH_IN_MEMORY = 16 * 1024 * 1024;

/**
 * Reads all of `content`, then gives it back: in memory when small, else from a temp file
 * in `tmpDir` (removed once read, or if reading fails), so memory stays bounded whatever the
 * size. All of it must be read before answering: git writes a request's whole content
 * before it reads the reply, so streaming one into the other would stall both pipes (and
 * answering early, the old way, cut the file short).
 */
async function passThrough(content: AsyncIterable<Buffer>, tmpDir: string): Promise<FilterResult> {
  const parts: Buffer[] = [];
  let size = 0;
  const it = content[Symbol.asyncIterator]();
  for (let next = await it.next(); !next.done; next = await it.next()) {
    parts.push(Buffer.from(next.value)); // a copy: the input's buffers are reused
    size += next.value.length;
    if (size > PASS_THROUGH_IN_MEMORY) return spool(parts, it, tmpDir);
  }
  return Buffer.concat(parts, size);
}

async function spool(parts: Buffer[], rest: AsyncIterator<Buffer>, tmpDir: string): Promise<FilterResult> {
  let dir = tmpDir;
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch {
    dir = os.tmpdir();
  }
  const file = path.join(dir, `smudge-${process.pid}-${randomBytes(6).toString('hex')}`);
  const fh = await fsp.open(file, 'wx', 0o600);
  try {
    for (const p of parts) await fh.write(p);
    parts.length = 0;
    for (let next = await rest.next(); !next.done; next = await rest.next()) await fh.write(next.value);
  } catch (err) {
    await fh.close();
    fs.rmSync(file, { force: true });
    throw err;
  }
  await fh.close();
  return (async function* () {
    try {
      yield* readFileBuffers(file, 1024 * 1024);
    } finally {
      fs.rmSync(file, { force: true });
    }
  })();
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
  // a proxy's bytes answer the original's pointer; an edited proxy is marked (proxy-clean.ts)
  const proxyCheck = createProxyCleanCheck(deps);
  // a path in proxy mode is left as its pointer: the hook writes its proxy, not the original
  const wantsProxy = createProxySmudgeCheck(deps);
  // smudge's reads reuse these from file to file (the protocol writes each piece before it
  // asks for the next)
  const readBuffers = new ReadBuffers();
  const warnDamaged = (file: string, damage: string | null): void => {
    if (damage === null) return;
    deps.log?.(
      `dits: warning: ${file} is a damaged Dits pointer (${damage}); it is checked out as that text, not as the file it stood for. ` +
        `Restore it from a commit where it is whole (\`git log -- ${file}\`, then \`git checkout <commit> -- ${file}\`), or put the real file back and \`git add\` it.`,
    );
  };
  return {
    async clean(req: FilterRequest, content: FilterContent): Promise<FilterResult> {
      const peeked = await peek(content, MAX_POINTER_SIZE);
      if (peeked.ended && parsePointer(peeked.head)) return peeked.head;
      // (the analysis runs when the content is longer than a pointer, as it always did)
      const analyse = Boolean(deps.settings.mediaAware && deps.analyze && !peeked.ended);
      const { head, ended } = analyse ? await peekMore(peeked.rest, peeked.head, ANALYSIS_HEAD - 1) : peeked;
      const file = path.join(deps.workTree, req.pathname);
      let worker: CutWorker | undefined;
      // git does not say how long the content is; the file it came from is a good guess
      let size = ended ? head.length : -1;
      if (!ended) {
        try {
          size = fs.statSync(file).size;
        } catch {
          /* content from elsewhere (git hash-object --stdin --path): cut on this thread */
        }
      }
      // (asked first: the workers then start while the container is analysed)
      if (!ended && deps.cutWorker) worker = deps.cutWorker(Math.max(0, size));
      let analysis: MediaAnalysis | null = null;
      if (analyse) {
        try {
          analysis = await deps.analyze!(file, size >= 0 ? { head, size } : undefined);
        } catch {
          analysis = null; // the plan is only a hint: ids come from the bytes git sends
        }
      }
      const res = await ingest(deps.store(), afterHead(head, ended, content), {
        params: deps.settings.chunker,
        worker,
        cutPlan: analysis?.cutPlan,
        media: analysis?.media ?? null,
        mediaFallback: analysis?.fallback,
      });
      return (await proxyCheck(req.pathname, res)) ?? res.pointerBytes;
    },

    async smudge(req: FilterRequest, content: FilterContent): Promise<FilterResult | typeof DELAYED> {
      const { head, rest, ended } = await peek(content, MAX_POINTER_SIZE);
      // Git asking again for a path smudge delayed sends no content: the path says which
      const again = deps.delayed?.take(req.pathname, req.meta.get('blob'));
      if (again && ended && head.length === 0) {
        if (again.pieces) return again.pieces;
        return smudgePointer(req, again.bytes, again.pointer); // its read failed: as without delay
      }
      // Not a pointer (a file committed before it was tracked): git's bytes pass through
      // whole. Git sends all of them before it reads the answer, so they are taken in first.
      if (!ended) {
        warnDamaged(req.pathname, pointerDamage(head, false));
        return passThrough(prepend(head, rest, ended), path.join(deps.gitDir, 'dits', 'tmp'));
      }
      const pointer = parsePointer(head);
      if (!pointer) {
        warnDamaged(req.pathname, pointerDamage(head));
        return head;
      }
      // The empty file needs no stored content at all (its id is known).
      if (pointer.size === 0 && pointer.oid === EMPTY_FILE_ID) return Buffer.alloc(0);
      if (await wantsProxy(req.pathname, pointer)) return leavePending(req, head, pointer, false);
      if (deps.delayed?.wants(pointer) && pointer.size <= deps.settings.smudgeInlineMax && req.meta.get('can-delay') === '1') {
        deps.delayed.delay(req.pathname, req.meta.get('blob'), pointer, head);
        return DELAYED;
      }
      return smudgePointer(req, head, pointer);
    },

    availableBlobs: deps.delayed ? () => deps.delayed!.available() : undefined,

    onError(req, err) {
      deps.log?.(`dits: ${req.command} ${req.pathname}: ${err instanceof Error ? err.message : String(err)}`);
    },
  };

  /** A pointer's content when small and here; else the pointer itself, left for the hooks. */
  async function smudgePointer(req: FilterRequest, head: Buffer, pointer: Pointer): Promise<FilterResult> {
    if (pointer.size <= deps.settings.smudgeInlineMax) {
      try {
        const store = deps.store();
        const manifest = loadManifest(store, pointer);
        // readContent finds every chunk before answering (it throws here if one is
        // missing), so a failure leaves a pointer (and a clear message later) rather than
        // a half-written file.
        return readContent(store, manifest, readBuffers);
      } catch {
        /* fall through: leave the pointer, the hook reports what is missing */
      }
    }
    return leavePending(req, head, pointer, true);
  }

  /** The pointer itself, its path left for the hooks to write (early, when `early` and it is big). */
  async function leavePending(req: FilterRequest, head: Buffer, pointer: Pointer, early: boolean): Promise<FilterResult> {
    addPending(deps.gitDir, req.pathname);
    deps.leftPending?.(req.pathname);
    // too big for the pipe: the filter process may start writing it now (early-write.ts)
    if (early && pointer.size > deps.settings.smudgeInlineMax) deps.early?.schedule(pointer);
    if (!pendingAnnounced) {
      pendingAnnounced = true;
      await deps.onPending?.();
    }
    return head;
  }
}
