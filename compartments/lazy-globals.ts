/**
 * Globals that cost something the first time they are read, defined as
 * Node defines its own (lib/internal/util.js `defineLazyProperties`, which
 * Node 20 uses for ReadableStream and the other web stream classes): an
 * accessor, not enumerable, configurable, that on its first read becomes a
 * writable data property holding the value, and that an assignment
 * replaces as it would replace a data property.
 *
 * A service's endowments carry them as non-enumerable getters
 * (`defineLazyGlobal`), which compartment-mapper's copy of the globals
 * into each compartment skips (it copies enumerable properties, reading
 * them); every compartment of the service then gets its own lazy property
 * (`installLazyGlobals`), whose first read calls the endowment's getter.
 */

const { defineProperty, freeze } = Object;

/** The lazy globals of each endowments object: name, and what gives the value. */
const lazyOf = new WeakMap<object, Map<string, () => unknown>>();

/** Define `name` on a service's endowments (`globals`) as a lazy global: `read` gives its value, on every compartment's first read. */
export const defineLazyGlobal = (globals: Record<string, unknown>, name: string, read: () => unknown): void => {
  defineProperty(globals, name, { get: read, enumerable: false, configurable: true });
  let lazy = lazyOf.get(globals);
  if (!lazy) lazyOf.set(globals, (lazy = new Map()));
  lazy.set(name, read);
};

/**
 * Give `target` (a compartment's globalThis) a lazy property for every
 * lazy global of `globals` (defineLazyGlobal), in Node's shape. Its
 * accessors are frozen arrow functions (no prototype object): nothing a
 * service could change for another compartment.
 */
export const installLazyGlobals = (target: object, globals: object): void => {
  for (const [name, read] of lazyOf.get(globals) ?? []) {
    // Named as Node names them (`get ReadableStream`); `set` keeps the property's other attributes, as Node's does.
    const { [`set ${name}`]: set } = {
      [`set ${name}`]: (value: unknown): void => {
        defineProperty(target, name, { value, writable: true });
      },
    };
    const { [`get ${name}`]: get } = {
      [`get ${name}`]: (): unknown => {
        const value = read();
        set(value);
        return value;
      },
    };
    defineProperty(target, name, { get: freeze(get), set: freeze(set), enumerable: false, configurable: true });
  }
};
