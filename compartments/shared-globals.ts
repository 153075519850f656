/**
 * One global object per service, as a Node process has one: a global that a
 * package of the service adds by assignment is seen by every package of the
 * service.
 *
 * Each package runs in a compartment of its own (compartment-mapper), and
 * each compartment has its own `globalThis`. Packages share state through
 * the global object: arktype's `@ark/schema` keeps its registry in
 * `globalThis.$ark`, which the validators `@ark/util` compiles with
 * `new Function` read by name; OpenTelemetry's API and Sentry keep one
 * instance per process under `globalThis[Symbol.for(...)]` or
 * `globalThis.__SENTRY__`, whatever copy of the package asks. Each package
 * saw only what it wrote itself (found by the fidelity review: an arktype
 * validator threw a TypeError on invalid input instead of returning its
 * errors).
 *
 * The prototype of every compartment's global object is one object per
 * service (Node's global object also inherits from an object of its own,
 * whose prototype is Object.prototype), behind a Proxy whose `set` trap
 * sees an assignment of a name none of the globals has: `globalThis.x = v`,
 * `global.x = v`, `globalThis[Symbol.for('k')] ??= v`. The value is then
 * kept for the service, and every global object of the service, those of
 * compartments made later too, gets an accessor of that name that reads and
 * writes it: enumerable and configurable, as Node's assigned global is (a
 * data property there). A package of the service reads it by name, through
 * `globalThis`, with `in` and `hasOwnProperty`, and sees a later assignment
 * by any other.
 *
 * What stays each package's own (docs/environment.md): a global deleted
 * (`delete globalThis.x`) is gone from its package's global object only,
 * until a package assigns it again; a global given to every service
 * (`fetch`, `Promise`, `URL`...) that a package assigns over (each
 * compartment holds its own copy of the endowments); and a global defined
 * with `Object.defineProperty(globalThis, ...)` (core-js's polyfills),
 * which no trap sees.
 *
 * Per service: two services never share a global, nor the host.
 */

const { create, defineProperty, getPrototypeOf, hasOwn, isExtensible, setPrototypeOf } = Object;
const { has, set } = Reflect;

export interface SharedGlobals {
  /**
   * Make `global` (a compartment's globalThis, its endowments assigned)
   * one of the service's: its prototype the service's shared one, and an
   * accessor for each global assigned so far. `given` names the service's
   * endowments, which stay each compartment's own.
   */
  adopt(global: object): void;
}

/** The shared globals of one service. `given`: the names of its endowments (each compartment keeps its own copy). */
export const makeSharedGlobals = (given: ReadonlySet<PropertyKey>): SharedGlobals => {
  /** The values assigned, by name. */
  const values = new Map<PropertyKey, unknown>();
  /** The accessor pair of each name (one pair for every global object, as one property would be). */
  const accessors = new Map<PropertyKey, { get: () => unknown; set: (value: unknown) => void }>();
  /** The global objects of the service's compartments (they live as long as the service). */
  const globals = new Set<object>();

  const accessorOf = (key: PropertyKey) => {
    let pair = accessors.get(key);
    if (pair === undefined) {
      const name = typeof key === 'symbol' ? `[${key.description ?? ''}]` : key;
      pair = {
        get: { [`get ${name}`]: () => values.get(key) }[`get ${name}`],
        set: {
          [`set ${name}`]: (value: unknown) => {
            values.set(key, value);
          },
        }[`set ${name}`],
      };
      accessors.set(key, pair);
    }
    return pair;
  };

  /** Give `global` the property `key`, unless it has one of its own (defined by its package) or is frozen. */
  const install = (global: object, key: PropertyKey): void => {
    if (hasOwn(global, key) || !isExtensible(global)) return;
    const { get: getter, set: setter } = accessorOf(key);
    defineProperty(global, key, { get: getter, set: setter, enumerable: true, configurable: true });
  };

  const share = (key: PropertyKey, value: unknown): void => {
    values.set(key, value);
    for (const global of globals) install(global, key);
  };

  // Node's global object inherits from an object of its own, which inherits from Object.prototype.
  const base = create(Object.prototype) as object;
  const prototype = new Proxy(base, {
    set(target, key, value, receiver) {
      // An assignment to one of the service's global objects of a name it does not have (none has, or its
      // package deleted it): the service's.
      if (globals.has(receiver as object) && !given.has(key) && !has(target, key) && !hasOwn(receiver as object, key)) {
        share(key, value);
        return true;
      }
      return set(target, key, value, receiver);
    },
  });

  return {
    adopt(global) {
      if (globals.has(global)) return;
      if (getPrototypeOf(global) !== Object.prototype) return; // not a compartment's global object as SES makes it
      setPrototypeOf(global, prototype);
      globals.add(global);
      for (const key of values.keys()) install(global, key);
    },
  };
};
