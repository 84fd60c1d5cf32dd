/** Types shared by the NLE project parsers. */

export type ProjectFormat = 'fcpxml' | 'xmeml' | 'edl' | 'prproj';

export type ReferenceOrigin =
  | 'fcpxml-asset-src'
  | 'fcpxml-media-rep'
  | 'xmeml-pathurl'
  | 'edl-source-file'
  | 'edl-clip-name'
  | 'edl-reel'
  | 'prproj-media';

export interface ProjectReference {
  /**
   * The media as the project names it, URL-decoded: an absolute path (from the editor's
   * machine), a path relative to the project, or (EDL) only a clip or reel name.
   */
  path: string;
  /** Last component of `path`. */
  name: string;
  origin: ReferenceOrigin;
  /** Other spellings of the same media the project also stores (prproj RelativePath). */
  alternatives?: string[];
  /** The clip's name in the project, when it differs from the file name. */
  clipName?: string;
  /** EDL reel (tape) name. */
  reel?: string;
}

export interface ProjectReferences {
  format: ProjectFormat;
  /** Distinct references, in the order the project first mentions them. */
  references: ProjectReference[];
}

/** Appends `ref` unless a reference with the same path is already there. */
export function addReference(list: ProjectReference[], seen: Set<string>, ref: ProjectReference): void {
  if (ref.path === '' || seen.has(ref.path)) return;
  seen.add(ref.path);
  list.push(ref);
}
