/**
 * The shape of a Node function, given to the service's function that
 * stands in for it: its `name` and `length`; and the tag of a Node object.
 *
 * A service gets its own versions of Node's builtin modules and globals
 * (wrappers that record, stand-ins that refuse, ports evaluated inside the
 * service). Code reads what Node's functions look like (`fn.length` to
 * tell a callback API from a promise one, `fn.name` in messages and
 * registries), so each such function carries the name and length of
 * Node's, exactly as Node has them (`os.freemem.name` is 'getFreeMem',
 * `zlib.gzipSync.name` 'syncBufferWrapper'). Node's side is read by
 * descriptor, never by running a getter, so reading it loads nothing.
 *
 * Objects that stand in for Node's (`crypto`, `performance`, `console`)
 * get the `Symbol.toStringTag` of Node's, which `Object.prototype.toString`
 * reports (`[object Crypto]`).
 *
 * `likeHost` shapes one function where it is made; `likeHostAll` shapes
 * every function of a module (or of an object a module exports), the
 * members of its classes' prototypes, and objects one level down, and tags
 * the objects as Node's are tagged. Both run
 * before the service's objects are hardened; a property that is already
 * frozen is left as it is (test/shapes.test.ts finds any such function).
 */
import { types } from 'node:util';

const { defineProperty, getOwnPropertyDescriptor, getPrototypeOf } = Object;
const { ownKeys } = Reflect;
const { isProxy } = types;

type AnyFunction = (...args: never[]) => unknown;

/** `key`'s descriptor on `object` or the nearest prototype above it that has one (not Object's or Function's). */
const descriptorIn = (object: object, key: PropertyKey): PropertyDescriptor | undefined => {
  for (let at: object | null = object; at !== null && at !== Object.prototype && at !== Function.prototype; at = getPrototypeOf(at) as object | null) {
    const descriptor = getOwnPropertyDescriptor(at, key);
    if (descriptor) return descriptor;
  }
  return undefined;
};

/** `key` of `host` when it is a data property (own or inherited), without running a getter. */
const hostValue = (host: object, key: PropertyKey): unknown => {
  const descriptor = descriptorIn(host, key);
  return descriptor && 'value' in descriptor ? descriptor.value : undefined;
};

/** Give `guest` the `name` and `length` of `host`, the Node function it stands in for (nothing when there is none). Returns `guest`. */
export const likeHost = <F extends AnyFunction | (abstract new (...args: never[]) => unknown)>(guest: F, host: unknown): F => {
  if (typeof host !== 'function' || (guest as unknown) === host || isProxy(guest)) return guest;
  for (const key of ['name', 'length'] as const) {
    const wanted = getOwnPropertyDescriptor(host, key);
    const had = getOwnPropertyDescriptor(guest, key);
    if (wanted === undefined || (had !== undefined && (had.value === wanted.value || !had.configurable))) continue;
    defineProperty(guest, key, { value: wanted.value, writable: false, enumerable: false, configurable: true });
  }
  return guest;
};

/** The own methods and accessors of `guest` (a class's prototype), shaped as those `host` (Node's class's prototype) has or inherits. */
export const likeHostPrototype = (guest: object, host: object): void => {
  for (const key of ownKeys(guest)) {
    if (key === 'constructor') continue;
    const descriptor = getOwnPropertyDescriptor(guest, key) as PropertyDescriptor;
    const hostDescriptor = descriptorIn(host, key);
    if (hostDescriptor === undefined) continue;
    if (typeof descriptor.value === 'function') likeHost(descriptor.value as AnyFunction, hostDescriptor.value);
    if (typeof descriptor.get === 'function') likeHost(descriptor.get as AnyFunction, hostDescriptor.get);
    if (typeof descriptor.set === 'function') likeHost(descriptor.set as AnyFunction, hostDescriptor.set);
  }
};

/**
 * Give `guest` the `Object.prototype.toString` tag `tag` as Node's objects
 * have theirs, from their class: on a prototype of its own, between it and
 * its prototype. For a stand-in whose Node object is costly to reach (the
 * `performance` global loads perf_hooks). Call before hardening.
 */
export const inheritTag = <T extends object>(guest: T, tag: string): T => {
  Object.setPrototypeOf(guest, Object.create(getPrototypeOf(guest) as object | null, { [Symbol.toStringTag]: { value: tag, writable: false, enumerable: false, configurable: true } }));
  return guest;
};

/**
 * Give `guest` (an object standing in for one of Node's) the `Symbol.toStringTag` of `host`, so that
 * `Object.prototype.toString` says what it says in Node (`[object Crypto]`): where Node's object has the tag
 * itself (`console`), as its own; where Node's inherits it from its class (`crypto`, `performance`), on a
 * prototype of its own between the guest and the one it had. Returns `guest`.
 */
export const tagLikeHost = <T extends object>(guest: T, host: unknown): T => {
  if (host === null || typeof host !== 'object' || (guest as unknown) === host || isProxy(guest) || !Object.isExtensible(guest)) return guest;
  const tag = Reflect.get(host, Symbol.toStringTag) as unknown;
  if (typeof tag !== 'string' || Reflect.get(guest, Symbol.toStringTag) === tag) return guest;
  if (getOwnPropertyDescriptor(host, Symbol.toStringTag)) defineProperty(guest, Symbol.toStringTag, { value: tag, writable: false, enumerable: false, configurable: true });
  else inheritTag(guest, tag);
  return guest;
};

/**
 * `likeHost` for every function `guest` holds in an own data property that
 * `host` has a function for, and for its own prototype's members when it is a
 * class; `depth` more levels of objects (`fs.promises`, `crypto.webcrypto`).
 * Returns `guest`.
 */
export const likeHostAll = <T extends object>(guest: T, host: unknown, depth = 1): T => {
  // A proxy is left alone: its traps may be recorded reads (process.env's keys are syscalls).
  if (host === null || (typeof host !== 'object' && typeof host !== 'function') || (guest as unknown) === host || isProxy(guest)) return guest;
  if (typeof guest === 'function') likeHost(guest as AnyFunction, host); // a module that is a function (events)
  else tagLikeHost(guest, host);
  for (const key of ownKeys(guest)) {
    const descriptor = getOwnPropertyDescriptor(guest, key) as PropertyDescriptor;
    if (!('value' in descriptor)) continue;
    const value = descriptor.value as unknown;
    const counterpart = hostValue(host, key);
    if (typeof value === 'function') {
      // A lazy facade (a Proxy that loads its host class when first used) answers with the host's own name,
      // length and prototype: reading its prototype here would load it in every service (60 ms of a restore).
      if (isProxy(value)) continue;
      likeHost(value as AnyFunction, counterpart);
      const prototype = (value as { prototype?: unknown }).prototype;
      const hostPrototype = typeof counterpart === 'function' ? (counterpart as { prototype?: unknown }).prototype : undefined;
      if (prototype !== null && typeof prototype === 'object' && hostPrototype !== null && typeof hostPrototype === 'object' && prototype !== hostPrototype) {
        likeHostPrototype(prototype, hostPrototype);
      }
    } else if (depth > 0 && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      likeHostAll(value, counterpart, depth - 1);
    }
  }
  return guest;
};
