/** This package's version, read once from its package.json (found from here, compiled or not). */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const findVersion = (): string => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'membrane-snapshot' && pkg.version) return pkg.version;
    }
    const parent = path.dirname(dir);
    if (parent === dir) return '0.0.0-unknown';
    dir = parent;
  }
};

export const libraryVersion: string = findVersion();
