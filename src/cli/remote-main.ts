/**
 * git-remote-dits: started by git for `dits::<url>` remotes as
 * `git-remote-dits <remote name> <url>`, with GIT_DIR set; speaks the helper protocol on
 * stdin/stdout. Messages for the user go to stderr (git shows them).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DitsUserError, isUserError } from '../errors.js';
import { findRepo } from '../git/repo.js';
import { serveRemoteHelper } from '../remote/helper-protocol.js';
import { RemoteSession } from '../remote/session.js';
import { openRemoteStorage } from '../remote/open-remote.js';
import { ditsSettingsFrom, readDitsConfig } from '../git/dits-config.js';
import { describeFault } from './faults.js';
import { prepareRepoForDits } from './prepare-repo.js';

/** This installation's git-dits (dist/src/cli/ -> bin/), as main.ts's defaultContext finds it. */
const DITS_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/git-dits');

export async function runRemoteHelper(argv: string[]): Promise<number> {
  const [remoteName, url] = argv;
  try {
    if (!url) throw new DitsUserError('bad-usage', 'git-remote-dits is run by git for dits:: remotes', { hint: 'git remote add origin dits::s3://bucket/prefix' });
    const cwd = process.cwd();
    // `git ls-remote dits::...` outside any repository: no GIT_DIR, and only list is asked
    const gitDir = process.env.GIT_DIR ? path.resolve(process.env.GIT_DIR) : await findRepo(cwd).then((r) => r.gitDir, () => null);
    const config = await readDitsConfig(cwd);
    const storage = await openRemoteStorage(cwd, url, { config });
    const log = (line: string): void => void process.stderr.write(line + '\n');
    const interactive = Boolean(process.stderr.isTTY) && process.env.CI !== 'true';
    const session = new RemoteSession({
      cwd,
      gitDir,
      storage,
      // push-only parts load when a push needs them (a clone or fetch never does)
      content: async () =>
        (await import('../remote/content-adapter.js')).createContentPusher({ cwd, gitDir: gitDir ?? cwd, storage, remoteName: remoteName === url ? url : remoteName!, interactive, settings: ditsSettingsFrom(config) }),
      log,
      requireExisting: !/^https?:\/\//i.test(url),
      ...(gitDir ? { prepareRepo: () => prepareRepoForDits(gitDir, DITS_BIN, log) } : {}),
      // the remote's pack list and indexes, read while the bundles are, for the checkout after the fetch
      ...(gitDir ? { warmContent: async () => (await import('../remote/warm-index.js')).warmRemoteIndex(gitDir, storage, remoteName === url ? url : remoteName!, config) } : {}),
      // Dits server remotes: refuse pushes over files locked by someone else (cli/commands/lock.ts)
      ...(/^https?:\/\//i.test(url) ? { lockCheck: async () => (await import('../locking/server-lock-check.js')).serverLockCheck(cwd, url, process.env, process.stderr.isTTY === true)() } : {}),
    });
    await serveRemoteHelper(process.stdin as AsyncIterable<Buffer>, process.stdout, session);
    return 0;
  } catch (e) {
    if (isUserError(e)) {
      process.stderr.write(`error: ${e.message}\n`);
      if (e.hint) process.stderr.write(`hint: ${e.hint}\n`);
      return e.exitCode;
    }
    const fault = describeFault(e);
    if (fault) {
      process.stderr.write(`error: ${fault.message}\nhint: ${fault.hint}\n`);
      return 1;
    }
    process.stderr.write(`git-remote-dits: internal error (please report it): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 70;
  }
}
