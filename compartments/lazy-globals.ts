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

const { defineProperty } = Object;

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
 * lazy global of `globals` (defineLazyGlobal), in Node's shape: its
 * accessors are plain functions named `get <name>` and `set <name>`, as
 * Node's are, and as unfrozen: each compartment's own (what they reach,
 * the value, is the endowment's, hardened).
 */
export const installLazyGlobals = (target: object, globals: object): void => {
  for (const [name, read] of lazyOf.get(globals) ?? []) {
    // Node's set keeps the property's other attributes (not enumerable, configurable).
    const set = function set(value: unknown): void {
      defineProperty(target, name, { value, writable: true });
    };
    const get = function get(): unknown {
      const value = read();
      set(value);
      return value;
    };
    defineProperty(get, 'name', { value: `get ${name}` });
    defineProperty(set, 'name', { value: `set ${name}` });
    defineProperty(target, name, { get, set, enumerable: false, configurable: true });
  }
};
