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
 *
 * Report upstream (compartment-mapper): "treat `module` as a hint only
 * under a bundler condition; a package with a `module` field but no
 * `type: module` has CommonJS `.js` files in Node"; "packages named like
 * Node builtins shadow the builtin exit modules".
 */
import fs from 'node:fs';
import { isBuiltin } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Conditions for `mapNodeModules`: the mapper adds import, default and endo. */
export const nodeConditions = (): Set<string> => new Set(['node']);

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
}

interface PackageJson {
  type?: string;
  main?: string;
  module?: string;
  exports?: unknown;
}

const relativize = (path: string): string => (path.startsWith('./') || path.startsWith('../') ? path : `./${path}`);

const readPackage = (location: string): PackageJson | undefined => {
  try {
    return JSON.parse(fs.readFileSync(fileURLToPath(new URL('package.json', location)), 'utf8')) as PackageJson;
  } catch {
    return undefined;
  }
};

/**
 * Correct `map` (as returned by `mapNodeModules`) in place to Node's
 * resolution rules, for the differences listed above.
 */
export const applyNodeResolution = (map: { compartments: Record<string, CompartmentDescriptor> }): void => {
  const compartments = Object.values(map.compartments);
  // Entries the mapper took from a `module` field, per package location: what Node would load instead.
  const redirect = new Map<string, { from: string; to: string }>();
  for (const compartment of compartments) {
    const pkg = readPackage(compartment.location);
    if (!pkg || typeof pkg.module !== 'string') continue;
    const moduleEntry = relativize(pkg.module);
    if (pkg.type !== 'module') {
      if (compartment.parsers?.js === 'mjs') compartment.parsers.js = 'cjs';
      if (compartment.types?.[moduleEntry] === 'mjs') delete compartment.types[moduleEntry];
    }
    if (pkg.exports === undefined) {
      redirect.set(compartment.location, { from: moduleEntry, to: relativize(typeof pkg.main === 'string' ? pkg.main : 'index.js') });
    }
  }
  for (const compartment of compartments) {
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
  }
};
