import { describe, expect, it } from 'vitest';
import { openStorage, parseStorageUrl, s3OptionsFromGitConfig } from './storage-url.js';

describe('parseStorageUrl', () => {
  it('parses the three forms', () => {
    expect(parseStorageUrl('s3://team-media/projects/film')).toEqual({ kind: 's3', bucket: 'team-media', prefix: 'projects/film' });
    expect(parseStorageUrl('s3://team-media')).toEqual({ kind: 's3', bucket: 'team-media', prefix: '' });
    expect(parseStorageUrl('s3://team-media/p/')).toEqual({ kind: 's3', bucket: 'team-media', prefix: 'p' });
    expect(parseStorageUrl('file:///mnt/nas/project')).toEqual({ kind: 'file', path: '/mnt/nas/project' });
    expect(parseStorageUrl('/mnt/nas/project')).toEqual({ kind: 'file', path: '/mnt/nas/project' });
    expect(parseStorageUrl('./remote', '/home/me')).toEqual({ kind: 'file', path: '/home/me/remote' });
  });

  it('refuses typos with a hint', () => {
    const cases: [string, RegExp][] = [
      ['s4://bucket/p', /unknown scheme "s4:" \(did you mean "s3:"\?\)/],
      ['fil:///x', /did you mean "file:"/],
      ['s3://', /missing bucket/],
      ['s3:///prefix', /missing bucket/],
      ['s3:/bucket', /two slashes/],
      ['s3://b/p', /not a valid bucket name/],
      ['s3://bucket/a//b', /empty, "." or ".." segment/],
      ['bucket/prefix', /no scheme/],
      ['', /empty/],
      ['https://server/project', /not supported/],
    ];
    for (const [url, why] of cases) {
      let err: unknown;
      try {
        parseStorageUrl(url);
      } catch (e) {
        err = e;
      }
      expect(err, url).toMatchObject({ code: 'bad-storage-url' });
      expect((err as Error).message, url).toMatch(why);
      expect((err as { hint?: string }).hint, url).toBeTruthy();
    }
  });

  it('opens file and S3 storages', async () => {
    expect((await openStorage('/tmp/dits-x')).location).toBe('/tmp/dits-x');
    const s3 = await openStorage('s3://bucket-a/pre', { s3: { region: 'eu-west-1', endpoint: 'http://127.0.0.1:1' } });
    expect(s3.location).toBe('s3://bucket-a/pre/');
  });
});

describe('s3OptionsFromGitConfig', () => {
  it('maps dits.s3.* values', () => {
    expect(
      s3OptionsFromGitConfig({
        'dits.s3.endpoint': 'https://s3.example.com',
        'dits.s3.region': 'eu-central-1',
        'dits.s3.pathstyle': 'true',
        'dits.s3.profile': 'media',
        'dits.s3.conditionalWrites': 'off',
      }),
    ).toEqual({ endpoint: 'https://s3.example.com', region: 'eu-central-1', forcePathStyle: true, profile: 'media', conditionalWrites: 'off' });
    expect(s3OptionsFromGitConfig({ 'dits.s3.conditionalWrites': 'auto' })).toEqual({ conditionalWrites: 'auto' });
    expect(() => s3OptionsFromGitConfig({ 'dits.s3.endpoint': 's3.example.com' })).toThrow(/not an http\(s\) URL/);
    expect(() => s3OptionsFromGitConfig({ 'dits.s3.pathStyle': 'maybe' })).toThrow(/not a boolean/);
  });
});
