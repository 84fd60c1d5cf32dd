/**
 * lifecycleConfiguration: the rules are what AWS documents (checked field by field), and
 * the AWS SDK serialises them into a PutBucketLifecycleConfiguration that the Glacier
 * front stores and answers back unchanged.
 */
import { createRequire } from 'node:module';
import type * as S3Sdk from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGlacierFront, type GlacierFront } from '../transfer/testing/glacier-front.js';
import { startS3rver, type RunningS3rver } from '../transfer/testing/s3rver.js';
import { lifecycleConfiguration, lifecycleProblems } from './lifecycle-config.js';
import { providerProfile } from './tiers.js';

const sdk = createRequire(import.meta.url)('@aws-sdk/client-s3') as typeof S3Sdk;
const AGES = { warmAfterDays: 30, coldAfterDays: 180, deepAfterDays: 730 };

describe('lifecycleConfiguration', () => {
  it('one tag-filtered rule per colder tier, limited to the remote’s packs, and one that aborts unfinished uploads', () => {
    expect(lifecycleConfiguration(providerProfile('aws'), AGES, { prefix: '/team/film/' })).toEqual({
      Rules: [
        {
          ID: 'dits-tier-warm',
          Status: 'Enabled',
          Filter: { And: { Prefix: 'team/film/v1/packs/', Tags: [{ Key: 'dits-tier', Value: 'warm' }] } },
          Transitions: [{ Days: 30, StorageClass: 'STANDARD_IA' }],
        },
        {
          ID: 'dits-tier-cold',
          Status: 'Enabled',
          Filter: { And: { Prefix: 'team/film/v1/packs/', Tags: [{ Key: 'dits-tier', Value: 'cold' }] } },
          Transitions: [{ Days: 180, StorageClass: 'GLACIER_IR' }],
        },
        {
          ID: 'dits-tier-deep',
          Status: 'Enabled',
          Filter: { And: { Prefix: 'team/film/v1/packs/', Tags: [{ Key: 'dits-tier', Value: 'deep' }] } },
          Transitions: [{ Days: 730, StorageClass: 'DEEP_ARCHIVE' }],
        },
        { ID: 'dits-abort-incomplete-uploads', Status: 'Enabled', Filter: { Prefix: 'team/film/' }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 } },
      ],
    });
  });

  it('follows dits.tier.class overrides; STANDARD_IA transitions wait 30 days at least; no prefix filters by the tag alone', () => {
    const config = lifecycleConfiguration(providerProfile('aws', { overrides: { cold: 'GLACIER', warm: 'STANDARD_IA' } }), { warmAfterDays: 7, coldAfterDays: 0, deepAfterDays: 400 }, { abortIncompleteUploadsAfterDays: 0 });
    expect(config.Rules?.map((r) => [r.ID, r.Filter, r.Transitions])).toEqual([
      ['dits-tier-warm', { Tag: { Key: 'dits-tier', Value: 'warm' } }, [{ Days: 30, StorageClass: 'STANDARD_IA' }]],
      ['dits-tier-cold', { Tag: { Key: 'dits-tier', Value: 'cold' } }, [{ Days: 0, StorageClass: 'GLACIER' }]],
      ['dits-tier-deep', { Tag: { Key: 'dits-tier', Value: 'deep' } }, [{ Days: 400, StorageClass: 'DEEP_ARCHIVE' }]],
    ]);
    expect(lifecycleProblems(config)).toEqual([]);
  });

  it('says so on single-class providers and folder remotes', () => {
    for (const p of ['b2', 'r2', 'wasabi', 'generic'] as const) {
      expect(() => lifecycleConfiguration(providerProfile(p), AGES)).toThrow(providerProfile(p).note);
    }
    expect(() => lifecycleConfiguration(providerProfile('folder'), AGES)).toThrow(/S3 feature/);
  });

  it('lifecycleProblems finds what AWS refuses', () => {
    const problems = lifecycleProblems({
      Rules: [
        { ID: 'a', Status: 'Enabled', Filter: { Prefix: 'x/', Tag: { Key: 'k', Value: 'v' } }, Transitions: [{ Days: 5, StorageClass: 'STANDARD_IA' }] },
        { ID: 'a', Status: 'On' as 'Enabled', Filter: { Tag: { Key: 'k', Value: 'v' } }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 0 } },
        { ID: 'c', Status: 'Enabled', Filter: { And: { Tags: [{ Key: 'k', Value: 'v' }] } } },
        { ID: 'd', Status: 'Enabled', Transitions: [{ Days: -1, StorageClass: 'STANDARD' as 'GLACIER' }] },
      ],
    });
    expect(problems).toEqual([
      'Rules[0] (a): Filter must name exactly one of Prefix, Tag, And, ObjectSize* (got Prefix, Tag)',
      'Rules[0] (a).Transitions[0]: transitions to STANDARD_IA need Days of at least 30',
      'Rules[1] (a): ID used twice',
      'Rules[1] (a): Status must be Enabled or Disabled',
      'Rules[1] (a): AbortIncompleteMultipartUpload cannot be used with a tag filter',
      'Rules[1] (a): AbortIncompleteMultipartUpload.DaysAfterInitiation must be a positive integer',
      'Rules[2] (c): Filter.And combines at least two conditions',
      'Rules[2] (c): a rule needs at least one action',
      'Rules[3] (d): Filter is required (use an empty Prefix for the whole bucket)',
      'Rules[3] (d).Transitions[0]: StorageClass STANDARD is not a transition class',
      'Rules[3] (d).Transitions[0]: Days must be 0 or a positive integer',
    ]);
    expect(lifecycleProblems({ Rules: [] })).toEqual(['Rules: at least one rule is required']);
  });

  describe('through the AWS SDK', () => {
    let s3rver: RunningS3rver;
    let front: GlacierFront;
    let client: S3Sdk.S3Client;
    beforeAll(async () => {
      s3rver = await startS3rver({ buckets: ['lc'] });
      front = await startGlacierFront(s3rver.endpoint);
      client = new sdk.S3Client({
        endpoint: front.endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: s3rver.credentials,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        maxAttempts: 1,
      });
    });
    afterAll(async () => {
      client?.destroy();
      await front?.close();
      await s3rver?.close();
    });

    it('PutBucketLifecycleConfiguration takes it as it is, and it reads back equal', async () => {
      const config = lifecycleConfiguration(providerProfile('aws', { overrides: { cold: 'GLACIER' } }), AGES, { prefix: 'team/film' });
      await client.send(new sdk.PutBucketLifecycleConfigurationCommand({ Bucket: 'lc', LifecycleConfiguration: config }));
      const xml = front.lifecycleOf('lc')!;
      expect(xml).toContain('<ID>dits-tier-cold</ID><Filter><And><Prefix>team/film/v1/packs/</Prefix><Tag><Key>dits-tier</Key><Value>cold</Value></Tag></And></Filter><Transition><Days>180</Days><StorageClass>GLACIER</StorageClass></Transition>');
      expect(xml).toContain('<Tag><Key>dits-tier</Key><Value>deep</Value></Tag>');
      expect(xml).toContain('<Transition><Days>730</Days><StorageClass>DEEP_ARCHIVE</StorageClass></Transition>');
      const back = await client.send(new sdk.GetBucketLifecycleConfigurationCommand({ Bucket: 'lc' }));
      expect({ Rules: back.Rules }).toEqual(config);
    });
  });
});
