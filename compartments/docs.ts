/**
 * Where the library's own documents are on this host, so messages point at
 * a file the user can open: the installed package ships `docs/`
 * (`node_modules/membrane-snapshot/docs/...` in a user's project).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const findLibraryRoot = (): string | undefined => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string };
      if (pkg.name === 'membrane-snapshot') return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
};

let root: string | null | undefined;

/**
 * The absolute path of a document shipped with the library (`relative` as in
 * the package, e.g. `docs/environment.md`); the package-relative path when the
 * package root cannot be found.
 */
export const libraryDoc = (relative: string): string => {
  if (root === undefined) root = findLibraryRoot() ?? null;
  return root === null ? `membrane-snapshot/${relative}` : path.join(root, relative);
};
