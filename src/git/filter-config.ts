/**
 * The git config that makes Git run Dits (filter, diff and merge drivers), calling this
 * installation's entry point by its absolute path: written globally by `git dits install`,
 * per repository by `install --local` and by the remote helper in a clone.
 */

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The git config Dits needs, with the absolute path of this installation's entry point. */
export function filterConfig(ditsBin: string): [string, string][] {
  const b = shellQuote(ditsBin);
  return [
    ['filter.dits.process', `${b} filter-process`],
    ['filter.dits.clean', `${b} clean -- %f`],
    ['filter.dits.smudge', `${b} smudge -- %f`],
    ['filter.dits.required', 'true'],
    ['diff.dits.textconv', `${b} textconv`],
    ['diff.dits.cachetextconv', 'false'],
    ['diff.dits.command', `${b} diff-driver`],
    ['merge.dits.name', 'Dits binary merge (keeps ours, reports a conflict)'],
    ['merge.dits.driver', `${b} merge-driver %O %A %B %P`],
  ];
}
