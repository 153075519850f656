/**
 * The core of ECMAScript's global bindings (`Object`, `Array`, `Math`,
 * `Date`, `JSON`, `String`, `Number`, the typed arrays, ...) are fixed in a
 * service's compartments: non-writable and non-configurable, where Node
 * has them writable and configurable.
 *
 * Why: SES evaluates a module's code inside `with` scopes, so a free name
 * (`Math` in `Math.max(a, b)`) is looked up through four scope objects on
 * every read, about 0.4 µs in V8 (30 times a local read), in every loop of
 * every module, at build and again at restore. SES resolves a global that is
 * a non-writable, non-configurable data property once per module instead
 * (ses/src/scope-constants.js, the "optimizer" of ses/src/make-evaluate.js):
 * a read of `Date` then costs what a `const` costs. A replay of a million
 * `Date.now()` calls spent most of its time on that lookup otherwise.
 *
 * Which: the bindings ECMAScript had by ES5 and the binary data classes
 * (FIXED_GLOBALS), which no polyfill for Node replaces. Those that
 * polyfills write, even when they write back the value already there
 * (native-promise-only's `root.Promise = root.Promise || impl`, which
 * @vimeo/player bundles; `global.Reflect = global.Reflect || {}`), stay
 * writable: `Promise`, `Symbol`, `Map`, `Set`, the weak collections,
 * `Reflect`, `Proxy`, `Intl`, `globalThis`, `BigInt`, ... (found by the
 * adversarial review of the first version, which fixed every ECMAScript
 * global). So do Node's and the web's globals (`process`, `Buffer`,
 * `console`, the timers, `fetch`, `crypto`, `URL`, ...).
 *
 * What a service sees differently from Node: assigning, redefining or
 * deleting a fixed binding throws TypeError (all code in a service is
 * strict), including an assignment of the value it holds (`global.Math =
 * Math`, which test setups write); `Reflect.set` and `Reflect.defineProperty`
 * on one return false; their descriptors say `writable: false,
 * configurable: false`; a Proxy of `globalThis` answering another `Date`
 * breaks the Proxy invariants. A hand-made clock swapped in for `Date`
 * (`globalThis.Date = class extends Date {}`) throws where it worked; the
 * fake-clock packages (mockdate, timekeeper, @sinonjs/fake-timers) failed
 * in a service before (lockdown freezes `Date.prototype`). `Date` is fixed
 * all the same: it is the clock, the hottest read of a replay. What they
 * hold is unchanged, and a package may add globals of its own.
 * docs/environment.md lists this.
 */

const { defineProperty, getOwnPropertyDescriptor } = Object;
const { hasOwnProperty } = Object.prototype;

/**
 * The fixed bindings: the global object's properties ECMA-262 had by ES5
 * (§19, with Annex B's `escape` and `unescape`; but `eval`, which SES keeps
 * a scope lookup for direct eval, and `undefined`, `NaN`, `Infinity`,
 * fixed in Node too), and the binary data classes `ArrayBuffer`,
 * `DataView` and the typed arrays (not the BigInt ones). Not the later
 * classes that polyfills install (see above).
 * https://tc39.es/ecma262/#sec-global-object
 */
export const FIXED_GLOBALS: readonly string[] = Object.freeze([
  'isFinite', 'isNaN', 'parseFloat', 'parseInt', 'decodeURI', 'decodeURIComponent', 'encodeURI', 'encodeURIComponent', 'escape', 'unescape',
  'Object', 'Function', 'Array', 'String', 'Boolean', 'Number', 'Math', 'Date', 'RegExp', 'JSON',
  'Error', 'EvalError', 'RangeError', 'ReferenceError', 'SyntaxError', 'TypeError', 'URIError',
  'ArrayBuffer', 'DataView', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array',
  'Float32Array', 'Float64Array',
]);

const FIXED: ReadonlySet<string> = new Set(FIXED_GLOBALS);

/** `globals` without the FIXED_GLOBALS (what compartment-mapper assigns to each compartment, after fixGlobals defined those). */
export const withoutFixedGlobals = (globals: Record<string, unknown>): Record<string, unknown> => {
  const rest: Record<string, unknown> = {};
  for (const key of Object.keys(globals)) if (!FIXED.has(key)) rest[key] = globals[key];
  return rest;
};

/**
 * Turn `object` into what V8 calls a dictionary-mode object, by deleting a
 * property that is not its last: changing the attributes of a property of
 * a fast-mode object copies its map's descriptors, so fixing 55 globals of
 * a compartment's globalThis (150 to 250 properties) cost 3.5 to 8 ms a
 * compartment (measured on the first version's list), and 0.1 ms on a
 * dictionary. Reads of a dictionary's properties are hash lookups, which
 * the `with` scopes make anyway.
 */
const asDictionary = (object: object): void => {
  const first = Symbol('first');
  const second = Symbol('second');
  defineProperty(object, first, { value: undefined, configurable: true });
  defineProperty(object, second, { value: undefined, configurable: true });
  Reflect.deleteProperty(object, first);
  Reflect.deleteProperty(object, second);
};

/**
 * Fix each of FIXED_GLOBALS on `global` (a compartment's globalThis) to the
 * service's value for it: `given[name]` when `given` (the service's
 * globals) has it as an own property, else the property `global` already
 * has (SES's intrinsic). A name that is neither, or whose property is an
 * accessor (a lazy global), is left alone. Its enumerability is kept (none
 * of them is enumerable, in Node or here). Call before the compartment evaluates any code: SES reads
 * which names are fixed when it first evaluates in a compartment (for each
 * module, when it is instantiated). Leaves `global` a dictionary-mode
 * object (asDictionary), which makes the properties defined on it after
 * cheap too.
 */
export const fixGlobals = (global: object, given?: Readonly<Record<string, unknown>>): void => {
  asDictionary(global);
  for (const name of FIXED_GLOBALS) {
    const own = given !== undefined && hasOwnProperty.call(given, name) ? getOwnPropertyDescriptor(given, name) : undefined;
    const had = getOwnPropertyDescriptor(global, name);
    const source = own ?? had; // a lazy global (an accessor) of the service's is left to installLazyGlobals
    if (source === undefined || !('value' in source) || (had !== undefined && !had.configurable)) continue;
    defineProperty(global, name, { value: source.value as unknown, writable: false, enumerable: had?.enumerable ?? false, configurable: false });
  }
};
