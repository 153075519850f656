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

const { apply } = Reflect;
const { freeze, keys, create, defineProperty, prototype: objectPrototype } = Object;
const { hasOwnProperty } = objectPrototype;

const has = (object: object, key: PropertyKey): boolean => apply(hasOwnProperty, object, [key]) as boolean;

type ModuleEnvironmentRecord = Record<string, unknown>;

interface ParsedPreCjs {
  source: string;
  imports: string[];
  exports: string[];
  reexports: string[];
}

interface CompartmentLike {
  evaluate(source: string): unknown;
  importNow(specifier: string): Record<string, unknown>;
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
 * Parse an archived CommonJS module (`pre-cjs-json`): the same inputs and
 * record shape as compartment-mapper's parser. Signature per
 * compartment-mapper's `ParseFn`: (bytes, specifier, location,
 * packageLocation) => { parser, bytes, record }.
 */
export const parsePreCjs = (bytes: Uint8Array, specifier: string, location: string) => {
  const { source, imports, exports, reexports } = JSON.parse(decoder.decode(bytes)) as ParsedPreCjs;
  const referrer = specifier.startsWith('./') ? specifier : `./${specifier}`;

  const execute = (moduleEnvironmentRecord: ModuleEnvironmentRecord, compartment: CompartmentLike, resolvedImports: Record<string, string>) => {
    const functor = compartment.evaluate(`${source}//# sourceURL=${location}\n`) as (...args: unknown[]) => void;

    // The initial exports object: ordinary, with the compartment's Object.prototype.
    moduleEnvironmentRecord.default = create(compartment.globalThis.Object.prototype);
    const promote = (prop: PropertyKey, value: unknown) => {
      if (prop !== 'default') moduleEnvironmentRecord[prop as string] = value;
    };
    const redefined = new Set<PropertyKey>();
    const originalExports = new Proxy(moduleEnvironmentRecord.default as object, {
      set(_target, prop, value) {
        promote(prop, value);
        (moduleEnvironmentRecord.default as Record<PropertyKey, unknown>)[prop] = value;
        return true;
      },
      defineProperty(target, prop, descriptor) {
        if (has(descriptor, 'value')) promote(prop, descriptor.value);
        defineProperty(target, prop, descriptor);
        redefined.add(prop);
        return true;
      },
    });

    // module.exports: reassigning it publishes the new value at once (Node's require cycles see it).
    let currentExports: unknown = originalExports;
    const module = {} as { exports: unknown };
    defineProperty(module, 'exports', {
      get: () => currentExports,
      set: value => {
        currentExports = value;
        moduleEnvironmentRecord.default = value;
      },
      enumerable: true,
      configurable: true,
    });

    const require = (importSpecifier: unknown) => {
      const spec = `${String(importSpecifier)}`;
      let namespace: Record<string, unknown>;
      if (has(resolvedImports, spec)) {
        namespace = compartment.importNow(resolvedImports[spec]);
      } else {
        // Only modules found when the archive was made exist: a computed require reaches one of those or fails.
        const candidate = spec.startsWith('./') || spec.startsWith('../') ? resolveRelative(spec, referrer) : spec;
        namespace = compartment.importNow(candidate);
      }
      return has(namespace, 'default') ? namespace.default : namespace;
    };
    defineProperty(require, 'resolve', {
      value: freeze((spec: string) => {
        const error = new Error(`Cannot find module '${spec}': require.resolve is not available inside a service`);
        defineProperty(error, 'code', { value: 'MODULE_NOT_FOUND' });
        throw error;
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
    defineProperty(require, 'extensions', { value: requireExtensions });
    defineProperty(require, 'cache', { value: freeze(create(null)) });
    freeze(require);

    // In CommonJS, the top-level `this` is the original `module.exports`.
    apply(functor, originalExports, [require, originalExports, module, null, null]);

    const finalExports = currentExports;
    if (finalExports !== originalExports) {
      moduleEnvironmentRecord.default = finalExports;
      for (const prop of keys((finalExports ?? {}) as object)) {
        if (prop !== 'default') moduleEnvironmentRecord[prop] = (finalExports as Record<string, unknown>)[prop];
      }
    } else {
      for (const prop of redefined) {
        if (prop !== 'default') moduleEnvironmentRecord[prop as string] = (moduleEnvironmentRecord.default as Record<PropertyKey, unknown>)[prop];
      }
    }
  };

  return {
    parser: 'pre-cjs-json',
    bytes,
    record: { imports, reexports, exports, execute },
  };
};

/** The parser entry, as compartment-mapper's `parserForLanguage` takes it. */
export const preCjsParser = freeze({ parse: parsePreCjs, heuristicImports: true, synchronous: true });
