/**
 * Loading a service into SES compartments with @endo/compartment-mapper.
 *
 * Build time archives the service first (`makeArchive`: exactly the modules
 * its entry reaches, its npm dependencies included) and then loads it from
 * that archive, so the build and every restore evaluate the very same bytes
 * in the very same compartments.
 */
import fs from 'node:fs';
import url from 'node:url';
import crypto from 'node:crypto';
import path from 'node:path';
import vm from 'node:vm';
import { createRequire, isBuiltin } from 'node:module';
import { parseArchive } from '@endo/compartment-mapper/import-archive.js';
import { SnapshotError } from '../replay-log/index.js';
import { crc32 } from '../replay-log/crc.js';
import { isLibraryError } from '../membrane/marks.js';
import { exitModuleNames } from './endowments.js';
import { libraryDoc } from './docs.js';
import { preCjsParser, moduleRoots, exitModulesOf } from './cjs.js';
import { installSloppyThis } from './sloppy-this.js';
import { installLazyGlobals } from './lazy-globals.js';
import { fixGlobals, withoutFixedGlobals } from './fixed-globals.js';
import { makeSharedGlobals, type SharedGlobals } from './shared-globals.js';
import { applyNodeResolution, exitDescriptor, exportsExclude, makeImportLinker, nodeConditions, readDirEntries, validExportTargetPowers } from './node-resolution.js';
import { afterParse, type ParserTable } from './parser-table.js';
import { ZipReader } from '@endo/zip';
import { readStoredZipFile, repeatedZipName, storedZipFiles } from './zip-read.js';

/** The package.json nearest above `file` (a path), or undefined. */
const nearestPackageJson = (file: string): string | undefined => {
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'package.json');
    if (fs.existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) return undefined;
  }
};

/**
 * The package.json nearest above `entry` (a file URL or path) when it has
 * no string "name" (compartment-mapper then reports "Cannot find
 * package.json", though there is one); undefined otherwise.
 */
const unnamedPackageJson = (entry: string | undefined): string | undefined => {
  if (!entry) return undefined;
  let file: string | undefined;
  try {
    file = nearestPackageJson(entry.startsWith('file:') ? url.fileURLToPath(entry) : entry);
  } catch {
    return undefined;
  }
  if (!file) return undefined;
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: unknown };
    return typeof parsed?.name === 'string' ? undefined : file;
  } catch {
    return undefined;
  }
};

/**
 * What only archiving needs, loaded the first time a build archives: the
 * archive writer, the node_modules crawler, the full parsers (Babel) and the
 * TypeScript and evasion transforms. A restore never loads them. Archives
 * are written by our linear zip writer (zip.ts).
 */
const loadArchiver = async () => {
  const [{ makeArchiveFromMap }, defaultParserForLanguage, { mapNodeModules }, { makeArchiveReadPowers }, { typescriptOptions }, { evasiveTransforms }] = await Promise.all([
    import('@endo/compartment-mapper/archive-lite.js'),
    // Babel only when a module is not in the build cache (archive-parsers.ts).
    import('./archive-parsers.js').then(parsers => parsers.loadArchiveParsers()),
    import('@endo/compartment-mapper/node-modules.js'),
    import('./archive-powers.js'),
    import('./typescript.js'),
    import('./evasion.js').then(async evasion => (await evasion.preloadEvasiveTransform(), evasion)),
    import('./zip.js').then(zip => zip.installLinearZipWriter()),
  ]);
  const [{ withNodeStarExports, withStringExportNames, withExportedVarNames, esmLexerReady }, { withNodeCjsExports }, { withModuleSourceCache }] = await Promise.all([
    import('./esm-archive.js'),
    import('./cjs-archive.js'),
    import('./module-source-cache.js'),
  ]);
  await esmLexerReady;
  return { makeArchiveFromMap, defaultParserForLanguage, mapNodeModules, makeArchiveReadPowers, typescriptOptions, evasiveTransforms, withNodeStarExports, withNodeCjsExports, withStringExportNames, withExportedVarNames, withModuleSourceCache };
};
let archiver: ReturnType<typeof loadArchiver> | undefined;

/**
 * Read powers under which a package.json without a `name` does not exist.
 * For Node such a file (`dist/package.json` holding only `{"type":
 * "commonjs"}`) only sets the language of the files below it, which
 * node-resolution.ts applies; the package is the nearest package.json with a
 * name. compartment-mapper would take it as the service's package and
 * refuse it for having no name.
 */
const skipNamelessPackages = <P extends { maybeRead: (location: string) => Promise<Uint8Array | undefined> }>(powers: P): P => ({
  ...powers,
  maybeRead: async (location: string) => {
    const bytes = await powers.maybeRead(location);
    if (bytes === undefined || !location.endsWith('/package.json')) return bytes;
    try {
      const json = JSON.parse(new TextDecoder().decode(bytes)) as { name?: unknown };
      if (typeof json === 'object' && json !== null && (json.name === undefined || json.name === '')) return undefined;
    } catch {
      // compartment-mapper reports an unreadable package.json itself.
    }
    return bytes;
  },
});

const sha512Hex = (bytes: Uint8Array): string => crypto.createHash('sha512').update(bytes).digest('hex');

const stubs = (names: readonly string[]): Record<string, object> => Object.fromEntries(names.map(n => [n, {}]));

/** Build the archive of a service entry module (a file URL). */
export const archiveService = async (service: string, entry: string, granted: readonly string[] = []): Promise<Uint8Array> =>
  (await archiveServiceWithRoots(service, entry, granted)).archive;

/**
 * An archive of a service's entry module (a file URL), with where each of
 * its dependencies' packages was at build time: `packageRoots` maps the
 * archive's compartment names to file URLs (with a trailing slash), so that
 * `import.meta.url`, `__filename` and `__dirname` in a dependency name its
 * build-time files as they do in Node (see loadService). Throws
 * SERVICE_LOAD_FAILED, MODULE_NOT_GRANTED or MODULE_NOT_INSTALLED.
 */
export const archiveServiceWithRoots = async (
  service: string,
  entry: string,
  granted: readonly string[] = [],
): Promise<{ archive: Uint8Array; packageRoots: Record<string, string> }> => {
  const syntaxErrors: SnapshotError[] = [];
  try {
    const { makeArchiveFromMap, defaultParserForLanguage, mapNodeModules, makeArchiveReadPowers, typescriptOptions, evasiveTransforms, withNodeStarExports, withNodeCjsExports, withStringExportNames, withExportedVarNames, withModuleSourceCache } =
      await (archiver ??= loadArchiver());
    // One crawl of node_modules, then the archive from that map. Every
    // package may use and extend its globals, as in Node: compartment-mapper
    // freezes a package's globalThis unless its policy says otherwise (zod
    // keeps its configuration there), so each compartment gets an open policy.
    // A TypeScript module, its types stripped, is analysed as the JavaScript is: with the same cache and checks.
    // The functor's fixes for exported vars (esm-archive.ts) inside the cache: a rebuild parses nothing again.
    const javascript = withModuleSourceCache(withExportedVarNames(withTopLevelAwaitCheck({ ...defaultParserForLanguage })));
    const typescript = typescriptOptions(javascript);
    const { powers, readAhead } = makeArchiveReadPowers();
    const readPowers = skipNamelessPackages(powers);
    // A dual package's require targets, by the location of the package that requires it (applyNodeResolution).
    const requireLinks = new Map<string, Set<string>>();
    // What Node resolves that the map cannot list beforehand (undeclared dependencies Node finds in a node_modules
    // folder above a package, the require targets of exports patterns: node-resolution.ts), linked as each module's
    // imports are parsed, once the map is made, and before its require links are read (withNodeCjsExports).
    let linkImports: ReturnType<typeof makeImportLinker> | undefined;
    const parserForLanguage = reportingParsers(
      // The check inside the cache: an analysis in the cache was checked when it was made.
      withNodeStarExports(
        withNodeCjsExports(withStringExportNames(withImportLinks({ ...javascript, ...typescript.parserForLanguage }, (...args) => linkImports?.(...args))), requireLinks),
        readAhead,
      ),
      syntaxErrors,
    );
    const map = await mapNodeModules(validExportTargetPowers(readPowers), entry, {
      ...typescript,
      dev: false,
      conditions: nodeConditions(),
      languages: Object.keys(parserForLanguage),
    } as unknown as Parameters<typeof mapNodeModules>[2]);
    applyNodeResolution(map as unknown as Parameters<typeof applyNodeResolution>[0], requireLinks);
    linkImports = makeImportLinker(map as unknown as Parameters<typeof makeImportLinker>[0], requireLinks);
    const open = { globals: 'any', packages: 'any', builtins: 'any', noGlobalFreeze: true } as const;
    const resources: Record<string, typeof open> = {};
    const exits = exitModuleNames(granted);
    for (const compartment of Object.values(map.compartments) as MappedCompartment[]) {
      compartment.policy = open;
      if (compartment.label !== '$root$') resources[compartment.label] = open;
      preferExitModules(compartment, exits);
    }
    const archive = await makeArchiveFromMap(readPowers, map, {
      modules: stubs(exits),
      parserForLanguage,
      policy: { entry: open, resources },
      moduleTransforms: evasiveTransforms(),
    } as unknown as Parameters<typeof makeArchiveFromMap>[2]);
    // The archive names compartments `<package>-v<version>`; both maps label them by their dependency path.
    const locationOfLabel = new Map<string, string>();
    for (const [location, compartment] of Object.entries(map.compartments) as Array<[string, MappedCompartment]>) {
      if (typeof compartment.label === 'string' && location.startsWith('file:')) locationOfLabel.set(compartment.label, location.endsWith('/') ? location : `${location}/`);
    }
    const packageRoots: Record<string, string> = {};
    for (const [name, compartment] of Object.entries(compartmentsOf(archive))) {
      const location = compartment.label === undefined ? undefined : locationOfLabel.get(compartment.label);
      if (location !== undefined && compartment.label !== '$root$') packageRoots[name] = location;
    }
    return { archive, packageRoots };
  } catch (error) {
    const [syntax] = syntaxErrors;
    if (syntax && !sesRejection.test(errorMessage(error))) {
      throw new SnapshotError('SERVICE_LOAD_FAILED', `service "${service}" does not load: ${syntax.message}`, { cause: error, details: { ...syntax.details, service } });
    }
    throw explainLoadError(service, entry, error);
  }
};


/**
 * The same parsers, each result's bare imports handed to `link` (the
 * module's package location, the specifier, whether it is a CommonJS
 * require, the module's location) before compartment-mapper resolves them:
 * makeImportLinker.
 */
const withImportLinks = <T extends ParserTable>(parsers: T, link: (packageLocation: string, specifier: string, required: boolean, moduleLocation?: string) => void): T =>
  afterParse(parsers, (result, [, , moduleLocation, packageLocation]) => {
    const { parser, record } = (result ?? {}) as { parser?: unknown; record?: { imports?: unknown } };
    if (typeof packageLocation === 'string' && Array.isArray(record?.imports)) {
      const at = typeof moduleLocation === 'string' ? moduleLocation : undefined;
      for (const specifier of record.imports) if (typeof specifier === 'string') link(packageLocation, specifier, parser === 'pre-cjs-json', at);
    }
    return result;
  });

/**
 * The same parsers, the `mjs` one compiling each module's functor (the
 * synchronous function SES evaluates the module as) once at build time
 * when its text has `await`: a top-level await, which Node allows and a
 * service cannot have (endojs/endo#306), fails here as SERVICE_LOAD_FAILED
 * naming its file and line and what to do, where it failed when the
 * modules were evaluated with V8's bare `missing ) after argument list`
 * (found by the new-user trial). The functor keeps the module's lines.
 */
const withTopLevelAwaitCheck = <T extends ParserTable>(parsers: T): T => {
  const mjs = parsers.mjs;
  if (!mjs) return parsers;
  const parse = (...args: never[]): unknown => {
    const parsed = mjs.parse(...args) as { record?: { __syncModuleProgram__?: unknown } };
    const [bytes, , location] = args as unknown as [Uint8Array, string, string];
    const program = parsed.record?.__syncModuleProgram__;
    if (typeof program !== 'string' || !Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes('await')) return parsed;
    try {
      new vm.Script(`(${program})`, { filename: 'functor' });
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      const line = Number(/^functor:(\d+)/.exec(String(error.stack))?.[1]) || undefined;
      const file = typeof location === 'string' && location.startsWith('file:') ? url.fileURLToPath(location) : String(location);
      const text = line === undefined ? '' : (new TextDecoder().decode(bytes).split('\n')[line - 1] ?? '').trim();
      const awaits = /\bawait\b/.test(text) || line === undefined;
      throw new SnapshotError(
        'SERVICE_LOAD_FAILED',
        `${file}${line === undefined ? '' : `:${line}`}: ${awaits ? 'a top-level await' : `SyntaxError: ${error.message}`}${text ? ` (${text.length > 80 ? `${text.slice(0, 77)}...` : text})` : ''}. ` +
          (awaits
            ? 'Top-level await is not supported inside a service (SES runs each module body as a synchronous function; endojs/endo#306): move the awaited work into an exported async function (init()) that the build script calls, or into a promise the module exports.'
            : 'The module does not compile as SES evaluates it.'),
        { cause: error, details: { file, line } },
      );
    }
    return parsed;
  };
  return { ...parsers, mjs: { ...mjs, parse } };
};

/**
 * The same parsers, each noting a syntax error with the module's file, line
 * and column in `failures` (compartment-mapper folds the errors of a load
 * into one message and loses where they happened). Babel's `(line:column)`
 * has a 0-based column; failures carry 1-based columns.
 */
const reportingParsers = <T extends ParserTable>(parsers: T, failures: SnapshotError[]): T => {
  const note = (error: unknown, location: unknown): void => {
    if (error instanceof SnapshotError) {
      failures.push(error);
      return;
    }
    const message = errorMessage(error);
    const at = /\((\d+):(\d+)\)\s*$/.exec(message);
    if (!at || sesRejection.test(message)) return;
    const file = typeof location === 'string' && location.startsWith('file:') ? url.fileURLToPath(location) : String(location);
    const [line, column] = [Number(at[1]), Number(at[2]) + 1];
    const reason = message.slice(0, at.index).replace(/^Error transforming source in \S+: /, '').trim();
    failures.push(new SnapshotError('SERVICE_LOAD_FAILED', `${file}:${line}:${column}: syntax error: ${reason}`, { cause: error, details: { file, line, column } }));
  };
  const out: ParserTable = {};
  for (const [language, parser] of Object.entries(parsers)) {
    out[language] = {
      ...parser,
      parse: (...args: never[]) => {
        try {
          const result = parser.parse(...args);
          if (!(result instanceof Promise)) return result;
          return result.catch((error: unknown) => {
            note(error, args[2]);
            throw error;
          });
        } catch (error) {
          note(error, args[2]);
          throw error;
        }
      },
    };
  }
  return out as T;
};

/** The parts of a compartment-map entry that `archiveService` adjusts. */
interface MappedCompartment {
  label: string;
  policy?: unknown;
  modules?: Record<string, unknown>;
  scopes?: Record<string, unknown>;
  patterns?: ReadonlyArray<{ from: string }>;
}

/**
 * An exit module wins over a package of the same name in node_modules, as a
 * builtin does in Node (`require('events')` is the builtin even when the
 * `events` polyfill is installed). Without this, compartment-mapper follows
 * the installed package: a service importing `membrane-snapshot` in a project
 * that depends on it (nested services) would load the whole library from
 * node_modules instead of the importService the service is given, and a
 * granted module would be shadowed by its installed copy. Subpaths of such a
 * package (`events/foo`) still resolve to the package. Builtins services are
 * not given (`punycode`) become exit modules too, so importing one says so
 * (MODULE_NOT_GRANTED) instead of loading a package of that name.
 *
 * The `{ exit }` descriptor makes the linker fall through to the exit-module
 * hook (node-resolution.ts, exitDescriptor, which stays out of the archive).
 */
const preferExitModules = (compartment: MappedCompartment, exits: readonly string[]): void => {
  const modules = (compartment.modules ??= {});
  const names = new Set([...exits, ...Object.keys(modules), ...Object.keys(compartment.scopes ?? {})].filter(n => exits.includes(n) || isBuiltin(n)));
  for (const name of names) {
    const shadowed = name in modules || (compartment.scopes !== undefined && name in compartment.scopes) || (compartment.patterns ?? []).some(p => p.from === name);
    if (shadowed) modules[name] = exitDescriptor(name);
  }
};

/**
 * A module's `import.meta.resolve` (Node 20.6): a relative or absolute
 * path resolves against the module's URL (without looking at the disk, as
 * in Node), a URL is itself, a builtin is `node:<name>`. A package name
 * would need Node's resolution from the build-time location, which the
 * archive does not keep: it throws, saying so.
 */
const resolverFor = (moduleUrl: string): ((specifier: string) => string) =>
  ({
    resolve(specifier: string): string {
      const spec = String(specifier);
      if (spec.startsWith('./') || spec.startsWith('../') || spec.startsWith('/')) return new URL(spec, moduleUrl).href;
      if (isBuiltin(spec)) return spec.startsWith('node:') ? spec : `node:${spec}`;
      if (URL.canParse(spec)) return new URL(spec).href;
      throw new Error(`import.meta.resolve('${spec}'): resolving a package name is not supported inside a service (its archive keeps the modules, not Node's resolution from the build-time location); resolve a relative path, or import the package`);
    },
  }).resolve;

/** The root of the package that holds `entry`, as a file URL (for import.meta.url). */
export const packageRootOf = (entry: string): string => {
  let dir = path.dirname(url.fileURLToPath(entry));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return url.pathToFileURL(dir + path.sep).href;
    const parent = path.dirname(dir);
    if (parent === dir) return url.pathToFileURL(path.dirname(url.fileURLToPath(entry)) + path.sep).href;
    dir = parent;
  }
};

export interface LoadOptions {
  readonly service: string;
  readonly archive: Uint8Array;
  /** Where `import.meta.url` of the entry package points (its build-time root). */
  readonly entryRoot?: string;
  /** Where each dependency's package was at build time, by archive compartment name (archiveServiceWithRoots). */
  readonly packageRoots?: Readonly<Record<string, string>>;
  readonly granted?: readonly string[];
}

/**
 * Give a compartment's globalThis, before compartment-mapper assigns it the
 * service's globals (`globalThis[name] = value`, which keeps a property's
 * attributes), a property for each global Node has, in Node's order and with
 * Node's enumerability: `Object.keys(globalThis)` is Node's fourteen names
 * (global, the timers, queueMicrotask, structuredClone, atob, btoa,
 * performance, fetch, crypto), not every global a service is given (URL,
 * Buffer, console... listed too, found by the fidelity review). A property
 * SES already defined (the intrinsics) keeps its own attributes.
 */
const shapeLikeNodeGlobals = (target: object, globals: object): void => {
  const given = new Set(Object.keys(globals)); // what compartment-mapper copies: the enumerable ones
  const host = globalThis as object;
  for (const key of Reflect.ownKeys(host)) {
    if (typeof key !== 'string' || !given.has(key) || Object.prototype.hasOwnProperty.call(target, key)) continue;
    const { enumerable = false } = Object.getOwnPropertyDescriptor(host, key) ?? {};
    Object.defineProperty(target, key, { value: undefined, writable: true, enumerable, configurable: true });
  }
};

export interface LoadedService {
  /** Evaluate the modules with these endowments; resolves to the entry's namespace. */
  evaluate(globals: Record<string, unknown>, modules: Record<string, object>): Promise<object>;
}

/**
 * Parse an archive. `import.meta.url` (and a CommonJS module's
 * `__filename`) in the entry package resolves against its build-time root;
 * in a dependency, against the build-time root its snapshot records
 * (`packageRoots`), else against `file:///node_modules/<compartment>/`.
 */
export const loadService = async (options: LoadOptions): Promise<LoadedService> => {
  const { service, archive, entryRoot, packageRoots } = options;
  // Two files of one name: readers of the archive could disagree on which is meant (the compartment map read
  // for the entry's identity, and the one compartment-mapper loads), so none is trusted.
  const twice = repeatedZipName(archive);
  if (twice !== undefined) {
    throw new SnapshotError(
      'SNAPSHOT_INVALID',
      `service "${service}": its archive holds two files named ${JSON.stringify(twice)}, which no build writes: the archive was altered after the build. Rebuild the snapshot or copy it again from the build host.`,
      { details: { service, file: twice } },
    );
  }
  const entryCompartment = entryCompartmentOf(archive);
  const packageRootOfCompartment = (name: string): string | undefined =>
    packageRoots !== undefined && Object.prototype.hasOwnProperty.call(packageRoots, name) ? packageRoots[name] : undefined;
  // The builtin modules given to the service, once evaluate() has them (its compartments are made after).
  let exitModules: Record<string, object> | undefined;
  // The globals evaluate() was given: their lazy ones (lazy-globals.ts) are each compartment's own.
  let serviceGlobals: object | undefined;
  // The service's one set of globals its packages assign (shared-globals.ts), made with its endowments' names.
  let shared: SharedGlobals | undefined;
  class ServiceCompartment extends Compartment {
    constructor(opts: Record<string, unknown> = {}) {
      const name = String(opts.name ?? '');
      const root = name === entryCompartment && entryRoot ? entryRoot : (packageRootOfCompartment(name) ?? `file:///node_modules/${name}/`);
      super({
        ...opts,
        importMetaHook: (specifier: string, meta: { url?: string; filename?: string; dirname?: string; resolve?: (specifier: string) => string }) => {
          meta.url = new URL(specifier, root).href;
          // Node 20.11's import.meta.filename and dirname, for file URLs.
          if (meta.url.startsWith('file:')) {
            meta.filename = url.fileURLToPath(meta.url);
            meta.dirname = path.dirname(meta.filename);
          }
          meta.resolve = resolverFor(meta.url);
        },
      } as never);
      moduleRoots.set(this, root);
      if (exitModules !== undefined) exitModulesOf.set(this, exitModules);
      const global = this.globalThis as Record<string, unknown>;
      global.global = global;
      // Object.prototype.toString.call(globalThis) is '[object global]' in Node (a Node check some packages make).
      Object.defineProperty(global, Symbol.toStringTag, { value: 'global', writable: false, enumerable: false, configurable: true });
      installSloppyThis(global);
      if (serviceGlobals !== undefined) {
        fixGlobals(global, serviceGlobals as Record<string, unknown>); // what compartment-mapper then assigns leaves them out
        shapeLikeNodeGlobals(global, serviceGlobals);
        installLazyGlobals(global, serviceGlobals);
        shared ??= makeSharedGlobals(new Set(Reflect.ownKeys(serviceGlobals)));
        shared.adopt(global);
      }
    }
  }
  // compartment-mapper checks a module only if its descriptor has a sha512: one without is an altered archive.
  const unhashed = unhashedModule(archive);
  if (unhashed) {
    const [pkg, module] = unhashed;
    throw new SnapshotError(
      'INTEGRITY_MISMATCH',
      `service "${service}": module ${module} of package ${pkg} has no sha512 in its archive's compartment map, which every archive a build writes has: the archive was altered after the build. Rebuild the snapshot or copy it again.`,
      { details: { service, module, package: pkg } },
    );
  }
  // What compartment-mapper would find missing only while the service loads (a divergence then, not a damaged archive).
  const broken = mapLinkProblem(archive);
  if (broken) {
    throw new SnapshotError('SERVICE_LOAD_FAILED', `service "${service}": its archive does not load: its compartment map ${broken}, which no build writes: the archive was altered after the build. Rebuild the snapshot or copy it again.`, {
      details: { service },
    });
  }
  let application: Awaited<ReturnType<typeof parseArchive>>;
  try {
    // Every module against the sha512 its compartment map records, and no file the map does not use: checked here
    // for an archive of ours; compartment-mapper checks any other (computeSha512), by loading every module once
    // before the service's load loads them again (a sixth of the CPU of restoring a service of 800 modules).
    const checked = checkArchiveModules(service, archive);
    application = await parseArchive(archive, `${service}.zip`, {
      parserForLanguage: { 'pre-cjs-json': preCjsParser as never },
      ...(checked ? {} : { computeSha512: sha512Hex }),
      modules: stubs(exitModuleNames(options.granted)),
      Compartment: ServiceCompartment as typeof Compartment,
    });
  } catch (error) {
    const altered = /Module "([^"]+)" of package "([^"]*)" in archive "[^"]*" failed a SHA-512 integrity check/.exec(errorMessage(error));
    if (altered) {
      throw new SnapshotError(
        'INTEGRITY_MISMATCH',
        `service "${service}": module ${altered[1]} of package ${altered[2]} in its archive does not match the sha512 its compartment map records: the archive was altered after the build. Rebuild the snapshot or copy it again.`,
        { cause: error, details: { service, module: altered[1], package: altered[2] } },
      );
    }
    throw new SnapshotError('SERVICE_LOAD_FAILED', `service "${service}": its archive does not load: ${errorMessage(error)}`, { cause: error, details: { service } });
  }
  return {
    evaluate: async (globals, modules) => {
      exitModules = modules;
      serviceGlobals = globals;
      try {
        const { namespace } = await application.import({ globals: withoutFixedGlobals(globals), modules, Compartment: ServiceCompartment as typeof Compartment });
        return namespace as object;
      } catch (error) {
        throw explainLoadError(service, undefined, error, entryRoot);
      }
    },
  };
};

/** The parsers parseArchive has (compartment-mapper's import-archive-parsers.js, ours replacing pre-cjs-json). */
const ARCHIVE_PARSERS: ReadonlySet<string> = new Set(['pre-cjs-json', 'pre-mjs-json', 'json', 'text', 'bytes']);

/**
 * The check compartment-mapper's parseArchive makes with `computeSha512`,
 * made on the archive's bytes without loading its modules: each file module
 * of the compartment map (`<compartment>/<location>`) against the sha512 it
 * records, and every file of the archive but the map used by one. Returns
 * false, leaving the archive to parseArchive's own check, when it is not
 * laid out as our writer lays one out (storedZipFiles), its map is damaged,
 * or a module of the map is not a plain file module of ours (its file
 * missing, its parser unknown, no sha512). Throws parseArchive's
 * errors, worded as it words them (loadService reports them):
 * `Module "<location>" of package "<compartment>" ... failed a SHA-512
 * integrity check` for a module whose bytes differ, `Archive contains
 * extraneous files` for a file no module uses.
 */
const checkArchiveModules = (service: string, archive: Uint8Array): boolean => {
  const files = storedZipFiles(archive);
  const map = files?.get('compartment-map.json');
  // A damaged map (its CRC-32) is left to parseArchive, which says so; one that names no compartments, too.
  if (files === undefined || map === undefined || crc32(map.content) !== map.crc32) return false;
  const { compartments } = compartmentMapOf(archive);
  if (typeof compartments !== 'object' || compartments === null) return false;
  const unused = new Set(files.keys());
  unused.delete('compartment-map.json');
  // Each file hashed once, however many module descriptors name it.
  const hashes = new Map<string, string>();
  for (const [compartment, descriptor] of Object.entries(compartments)) {
    const modules = typeof descriptor === 'object' && descriptor !== null ? (descriptor as { modules?: unknown }).modules : undefined;
    if (typeof modules !== 'object' || modules === null) continue;
    for (const module of Object.values(modules as Record<string, Record<string, unknown>>)) {
      if (typeof module !== 'object' || module === null) return false;
      if (!('location' in module)) {
        // A link to another compartment's module, a builtin (exit) or an error deferred to the import: no file.
        if ('compartment' in module || 'exit' in module || 'deferredError' in module) continue;
        return false;
      }
      // A module whose file, parser or hash is missing or odd: compartment-mapper's load says what is wrong with
      // it (SERVICE_LOAD_FAILED) before the service runs, where the service's load would fail in its replay.
      if (typeof module.location !== 'string' || typeof module.sha512 !== 'string' || typeof module.parser !== 'string' || !ARCHIVE_PARSERS.has(module.parser)) return false;
      const file = `${compartment}/${module.location}`;
      unused.delete(file);
      const bytes = files.get(file)?.content;
      if (bytes === undefined) return false;
      let hash = hashes.get(file);
      if (hash === undefined) hashes.set(file, (hash = sha512Hex(bytes)));
      if (hash === module.sha512) continue;
      throw new Error(`Module "${module.location}" of package "${compartment}" in archive "${service}.zip" failed a SHA-512 integrity check`);
    }
  }
  if (unused.size > 0) {
    const names = [...unused];
    throw new Error(`Archive contains extraneous files: ${JSON.stringify(names.slice(0, 10))}${names.length > 10 ? ` and ${names.length - 10} more` : ''} in "${service}.zip"`);
  }
  return true;
};

/** Each archive's compartment map, parsed once (a restore reads its entry, then checks its modules). */
const compartmentMaps = new WeakMap<Uint8Array, { entry?: { compartment?: unknown }; compartments?: unknown }>();

/** An archive's compartment map, or an empty one when it cannot be read (parseArchive reports a damaged archive). */
/**
 * What in the archive's compartment map links to nothing, as a build never writes it, or undefined: an
 * entry whose compartment or module is not in the map, a compartment whose location is not its name, a
 * module that links to a compartment or module the map does not hold. (A map that does not parse, or names
 * no compartments, is left to compartment-mapper, which says so.)
 */
const mapLinkProblem = (archive: Uint8Array): string | undefined => {
  const { entry, compartments } = compartmentMapOf(archive) as { entry?: { compartment?: unknown; module?: unknown }; compartments?: unknown };
  if (typeof compartments !== 'object' || compartments === null) return undefined;
  const all = compartments as Record<string, unknown>;
  const modulesOf = (name: unknown): Record<string, unknown> | undefined => {
    if (typeof name !== 'string' || !Object.hasOwn(all, name)) return undefined;
    const modules = (all[name] as { modules?: unknown } | null)?.modules;
    return typeof modules === 'object' && modules !== null ? (modules as Record<string, unknown>) : undefined;
  };
  const entryModules = modulesOf(entry?.compartment);
  if (!entryModules) return `names ${JSON.stringify(entry?.compartment)} as the entry's compartment, which it does not hold`;
  if (typeof entry?.module !== 'string' || !Object.hasOwn(entryModules, entry.module)) return `names ${JSON.stringify(entry?.module)} as the entry module, which its compartment does not hold`;
  for (const [name, descriptor] of Object.entries(all)) {
    const location = (descriptor as { location?: unknown } | null)?.location;
    if (location !== name) return `gives compartment ${JSON.stringify(name)} the location ${JSON.stringify(location)}`;
    for (const [specifier, module] of Object.entries(modulesOf(name) ?? {})) {
      if (typeof module !== 'object' || module === null || !('compartment' in module)) continue;
      const target = modulesOf((module as { compartment: unknown }).compartment);
      const linked = (module as { module?: unknown }).module;
      if (!target || typeof linked !== 'string' || !Object.hasOwn(target, linked)) {
        return `links module ${JSON.stringify(specifier)} of compartment ${JSON.stringify(name)} to ${JSON.stringify(linked)} of ${JSON.stringify((module as { compartment: unknown }).compartment)}, which it does not hold`;
      }
    }
  }
  return undefined;
};

/** The first module of the archive's compartment map that names a file but no sha512, as [package, module], or undefined. */
const unhashedModule = (archive: Uint8Array): [string, string] | undefined => {
  const { compartments } = compartmentMapOf(archive);
  if (typeof compartments !== 'object' || compartments === null) return undefined;
  for (const [compartment, descriptor] of Object.entries(compartments)) {
    const modules = typeof descriptor === 'object' && descriptor !== null ? (descriptor as { modules?: unknown }).modules : undefined;
    if (typeof modules !== 'object' || modules === null) continue;
    for (const module of Object.values(modules as Record<string, unknown>)) {
      if (typeof module === 'object' && module !== null && 'location' in module && !('sha512' in module)) return [compartment, String(module.location)];
    }
  }
  return undefined;
};

const compartmentMapOf = (archive: Uint8Array): { entry?: { compartment?: unknown }; compartments?: unknown } => {
  let map = compartmentMaps.get(archive);
  if (map === undefined) {
    map = readCompartmentMap(archive);
    compartmentMaps.set(archive, map);
  }
  return map;
};

const readCompartmentMap = (archive: Uint8Array): { entry?: { compartment?: unknown }; compartments?: unknown } => {
  try {
    // One file read, not the whole archive checked: parseArchive reads it whole, with its CRCs, right after.
    const bytes = readStoredZipFile(archive, 'compartment-map.json') ?? new ZipReader(archive).read('compartment-map.json');
    const map = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
    return typeof map === 'object' && map !== null ? map : {};
  } catch {
    return {};
  }
};

/** The compartments of an archive's compartment map, by name. */
const compartmentsOf = (archive: Uint8Array): Record<string, { label?: string }> => compartmentsIn(compartmentMapOf(archive));

const compartmentsIn = ({ compartments }: { compartments?: unknown }): Record<string, { label?: string }> =>
  typeof compartments === 'object' && compartments !== null ? (compartments as Record<string, { label?: string }>) : {};

/** The name of the compartment that holds the entry module, from the archive's compartment map. */
const entryCompartmentOf = (archive: Uint8Array): string | undefined => {
  const { entry } = compartmentMapOf(archive);
  return typeof entry?.compartment === 'string' ? entry.compartment : undefined;
};

const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

const sesRejection = /Possible (HTML comment|import expression|direct eval expression) rejected at (\S+?):(\d+)/;

/** `lodash/fp` -> `lodash`, `@scope/pkg/x` -> `@scope/pkg`. */
const packageNameOf = (specifier: string): string => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');

/** A directory from a compartment-mapper package location (a file URL) or path. */
const directoryOf = (location: string): string => (location.startsWith('file:') ? url.fileURLToPath(location) : location);

/**
 * A package as a message names it: its directory, or for an archive's compartment name (`<name>-v<version>`)
 * `name@version` (`name` alone without a version), where it said `errs-v` (found by the new-user trial).
 */
const packageText = (importer: string): string => {
  if (importer.startsWith('file:')) return directoryOf(importer);
  const named = /^(.+)-v([^/]*)$/.exec(importer);
  return named ? `${named[1]}${named[2] ? `@${named[2]}` : ''}` : importer;
};

/** Is `name` installed where Node would look for it from `dir` (any node_modules above it)? Its package.json then. */
const installedFrom = (dir: string, name: string): string | undefined => {
  for (let at = dir; ; at = path.dirname(at)) {
    const candidate = path.join(at, 'node_modules', name, 'package.json');
    if (fs.existsSync(candidate)) return candidate;
    if (path.dirname(at) === at) return undefined;
  }
};

/**
 * Packages that exist to patch the intrinsics (add what an older engine
 * lacks to Function.prototype, Array.prototype...), by the first segment of
 * a module's name in a stack (`core-js-pure/modules/...`; @babel/polyfill's
 * is `polyfill`). Lockdown froze the intrinsics every service shares: they
 * fail to load (docs/environment.md, "Polyfills that patch the intrinsics").
 */
const intrinsicPolyfills: ReadonlySet<string> = new Set(['core-js', 'core-js-pure', 'core-js-bundle', 'es5-shim', 'es6-shim', 'polyfill', 'babel-polyfill']);

/** What V8 says when code changes a frozen or non-extensible object (SES's override setters say the first too). */
const frozenWrite = /^Cannot (?:assign to read only property|define property|add property|redefine property|delete property)/;

/**
 * The installed packages under `root` (its own package and those in its
 * node_modules, scoped ones too; one level) whose package.json depends on
 * `name`, by name. Empty when none can be read.
 */
const dependentsOf = (root: string, name: string): string[] => {
  const out: string[] = [];
  const check = (dir: string): void => {
    if (!declaresDependency(dir, name)) return;
    try {
      const own = (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown }).name;
      if (typeof own === 'string' && own !== name && !out.includes(own)) out.push(own);
    } catch {
      // unreadable: not named
    }
  };
  check(root);
  const modules = path.join(root, 'node_modules');
  for (const entry of readDirEntries(modules)) {
    if (!entry.isDirectory() && !entry.isSymbolicLink()) continue;
    if (entry.name.startsWith('@')) for (const scoped of readDirEntries(path.join(modules, entry.name))) check(path.join(modules, entry.name, scoped.name));
    else if (!entry.name.startsWith('.')) check(path.join(modules, entry.name));
  }
  return out;
};

/**
 * Why a polyfill package `pkg` failed (a write to a frozen intrinsic), and
 * who brought it: the packages under `root` that depend on it, and for
 * Babel's runtime with core-js (@babel/runtime-corejs2/3) those that depend
 * on that. Returns the hint's text.
 */
const polyfillHint = (pkg: string, root: string | undefined, environmentDoc: string): string => {
  const display = pkg === 'polyfill' ? '@babel/polyfill' : pkg;
  let brought = '';
  if (root !== undefined) {
    const direct = dependentsOf(root, display);
    const described = direct.map(dependent => {
      if (!dependent.startsWith('@babel/runtime-corejs')) return dependent;
      const users = dependentsOf(root, dependent);
      return users.length > 0 ? `${dependent} (a dependency of ${users.join(', ')})` : dependent;
    });
    if (described.length > 0) brought = ` It is loaded by ${described.join(', ')}.`;
  }
  return (
    ` ${display} adds to the intrinsics (Function.prototype, Array.prototype...) what older engines lack; every service shares them and lockdown froze them, so it cannot load in a service, and Node 20 has what it adds.${brought}` +
    ` Leave it out of the service: a package built with @babel/runtime instead of @babel/runtime-corejs2/3, or without polyfills, or another package (${environmentDoc}, "Polyfills that patch the intrinsics").`
  );
};

/** Does the package.json in `dir` list `name` among the dependencies a service's packages may load? */
const declaresDependency = (dir: string, name: string): boolean => {
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
    return ['dependencies', 'peerDependencies', 'optionalDependencies'].some(field => {
      const deps = manifest[field];
      return typeof deps === 'object' && deps !== null && Object.hasOwn(deps, name);
    });
  } catch {
    return false;
  }
};

/**
 * The subpaths a package's "exports" offers ('.', './sub'...), or undefined
 * when it has no "exports" (then any file of it may be imported).
 */
const exportedSubpaths = (packageJson: string): string[] | undefined => {
  try {
    const { exports } = JSON.parse(fs.readFileSync(packageJson, 'utf8')) as { exports?: unknown };
    if (exports === undefined || exports === null) return undefined;
    if (typeof exports === 'string' || Array.isArray(exports)) return ['.'];
    const keys = Object.keys(exports as object);
    return keys.some(key => key.startsWith('.')) ? keys : ['.'];
  } catch {
    return undefined;
  }
};

/** A package.json's "exports" (undefined when it has none or cannot be read). */
const packageExports = (packageJson: string): unknown => {
  try {
    return (JSON.parse(fs.readFileSync(packageJson, 'utf8')) as { exports?: unknown }).exports;
  } catch {
    return undefined;
  }
};

/**
 * Node's own refusal of `name` required from the package in `dir`, for a build error to quote: its code and
 * its text (`Error [ERR_PACKAGE_PATH_NOT_EXPORTED]: Package subpath ...`), or undefined when Node's require
 * resolves it or does not find it (MODULE_NOT_FOUND).
 */
const nodeRefuses = (dir: string, name: string): { code: string; text: string } | undefined => {
  try {
    createRequire(path.join(dir, 'package.json')).resolve(name);
    return undefined;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code !== 'string' || code === 'MODULE_NOT_FOUND') return undefined;
    return { code, text: `${(error as Error).name} [${code}]: ${(error as Error).message}` };
  }
};

/**
 * Globals a package may reach for that services do not get: the browser's,
 * and Node's that are not deterministic or not offered. Inside a compartment
 * reading an unknown global gives `undefined`, so the failure is usually a
 * TypeError on the next property access or call.
 */
const absentGlobals = [
  'window', 'document', 'navigator', 'location', 'self', 'localStorage', 'sessionStorage', 'XMLHttpRequest', 'WebSocket',
  'requestAnimationFrame', 'cancelAnimationFrame', 'HTMLElement', 'Element', 'Image', 'FileReader', 'indexedDB', 'alert',
  'setImmediate', 'clearImmediate', 'require', '__dirname', '__filename', 'Worker', 'MessageChannel', 'BroadcastChannel',
];
const absentGlobal = new RegExp(`(?<![\\w$.])(${absentGlobals.map(g => g.replace(/\$/g, '\\$')).join('|')})(?![\\w$])`);

/** Where an error thrown while a service's modules evaluated comes from: its first frame in the service's own code. */
interface GuestFrame {
  /** The frame as printed, with the module shown as `<package>/<path>` (or a file on this host). */
  readonly text: string;
  /** `<package>/<path>` of the module (compartment-mapper names it `.../<package>/<path>`). */
  readonly module: string;
  readonly line: number;
  readonly column: number;
  /** The module's file on this host, when it is still there (at build time). */
  readonly file?: string;
}

const guestFrame = (error: unknown, entryRoot: string | undefined): GuestFrame | undefined => {
  if (!(error instanceof Error)) return undefined;
  for (const line of (error.stack ?? '').split('\n')) {
    const m = /^\s+at (?:(.*?) \()?\.\.\.\/(.+?):(\d+):(\d+)\)?$/.exec(line);
    if (!m) continue;
    const [, fn, module, lineNo, column] = m;
    let file: string | undefined;
    if (entryRoot) {
      // The entry package's modules: `<package>/<path>` is `<entryRoot>/<path>` when the package is the entry's.
      const root = directoryOf(entryRoot);
      const rest = module.slice(module.indexOf('/') + 1);
      const candidate = path.join(root, rest);
      if (module.split('/')[0] === entryPackageBase(root) && fs.existsSync(candidate)) file = candidate;
    }
    const where = `${file ?? module}:${lineNo}:${column}`;
    return { text: fn ? `${fn} (${where})` : where, module, line: Number(lineNo), column: Number(column), file };
  }
  return undefined;
};

/** The last segment of the package name at `root` (what compartment-mapper prints for it). */
const entryPackageBase = (root: string): string | undefined => {
  try {
    const { name } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { name?: unknown };
    return typeof name === 'string' ? name.split('/').pop() : undefined;
  } catch {
    return undefined;
  }
};

/**
 * Turn compartment-mapper and SES load failures into errors a user can act
 * on. `entry` is the entry module's file URL at build time; `entryRoot` the
 * entry package's root (file URL), used to name the real file of a frame.
 * Returns (never throws) a SnapshotError:
 * - `MODULE_NOT_INSTALLED`: a package is imported but not installed, or
 *   installed but not in the importing package's dependencies;
 * - `MODULE_NOT_GRANTED`: a Node builtin services are not given;
 * - `SERVICE_LOAD_FAILED`: a subpath a package's "exports" does not offer
 *   or excludes with null, or a `#name` its "imports" do not map (quoting
 *   Node's own error, `details.nodeCode` its code, where Node's require
 *   refuses it too), and anything else (missing file, SES rejection,
 *   an error thrown while the modules evaluated, with the module's frame).
 */
export const explainLoadError = (service: string, entry: string | undefined, error: unknown, entryRoot?: string): Error => {
  // Only errors this library raised pass as they are: a service's module that throws a
  // SnapshotError of its own making is reported as the service's failure.
  if (error instanceof SnapshotError && isLibraryError(error)) return error;
  const message = errorMessage(error);
  const environmentDoc = libraryDoc('docs/environment.md');
  const missing = /Cannot find external module "([^"]+)"(?: in package "?([^"\s]+)"?)?/.exec(message);
  if (missing) {
    const [, name, importer] = missing;
    if (isBuiltin(name) || exitModuleNames().includes(name)) {
      return new SnapshotError(
        'MODULE_NOT_GRANTED',
        `service "${service}" imports "${name}"${importer ? ` (in package ${packageText(importer)})` : ''}, a Node builtin services are not given. ` +
          `Grant it with importService(specifier, { modules: { '${name}': await import('${name}') } }) (its calls are then recorded), or remove the import. ` +
          `The builtins every service gets are listed in ${environmentDoc}.`,
        { cause: error, details: { service, module: name } },
      );
    }
    const pkg = packageNameOf(name);
    const dir = importer ? directoryOf(importer) : undefined;
    const installed = dir ? installedFrom(dir, pkg) : undefined;
    const importerText = dir ? `the package in ${dir}` : 'one of its packages';
    const refused = dir ? nodeRefuses(dir, name) : undefined;
    if (name.startsWith('#') && dir) {
      // A name of the package's own "imports" (Node: ERR_PACKAGE_IMPORT_NOT_DEFINED).
      return new SnapshotError(
        'SERVICE_LOAD_FAILED',
        `service "${service}": ${importerText} imports "${name}", which the "imports" of ${path.join(dir, 'package.json')} do not map to a module.${refused ? ` Node says: ${refused.text}` : ''}`,
        { cause: error, details: { service, module: name, ...(refused ? { nodeCode: refused.code } : {}) } },
      );
    }
    if (installed && dir && declaresDependency(dir, pkg)) {
      // Installed and declared: the subpath is what is missing (Node: ERR_PACKAGE_PATH_NOT_EXPORTED), or excluded with null.
      const subpath = name === pkg ? '.' : `./${name.slice(pkg.length + 1)}`;
      const offered = exportedSubpaths(installed);
      if (offered && (!offered.includes(subpath) || exportsExclude(packageExports(installed), subpath))) {
        const open = offered.filter(key => !exportsExclude(packageExports(installed), key));
        return new SnapshotError(
          'SERVICE_LOAD_FAILED',
          `service "${service}": ${importerText} imports "${name}", and the package "${pkg}" (${path.dirname(installed)}) does not export "${subpath}": its package.json "exports" offers ${open.map(key => `"${key}"`).join(', ')}. Import one of those.${refused ? ` Node says: ${refused.text}` : ''}`,
          { cause: error, details: { service, module: name, package: pkg, subpath, exports: open, ...(refused ? { nodeCode: refused.code } : {}) } },
        );
      }
      return new SnapshotError(
        'SERVICE_LOAD_FAILED',
        `service "${service}": ${importerText} imports "${name}"; the package "${pkg}" is installed (${path.dirname(installed)}) and declared, yet it did not load: ${message}`,
        { cause: error, details: { service, module: name, package: pkg } },
      );
    }
    return new SnapshotError(
      'MODULE_NOT_INSTALLED',
      installed
        ? `service "${service}": ${importerText} imports "${name}", and the package "${pkg}" is installed (${path.dirname(installed)}) but is not in the "dependencies" of ${dir ? path.join(dir, 'package.json') : 'that package'}. Services load only declared dependencies: add it there (npm install ${pkg}) and build again.`
        : `service "${service}": ${importerText} imports "${name}", but the package "${pkg}" is not installed. Install it${dir ? ` in ${dir}` : ''} (npm install ${pkg}) and build again.`,
      { cause: error, details: { service, module: name, package: pkg, installed: installed !== undefined } },
    );
  }
  const notFound = /Cannot find file for internal module "([^"]+)"(?: \(with candidates ([^)]*)\))? in package (\S+)/.exec(message);
  if (notFound) {
    const [, specifier, candidates, pkgLocation] = notFound;
    const loading = /Failed to load module "([^"]+)"/.exec(message);
    const dir = directoryOf(pkgLocation);
    return new SnapshotError(
      'SERVICE_LOAD_FAILED',
      `service "${service}" does not load: the module ${specifier} does not exist in ${dir}` +
        `${loading && loading[1] !== specifier ? ` (needed while loading ${loading[1]})` : ''}${candidates ? `; tried ${candidates.replace(/"/g, '')}` : ''}.`,
      { cause: error, details: { service, module: specifier, package: dir } },
    );
  }
  const rejected = sesRejection.exec(message);
  if (rejected) {
    const [, rule, file, line] = rejected;
    const where = file === '<unknown>' ? `line ${line} of one of its CommonJS modules` : `${file}:${line}`;
    const advice =
      rule === 'direct eval expression'
        ? 'SES refuses direct eval (eval(...) called by name): use (0, eval)(...) or new Function(...), or use another package.'
        : 'SES refuses this text outside comments and strings (those are rewritten at build time); rewrite the expression or use another package.';
    return new SnapshotError('SERVICE_LOAD_FAILED', `service "${service}": SES rejected a ${rule} at ${where}. ${advice}`, { cause: error, details: { service, file, line: Number(line), rule } });
  }
  if (/Cannot find package\.json|package\.json.*(name|must)|"name"/.test(message)) {
    const unnamed = unnamedPackageJson(entry);
    if (unnamed) {
      return new SnapshotError(
        'SERVICE_LOAD_FAILED',
        `service "${service}" failed to load from ${entry}: its package.json (${unnamed}) has no "name", and a service lives in a named package. Add one: "name": ${JSON.stringify(path.basename(path.dirname(unnamed)).toLowerCase())}.`,
        { cause: error, details: { service, packageJson: unnamed } },
      );
    }
    return new SnapshotError(
      'SERVICE_LOAD_FAILED',
      `service "${service}" failed to load from ${entry ?? 'its archive'}: ${message}. A service lives in a package: put a package.json with a "name" (and "type": "module" for ESM) beside it or above it.`,
      { cause: error, details: { service } },
    );
  }
  // An error thrown while a module evaluated: which module, where, and (only
  // when the failing line reaches for a global services lack) the usual cause.
  const frame = guestFrame(error, entryRoot);
  const thrown = error instanceof Error ? `${error.name}: ${message}` : message;
  let hint = '';
  if (error instanceof SyntaxError && /await is only valid in async functions and the top level bodies of modules/.test(message)) {
    // SES runs a module's body as a synchronous function: no top-level await (endojs/endo#306).
    hint = ` Top-level await is not supported inside a service (SES runs each module body as a synchronous function; endojs/endo#306): move the awaited work into an exported async function (init()) that the build script calls, or into a promise the module exports.`;
  } else if (/Unexpected (?:export|import) statement in CJS module|Cannot use import statement outside a module/.test(message)) {
    // Node 20 detects the module syntax and loads such a file as an ES module, with a warning.
    const file = /at (file:\/\/\S+?):\d+:\d+/.exec(message)?.[1];
    const unnamed = file ? nearestPackageJson(url.fileURLToPath(file)) : undefined;
    // A TypeScript file's ES module name is .mts, a JavaScript file's .mjs.
    const esmExtension = file && /\.[cm]?tsx?$/.test(file) ? '.mts' : '.mjs';
    // .cjs is CommonJS whatever the package says, and Node refuses its import/export too (found by the
    // adversarial review, where the hint said to add what was there). TypeScript that runs as CommonJS is
    // compiled to it (typescript.ts), as tsx compiles it.
    if (file && /\.cjs$/.test(file)) {
      hint = ` A .cjs file is CommonJS whatever its package.json says, and Node refuses its import/export too: write require() and module.exports (exports.x = ...), or name the file ${esmExtension}.`;
    } else hint = ` The file uses import/export in a package without "type": "module", so it is loaded as CommonJS (Node 20 reparses it as an ES module, with a warning). Add "type": "module" to ${unnamed ?? 'its package.json'}, or name the file ${esmExtension}.`;
  } else if (error instanceof TypeError || error instanceof ReferenceError) {
    const named = /^([\w$]+) is not (?:defined|a function|a constructor)/.exec(message)?.[1];
    let culprit = named && absentGlobals.includes(named) ? named : undefined;
    if (!culprit && frame?.file) {
      const sourceLine = fs.readFileSync(frame.file, 'utf8').split('\n')[frame.line - 1] ?? '';
      culprit = absentGlobal.exec(sourceLine.slice(0, frame.column))?.[1];
    }
    if (culprit) {
      hint = ` "${culprit}" is a global services do not get (${environmentDoc} lists what they get); a package that reaches for it needs another build of the package, or grant what it needs with importService(spec, { modules }).`;
    } else if (frame && frozenWrite.test(message) && intrinsicPolyfills.has(frame.module.split('/')[0])) {
      // A polyfill that a service's dependency brings along (xregexp, through @babel/runtime-corejs3: found by the fidelity hunt).
      hint = polyfillHint(frame.module.split('/')[0], entryRoot ? directoryOf(entryRoot) : undefined, environmentDoc);
    }
  }
  return new SnapshotError(
    'SERVICE_LOAD_FAILED',
    frame
      ? `service "${service}": ${frame.file ?? frame.module} threw while its modules were evaluated: ${thrown}\n    at ${frame.text}${hint ? `\n${hint.trim()}` : ''}`
      : `service "${service}" threw while its modules were evaluated: ${thrown}.${hint}`,
    { cause: error, details: { service, ...(frame ? { module: frame.file ?? frame.module, line: frame.line, column: frame.column } : {}) } },
  );
};
