/**
 * Content-addressed caches of build-time work (the evasive rewrite,
 * evasion.ts; the ES module analysis, module-source-cache.ts), kept beside
 * the package that does the work, in the node_modules tree that holds it:
 * `node_modules/.cache/membrane-snapshot/<name>-<version>-<format>-pack<P>/`,
 * where `version` is that package's, `format` the entries' and P the pack
 * layout's (PACK_LAYOUT), so that a new version of any starts a new cache.
 * Entries are keyed by the sha256 of their input.
 *
 * Entries live in pack files, many to a file: a process keeps the entries
 * it makes in memory and writes them as one pack (`<time>-<pid>-<random>.pack`,
 * see encodePack) once its build pauses for PACK_DELAY_MS, when `flushed()`
 * is awaited, or as it exits; in the background, whole or not at all (a
 * temporary file renamed), readable by the owner only. One file per entry
 * cost a first build of 800 modules about 300 ms of file-system calls (an
 * open, a write, a close and a rename each; bench (g)), a pack about 8 ms.
 * The first read of a process reads every pack of the directory (a later
 * pack's entry wins over an earlier one's), removes those whose CRC-32 is
 * wrong (damaged), and merges them into one when there are more than
 * MAX_PACKS; a temporary file left by a build that was killed is removed
 * an hour later.
 *
 * What a later build archives comes from there, so:
 * - no service writes there, whatever its reach policy (reach.ts refuses
 *   any path inside a `node_modules/.cache/membrane-snapshot`, and a
 *   rename of a directory above a cache this process uses);
 * - a cache is used only when its directory and the one above it belong
 *   to this process's user and no one else may write them, and a pack only
 *   when it is a regular file of that user's, no one else may write it,
 *   and it is at most MAX_PACK_BYTES (a directory made by another user, a
 *   link to a shared place, a FIFO, a file the size of the disk: skipped).
 * Past that, a cache trusts what it finds: whoever can write there as this
 * user can also write node_modules. A cache that cannot be read or written
 * is skipped, never an error (nor is a damaged pack it cannot remove).
 * Nothing is ever evicted: delete the directory to empty it.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { crc32 } from '../replay-log/crc.js';
import { keepBuildCacheFromServices } from './reach.js';

export interface BuildCache {
  /** The directory of the pack files. */
  readonly dir: string;
  /** The entry `key`, or undefined when there is none or it cannot be read. */
  read(key: string): Buffer | undefined;
  /** Keep `bytes` as the entry `key` (written with the next pack, whole or not at all); never throws. */
  write(key: string, bytes: string | Uint8Array): void;
  /** Writes the entries not yet written; resolves once every write under way has ended. */
  flushed(): Promise<void>;
  /**
   * Removes every entry (the directory, once the writes under way have
   * ended) and forgets what it read, so that the next build in this process
   * is a first build. For benchmarks and tests.
   */
  clear(): Promise<void>;
  /**
   * Writes the entries not yet written, then forgets what it read: the
   * next read reads the packs again, as a new process would. For
   * benchmarks.
   */
  reread(): Promise<void>;
}

/** How long a build must stop making entries before they are written, in ms. */
export const PACK_DELAY_MS = 200;
/** More packs than this are merged into one when a process first reads the cache. */
export const MAX_PACKS = 64;
/** A larger pack file is not read, in bytes. */
export const MAX_PACK_BYTES = 512 * 1024 * 1024;
/** The pack layout (encodePack), part of the directory's name. */
export const PACK_LAYOUT = 1;
/** A temporary file older than this was left by a build that died, in ms. */
const STALE_TEMPORARY_MS = 60 * 60 * 1000;

const MAGIC = Buffer.from('MSBCACHE1\n');
const KEY_BYTES = 2;
const LENGTH_BYTES = 4;
const CRC_BYTES = 4;

/**
 * A pack's bytes: the magic `MSBCACHE1\n`, then per entry its key's length
 * (uint16 BE), its length (uint32 BE, bytes), the key (UTF-8) and the
 * entry; then the CRC-32 of all that (uint32 BE). Throws RangeError for a
 * key over 65,535 bytes or an entry over 4 GiB.
 */
export const encodePack = (entries: Iterable<readonly [string, Uint8Array]>): Buffer => {
  const parts: Array<[Buffer, Uint8Array]> = [];
  let size = MAGIC.length + CRC_BYTES;
  for (const [key, bytes] of entries) {
    const name = Buffer.from(key, 'utf8');
    if (name.length > 0xffff || bytes.length > 0xffffffff) throw new RangeError(`build cache: entry ${key} too large for a pack`);
    parts.push([name, bytes]);
    size += KEY_BYTES + LENGTH_BYTES + name.length + bytes.length;
  }
  const pack = Buffer.allocUnsafe(size);
  let at = MAGIC.copy(pack, 0);
  for (const [name, bytes] of parts) {
    at = pack.writeUInt16BE(name.length, at);
    at = pack.writeUInt32BE(bytes.length, at);
    at += name.copy(pack, at);
    pack.set(bytes, at);
    at += bytes.length;
  }
  pack.writeUInt32BE(crc32(pack.subarray(0, at)), at);
  return pack;
};

/** A pack's entries (views of `pack`), or undefined when it is not a whole pack (damaged, cut short, not one). */
export const decodePack = (pack: Buffer): Map<string, Buffer> | undefined => {
  const end = pack.length - CRC_BYTES;
  if (end < MAGIC.length || !pack.subarray(0, MAGIC.length).equals(MAGIC) || crc32(pack.subarray(0, end)) !== pack.readUInt32BE(end)) return undefined;
  const entries = new Map<string, Buffer>();
  let at = MAGIC.length;
  while (at < end) {
    if (at + KEY_BYTES + LENGTH_BYTES > end) return undefined;
    const keyLength = pack.readUInt16BE(at);
    const length = pack.readUInt32BE(at + KEY_BYTES);
    at += KEY_BYTES + LENGTH_BYTES;
    if (at + keyLength + length > end) return undefined;
    entries.set(pack.toString('utf8', at, at + keyLength), pack.subarray(at + keyLength, at + keyLength + length));
    at += keyLength + length;
  }
  return entries;
};

/** A new pack's name: its time first (packs list in the order they were written), then what makes it unique. */
const packName = (): string => `${Date.now().toString(36).padStart(9, '0')}-${process.pid}-${randomBytes(4).toString('hex')}.pack`;

/**
 * The cache `name` for work done by `packageName` (resolved from
 * `fromModule`, an import.meta.url), at our cache `format`; undefined when
 * that package is not inside a node_modules tree or cannot be found.
 */
export const buildCache = (name: string, packageName: string, format: number, fromModule: string): BuildCache | undefined => {
  try {
    const entry = createRequire(fromModule).resolve(packageName);
    const at = entry.lastIndexOf(`${path.sep}node_modules${path.sep}`);
    if (at < 0) return undefined;
    const packageDir = path.join(entry.slice(0, at), 'node_modules', ...packageName.split('/'));
    const version = (JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
    const root = path.join(entry.slice(0, at), 'node_modules', '.cache', 'membrane-snapshot');
    keepBuildCacheFromServices(root);
    return openBuildCache(path.join(root, `${name}-${version}-${format}-pack${PACK_LAYOUT}`));
  } catch {
    return undefined;
  }
};

/** This process's user, or undefined where there are no user ids (Windows). */
const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
/** Whether a file's owner is this user and no one else may write it (always true without user ids). */
const owned = (stat: fs.Stats): boolean => uid === undefined || (stat.uid === uid && (stat.mode & 0o022) === 0);
/**
 * Whether `dir` is absent, or a directory (itself, not a link to one) this user owns that no one else may
 * write. A link in its place (node_modules/.cache removed and linked to a directory of a service's choosing,
 * found by the adversarial review) is not used.
 */
const ownedOrAbsent = (dir: string): boolean => {
  try {
    const stat = fs.lstatSync(dir);
    return stat.isDirectory() && owned(stat);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT';
  }
};
/** Whether `dir` is absent or not a link (node_modules/.cache, which other tools share, may be anyone's). */
const notALink = (dir: string): boolean => {
  try {
    return !fs.lstatSync(dir).isSymbolicLink();
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT';
  }
};
/** Remove `file` if it can be; never throws (a file another user owns, a directory that is read-only). */
const removeQuietly = (file: string): void => {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // left where it is
  }
};

/** The cache of pack files in `dir` (made when the first pack is written). */
export const openBuildCache = (dir: string): BuildCache => {
  let entries: Map<string, Buffer> | undefined;
  const pending = new Map<string, Uint8Array>();
  let timer: NodeJS.Timeout | undefined;
  // Temporary files being written, and who waits for them.
  const writing = new Set<string>();
  const waiters: Array<() => void> = [];
  let exitHook = false;
  // Set by load(): the directory is not this user's alone.
  let disabled = false;

  // As the process exits, what is left is written at once, and a pack still being written is removed.
  const hookExit = (): void => {
    if (exitHook) return;
    exitHook = true;
    process.once('exit', () => {
      flushSync();
      for (const left of writing) removeQuietly(left);
    });
  };
  const written = (temporary: string) => (): void => {
    writing.delete(temporary);
    if (writing.size === 0) for (const resolve of waiters.splice(0)) resolve();
  };
  /** Write `pack` as a new pack file in the background; `then` runs once it is in place. */
  const writePack = (pack: Buffer, then?: () => void): void => {
    if (disabled) return;
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch {
      return; // a read-only disk: the next build does the work again
    }
    hookExit();
    const file = path.join(dir, packName());
    const temporary = `${file}.tmp`;
    writing.add(temporary);
    const done = written(temporary);
    fs.writeFile(temporary, pack, { mode: 0o600 }, failed => {
      if (failed) return fs.rm(temporary, { force: true }, done); // a full disk: the next build does the work again
      fs.rename(temporary, file, renamed => {
        if (renamed) return fs.rm(temporary, { force: true }, done);
        then?.();
        done();
      });
    });
  };
  const flush = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (pending.size === 0) return;
    const pack = encodePack(pending);
    pending.clear();
    writePack(pack);
  };
  const flushSync = (): void => {
    if (pending.size === 0 || disabled) return;
    const file = path.join(dir, packName());
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      fs.writeFileSync(`${file}.tmp`, encodePack(pending), { mode: 0o600 });
      fs.renameSync(`${file}.tmp`, file);
    } catch {
      removeQuietly(`${file}.tmp`); // a directory another user made, a read-only disk: the next build does the work again
    }
    pending.clear();
  };
  const flushed = (): Promise<void> => {
    flush();
    return writing.size === 0 ? Promise.resolve() : new Promise<void>(resolve => waiters.push(resolve));
  };
  const load = (): Map<string, Buffer> => {
    if (entries) return entries;
    entries = new Map();
    // A directory another user made or may write, or a link (it or one of the two above it, up to node_modules/.cache):
    // not used, neither read nor written.
    disabled = !ownedOrAbsent(dir) || !ownedOrAbsent(path.dirname(dir)) || !notALink(path.dirname(path.dirname(dir)));
    if (disabled) return entries;
    let names: string[];
    try {
      names = fs.readdirSync(dir).sort();
    } catch {
      return entries;
    }
    const read: string[] = [];
    for (const file of names) {
      const full = path.join(dir, file);
      let stat: fs.Stats;
      try {
        stat = fs.lstatSync(full);
      } catch {
        continue; // removed since the listing (merged by another build)
      }
      if (!stat.isFile() || !owned(stat)) continue;
      if (file.endsWith('.tmp')) {
        if (Date.now() - stat.mtimeMs > STALE_TEMPORARY_MS) removeQuietly(full); // left by a build that was killed
        continue;
      }
      if (!file.endsWith('.pack') || stat.size > MAX_PACK_BYTES) continue;
      let pack: Map<string, Buffer> | undefined;
      try {
        pack = decodePack(fs.readFileSync(full));
      } catch {
        continue; // removed since the listing (merged by another build)
      }
      if (!pack) {
        removeQuietly(full); // damaged: its entries are made and written again
        continue;
      }
      read.push(file);
      for (const [key, bytes] of pack) entries.set(key, bytes);
    }
    if (read.length > MAX_PACKS) {
      writePack(encodePack(entries), () => {
        for (const file of read) removeQuietly(path.join(dir, file));
      });
    }
    return entries;
  };
  return {
    dir,
    read: key => load().get(key),
    write: (key, bytes) => {
      // Called for an entry absent or unusable (its reader found nothing it could use): kept and written again.
      const entry = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      load().set(key, entry);
      pending.set(key, entry);
      hookExit();
      if (timer) timer.refresh();
      else (timer = setTimeout(flush, PACK_DELAY_MS)).unref();
    },
    flushed,
    clear: async () => {
      pending.clear();
      await flushed();
      fs.rmSync(dir, { recursive: true, force: true });
      entries = undefined;
    },
    reread: async () => {
      await flushed();
      entries = undefined;
    },
  };
};
