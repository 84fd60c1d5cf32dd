/**
 * Chunk ids and file ids: BLAKE3-256 of the plain bytes, as 64 lowercase hex digits.
 * Native binding (@napi-rs/blake-hash, about 5 GB/s here); ids never depend on
 * compression, packing or where the bytes are stored.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const native = require('@napi-rs/blake-hash') as {
  blake3(input: Uint8Array): Buffer;
  Blake3Hasher: new () => { update(input: Uint8Array): unknown; digestBuffer(): Buffer };
};

export const ID_HEX_LENGTH = 64;
const ID_PATTERN = /^[0-9a-f]{64}$/;

/** BLAKE3-256 of `data` as raw 32 bytes. */
export function hashBytes(data: Uint8Array): Buffer {
  return native.blake3(data);
}

/** BLAKE3-256 of `data` as a hex id. */
export function hashHex(data: Uint8Array): string {
  return native.blake3(data).toString('hex');
}

export function isId(value: string): boolean {
  return ID_PATTERN.test(value);
}

/** Incremental hasher for whole-file ids; feed it in order, read once. */
export class StreamHasher {
  private readonly hasher = new native.Blake3Hasher();
  private bytes = 0;

  update(data: Uint8Array): void {
    this.hasher.update(data);
    this.bytes += data.length;
  }

  get length(): number {
    return this.bytes;
  }

  digestHex(): string {
    return this.hasher.digestBuffer().toString('hex');
  }
}
