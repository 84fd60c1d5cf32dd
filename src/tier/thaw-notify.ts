/**
 * "Your thaw is done": a desktop notification where one can be shown (notify-send on a
 * machine with a display), and/or a webhook (`--notify-url`): a POST of the JSON facts.
 * Neither may fail the thaw: each answers what happened, for the command to print.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface NotifyResult {
  desktop: 'sent' | 'no-display' | 'no-notifier' | 'failed';
  webhook?: { ok: boolean; status?: number; error?: string };
}

/** The notify-send on PATH, or null. */
export function findNotifier(env: NodeJS.ProcessEnv): string | null {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, 'notify-send');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

export async function notifyThawDone(opts: { env: NodeJS.ProcessEnv; title: string; body: string; url?: string; payload: unknown; timeoutMs?: number }): Promise<NotifyResult> {
  const result: NotifyResult = { desktop: 'no-display' };
  if (opts.env.DISPLAY || opts.env.WAYLAND_DISPLAY) {
    const bin = findNotifier(opts.env);
    if (!bin) result.desktop = 'no-notifier';
    else {
      result.desktop = await new Promise((resolve) => {
        const child = spawn(bin, ['--app-name=git dits', opts.title, opts.body], { env: opts.env, stdio: 'ignore' });
        child.on('error', () => resolve('failed'));
        child.on('exit', (code) => resolve(code === 0 ? 'sent' : 'failed'));
      });
    }
  }
  if (opts.url) {
    try {
      const res = await fetch(opts.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(opts.payload),
        signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000),
      });
      result.webhook = { ok: res.ok, status: res.status };
    } catch (err) {
      result.webhook = { ok: false, error: (err as Error).message };
    }
  }
  return result;
}
