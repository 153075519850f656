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

/** Call between SES's repairIntrinsics() and hardenIntrinsics(). */
export const enableMoreOverrides = (): void => {
  const errors = new Set(errorPrototypes().map(([, proto]) => proto));
  for (const [path, proto] of [...prototypes(), ...errorPrototypes()]) {
    const descriptors = getOwnPropertyDescriptors(proto) as Record<PropertyKey, PropertyDescriptor>;
    for (const key of ownKeys(descriptors)) {
      const descriptor = descriptors[key as string];
      if ((key === 'constructor' && !errors.has(proto)) || !('value' in descriptor) || !descriptor.configurable) continue;
      if (typeof descriptor.value !== 'function' && !(errors.has(proto) && (key === 'name' || key === 'message'))) continue;
      defineOverrideAccessor(proto, key, descriptor, path, typeof key === 'symbol' ? `[${String(key.description)}]` : key);
    }
  }
};

/**
 * Freeze Array.prototype and Object.prototype ahead of SES, without the
 * cost V8 attaches to `Object.freeze` on them. V8's freeze moves an
 * object's (here empty) elements to a dictionary, and doing that to either
 * of these invalidates the isolate's NoElementsProtector for good: every
 * store past the end of any array (`a[a.length] = x`, Node's async-context
 * stack on each `process.nextTick`) then walks the prototype chain (an
 * append and pop 5 -> 53 ns, a nextTick 95 -> 500 ns, measured on Node 20).
 * Making each property non-writable and non-configurable, then sealing,
 * gives the same frozen objects (`Object.isFrozen` is true, and SES's
 * harden freezes them again as a no-op) and leaves the elements alone.
 *
 * SES's 'severe' override taming would turn every configurable data
 * property of Object.prototype into an override accessor in
 * hardenIntrinsics() (its enablements.js: `'%ObjectPrototype%': '*'`), and
 * it skips a property that is no longer configurable: they are made here
 * first, in SES's shape and with SES's path in their message. Array.prototype's
 * entries in SES's plan are methods, which enableMoreOverrides has made
 * accessors already. Call after the other repairs, just before
 * hardenIntrinsics().
 */
export const freezeElementPrototypes = (): void => {
  const objectPath = 'root.%ObjectPrototype%';
  const objectDescriptors = getOwnPropertyDescriptors(Object.prototype) as Record<PropertyKey, PropertyDescriptor>;
  for (const key of ownKeys(objectDescriptors)) {
    const descriptor = objectDescriptors[key as string];
    if ('value' in descriptor && descriptor.configurable) defineOverrideAccessor(Object.prototype, key, descriptor, objectPath, String(key));
  }
  for (const proto of [Object.prototype, Array.prototype]) {
    const descriptors = getOwnPropertyDescriptors(proto) as Record<PropertyKey, PropertyDescriptor>;
    for (const key of ownKeys(descriptors)) {
      // `constructor` is left to the freeze: redefining Array.prototype.constructor invalidates V8's ArraySpeciesProtector.
      if (key === 'constructor') continue;
      const descriptor = descriptors[key as string];
      defineProperty(proto, key, 'value' in descriptor ? { writable: false, configurable: false } : { configurable: false });
    }
    Object.seal(proto);
  }
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
