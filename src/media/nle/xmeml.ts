/**
 * Final Cut Pro 7 XML interchange (`xmeml`, versions 4-5), as exported by Premiere Pro
 * and Resolve. Reference: Apple "Final Cut Pro XML Interchange Format".
 *
 *   <xmeml version="4"><sequence>...<clipitem><file id="file-1"><name>A.mov</name>
 *     <pathurl>file://localhost/Volumes/Media/A.mov</pathurl>...</file>
 *
 * A file is described in full once and later only referred to by id (`<file id="file-1"/>`),
 * so every `pathurl` is collected, wherever it sits.
 */
import { baseName, fileUrlToPath } from './file-url.js';
import { addReference, type ProjectReference, type ProjectReferences } from './project-reference.js';
import { type XmlElement, childText, walkElements } from './xml-tree.js';

export function referencesFromXmeml(roots: XmlElement[]): ProjectReferences {
  const references: ProjectReference[] = [];
  const seen = new Set<string>();
  for (const el of walkElements(roots)) {
    const url = childText(el, 'pathurl');
    if (!url) continue;
    const path = fileUrlToPath(url);
    const name = baseName(path);
    const ref: ProjectReference = { path, name, origin: 'xmeml-pathurl' };
    const clipName = childText(el, 'name');
    if (clipName && clipName !== name) ref.clipName = clipName;
    addReference(references, seen, ref);
  }
  return { format: 'xmeml', references };
}
