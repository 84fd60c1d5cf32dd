/**
 * Paths as NLE projects write them, turned into plain paths.
 *
 *   file:///Users/ed/A%20B.mov         -> /Users/ed/A B.mov     (FCPXML, RFC 8089)
 *   file://localhost/Volumes/M/a.mov   -> /Volumes/M/a.mov      (xmeml)
 *   file://localhost/C%3a/Media/a.mov  -> C:/Media/a.mov        (xmeml on Windows)
 *   file://server/share/a.mov          -> //server/share/a.mov  (UNC)
 *   Media/a%20b.mov                    -> Media/a b.mov         (relative URL)
 * Malformed percent escapes are kept as written rather than failing the whole project.
 */

export function fileUrlToPath(url: string): string {
  const trimmed = url.trim();
  const m = /^file:(?:\/\/([^/]*))?(\/.*)?$/i.exec(trimmed);
  if (!m) {
    // Not a file URL: a relative URL reference or a plain path.
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) return trimmed; // http:// etc.: leave alone
    return /%[0-9a-f]{2}/i.test(trimmed) ? percentDecode(trimmed) : trimmed;
  }
  const host = m[1] ?? '';
  let path = percentDecode(m[2] ?? '/');
  if (/^\/[a-z]:(\/|$)/i.test(path)) path = path.slice(1); // /C:/x -> C:/x
  if (host !== '' && host.toLowerCase() !== 'localhost') return `//${host}${path}`;
  return path;
}

function percentDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s.replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  }
}

/** Last path component, for either separator. */
export function baseName(path: string): string {
  const parts = path.split(/[\\/]/).filter((p) => p !== '');
  return parts[parts.length - 1] ?? '';
}
