/**
 * The analysis of an ES module that an archive stores (compartment-mapper's
 * `mjs` parser: @endo/module-source's `ModuleSource`, a Babel parse, two
 * traversals and a print; about 1 ms for a 4 KB module, most of an
 * archive's time), cached on disk by the sha256 of the module's text
 * (build-cache.ts: `node_modules/.cache/membrane-snapshot/module-source-*`,
 * per @endo/module-source version). What the parser returns depends on that
 * text alone: compartment-mapper passes the module's location only for a
 * source map, which an archive does not make (a parse asked for one is not
 * cached). So a rebuild analyses only the modules that changed, as
 * babel-loader's cacheDirectory does: a service with lodash, moment, rxjs
 * and date-fns is archived again without any Babel pass.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { buildCache, type BuildCache } from './build-cache.js';

/** Bump when what is cached for the same text may change. */
const CACHE_FORMAT = 2; // 2: the functor names and declares exported vars as Node does (esm-archive.ts withExportedVarNames)

/** @endo/module-source, as compartment-mapper resolves it (it may be nested under compartment-mapper). */
const cache = ((): BuildCache | undefined => {
  try {
    const mapper = pathToFileURL(createRequire(import.meta.url).resolve('@endo/compartment-mapper')).href;
    return buildCache('module-source', '@endo/module-source', CACHE_FORMAT, mapper);
  } catch {
    return undefined;
  }
})();

/** Where analyses are cached (undefined: nowhere, every build analyses every module). */
export const moduleSourceCacheDir = cache?.dir;

/** Resolves once the analyses being written to the cache are written (they are written in the background). */
export const moduleSourceCacheFlushed = (): Promise<void> => cache?.flushed() ?? Promise.resolve();

/** Writes what is not written yet and forgets what was read (build-cache.ts `reread`): the next archive reads the cache from disk, as a new process does. For benchmarks. */
export const rereadModuleSourceCache = (): Promise<void> => cache?.reread() ?? Promise.resolve();

/** Empties the cache (build-cache.ts `clear`): the next archive in this process is a first build. For benchmarks and tests. */
export const emptyModuleSourceCache = (): Promise<void> => cache?.clear() ?? Promise.resolve();

interface ParseResult {
  parser: string;
  bytes: Uint8Array;
  record: unknown;
}

type ParserTable = Record<string, { parse: (...args: never[]) => unknown }>;

const decoder = new TextDecoder();

/** A cached analysis, or undefined when it is absent or not one (a damaged entry is analysed again). */
const recordOf = (bytes: Uint8Array): object | undefined => {
  try {
    const record = JSON.parse(decoder.decode(bytes)) as { __syncModuleProgram__?: unknown; imports?: unknown; exports?: unknown };
    return typeof record.__syncModuleProgram__ === 'string' && Array.isArray(record.imports) && Array.isArray(record.exports) ? Object.freeze(record) : undefined;
  } catch {
    return undefined;
  }
};

/**
 * The same parsers, the `mjs` one answering from the cache when it can:
 * the same `{ parser: 'pre-mjs-json', bytes, record }`, its record the
 * parsed JSON of `bytes` (the precompiled shape compartment-mapper reads
 * an archive's modules as). Throws what the parser throws.
 */
export const withModuleSourceCache = <T extends ParserTable>(parsers: T): T => {
  const mjs = parsers.mjs;
  if (!mjs || !cache) return parsers;
  const parse = (...args: never[]): unknown => {
    const [bytes, , , , options] = args as unknown as [Uint8Array, string, string, string, { sourceMapHook?: unknown } | undefined];
    if (options?.sourceMapHook !== undefined) return mjs.parse(...args);
    const key = createHash('sha256').update(bytes).digest('hex');
    const hit = cache.read(key);
    const record = hit && recordOf(hit);
    if (hit && record) return { parser: 'pre-mjs-json', bytes: new Uint8Array(hit.buffer, hit.byteOffset, hit.byteLength), record };
    const parsed = mjs.parse(...args) as ParseResult;
    if (parsed.parser === 'pre-mjs-json') cache.write(key, parsed.bytes);
    return parsed;
  };
  return { ...parsers, mjs: { ...mjs, parse } };
};
