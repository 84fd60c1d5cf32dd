/**
 * Where content lives on a remote (format v1), as keys under the storage's root:
 *
 *   v1/objects/<id[0:2]>/<id[2:]>   manifest bytes, keyed by manifest id
 *   v1/packs/<packId>.pack           chunks back to back, the local pack format (pack-format.ts)
 *   v1/packs/<packId>.idx            the pack's index (pack-index.ts); packId = BLAKE3 of these bytes
 *   v1/locations/<id[0:2]>/<id[2:]>  where each chunk of manifest <id> lies (location-table.ts): a
 *                                    hint for readers of one file, written after the packs it names
 *
 * An .idx is uploaded only after its .pack, so an .idx names a complete pack. `v1/format.json`
 * and the git side belong to src/remote/ (not written here). See README.md.
 */
import { isId } from '../../hashing/blake3.js';

export const PACKS_PREFIX = 'v1/packs/';
export const OBJECTS_PREFIX = 'v1/objects/';

export function manifestKey(id: string): string {
  return `${OBJECTS_PREFIX}${id.slice(0, 2)}/${id.slice(2)}`;
}

export function packKey(packId: string): string {
  return `${PACKS_PREFIX}${packId}.pack`;
}

export function indexKey(packId: string): string {
  return `${PACKS_PREFIX}${packId}.idx`;
}

/** `{ packId, kind }` for a key under v1/packs/, or null for anything else. */
export function parsePackKey(key: string): { packId: string; kind: 'pack' | 'idx' } | null {
  if (!key.startsWith(PACKS_PREFIX)) return null;
  const name = key.slice(PACKS_PREFIX.length);
  const m = /^([0-9a-f]{64})\.(pack|idx)$/.exec(name);
  if (!m || !isId(m[1]!)) return null;
  return { packId: m[1]!, kind: m[2] as 'pack' | 'idx' };
}
