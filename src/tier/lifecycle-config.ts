/**
 * The bucket lifecycle configuration for `dits.tier.mode = lifecycle`: instead of copying
 * each pack into its new class (CopyObject), the reaper tags it `dits-tier=<tier>`
 * (TierStorage.setTags) and S3 moves tagged objects itself by these rules, on its own
 * daily schedule. `git dits tier lifecycle-config [--json]` prints it for
 * `aws s3api put-bucket-lifecycle-configuration --bucket <bucket> --lifecycle-configuration file://rules.json`.
 *
 * Shape and limits as AWS documents PutBucketLifecycleConfiguration
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketLifecycleConfiguration.html,
 * API_LifecycleRule, API_LifecycleRuleFilter, API_Transition):
 * - one rule per colder tier, ID `dits-tier-<tier>`, filtered by the tag `dits-tier=<tier>`
 *   and, when the remote has a prefix, by `<prefix>/v1/packs/` too (And: Prefix + Tags), so
 *   only this remote's packs move, whoever else tags objects in the bucket;
 * - its transition goes to the tier's class after Days = the policy's age for that tier:
 *   Days count from the object's creation, and the reaper tags a pack only once its last
 *   use (never before its upload) is that old, so a tagged pack is already past it; a pack
 *   tagged by mistake is not moved early. Transitions to STANDARD_IA and ONEZONE_IA need
 *   at least 30 days (AWS's minimum for those classes);
 * - one more rule aborts multipart uploads left unfinished for 7 days under the prefix
 *   (an interrupted push leaves parts that are billed but invisible).
 * Note: the configuration replaces the bucket's whole lifecycle configuration; a bucket
 * with rules of its own needs them merged in by hand.
 */
import type { BucketLifecycleConfiguration, LifecycleRule, TransitionStorageClass } from '@aws-sdk/client-s3';
import { DitsUserError } from '../errors.js';
import type { ProviderProfile, Tier } from './tiers.js';

export const TIER_TAG = 'dits-tier';

/** The policy's ages (days without a read before a pack goes to each tier). */
export interface LifecycleAges {
  warmAfterDays: number;
  coldAfterDays: number;
  deepAfterDays: number;
}

export interface LifecycleOptions {
  /** The remote's key prefix in the bucket ('' or 'team/film'; with or without a trailing '/'). */
  prefix?: string;
  /** Days after which unfinished multipart uploads are aborted (default 7; 0 leaves the rule out). */
  abortIncompleteUploadsAfterDays?: number;
}

/** Classes a lifecycle Transition may name (API_Transition StorageClass). */
const TRANSITION_CLASSES: ReadonlySet<string> = new Set(['GLACIER', 'STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'DEEP_ARCHIVE', 'GLACIER_IR']);
/** Classes whose transitions need Days >= 30. */
const THIRTY_DAY_CLASSES: ReadonlySet<string> = new Set(['STANDARD_IA', 'ONEZONE_IA']);

export function lifecycleConfiguration(profile: ProviderProfile, ages: LifecycleAges, opts: LifecycleOptions = {}): BucketLifecycleConfiguration {
  if (profile.name === 'folder') {
    throw new DitsUserError('tier-unsupported', 'lifecycle rules are an S3 feature: a folder remote moves its packs with `git dits tier apply`', {
      hint: 'leave dits.tier.mode unset (copy) for folder remotes',
    });
  }
  if (profile.classes === null) {
    throw new DitsUserError('tier-unsupported', profile.note ?? `${profile.name} has one storage class: there is nothing to configure`, {
      hint: 'nothing to do on this remote',
    });
  }
  const base = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '');
  const packsPrefix = base === '' ? '' : `${base}/v1/packs/`;
  const agesByTier: Record<Exclude<Tier, 'hot'>, number> = { warm: ages.warmAfterDays, cold: ages.coldAfterDays, deep: ages.deepAfterDays };
  const rules: LifecycleRule[] = [];
  for (const tier of ['warm', 'cold', 'deep'] as const) {
    const storageClass = profile.classes[tier];
    if (storageClass === profile.classes.hot) continue; // nothing to move
    const tag = { Key: TIER_TAG, Value: tier };
    const age = Math.max(0, Math.ceil(agesByTier[tier]));
    rules.push({
      ID: `dits-tier-${tier}`,
      Status: 'Enabled',
      Filter: packsPrefix === '' ? { Tag: tag } : { And: { Prefix: packsPrefix, Tags: [tag] } },
      Transitions: [{ Days: THIRTY_DAY_CLASSES.has(storageClass) ? Math.max(30, age) : age, StorageClass: storageClass as TransitionStorageClass }],
    });
  }
  const abortDays = opts.abortIncompleteUploadsAfterDays ?? 7;
  if (abortDays > 0) {
    rules.push({
      ID: 'dits-abort-incomplete-uploads',
      Status: 'Enabled',
      Filter: { Prefix: base === '' ? '' : `${base}/` },
      AbortIncompleteMultipartUpload: { DaysAfterInitiation: abortDays },
    });
  }
  const config: BucketLifecycleConfiguration = { Rules: rules };
  const problems = lifecycleProblems(config);
  if (problems.length > 0) throw new Error(`internal: the lifecycle configuration breaks AWS's rules: ${problems.join('; ')}`);
  return config;
}

/**
 * What AWS would refuse in a lifecycle configuration, field by field as the API reference
 * states it (LifecycleRule, LifecycleRuleFilter, Transition, AbortIncompleteMultipartUpload);
 * [] when none. Covers the fields this module writes, not every field AWS has.
 */
export function lifecycleProblems(config: BucketLifecycleConfiguration): string[] {
  const problems: string[] = [];
  const rules = config.Rules;
  if (!Array.isArray(rules) || rules.length === 0) return ['Rules: at least one rule is required'];
  if (rules.length > 1000) problems.push(`Rules: at most 1,000 rules (got ${rules.length})`);
  const ids = new Set<string>();
  for (const [i, rule] of rules.entries()) {
    const at = `Rules[${i}]${rule.ID ? ` (${rule.ID})` : ''}`;
    if (rule.ID !== undefined) {
      if (rule.ID.length > 255) problems.push(`${at}: ID longer than 255 characters`);
      if (ids.has(rule.ID)) problems.push(`${at}: ID used twice`);
      ids.add(rule.ID);
    }
    if (rule.Status !== 'Enabled' && rule.Status !== 'Disabled') problems.push(`${at}: Status must be Enabled or Disabled`);
    const filter = rule.Filter;
    if (filter === undefined) {
      problems.push(`${at}: Filter is required (use an empty Prefix for the whole bucket)`);
    } else {
      const kinds = (['Prefix', 'Tag', 'And', 'ObjectSizeGreaterThan', 'ObjectSizeLessThan'] as const).filter((k) => filter[k] !== undefined);
      if (kinds.length !== 1) problems.push(`${at}: Filter must name exactly one of Prefix, Tag, And, ObjectSize* (got ${kinds.join(', ') || 'none'})`);
      if (filter.Tag !== undefined && (!filter.Tag.Key || filter.Tag.Value === undefined)) problems.push(`${at}: Filter.Tag needs Key and Value`);
      if (filter.And !== undefined) {
        const parts = (filter.And.Prefix !== undefined ? 1 : 0) + (filter.And.Tags?.length ?? 0) + (filter.And.ObjectSizeGreaterThan !== undefined ? 1 : 0) + (filter.And.ObjectSizeLessThan !== undefined ? 1 : 0);
        if (parts < 2) problems.push(`${at}: Filter.And combines at least two conditions`);
        for (const t of filter.And.Tags ?? []) if (!t.Key || t.Value === undefined) problems.push(`${at}: Filter.And.Tags entries need Key and Value`);
      }
    }
    const actions = (rule.Transitions?.length ?? 0) + (rule.Expiration ? 1 : 0) + (rule.AbortIncompleteMultipartUpload ? 1 : 0) + (rule.NoncurrentVersionTransitions?.length ?? 0) + (rule.NoncurrentVersionExpiration ? 1 : 0);
    if (actions === 0) problems.push(`${at}: a rule needs at least one action`);
    const tagged = filter?.Tag !== undefined || (filter?.And?.Tags?.length ?? 0) > 0;
    if (rule.AbortIncompleteMultipartUpload !== undefined) {
      if (tagged) problems.push(`${at}: AbortIncompleteMultipartUpload cannot be used with a tag filter`);
      const d = rule.AbortIncompleteMultipartUpload.DaysAfterInitiation;
      if (!Number.isInteger(d) || (d ?? 0) < 1) problems.push(`${at}: AbortIncompleteMultipartUpload.DaysAfterInitiation must be a positive integer`);
    }
    for (const [j, tr] of (rule.Transitions ?? []).entries()) {
      const tat = `${at}.Transitions[${j}]`;
      if (tr.StorageClass === undefined || !TRANSITION_CLASSES.has(tr.StorageClass)) problems.push(`${tat}: StorageClass ${tr.StorageClass} is not a transition class`);
      if ((tr.Days === undefined) === (tr.Date === undefined)) problems.push(`${tat}: exactly one of Days and Date`);
      if (tr.Days !== undefined) {
        if (!Number.isInteger(tr.Days) || tr.Days < 0) problems.push(`${tat}: Days must be 0 or a positive integer`);
        if (tr.StorageClass !== undefined && THIRTY_DAY_CLASSES.has(tr.StorageClass) && tr.Days < 30) problems.push(`${tat}: transitions to ${tr.StorageClass} need Days of at least 30`);
      }
    }
  }
  return problems;
}
