/**
 * Printing as Node prints, under lockdown.
 *
 * Node's `util.inspect` names an object after the first `constructor` *data*
 * property on its prototype chain (lib/internal/util/inspect.js,
 * `getConstructorName`). SES's override taming (and overrides.ts) turns the
 * `constructor` of the shared Error prototypes, `Map.prototype` and
 * `Set.prototype` into accessors, so that ES5-style subclasses can assign
 * their own (`Sub.prototype.constructor = Sub`, TypeScript's `__extends`,
 * immer before 9.0.16). Node then found no name: a Map printed as
 * `Object(1) [Map] {...}` and an error inside another value as `{}`, in
 * services and on the host alike.
 *
 * Two repairs, made between SES's `repairIntrinsics()` and
 * `hardenIntrinsics()`:
 *
 * - `Promise.prototype.constructor`, and those of `Map.prototype`,
 *   `Set.prototype` and `%Generator%` (the prototype of generator
 *   functions), stay data properties (SES enables the first for core-js,
 *   which on Node finds the native Promise good and leaves it; no code
 *   subclasses a Map or a Set the ES5 way, whose constructors need `new`).
 *   Node's inspect then reads a Promise's state itself (`Promise { 3 }`)
 *   and names Maps, Sets and generator functions as it does. (Maps and
 *   Sets had a hook like errors' before: object-inspect, which qs and
 *   side-channel use, hands any object with such a hook to util.inspect,
 *   and printed them Node's way, not its own, found by the fidelity
 *   review.)
 * - `Error.prototype` gets a `[Symbol.for('nodejs.util.inspect.custom')]`
 *   hook (as an override accessor, so a subclass may still assign its
 *   own): ES5 error subclasses assign `constructor`, which must stay an
 *   accessor. When Node would find no data constructor, the hook hands
 *   inspect a stand-in: a native error with the same own properties, whose
 *   prototype sits on the original's and carries the data `constructor`
 *   Node looks for, named after the intrinsic. Node
 *   formats the stand-in in the same pass (same depth, indentation and
 *   circular references: a value's stand-in is reused while it still
 *   matches). Otherwise the hook returns its receiver and Node prints as
 *   usual.
 *
 * What still differs from Node: the hook is visible
 * (`Reflect.ownKeys(Error.prototype)` lists it, and object-inspect prints
 * errors with util.inspect for it); with `showHidden`, an ES5
 * error subclass without its own `constructor` does not list its
 * prototype's properties; `customInspect: false` prints the old way; an
 * error whose `cause` shares its stack frames lists them all (a service's
 * stacks hold only its own frames, too few for Node's `... N lines matching
 * cause stack trace ...`).
 */
import { types } from 'node:util';
import { isV8StackAccessor } from './guest-errors.js';

const { create, defineProperty, freeze, getOwnPropertyDescriptor, getPrototypeOf, setPrototypeOf } = Object;
const { apply, construct, ownKeys } = Reflect;
const custom = Symbol.for('nodejs.util.inspect.custom');

/** Node's `isInstanceof`: a throwing `Symbol.hasInstance` answers false. */
const isInstance = (value: object, ctor: Function): boolean => {
  try {
    return value instanceof ctor;
  } catch {
    return false;
  }
};

/**
 * The name Node's inspect would give `value` were the intrinsics' constructors
 * data, when it finds none itself (the intrinsic's accessor is first on the
 * chain); undefined when Node names it on its own.
 */
const hiddenConstructorName = (value: object): string | undefined => {
  let object: object | null = value;
  while (object !== null) {
    const descriptor = getOwnPropertyDescriptor(object, 'constructor');
    if (descriptor !== undefined) {
      if ('value' in descriptor) {
        const ctor = descriptor.value as unknown;
        if (typeof ctor === 'function' && ctor.name !== '' && isInstance(value, ctor)) return undefined;
      } else {
        const original = (descriptor.get as { originalValue?: unknown } | undefined)?.originalValue;
        if (typeof original === 'function' && original.name !== '' && isInstance(value, original)) return original.name;
      }
    }
    object = getPrototypeOf(object);
  }
  return undefined;
};

/** Per original prototype and name: the stand-in prototype with a data `constructor`. */
const standInPrototypes = new WeakMap<object, Map<string, object>>();
const standInPrototype = (proto: object, name: string): object => {
  let byName = standInPrototypes.get(proto);
  if (!byName) standInPrototypes.set(proto, (byName = new Map()));
  let standIn = byName.get(name);
  if (!standIn) {
    const ctor = { [name]: function () {} }[name] as () => void;
    standIn = create(proto, {
      constructor: { value: ctor, writable: false, enumerable: false, configurable: false },
      [custom]: { value: undefined, writable: false, enumerable: false, configurable: false },
    }) as object;
    defineProperty(ctor, 'prototype', { value: standIn, writable: false, enumerable: false, configurable: false });
    freeze(ctor);
    freeze(standIn);
    byName.set(name, standIn);
  }
  return standIn;
};

const sameAs = (value: object, standIn: object): boolean => {
  if (getPrototypeOf(getPrototypeOf(standIn)) !== getPrototypeOf(value)) return false;
  const keys = ownKeys(value);
  if (keys.length !== ownKeys(standIn).length) return false;
  for (const key of keys) {
    const a = getOwnPropertyDescriptor(value, key);
    const b = getOwnPropertyDescriptor(standIn, key);
    if (!a || !b || a.enumerable !== b.enumerable) return false;
    // V8's stack accessor was copied as its text (makeStandIn): the same while the text is.
    if (isV8StackAccessor(key, a)) {
      if (!('value' in b) || apply(a.get, value, []) !== b.value) return false;
    } else if (a.value !== b.value || a.get !== b.get || a.set !== b.set) return false;
  }
  return true;
};

const makeStandIn = (value: object, name: string): object => {
  // An error that is not a native one (an ES5 subclass that never called Error) stays an ordinary object.
  const standIn: object = types.isNativeError(value) ? construct(Error, []) : {};
  if (types.isNativeError(standIn)) delete (standIn as { stack?: unknown }).stack;
  for (const key of ownKeys(value)) {
    const descriptor = getOwnPropertyDescriptor(value, key) as PropertyDescriptor;
    // From Node 22 (V8 12.4) an error's own `stack` is V8's accessor, which renders the stack of the error it is
    // read on: on the stand-in it gave the stand-in's, captured here, the host's frames (found on Node 24: a
    // printed service error showed the library's paths, and the restore diverged). Its text instead.
    if (isV8StackAccessor(key, descriptor)) defineProperty(standIn, key, { value: apply(descriptor.get, value, []), writable: true, enumerable: descriptor.enumerable, configurable: true });
    else defineProperty(standIn, key, descriptor);
  }
  setPrototypeOf(standIn, standInPrototype(getPrototypeOf(value) as object, name));
  return freeze(standIn);
};

/** The stand-in last made for a value, reused while it matches (circular references print as Node prints them). */
const standIns = new WeakMap<object, object>();

const inspectAsNode = function inspectAsNode(this: unknown): unknown {
  if (typeof this !== 'object' || this === null || types.isProxy(this)) return this;
  // Node's isError(): a native error, or any object inheriting from Error.prototype.
  if (!types.isNativeError(this) && !isInstance(this, Error)) return this;
  const name = hiddenConstructorName(this);
  if (name === undefined) return this;
  const previous = standIns.get(this);
  if (previous && sameAs(this, previous)) return previous;
  const standIn = makeStandIn(this, name);
  standIns.set(this, standIn);
  return standIn;
};

/**
 * An override accessor (SES's shape: the getter carries `originalValue`), so
 * that `Sub.prototype[util.inspect.custom] = f` still makes an own property.
 */
const defineOverridable = (proto: object, key: symbol, value: unknown, where: string): void => {
  const get = function () {
    return value;
  };
  const set = function (this: object, newValue: unknown) {
    if (this === proto) throw new TypeError(`Cannot assign to read only property 'Symbol(nodejs.util.inspect.custom)' of '${where}'`);
    if (Object.prototype.hasOwnProperty.call(this, key)) (this as Record<symbol, unknown>)[key] = newValue;
    else defineProperty(this, key, { value: newValue, writable: true, enumerable: true, configurable: true });
  };
  defineProperty(get, 'originalValue', { value, writable: false, enumerable: false, configurable: false });
  defineProperty(proto, key, { get, set, enumerable: false, configurable: true });
};

/**
 * Node's own `[util.inspect.custom]` of TextEncoder and TextDecoder, which
 * SES's repairIntrinsics() removes (its permits list them as not
 * permitted): without them `util.inspect(new TextDecoder())` printed Node's
 * internal fields (`[Symbol(decoder)]: true, [Symbol(flags)]: 0, ...`)
 * where Node prints `TextDecoder { encoding: 'utf-8', fatal: false,
 * ignoreBOM: false }`. Read when this module is evaluated, before
 * lockdown.ts runs SES; put back, as override accessors, by
 * repairInspection(). They print only what the object's getters give.
 */
const nodeInspectors: Array<readonly [proto: object, inspector: unknown]> = [];
for (const ctor of [globalThis.TextEncoder, globalThis.TextDecoder] as unknown[]) {
  const proto = typeof ctor === 'function' ? (ctor as { prototype?: unknown }).prototype : undefined;
  if (typeof proto === 'object' && proto !== null) nodeInspectors.push([proto, getOwnPropertyDescriptor(proto, custom)?.value]);
}

/** Call between SES's repairIntrinsics() and hardenIntrinsics(). */
export const repairInspection = (): void => {
  // Not configurable: SES's override taming (in hardenIntrinsics) then leaves them data properties.
  // Promise.prototype is frozen whole here (its methods are override accessors already, and SES would
  // freeze it next): redefining its `constructor` invalidated V8's PromiseSpeciesProtector, and every
  // `then` looked its species up (a chain of `then`s: 84 -> 112 ns each).
  Object.freeze(Promise.prototype);
  for (const proto of [getPrototypeOf(function* () {}) as object, Map.prototype, Set.prototype]) {
    const descriptor = getOwnPropertyDescriptor(proto, 'constructor');
    if (descriptor && 'value' in descriptor && descriptor.configurable) defineProperty(proto, 'constructor', { ...descriptor, configurable: false });
  }
  defineOverridable(Error.prototype, custom, inspectAsNode, 'Error.prototype');
  for (const [proto, inspector] of nodeInspectors) {
    if (typeof inspector === 'function' && getOwnPropertyDescriptor(proto, custom) === undefined) {
      defineOverridable(proto, custom, inspector, `${(proto as { [Symbol.toStringTag]?: string })[Symbol.toStringTag] ?? 'Text'}.prototype`);
    }
  }
};
