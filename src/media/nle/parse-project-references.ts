/**
 * `parseProjectReferences`: which media files an editing project needs.
 *
 * The format is found from the bytes first (gzip magic -> .prproj; the XML root element
 * -> fcpxml / xmeml / PremiereData; CMX3600 event lines -> EDL), then from the file
 * name. A Final Cut Pro bundle (`X.fcpxmld/`) is read through its `Info.fcpxml`.
 * Unknown or damaged projects throw `DitsUserError` ('project-format-unknown' /
 * 'project-corrupt'); they never return a partial list silently.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { DitsUserError } from '../../errors.js';
import { referencesFromEdl, looksLikeEdl } from './edl.js';
import { referencesFromFcpxml } from './fcpxml.js';
import { gunzipProject, isGzip, referencesFromPrproj } from './prproj.js';
import type { ProjectReferences } from './project-reference.js';
import { parseXml, rootElement } from './xml-tree.js';
import { referencesFromXmeml } from './xmeml.js';

export interface ParseProjectOptions {
  /** Largest decompressed .prproj accepted, in bytes. Default 1 GiB. */
  maxDecompressedBytes?: number;
}

export interface ProjectInput {
  /** File name (for messages and as a format hint); only the extension matters. */
  name: string;
  bytes: Uint8Array;
}

/** Reads `input` (a path, or name + bytes already in memory) and lists its media references. */
export async function parseProjectReferences(input: string | ProjectInput, options: ParseProjectOptions = {}): Promise<ProjectReferences> {
  if (typeof input !== 'string') return parseProjectBytes(input.name, input.bytes, options);
  let path = input;
  if ((await stat(path)).isDirectory()) {
    // Final Cut Pro 10.6+ exports a bundle directory with the document inside.
    path = join(path, 'Info.fcpxml');
  }
  return parseProjectBytes(basename(input), await readFile(path), options);
}

/** Pure form of `parseProjectReferences`. */
export function parseProjectBytes(name: string, bytes: Uint8Array, options: ParseProjectOptions = {}): ProjectReferences {
  if (isGzip(bytes)) {
    const xml = gunzipProject(bytes, options.maxDecompressedBytes ?? 1024 * 1024 * 1024);
    const roots = parseXml(xml, name);
    const root = rootElement(roots);
    if (root?.name !== 'PremiereData') {
      throw new DitsUserError('project-format-unknown', `${name}: gzip-compressed, but not a Premiere Pro project (root <${root?.name ?? 'none'}>)`);
    }
    return referencesFromPrproj(roots);
  }
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8').replace(/^\uFEFF/, '');
  if (/^\s*</.test(text)) {
    const roots = parseXml(text, name);
    const root = rootElement(roots);
    switch (root?.name) {
      case 'fcpxml':
        return referencesFromFcpxml(roots);
      case 'xmeml':
        return referencesFromXmeml(roots);
      case 'PremiereData':
        return referencesFromPrproj(roots);
      default:
        throw new DitsUserError('project-format-unknown', `${name}: XML with root <${root?.name ?? 'none'}> is not a known project format`, {
          hint: 'Supported: FCPXML (.fcpxml, .fcpxmld), Premiere/FCP7 XML (xmeml), CMX3600 EDL, Premiere .prproj',
        });
    }
  }
  if (/\.edl$/i.test(name) || looksLikeEdl(text)) return referencesFromEdl(text);
  throw new DitsUserError('project-format-unknown', `${name}: not a known project format`, {
    hint: 'Supported: FCPXML (.fcpxml, .fcpxmld), Premiere/FCP7 XML (xmeml), CMX3600 EDL, Premiere .prproj',
  });
}
