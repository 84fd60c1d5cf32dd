import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PositionalWriter } from './positional-writer.js';
import { xorshift32Bytes } from '../chunking/pseudo-random.js';

const dirs: string[] = [];
function tmpFile(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-pw-'));
  dirs.push(d);
  return path.join(d, 'f');
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Cuts `data` into pieces of varying size and returns them shuffled in runs, like concurrent ranges. */
function scattered(data: Buffer, seed: number): { pos: number; bytes: Buffer }[] {
  const pieces: { pos: number; bytes: Buffer }[] = [];
  let s = seed;
  for (let pos = 0; pos < data.length; ) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const len = Math.min(1 + (s % 5000), data.length - pos);
    pieces.push({ pos, bytes: data.subarray(pos, pos + len) });
    pos += len;
  }
  // interleave 5 "streams" of consecutive pieces
  const streams: { pos: number; bytes: Buffer }[][] = [[], [], [], [], []];
  const per = Math.ceil(pieces.length / 5);
  pieces.forEach((p, i) => streams[Math.floor(i / per)]!.push(p));
  const out: { pos: number; bytes: Buffer }[] = [];
  while (streams.some((st) => st.length)) for (const st of streams) if (st.length) out.push(st.shift()!);
  return out;
}

describe('PositionalWriter', () => {
  it('writes interleaved runs, with buffers reused by the caller, to exactly the right bytes', async () => {
    const data = xorshift32Bytes(600_000, 3);
    const file = tmpFile();
    const w = new PositionalWriter(fs.openSync(file, 'w'), { bufferSize: 16 * 1024, maxRuns: 3, maxInflight: 2 });
    const scratch = Buffer.alloc(5000);
    for (const p of scattered(data, 9)) {
      p.bytes.copy(scratch);
      w.write(scratch.subarray(0, p.bytes.length), p.pos); // the caller reuses scratch at once
      scratch.fill(0xee);
      const wait = w.backpressure();
      if (wait) await wait;
    }
    await w.drain();
    w.close();
    expect(fs.readFileSync(file).equals(data)).toBe(true);
  });

  it('flushSync completes the file while asynchronous writes are still in flight', () => {
    const data = xorshift32Bytes(200_000, 5);
    const file = tmpFile();
    const w = new PositionalWriter(fs.openSync(file, 'w'), { bufferSize: 8192, maxInflight: 1000 });
    for (let i = 0; i < data.length; i += 1000) w.write(data.subarray(i, i + 1000), i);
    w.flushSync(); // no await: the queued writes have not run yet
    expect(fs.readFileSync(file).equals(data)).toBe(true);
    w.close();
  });

  it('asks to wait once the writes in flight reach their bound', async () => {
    const w = new PositionalWriter(fs.openSync(tmpFile(), 'w'), { bufferSize: 1024, maxInflight: 2 });
    expect(w.backpressure()).toBeNull();
    w.write(Buffer.alloc(1024, 1), 0);
    w.write(Buffer.alloc(1024, 2), 1024);
    const wait = w.backpressure();
    expect(wait).toBeInstanceOf(Promise);
    await wait;
    await w.drain();
    expect(w.backpressure()).toBeNull();
    w.close();
  });

  it('reports a failed write at the next drain and flushSync', async () => {
    const file = tmpFile();
    fs.writeFileSync(file, '');
    const w = new PositionalWriter(fs.openSync(file, 'r'), { bufferSize: 1024 }); // read-only: writes fail
    w.write(Buffer.alloc(1024, 1), 0);
    await expect(w.drain()).rejects.toMatchObject({ code: 'EBADF' });
    expect(() => {
      w.write(Buffer.alloc(10, 1), 0);
      w.flushSync();
    }).toThrow();
    w.close();
  });

  it('writes borrowed bytes in place with copied ones between them, and a fence waits for them', async () => {
    const file = tmpFile();
    const data = xorshift32Bytes(300_000, 8);
    const w = new PositionalWriter(fs.openSync(file, 'w'), { bufferSize: 16 * 1024, maxInflight: 2 });
    const lent = Buffer.from(data); // the caller's buffer, changed only after the fence
    for (let at = 0, k = 0; at < data.length; k++) {
      const len = Math.min(data.length - at, 1 + ((k * 7919) % 20_000));
      if (k % 3 === 0) w.write(data.subarray(at, at + len), at); // copied (a chunk's head, say)
      else w.writeBorrowed(lent.subarray(at, at + len), at);
      at += len;
    }
    await w.fence();
    lent.fill(0); // the writes have finished: the bytes are on the file already
    await w.drain();
    w.close();
    expect(fs.readFileSync(file).equals(data)).toBe(true);
  });
});
