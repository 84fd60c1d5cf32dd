import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { comparableUrl, lastFetchedRemote } from './remote-fetch.js';

describe('lastFetchedRemote', () => {
  it('finds the remote FETCH_HEAD names, as git writes the URL (no credentials, trailing slash or .git)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-fetch-head-'));
    try {
      const remotes = [
        { name: 'origin', url: 's3://media/film' },
        { name: 'server', url: 'https://alice:secret@dits.example.com/team/film.git/' },
      ];
      fs.writeFileSync(path.join(dir, 'FETCH_HEAD'), `${'a'.repeat(40)}\t\tbranch 'main' of dits::https://dits.example.com/team/film\n`);
      expect(lastFetchedRemote(dir, remotes)?.name).toBe('server');
      fs.writeFileSync(path.join(dir, 'FETCH_HEAD'), `${'a'.repeat(40)}\tnot-for-merge\tbranch 'x' of dits::s3://media/film\n`);
      expect(lastFetchedRemote(dir, remotes)?.name).toBe('origin');
      expect(lastFetchedRemote(dir, remotes, Date.now() + 3600_000)).toBeNull(); // stale
      fs.rmSync(path.join(dir, 'FETCH_HEAD'));
      expect(lastFetchedRemote(dir, remotes)).toBeNull();
      expect(comparableUrl('dits::file:///mnt/nas/p/')).toBe('file:///mnt/nas/p');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
