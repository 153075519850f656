/**
 * Read powers for archiving: compartment-mapper's own Node powers
 * (`makeReadPowers`), with reads done synchronously.
 *
 * compartment-mapper reads one file at a time (its reads queue behind a
 * mutex), each through `fs.promises.readFile`: an open, an fstat, a read
 * and a close, each a round trip to libuv's thread pool. For a service of
 * many small modules the build then mostly waits (800 modules of 4 KB: a
 * third of the archive's time idle on a loaded machine). A build does
 * nothing else while it archives, so these powers read with
 * `fs.readFileSync` and resolve links with `fs.realpathSync.native` (the
 * same `realpath(3)` that `fs.promises.realpath` calls), and hash with
 * `digest('hex')` instead of @endo/hex's JavaScript encoder.
 *
 * Everything they answer is what compartment-mapper's own powers answer:
 * the same bytes, `undefined` for a missing file or a directory (ENOENT,
 * EISDIR), the same errors otherwise, the logical location when a path has
 * no real path, the same lowercase hex sha512.
 *
 * They are made for one archive. esm-archive.ts reads the modules an ES
 * module imports before compartment-mapper gets to them (to see whether
 * one is an `export *` barrel); `readAhead` keeps those bytes until the
 * archive's own read of the file takes them, so each module is read from
 * disk once, and the text looked into is the text archived.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import url from 'node:url';
import { makeReadPowers } from '@endo/compartment-mapper/node-powers.js';

type NodeReadPowers = ReturnType<typeof makeReadPowers>;
type FileUrl = Parameters<NodeReadPowers['read']>[0];

const absent = (error: unknown): boolean => {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'EISDIR';
};

/**
 * Read powers over the local file system for one archive's
 * `mapNodeModules` and `makeArchiveFromMap`. `read(location)` gives a file
 * URL's bytes and throws what `fs.readFileSync` throws; `maybeRead` gives
 * undefined where the file is missing or is a directory;
 * `canonical(location)` is the real location (a trailing slash kept), or
 * the location itself when it has none; `computeSha512(bytes)` is
 * lowercase hex. `readAhead(file)` (an absolute path) gives a file's bytes
 * now, or undefined when it cannot be read; the archive's first read of
 * that file then gets these very bytes.
 */
export const makeArchiveReadPowers = (): { powers: NodeReadPowers; readAhead: (file: string) => Uint8Array | undefined } => {
  const base = makeReadPowers({ fs, url, crypto });
  const { fileURLToPath, pathToFileURL } = url;
  /** Files read ahead that the archive has not read yet, and the files it has read. */
  const early = new Map<string, Uint8Array>();
  const taken = new Set<string>();
  const readFile = (file: string): Uint8Array => {
    taken.add(file);
    const bytes = early.get(file);
    if (bytes === undefined) return fs.readFileSync(file);
    early.delete(file);
    return bytes;
  };
  const readAhead = (file: string): Uint8Array | undefined => {
    const kept = early.get(file);
    if (kept !== undefined) return kept;
    let bytes: Uint8Array;
    try {
      bytes = fs.readFileSync(file);
    } catch {
      return undefined;
    }
    if (!taken.has(file)) early.set(file, bytes);
    return bytes;
  };
  const read = async (location: FileUrl): Promise<Uint8Array> => readFile(fileURLToPath(location));
  const maybeRead = async (location: FileUrl): Promise<Uint8Array | undefined> => {
    try {
      return readFile(fileURLToPath(location));
    } catch (error) {
      if (absent(error)) return undefined;
      throw error;
    }
  };
  const canonical = async (location: FileUrl): Promise<FileUrl> => {
    try {
      if (location.endsWith('/')) return `${pathToFileURL(fs.realpathSync.native(fileURLToPath(location).replace(/\/$/, ''))).href}/` as FileUrl;
      return pathToFileURL(fs.realpathSync.native(fileURLToPath(location))).href as FileUrl;
    } catch {
      return location;
    }
  };
  const computeSha512 = (bytes: Uint8Array): string => crypto.createHash('sha512').update(bytes).digest('hex');
  return { powers: { ...base, read, maybeRead, canonical, computeSha512 } as NodeReadPowers, readAhead };
};
