/**
 * The pre-push lock check for a server remote (SessionDeps.lockCheck): one verify
 * request per push, then a pure check per ref. `interactive` says whether a credential
 * helper may prompt.
 */
import { runGit } from '../git/exec.js';
import { serverToken } from '../remote/credentials.js';
import { LockClient, lockRepoUrl } from './lock-client.js';
import { findPushConflicts, pushConflictError } from './push-conflicts.js';

export function serverLockCheck(cwd: string, remoteUrl: string, env: NodeJS.ProcessEnv, interactive: boolean): () => Promise<(changedPaths: string[]) => string | null> {
  return async () => {
    const server = lockRepoUrl(remoteUrl);
    const client = new LockClient({ repoUrl: server, token: () => serverToken(cwd, server, { env, interactive, runGit }) });
    const verify = await client.verify();
    return (changedPaths) => {
      const conflicts = findPushConflicts(changedPaths, verify);
      return conflicts.length === 0 ? null : pushConflictError(conflicts).message;
    };
  };
}
