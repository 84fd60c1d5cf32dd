/**
 * The gitremote-helpers protocol (gitremote-helpers(7)), the subset Dits speaks:
 *
 *   capabilities            -> "option" "fetch" "push" LF-terminated, then a blank line
 *   list | list for-push    -> "<oid> <refname>" | "@<target> HEAD", then a blank line
 *   option <name> <value>   -> "ok" | "unsupported" | "error <msg>"
 *   fetch <oid> <name>      \ a batch of lines ended by a blank line;
 *   ...                     /  -> a blank line once every object is in the repository
 *   push [+]<src>:<dst>     \ a batch ended by a blank line;
 *   ...                     /  -> "ok <dst>" | "error <dst> <why>" per ref, then a blank line
 *   (blank line or EOF)     -> exit
 *
 * Pure over streams: lines come from any async iterable of buffers, replies go to a
 * Writable the caller owns. Everything else (storage, git) is behind `RemoteHelperHandlers`.
 */
import type { Writable } from 'node:stream';

export interface RefAdvert {
  name: string;
  /** An object id, or "@<refname>" for a symbolic ref such as HEAD. */
  value: string;
}

export interface PushSpec {
  /** Local ref or object; empty for a delete. */
  src: string;
  dst: string;
  force: boolean;
}

export interface PushOutcome {
  dst: string;
  /** Null for success; otherwise git's reason word(s), e.g. "non-fast-forward", "fetch first". */
  error: string | null;
}

export interface RemoteHelperHandlers {
  list(forPush: boolean): Promise<RefAdvert[]>;
  fetch(wants: { oid: string; name: string }[]): Promise<void>;
  push(specs: PushSpec[]): Promise<PushOutcome[]>;
  /** 'ok', 'unsupported', or an error message. */
  option(name: string, value: string): 'ok' | 'unsupported' | { error: string };
}

/** Splits a byte stream into LF-terminated lines (without the LF). */
export async function* readLines(input: AsyncIterable<Buffer | string>): AsyncGenerator<string> {
  let rest = '';
  for await (const piece of input) {
    rest += typeof piece === 'string' ? piece : piece.toString('utf8');
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      yield rest.slice(0, nl);
      rest = rest.slice(nl + 1);
    }
  }
  if (rest) yield rest;
}

function write(out: Writable, text: string): void {
  out.write(text);
}

export async function serveRemoteHelper(input: AsyncIterable<Buffer | string>, out: Writable, handlers: RemoteHelperHandlers): Promise<void> {
  const lines = readLines(input)[Symbol.asyncIterator]();
  const next = async (): Promise<string | null> => {
    const r = await lines.next();
    return r.done ? null : r.value;
  };
  for (;;) {
    const line = await next();
    if (line === null || line === '') return;
    if (line === 'capabilities') {
      write(out, 'option\nfetch\npush\n\n');
    } else if (line === 'list' || line === 'list for-push') {
      const refs = await handlers.list(line === 'list for-push');
      write(out, refs.map((r) => `${r.value} ${r.name}\n`).join('') + '\n');
    } else if (line.startsWith('option ')) {
      const rest = line.slice('option '.length);
      const sp = rest.indexOf(' ');
      const name = sp < 0 ? rest : rest.slice(0, sp);
      const value = sp < 0 ? '' : rest.slice(sp + 1);
      const r = handlers.option(name, value);
      write(out, r === 'ok' ? 'ok\n' : r === 'unsupported' ? 'unsupported\n' : `error ${r.error}\n`);
    } else if (line.startsWith('fetch ')) {
      const wants: { oid: string; name: string }[] = [];
      for (let l: string | null = line; l !== null && l !== ''; l = await next()) {
        const [, oid, name] = l.split(' ');
        if (oid && name) wants.push({ oid, name });
      }
      await handlers.fetch(wants);
      write(out, '\n');
    } else if (line.startsWith('push ')) {
      const specs: PushSpec[] = [];
      for (let l: string | null = line; l !== null && l !== ''; l = await next()) {
        let spec = l.slice('push '.length);
        const force = spec.startsWith('+');
        if (force) spec = spec.slice(1);
        const colon = spec.lastIndexOf(':');
        specs.push({ src: spec.slice(0, colon), dst: spec.slice(colon + 1), force });
      }
      const outcomes = await handlers.push(specs);
      write(out, outcomes.map((o) => (o.error === null ? `ok ${o.dst}\n` : `error ${o.dst} ${o.error}\n`)).join('') + '\n');
    } else {
      throw new Error(`git-remote-dits: unknown command from git: ${JSON.stringify(line)}`);
    }
  }
}
