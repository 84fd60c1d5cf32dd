import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { sniffPlainFile } from './media-sniff.js';
import { analyzeForIngest } from './media-analysis.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-sniff-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function box(type: string, payload: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + payload.length, 0);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, payload]);
}

const riff = (form: string) => Buffer.concat([Buffer.from('RIFF'), Buffer.from([0x24, 0x80, 0x9a, 0x01]), Buffer.from(form), randomBytes(200_000)]);
const mxf = Buffer.concat([Buffer.alloc(30, 0xff), Buffer.from([0x06, 0x0e, 0x2b, 0x34, 0x02, 0x05, 0x01, 0x01, 0x0d, 0x01, 0x02]), randomBytes(100_000)]);

/** Files the parser would not take, each answered here without it. */
const PLAIN: Record<string, Buffer> = {
  'random bytes': randomBytes(300_000),
  'random bytes after a digit (the bench file)': Buffer.concat([Buffer.from('0'), Buffer.from([0x80, 0x81, 0x82, 0x83, 0x84, 0x85]), randomBytes(100_000)]),
  WAV: riff('WAVE'),
  AVI: riff('AVI '),
  MXF: mxf,
  Matroska: Buffer.concat([Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0x01, 0x00, 0x00, 0x00]), randomBytes(5000)]),
  'MPEG transport stream': Buffer.concat(Array.from({ length: 8 }, () => Buffer.concat([Buffer.from([0x47, 0x01, 0x00, 0x10]), Buffer.alloc(184, 0xff)]))),
  'empty file': Buffer.alloc(0),
  'five bytes': Buffer.from('abcde'),
};

/** Files the parser must look at (a plausible box type at bytes 4..8). */
const PARSER: Record<string, Buffer> = {
  'text (its bytes 4..8 look like a box type)': Buffer.from('plain text, not a container, '.repeat(100)),
  MP4: Buffer.concat([box('ftyp', Buffer.from('isom\0\0\x02\0isomiso2', 'latin1')), box('mdat', Buffer.alloc(5000, 7))]),
  'an unknown box, then mdat': Buffer.concat([box('abcd', Buffer.alloc(100)), box('mdat', Buffer.alloc(5000, 7))]),
};

describe('sniffPlainFile', () => {
  it.each(Object.keys(PLAIN))('answers for %s exactly what the parser answers', async (name) => {
    const file = path.join(dir, `plain-${Object.keys(PLAIN).indexOf(name)}`);
    fs.writeFileSync(file, PLAIN[name]!);
    const quick = sniffPlainFile(file);
    expect(quick).toBeDefined();
    expect(quick).toEqual(await analyzeForIngest(file));
    // from the bytes git sent first (the clean filter's head: 64 KiB or the whole content), no open
    const bytes = PLAIN[name]!;
    const known = { head: bytes.subarray(0, 64 * 1024 + 100), size: bytes.length };
    expect(sniffPlainFile(path.join(dir, 'not-there'), known)).toEqual(quick);
  });

  it.each(Object.keys(PARSER))('leaves %s to the parser', (name) => {
    const file = path.join(dir, `parser-${Object.keys(PARSER).indexOf(name)}`);
    fs.writeFileSync(file, PARSER[name]!);
    expect(sniffPlainFile(file)).toBeUndefined();
    expect(sniffPlainFile(file, { head: PARSER[name]!, size: PARSER[name]!.length })).toBeUndefined();
  });

  it('leaves a file it cannot open to the parser (which says there is no analysis)', async () => {
    const file = path.join(dir, 'missing');
    expect(sniffPlainFile(file)).toBeUndefined();
    expect(await analyzeForIngest(file)).toBeNull();
  });
});
