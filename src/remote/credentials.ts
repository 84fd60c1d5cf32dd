/**
 * The token for a Dits server remote (`dits::http(s)://host:port/owner/repo`):
 * `DITS_TOKEN` from the environment when set (scripts, CI), else the password that
 * `git credential fill` returns for `protocol=http(s)`, `host=host:port`,
 * `path=owner/repo`, so any git credential store works (store, cache, libsecret,
 * osxkeychain). git drops the path unless `credential.useHttpPath` is set, as for any
 * https remote. Without a terminal git is told not to prompt (GIT_TERMINAL_PROMPT=0),
 * so a remote helper never hangs waiting for input nobody can type.
 *
 * Answers are cached per process and URL: one `git credential fill` per push or fetch.
 */
import { runGit, type GitResult, type GitRunOptions } from '../git/exec.js';

export interface CredentialDeps {
  env: NodeJS.ProcessEnv;
  /** Whether a person can answer a prompt (stderr is a terminal). */
  interactive: boolean;
  runGit: (args: string[], opts: GitRunOptions) => Promise<GitResult>;
}

const realDeps = (): CredentialDeps => ({ env: process.env, interactive: process.stderr.isTTY === true, runGit });

/** The `git credential` description of a server URL (protocol, host, path). */
export function credentialQuery(url: string): { protocol: string; host: string; path: string } {
  const parsed = new URL(url);
  return { protocol: parsed.protocol.replace(/:$/, ''), host: parsed.host, path: parsed.pathname.replace(/^\/+|\/+$/g, '') };
}

/**
 * The password git's credential helpers hold for `url`, or undefined when none answers
 * (no helper configured, nothing stored, prompting disabled).
 */
export async function tokenFromCredentialHelper(cwd: string, url: string, deps: CredentialDeps = realDeps()): Promise<string | undefined> {
  const q = credentialQuery(url);
  const input = `protocol=${q.protocol}\nhost=${q.host}\npath=${q.path}\n\n`;
  const env = { ...deps.env };
  if (!deps.interactive) env.GIT_TERMINAL_PROMPT = '0';
  const r = await deps.runGit(['credential', 'fill'], { cwd, input, env, allowFail: true });
  if (r.exitCode !== 0) return undefined;
  for (const line of r.stdout.toString('utf8').split('\n')) {
    if (line.startsWith('password=')) {
      const password = line.slice('password='.length);
      return password === '' ? undefined : password;
    }
  }
  return undefined;
}

const cache = new Map<string, Promise<string | undefined>>();

/** DITS_TOKEN, else the credential helper's answer; cached per process and server URL. */
export function serverToken(cwd: string, url: string, deps: CredentialDeps = realDeps()): Promise<string | undefined> {
  const fromEnv = deps.env.DITS_TOKEN;
  if (fromEnv !== undefined && fromEnv !== '') return Promise.resolve(fromEnv);
  let token = cache.get(url);
  if (token === undefined) {
    token = tokenFromCredentialHelper(cwd, url, deps);
    cache.set(url, token);
  }
  return token;
}
