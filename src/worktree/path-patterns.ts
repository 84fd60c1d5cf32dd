/**
 * Include/exclude patterns for which files a checkout fetches (like git-lfs's
 * lfs.fetchinclude / lfs.fetchexclude): comma-separated globs; `*` matches within a path
 * segment, `**` across segments, `?` one character; a pattern without `/` matches the
 * file name in any directory; a pattern naming a directory matches everything under it.
 */
function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
        if (glob[i + 1] === '/') i++;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}(/.*)?$`);
}

export interface PathFilter {
  matches(relPath: string): boolean;
}

export function parsePatternList(text: string | undefined): string[] {
  return (text ?? '')
    .split(',')
    .map((s) => s.trim().replace(/^\.\//, '').replace(/\/+$/, ''))
    .filter(Boolean);
}

export function createPathFilter(include: string[], exclude: string[]): PathFilter {
  const compile = (p: string): ((s: string) => boolean) => {
    const re = globToRegExp(p);
    return p.includes('/') ? (s) => re.test(s) : (s) => re.test(s.slice(s.lastIndexOf('/') + 1)) || re.test(s);
  };
  const inc = include.map(compile);
  const exc = exclude.map(compile);
  return {
    matches(relPath: string): boolean {
      if (inc.length && !inc.some((f) => f(relPath))) return false;
      return !exc.some((f) => f(relPath));
    },
  };
}
