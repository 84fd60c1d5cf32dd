/**
 * CMX 3600 edit decision lists, with the comment lines Avid, Premiere and Resolve add.
 *
 *   TITLE: Cut 3
 *   FCM: DROP FRAME
 *   001  A001C003 V     C        01:00:00:00 01:00:04:00 00:00:00:00 00:00:04:00
 *   * FROM CLIP NAME: A001C003.mov
 *   * SOURCE FILE: /Volumes/Media/A001C003.mov
 *   002  AX       AA/V  D    012 ...
 *   * TO CLIP NAME: B.mov
 *
 * Per event, the best name for the media is the SOURCE FILE comment, else the clip name
 * (FROM/TO CLIP NAME), else the reel when it is a real reel (not AX = auxiliary or BL = black).
 */
import { baseName, fileUrlToPath } from './file-url.js';
import { addReference, type ProjectReference, type ProjectReferences } from './project-reference.js';

const EVENT = /^(\d{1,6})\s+(\S+)\s+(\S+)\s+(C|D|W\d{3}|K[BO]?|\S+)\s/;
const COMMENT = /^\*\s*(FROM CLIP NAME|TO CLIP NAME|SOURCE FILE|CLIP NAME)\s*:\s*(.*?)\s*$/i;

interface PendingEvent {
  number: string;
  /** Reels of the event's lines (a dissolve has two lines with the same number). */
  reels: string[];
  clipNames: string[];
  sourceFiles: string[];
}

function isRealReel(reel: string): boolean {
  return reel !== '' && !/^(AX|BL|BLACK|AUX)$/i.test(reel);
}

/** True when `text` looks like a CMX3600 EDL (a TITLE: line or an event line early on). */
export function looksLikeEdl(text: string): boolean {
  const head = text.slice(0, 4096).split(/\r?\n/);
  return head.some((l) => /^TITLE:/i.test(l)) || head.some((l) => EVENT.test(l.trim() + ' ') && /\d\d:\d\d:\d\d[:;]\d\d/.test(l));
}

export function referencesFromEdl(text: string): ProjectReferences {
  const references: ProjectReference[] = [];
  const seen = new Set<string>();
  let event: PendingEvent | undefined;
  const flush = (): void => {
    if (!event) return;
    const reels = event.reels.filter(isRealReel);
    const clip = event.clipNames[0];
    for (const [i, file] of event.sourceFiles.entries()) {
      const path = fileUrlToPath(file);
      const ref: ProjectReference = { path, name: baseName(path), origin: 'edl-source-file' };
      const clipName = event.clipNames[i] ?? (event.sourceFiles.length === 1 ? clip : undefined);
      if (clipName && clipName !== ref.name) ref.clipName = clipName;
      const reel = reels[i];
      if (reel) ref.reel = reel;
      addReference(references, seen, ref);
    }
    if (event.sourceFiles.length === 0) {
      for (const [i, name] of event.clipNames.entries()) {
        const ref: ProjectReference = { path: name, name: baseName(name), origin: 'edl-clip-name' };
        const reel = reels[i];
        if (reel) ref.reel = reel;
        addReference(references, seen, ref);
      }
      if (event.clipNames.length === 0) {
        for (const reel of reels) addReference(references, seen, { path: reel, name: reel, origin: 'edl-reel', reel });
      }
    }
    event = undefined;
  };
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '') continue;
    const e = EVENT.exec(line + ' ');
    if (e && /\d\d:\d\d:\d\d[:;]\d\d/.test(line)) {
      if (event && event.number === e[1]) {
        event.reels.push(e[2]!);
      } else {
        flush();
        event = { number: e[1]!, reels: [e[2]!], clipNames: [], sourceFiles: [] };
      }
      continue;
    }
    const c = COMMENT.exec(line);
    if (c && event && c[2]) {
      if (/SOURCE FILE/i.test(c[1]!)) event.sourceFiles.push(c[2]);
      else event.clipNames.push(c[2]);
    }
  }
  flush();
  return { format: 'edl', references };
}
