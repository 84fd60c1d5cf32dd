/**
 * The working tree as a source of chunks the local store does not keep.
 *
 * A checkout that downloads content writes it only into the working tree (remote-fetch.ts:
 * no second copy in the store). So that the next checkout of another version of the same
 * file does not download again the chunks both versions share, Dits keeps a hard link to
 * each file it wrote that way in `.git/dits/wt/<manifest id>`. Git removes the old file
 * before it writes the new pointer; the link keeps the old bytes readable until the hook
 * has assembled the new version from them, and is dropped right after (`dropUnusedLinks`:
 * a link that is the file's only name holds disk space for nothing). Files still in the
 * working tree keep theirs (two names, no extra space).
 *
 * Nothing here is trusted: a chunk read from a link is used only if its bytes hash to the
 * chunk id, so a file edited in place (the link sees the edit) or replaced just yields fewer
 * chunks, and the rest comes from the remote as before.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ALIGN_SLACK, alignedView } from '../store/aligned-buffer.js';
import { hashBytes } from '../hashing/blake3.js';
import { Manifest } from '../manifest/manifest.js';
import type { ChunkStore } from '../store/chunk-store.js';

const LINK_DIR = 'wt';
const MANIFEST_NAME = /^[0-9a-f]{64}$/;
/** Bytes read from a link at once (several neighbouring chunks). */
const READ_SPAN = 4 * 1024 * 1024;

function linkDir(store: ChunkStore): string {
  return path.join(store.dir, LINK_DIR);
}

/**
 * Gives `file` (about to be renamed into the working tree, holding manifest `manifestId`'s
 * content) a second name in the link directory. Best effort: no link (another file system,
 * a file system without hard links) only means a later checkout downloads more.
 */
export function linkWrittenFile(store: ChunkStore, manifestId: string, file: string): void {
  const dir = linkDir(store);
  const dest = path.join(dir, manifestId);
  const tmp = path.join(dir, `.${manifestId}.${randomBytes(4).toString('hex')}`);
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.linkSync(file, tmp);
    fs.renameSync(tmp, dest);
  } catch {
    fs.rmSync(tmp, { force: true });
  }
}

/** Every entry of the link directory with its lstat (none when it does not exist). */
function* listLinks(store: ChunkStore): Generator<{ name: string; file: string; st: fs.Stats }> {
  const dir = linkDir(store);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const file = path.join(dir, name);
    try {
      yield { name, file, st: fs.lstatSync(file) };
    } catch {
      /* gone meanwhile */
    }
  }
}

/** A link whose file left the working tree (its only name is the link): replaced or deleted. */
function orphaned(name: string, st: fs.Stats): boolean {
  return MANIFEST_NAME.test(name) && st.isFile() && st.nlink <= 1;
}

/** Removes links that are their file's only name (the file left the working tree), and stray temps. */
export function dropUnusedLinks(store: ChunkStore): number {
  let dropped = 0;
  for (const { name, file, st } of listLinks(store)) {
    const link = MANIFEST_NAME.test(name);
    // an old temp of linkWrittenFile, or a link nothing else names (or not a file at all)
    if (link ? !st.isFile() || orphaned(name, st) : Date.now() - st.mtimeMs > 3600_000) {
      fs.rmSync(file, { force: true, recursive: true }); // our own directory: whatever sits there
      dropped++;
    }
  }
  return dropped;
}

/**
 * Links whose file left the working tree (replaced or deleted since the last checkout):
 * they hold disk space until the next checkout or `git dits gc` drops them.
 */
export function orphanLinkStats(store: ChunkStore): { files: number; bytes: number } {
  const out = { files: 0, bytes: 0 };
  for (const { name, st } of listLinks(store)) {
    if (!orphaned(name, st)) continue;
    out.files++;
    out.bytes += st.blocks * 512;
  }
  return out;
}

export interface LinkSink {
  /** whether this chunk is still wanted */
  needs(idRaw: Buffer): boolean;
  /** takes the verified plain bytes (a view valid only during the call) */
  put(idRaw: Buffer, plain: Buffer): Promise<void> | null | void;
}

/**
 * Reads from the linked files that left the working tree (the previous versions of the files
 * being checked out) every chunk `sink` still needs that they hold, verifies each against its
 * id, and hands it over. Returns the ids delivered (hex).
 */
export async function fillFromLinks(store: ChunkStore, sink: LinkSink): Promise<Set<string>> {
  const delivered = new Set<string>();
  const buf = Buffer.allocUnsafe(READ_SPAN + ALIGN_SLACK);
  // only files this checkout replaced (git removed their working-tree name): the work stays
  // proportional to what changed, however many files the tree holds
  for (const { name, file, st } of listLinks(store)) {
    if (!orphaned(name, st)) continue;
    let m: Manifest;
    try {
      if (!store.hasManifest(name)) continue;
      m = Manifest.parse(store.getManifestBytes(name));
    } catch {
      continue;
    }
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      continue;
    }
    try {
      // a file whose size changed was edited: its chunks would not verify anyway
      if (fs.fstatSync(fd).size !== m.header.size) continue;
      let offset = 0;
      let i = 0;
      while (i < m.chunkCount) {
        const idRaw = m.idRawAt(i);
        const len = m.lengthAt(i);
        if (!sink.needs(idRaw) || delivered.has(idRaw.toString('hex'))) {
          offset += len;
          i++;
          continue;
        }
        // read this chunk and the following wanted ones that fit in the span
        let spanEnd = i;
        let spanLen = 0;
        while (spanEnd < m.chunkCount && spanLen + m.lengthAt(spanEnd) <= READ_SPAN && (spanEnd === i || sink.needs(m.idRawAt(spanEnd)))) spanLen += m.lengthAt(spanEnd++);
        if (spanEnd === i) {
          // one chunk larger than the span (chunks are at most a few MiB): read it alone
          spanLen = len;
          spanEnd = i + 1;
        }
        // placed to match the file offset: the kernel's copy is up to 4x slower otherwise
        const data = spanLen <= READ_SPAN ? alignedView(buf, offset, spanLen) : Buffer.allocUnsafe(spanLen);
        const got = await readAt(fd, data, offset);
        let at = 0;
        for (let k = i; k < spanEnd && at + m.lengthAt(k) <= got; k++) {
          const kId = m.idRawAt(k);
          const kLen = m.lengthAt(k);
          const piece = data.subarray(at, at + kLen);
          at += kLen;
          const hex = kId.toString('hex');
          if (delivered.has(hex) || !sink.needs(kId)) continue;
          if (!hashBytes(piece).equals(kId)) continue;
          delivered.add(hex);
          const wait = sink.put(kId, piece);
          if (wait) await wait;
        }
        offset += spanLen;
        i = spanEnd;
      }
    } catch {
      /* unreadable: what was delivered stays, the rest comes from the remote */
    } finally {
      fs.closeSync(fd);
    }
  }
  return delivered;
}

function readAt(fd: number, buf: Buffer, pos: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let done = 0;
    const step = (): void => {
      fs.read(fd, buf, done, buf.length - done, pos + done, (err, n) => {
        if (err) return reject(err);
        done += n;
        if (n === 0 || done >= buf.length) resolve(done);
        else step();
      });
    };
    step();
  });
}
