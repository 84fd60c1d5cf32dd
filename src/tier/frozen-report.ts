/**
 * What a checkout, clone or pull says when some content it needs is frozen (in an archive
 * class without a finished restore): which files were left as pointers, their bytes, the
 * packs a restore would retrieve, and the thaw command with its cost and time for each
 * retrieval tier the class offers. DESIGN invariant 6: nothing is restored here; the
 * user chooses. Every figure comes from prices.ts (restoreCost, formatDollars, formatHours).
 *
 * Pure: the caller passes what the fetch found (remote-fetch.ts FrozenFiles) and the price
 * table; `frozenReport` builds the facts (also the `--json` of `git dits pull`) and
 * `formatFrozenReport` the lines to print.
 */
import type { FrozenFiles } from '../worktree/remote-fetch.js';
import { formatDollars, formatHours, restoreCost, restoreTiers, type PriceTable, type RestoreEstimate } from './prices.js';

/** Days a restored copy is kept when the user does not say (`git dits thaw --days`). */
export const DEFAULT_THAW_DAYS = 7;

export interface FrozenReport {
  code: 'storage-frozen';
  remote: string;
  location: string;
  files: { path: string; bytes: number; packs: string[] }[];
  /** the files' bytes */
  bytes: number;
  packs: { packId: string; key: string; storageClass: string | null; bytes: number }[];
  /** what a restore retrieves: the packs' bytes */
  packBytes: number;
  thaw: {
    command: string;
    days: number;
    /** per archive class of the packs, per retrieval tier it offers */
    estimates: RestoreEstimate[];
    /** classes the price table has no restore prices for (or packs whose class the storage did not say) */
    unpriced: { storageClass: string | null; packs: number; bytes: number }[];
    priceTable: { provider: string; region: string; asOf: string };
  };
}

/** A path as one shell word (quoted when it needs it). */
export function shellWord(p: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`;
}

export function thawCommand(paths: readonly string[]): string {
  return `git dits thaw ${paths.map((p) => (p.startsWith('-') ? `./${p}` : p)).map(shellWord).join(' ')}`;
}

export function frozenReport(frozen: FrozenFiles, prices: PriceTable, opts: { days?: number } = {}): FrozenReport {
  const days = opts.days ?? DEFAULT_THAW_DAYS;
  const needed = new Set(frozen.files.flatMap((f) => f.packs));
  const packs = frozen.packs
    .filter((p) => needed.has(p.packId))
    .map((p) => ({ packId: p.packId, key: p.key, storageClass: p.storageClass ?? null, bytes: p.bytes }));
  const byClass = new Map<string | null, { packs: number; bytes: number }>();
  for (const p of packs) {
    const c = byClass.get(p.storageClass) ?? { packs: 0, bytes: 0 };
    c.packs++;
    c.bytes += p.bytes;
    byClass.set(p.storageClass, c);
  }
  const estimates: RestoreEstimate[] = [];
  const unpriced: FrozenReport['thaw']['unpriced'] = [];
  for (const [storageClass, c] of byClass) {
    const tiers = storageClass === null ? [] : restoreTiers(prices, storageClass);
    if (tiers.length === 0) unpriced.push({ storageClass, ...c });
    for (const t of tiers) estimates.push(restoreCost(prices, storageClass!, t, c.bytes, c.packs, days));
  }
  const files = frozen.files.map((f) => ({ path: f.path, bytes: f.bytes, packs: f.packs }));
  return {
    code: 'storage-frozen',
    remote: frozen.remote,
    location: frozen.location,
    files,
    bytes: files.reduce((n, f) => n + f.bytes, 0),
    packs,
    packBytes: packs.reduce((n, p) => n + p.bytes, 0),
    thaw: {
      command: thawCommand(files.map((f) => f.path)),
      days,
      estimates,
      unpriced,
      priceTable: { provider: prices.provider, region: prices.region, asOf: prices.asOf },
    },
  };
}

/** The lines a checkout or pull prints (to stderr) about frozen files. */
export function formatFrozenReport(
  r: FrozenReport,
  formatBytes: (n: number) => string,
  opts: { maxFiles?: number; rev?: string; then?: string } = {},
): string[] {
  const max = opts.maxFiles ?? 20;
  const lines: string[] = [];
  const where = `frozen on ${r.remote} (${r.packs.length} pack(s), ${formatBytes(r.packBytes)} to restore)`;
  lines.push(
    opts.rev === undefined
      ? `dits: ${r.files.length} file(s), ${formatBytes(r.bytes)}, left as pointers: their content is ${where}; every other file was written.`
      : `dits: the content of ${r.files.length} file(s) at ${opts.rev}, ${formatBytes(r.bytes)}, is ${where}; the rest was fetched into the local store.`,
  );
  for (const f of r.files.slice(0, max)) lines.push(`  frozen: ${f.path} (${formatBytes(f.bytes)})`);
  if (r.files.length > max) lines.push(`  ... and ${r.files.length - max} more (\`git dits pull --json\` lists them all)`);
  lines.push(`To restore them (a copy kept ${r.thaw.days} days; nothing is spent until you say yes):`);
  lines.push(`  ${r.files.length > max ? thawCommand(r.files.slice(0, max).map((f) => f.path)) + ' ...' : r.thaw.command}`);
  for (const e of r.thaw.estimates) {
    lines.push(`  ${e.tier.padEnd(9)} ${formatDollars(e.total).padStart(9)}  ${formatHours(e.hours)}  (${e.storageClass}, ${e.requests} pack(s), ${formatBytes(e.bytes)})`);
  }
  for (const u of r.thaw.unpriced) {
    lines.push(`  ${u.packs} pack(s) (${formatBytes(u.bytes)}) ${u.storageClass ? `in ${u.storageClass}` : 'in an archive class the storage did not name'}: no restore prices in the ${r.thaw.priceTable.provider} table; \`git dits thaw\` says more`);
  }
  if (r.thaw.estimates.length) lines.push(`  (prices: ${r.thaw.priceTable.provider} ${r.thaw.priceTable.region} list prices as of ${r.thaw.priceTable.asOf})`);
  lines.push(opts.then ?? `Then \`git dits pull\` writes them.`);
  return lines;
}
