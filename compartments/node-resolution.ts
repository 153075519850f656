/**
 * Package resolution as Node does it, applied to the compartment map that
 * `@endo/compartment-mapper`'s `mapNodeModules` builds, before archiving.
 *
 * Where the mapper differs from Node (Node 20, https://nodejs.org/api/packages.html):
 *
 * | mapper                                        | Node (and now here)                         |
 * | --------------------------------------------- | ------------------------------------------- |
 * | `exports` conditions: import, default, endo   | `node` first in the set (`nodeConditions`)  |
 * | a package's `module` field is its entry, and  | `module` is ignored: `main` (or index.js)   |
 * | makes every `.js` file of the package ESM     | is the entry; `.js` follows `type`          |
 * | an installed package named like a builtin     | the builtin (`buffer`, `events`...); the    |
 * | (`buffer`) replaces the builtin               | package only as `buffer/`                   |
 * | `.js` files take the package's language (or   | a `.js` file's language is the `type` of    |
 * | the `module` field's)                         | its nearest package.json (`es/package.json`)|
 * | one condition set for every importer: a       | `require` resolves with `require`, `import` |
 * | CommonJS `require` of a dual package got its  | with `import`: a package whose targets      |
 * | `import` target (its ESM build)               | differ gets a second link for `require`     |
 * |                                               | (`<specifier>` + REQUIRE_LINK, cjs.ts)      |
 * | no `module-sync` condition                    | `module-sync` where Node has require(esm)   |
 * | a package links only the packages it declares | a package finds any package in a node_modules|
 * |                                               | folder above it (makeImportLinker)          |
 * | a package's own `exports` patterns            | patterns apply to bare specifiers only      |
 * | (`"./es/*": "./es/*.js"`) rewrite its relative| (`ramda/es/add`): relative imports resolve  |
 * | imports, again and again (`add.js.js.js`...): | by path                                     |
 * | archiving ramda ran out of memory             |                                             |
 *
 * TypeScript's NodeNext convention (and tsx's): a relative import names the
 * file the compiler would emit (`./util.js`, `./esm.mjs`, `./legacy.cjs`)
 * while only its source (`util.ts`, `esm.mts`, `legacy.cts`) is on disk.
 * Where that `.js`/`.mjs`/`.cjs` file does not exist, its specifier is
 * made an alias of the TypeScript file (`typescriptAliases`). Where both
 * exist, the JavaScript file is loaded, as Node would (tsx prefers the `.ts`
 * when the importer is TypeScript; the two differ only if the `.js` is not
 * the `.ts` compiled).
 *
 * Report upstream (compartment-mapper): "treat `module` as a hint only
 * under a bundler condition; a package with a `module` field but no
 * `type: module` has CommonJS `.js` files in Node"; "packages named like
 * Node builtins shadow the builtin exit modules".
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire, isBuiltin } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { REQUIRE_LINK } from './cjs.js';

/**
 * Conditions for `mapNodeModules` (the mapper adds import, default and
 * endo): `node`, and `module-sync` where this Node loads ES modules with
 * require() (Node 20.19 on), as Node then resolves both import and require.
 */
export const nodeConditions = (): Set<string> =>
  new Set(['node', ...((process.features as { require_module?: boolean }).require_module ? ['module-sync'] : [])]);

interface ModuleDescriptor {
  compartment?: string;
  module?: string;
}

interface CompartmentDescriptor {
  location: string;
  parsers?: Record<string, string>;
  types?: Record<string, string>;
  modules?: Record<string, ModuleDescriptor>;
  scopes?: Record<string, ModuleDescriptor>;
  patterns?: Array<{ from: string; to: string; compartment?: string }>;
}

interface PackageJson {
  type?: string;
  main?: string;
  module?: string;
  exports?: unknown;
}

/** A TypeScript source's extension, and the extension of the file its compiler emits. */
const emittedExtension: Readonly<Record<string, string>> = { '.ts': '.js', '.mts': '.mjs', '.cts': '.cjs' };

/** `./dir/util.ts` -> `./dir/util.js` (TypeScript's declaration files, `.d.ts`, are not modules). */
const emittedName = (file: string): string | undefined => {
  if (/\.d\.[cm]?ts$/.test(file)) return undefined;
  const extension = /\.[cm]?ts$/.exec(file)?.[0];
  return extension ? file.slice(0, -extension.length) + emittedExtension[extension] : undefined;
};

const relativize = (path: string): string => (path.startsWith('./') || path.startsWith('../') ? path : `./${path}`);

const readPackage = (location: string): PackageJson | undefined => {
  try {
    return JSON.parse(fs.readFileSync(fileURLToPath(new URL('package.json', location)), 'utf8')) as PackageJson;
  } catch {
    return undefined;
  }
};

/** The entries of directory `dir`, or none when it cannot be read (absent, not a directory, not readable). */
export const readDirEntries = (dir: string): fs.Dirent[] => {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
};

/**
 * Record, in the compartment's `types`, the language of every `.js` file
 * that a nested package.json governs (Node's rule: the nearest package.json
 * decides, and one without a `type` means CommonJS), and in its `modules` an alias from the
 * emitted name of every TypeScript file to that file where nothing has that
 * name (TypeScript's rule, above), skipping node_modules. The aliases reach
 * the archive only when something imports them.
 */
const walkPackage = (compartment: CompartmentDescriptor): void => {
  let root: string;
  try {
    root = fileURLToPath(compartment.location);
  } catch {
    return;
  }
  const walk = (dir: string, relative: string, language: 'cjs' | 'mjs' | undefined): void => {
    const entries = readDirEntries(dir);
    let here = language;
    if (relative !== '' && entries.some(e => e.name === 'package.json' && e.isFile())) {
      const nested = readPackage(pathToFileURL(`${dir}/`).href);
      // The nearest package.json decides, with or without a type: no type is CommonJS (Node's rule).
      if (nested) here = nested.type === 'module' ? 'mjs' : 'cjs';
    }
    const names = new Set(entries.map(e => e.name));
    for (const entry of entries) {
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && !entry.name.startsWith('.')) walk(`${dir}/${entry.name}`, `${relative}${entry.name}/`, here);
        continue;
      }
      if (here && entry.name.endsWith('.js')) (compartment.types ??= {})[`./${relative}${entry.name}`] = here;
      const emitted = emittedName(entry.name);
      if (emitted && !names.has(emitted)) {
        const modules = (compartment.modules ??= {});
        modules[`./${relative}${emitted}`] ??= { compartment: compartment.location, module: `./${relative}${entry.name}` };
      }
    }
  };
  walk(root.replace(/\/$/, ''), '', undefined);
};

/** The language Node gives a file of a package: by extension, else by the nearest package.json's type. */
const languageOf = (packageLocation: string, file: string, pkg: PackageJson): 'cjs' | 'mjs' | undefined => {
  if (file.endsWith('.cjs')) return 'cjs';
  if (file.endsWith('.mjs')) return 'mjs';
  if (!file.endsWith('.js')) return undefined;
  const root = new URL(packageLocation);
  for (let dir = new URL('.', new URL(file, packageLocation)); dir.href.startsWith(root.href) && dir.href !== root.href; dir = new URL('..', dir)) {
    const nested = readPackage(dir.href);
    if (nested) return nested.type === 'module' ? 'mjs' : 'cjs';
  }
  return pkg.type === 'module' ? 'mjs' : 'cjs';
};

/**
 * The "import" condition's string targets in a package's "exports" (any depth, as compartment-mapper reads them).
 */
const importTargets = (exports: unknown, into: string[] = []): string[] => {
  if (Array.isArray(exports)) for (const item of exports) importTargets(item, into);
  else if (typeof exports === 'object' && exports !== null) {
    for (const [key, value] of Object.entries(exports)) {
      if (key === 'import' && typeof value === 'string') into.push(value);
      else importTargets(value, into);
    }
  }
  return into;
};

/**
 * compartment-mapper takes a `.js` file an "exports" `import` condition names
 * for an ES module; Node gives it the language of its nearest package.json
 * (`{ "import": "./lib/x.js" }` in a package without "type" is CommonJS,
 * which the service then ran as a module: `exports` undefined). Sets each
 * such file's type in `compartment.types` to Node's.
 */
const importTargetLanguages = (compartment: CompartmentDescriptor, pkg: PackageJson): void => {
  for (const target of importTargets(pkg.exports)) {
    if (!target.startsWith('./') || !target.endsWith('.js')) continue;
    const language = languageOf(compartment.location, target, pkg);
    if (language !== undefined && compartment.types?.[target] !== undefined) compartment.types[target] = language;
  }
};

/** A directory URL with its final slash. */
const asDirectory = (location: string): string => (location.endsWith('/') ? location : `${location}/`);

/**
 * For each dependency `compartment` links by a bare specifier whose
 * `require` target is not its `import` target (a dual package's exports:
 * `{ import: './index.mjs', require: './index.cjs' }`), a second link,
 * `<specifier>` + REQUIRE_LINK, to the file Node's require loads (resolved
 * by Node itself, from the compartment's directory). Returns the specifiers
 * it linked so. Exports patterns (`./*`) are linked as a module requires
 * them (makeImportLinker).
 */
const linkRequireTargets = (compartment: CompartmentDescriptor, compartments: Record<string, CompartmentDescriptor>, hasExports: (location: string) => boolean): Set<string> => {
  const linked = new Set<string>();
  const modules = compartment.modules;
  if (!modules) return linked;
  let nodeRequire: NodeJS.Require;
  try {
    nodeRequire = createRequire(new URL('package.json', asDirectory(compartment.location)));
  } catch {
    return linked;
  }
  for (const [specifier, descriptor] of Object.entries(modules)) {
    if (specifier.startsWith('.') || specifier.endsWith(REQUIRE_LINK) || descriptor.compartment === undefined || descriptor.module === undefined) continue;
    const target = compartments[descriptor.compartment];
    if (!target || !hasExports(target.location)) continue;
    let required: string;
    try {
      required = nodeRequire.resolve(specifier);
    } catch {
      continue; // no require target: Node's require fails, and so does the service's
    }
    const root = fileURLToPath(asDirectory(target.location));
    const imported = path.resolve(root, descriptor.module);
    const relative = path.relative(root, required);
    if (required === imported || relative.startsWith('..') || path.isAbsolute(relative)) continue;
    modules[`${specifier}${REQUIRE_LINK}`] = { compartment: descriptor.compartment, module: `./${relative.split(path.sep).join('/')}` };
    linked.add(specifier);
  }
  return linked;
};

/**
 * Correct `map` (as returned by `mapNodeModules`) in place to Node's
 * resolution rules, for the differences listed above. Fills
 * `requireLinks` with the specifiers each compartment (by location, with
 * its final slash) has a `require` link for (cjs-archive.ts points the
 * requires of its CommonJS modules at them).
 */
export const applyNodeResolution = (map: { compartments: Record<string, CompartmentDescriptor> }, requireLinks?: Map<string, Set<string>>): void => {
  const compartments = Object.values(map.compartments);
  // Entries the mapper took from a `module` field, per package location: what Node would load instead.
  const redirect = new Map<string, { from: string; to: string }>();
  // Whether a package's package.json has exports, read once per package (every package that requires it asks).
  const exportsOf = new Map<string, boolean>();
  const hasExports = (location: string): boolean => {
    let answer = exportsOf.get(location);
    if (answer === undefined) exportsOf.set(location, (answer = readPackage(asDirectory(location))?.exports !== undefined));
    return answer;
  };
  for (const compartment of compartments) {
    // compartment-mapper reads these objects as it links: phantom links (makeImportLinker) are added to them later.
    compartment.modules ??= {};
    compartment.scopes ??= {};
    walkPackage(compartment);
    const pkg = readPackage(compartment.location);
    if (pkg) importTargetLanguages(compartment, pkg);
    if (!pkg || typeof pkg.module !== 'string') continue;
    const moduleEntry = relativize(pkg.module);
    if (pkg.type !== 'module') {
      if (compartment.parsers?.js === 'mjs') compartment.parsers.js = 'cjs';
      // The mapper marked the `module` entry ESM; Node gives it the language of its nearest package.json.
      const language = languageOf(compartment.location, moduleEntry, pkg);
      if (language && compartment.types?.[moduleEntry]) compartment.types[moduleEntry] = language;
    }
    if (pkg.exports === undefined) {
      const main = relativize(typeof pkg.main === 'string' ? pkg.main : 'index.js');
      redirect.set(compartment.location, { from: moduleEntry, to: main });
      // Node decides a .js file's language by the nearest package.json (lib/umd/package.json may say commonjs).
      const language = languageOf(compartment.location, main, pkg);
      if (language) (compartment.types ??= {})[main] = language;
    }
  }
  for (const compartment of compartments) {
    if (compartment.patterns) compartment.patterns = compartment.patterns.filter(p => !(p.compartment === undefined && p.from.startsWith('./')));
    // A package named like a builtin stays reachable as `name/...` (its scope is
    // kept); `name` alone is made the builtin by archiveService (preferExitModules).
    const modules = compartment.modules;
    if (!modules) continue;
    for (const [specifier, descriptor] of Object.entries(modules)) {
      // import 'buffer' means the builtin, even where a package of that name is installed.
      if (isBuiltin(specifier) && !specifier.endsWith('/') && descriptor.compartment !== compartment.location) {
        delete modules[specifier];
        continue;
      }
      const target = descriptor.compartment === undefined ? undefined : redirect.get(descriptor.compartment);
      if (target && descriptor.module === target.from) descriptor.module = target.to;
    }
    const linked = linkRequireTargets(compartment, map.compartments, hasExports);
    if (linked.size > 0) requireLinks?.set(asDirectory(compartment.location), linked);
  }
};

/**
 * A module descriptor under which compartment-mapper links `name` to no
 * module: its link falls through to the exit-module hook, which does not
 * have it, so a CommonJS require of it fails when it runs ("Cannot find
 * external module", which cjs.ts turns into Node's error) and an ES import
 * fails the build (load.ts, explainLoadError). It must not reach the
 * archive: compartment-mapper 2.4 writes every descriptor marked
 * `retained`, and `parseArchive` then fails on an exit descriptor
 * ("missing parser"), so this one stays unretained (an exit module needs no
 * entry in the archive: it is offered again at load time; a failed require
 * is archived as the error it defers).
 */
export const exitDescriptor = (name: string): ModuleDescriptor =>
  Object.defineProperty({ exit: name }, 'retained', { get: () => false, set: () => {}, enumerable: true }) as ModuleDescriptor;

/**
 * Node's PATTERN_KEY_COMPARE order over the keys of an "exports" or
 * "imports" table that hold one `*`: the key whose pattern matches
 * `subpath` with the longest part before its `*` (then the longest key),
 * or undefined when none matches.
 */
const bestPatternKey = (keys: readonly string[], subpath: string): string | undefined => {
  let best: string | undefined;
  for (const key of keys) {
    const star = key.indexOf('*');
    if (star < 0 || key.indexOf('*', star + 1) >= 0) continue;
    const prefix = key.slice(0, star);
    const suffix = key.slice(star + 1);
    if (subpath === prefix || !subpath.startsWith(prefix) || !subpath.endsWith(suffix) || subpath.length < key.length) continue;
    const bestStar = best?.indexOf('*') ?? -1;
    if (best === undefined || star > bestStar || (star === bestStar && key.length > best.length)) best = key;
  }
  return best;
};

/**
 * Whether a package's "exports" (its package.json field, any shape) maps
 * `subpath` ('./internal/x') to null, as Node reads them: an exact key
 * first (`"./public/secret": null` beside `"./public/*": ...`), else the
 * best pattern (`"./internal/*": null`). Node refuses such a subpath
 * (ERR_PACKAGE_PATH_NOT_EXPORTED); compartment-mapper drops an exact null
 * and then links the pattern's target, and throws for a null pattern when it
 * links (a guarded require of it failed the whole build). A subpath the
 * exports do not name at all is not linked by the mapper either, so is not
 * counted here.
 */
export const exportsExclude = (exports: unknown, subpath: string): boolean => {
  if (typeof exports !== 'object' || exports === null || Array.isArray(exports)) return false;
  const table = exports as Record<string, unknown>;
  const keys = Object.keys(table);
  if (!keys.some(key => key.startsWith('.'))) return false;
  if (Object.hasOwn(table, subpath) && !subpath.includes('*')) return table[subpath] === null;
  const key = bestPatternKey(keys, subpath);
  return key !== undefined && table[key] === null;
};

/**
 * Node's rule for a target string of "exports" (resolvePackageTargetString,
 * lib/internal/modules/esm/resolve.js): it starts with './' and no segment
 * after that is '.', '..' or 'node_modules' (percent-encoded or not). Any
 * other is ERR_INVALID_PACKAGE_TARGET when a specifier reaches it. An empty
 * segment (`./lib//a.js`) is only deprecated there (DEP0166): Node still
 * resolves it, and so does a service.
 */
const invalidSegment = /(^|\\|\/)((\.|%2e)(\.|%2e)?|(n|%6e|%4e)(o|%6f|%4f)(d|%64|%44)(e|%65|%45)(_|%5f)(m|%6d|%4d)(o|%6f|%4f)(d|%64|%44)(u|%75|%55)(l|%6c|%4c)(e|%65|%45)(s|%73|%53))(\\|\/|$)/i;
const validExportTarget = (target: string): boolean => target.startsWith('./') && !invalidSegment.test(target.slice(2));

/**
 * "exports" with each target Node refuses as invalid made null (in an
 * array of fallbacks, left out, as Node passes over it): compartment-mapper
 * throws for some (`"../x.js"`: "must not traverse behind an empty path",
 * which failed the mapping of every package, used or not) and links others
 * Node refuses (`"lib/x.js"`, without './'). Null, the subpath is not
 * linked (exportsExclude), and a require of it throws Node's error
 * (cjs-archive.ts). Returns `exports` itself when nothing changes.
 */
export const withValidExportTargets = (exports: unknown): unknown => {
  if (typeof exports === 'string') return validExportTarget(exports) ? exports : null;
  if (Array.isArray(exports)) {
    const kept = exports.map(withValidExportTargets).filter(target => target !== null);
    return kept.length === exports.length && kept.every((target, i) => target === exports[i]) ? exports : kept.length === 0 ? null : kept;
  }
  if (typeof exports !== 'object' || exports === null) return exports;
  let changed = false;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(exports)) {
    out[key] = withValidExportTargets(value);
    if (out[key] !== value) changed = true;
  }
  return changed ? out : exports;
};

/**
 * Read powers for mapNodeModules under which each package.json's "exports"
 * hold only targets Node accepts (withValidExportTargets). Only the mapping
 * reads through them: a module that reads its package.json
 * (`require('./package.json')`) gets its bytes as they are.
 */
export const validExportTargetPowers = <P extends { maybeRead: (location: string) => Promise<Uint8Array | undefined> }>(powers: P): P => ({
  ...powers,
  maybeRead: async (location: string) => {
    const bytes = await powers.maybeRead(location);
    if (bytes === undefined || !location.endsWith('/package.json')) return bytes;
    let json: { exports?: unknown };
    try {
      json = JSON.parse(new TextDecoder().decode(bytes)) as { exports?: unknown };
    } catch {
      return bytes; // compartment-mapper reports an unreadable package.json itself
    }
    if (typeof json !== 'object' || json === null || json.exports === undefined) return bytes;
    const exports = withValidExportTargets(json.exports);
    return exports === json.exports ? bytes : new TextEncoder().encode(JSON.stringify({ ...json, exports }));
  },
});

/** The package name a bare specifier starts with (`@scope/name/sub` -> `@scope/name`, `name/sub` -> `name`). */
const packageNameOf = (specifier: string): string => {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
};

/**
 * The longest-prefix match of `specifier` among `patterns` (one `*` each), as
 * Node orders subpath patterns: its target (null where the pattern excludes
 * it) and compartment; undefined when none matches.
 */
const matchPatterns = (
  patterns: ReadonlyArray<{ from: string; to: string | null; compartment?: string }>,
  specifier: string,
): { to: string | null; compartment?: string } | undefined => {
  let best: { prefix: string; suffix: string; to: string | null; compartment?: string } | undefined;
  for (const { from, to, compartment } of patterns) {
    const star = from.indexOf('*');
    if (star < 0 || from.indexOf('*', star + 1) >= 0) continue;
    const prefix = from.slice(0, star);
    const suffix = from.slice(star + 1);
    if (!specifier.startsWith(prefix) || !specifier.endsWith(suffix) || specifier.length < prefix.length + suffix.length) continue;
    if (!best || prefix.length > best.prefix.length || (prefix.length === best.prefix.length && suffix.length > best.suffix.length)) best = { prefix, suffix, to, compartment };
  }
  if (!best) return undefined;
  const to = best.to === null ? null : best.to.replace('*', specifier.slice(best.prefix.length, specifier.length - best.suffix.length));
  return { to, compartment: best.compartment };
};

/**
 * Links, as each module's imports are parsed, what Node resolves where the
 * map cannot say it beforehand:
 *
 * - Undeclared ("phantom") dependencies. Node looks a bare specifier up in
 *   every `node_modules` folder from the importing package's directory to
 *   the file system's root
 *   (https://nodejs.org/api/modules.html#loading-from-node_modules-folders),
 *   so a package can load one it does not declare, installed (hoisted) there
 *   for another package that declares it; compartment-mapper links each
 *   package to what its package.json declares only, so such a module loaded
 *   in Node and failed in a service (`Cannot find module 'b'`). When a
 *   package does not link the specifier's package, and the folder Node
 *   would find it in holds a package of the map, the package gets that
 *   package's links, copied from one that has them (its exports, its subpath
 *   pattern's target for this specifier, or its whole directory where it has
 *   no exports). A package no other package declares stays unlinked (the map
 *   has no compartment for it), as does a specifier Node would resolve to a
 *   file (`node_modules/b.js`) or nothing.
 * - The `require` targets of exports patterns (`"./*": { "require":
 *   "./cjs/*.cjs", "import": "./esm/*.mjs" }`), which applyNodeResolution
 *   cannot list, and those of phantom dependencies: a CommonJS require whose
 *   target Node resolves otherwise than the import the package links gets
 *   the `require` link (`<specifier>` + REQUIRE_LINK, added to
 *   `requireLinks`), where it got the import target (the package's ES build).
 *
 * Returns `link(packageLocation, specifier, required, moduleLocation)`, to
 * call for each bare specifier a module imports (`required` for a CommonJS
 * require; `moduleLocation` the module's file URL) before
 * compartment-mapper resolves it and before the require links are read
 * (cjs-archive.ts). Mutates the map's descriptors, which compartment-mapper
 * reads as it links (their `modules` and `scopes` objects must exist before
 * it links: applyNodeResolution makes them).
 */
export const makeImportLinker = (
  map: { compartments: Record<string, CompartmentDescriptor> },
  requireLinks: Map<string, Set<string>>,
): ((packageLocation: string, specifier: string, required: boolean, moduleLocation?: string) => void) => {
  const compartments = map.compartments;
  const settled = new Set<string>();
  /** Whether `compartment` links anything of package `name` (declared: compartment-mapper's own links stand). */
  const links = (compartment: CompartmentDescriptor, name: string): boolean =>
    compartment.scopes?.[name] !== undefined ||
    Object.keys(compartment.modules ?? {}).some(key => key === name || key.startsWith(`${name}/`)) ||
    (compartment.patterns ?? []).some(p => p.compartment !== undefined && p.from.startsWith(`${name}/`));
  /** A file's stat, or undefined for any failure (ELOOP, EACCES, ENAMETOOLONG, a NUL): Node's own (internalModuleStat) takes each as "nothing there". */
  const statOf = (file: string): fs.Stats | undefined => {
    try {
      return fs.statSync(file, { throwIfNoEntry: false });
    } catch {
      return undefined;
    }
  };
  /** The package directory Node finds `name` in from the directory `from` (a path), or undefined. */
  const nodeFinds = (from: string, name: string): string | undefined => {
    let dir = from.replace(/\/+$/, '');
    for (;;) {
      if (path.basename(dir) !== 'node_modules') {
        const candidate = path.join(dir, 'node_modules', name);
        if (statOf(candidate)?.isDirectory()) return candidate;
        // LOAD_AS_FILE before LOAD_AS_DIRECTORY: a file of that name is what Node loads (not a package).
        if (['', '.js', '.json', '.node'].some(ext => statOf(`${candidate}${ext}`)?.isFile())) return undefined;
      }
      const parent = path.dirname(dir);
      if (parent === dir) return undefined;
      dir = parent;
    }
  };
  /** Per package directory: the node_modules folders inside it, but its own (not descending into any). */
  const nestedFolders = new Map<string, string[]>();
  /** Whether a node_modules folder inside package `location` (lib/node_modules) holds `name`, as a directory or a file. */
  const nestedHas = (location: string, name: string): boolean => {
    let folders = nestedFolders.get(location);
    if (folders === undefined) {
      folders = [];
      const root = fileURLToPath(location).replace(/\/+$/, '');
      const walk = (dir: string): void => {
        for (const entry of readDirEntries(dir)) {
          if (!entry.isDirectory()) continue;
          if (entry.name === 'node_modules') {
            if (dir !== root) folders?.push(path.join(dir, entry.name));
          } else if (!entry.name.startsWith('.')) walk(path.join(dir, entry.name));
        }
      };
      walk(root);
      nestedFolders.set(location, folders);
    }
    return folders.some(folder => ['', '.js', '.json', '.node'].some(ext => statOf(path.join(folder, `${name}${ext}`)) !== undefined));
  };
  /**
   * A require whose target Node resolves otherwise than the import the package links (a dual package's
   * exports), through an exact link (a phantom's, made here; a declared package's has one from
   * applyNodeResolution already) or an exports pattern (`"./*": { "require": ... }`, which
   * applyNodeResolution cannot list): the `require` link (`<specifier>` + REQUIRE_LINK) to Node's target.
   */
  const linkRequireTarget = (compartment: CompartmentDescriptor, location: string, specifier: string, name: string, moduleLocation: string | undefined): void => {
    const modules = compartment.modules as Record<string, ModuleDescriptor>;
    if (requireLinks.get(location)?.has(specifier)) return;
    const exact = modules[specifier];
    const phantom = settled.has(`${location}\u0000${name}`);
    let imported: { compartment?: string; to?: string | null } | undefined;
    if (exact !== undefined) imported = phantom ? { compartment: exact.compartment, to: exact.module } : undefined;
    else imported = matchPatterns((compartment.patterns ?? []).filter(p => p.compartment !== undefined && p.from.startsWith(`${name}/`)), specifier);
    if (imported?.compartment === undefined || typeof imported.to !== 'string') return;
    let resolved: string;
    try {
      // As the requiring module's require resolves it (from its own directory).
      resolved = createRequire(moduleLocation?.startsWith('file:') ? moduleLocation : new URL('package.json', location)).resolve(specifier);
    } catch {
      return;
    }
    const root = fileURLToPath(imported.compartment);
    const relative = path.relative(root, resolved);
    if (resolved === path.resolve(root, imported.to) || relative.startsWith('..') || path.isAbsolute(relative)) return;
    modules[`${specifier}${REQUIRE_LINK}`] = { compartment: imported.compartment, module: `./${relative.split(path.sep).join('/')}` };
    let linked = requireLinks.get(location);
    if (!linked) requireLinks.set(location, (linked = new Set()));
    linked.add(specifier);
  };
  /**
   * Whether Node refuses `specifier` for a null its package gives it where compartment-mapper would link it
   * (exportsExclude), or throw as it links it: a subpath of a dependency `compartment` links by name, whose
   * "exports" map it to null, or a `#name` whose pattern in the package's own "imports" is null.
   */
  const excluded = (compartment: CompartmentDescriptor, specifier: string, name: string): boolean => {
    if (compartment.modules?.[specifier] !== undefined) return false;
    if (specifier.startsWith('#')) return matchPatterns((compartment.patterns ?? []).filter(p => p.from.startsWith('#')), specifier)?.to === null;
    const target =
      compartment.modules?.[name]?.compartment ??
      compartment.scopes?.[name]?.compartment ??
      (compartment.patterns ?? []).find(p => p.compartment !== undefined && p.from.startsWith(`${name}/`))?.compartment;
    if (target === undefined) return false;
    const subpath = specifier === name ? '.' : `./${specifier.slice(name.length + 1)}`;
    return exportsExclude(readPackage(asDirectory(target))?.exports, subpath);
  };
  return (packageLocation, specifier, required, moduleLocation) => {
    if (specifier.startsWith('.') || specifier.startsWith('/') || /^[a-z][a-z0-9+.-]*:/i.test(specifier) || isBuiltin(specifier) || specifier.endsWith(REQUIRE_LINK)) return;
    const location = asDirectory(packageLocation);
    const compartment = compartments[location];
    if (!compartment?.modules || !compartment.scopes) return;
    const name = packageNameOf(specifier);
    // A package named like a builtin (`buffer/`, `events/`): its links would shadow the builtin the package's
    // other modules import by that name (applyNodeResolution keeps them apart for declared packages only).
    if (isBuiltin(name)) return;
    const key = `${location}\u0000${specifier}\u0000${required ? 'r' : 'i'}`;
    if (settled.has(key)) return;
    settled.add(key);
    if (excluded(compartment, specifier, name)) {
      compartment.modules[specifier] = exitDescriptor(specifier);
      return;
    }
    if (compartment.modules[specifier] === undefined && (settled.has(`${location}\u0000${name}`) || !links(compartment, name))) {
      settled.add(`${location}\u0000${name}`); // this package's links for `name` are ours from now on
      // Node walks up from the importing module's directory; one compartment links `name` to one package, so
      // where a node_modules folder inside the package (lib/node_modules/y) gives some of its modules another
      // one than its root gives, nothing is linked, for any of them: Cannot find module, not a different module.
      if (nestedHas(location, name)) return;
      const found = nodeFinds(fileURLToPath(location), name);
      if (found === undefined) return;
      let real: string;
      try {
        real = fs.realpathSync(found);
      } catch {
        return;
      }
      const target = asDirectory(pathToFileURL(real).href);
      if (target === location || compartments[target] === undefined) return;
      // A package that links `name` to that directory (one that declares it, or the package itself: its self-reference).
      const donor = Object.values(compartments).find(
        c => c.modules?.[name]?.compartment === target || c.scopes?.[name]?.compartment === target || (c.patterns ?? []).some(p => p.compartment === target && p.from.startsWith(`${name}/`)),
      );
      if (donor === undefined) return;
      for (const [k, descriptor] of Object.entries(donor.modules ?? {})) {
        if ((k === name || k.startsWith(`${name}/`)) && descriptor.compartment === target && descriptor.module !== undefined) compartment.modules[k] ??= { compartment: target, module: descriptor.module };
      }
      if (donor.scopes?.[name]?.compartment === target) compartment.scopes[name] ??= { compartment: target };
      if (compartment.modules[specifier] === undefined && compartment.scopes[name] === undefined) {
        const match = matchPatterns((donor.patterns ?? []).filter(p => p.compartment === target), specifier);
        if (typeof match?.to === 'string') compartment.modules[specifier] = { compartment: target, module: match.to };
      }
    }
    if (required) linkRequireTarget(compartment, location, specifier, name, moduleLocation);
  };
};
