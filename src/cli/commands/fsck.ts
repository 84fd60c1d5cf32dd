import { findRepo, requireInitialised } from '../../git/repo.js';
import { listReachablePointers } from '../../git/reachable.js';
import { listIndexDamagedPointers, listTreeDamagedPointers, type DamagedPointer } from '../../git/pointers.js';
import { rawInIndex, rawInTree, type RawEntry } from '../../git/raw-content.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { fsckStore, type FsckProblem } from '../../store/fsck.js';
import { defaultDitsRemote, listDitsRemotes, openRemoteStorage } from '../../remote/open-remote.js';
import { readRefState } from '../../remote/remote-state.js';
import { presentObjects } from '../../remote/git-bundles.js';
import { manifestsBetween } from '../../remote/session.js';
import { gitConfigGet } from '../../git/exec.js';
import { DitsUserError } from '../../errors.js';
import { manifestsOnRemote } from '../../remote/content/remote-manifests.js';
import { createProgressBar } from '../progress.js';
import { describeRaw, rawContentFix } from '../pre-commit-check.js';
import { formatBytes, out, err, printJson, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable, type OptionValues } from '../options.js';

const fsckOptions = {
  json: { type: 'boolean', description: 'print the result as JSON' },
  'no-quarantine': { type: 'boolean', description: 'leave corrupt chunks and manifests where they are (only report them)' },
  offline: { type: 'boolean', description: 'do not ask the Dits remote about manifests missing here (they are reported as missing)' },
  remote: { type: 'string', value: '<name>', description: 'check a remote (a Dits remote or a mirror) instead of the local store: pack sizes against their indexes, the manifests and git data its refs need, a sample of chunks re-hashed' },
  full: { type: 'boolean', description: 'with --remote: re-hash every chunk of every pack, and check every manifest against its id' },
  sample: { type: 'string', value: '<n>', description: 'with --remote: chunks re-hashed (default 32)' },
  'repair-from': { type: 'string', value: '<name>', description: 'with --remote: replace each damaged or missing pack, manifest or bundle from this other remote or mirror, after verifying that copy' },
} as const satisfies OptionTable;

/** The URL (after dits::) of a Dits remote or a mirror (dits.mirror.<name>.url) called `name`. */
async function locationOf(cwd: string, name: string): Promise<string> {
  const remote = (await listDitsRemotes(cwd)).find((r) => r.name === name);
  if (remote) return remote.url;
  const mirror = await gitConfigGet(`dits.mirror.${name}.url`, cwd);
  if (mirror) return mirror.replace(/^dits::/, '');
  throw new DitsUserError('no-such-remote', `'${name}' is neither a Dits remote nor a mirror of this repository`, { hint: 'list them with `git remote -v` and `git dits mirror ls`', exitCode: 2 });
}

/** `git dits fsck --remote <name>`: check (and repair) a remote's storage. */
async function fsckRemote(ctx: CliContext, workTree: string, values: OptionValues<typeof fsckOptions>): Promise<number> {
  const name = values.remote!;
  let sample: number | undefined;
  if (values.sample !== undefined) {
    sample = Number(values.sample);
    if (!Number.isInteger(sample) || sample < 0) throw new DitsUserError('bad-option-value', `--sample must be a whole number, not '${values.sample}'`, { hint: 'e.g. --sample 100, or --full for every chunk', exitCode: 2 });
  }
  const { checkRemote, repairRemote } = await import('../../lifecycle/remote-check.js');
  const storage = await openRemoteStorage(workTree, await locationOf(workTree, name));
  const source = values['repair-from'] ? await openRemoteStorage(workTree, await locationOf(workTree, values['repair-from'])) : null;
  // the manifests the refs' pointers need: from the commits here (refs not fetched are named)
  const { state } = await readRefState(storage);
  const tips = [...new Set(Object.values(state.refs))];
  const here = await presentObjects(workTree, tips);
  const { ids } = await manifestsBetween(workTree, tips.filter((t) => here.has(t)), []);
  const unchecked = Object.entries(state.refs).filter(([, oid]) => !here.has(oid)).map(([ref]) => ref);
  const res = await checkRemote(storage, { manifestIds: ids, full: Boolean(values.full), sample });
  const repairs = source && res.problems.length ? await repairRemote(storage, source, res.problems) : [];
  const left = res.problems.filter((p) => !repairs.some((r) => r.ok && r.key === p.key));
  if (values.json) printJson(ctx, { ...res, refsNotChecked: unchecked, repairs, problemsLeft: left });
  else {
    out(ctx, `Checked ${res.location}: ${res.packs} packs, ${res.manifests} manifests (${res.manifestsNeeded} needed by its refs), ${res.bundles} git bundles; ${res.full ? 'every chunk' : 'a sample of'} ${res.chunksChecked} chunks re-hashed (${formatBytes(res.bytesChecked)}).`);
    if (unchecked.length) out(ctx, `Not checked for manifests (commits not here; fetch them first): ${unchecked.join(', ')}`);
    if (res.incomplete.length) out(ctx, `${res.incomplete.length} pack(s) without an index: an interrupted upload (a push or mirror sync run again completes it).`);
    for (const f of res.frozen) out(ctx, `frozen (not checked): ${f}`);
    for (const p of res.problems) err(ctx, `${p.kind}: ${p.key}: ${p.detail}`);
    for (const r of repairs) (r.ok ? out : err)(ctx, `${r.ok ? 'repaired' : 'NOT repaired'}: ${r.key}: ${r.detail}`);
    if (left.length && !source) err(ctx, `hint: replace them from another copy: \`git dits fsck --remote ${name} --repair-from <other remote or mirror>\``);
    if (!left.length) out(ctx, res.problems.length ? 'All problems repaired.' : 'No problems found.');
  }
  return left.length ? 1 : 0;
}

/** Manifests missing here that the Dits remote holds: never fetched (a clone fetches only what it checks out), not lost. */
interface NotFetched {
  remote: string;
  manifests: { id: string; paths: string[] }[];
}

interface RemoteCheck {
  notFetched: NotFetched | null;
  problems: FsckProblem[];
  /** For the missing manifests still in `problems`: what was learnt of them, for the message. */
  missingWhy: string;
}

/**
 * Splits the missing manifests into those the Dits remote holds and the rest. A remote
 * that cannot be asked leaves them all missing (nothing proves them safe), with the reason.
 */
async function checkRemote(workTree: string, problems: FsckProblem[], offline: boolean): Promise<RemoteCheck> {
  const missing = problems.filter((p) => p.kind === 'manifest-missing');
  if (missing.length === 0) return { notFetched: null, problems, missingWhy: '' };
  if (offline) return { notFetched: null, problems, missingWhy: 'not here; --offline: the remote was not asked' };
  let remoteName = '';
  try {
    const remote = await defaultDitsRemote(workTree);
    if (!remote) return { notFetched: null, problems, missingWhy: 'lost: not here, and this repository has no Dits remote' };
    remoteName = remote.name;
    const storage = await openRemoteStorage(workTree, remote.url);
    const on = await manifestsOnRemote(storage, missing.map((p) => p.id));
    return {
      notFetched: on.size ? { remote: remote.name, manifests: missing.filter((p) => on.has(p.id)).map((p) => ({ id: p.id, paths: p.paths ?? [] })) } : null,
      problems: problems.filter((p) => !(p.kind === 'manifest-missing' && on.has(p.id))),
      missingWhy: `lost: not here, and not on the remote '${remote.name}'`,
    };
  } catch (e) {
    return { notFetched: null, problems, missingWhy: `not here, and the remote${remoteName ? ` '${remoteName}'` : ''} could not be asked (${e instanceof Error ? e.message : String(e)})` };
  }
}

/** Raw content staged or committed at HEAD at a tracked path, each blob once. */
async function findRaw(workTree: string, knownPointers: ReadonlySet<string>): Promise<RawEntry[]> {
  const seen = new Set<string>();
  const out: RawEntry[] = [];
  for (const r of [...(await rawInIndex(workTree, [], knownPointers)), ...(await rawInTree(workTree, 'HEAD', knownPointers))]) {
    const k = `${r.path}\0${r.oid}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(r);
  }
  return out;
}

const fsck: Command = {
  summary: 'Re-hash every stored chunk and manifest; quarantine corrupt ones; report lost content, content not fetched yet, damaged pointers and files stored whole in Git (exit 1 on lost, corrupt, damaged or raw content)',
  usage: 'git dits fsck [--json] [--no-quarantine] [--offline] | git dits fsck --remote <name> [--full | --sample <n>] [--repair-from <name>] [--json]',
  options: fsckOptions,
  async run(args, ctx: CliContext) {
    const { values } = parseOptions(args, fsckOptions);
    const repo = await findRepo(ctx.cwd);
    if (values.remote !== undefined) return fsckRemote(ctx, repo.workTree, values);
    for (const k of ['full', 'sample', 'repair-from'] as const) {
      if (values[k] !== undefined) throw new DitsUserError('bad-usage', `--${k} needs --remote <name>`, { hint: 'e.g. `git dits fsck --remote origin --full`', exitCode: 2 });
    }
    requireInitialised(repo);
    const pointers = await listReachablePointers(repo.workTree);
    const store = ChunkStore.open(repo.ditsDir);
    const bar = createProgressBar(ctx, 'Checking');
    let res;
    try {
      res = await fsckStore(store, pointers, { onProgress: (d, t) => bar.update(d, t), quarantine: !values['no-quarantine'] });
    } finally {
      bar.done();
      store.close();
    }
    // pointers in the index or HEAD that do not parse (they check out as their own text)
    const damaged = new Map<string, DamagedPointer>();
    const known = new Set(pointers.map((p) => p.blobOid)); // valid pointers (reachable): neither damaged nor raw
    for (const d of [...(await listIndexDamagedPointers(repo.workTree, [], known)), ...(await listTreeDamagedPointers(repo.workTree, 'HEAD', known))]) {
      damaged.set(`${d.blobOid} ${d.path}`, d);
    }
    const damagedPointers = [...damaged.values()];
    const remote = await checkRemote(repo.workTree, res.problems, Boolean(values.offline));
    const raw = await findRaw(repo.workTree, known);
    const problems = remote.problems;
    if (values.json) printJson(ctx, { ...res, problems, notFetched: remote.notFetched, rawContent: raw, damagedPointers });
    else {
      out(ctx, `Checked ${res.chunksChecked} chunks (${formatBytes(res.bytesChecked)}) and ${res.manifestsChecked} manifests.`);
      if (res.remoteHeldChunks) out(ctx, `${res.remoteHeldChunks} chunks are held by a remote, not here (fetched into the working tree or pruned; they come back when needed).`);
      if (remote.notFetched) {
        const n = remote.notFetched.manifests.length;
        out(ctx, `${n} file version(s) not fetched (on the remote '${remote.notFetched.remote}'): not lost, only not downloaded here (a clone fetches the versions it checks out). A checkout of them fetches them; \`git dits fetch <rev>\` fetches a revision's content now.`);
      }
      for (const p of problems) {
        const detail = p.kind === 'manifest-missing' ? `${p.detail} (${remote.missingWhy})` : p.detail;
        err(ctx, `${p.kind}: ${p.id}: ${detail}${p.paths ? ` (needed by ${p.paths.slice(0, 5).join(', ')}${p.paths.length > 5 ? ', ...' : ''})` : ''}`);
      }
      if (res.quarantined.length) err(ctx, `Moved ${res.quarantined.length} corrupt object(s) to .git/dits/quarantine.`);
      if (problems.length) err(ctx, 'hint: fetch the missing or corrupt content again from a remote that has it (`git dits pull`), or re-add the files from their originals.');
      for (const d of damagedPointers) err(ctx, `damaged-pointer: ${d.path}: ${d.damage} (blob ${d.blobOid})`);
      if (damagedPointers.length) {
        err(ctx, 'hint: a damaged pointer checks out as its own text; restore it from a commit where it is whole (`git log -- <path>`, then `git checkout <commit> -- <path>`), or put the real file back and `git add` it.');
      }
      if (raw.length) {
        err(ctx, `raw-content: ${raw.length} file(s) tracked by Dits are stored whole in Git, not as pointers (staged or at HEAD):`);
        for (const r of raw.slice(0, 20)) err(ctx, `  ${describeRaw(r)}`);
        for (const line of await rawContentFix(repo.workTree, raw.map((r) => r.path))) err(ctx, `hint: ${line}, then commit`);
      }
      if (!problems.length && !raw.length && !damagedPointers.length) out(ctx, 'No problems found.');
    }
    return problems.length || raw.length || damagedPointers.length ? 1 : 0;
  },
};

export const commands = { fsck };
