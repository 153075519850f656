/**
 * Content-addressed caches of build-time work (the evasive rewrite,
 * evasion.ts; the ES module analysis, module-source-cache.ts), kept beside
 * the package that does the work, in the node_modules tree that holds it:
 * `node_modules/.cache/membrane-snapshot/<name>-<version>-<format>/<key>`,
 * where `version` is that package's and `format` ours, so that a new
 * version of either starts a new cache. Entries are files named by the
 * sha256 of their input, written whole or not at all (a temporary file
 * renamed), readable by the owner only. Whoever can write that directory
 * can also write node_modules, so a cache trusts what it finds there; a
 * cache that cannot be read or written is skipped, never an error. Nothing
 * is ever evicted: delete the directory to empty it.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export interface BuildCache {
  /** The directory of the entries. */
  readonly dir: string;
  /** The entry `key`, or undefined when there is none or it cannot be read. */
  read(key: string): Buffer | undefined;
  /** Keep `bytes` as the entry `key` (whole, or not at all); never throws. */
  write(key: string, bytes: string | Uint8Array): void;
}

/**
 * The cache `name` for work done by `packageName` (resolved from
 * `fromModule`, an import.meta.url), at our cache `format`; undefined when
 * that package is not inside a node_modules tree or cannot be found.
 */
export const buildCache = (name: string, packageName: string, format: number, fromModule: string): BuildCache | undefined => {
  let dir: string;
  try {
    const entry = createRequire(fromModule).resolve(packageName);
    const at = entry.lastIndexOf(`${path.sep}node_modules${path.sep}`);
    if (at < 0) return undefined;
    const packageDir = path.join(entry.slice(0, at), 'node_modules', ...packageName.split('/'));
    const version = (JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
    dir = path.join(entry.slice(0, at), 'node_modules', '.cache', 'membrane-snapshot', `${name}-${version}-${format}`);
  } catch {
    return undefined;
  }
  return {
    dir,
    read: key => {
      try {
        return fs.readFileSync(path.join(dir, key));
      } catch {
        return undefined;
      }
    },
    write: (key, bytes) => {
      const file = path.join(dir, key);
      const temporary = `${file}.${process.pid}.tmp`;
      try {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        fs.writeFileSync(temporary, bytes, { mode: 0o600 });
        fs.renameSync(temporary, file);
      } catch {
        fs.rmSync(temporary, { force: true }); // a read-only or full disk: the next build does the work again
      }
    },
  };
};
