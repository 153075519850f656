/**
 * CommonJS modules of an archive, evaluated as Node evaluates them.
 *
 * This replaces compartment-mapper's `pre-cjs-json` parser (the one that
 * runs archived CommonJS; its archive format is unchanged) where that one
 * differs from Node:
 *
 * - `module.exports = X` is visible at once: a module that reassigns
 *   `module.exports` and then requires a module that requires it back (a
 *   cycle: semver's range.js and comparator.js, protobufjs, jsonwebtoken)
 *   gives the cycle `X`, as Node does. compartment-mapper publishes the
 *   reassigned exports only when the module has finished, so the cycle saw
 *   `{}` and `semver.satisfies('1.2.3', '^1.0.0')` answered false.
 * - Only the module's named exports (those Node's cjs-module-lexer finds,
 *   recorded at archive time by cjs-archive.ts) reach its namespace, with
 *   `default` and, where the building Node adds it, `'module.exports'`
 *   (cjs-archive.ts, hostAddsModuleExports).
 * - `__filename` and `__dirname` name the module's file as `import.meta.url`
 *   does (the build-time path in the service's own package,
 *   `/node_modules/<package>/...` in a dependency): the same on every host.
 * - Each module is evaluated with a `//# sourceURL` naming it, so its stack
 *   frames name the module (not `<anonymous>`, nor the place SES is
 *   installed on this host, which would make recorded stacks differ from
 *   host to host).
 *
 * Adapted from @endo/compartment-mapper (Apache-2.0): parse-pre-cjs.js and
 * parse-cjs-shared-export-wrapper.js, version 2.4.0. Report upstream: "CJS:
 * `module.exports` reassigned before a require cycle is not seen by the
 * cycle (moduleEnvironmentRecord.default is only updated in afterExecute)".
 *
 * Known difference: SES runs all code in strict mode, so sloppy-mode
 * semantics (a failed assignment is silent, `this` defaults to globalThis)
 * are strict ones inside services.
 */

import { isBuiltin } from 'node:module';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeError } from './node-style-errors.js';

/**
 * The key a CommonJS module's `require` holds its `import()` under: a script's dynamic `import(x)`, which SES
 * refuses in a script (SES_IMPORT_REJECTED: a whole module failed to load for an `import()` in a function it
 * never called, OpenTelemetry's getMachineId, found by the fidelity hunt), is rewritten at build
 * `require[Symbol.for(CJS_IMPORT)](x)` (evasion.ts).
 */
export const CJS_IMPORT = 'membrane-snapshot.cjs-import';

const { apply } = Reflect;
const { freeze, create, defineProperty, prototype: objectPrototype } = Object;
const { hasOwnProperty } = objectPrototype;

const has = (object: object, key: PropertyKey): boolean => apply(hasOwnProperty, object, [key]) as boolean;

type ModuleEnvironmentRecord = Record<string, unknown>;

interface ParsedPreCjs {
  source: string;
  imports: string[];
  exports: string[];
  reexports: string[];
  /** Each relative require's file, package-relative, as Node resolves it (cjs-archive.ts); absent in older archives. */
  files?: Record<string, string>;
  /** The re-exports cjs-module-lexer finds, as written (`module.exports = require('./x')`): what Node's ESM loader preparses. */
  preparse?: string[];
  /** The requires Node resolves to an ES module (cjs-archive.ts): they return its namespace, as Node 20.19's require(esm). */
  esm?: string[];
  /** What Node's require.resolve answers for each literal name the source gives it: a package-relative file, or null for none (cjs-archive.ts). */
  resolves?: Record<string, string | null>;
  /** Relative requires Node resolves where compartment-mapper does not look (a directory's package.json main): the import of the file, by module-relative name. */
  targets?: Record<string, string>;
  /** Built on a Node that gives every CommonJS namespace the name 'module.exports' (cjs-archive.ts); absent before. */
  moduleExports?: boolean;
  /** Node's error for each literal name its resolution refuses (cjs-archive.ts, nodeRefusal); absent in older archives. */
  refusals?: Record<string, Refusal>;
}

/** Node's refusal of a name as cjs-archive.ts records it: its error's class name, code, message, and `path` where Node gives one. */
interface Refusal {
  name: string;
  code: string;
  message: string;
  path?: string;
}

/** The error classes a refusal may name (Node's resolution raises Error and TypeError ones). */
const refusalClasses: Readonly<Record<string, new (message: string) => Error>> = freeze({ Error, TypeError, RangeError, SyntaxError });

/**
 * The error Node's require (and require.resolve) throws for a name its
 * resolution refuses, made again from what the archive recorded (a
 * Refusal): an instance of the recorded class (Error when the record names
 * another), shaped as Node's own (`Error [ERR_PACKAGE_PATH_NOT_EXPORTED]:
 * ...`, code own and enumerable; a MODULE_NOT_FOUND a plain Error with its
 * code, as Node's), with its message, and its `path` when Node gave one.
 * Returns the error; never throws.
 */
const refusedError = ({ name, code, message, path }: Refusal): Error => {
  const Base = has(refusalClasses, name) ? refusalClasses[name] : Error;
  let error: Error;
  if (code === 'MODULE_NOT_FOUND') {
    // Node's MODULE_NOT_FOUND is a plain Error with a code (`Error: Cannot find module '...'`), not one of its NodeErrors.
    error = new Base(String(message));
    defineProperty(error, 'code', { value: code, writable: true, enumerable: true, configurable: true });
  } else error = nodeError(Base, String(code), String(message));
  if (typeof path === 'string') defineProperty(error, 'path', { value: path, writable: true, enumerable: true, configurable: true });
  return error;
};

interface CompartmentLike {
  evaluate(source: string): unknown;
  importNow(specifier: string): Record<string, unknown>;
  import(specifier: string): Promise<{ namespace: Record<string, unknown> }>;
  import(specifier: string): Promise<{ namespace: unknown } | Record<string, unknown>>;
  globalThis: { Object: ObjectConstructor };
  __noNamespaceBox__?: boolean;
}

const decoder = new TextDecoder();

/** Resolve a relative specifier against a referrer (both package-relative, `./a/b.js`). */
const resolveRelative = (specifier: string, referrer: string): string => {
  const parts = referrer.split('/').slice(0, -1);
  for (const part of specifier.split('/')) {
    if (part === '.' || part === '') continue;
    if (part === '..') {
      if (parts.length <= 1) throw new Error(`${specifier} leaves its package`);
      parts.pop();
    } else parts.push(part);
  }
  return parts.join('/');
};

/**
 * Each compartment's root as a file URL (load.ts: the entry package's
 * build-time root, `file:///node_modules/<name>/` for a dependency), the
 * same base as `import.meta.url`: `__filename` and `__dirname` name the
 * module's file under it.
 */
export const moduleRoots = new WeakMap<object, string>();

/**
 * The builtin modules a service is given (its exit modules, by name), by
 * the compartments of its archive: a computed require of one
 * (`require(name)`, a copy of require) reaches it even where no literal
 * require or import named it when the archive was made, as in Node.
 */
export const exitModulesOf = new WeakMap<object, Readonly<Record<string, object>>>();

interface CjsModule {
  id: string;
  path: string;
  exports: unknown;
  filename: string | null;
  loaded: boolean;
  children: CjsModule[];
  paths: string[];
}

/**
 * The directories Node would search for packages from `from`, as its
 * `Module._nodeModulePaths` gives them on POSIX (`module.paths`): each
 * ancestor's `node_modules`, skipping directories themselves named
 * `node_modules`. Computed from the build-time path, so the same on every host.
 */
const nodeModulePaths = (from: string): string[] => {
  const parts = from.split('/');
  const paths: string[] = [];
  for (let end = parts.length; end > 1; end--) {
    if (parts[end - 1] !== 'node_modules') paths.push(`${parts.slice(0, end).join('/')}/node_modules`);
  }
  paths.push('/node_modules');
  return paths;
};

/**
 * The CommonJS module whose `require` is running now (Node's `parent` of
 * the module that call loads), or undefined: a module loaded by an
 * `import` has no parent, as in Node. Modules run synchronously, so one
 * slot serves every compartment.
 */
let requiring: CjsModule | undefined;

/** Per compartment, the modules (by referrer) Node's ESM loader would have preparsed: see `execute`. */
const preparsed = new WeakMap<object, Set<string>>();
const preparsedOf = (compartment: object): Set<string> => {
  let set = preparsed.get(compartment);
  if (!set) preparsed.set(compartment, (set = new Set()));
  return set;
};

/** The module a `module` object belongs to: its parent and its require (for `module.parent`, `module.require`). */
const moduleLinks = new WeakMap<object, { parent: CjsModule | undefined; require: (specifier: unknown) => unknown }>();

/**
 * Per compartment, the prototype of its `module` objects, as Node's
 * Module.prototype is theirs: `parent` (an accessor, deprecated in Node but
 * still answered; `!module.parent` is how older code asks "am I the main
 * module?"), `require` and `isPreloading`. One per compartment, so a package
 * that changes it changes only its own modules.
 */
const modulePrototypes = new WeakMap<object, object>();
const modulePrototype = (compartment: CompartmentLike): object => {
  let prototype = modulePrototypes.get(compartment);
  if (prototype) return prototype;
  prototype = create(compartment.globalThis.Object.prototype) as object;
  defineProperty(prototype, 'isPreloading', { get: () => false, enumerable: false, configurable: true });
  defineProperty(prototype, 'parent', {
    get(this: object) {
      return moduleLinks.get(this)?.parent;
    },
    enumerable: false,
    configurable: true,
  });
  defineProperty(prototype, 'require', {
    value(this: object, id: unknown) {
      const links = moduleLinks.get(this);
      if (!links) throw new TypeError('module.require called on an object that is not a module');
      return links.require(id);
    },
    writable: true,
    enumerable: false,
    configurable: true,
  });
  modulePrototypes.set(compartment, prototype);
  return prototype;
};

/**
 * A `module` object with Node's own properties in Node's order (id, path,
 * exports, filename, loaded, children, paths), `exports` an accessor that
 * publishes a reassignment at once. Its parent is pushed its child, as
 * Node's Module constructor does.
 */
const makeModule = (
  compartment: CompartmentLike,
  fields: { id: string; filename: string | null; dirname: string | null; parent: CjsModule | undefined; require: (specifier: unknown) => unknown },
  exportsProperty: PropertyDescriptor,
): CjsModule => {
  const module = create(modulePrototype(compartment)) as CjsModule;
  module.id = fields.id;
  module.path = fields.dirname ?? '.';
  defineProperty(module, 'exports', { enumerable: true, configurable: true, ...exportsProperty });
  module.filename = fields.filename;
  module.loaded = false;
  module.children = [];
  module.paths = fields.dirname === null ? [] : nodeModulePaths(fields.dirname);
  moduleLinks.set(module, { parent: fields.parent, require: fields.require });
  if (fields.parent && !fields.parent.children.includes(module)) fields.parent.children.push(module);
  return module;
};

/**
 * The error Node's require and require.resolve throw for a module they
 * cannot find (Module._resolveFilename): code MODULE_NOT_FOUND, the message
 * `Cannot find module '<specifier>'` and the require stack (the requiring
 * module's file, then the file of the module that first required that one,
 * and so on), also as the error's `requireStack`. The files are the ones
 * `__filename` names, the build-time paths, so the message is Node's at
 * build time and the same on every host. A `note` goes on a line of its
 * own after the stack.
 */
const moduleNotFound = (specifier: string, from: CjsModule, note?: string): Error => {
  const requireStack: string[] = [];
  for (let cursor: CjsModule | undefined = from; cursor !== undefined; cursor = moduleLinks.get(cursor)?.parent) requireStack.push(cursor.filename || cursor.id);
  const stack = requireStack.length > 0 ? `\nRequire stack:\n- ${requireStack.join('\n- ')}` : '';
  const error = new Error(`Cannot find module '${specifier}'${stack}${note === undefined ? '' : `\n${note}`}`) as Error & { code: string; requireStack: string[] };
  error.code = 'MODULE_NOT_FOUND';
  error.requireStack = requireStack;
  return error;
};

/** What a service's require of a name computed at run time adds to Node's message when it finds no module. */
const COMPUTED_NOTE =
  "(inside a service, a require reaches only the modules its archive holds: a name computed at run time reaches those the build found for it: 'Computed require' in docs/environment.md)";

/** What a service's require.resolve adds to Node's message for a name it cannot answer. */
const RESOLVE_NOTE = '(inside a service, require.resolve answers for the relative modules its archive holds and the names the source gives it literally)';

/** Per compartment, each CommonJS module that has run: its require.cache key, its module object, and how to run it again. */
const registries = new WeakMap<object, Map<string, { key: string; module: CjsModule; rerun: (requirer: CjsModule) => CjsModule }>>();
const moduleRegistry = (compartment: object) => {
  let registry = registries.get(compartment);
  if (!registry) registries.set(compartment, (registry = new Map()));
  return registry;
};

/**
 * One `require.cache` per compartment, shared by its modules as Node's is:
 * each module that has run is there under its file name (as `__filename`),
 * and a module whose entry is deleted runs again at its next require
 * (prismjs's loadLanguages reloads a language so).
 */
const requireCaches = new WeakMap<object, object>();
const requireCache = (compartment: object): object => {
  let cache = requireCaches.get(compartment);
  if (!cache) requireCaches.set(compartment, (cache = create(null) as object));
  return cache;
};

/**
 * Parse an archived CommonJS module (`pre-cjs-json`): the same inputs and
 * record shape as compartment-mapper's parser. Signature per
 * compartment-mapper's `ParseFn`: (bytes, specifier, location,
 * packageLocation) => { parser, bytes, record }.
 */
/**
 * The head of a CommonJS module's functor in an archive: compartment-mapper's wrapper with its parameters in
 * Node's order (Module.wrap), called with Node's arguments (a module reading `arguments[0]` gets its exports).
 * Archives made before it have compartment-mapper's order (require first), and are called so.
 */
/**
 * What a package's compartment map adds to a specifier to link it to the file Node's `require` loads where its
 * `import` target differs (a dual package: node-resolution.ts); the archive's CommonJS modules import that link
 * (cjs-archive.ts), and require() takes it first.
 */
export const REQUIRE_LINK = '\u0000require';

/** The names a require of `spec` is found under in an archive, in Node's order (Module._findPath): the name, then .js, .json, then a directory's index. */
export const requireCandidates = (spec: string): string[] => [spec, `${spec}.js`, `${spec}.json`, `${spec}/index.js`, `${spec}/index.json`];

export const NODE_FUNCTOR_HEAD = "(function (exports, require, module, __filename, __dirname) { 'use strict'; ";

/** The name Node 23 and later add to a CommonJS module's namespace, holding its module.exports (cjs-archive.ts). */
export const MODULE_EXPORTS = 'module.exports';

export const parsePreCjs = (bytes: Uint8Array, specifier: string, location: string) => {
  const parsed = JSON.parse(decoder.decode(bytes)) as ParsedPreCjs;
  const { source, imports, exports, reexports, files = {}, preparse = [], esm = [], resolves = {}, targets = {}, moduleExports = false, refusals = {} } = parsed;
  // Built on a Node that names 'module.exports' in every CommonJS namespace (cjs-archive.ts): that name, listed in
  // `exports`, is module.exports itself, set below with `default`, whatever the lexer found under it.
  const withModuleExports = moduleExports;
  // An archive that records `files` has every relative require Node resolved there: one it lacks, Node did not find.
  const filesRecorded = parsed.files !== undefined;
  const esmImports = new Set(esm);
  const referrer = specifier.startsWith('./') ? specifier : `./${specifier}`;
  const nodeOrder = source.startsWith(NODE_FUNCTOR_HEAD);
  const namedStrings = exports.filter(name => name !== 'default' && !(withModuleExports && name === MODULE_EXPORTS));

  const execute = (moduleEnvironmentRecord: ModuleEnvironmentRecord, compartment: CompartmentLike, resolvedImports: Record<string, string>) => {
    const functor = compartment.evaluate(`${source}//# sourceURL=${location}\n`) as (...args: unknown[]) => void;
    const root = moduleRoots.get(compartment);
    const registry = moduleRegistry(compartment);

    // The initial exports object: ordinary, with the compartment's Object.prototype.
    moduleEnvironmentRecord.default = create(compartment.globalThis.Object.prototype);
    // Only the named exports Node would offer (cjs-archive.ts) reach the namespace, read once the module has
    // run (below): Node reads them then, and an importer cannot see the module before (ES modules run after
    // their dependencies). `exports` is this very object, the one every require returns unless
    // module.exports is replaced, so `require(x) === require(x)` from any module and require.cache agree.
    const originalExports = moduleEnvironmentRecord.default as object;

    // module.exports: reassigning it publishes the new value at once (Node's require cycles see it).
    let currentExports: unknown = originalExports;
    const filename = root === undefined ? null : fileURLToPath(new URL(referrer, root));
    const dirname = filename === null ? null : posix.dirname(filename);
    const cacheKey = filename ?? referrer;
    const requirer = requiring;
    requiring = undefined;
    // A module Node's ESM loader preparsed as a re-export of an imported CommonJS module has no parent
    // (Node makes its module object then), though the module that requires it lists it as a child.
    const preparsedHere = preparsedOf(compartment);
    const parent = preparsedHere.has(referrer) ? undefined : requirer;
    // Assigned below; the module object's require and the functor's are the same function.
    let require: ((specifier: unknown) => unknown) & Record<string, unknown>;
    const requireOf = (specifier: unknown) => require(specifier);
    const module = makeModule(
      compartment,
      { id: cacheKey, filename, dirname, parent, require: requireOf },
      {
        get: () => currentExports,
        set: (value: unknown) => {
          currentExports = value;
          moduleEnvironmentRecord.default = value;
        },
      },
    );
    // The module object of this file now (a fresh one each time it runs again).
    let self = module;
    if (parent === undefined && requirer !== undefined && !requirer.children.includes(module)) requirer.children.push(module);

    // A computed require names a module as Node would find it ('./prism-python'): the archive's
    // imports name files ('./prism-python.js', cjs-archive.ts), so Node's extensions are tried.
    const importedAs = (spec: string): string | undefined => {
      // The file Node found for it when the archive was made, where compartment-mapper does not look.
      if (has(targets, spec) && has(resolvedImports, targets[spec])) return targets[spec];
      // A dual package's require target first (node-resolution.ts), then Node's order.
      for (const candidate of [`${spec}${REQUIRE_LINK}`, ...requireCandidates(spec)]) {
        if (has(resolvedImports, candidate)) return candidate;
      }
      return undefined;
    };
    // Loaded without a parent (by an import, or preparsed itself): Node's ESM loader preparses the
    // re-exports this module's source declares (cjs-module-lexer), transitively, before it runs.
    if (parent === undefined) {
      for (const spec of preparse) {
        const imported = importedAs(spec);
        const target = imported === undefined ? undefined : (files[imported] ?? resolvedImports[imported]);
        if (target !== undefined && target.startsWith('./') && !registry.has(target)) preparsedHere.add(target);
      }
    }
    require = ((importSpecifier: unknown) => {
      const spec = `${String(importSpecifier)}`;
      // A name Node's resolution refused when the archive was made (a subpath the package's exports exclude): Node's error.
      if (has(refusals, spec)) throw refusedError(refusals[spec]);
      let namespace: Record<string, unknown>;
      const imported = importedAs(spec);
      // A CommonJS module of this package that has run: from require.cache, run again if its entry was deleted (as Node).
      const ran = imported === undefined ? undefined : registry.get(files[imported] ?? resolvedImports[imported]);
      if (ran !== undefined) {
        const cached = cache[ran.key] as CjsModule | undefined;
        if (cached === undefined) return ran.rerun(self).exports;
        // Node's Module._load: a cached module joins the children of each module that requires it.
        if (!self.children.includes(cached)) self.children.push(cached);
        return cached.exports;
      }
      // A module the archive does not hold fails as Node's require fails for a missing one. A builtin Node has but
      // services are not given says so: Node would load it.
      // A name no require of the module's source named when the archive was made (computed at run time) may be a
      // module Node finds on this host that the archive does not hold: the message says so after Node's.
      const notFound = () => {
        if (!isBuiltin(spec)) return moduleNotFound(spec, self, imported === undefined ? COMPUTED_NOTE : undefined);
        const missing = new Error(
          `Cannot find module '${spec}': the Node builtin is not given to services (grant it with importService(specifier, { modules: { '${spec}': ... } }), or see docs/environment.md)`,
        );
        defineProperty(missing, 'code', { value: 'MODULE_NOT_FOUND', writable: true, enumerable: true, configurable: true });
        return missing;
      };
      // A builtin the service is given, named at run time only: as Node's require finds it.
      if (imported === undefined && isBuiltin(spec)) {
        const exits = exitModulesOf.get(compartment);
        if (exits !== undefined && has(exits, spec)) {
          const exit = exits[spec] as Record<string, unknown>;
          return has(exit, 'default') ? exit.default : exit;
        }
      }
      // Only modules found when the archive was made exist: a computed require reaches one of those or fails.
      let candidate: string;
      try {
        candidate = imported !== undefined ? resolvedImports[imported] : spec.startsWith('./') || spec.startsWith('../') ? resolveRelative(spec, referrer) : spec;
      } catch {
        throw notFound(); // it leaves its package
      }
      const outer = requiring;
      requiring = self;
      try {
        namespace = compartment.importNow(candidate);
      } catch (error) {
        // Not in the archive (a package or builtin it does not hold), or a file Node did not find when the archive was
        // made (compartment-mapper deferred that error to this import: `./local-config`, `dep/lib/missing`): Node's
        // MODULE_NOT_FOUND, which optional-dependency code tests for. The deferred error is the candidate's own: a
        // module that ran and required a missing one threw this require's error, not compartment-mapper's.
        // An error the module threw while running passes as it is.
        const message = error instanceof Error ? error.message : '';
        const missing =
          message.startsWith(`Failed to load module ${JSON.stringify(candidate)}`) ||
          message.startsWith(`Cannot find external module ${JSON.stringify(candidate)}`) ||
          message.startsWith('Cannot find file for internal module "');
        if (!missing) throw error;
        throw notFound();
      } finally {
        requiring = outer;
      }
      if (esmImports.has(imported ?? spec)) return requiredEsm(namespace);
      return has(namespace, 'default') ? namespace.default : namespace;
    }) as typeof require;
    // A dynamic import() in this module (evasion.ts rewrites it to require[Symbol.for(CJS_IMPORT)](x)): as an ES
    // module's import() in a service, the namespace of a module the archive holds (one this module also requires
    // or imports); any other rejects (docs/environment.md). Not enumerable, as require has no such key in Node.
    const dynamicImport = (specifier: unknown): Promise<unknown> => {
      try {
        const spec = `${String(specifier)}`;
        const imported = importedAs(spec);
        const candidate = imported !== undefined ? resolvedImports[imported] : spec.startsWith('./') || spec.startsWith('../') ? resolveRelative(spec, referrer) : spec;
        return compartment.import(candidate).then(({ namespace }) => namespace);
      } catch (error) {
        return Promise.reject(error);
      }
    };
    defineProperty(require, Symbol.for(CJS_IMPORT), { value: dynamicImport });
    // require.resolve of a relative module the archive has: its path under the module root (as __filename).
    defineProperty(require, 'resolve', {
      enumerable: true,
      value: freeze((spec: string) => {
        const name = `${String(spec)}`;
        if (has(refusals, name)) throw refusedError(refusals[name]);
        const imported = importedAs(name);
        // Only a file Node found when the archive was made (`files`; older archives lack it, and name every import).
        const target = imported === undefined ? undefined : filesRecorded ? files[imported] : (files[imported] ?? resolvedImports[imported]);
        if (target !== undefined && target.startsWith('./') && root !== undefined && (imported as string).startsWith('.')) {
          // The file it resolves to (./lib/counter -> .../lib/counter.js), the key require.cache has it under.
          return fileURLToPath(new URL(target, root));
        }
        // A literal name: what Node answered when the archive was made (a file need not be a module the archive holds).
        if (has(resolves, name)) {
          const file = resolves[name];
          if (file === null) throw moduleNotFound(name, self);
          if (root !== undefined) return fileURLToPath(new URL(file, root));
        }
        // A relative require of the source Node did not find when the archive was made.
        if (imported === name && filesRecorded && name.startsWith('.')) throw moduleNotFound(name, self);
        // Any other name (computed at run time, or a package): Node may find it, a service does not.
        throw moduleNotFound(name, self, RESOLVE_NOTE);
      }),
    });
    // Packages register loaders here (handlebars adds '.handlebars'): writable, as in Node, and without effect.
    const requireExtensions = create(null) as Record<string, unknown>;
    const notImplemented = freeze(() => {
      throw new Error('require.extensions is not available inside a service');
    });
    requireExtensions['.js'] = notImplemented;
    requireExtensions['.json'] = notImplemented;
    requireExtensions['.node'] = notImplemented;
    // A module that a service loads is never Node's main module (as for a module an ES module imports).
    defineProperty(require, 'main', { value: undefined, enumerable: true });
    defineProperty(require, 'extensions', { value: requireExtensions, enumerable: true });
    // Node's module cache, shared by the package's modules (prismjs deletes from it to load a module again).
    defineProperty(require, 'cache', { value: requireCache(compartment), enumerable: true });
    freeze(require);

    // In CommonJS, the top-level `this` is the original `module.exports`.
    const cache = requireCache(compartment) as Record<string, unknown>;
    // Running the module's body. One that throws leaves require.cache and the children of the module that required
    // it, as in Node's Module._load: its next require runs it again (below), where it stayed loaded with what it
    // had exported so far.
    const runBody = (target: CjsModule, exports: object, requirer: CjsModule | undefined): void => {
      try {
        apply(functor, exports, nodeOrder ? [exports, require, target, filename, dirname] : [require, exports, target, filename, dirname]);
      } catch (error) {
        if (cache[cacheKey] === target) delete cache[cacheKey];
        const index = requirer === undefined ? -1 : requirer.children.indexOf(target);
        if (index !== -1) requirer?.children.splice(index, 1);
        throw error;
      }
      target.loaded = true;
    };
    // Running the module again (after `delete require.cache[file]`, or after it threw): a fresh module and exports, as Node's Module._load.
    const rerun = (requirer: CjsModule): CjsModule => {
      const exports = create(compartment.globalThis.Object.prototype) as object;
      const again = makeModule(compartment, { id: cacheKey, filename, dirname, parent: requirer, require: requireOf }, { value: exports, writable: true });
      self = again;
      cache[cacheKey] = again;
      registry.set(referrer, { key: cacheKey, module: again, rerun });
      runBody(again, exports, requirer);
      return again;
    };
    cache[cacheKey] = module;
    registry.set(referrer, { key: cacheKey, module, rerun });
    runBody(module, originalExports, requirer);

    // Once the module has run, each named export is what Node gives it: the own property of the final
    // module.exports, read once, or undefined (a name written on the original exports object, which
    // module.exports then replaced, is not kept: validator's __esModule).
    // module.exports is read as Node's require reads it, through the property: a module may have put its own
    // accessor there (ansi-styles 4, which chalk 4 reads: Object.defineProperty(module, 'exports', { get })).
    const finalExports = module.exports;
    if (finalExports !== originalExports) moduleEnvironmentRecord.default = finalExports;
    const readable = (typeof finalExports === 'object' && finalExports !== null) || typeof finalExports === 'function';
    for (const prop of namedStrings) {
      let value: unknown;
      if (readable && has(finalExports as object, prop)) {
        try {
          value = (finalExports as Record<string, unknown>)[prop];
        } catch {
          // Node leaves a named export whose getter throws undefined.
        }
      }
      if (moduleEnvironmentRecord[prop] !== value) moduleEnvironmentRecord[prop] = value;
    }
    // Node 23 and later: 'module.exports' is module.exports as the module left it, as `default` (translators.js).
    if (withModuleExports) moduleEnvironmentRecord[MODULE_EXPORTS] = finalExports;
  };

  return {
    parser: 'pre-cjs-json',
    bytes,
    record: { imports, reexports, exports, execute },
  };
};

/**
 * What Node 20.19's require(esm) returns for an ES module's namespace: its
 * export named 'module.exports' when it has one; the namespace itself, or, when it has a default export and no `__esModule`,
 * a namespace-like object that adds `__esModule: true` (Node's
 * createRequiredModuleFacade), with live bindings, the same one each time.
 */
const esmFacades = new WeakMap<object, object>();
const requiredEsm = (namespace: Record<string, unknown>): unknown => {
  // Node 20.19: a module that exports a name 'module.exports' (export { f as 'module.exports' }) is required as that value.
  if (has(namespace, 'module.exports')) return namespace['module.exports'];
  if (!has(namespace, 'default') || has(namespace, '__esModule')) return namespace;
  let facade = esmFacades.get(namespace);
  if (!facade) {
    facade = create(null) as object;
    for (const key of [...Object.keys(namespace), '__esModule'].sort()) {
      defineProperty(facade, key, { get: key === '__esModule' ? () => true : () => namespace[key], enumerable: true, configurable: false });
    }
    defineProperty(facade, Symbol.toStringTag, { value: 'Module', writable: false, enumerable: false, configurable: false });
    Object.preventExtensions(facade);
    esmFacades.set(namespace, facade);
  }
  return facade;
};

/** The parser entry, as compartment-mapper's `parserForLanguage` takes it. */
export const preCjsParser = freeze({ parse: parsePreCjs, heuristicImports: true, synchronous: true });
