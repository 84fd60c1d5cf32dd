import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { analyzeForIngest } from './media-analysis.js';

function box(type: string, payload: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + payload.length, 0);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, payload]);
}

describe('media analysis for ingest', () => {
  it('still splits at the mdat payload of a container that no longer parses (bytes inserted by hand)', async () => {
    const ftyp = box('ftyp', Buffer.from('isom\0\0\x02\0isomiso2', 'latin1'));
    const mdat = box('mdat', Buffer.alloc(5000, 7));
    // 4 KiB inserted inside mdat: its declared size now ends in the middle of the payload,
    // and what follows is not a box.
    const damaged = Buffer.concat([ftyp, mdat.subarray(0, 1000), Buffer.alloc(4096, 0xee), mdat.subarray(1000)]);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dits-ma-')), 'x.mp4');
    fs.writeFileSync(file, damaged);
    const a = await analyzeForIngest(file);
    expect(a?.fallback).toBeTruthy();
    expect(a?.media).toBeNull();
    expect(Array.from(a!.cutPlan!.forced)).toEqual([ftyp.length + 8]);
    fs.writeFileSync(file, Buffer.from('plain text, not a container'));
    expect((await analyzeForIngest(file))?.cutPlan).toBeUndefined();
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  });
});
