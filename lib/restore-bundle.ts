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
 * functions a restore runs are compiled by then), named after the bundle's
 * size and time so that a rebuilt bundle never meets an older cache (the
 * bundler also deletes them); V8 itself rejects a cache made by another
 * V8 or with other flags, and the bundle is then compiled from source as
 * if there were none.
 *
 * A bundle older than the compiled restore-entry.js is stale (a tsc run
 * after the bundling rewrote the modules) and is not used: the modules are.
 */
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
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
    if (stat.mtimeMs < fs.statSync(path.join(dir, 'restore-entry.js')).mtimeMs) return undefined;
  } catch {
    return undefined;
  }
  const cacheFile = `${file}.${stat.size}-${Math.round(stat.mtimeMs)}.cache`;
  let cachedData: Buffer | undefined;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const source = fs.readFileSync(file, 'utf8');
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
        fs.writeFileSync(temp, script.createCachedData());
        fs.renameSync(temp, cacheFile);
      } catch {
        fs.rmSync(temp, { force: true }); // a read-only install: compile from source every time
      }
    },
  };
};
