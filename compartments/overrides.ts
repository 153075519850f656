/**
 * The override mistake, beyond what SES's `overrideTaming: 'severe'` covers.
 *
 * Lockdown freezes the shared intrinsics. Assigning a property that an
 * object inherits as a frozen data property then throws in strict mode
 * (and every service runs in strict mode), where Node simply creates an own
 * property: ES5-style code such as
 * `S.prototype = Object.create(String.prototype); S.prototype.valueOf = f`
 * fails to load. SES turns some inherited methods into accessors whose
 * setter creates the own property (https://github.com/endojs/endo/blob/master/packages/ses/docs/lockdown.md#overridetaming-options);
 * this does the same, before hardening, for every method of the other
 * intrinsic prototypes, with the same accessor shape as SES's (the getter
 * carries `originalValue`).
 *
 * `constructor` is left as it is: Node's util.inspect only recognises a
 * data `constructor` property.
 */
const { defineProperty, getOwnPropertyDescriptor, getOwnPropertyDescriptors, getPrototypeOf } = Object;
const { ownKeys } = Reflect;

const prototypes = (): Array<[string, object]> => [
  ['String.prototype', String.prototype],
  ['Number.prototype', Number.prototype],
  ['Boolean.prototype', Boolean.prototype],
  ['Symbol.prototype', Symbol.prototype],
  ['BigInt.prototype', BigInt.prototype],
  ['Date.prototype', Date.prototype],
  ['RegExp.prototype', RegExp.prototype],
  ['Promise.prototype', Promise.prototype],
  ['Array.prototype', Array.prototype],
  ['Map.prototype', Map.prototype],
  ['Set.prototype', Set.prototype],
  ['WeakMap.prototype', WeakMap.prototype],
  ['WeakSet.prototype', WeakSet.prototype],
  ['ArrayBuffer.prototype', ArrayBuffer.prototype],
  ['DataView.prototype', DataView.prototype],
  ['TypedArray.prototype', getPrototypeOf(Uint8Array.prototype) as object],
  ['Function.prototype', Function.prototype],
];

/**
 * The Error prototypes, `constructor` included: ES5 error classes assign it
 * (`DimensionError.prototype = new RangeError(); ...prototype.constructor =
 * DimensionError`, mathjs; TypeScript's __extends). SES already turns some
 * of these into accessors; Node's inspect cannot read them either way.
 */
const errorPrototypes = (): Array<[string, object]> =>
  ['Error', 'EvalError', 'RangeError', 'ReferenceError', 'SyntaxError', 'TypeError', 'URIError', 'AggregateError']
    .filter(name => typeof (globalThis as Record<string, unknown>)[name] === 'function')
    .map(name => [`${name}.prototype`, ((globalThis as Record<string, unknown>)[name] as { prototype: object }).prototype]);

/**
 * Give `proto` fast (not dictionary) properties again, as far as V8 lets
 * JavaScript ask for it.
 *
 * V8 turns an object into a dictionary when one of its data properties that
 * is not the last one added becomes an accessor, which is what the override
 * accessors below do to every prototype. It makes a prototype fast again
 * only when a property load through an object inheriting from it misses an
 * inline cache (JSObject::MakePrototypesFast, v8/src/objects/js-objects.cc);
 * loads on primitives never take that path, so String.prototype and
 * Number.prototype stayed dictionaries for the life of the process: every
 * `s.charCodeAt(i)`, in services and in the host, was a dictionary lookup
 * (recording 100,000 `process.env` reads took 130 ms instead of 105).
 * A few missed loads through a plain object inheriting from the prototype,
 * in a function run often enough to have inline caches, let V8 migrate it
 * back. Only speed depends on this: the properties are the same either way.
 */
const refasten = (proto: object): void => {
  const heir = Object.create(proto) as Record<string, unknown>;
  const load = (o: Record<string, unknown>): unknown => o.__membraneSnapshotNoSuchProperty__;
  for (let i = 0; i < 64; i += 1) load(heir);
};

/**
 * Turn data property `key` of `proto` into an override accessor, in the
 * shape of SES's (enable-property-overrides.js): reading gives the value
 * (the getter also carries it as `originalValue`, which harden walks);
 * assigning on `proto` itself throws "Cannot assign to read only property
 * '<name>' of '<path>'"; assigning on an object that inherits it defines
 * the object's own property, as it would without lockdown.
 */
const defineOverrideAccessor = (proto: object, key: PropertyKey, descriptor: PropertyDescriptor, path: string, name: string): void => {
  const value = descriptor.value as unknown;
  const { get, set } = getOwnPropertyDescriptor(
    {
      get [key]() {
        return value;
      },
      set [key](newValue: unknown) {
        if (this === proto) throw new TypeError(`Cannot assign to read only property '${name}' of '${path}'`);
        if (Object.prototype.hasOwnProperty.call(this, key)) (this as Record<PropertyKey, unknown>)[key] = newValue;
        else defineProperty(this, key, { value: newValue, writable: true, enumerable: true, configurable: true });
      },
    },
    key,
  ) as PropertyDescriptor;
  defineProperty(get, 'originalValue', { value, writable: false, enumerable: false, configurable: false });
  defineProperty(proto, key, { get, set, enumerable: descriptor.enumerable, configurable: descriptor.configurable });
};

/**
 * Methods left as V8 made them (SES's final freeze makes them read-only
 * data properties): V8 guards each with a protector, an isolate-wide flag
 * its fast paths test, which an accessor in its place invalidates for good.
 * String.prototype[Symbol.iterator] (StringIteratorProtector): `[...str]`
 * and `Array.from(str)` took 3.3 us for 66 characters instead of 0.7 (Node
 * 20.20). An ES5-style String subclass assigning its own
 * `Symbol.iterator` would meet the override mistake; no package we know of
 * does. Array.prototype[Symbol.iterator] and %IteratorPrototype%'s guard
 * the same kind of fast paths (array, Map and Set spreads), but SES makes
 * them accessors on purpose: regenerator-runtime, which Babel-compiled
 * packages carry, assigns `Gp[Symbol.iterator]` on an heir of
 * %IteratorPrototype% as it loads.
 */
const keptForV8 = (proto: object, key: PropertyKey): boolean => proto === String.prototype && key === Symbol.iterator;

/** Call between SES's repairIntrinsics() and hardenIntrinsics(). */
export const enableMoreOverrides = (): void => {
  const errors = new Set(errorPrototypes().map(([, proto]) => proto));
  for (const [path, proto] of [...prototypes(), ...errorPrototypes()]) {
    const descriptors = getOwnPropertyDescriptors(proto) as Record<PropertyKey, PropertyDescriptor>;
    for (const key of ownKeys(descriptors)) {
      const descriptor = descriptors[key as string];
      if ((key === 'constructor' && !errors.has(proto)) || !('value' in descriptor) || !descriptor.configurable || keptForV8(proto, key)) continue;
      if (typeof descriptor.value !== 'function' && !(errors.has(proto) && (key === 'name' || key === 'message'))) continue;
      defineOverrideAccessor(proto, key, descriptor, path, typeof key === 'symbol' ? `[${String(key.description)}]` : key);
    }
  }
};

/**
 * Make every property of `proto` non-writable and non-configurable, then
 * make it non-extensible: frozen by the spec's definition, so that a later
 * `Object.freeze` (SES's harden) finds nothing to change and returns at once
 * (V8: JSReceiver::SetIntegrityLevel tests the level first).
 *
 * Why not `Object.freeze` itself: V8's freeze gives the object a frozen
 * elements kind (its elements here are empty), and V8 then treats every
 * object inheriting from it as possibly holding read-only elements. On
 * Array.prototype and Object.prototype that invalidated the isolate's
 * NoElementsProtector for good (every store past the end of any array,
 * `a[a.length] = x`: 5 -> 53 ns); on the typed array prototypes, every
 * store into every typed array and Buffer took V8's slow path (256 byte
 * stores 100 ns -> 9.9 us, and Node's async-context fields on each
 * `process.nextTick` 270 -> 660 ns). Measured on Node 20 (bench (i)).
 *
 * `keep` names properties left to the final freeze, because redefining
 * them invalidates a V8 protector that freezing leaves alone
 * (Array.prototype.constructor: ArraySpeciesProtector, which every
 * `map`/`filter`/`slice` of an array checks).
 */
const freezeInPlace = (proto: object, keep: ReadonlySet<PropertyKey> = new Set()): void => {
  const descriptors = getOwnPropertyDescriptors(proto) as Record<PropertyKey, PropertyDescriptor>;
  for (const key of ownKeys(descriptors)) {
    if (keep.has(key)) continue;
    const descriptor = descriptors[key as string];
    defineProperty(proto, key, 'value' in descriptor ? { writable: false, configurable: false } : { configurable: false });
  }
  Object.preventExtensions(proto);
};

/**
 * SES's 'severe' override taming turns every configurable data property of
 * Object.prototype and of %TypedArray%.prototype into an override accessor
 * in hardenIntrinsics() (its enablements.js: `'%ObjectPrototype%': '*'`,
 * `'%TypedArrayPrototype%': '*'`), and skips a property that is no longer
 * configurable: freezeElementPrototypes makes here first, in SES's shape
 * and with SES's path in their message, those enableMoreOverrides left
 * (%TypedArray%.prototype's methods are enableMoreOverrides', and their
 * messages name 'TypedArray.prototype', as before this freeze).
 */
const sesSevereAccessors = (proto: object, path: string): void => {
  const descriptors = getOwnPropertyDescriptors(proto) as Record<PropertyKey, PropertyDescriptor>;
  for (const key of ownKeys(descriptors)) {
    const descriptor = descriptors[key as string];
    if ('value' in descriptor && descriptor.configurable) defineOverrideAccessor(proto, key, descriptor, path, String(key));
  }
};

/** The prototypes of the typed array classes: %TypedArray%.prototype and one per element type. */
const typedArrayPrototypes = (): object[] => {
  const classes = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array];
  return [getPrototypeOf(Uint8Array.prototype) as object, ...classes.map(c => c.prototype)];
};

/**
 * Freeze the prototypes that arrays, typed arrays (Buffers too) and plain
 * objects inherit from ahead of SES, in place (`freezeInPlace`: the same frozen
 * objects, without V8's slow element stores). Their override accessors are
 * the ones SES would give them (`sesSevereAccessors`; Array.prototype's
 * entries in SES's plan are methods, which enableMoreOverrides has made
 * accessors already). Redefining a concrete typed array prototype's
 * `constructor` invalidates V8's TypedArraySpeciesProtector (`subarray`,
 * `slice` of a typed array: about 25 ns more each), far less than what a
 * freeze costs every store. Call after the other repairs, just before
 * hardenIntrinsics().
 */
export const freezeElementPrototypes = (): void => {
  const [typedArrayPrototype] = typedArrayPrototypes();
  sesSevereAccessors(Object.prototype, 'root.%ObjectPrototype%');
  sesSevereAccessors(typedArrayPrototype, 'root.%TypedArrayPrototype%');
  freezeInPlace(Object.prototype);
  freezeInPlace(Array.prototype, new Set(['constructor']));
  for (const proto of typedArrayPrototypes()) freezeInPlace(proto);
  // Node's Buffer.prototype (a Uint8Array subclass's): SES's hardenIntrinsics reaches and freezes it too.
  if (typeof Buffer === 'function' && !Object.isFrozen(Buffer.prototype)) freezeInPlace(Buffer.prototype);
};


/**
 * Call last before hardenIntrinsics(), after every repair that reshapes an
 * intrinsic prototype (these overrides, inspection.ts): see `refasten`.
 */
export const refastenPrototypes = (): void => {
  for (const [, proto] of [...prototypes(), ...errorPrototypes()]) refasten(proto);
  refasten(getPrototypeOf(function* () {}) as object);
  refasten(Object.prototype);
};
