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
import { makeArchiveFromMap } from '@endo/compartment-mapper/archive-lite.js';
import { defaultParserForLanguage } from '@endo/compartment-mapper/archive-parsers.js';
import { parseArchive } from '@endo/compartment-mapper/import-archive.js';
import { mapNodeModules } from '@endo/compartment-mapper/node-modules.js';
import { makeReadPowers } from '@endo/compartment-mapper/node-powers.js';
import { SnapshotError } from '../replay-log/index.js';
import { isLibraryError } from '../membrane/marks.js';
import { exitModuleNames } from './endowments.js';
import { typescriptOptions } from './typescript.js';
import { evasiveTransforms } from './evasion.js';
import { preCjsParser } from './cjs.js';
import { installSloppyThis } from './sloppy-this.js';
import { applyNodeResolution, nodeConditions } from './node-resolution.js';
import { ZipReader } from '@endo/zip';

const readPowers = makeReadPowers({ fs, url, crypto });

const stubs = (names: readonly string[]): Record<string, object> => Object.fromEntries(names.map(n => [n, {}]));

/** Build the archive of a service entry module (a file URL). */
export const archiveService = async (service: string, entry: string, granted: readonly string[] = []): Promise<Uint8Array> => {
  try {
    // One crawl of node_modules, then the archive from that map. Every
    // package may use and extend its globals, as in Node: compartment-mapper
    // freezes a package's globalThis unless its policy says otherwise (zod
    // keeps its configuration there), so each compartment gets an open policy.
    const typescript = typescriptOptions();
    const parserForLanguage = { ...defaultParserForLanguage, ...typescript.parserForLanguage };
    const map = await mapNodeModules(readPowers, entry, {
      ...typescript,
      dev: false,
      conditions: nodeConditions(),
      languages: Object.keys(parserForLanguage),
    } as unknown as Parameters<typeof mapNodeModules>[2]);
    applyNodeResolution(map as unknown as Parameters<typeof applyNodeResolution>[0]);
    const open = { globals: 'any', packages: 'any', builtins: 'any', noGlobalFreeze: true } as const;
    const resources: Record<string, typeof open> = {};
    const exits = exitModuleNames(granted);
    for (const compartment of Object.values(map.compartments) as MappedCompartment[]) {
      compartment.policy = open;
      if (compartment.label !== '$root$') resources[compartment.label] = open;
      preferExitModules(compartment, exits);
    }
    return await makeArchiveFromMap(readPowers, map, {
      modules: stubs(exits),
      parserForLanguage,
      policy: { entry: open, resources },
      moduleTransforms: evasiveTransforms(),
    } as unknown as Parameters<typeof makeArchiveFromMap>[2]);
  } catch (error) {
    throw explainLoadError(service, entry, error);
  }
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
 * package (`events/foo`) still resolve to the package.
 *
 * The `{ exit }` descriptor makes the linker fall through to the exit-module
 * hook. It must not reach the archive: compartment-mapper 2.4 writes every
 * descriptor marked `retained`, and `parseArchive` then fails on an exit
 * descriptor ("missing parser"), so this one stays unretained (an exit
 * module needs no entry in the archive: it is offered again at load time).
 */
const exitDescriptor = (name: string): object =>
  Object.defineProperty({ exit: name }, 'retained', { get: () => false, set: () => {}, enumerable: true });

const preferExitModules = (compartment: MappedCompartment, exits: readonly string[]): void => {
  const modules = (compartment.modules ??= {});
  for (const name of exits) {
    const shadowed = name in modules || (compartment.scopes !== undefined && name in compartment.scopes) || (compartment.patterns ?? []).some(p => p.from === name);
    if (shadowed) modules[name] = exitDescriptor(name);
  }
};

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
  readonly granted?: readonly string[];
}

export interface LoadedService {
  /** Evaluate the modules with these endowments; resolves to the entry's namespace. */
  evaluate(globals: Record<string, unknown>, modules: Record<string, object>): Promise<object>;
}

/**
 * Parse an archive. `import.meta.url` in the entry package resolves against
 * its build-time root; in dependencies, against `file:///node_modules/<pkg>/`.
 */
export const loadService = async (options: LoadOptions): Promise<LoadedService> => {
  const { service, archive, entryRoot } = options;
  const entryCompartment = entryCompartmentOf(archive);
  class ServiceCompartment extends Compartment {
    constructor(opts: Record<string, unknown> = {}) {
      const name = String(opts.name ?? '');
      const root = name === entryCompartment && entryRoot ? entryRoot : `file:///node_modules/${name}/`;
      super({
        ...opts,
        importMetaHook: (specifier: string, meta: { url?: string }) => {
          meta.url = new URL(specifier, root).href;
        },
      } as never);
      const global = this.globalThis as Record<string, unknown>;
      global.global = global;
      installSloppyThis(global);
    }
  }
  let application: Awaited<ReturnType<typeof parseArchive>>;
  try {
    application = await parseArchive(archive, `${service}.zip`, {
      parserForLanguage: { 'pre-cjs-json': preCjsParser as never },
      modules: stubs(exitModuleNames(options.granted)),
      Compartment: ServiceCompartment as typeof Compartment,
    });
  } catch (error) {
    throw new SnapshotError('SERVICE_LOAD_FAILED', `service "${service}": its archive does not load: ${errorMessage(error)}`, { cause: error, details: { service } });
  }
  return {
    evaluate: async (globals, modules) => {
      try {
        const { namespace } = await application.import({ globals, modules, Compartment: ServiceCompartment as typeof Compartment });
        return namespace as object;
      } catch (error) {
        throw explainLoadError(service, `${service}.zip`, error);
      }
    },
  };
};

/** The name of the compartment that holds the entry module, from the archive's compartment map. */
const entryCompartmentOf = (archive: Uint8Array): string | undefined => {
  try {
    const map = JSON.parse(new TextDecoder().decode(new ZipReader(archive).read('compartment-map.json'))) as { entry?: { compartment?: unknown } };
    return typeof map.entry?.compartment === 'string' ? map.entry.compartment : undefined;
  } catch {
    return undefined; // parseArchive reports a damaged archive
  }
};

const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Turn compartment-mapper and SES load failures into errors a user can act on. */
export const explainLoadError = (service: string, entry: string, error: unknown): Error => {
  const message = errorMessage(error);
  const missing = /Cannot find external module "([^"]+)"(?: in package (\S+))?/.exec(message);
  if (missing) {
    const name = missing[1];
    return new SnapshotError(
      'MODULE_NOT_GRANTED',
      `service "${service}" imports "${name}"${missing[2] ? ` (in package ${missing[2]})` : ''}, which services are not given. ` +
        `Grant it with importService(specifier, { modules: { '${name}': await import('${name}') } }) (its calls are then recorded), or remove the import. ` +
        `Builtins every service gets: see docs/environment.md.`,
      { cause: error, details: { service, module: name } },
    );
  }
  const rejected = /Possible (HTML comment|import expression|direct eval expression) rejected at (\S+?):(\d+)/.exec(message);
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
    return new SnapshotError(
      'SERVICE_LOAD_FAILED',
      `service "${service}" failed to load from ${entry}: ${message}. A service lives in a package: put a package.json with a "name" (and "type": "module" for ESM) beside it or above it.`,
      { cause: error, details: { service } },
    );
  }
  // Only errors this library raised pass as they are: a service's module that throws a
  // SnapshotError of its own making is reported as the service's failure.
  if (error instanceof SnapshotError && isLibraryError(error)) return error;
  // An error thrown while a module evaluated: say where, and what usually causes it.
  const frame = error instanceof Error ? (error.stack ?? '').split('\n').find(l => /^\s+at /.test(l) && !/node:internal|\/(ses|@endo)\/|\/dist\/(compartments|membrane|lib)\//.test(l)) : undefined;
  const hint =
    error instanceof TypeError || error instanceof ReferenceError
      ? ' A package that reaches for a global services do not get (window, document, XMLHttpRequest, ...) fails like this: docs/environment.md lists what services get; grant a module with importService(spec, { modules }).'
      : '';
  return new SnapshotError(
    'SERVICE_LOAD_FAILED',
    `service "${service}" failed to load from ${entry}: ${message}${frame ? ` (${frame.trim()})` : ''}.${hint}`,
    { cause: error, details: { service } },
  );
};
