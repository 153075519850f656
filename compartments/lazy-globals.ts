/**
 * Globals that cost something the first time they are read, defined as
 * Node defines its own (lib/internal/util.js `defineLazyProperties`, which
 * Node 20 uses for ReadableStream and the other web stream classes): an
 * accessor, not enumerable, configurable, that on its first read becomes a
 * writable data property holding the value, and that an assignment
 * replaces as it would replace a data property.
 *
 * Only where the host's own global is such an accessor: Node 22 and 24
 * define the web stream classes as data properties, and so is a service's
 * there (installLazyGlobals), its value read as the compartment is made.
 *
 * A service's endowments carry them as non-enumerable getters
 * (`defineLazyGlobal`), which compartment-mapper's copy of the globals
 * into each compartment skips (it copies enumerable properties, reading
 * them); every compartment of the service then gets its own lazy property
 * (`installLazyGlobals`), whose first read calls the endowment's getter.
 */

const { defineProperty, getOwnPropertyDescriptor } = Object;

/**
 * The host's globals that are accessors as this module loads: the globals
 * Node itself defines lazily on this line, those not read yet (a read leaves
 * one a data property; this library's modules read some of the web stream
 * classes as they load, and Node defines them all lazily or none).
 */
const hostLazy: ReadonlySet<string> = new Set(Object.getOwnPropertyNames(globalThis).filter(name => 'get' in (getOwnPropertyDescriptor(globalThis, name) ?? {})));

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
  const lazy = lazyOf.get(globals) ?? new Map<string, () => unknown>();
  // Node defines its lazy globals together (one defineLazyProperties call for the web streams): one still an
  // accessor tells the line.
  const hostIsLazy = [...lazy.keys()].some(name => hostLazy.has(name));
  for (const [name, read] of lazy) {
    // Where the host's global is a data property already (Node 22 and 24 define the web stream classes as
    // plain globals, lib/internal/bootstrap/web/exposed-window-or-worker.js; Node 20 lazily), the service's is
    // one too, holding the value from the start.
    if (!hostIsLazy) {
      defineProperty(target, name, { value: read(), writable: true, enumerable: false, configurable: true });
      continue;
    }
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
