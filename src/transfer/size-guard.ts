/**
 * A pass-through that holds a streamed upload to the size announced for it (the request's
 * Content-Length). A body that runs longer fails at the first byte too many; one that ends
 * short fails at its end; either way the request is cut, not ended, so the receiver neither
 * waits for bytes that never come nor stores a body cut to the announced size.
 *
 * The piece that reaches the announced size is held back until the body has ended: sent on,
 * it would complete the request, and the receiver could store the object before the extra
 * bytes arrived.
 */
import { Transform } from 'node:stream';

export function sizeGuard(expected: number, mismatch: (seen: number) => Error): Transform {
  let seen = 0;
  let last: Buffer | null = null;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > expected) return done(mismatch(seen));
      if (seen === expected && expected > 0) {
        last = chunk;
        return done();
      }
      done(null, chunk);
    },
    flush(done) {
      if (seen !== expected) return done(mismatch(seen));
      done(null, last ?? undefined);
    },
  });
}
