import { describe, expect, it } from 'vitest';
import { FLUSH, PacketReader, encodePacket, FLUSH_PACKET } from './pkt-line.js';

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

  it('reads content straight into buffers, mixed with pieces, and stops at the flush', async () => {
    const payload = Buffer.alloc(200_000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) % 253;
    const packets: Buffer[] = [];
    for (let i = 0; i < payload.length; i += 65516) packets.push(encodePacket(payload.subarray(i, i + 65516)));
    const wire = Buffer.concat([...packets, FLUSH_PACKET, encodePacket('after\n'), FLUSH_PACKET]);
    for (const n of [1, 5, 65536, wire.length]) {
      const r = new PacketReader(split(wire, n));
      r.beginContent();
      const first = await r.readContentPiece(1000); // a piece first, as the filter's peek does
      const out = Buffer.alloc(payload.length + 10);
      let got = first!.length;
      Buffer.from(first!).copy(out, 0);
      for (let k = await r.readContentInto(out.subarray(got, got + 70_001)); k > 0; k = await r.readContentInto(out.subarray(got, got + 70_001))) got += k;
      expect(got).toBe(payload.length);
      expect(out.subarray(0, got).equals(payload)).toBe(true);
      expect(r.contentDone).toBe(true);
      expect(await r.readContentInto(out)).toBe(0); // nothing past the flush is taken
      expect(await r.readText()).toBe('after');
    }
  });

  it('rejects a truncated packet', async () => {
    const r = new PacketReader(split(Buffer.from('0010abc'), 2));
    await expect(r.read()).rejects.toThrow(/inside a packet/);
  });
});
