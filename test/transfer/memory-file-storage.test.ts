import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { FileStorage } from '../../src/transfer/file-storage.js';
import { MemoryStorage } from '../../src/transfer/memory-storage.js';
import { describeStorageContract } from './storage-contract.js';

const options = { manyKeys: 1100, bigBodyBytes: 8 * 1024 * 1024 + 12345, casWriters: 8, casIncrements: 5 };

describeStorageContract('MemoryStorage', async () => ({ storage: new MemoryStorage() }), options);

describeStorageContract(
  'FileStorage',
  async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'dits-file-storage-'));
    return { storage: new FileStorage(path.join(root, 'remote')), cleanup: () => rm(root, { recursive: true, force: true }) };
  },
  options,
);
