/**
 * `git dits push --dry-run` and `git dits fetch --dry-run` say the same request count in text
 * and in --json: the requests the real run would make in all (listing what the remote holds
 * included), and a real run then makes that many.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import path from 'node:path';
import { GitSandbox, SMALL_CHUNKS, cloneInto, randomBytesSeeded } from './helpers/git-env.js';

let sb: GitSandbox;
beforeAll(() => {
  sb = new GitSandbox('dits-dry-run-');
});
afterAll(() => sb?.cleanup());

const requestsIn = (text: string): number => Number(/in (?:about )?(\d+) request\(s\)/.exec(text)?.[1] ?? NaN);

it('push --dry-run and fetch --dry-run: text and JSON agree on requests, and the real run makes that many', () => {
  const remote = `dits::file://${path.join(sb.dir, 'remotes', 'counts')}`;
  const repo = sb.repo('counts', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': randomBytesSeeded(600_000, 95) } });
  sb.mustGit(['add', '.'], repo);
  sb.mustGit(['commit', '-q', '-m', 'one'], repo);
  sb.mustGit(['remote', 'add', 'origin', remote], repo);

  const pushText = sb.mustDits(['push', '--dry-run'], repo);
  const pushJson = JSON.parse(sb.mustDits(['push', '--dry-run', '--json'], repo));
  expect(requestsIn(pushText)).toBe(pushJson.requests);
  expect(pushJson.requests).toBeGreaterThan(pushJson.estimatedRequests); // the listing counts too
  sb.mustGit(['push', '-q', 'origin', 'main'], repo);

  const c = cloneInto(sb, remote, 'counts-clone', { ...SMALL_CHUNKS, 'dits.fetchMode': 'lazy' });
  sb.mustDits(['fetch', '--dry-run'], c); // a dry run fetches the manifests (small): the next ones plan the same
  const fetchText = sb.mustDits(['fetch', '--dry-run'], c);
  const fetchJson = JSON.parse(sb.mustDits(['fetch', '--dry-run', '--json'], c));
  expect(requestsIn(fetchText)).toBe(fetchJson.requests);
  expect(fetchJson.requests).toBeGreaterThanOrEqual(fetchJson.rangeRequests);
  expect(fetchJson.rangeRequests).toBeGreaterThan(0);
  const real = JSON.parse(sb.mustDits(['fetch', '--json'], c));
  expect(real.requests).toBe(fetchJson.requests);
});
