import { describe, expect, it } from 'vitest';
import { CasLog, type CasLogBackend } from './cas-log.js';

/**
 * A plain object store with random latency per call, so concurrent proposers interleave
 * differently on every run; `hooks` let a test stall or crash one proposer's writes.
 */
class SlowMapBackend implements CasLogBackend {
  readonly objects = new Map<string, Buffer>();
  puts = 0;
  beforePut?: (key: string) => Promise<void>;

  constructor(private readonly maxDelayMs: number) {}

  private delay(): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, Math.random() * this.maxDelayMs));
  }

  async putRaw(key: string, body: Buffer): Promise<void> {
    await this.beforePut?.(key);
    await this.delay();
    this.puts += 1;
    this.objects.set(key, Buffer.from(body));
  }

  async getRaw(key: string): Promise<Buffer | null> {
    await this.delay();
    return this.objects.get(key) ?? null;
  }

  async *listRaw(prefix: string): AsyncIterable<string> {
    await this.delay();
    // a snapshot in random order: the log must not depend on listing order
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort(() => Math.random() - 0.5);
    for (const key of keys) yield key;
  }

  async deleteRaw(key: string): Promise<void> {
    await this.delay();
    this.objects.delete(key);
  }
}

const fastSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.min(ms, 5)));

describe('CasLog (compare-and-swap without conditional writes)', () => {
  it('exactly one of many concurrent writers wins, over many rounds', async () => {
    const backend = new SlowMapBackend(3);
    const log = new CasLog(backend, { root: 'cas/', sleep: fastSleep });
    let etag: { etag: string } | 'absent' = 'absent';
    for (let round = 0; round < 40; round++) {
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => log.putIf('refs/main', Buffer.from(`r${round}-w${i}`), etag)));
      const winners = results.flatMap((r, i) => (r.ok ? [i] : []));
      expect(winners, `round ${round}`).toHaveLength(1);
      const current = await log.getVersioned('refs/main');
      expect(current?.body.toString()).toBe(`r${round}-w${winners[0]}`);
      for (const r of results) if (!r.ok) expect(r.current?.etag).toBe(current?.etag);
      etag = { etag: current!.etag };
    }
  });

  it('loses no increment under contention', async () => {
    const backend = new SlowMapBackend(2);
    const log = new CasLog(backend, { root: 'cas/', sleep: fastSleep });
    await log.putIf('counter', Buffer.from('0'), 'absent');
    await Promise.all(
      Array.from({ length: 5 }, async () => {
        for (let done = 0; done < 8; ) {
          const cur = await log.getVersioned('counter');
          if ((await log.putIf('counter', Buffer.from(String(Number(cur!.body.toString()) + 1)), { etag: cur!.etag })).ok) done += 1;
        }
      }),
    );
    expect((await log.getVersioned('counter'))?.body.toString()).toBe('40');
  });

  it('a writer that crashed midway neither blocks the key nor flips it later', async () => {
    const backend = new SlowMapBackend(1);
    const log = new CasLog(backend, { root: 'cas/', sleep: fastSleep });
    const first = await log.putIf('ref', Buffer.from('v1'), 'absent');
    expect(first.ok).toBe(true);
    // this writer dies after its phase-2 write (it accepted "crashed" but never wrote d)
    backend.beforePut = async (key) => {
      if (key.endsWith('/d')) throw new Error('process killed');
    };
    await expect(log.putIf('ref', Buffer.from('crashed'), { etag: first.ok ? first.etag : '' })).rejects.toThrow('process killed');
    backend.beforePut = undefined;
    // a reader finishes the slot: the accepted value may win (it was accepted), and from
    // then on every read agrees
    const seen = await log.getVersioned('ref');
    expect(['v1', 'crashed']).toContain(seen?.body.toString());
    for (let i = 0; i < 3; i++) expect((await log.getVersioned('ref'))?.body.toString()).toBe(seen?.body.toString());
    const next = await log.putIf('ref', Buffer.from('v3'), { etag: seen!.etag });
    expect(next.ok).toBe(true);
    expect((await log.getVersioned('ref'))?.body.toString()).toBe('v3');
  });

  it('a writer stalled across many updates never reports a stale win', async () => {
    const backend = new SlowMapBackend(0);
    const log = new CasLog(backend, { root: 'cas/', sleep: fastSleep });
    const created = await log.putIf('ref', Buffer.from('v0'), 'absent');
    if (!created.ok) throw new Error('setup');
    // the sleeper stalls before its first write...
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let stalled = false;
    backend.beforePut = async () => {
      if (!stalled) {
        stalled = true;
        await gate;
      }
    };
    const sleeper = log.putIf('ref', Buffer.from('stale'), { etag: created.etag });
    // wait until it really stalls (a fixed few milliseconds were not always enough on a busy machine)
    while (!stalled) await new Promise((resolve) => setTimeout(resolve, 1));
    backend.beforePut = undefined;
    // ...while 70 other updates go through (older slots get pruned)
    let etag = created.etag;
    for (let i = 1; i <= 70; i++) {
      const r = await log.putIf('ref', Buffer.from(`v${i}`), { etag });
      if (!r.ok) throw new Error(`update ${i} failed`);
      etag = r.etag;
    }
    release();
    const result = await sleeper;
    expect(result.ok).toBe(false);
    expect((await log.getVersioned('ref'))?.body.toString()).toBe('v70');
    // pruning keeps the log short
    expect([...backend.objects.keys()].filter((k) => k.startsWith('cas/ref/')).length).toBeLessThan(80);
  });
});
