/**
 * ECMAScript's own global bindings (`Object`, `Array`, `Math`, `Date`,
 * `JSON`, `Promise`, `globalThis`, ...) are fixed in a service's
 * compartments: non-writable and non-configurable, where Node has them
 * writable and configurable.
 *
 * Why: SES evaluates a module's code inside `with` scopes, so a free name
 * (`Math` in `Math.max(a, b)`) is looked up through four scope objects on
 * every read, about 0.4 µs in V8 (40 times a local read), in every loop of
 * every module, at build and again at restore. SES resolves a global that is
 * a non-writable, non-configurable data property once per module instead
 * (ses/src/scope-constants.js, the "optimizer" of ses/src/make-evaluate.js):
 * a read of `Date` then costs what a `const` costs. A replay of a million
 * `Date.now()` calls spends most of its time on that lookup otherwise.
 *
 * What a service sees differently from Node: assigning, redefining or
 * deleting one of these bindings throws TypeError (`globalThis.Promise =
 * Bluebird`, a fake clock that swaps `Date`), loudly, never silently (all
 * code in a service is strict); their descriptors say `writable: false,
 * configurable: false`. The objects themselves are what they were (the
 * intrinsics are frozen by lockdown anyway; the service's own `Reflect`
 * still takes new members). Node's and the web's globals (`process`,
 * `Buffer`, `console`, the timers, `fetch`, `crypto`, `URL`, ...) stay
 * writable: those are the ones polyfills and mocks replace. A package may
 * still add globals of its own. docs/environment.md lists this.
 */

const { defineProperty, getOwnPropertyDescriptor } = Object;
const { hasOwnProperty } = Object.prototype;

/**
 * The global object's properties ECMA-262 defines (§19, with Annex B's
 * `escape` and `unescape`) and ECMA-402's `Intl`, but `eval` (SES keeps it
 * a scope lookup, for direct eval) and `undefined`, `NaN`, `Infinity`
 * (already fixed, in Node too).
 * https://tc39.es/ecma262/#sec-global-object
 */
export const FIXED_GLOBALS: readonly string[] = Object.freeze([
  'globalThis',
  'isFinite', 'isNaN', 'parseFloat', 'parseInt', 'decodeURI', 'decodeURIComponent', 'encodeURI', 'encodeURIComponent', 'escape', 'unescape',
  'AggregateError', 'Array', 'ArrayBuffer', 'BigInt', 'BigInt64Array', 'BigUint64Array', 'Boolean', 'DataView', 'Date', 'Error', 'EvalError',
  'FinalizationRegistry', 'Float32Array', 'Float64Array', 'Function', 'Int8Array', 'Int16Array', 'Int32Array', 'Map', 'Number', 'Object',
  'Promise', 'Proxy', 'RangeError', 'ReferenceError', 'RegExp', 'Set', 'SharedArrayBuffer', 'String', 'Symbol', 'SyntaxError', 'TypeError',
  'Uint8Array', 'Uint8ClampedArray', 'Uint16Array', 'Uint32Array', 'URIError', 'WeakMap', 'WeakRef', 'WeakSet',
  'Atomics', 'JSON', 'Math', 'Reflect',
  'Intl',
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
 * compartment, and 0.1 ms on a dictionary. Reads of a dictionary's
 * properties are hash lookups, which the `with` scopes make anyway.
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
 * accessor (a lazy global), is left alone. Its enumerability is kept (none of them is enumerable, in
 * Node or here). Call before the compartment evaluates any code: SES reads
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
