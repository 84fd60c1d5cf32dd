/**
 * Metadata tags of an MP4/MOV file, for showing which tags changed between two versions
 * (`git show`, `git diff`). Not stored in manifests: read from the content when it is at
 * hand. Three places, as ffmpeg and cameras write them:
 *
 * - iTunes-style list `moov/udta/meta/ilst/<item>/data` (ffmpeg's MP4 muxer: `-metadata
 *   title=x` becomes `©nam`), keys named after the item (`title`, or the atom type);
 * - QuickTime user data text atoms `moov/udta/©xxx` (2-byte length, 2-byte language,
 *   text), and any other user data atom, shown by size and a short hash so that every
 *   change shows;
 * - QuickTime metadata `moov/meta/keys` + `ilst` (`mdta` keys such as
 *   `com.apple.quicktime.title`).
 *
 * Returns null when the content is not an MP4/MOV (its first box is not one of theirs).
 */
import { hashHex } from '../hashing/blake3.js';
import { findChild, payloadSize, payloadStart, printable, readChildBoxes, readPayload, type BoxHeader } from './mp4-boxes.js';
import type { RandomAccessReader } from './random-access-reader.js';

const TOP_LEVEL = new Set(['ftyp', 'moov', 'mdat', 'free', 'skip', 'wide', 'pnot', 'uuid']);

/** iTunes item atoms by their usual names (ffmpeg's `-metadata` keys). */
const ITEM_NAMES: Record<string, string> = {
  '\xa9nam': 'title',
  '\xa9ART': 'artist',
  aART: 'album_artist',
  '\xa9alb': 'album',
  '\xa9cmt': 'comment',
  '\xa9day': 'date',
  '\xa9gen': 'genre',
  '\xa9too': 'encoder',
  '\xa9wrt': 'composer',
  '\xa9grp': 'grouping',
  '\xa9lyr': 'lyrics',
  desc: 'description',
  ldes: 'synopsis',
  cprt: 'copyright',
  '\xa9xyz': 'location',
};

/** Largest box payload read for a tag; bigger ones (cover art) are shown by size and hash. */
const MAX_TAG_BYTES = 64 * 1024;

function summarise(bytes: Buffer): string {
  return `${bytes.length} bytes, blake3:${hashHex(bytes).slice(0, 16)}`;
}

/** A `data` atom's value: text for UTF-8/UTF-16 types, else its size and hash. */
function dataValue(payload: Buffer): string {
  if (payload.length < 8) return summarise(payload);
  const type = payload.readUInt32BE(0) & 0xffffff;
  const value = payload.subarray(8);
  if (type === 1) return value.toString('utf8');
  if (type === 2) return value.length % 2 === 0 ? Buffer.from(value).swap16().toString('utf16le') : summarise(value);
  return summarise(value);
}

async function boxValue(reader: RandomAccessReader, box: BoxHeader): Promise<string> {
  if (payloadSize(box) > MAX_TAG_BYTES) return `${payloadSize(box)} bytes`;
  const children = await readChildBoxes(reader, payloadStart(box), box.end).catch(() => null);
  const data = children?.filter((c) => c.type === 'data') ?? [];
  if (data.length > 0) {
    const values: string[] = [];
    for (const d of data) values.push(dataValue(await readPayload(reader, d, MAX_TAG_BYTES)));
    return values.join('; ');
  }
  return summarise(await readPayload(reader, box, MAX_TAG_BYTES));
}

/** Children of a `meta` box, which is a full box in MP4 (4 bytes of version and flags) and not always in QuickTime. */
async function metaChildren(reader: RandomAccessReader, meta: BoxHeader): Promise<BoxHeader[]> {
  const start = payloadStart(meta);
  const first = await reader.read(start, 4);
  const fullBox = first.length === 4 && first.readUInt32BE(0) === 0;
  return readChildBoxes(reader, fullBox ? start + 4 : start, meta.end);
}

/**
 * The tags of a `meta` box into `tags`: iTunes items named by ITEM_NAMES (or their type), or,
 * when a `keys` box is present (QuickTime `mdta`), items named by their key.
 */
async function readMeta(reader: RandomAccessReader, meta: BoxHeader, tags: Record<string, string>, prefix: string): Promise<void> {
  const children = await metaChildren(reader, meta);
  const keysBox = findChild(children, 'keys');
  const ilst = findChild(children, 'ilst');
  if (ilst === undefined) return;
  const keys: string[] = [];
  if (keysBox !== undefined) {
    const p = await readPayload(reader, keysBox, MAX_TAG_BYTES);
    const count = p.length >= 8 ? p.readUInt32BE(4) : 0;
    for (let at = 8, i = 0; i < count && at + 8 <= p.length; i++) {
      const size = p.readUInt32BE(at);
      if (size < 8 || at + size > p.length) break;
      keys.push(p.toString('utf8', at + 8, at + size));
      at += size;
    }
  }
  for (const item of await readChildBoxes(reader, payloadStart(ilst), ilst.end)) {
    const key = keysBox !== undefined ? (keys[Buffer.from(item.type, 'latin1').readUInt32BE(0) - 1] ?? `key#${Buffer.from(item.type, 'latin1').readUInt32BE(0)}`) : (ITEM_NAMES[item.type] ?? printable(item.type));
    tags[`${prefix}${key}`] = await boxValue(reader, item);
  }
}

/** The file's metadata tags, key -> value; null when it is not an MP4/MOV or cannot be read. */
export async function readMp4Tags(reader: RandomAccessReader): Promise<Record<string, string> | null> {
  try {
    const head = await reader.read(0, 8);
    if (head.length < 8 || !TOP_LEVEL.has(head.toString('latin1', 4, 8))) return null;
    const top = await readChildBoxes(reader, 0, reader.size);
    const moov = findChild(top, 'moov');
    if (moov === undefined) return null;
    const tags: Record<string, string> = {};
    const inMoov = await readChildBoxes(reader, payloadStart(moov), moov.end);
    const udta = findChild(inMoov, 'udta');
    if (udta !== undefined) {
      for (const atom of await readChildBoxes(reader, payloadStart(udta), udta.end)) {
        if (atom.type === 'meta') {
          await readMeta(reader, atom, tags, '');
        } else if (atom.type.startsWith('\xa9') && payloadSize(atom) <= MAX_TAG_BYTES) {
          // QuickTime text: (length u16, language u16, text) entries
          const p = await readPayload(reader, atom, MAX_TAG_BYTES);
          const len = p.length >= 4 ? p.readUInt16BE(0) : -1;
          tags[`udta/${printable(atom.type)}`] = len >= 0 && 4 + len <= p.length ? p.toString('utf8', 4, 4 + len) : summarise(p);
        } else {
          tags[`udta/${printable(atom.type)}`] = await boxValue(reader, atom);
        }
      }
    }
    const meta = findChild(inMoov, 'meta');
    if (meta !== undefined) await readMeta(reader, meta, tags, 'meta/');
    return tags;
  } catch {
    return null; // a damaged container: no tags to show (the file id still differs)
  }
}
