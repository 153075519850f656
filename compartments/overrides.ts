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

/** Call between SES's repairIntrinsics() and hardenIntrinsics(). */
export const enableMoreOverrides = (): void => {
  const errors = new Set(errorPrototypes().map(([, proto]) => proto));
  for (const [path, proto] of [...prototypes(), ...errorPrototypes()]) {
    const descriptors = getOwnPropertyDescriptors(proto) as Record<PropertyKey, PropertyDescriptor>;
    for (const key of ownKeys(descriptors)) {
      const descriptor = descriptors[key as string];
      if ((key === 'constructor' && !errors.has(proto)) || !('value' in descriptor) || !descriptor.configurable) continue;
      if (typeof descriptor.value !== 'function' && !(errors.has(proto) && (key === 'name' || key === 'message'))) continue;
      const value = descriptor.value as unknown;
      const name = typeof key === 'symbol' ? `[${String(key.description)}]` : key;
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
      defineProperty(proto, key, { get, set, enumerable: descriptor.enumerable, configurable: true });
    }
  }
};
