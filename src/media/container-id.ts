/**
 * Containers recognised by their first bytes but not parsed (yet). Kept apart from the
 * parser so that the filter can tell a plain file without loading it (filter/media-sniff.ts).
 */

/** SMPTE universal label prefix of an MXF partition pack key (SMPTE 377M). */
const MXF_PARTITION_KEY = Buffer.from([0x06, 0x0e, 0x2b, 0x34, 0x02, 0x05, 0x01, 0x01, 0x0d, 0x01, 0x02]);

/**
 * Names containers we recognise but do not parse yet, as the fallback reason shown by
 * `git dits inspect`. Returns undefined when the bytes are none of them.
 */
export function identifyOtherContainer(head: Buffer): string | undefined {
  // MXF may have a run-in of up to 64 KiB before the header partition key.
  const mxfAt = head.indexOf(MXF_PARTITION_KEY);
  if (mxfAt >= 0 && mxfAt < 65536) {
    return 'MXF: plain chunking for now';
  }
  if (head.length >= 4 && head.readUInt32BE(0) === 0x1a45dfa3) return 'Matroska/WebM: plain chunking for now';
  if (head.length >= 12 && head.toString('latin1', 0, 4) === 'RIFF') {
    const form = head.toString('latin1', 8, 12).trim();
    return `RIFF ${form} (${form === 'WAVE' ? 'WAV' : form === 'AVI' ? 'AVI' : 'RIFF'}): plain chunking for now`;
  }
  if (head.length >= 4 && head.toString('latin1', 0, 4) === 'FORM') return 'AIFF: plain chunking for now';
  if (head.length >= 4 && head.readUInt32BE(0) === 0x000001ba) return 'MPEG program stream: plain chunking for now';
  if (head.length >= 188 * 3 && head[0] === 0x47 && head[188] === 0x47 && head[376] === 0x47) {
    return 'MPEG transport stream: plain chunking for now';
  }
  if (head.length >= 4 && head.toString('latin1', 0, 4) === 'RED2') return 'REDCODE R3D: plain chunking for now';
  return undefined;
}
