/**
 * FCPXML (Final Cut Pro X, DaVinci Resolve export), versions 1.0-1.11.
 * Reference: Apple "FCPXML Reference" (developer.apple.com/documentation/professional_video_applications/fcpxml_reference).
 *
 *   <fcpxml version="1.8"><resources><asset id="r2" name="A" src="file:///..."/>...
 *   <fcpxml version="1.10"><resources><asset id="r2" name="A"><media-rep kind="original-media" src="file:///..."/></asset>
 *
 * Only original media is reported; `proxy-media` reps are derived files the editor rebuilds.
 */
import { baseName, fileUrlToPath } from './file-url.js';
import { addReference, type ProjectReference, type ProjectReferences } from './project-reference.js';
import { type XmlElement, walkElements } from './xml-tree.js';

export function referencesFromFcpxml(roots: XmlElement[]): ProjectReferences {
  const references: ProjectReference[] = [];
  const seen = new Set<string>();
  for (const el of walkElements(roots)) {
    if (el.name !== 'asset') continue;
    const clipName = el.attributes['name'];
    const reps = el.children.filter((c) => c.name === 'media-rep' && (c.attributes['kind'] ?? 'original-media') === 'original-media');
    const sources: Array<[string, ProjectReference['origin']]> = [];
    if (el.attributes['src']) sources.push([el.attributes['src'], 'fcpxml-asset-src']);
    for (const rep of reps) if (rep.attributes['src']) sources.push([rep.attributes['src'], 'fcpxml-media-rep']);
    for (const [src, origin] of sources) {
      const path = fileUrlToPath(src);
      const name = baseName(path);
      const ref: ProjectReference = { path, name, origin };
      if (clipName && clipName !== name) ref.clipName = clipName;
      addReference(references, seen, ref);
    }
  }
  return { format: 'fcpxml', references };
}
