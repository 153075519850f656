/**
 * Host objects a service is handed carry Node's internals with them: a
 * Blob its native handle (`Symbol(kHandle)`), a KeyObject its
 * `KeyObjectHandle`, a TransformStream its readable and writable sides of
 * Node's internal classes, a TextDecoder its ICU converter, each stream
 * its algorithm functions. Those internals' prototypes and functions are
 * shared by the whole process: left unfrozen, a service could redefine
 * `getReader` for every TransformStream of the host, hook the handle's
 * `init` to read every key the host makes later, or mark them to talk to
 * another service (found by the adversarial review).
 *
 * What is shared is found by making each sample twice and walking both
 * side by side: an object met at the same place in both (a prototype, a
 * module's function, a common record) is shared, and is frozen; objects
 * that differ are each sample's own, and the walk goes on into them.
 */

import { types as utilTypes } from 'node:util';
import { hardenHostValue, isV8Error, overridableConstructor } from './guest-errors.js';

const { getPrototypeOf, getOwnPropertyDescriptor, isFrozen } = Object;
const { ownKeys, apply } = Reflect;
const { isMap, isSet } = utilTypes;
const mapEntries = Map.prototype.entries;
const setValues = Set.prototype.values;

/**
 * What a Map or a Set holds, keys and values in order (empty for anything
 * else): Node keeps internals there, as an EventTarget's listeners (a
 * linked list of its internal `Listener` class) and an `AbortSignal.any`'s
 * WeakRefs to its sources. Read with the intrinsic iterators, so a
 * subclass (Node's SafeMap) is read as what it holds.
 */
const collectionEntries = (value: object): unknown[] => {
  // Brand checks that do not throw: a thrown TypeError per object walked (most are neither) cost the
  // walk more than the rest of its work (a restore's hardening took 20 ms instead of 9).
  const out: unknown[] = [];
  if (isMap(value)) for (const [key, entry] of apply(mapEntries, value, []) as Iterable<[unknown, unknown]>) out.push(key, entry);
  else if (isSet(value)) for (const entry of apply(setValues, value, []) as Iterable<unknown>) out.push(entry);
  return out;
};

/**
 * Make a prototype's `constructor` an accessor before freezing it
 * (overridableConstructor, guest-errors.ts): Node's own code assigns
 * `stream.constructor = WritableStream` on instances of its internal
 * classes.
 */
const tameConstructor = (object: object): void => {
  const descriptor = getOwnPropertyDescriptor(object, 'constructor');
  if (!descriptor || !('value' in descriptor)) return;
  // The class itself is hardened too: harden calls no getter, so the accessor would hand out a class no one
  // froze (found by the adversarial review: Node's key classes re-parented to steal every key made later, an
  // internal stream class's prototype replaced). The host's own Error (Node's errors are made from it, and its
  // stack settings are the process's) is never handed out: the shared Error stands for it.
  const value = isV8Error(descriptor.value) ? sharedError : descriptor.value;
  if (!overridableConstructor(object, value)) return;
  // After the accessor: hardening the class freezes its prototype, this object.
  if (isObject(value) && value !== sharedError) hardenHostValue(value);
};

/** The shared Error SES gives compartments (the intrinsic TypeError inherits it), its statics inert. */
const sharedError: unknown = getPrototypeOf(TypeError);

/** How deep the walk goes from a sample (the adversarial review reached everything it found within 8). */
const MAX_DEPTH = 12;

const isObject = (value: unknown): value is object => (typeof value === 'object' && value !== null) || typeof value === 'function';

/**
 * Harden (`harden`, SES) every object two samples made by `make` share,
 * walking their own properties (symbol-keyed included; accessors are not
 * called), the entries of Maps and Sets, and prototypes side by side.
 * `globalThis` and `process` are never frozen nor entered. Returns how
 * many objects were not frozen yet.
 */
export const hardenSharedInternals = (makers: ReadonlyArray<() => unknown>): number => {
  const never = new Set<unknown>([globalThis, process]);
  const seen = new Set<unknown>();
  let hardened = 0;
  const visit = (a: unknown, b: unknown, depth: number): void => {
    if (!isObject(a) || !isObject(b) || never.has(a) || never.has(b) || depth > MAX_DEPTH) return;
    if (a === b) {
      if (!isFrozen(a)) {
        hardened += 1;
        tameConstructor(a);
      }
      harden(a);
      return;
    }
    if (seen.has(a)) return;
    seen.add(a);
    visit(getPrototypeOf(a), getPrototypeOf(b), depth + 1);
    for (const key of ownKeys(a)) {
      const left = getOwnPropertyDescriptor(a, key);
      const right = getOwnPropertyDescriptor(b, key);
      if (!left || !right) continue;
      visit(left.value, right.value, depth + 1);
      visit(left.get, right.get, depth + 1);
      visit(left.set, right.set, depth + 1);
    }
    const leftEntries = collectionEntries(a);
    const rightEntries = collectionEntries(b);
    for (let i = 0; i < leftEntries.length && i < rightEntries.length; i += 1) visit(leftEntries[i], rightEntries[i], depth + 1);
  };
  for (const make of makers) visit(make(), make(), 0);
  return hardened;
};
