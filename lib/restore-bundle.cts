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
 * functions a restore runs are compiled by then), named after the CRC-32
 * and the length of the bundle's bytes so that a rebuilt or edited bundle
 * never meets an older cache (the bundler also deletes them), and checked
 * against the CRC-32 it starts with (a damaged cache is ignored and written
 * again); V8 itself rejects a cache made by another V8 or with other flags,
 * and the bundle is then compiled from source as if there were none.
 *
 * CRC-32 (zlib's, as the replay log's frames use) and not a cryptographic
 * hash: these checks catch accidents (a rebuild, an edit, a damaged disk),
 * not an attacker, who could as well rewrite the bundle beside the cache;
 * sha256 of the bundle and its cache (1.4 MB) cost about a tenth of a small
 * restore's instructions.
 *
 * In a checkout, a bundle older than the compiled restore-entry.js is
 * stale (a tsc run after the bundling rewrote the modules) and is not
 * used: the modules are. An installed package's bundle is always used.
 */
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import zlib from 'node:zlib';
import { markPhase } from '../compartments/phases.cjs';

// @types/node 20 does not declare zlib.crc32 (Node 20.15).
const { crc32 } = zlib as unknown as { crc32: (data: Uint8Array) => number };

export type RestoreLibrary = typeof import('./restore-entry.js');

export interface RestoreBundle {
  readonly library: RestoreLibrary;
  /** Write the code cache when there was no valid one. Call after the restore ran; never throws. */
  saveCache(): void;
}

const BUNDLE = 'restore-entry.bundle.cjs';

/** The cache's header: the CRC-32 of the V8 data after it, big-endian. */
const HEADER_BYTES = 4;

/** Load the bundle beside this module, or undefined when there is none or it is stale. */
export const loadRestoreBundle = (): RestoreBundle | undefined => {
  const dir = __dirname;
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
  const bytes = fs.readFileSync(file);
  const source = bytes.toString('utf8');
  // Named after the bundle's content; holds the CRC-32 of the V8 data, then the data (V8 does not
  // checksum a code cache in release builds: a damaged one would crash the process).
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  const cacheFile = `${file}.${hex(crc32(bytes))}${hex(bytes.length)}.cache`;
  let cachedData: Buffer | undefined;
  try {
    const stored = fs.readFileSync(cacheFile);
    const data = stored.subarray(HEADER_BYTES);
    if (stored.length > HEADER_BYTES && crc32(data) === stored.readUInt32BE(0)) cachedData = data;
  } catch {
    cachedData = undefined;
  }
  markPhase('bundle-read');
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {'use strict';${source}\n})`, {
    filename: file,
    cachedData,
  });
  markPhase('bundle-compiled');
  // The bundle has no import() (Node 20 gives a vm.Script none without a flag): the bundler made its
  // dynamic imports of packages require() calls, answered from the bundle's own location (this
  // module's directory, so this module's require).
  const module = { exports: {} as RestoreLibrary };
  (script.runInThisContext() as (...args: unknown[]) => void)(module.exports, require, module, file, dir);
  markPhase('modules-evaluated');
  let saved = cachedData !== undefined && !script.cachedDataRejected;
  return {
    library: module.exports,
    saveCache: () => {
      if (saved) return;
      saved = true;
      const temp = `${cacheFile}.${process.pid}.tmp`;
      try {
        const data = script.createCachedData();
        const header = Buffer.alloc(HEADER_BYTES);
        header.writeUInt32BE(crc32(data), 0);
        fs.writeFileSync(temp, Buffer.concat([header, data]));
        fs.renameSync(temp, cacheFile);
      } catch {
        fs.rmSync(temp, { force: true }); // a read-only install: compile from source every time
      }
    },
  };
};
