/**
 * TypeScript services: `.ts`, `.mts` and `.cts` modules are parsed by
 * stripping their types with swc's WebAssembly type stripper
 * (`@swc/wasm-typescript`, the engine Node's own `amaro` wraps, with no
 * native code and no Node version requirement), which replaces type syntax
 * with blanks. Lines and columns stay where they were, so stack traces and
 * divergence reports point at the TypeScript source; the archive then holds
 * the compiled JavaScript module records, and restore needs no TypeScript.
 *
 * Syntax that needs code generation (enum, namespace, parameter
 * properties) is compiled by esbuild, the compiler tsx runs (tsx is a
 * dependency: build scripts run through it), so such a module computes
 * what it computes under tsx; its lines may shift. So is a module that
 * runs as CommonJS (`.cts`, or `.ts` outside a `"type": "module"` package)
 * written with import/export: to CommonJS, as tsx compiles it
 * (compileToCommonJS). swc's own transform
 * mode is not used: it leaves a merged namespace's references to members
 * of its other declarations unqualified (`pi` instead of `Geometry.pi`).
 *
 * Two things of the environment the compilers run in:
 * - swc's wasm-bindgen glue is evaluated in a realm of its own
 *   (`node:vm`), whose intrinsics lockdown never touched: after lockdown on
 *   Node 20, SES's `ArrayBuffer.prototype.detached` shim answered false
 *   even for a detached buffer, and the glue trusted it (once swc's memory
 *   grew, every later call read a detached buffer). The shim is now kept
 *   out (native-array-buffer.ts); the realm stays, as the glue needs no
 *   frozen intrinsics.
 * - SES's module transform (@endo/module-source) initialises an exported
 *   `var` where its declaration stands, not at the top of the module as
 *   JavaScript does: esbuild's `export var Geometry;` for a namespace would
 *   leave `Geometry` in its TDZ above that line (`typeof Geometry` throws
 *   instead of giving "undefined"). Those declarations are moved to the top.
 *
 * The JavaScript made from each module is cached by its TypeScript text
 * (build-cache.ts, per swc version; esbuild's version is in the key), and
 * a `.ts`/`.mts` module's analysis is then the `mjs` parser's, with its
 * cache (module-source-cache.ts): a rebuild of unchanged TypeScript loads
 * neither swc (about 300 ms) nor Babel (about 450 ms).
 */
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import url from 'node:url';
import vm from 'node:vm';
import type { ArchiveParser, ArchiveParsers } from './archive-parsers.js';
import { SnapshotError } from '../replay-log/index.js';
import { evade } from './evasion.js';
import { buildCache } from './build-cache.js';

type Parser = ArchiveParser;
type ParseArgs = Parameters<Parser['parse']>;

interface Stripper {
  transformSync(code: string, options: { mode: 'strip-only'; filename?: string }): { code: string };
}

interface Compiler {
  transformSync(
    code: string,
    options: { loader: 'ts'; sourcefile: string; format?: 'cjs'; platform?: 'node'; target?: string; keepNames?: boolean; supported?: Record<string, boolean> },
  ): { code: string };
}

const require = createRequire(import.meta.url);

/** swc's CommonJS glue evaluated in a fresh realm (see above), with the host's require for its own imports. */
const loadStripperInOwnRealm = (): Stripper => {
  const file = require.resolve('@swc/wasm-typescript');
  const glue = vm.compileFunction(fs.readFileSync(file, 'utf8'), ['module', 'exports', 'require', '__filename', '__dirname'], {
    filename: file,
    parsingContext: vm.createContext({}),
  });
  const module = { exports: {} as Record<string, unknown> };
  glue(module, module.exports, createRequire(file), file, file.slice(0, file.lastIndexOf('/')));
  return module.exports as unknown as Stripper;
};

let stripper: Stripper | undefined;
/** Loaded on first use: builds without TypeScript services never pay for the WebAssembly module. */
const loadStripper = (): Stripper => (stripper ??= loadStripperInOwnRealm());

let compiler: Compiler | undefined;
/** tsx's own esbuild (resolved from tsx, which depends on it). */
const loadCompiler = (): Compiler => (compiler ??= createRequire(require.resolve('tsx/package.json'))('esbuild') as Compiler);

const identifier = '[\\p{ID_Start}$_][\\p{ID_Continue}$\\u200c\\u200d]*';
/** `export var N;` of a namespace, which the next line fills: `((N2) => {`. */
const namespaceDeclaration = new RegExp(`^export var (${identifier});\\n(?=\\(\\(\\1\\d*\\) => \\{$)`, 'gmu');
/** `export var E = ((E2) => {` of an enum (`var E = ...` when it merges with an earlier `E`), which reads `E` as it starts. */
const enumDeclaration = new RegExp(`^(export )?var (${identifier}) = (?=(?:/\\* @__PURE__ \\*/ )?\\(\\(\\2\\d*\\) => \\{$)`, 'gmu');

/**
 * esbuild's declarations of exported namespaces and enums, made one
 * `export var` on the first line of the module (each declaration left in
 * place becomes an assignment), as JavaScript would hoist them.
 */
const hoistExportedVars = (code: string): string => {
  const exported = new Set<string>();
  for (const [, name] of code.matchAll(namespaceDeclaration)) exported.add(name);
  for (const [, keyword, name] of code.matchAll(enumDeclaration)) if (keyword) exported.add(name);
  if (exported.size === 0) return code;
  const body = code
    .replace(namespaceDeclaration, (line, name: string) => (exported.has(name) ? '' : line))
    .replace(enumDeclaration, (line, _keyword, name: string) => (exported.has(name) ? `${name} = ` : line));
  return `export var ${[...exported].join(', ')};\n${body}`;
};

/** What swc throws for a syntax error: a plain object, not an Error. Lines 1-based, columns 0-based. */
interface SwcSyntaxError {
  readonly message: string;
  readonly startLine?: number;
  readonly startColumn?: number;
  readonly snippet?: string;
}

const isSwcError = (value: unknown): value is SwcSyntaxError =>
  typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string';

/** A module path a user recognises: `file:///app/svc.ts` becomes `/app/svc.ts`. */
const displayPath = (location: string): string => (location.startsWith('file://') ? decodeURIComponent(new URL(location).pathname) : location);

/**
 * TypeScript source to JavaScript with the same lines and columns.
 * `filename` is the module's location (a file URL or a path), used in errors.
 * Throws SnapshotError `SERVICE_LOAD_FAILED` with `details: { file, line,
 * column }` (1-based) when the source does not parse.
 */
export const stripTypes = (source: string, filename: string): string => {
  try {
    return loadStripper().transformSync(source, { mode: 'strip-only', filename }).code;
  } catch (stripError) {
    let compiled: string | undefined;
    try {
      compiled = loadCompiler().transformSync(source, { loader: 'ts', sourcefile: displayPath(filename) }).code;
    } catch {
      compiled = undefined;
    }
    if (compiled !== undefined) return hoistExportedVars(compiled);
    const file = displayPath(filename);
    if (isSwcError(stripError) && stripError.startLine !== undefined) {
      const line = stripError.startLine;
      const column = (stripError.startColumn ?? 0) + 1;
      const snippet = stripError.snippet ? `\n${stripError.snippet.replace(/\n$/, '').replace(/^/gm, '    ')}` : '';
      throw new SnapshotError('SERVICE_LOAD_FAILED', `${file}:${line}:${column}: TypeScript syntax error: ${stripError.message}${snippet}`, {
        cause: stripError,
        details: { file, line, column },
      });
    }
    const reason = isSwcError(stripError) ? stripError.message : String(stripError);
    throw new SnapshotError('SERVICE_LOAD_FAILED', `${file}: TypeScript does not parse: ${reason}`, { cause: stripError, details: { file } });
  }
};

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Bump when what is cached for the same text may change. */
const CACHE_FORMAT = 2;

/** The JavaScript made from TypeScript sources (undefined when there is no node_modules to keep it in). */
const cache = buildCache('typescript', '@swc/wasm-typescript', CACHE_FORMAT, import.meta.url);
export const typescriptCacheDir = cache?.dir;

let esbuildVersion: string | undefined;
/** The version of the esbuild stripTypes falls back to (read from its package.json, without loading it). */
const fallbackVersion = (): string => {
  try {
    esbuildVersion ??= (JSON.parse(fs.readFileSync(createRequire(require.resolve('tsx/package.json')).resolve('esbuild/package.json'), 'utf8')) as { version: string }).version;
  } catch {
    esbuildVersion = 'unknown';
  }
  return esbuildVersion;
};

/**
 * Whether JavaScript meant to run as CommonJS uses import/export: V8
 * compiles it as a function body (as Node's CommonJS loader does) and
 * refuses those statements. Not `import()`, which CommonJS may use.
 */
const usesModuleSyntax = (javascript: string): boolean => {
  if (!/\b(?:import|export)\b/.test(javascript)) return false;
  try {
    vm.compileFunction(javascript, ['exports', 'require', 'module', '__filename', '__dirname']);
    return false;
  } catch (error) {
    return error instanceof SyntaxError && /Cannot use import statement outside a module|Unexpected token 'export'/.test(error.message);
  }
};

/**
 * A TypeScript module that runs as CommonJS (a `.cts`, or a `.ts` in a
 * package without `"type": "module"`) but is written with import/export:
 * compiled to CommonJS by esbuild as tsx compiles it (its options for
 * CommonJS: `format: 'cjs'`, `platform: 'node'`, which annotates the export
 * names for Node's and compartment-mapper's CommonJS export analysis, and
 * `keepNames`), so that it computes what it computes under tsx: imports
 * become `require()` calls (extensionless relative paths resolve as tsx
 * resolves them, to the `.ts` file), exports `exports` getters with
 * `__esModule`. Lines move (esbuild prints the module anew). Throws
 * SnapshotError `SERVICE_LOAD_FAILED` when esbuild refuses it.
 */
const compileToCommonJS = (source: string, filename: string): string => {
  try {
    return loadCompiler().transformSync(source, {
      loader: 'ts',
      sourcefile: displayPath(filename),
      format: 'cjs',
      platform: 'node',
      target: `node${process.versions.node}`,
      keepNames: true,
      supported: { 'dynamic-import': true },
    }).code;
  } catch (error) {
    throw new SnapshotError('SERVICE_LOAD_FAILED', `${displayPath(filename)}: TypeScript does not compile to CommonJS: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
      details: { file: displayPath(filename) },
    });
  }
};

/** A module's JavaScript: its types stripped, and compiled to CommonJS where it runs as CommonJS with import/export. */
const toJavaScript = (source: string, location: string, sourceType: 'module' | 'script'): string => {
  const stripped = stripTypes(source, location);
  return sourceType === 'script' && usesModuleSyntax(stripped) ? compileToCommonJS(source, location) : stripped;
};

/** toJavaScript, answered from the cache when it can (what fails to parse is not cached: it throws each time). */
const cachedJavaScript = (source: string, location: string, sourceType: 'module' | 'script'): string => {
  if (!cache) return toJavaScript(source, location, sourceType);
  const key = createHash('sha256').update(`${fallbackVersion()}\0${sourceType}\0`).update(source).digest('hex');
  const hit = cache.read(key);
  if (hit !== undefined) return hit.toString('utf8');
  const javascript = toJavaScript(source, location, sourceType);
  cache.write(key, javascript);
  return javascript;
};

/**
 * The JavaScript of TypeScript module `file` (a path) run as CommonJS, as
 * its archive holds it: the names Node's lexer finds in it are the names it
 * exports to a module that re-exports it (cjs-archive.ts). Throws what
 * stripping or compiling throws.
 */
export const commonJsOfTypeScript = (source: string, file: string): string => cachedJavaScript(source, url.pathToFileURL(file).href, 'script');

const typescriptParser = (base: Parser, sourceType: 'module' | 'script'): Parser => ({
  ...base,
  parse: (...args: ParseArgs) => {
    const [bytes, specifier, location, ...rest] = args;
    const javascript = encoder.encode(evade(cachedJavaScript(decoder.decode(bytes), location, sourceType), sourceType, location));
    return base.parse(javascript, specifier, location, ...rest);
  },
});

/**
 * Parsers and extension mappings for compartment-mapper's archive options,
 * over the JavaScript parsers `parsers` (archive-parsers.ts's, with the
 * build's own wrappers: `ts-mjs` is then `mjs` with its cache and checks).
 */
export const typescriptOptions = (parsers: ArchiveParsers) => ({
  parserForLanguage: {
    'ts-mjs': typescriptParser(parsers.mjs, 'module'),
    'ts-cjs': typescriptParser(parsers.cjs, 'script'),
  },
  languageForExtension: { mts: 'ts-mjs', cts: 'ts-cjs' },
  moduleLanguageForExtension: { ts: 'ts-mjs' },
  commonjsLanguageForExtension: { ts: 'ts-cjs' },
  workspaceModuleLanguageForExtension: { ts: 'ts-mjs' },
  workspaceCommonjsLanguageForExtension: { ts: 'ts-cjs' },
});
