/**
 * Content-addressed caches of build-time work (the evasive rewrite,
 * evasion.ts; the ES module analysis, module-source-cache.ts), kept beside
 * the package that does the work, in the node_modules tree that holds it:
 * `node_modules/.cache/membrane-snapshot/<name>-<version>-<format>/<key>`,
 * where `version` is that package's and `format` ours, so that a new
 * version of either starts a new cache. Entries are files named by the
 * sha256 of their input, written in the background, whole or not at all
 * (a temporary file renamed), readable by the owner only; the directory is
 * listed once per process. Whoever can write that directory
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
  /** Keep `bytes` as the entry `key` (whole, or not at all), written in the background; never throws. */
  write(key: string, bytes: string | Uint8Array): void;
  /** Resolves once the writes under way have ended. */
  flushed(): Promise<void>;
  /**
   * Removes every entry (the directory, once the writes under way have
   * ended) and forgets the listing, so that the next build in this process
   * is a first build (a directory removed behind the cache's back leaves
   * the listing naming entries that are gone: each is a failed read). For
   * benchmarks and tests.
   */
  clear(): Promise<void>;
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
  // The names in the directory, listed once: a miss costs no failed read (on a slow disk, 800 of them took
  // as long as the work they save).
  let known: Set<string> | undefined;
  const has = (key: string): boolean => {
    if (known === undefined) {
      try {
        known = new Set(fs.readdirSync(dir));
      } catch {
        known = new Set();
      }
    }
    return known.has(key);
  };
  // Written off the build's thread (a synchronous write per module doubled a first build's archive time on a
  // slow disk); a temporary file still being written when the process exits is removed then.
  const writing = new Set<string>();
  const waiters: Array<() => void> = [];
  let cleanup = false;
  const flushed = (): Promise<void> => (writing.size === 0 ? Promise.resolve() : new Promise<void>(resolve => waiters.push(resolve)));
  return {
    dir,
    read: key => {
      if (!has(key)) return undefined;
      try {
        return fs.readFileSync(path.join(dir, key));
      } catch {
        known?.delete(key); // removed since the listing: written again
        return undefined;
      }
    },
    write: (key, bytes) => {
      // Called for an entry absent or damaged (its reader found nothing usable): written, unless it is being written.
      const file = path.join(dir, key);
      const temporary = `${file}.${process.pid}.tmp`;
      if (writing.has(temporary)) return;
      known?.add(key);
      try {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      } catch {
        return; // a read-only disk: the next build does the work again
      }
      if (!cleanup) {
        cleanup = true;
        process.once('exit', () => {
          for (const left of writing) fs.rmSync(left, { force: true });
        });
      }
      writing.add(temporary);
      const done = (): void => {
        writing.delete(temporary);
        if (writing.size === 0) for (const resolve of waiters.splice(0)) resolve();
      };
      fs.writeFile(temporary, bytes, { mode: 0o600 }, written => {
        if (written) return fs.rm(temporary, { force: true }, done); // a full disk: the next build does the work again
        fs.rename(temporary, file, renamed => (renamed ? fs.rm(temporary, { force: true }, done) : done()));
      });
    },
    flushed,
    clear: async () => {
      await flushed();
      fs.rmSync(dir, { recursive: true, force: true });
      known = undefined;
    },
  };
};
