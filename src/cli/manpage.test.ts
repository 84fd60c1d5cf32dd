import { describe, expect, it } from 'vitest';
import { renderManPage } from './manpage.js';

describe('renderManPage', () => {
  it('lists each command\'s options and each subcommand from the same tables as --help', () => {
    const page = renderManPage(
      [
        { name: 'gc', usage: 'git dits gc [--prune=<age>]', summary: 'Remove content', options: { prune: { type: 'string', value: '<age>', description: 'keep content newer than this', default: '1h' }, json: { type: 'boolean', description: 'print JSON' } } },
        { name: 'server', usage: 'git dits server <sub>', summary: 'Administer', subcommands: { 'token create': { usage: 'git dits server token create <user> <name>', summary: 'Create a token', options: { url: { type: 'string', description: 'the server URL' } } } } },
      ],
      '0.1.0',
    );
    expect(page).toContain('\\fB--prune\\fR \\fI<age>\\fR\nkeep content newer than this (default: 1h)');
    expect(page).toContain('\\fB--json\\fR\nprint JSON');
    expect(page).toContain('.B git dits server token create <user> <name>');
    expect(page).toContain('\\fB--url\\fR \\fI<value>\\fR\nthe server URL');
  });
});
