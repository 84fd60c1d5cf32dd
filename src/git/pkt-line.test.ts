import { describe, expect, it } from 'vitest';
import { FLUSH, PacketReader, encodePacket, FLUSH_PACKET, regroup } from './pkt-line.js';

async function* split(b: Buffer, n: number) {
  for (let i = 0; i < b.length; i += n) yield b.subarray(i, i + n);
}

describe('pkt-line', () => {
  it('reads packets and content pieces whatever the read sizes', async () => {
    const payload = Buffer.alloc(150_000);
    for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
    const wire = Buffer.concat([encodePacket('hello\n'), FLUSH_PACKET, encodePacket(payload.subarray(0, 65516)), encodePacket(payload.subarray(65516, 131032)), encodePacket(payload.subarray(131032)), FLUSH_PACKET]);
    for (const n of [1, 3, 4096, 65536, wire.length]) {
      const r = new PacketReader(split(wire, n));
      expect(await r.readText()).toBe('hello');
      expect(await r.read()).toBe(FLUSH);
      const parts: Buffer[] = [];
      for await (const p of r.readUntilFlush()) parts.push(Buffer.from(p));
      expect(Buffer.concat(parts).equals(payload)).toBe(true);
      expect(await r.read()).toBeNull();
    }
  });

  it('rejects a truncated packet', async () => {
    const r = new PacketReader(split(Buffer.from('0010abc'), 2));
    await expect(r.read()).rejects.toThrow(/inside a packet/);
  });

  it('regroups small pieces into large buffers, in order', async () => {
    const data = Buffer.alloc(10_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 256;
    const out: Buffer[] = [];
    for await (const b of regroup(split(data, 333), 4096)) out.push(Buffer.from(b));
    expect(out.map((b) => b.length)).toEqual([4096, 4096, 1808]);
    expect(Buffer.concat(out).equals(data)).toBe(true);
  });

  it('groups content into buffers of a fixed size whatever the packet and read sizes', async () => {
    const payload = Buffer.alloc(200_000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 13) % 256;
    const packets: Buffer[] = [];
    for (let i = 0; i < payload.length; i += 65516) packets.push(encodePacket(payload.subarray(i, i + 65516)));
    const wire = Buffer.concat([...packets.slice(0, 2), Buffer.from('0001'), encodePacket(Buffer.alloc(0)), ...packets.slice(2), FLUSH_PACKET, encodePacket('next\n')]);
    for (const n of [7, 4096, 70_000, wire.length]) {
      for (const size of [1000, 65516, 1 << 20]) {
        const r = new PacketReader(split(wire, n));
        const out: Buffer[] = [];
        for await (const b of r.readUntilFlushGrouped(size)) out.push(Buffer.from(b));
        expect(out.slice(0, -1).every((b) => b.length === size)).toBe(true);
        expect(Buffer.concat(out).equals(payload)).toBe(true);
        expect(await r.readText()).toBe('next'); // the flush was consumed, nothing more
      }
    }
  });

  it('grouped content: bad lengths and truncation are errors', async () => {
    await expect(collect(new PacketReader(split(Buffer.from('00zzabc'), 2)).readUntilFlushGrouped(16))).rejects.toThrow(/bad pkt-line length/);
    await expect(collect(new PacketReader(split(Buffer.from('0010abc'), 2)).readUntilFlushGrouped(16))).rejects.toThrow(/inside a packet/);
    await expect(collect(new PacketReader(split(Buffer.from('0007abc'), 2)).readUntilFlushGrouped(16))).rejects.toThrow(/before the flush/);
  });

  it('regroup passes pieces of exactly its size through without copying', async () => {
    const a = Buffer.alloc(4096, 1);
    const b = Buffer.alloc(4096, 2);
    async function* src() {
      yield a;
      yield b;
      yield Buffer.alloc(10, 3);
    }
    const out: Buffer[] = [];
    for await (const x of regroup(src(), 4096)) out.push(x);
    expect(out[0]).toBe(a);
    expect(out[1]).toBe(b);
    expect(out[2]!.length).toBe(10);
  });
});

async function collect(it: AsyncIterable<Buffer>): Promise<number> {
  let n = 0;
  for await (const b of it) n += b.length;
  return n;
}
