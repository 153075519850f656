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
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
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

/** A directory URL with its final slash. */
const asDirectory = (location: string): string => (location.endsWith('/') ? location : `${location}/`);

/**
 * For each dependency `compartment` links by a bare specifier whose
 * `require` target is not its `import` target (a dual package's exports:
 * `{ import: './index.mjs', require: './index.cjs' }`), a second link,
 * `<specifier>` + REQUIRE_LINK, to the file Node's require loads (resolved
 * by Node itself, from the compartment's directory). Returns the specifiers
 * it linked so. Exports patterns (`./*`) are not expanded: their requires
 * keep the import target.
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
    walkPackage(compartment);
    const pkg = readPackage(compartment.location);
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
