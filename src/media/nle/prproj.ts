/**
 * Adobe Premiere Pro project (`.prproj`): gzip-compressed XML, undocumented and
 * versioned by Adobe. Media files appear as `<Media>` objects:
 *
 *   <PremiereData Version="3">...<Media ObjectUID="...">
 *     <FilePath>/Volumes/Media/A.mov</FilePath>
 *     <ActualMediaFilePath>/Volumes/Media/A.mov</ActualMediaFilePath>
 *     <RelativePath>../Media/A.mov</RelativePath>
 *     <Title>A.mov</Title>
 *   </Media>
 *
 * `ActualMediaFilePath` (where Premiere last found the file) wins over `FilePath`;
 * `RelativePath` (relative to the project) is kept as an alternative for resolving.
 * `<Media>` objects without a path (generated titles, nested sequences) are skipped.
 */
import { gunzipSync } from 'node:zlib';
import { DitsUserError } from '../../errors.js';
import { baseName, fileUrlToPath } from './file-url.js';
import { addReference, type ProjectReference, type ProjectReferences } from './project-reference.js';
import { type XmlElement, childText, walkElements } from './xml-tree.js';

/** Gzip magic number (RFC 1952). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Decompresses a .prproj, refusing output beyond `maxBytes` (a gzip bomb guard). */
export function gunzipProject(bytes: Uint8Array, maxBytes: number): string {
  try {
    return gunzipSync(bytes, { maxOutputLength: maxBytes }).toString('utf8');
  } catch (err) {
    throw new DitsUserError('project-corrupt', `cannot decompress project: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

export function referencesFromPrproj(roots: XmlElement[]): ProjectReferences {
  const references: ProjectReference[] = [];
  const seen = new Set<string>();
  for (const el of walkElements(roots)) {
    if (el.name !== 'Media') continue;
    const actual = childText(el, 'ActualMediaFilePath');
    const file = childText(el, 'FilePath');
    const relative = childText(el, 'RelativePath');
    const main = actual ?? file ?? relative;
    if (!main) continue;
    const path = fileUrlToPath(main);
    const alternatives = [file, relative]
      .filter((p): p is string => p !== undefined)
      .map(fileUrlToPath)
      .filter((p, i, all) => p !== path && all.indexOf(p) === i);
    const ref: ProjectReference = { path, name: baseName(path), origin: 'prproj-media' };
    if (alternatives.length > 0) ref.alternatives = alternatives;
    const title = childText(el, 'Title');
    if (title && title !== ref.name) ref.clipName = title;
    addReference(references, seen, ref);
  }
  return { format: 'prproj', references };
}
