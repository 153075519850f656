/**
 * compartment-mapper's archive parsers (its archive-parsers.js
 * `defaultParserForLanguage`: `mjs`, `pre-mjs-json`, `cjs`, `pre-cjs-json`,
 * `json`, `text`, `bytes`), with Babel loaded only when a build first
 * needs it.
 *
 * The `mjs` parser is @endo/module-source's `ModuleSource`, which imports
 * Babel: about 450 ms of every build's start on this machine (a third of
 * a small service's build), also when every module's analysis is in the
 * build cache (module-source-cache.ts) and no Babel pass runs. Here `mjs`
 * and `pre-mjs-json` load compartment-mapper's own parser on their first
 * parse (a cache miss), synchronously, as the parser is called: with
 * Node's `require` of an ES module (Node 20.19 and later,
 * `process.features.require_module`). The others are compartment-mapper's
 * own modules, read from its `src/` (they import no Babel). On a Node
 * without `require(esm)`, under a require hook that compiles ES modules
 * (requiresEsmNatively), or with a compartment-mapper laid out otherwise,
 * the table is archive-parsers.js's, loaded at once, as before.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** A parser of compartment-mapper's (its `ParserImplementation`). */
export interface ArchiveParser {
  /** compartment-mapper's ParseFn: the module's bytes, its specifier, location and package location (URLs), options. */
  readonly parse: (bytes: Uint8Array, specifier: string, location: string, packageLocation: string, options?: Record<string, unknown>) => unknown;
  readonly heuristicImports: boolean;
  readonly synchronous: boolean;
}

/** The archive parsers by language, as archive-parsers.js's `defaultParserForLanguage`. */
export type ArchiveParsers = Readonly<Record<'mjs' | 'pre-mjs-json' | 'cjs' | 'pre-cjs-json' | 'json' | 'text' | 'bytes', ArchiveParser>>;

const require = createRequire(import.meta.url);
const ARCHIVE_PARSERS = '@endo/compartment-mapper/archive-parsers.js';

/**
 * Whether `require` of an ES module gives its module namespace, as Node's
 * own does (20.19 and later): not where Node has no `require(esm)`, nor
 * under a require hook that compiles ES modules to CommonJS (tsx's, with
 * `node --import tsx`; found by the benchmark, which runs so: Babel then
 * failed in the copy the hook made). Asked once, of require-esm-probe.ts.
 */
export const requiresEsmNatively = ((): (() => boolean) => {
  let answer: boolean | undefined;
  return () => {
    if (answer === undefined) {
      try {
        answer = Boolean((process.features as { require_module?: boolean }).require_module) && Object.prototype.toString.call(require('./require-esm-probe.js')) === '[object Module]';
      } catch {
        answer = false;
      }
    }
    return answer;
  };
})();

const allAtOnce = async (): Promise<ArchiveParsers> => ((await import(ARCHIVE_PARSERS)) as { defaultParserForLanguage: ArchiveParsers }).defaultParserForLanguage;

/** compartment-mapper's ESM archive parser, loaded (with Babel) on the first call. */
const lazyMjs = (): ArchiveParser => {
  let parser: ArchiveParser | undefined;
  const load = (): ArchiveParser => {
    const real = (require(ARCHIVE_PARSERS) as { defaultParserForLanguage: ArchiveParsers }).defaultParserForLanguage.mjs;
    // The flags given below stand for parse-archive-mjs.js's own: checked once, as it loads.
    if (real.heuristicImports !== false || real.synchronous !== true) throw new Error(`${ARCHIVE_PARSERS}: its mjs parser is not the synchronous one this build expects`);
    return real;
  };
  return Object.freeze({
    parse: (...args: Parameters<ArchiveParser['parse']>): unknown => (parser ??= load()).parse(...args),
    heuristicImports: false,
    synchronous: true,
  });
};

/**
 * The archive parsers (see the module comment). Resolves to a frozen
 * table; throws what importing compartment-mapper's modules throws.
 */
export const loadArchiveParsers = async (): Promise<ArchiveParsers> => {
  if (!requiresEsmNatively()) return allAtOnce();
  let parsers: ArchiveParser[];
  try {
    const src = path.join(path.dirname(require.resolve('@endo/compartment-mapper')), 'src');
    const modules = await Promise.all(['parse-archive-cjs.js', 'parse-json.js', 'parse-text.js', 'parse-bytes.js'].map(file => import(pathToFileURL(path.join(src, file)).href)));
    parsers = modules.map(module => (module as { default: ArchiveParser }).default);
  } catch {
    return allAtOnce();
  }
  const [cjs, json, text, bytes] = parsers as [ArchiveParser, ArchiveParser, ArchiveParser, ArchiveParser];
  const mjs = lazyMjs();
  return Object.freeze({ mjs, 'pre-mjs-json': mjs, cjs, 'pre-cjs-json': cjs, json, text, bytes });
};
