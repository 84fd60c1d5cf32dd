/**
 * Structured logs: one JSON object per line. The server never writes to stdout itself;
 * whoever starts it passes a Logger (the process entry writes lines to stdout, tests
 * collect entries in an array).
 */

export type LogFields = Record<string, unknown>;

export interface Logger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

/** A Logger that hands `write` one JSON line (no trailing newline) per entry. */
export function createJsonLogger(write: (line: string) => void, clock: () => Date = () => new Date()): Logger {
  const emit = (level: string, msg: string, fields?: LogFields): void => {
    const entry: LogFields = { time: clock().toISOString(), level, msg, ...fields };
    const err = entry['err'];
    if (err instanceof Error) entry['err'] = { name: err.name, message: err.message, stack: err.stack };
    write(JSON.stringify(entry));
  };
  return {
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
  };
}
