/** Resolving a service specifier as `import()` would, against the calling module. */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SnapshotError } from '../replay-log/index.js';

const libDir = path.dirname(fileURLToPath(import.meta.url));
/** Our own code, compiled or (through source maps / tsx) as sources: never "the caller". */
const packageRoot = path.basename(path.dirname(libDir)) === 'dist' ? path.resolve(libDir, '..', '..') : path.resolve(libDir, '..');
const ownDirs = ['dist', 'lib', 'membrane', 'compartments', 'replay-log'].map(d => path.join(packageRoot, d) + path.sep);
const isOwnFile = (file: string): boolean => ownDirs.some(dir => file.startsWith(dir));

/** The URL of the module that called into this package (from the stack). */
export const callerUrl = (): string | undefined => {
  const stack = new Error('caller').stack ?? '';
  for (const line of stack.split('\n').slice(1)) {
    const match = /\(?((?:file:\/\/)?\/[^():]+|[A-Za-z]:\\[^():]+):\d+:\d+\)?\s*$/.exec(line.trim());
    if (!match) continue;
    const file = match[1].startsWith('file://') ? fileURLToPath(match[1]) : match[1];
    if (isOwnFile(file) || file.includes(`${path.sep}node_modules${path.sep}tsx${path.sep}`)) continue;
    return pathToFileURL(file).href;
  }
  return undefined;
};

/**
 * TypeScript's NodeNext convention, as for the imports inside a service
 * (compartments/node-resolution.ts): `./svc.js` names `svc.ts` when there is
 * no `svc.js` (`.mjs` for `.mts`, `.cjs` for `.cts`).
 */
const typescriptSource = (url: string): string => {
  const emitted = /\.([cm]?)js$/.exec(url);
  if (!emitted) return url;
  try {
    if (fs.existsSync(fileURLToPath(url))) return url;
    const source = `${url.slice(0, -emitted[0].length)}.${emitted[1]}ts`;
    return fs.existsSync(fileURLToPath(source)) ? source : url;
  } catch {
    return url;
  }
};

/**
 * importService's `base` as the URL specifiers resolve against: a file:
 * URL or a path (relative to the working directory), of a module or of a
 * directory (a directory's URL ends with a slash, so that `./svc.js` is
 * found inside it, not beside it). Any other URL (`http://...`) is USAGE:
 * services load from files.
 */
const baseUrl = (base: string): string => {
  if (base === '') throw new SnapshotError('USAGE', 'importService(): base is an empty string; give a file path or a file: URL, or leave it out to resolve against the calling module.');
  let url: URL;
  if (/^[a-z][a-z0-9+.-]+:/i.test(base)) {
    try {
      url = new URL(base);
    } catch (cause) {
      throw new SnapshotError('USAGE', `importService(): base ${JSON.stringify(base)} is not a valid URL; give a file path or a file: URL.`, { cause });
    }
    if (url.protocol !== 'file:') throw new SnapshotError('USAGE', `importService(): base ${JSON.stringify(base)} is a ${url.protocol} URL; services load from files: give a file path or a file: URL.`);
  } else url = pathToFileURL(path.resolve(base));
  if (!url.pathname.endsWith('/')) {
    let directory = false;
    try {
      directory = fs.statSync(url).isDirectory();
    } catch {
      directory = false; // a module that does not exist yet resolves as a file's URL
    }
    if (directory) url.pathname += '/';
  }
  return url.href;
};

export const resolveSpecifier = (specifier: string, base: string | undefined): string => {
  const from = base === undefined ? (callerUrl() ?? pathToFileURL(`${process.cwd()}${path.sep}`).href) : baseUrl(base);
  if (specifier.startsWith('file:')) return typescriptSource(specifier);
  if (path.isAbsolute(specifier)) return typescriptSource(pathToFileURL(specifier).href);
  if (specifier.startsWith('./') || specifier.startsWith('../')) return typescriptSource(new URL(specifier, from).href);
  try {
    return pathToFileURL(createRequire(from).resolve(specifier)).href;
  } catch (cause) {
    throw new SnapshotError('SERVICE_LOAD_FAILED', `cannot resolve service "${specifier}" from ${from}`, { cause });
  }
};

