/**
 * The restore bundle: restore-entry.ts and everything it imports (ses,
 * compartment-mapper's archive loader, msgpackr, our modules) as one
 * strict function body, written by tools/bundle-restore.mjs after tsc
 * (`npm run build`). The CLI's restore loads it instead of the modules:
 * one file read and compiled instead of about 180 modules resolved, read,
 * linked and compiled one by one.
 *
 * It is compiled with V8's code cache. The cache is written beside the
 * bundle after the first restore that ran without a valid one (the
 * functions a restore runs are compiled by then), named after a hash of
 * the bundle's text so that a rebuilt bundle never meets an older cache
 * (the bundler also deletes them), and checked against the sha256 it
 * starts with (a damaged cache is ignored and written again); V8 itself
 * rejects a cache made by another V8 or with other flags, and the bundle
 * is then compiled from source as if there were none.
 *
 * In a checkout, a bundle older than the compiled restore-entry.js is
 * stale (a tsc run after the bundling rewrote the modules) and is not
 * used: the modules are. An installed package's bundle is always used.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export type RestoreLibrary = typeof import('./restore-entry.js');

export interface RestoreBundle {
  readonly library: RestoreLibrary;
  /** Write the code cache when there was no valid one. Call after the restore ran; never throws. */
  saveCache(): void;
}

const BUNDLE = 'restore-entry.bundle.cjs';

/** Load the bundle beside this module, or undefined when there is none or it is stale. */
export const loadRestoreBundle = (): RestoreBundle | undefined => {
  const dir = path.dirname(fileURLToPath(import.meta.url));
  const file = path.join(dir, BUNDLE);
  try {
    const stat = fs.statSync(file);
    // In a checkout (the bundler beside dist/), a tsc run after the bundling makes the bundle stale. An
    // installed package has no bundler, and npm gives its files the times it unpacked them at: trusted.
    const checkout = fs.existsSync(path.join(dir, '..', '..', 'tools', 'bundle-restore.mjs'));
    if (checkout && stat.mtimeMs < fs.statSync(path.join(dir, 'restore-entry.js')).mtimeMs) return undefined;
  } catch {
    return undefined;
  }
  const source = fs.readFileSync(file, 'utf8');
  // Named after the bundle's content; holds the sha256 of the V8 data, then the data (V8 does not
  // checksum a code cache in release builds: a damaged one would crash the process).
  const cacheFile = `${file}.${createHash('sha256').update(source).digest('hex').slice(0, 16)}.cache`;
  let cachedData: Buffer | undefined;
  try {
    const stored = fs.readFileSync(cacheFile);
    const data = stored.subarray(32);
    if (stored.length > 32 && createHash('sha256').update(data).digest().equals(stored.subarray(0, 32))) cachedData = data;
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {'use strict';${source}\n})`, {
    filename: file,
    cachedData,
  });
  // The bundle has no import() (Node 20 gives a vm.Script none without a flag): the bundler made its
  // dynamic imports of packages require() calls, answered from the bundle's own location.
  const module = { exports: {} as RestoreLibrary };
  (script.runInThisContext() as (...args: unknown[]) => void)(module.exports, createRequire(file), module, file, dir);
  let saved = cachedData !== undefined && !script.cachedDataRejected;
  return {
    library: module.exports,
    saveCache: () => {
      if (saved) return;
      saved = true;
      const temp = `${cacheFile}.${process.pid}.tmp`;
      try {
        const data = script.createCachedData();
        fs.writeFileSync(temp, Buffer.concat([createHash('sha256').update(data).digest(), data]));
        fs.renameSync(temp, cacheFile);
      } catch {
        fs.rmSync(temp, { force: true }); // a read-only install: compile from source every time
      }
    },
  };
};
