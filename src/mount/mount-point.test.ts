import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fuseDeviceHint } from './mount-point.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('fuseDeviceHint: what a failed mount tells the user', () => {
  it('no device: load the module, or give the container the device', () => {
    const hint = fuseDeviceHint('/nonexistent/dits-test/fuse');
    expect(hint).toContain('there is no /nonexistent/dits-test/fuse here');
    expect(hint).toContain('modprobe fuse');
    expect(hint).toContain('--device /dev/fuse');
  });

  it('a device this user may not open (as /dev/fuse of mode 0600 for anyone but root): its mode, and how to open it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-fuse-hint-'));
    dirs.push(dir);
    const dev = path.join(dir, 'fuse');
    fs.writeFileSync(dev, '');
    fs.chmodSync(dev, 0o600);
    // the tests run as root, whom access() never refuses: refused as a user would be
    const refuse = (): void => {
      throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    };
    const hint = fuseDeviceHint(dev, refuse);
    expect(hint).toBe(`${dev} (mode 0600) is not open to this user: make it 0666 as Debian does (\`sudo chmod 0666 ${dev}\`), or mount as root`);
    // one that opens: the general advice
    expect(fuseDeviceHint(dev, () => {})).toMatch(/^check that FUSE works here/);
  });
});
