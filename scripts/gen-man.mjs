#!/usr/bin/env node
// Writes man/man1/git-dits.1 from the built CLI (dist/): `git dits --help` becomes `man git-dits`.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { visibleCommands, VERSION } = await import(path.join(root, 'dist/src/cli/main.js'));
const { renderManPage } = await import(path.join(root, 'dist/src/cli/manpage.js'));
const page = renderManPage(await visibleCommands(), VERSION);
fs.mkdirSync(path.join(root, 'man', 'man1'), { recursive: true });
const dest = path.join(root, 'man', 'man1', 'git-dits.1');
fs.writeFileSync(`${dest}.tmp`, page);
fs.renameSync(`${dest}.tmp`, dest);
