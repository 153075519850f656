/** This package's version, read once from its package.json. */
import fs from 'node:fs';

const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export const libraryVersion: string = pkg.version;
