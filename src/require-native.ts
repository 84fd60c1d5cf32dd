/**
 * Loads an npm package's native binding with process.report hidden. Such loaders (zstd's,
 * napi-rs's as a fallback) ask process.report.getReport() whether the C library is musl;
 * a report waits for every worker thread to answer, and the filter process's pipe reader
 * (git/fd-reader.ts) sits in a blocking read while Git waits for the filter's answer, so
 * a first load there hung for good. Without process.report they read /usr/bin/ldd instead.
 */
export function requireNative<T>(req: NodeJS.Require, id: string): T {
  const report = Object.getOwnPropertyDescriptor(process, 'report');
  const hide = report?.configurable === true;
  try {
    if (hide) Object.defineProperty(process, 'report', { value: undefined, configurable: true });
    return req(id) as T;
  } finally {
    if (hide) Object.defineProperty(process, 'report', report);
  }
}
