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

describe('media analysis from the bytes git sent first', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-ma-head-'));
  const ftyp = box('ftyp', Buffer.from('isom\0\0\x02\0isomiso2', 'latin1'));
  const mdat = box('mdat', Buffer.alloc(5000, 7));

  it('gives the same plan as reading the file, for a container and for a file that is not one', async () => {
    const cases = [Buffer.concat([ftyp, mdat.subarray(0, 1000), Buffer.alloc(4096, 0xee), mdat.subarray(1000)]), Buffer.alloc(300_000, 0x42)];
    for (const [i, bytes] of cases.entries()) {
      const file = path.join(dir, `f${i}`);
      fs.writeFileSync(file, bytes);
      const fromFile = await analyzeForIngest(file);
      for (const headLength of [16, 1025, 65536]) {
        const fromHead = await analyzeForIngest(file, { head: bytes.subarray(0, headLength), size: bytes.length });
        expect(fromHead).toEqual(fromFile);
      }
    }
  });

  it('opens the file only to read past the head: a file that is not a container needs none', async () => {
    const gone = path.join(dir, 'never-written');
    const plain = Buffer.alloc(64 * 1024, 0x42); // what the analysis reads first
    const a = await analyzeForIngest(gone, { head: plain, size: 300_000 });
    expect(a?.cutPlan).toBeUndefined();
    expect(a?.fallback).toBeTruthy();
    expect(a).toEqual(await analyzeForIngest(path.join(dir, 'plain'), { head: plain, size: 300_000 }));
  });
});
