/**
 * A service's `structuredClone`: Node's, handed a copy of the value that no
 * service code can change while Node serializes it.
 *
 * Node's serializer asks an object that Node made cloneable or
 * transferable (a Blob, a CryptoKey, a web stream, an AbortSignal given to
 * util.transferableAbortSignal) what to send through its symbol-keyed
 * messaging methods, looked up on the object as any property is, and the
 * deserializer then constructs the class of Node's internals the answer
 * names (lib/internal/worker/js_transferable.js). A service that defined
 * such a method on its own Blob, or from a getter that ran during the
 * serialization, chose that class and what it was given (found by the
 * adversarial review: a FileHandle, a CryptoKey, an X509Certificate, their
 * prototypes the host's).
 *
 * So the value is first read the way V8's serializer reads it
 * (v8/src/objects/value-serializer.cc; the HTML structured clone algorithm,
 * https://html.spec.whatwg.org/multipage/structured-data.html#structuredserializeinternal):
 * each object once, its own enumerable string keys in order, each got once
 * (a getter runs once, as in Node; a key a getter deleted meanwhile is
 * skipped, as V8 skips it), Map and Set entries as they are when reached,
 * an error's name, message, stack and cause as V8 reads them. What it reads
 * becomes new plain objects, arrays, Maps, Sets and errors of this
 * library's making; what V8 copies from internal slots alone (buffers,
 * typed arrays, Dates, RegExps, boxed primitives, WebAssembly modules) and
 * what V8 refuses without running any code (functions, proxies, promises,
 * weak collections, iterators) is passed as it is, once its kind is known
 * from V8 itself (util.types, brand-checking getters), never from what the
 * object says of itself.
 *
 * Known differences from Node, each a DataCloneError where Node clones:
 * Node's platform objects (Blob, File, CryptoKey, KeyObject,
 * X509Certificate, BlockList, SocketAddress) cannot be cloned in a service;
 * Node clones them by asking them, which is what is refused.
 */
import util from 'node:util';
import { KeyObject } from 'node:crypto';
import { branded, isArrayIndex } from '../replay-log/index.js';

const { isProxy, isArrayBuffer, isSharedArrayBuffer, isDate, isRegExp, isBoxedPrimitive, isMap, isSet, isNativeError, isPromise, isWeakMap, isWeakSet, isMapIterator, isSetIterator, isGeneratorObject, isModuleNamespaceObject, isArgumentsObject, isExternal } =
  util.types;
const { apply, defineProperty, getOwnPropertyDescriptor, ownKeys } = Reflect;
const { hasOwn, keys, getPrototypeOf } = Object;
const objectPrototype = Object.prototype;
const arrayPrototype = Array.prototype;

/** One of Node's messaging symbols, found on a host prototype that has it (they are not registered: Symbol.for cannot name them). */
const messagingSymbol = (proto: object | undefined, name: string): symbol | undefined =>
  proto === undefined ? undefined : Object.getOwnPropertySymbols(proto).find(symbol => String(symbol) === `Symbol(${name})`);

const kClone = messagingSymbol(globalThis.Blob?.prototype, 'messaging_clone_symbol');
const kTransfer = messagingSymbol(globalThis.ReadableStream?.prototype, 'messaging_transfer_symbol');

const getterOf = (proto: object | undefined, key: string): ((this: unknown) => unknown) | undefined =>
  proto === undefined ? undefined : (getOwnPropertyDescriptor(proto, key)?.get as ((this: unknown) => unknown) | undefined);

interface WasmClasses {
  Module: { exports: (module: unknown) => unknown };
  Memory: { prototype: object };
  Table: { prototype: object };
  Global: { prototype: object };
  Instance: { prototype: object };
}
const wasm = (globalThis as { WebAssembly?: WasmClasses }).WebAssembly;
const wasmModuleExports = wasm?.Module.exports;
/**
 * Brand checks of V8's own objects that util.types does not name, each given to V8 (which copies or
 * refuses it itself), by the tag the object shows (`Object.prototype.toString`). The tag only picks
 * which check to run, and costs no exception: a check throws for every object it refuses, and a
 * clone of 100,000 objects took 21 s running them all (found measuring). An object that shows
 * another tag is copied as plain data, which is never unsafe.
 */
const nativeBrands = new Map<string, (value: object) => boolean>([
  [
    '[object WebAssembly.Module]',
    value =>
      wasmModuleExports !== undefined &&
      branded(function (this: unknown) {
        return (wasmModuleExports as (m: unknown) => unknown)(this);
      }, value),
  ],
  ['[object WebAssembly.Memory]', value => branded(getterOf(wasm?.Memory.prototype, 'buffer'), value)],
  ['[object WebAssembly.Table]', value => branded(getterOf(wasm?.Table.prototype, 'length'), value)],
  ['[object WebAssembly.Global]', value => branded(getterOf(wasm?.Global.prototype, 'value'), value)],
  ['[object WebAssembly.Instance]', value => branded(getterOf(wasm?.Instance.prototype, 'exports'), value)],
  // resolvedOptions checks the internal slot, except NumberFormat's and DateTimeFormat's, which accept any object
  // Intl.NumberFormat.call(object) marked (ECMA-402's legacy constructor: found by the adversarial review, a Blob
  // so marked passed for a NumberFormat); their formatToParts checks it.
  ...(['Collator', 'DisplayNames', 'ListFormat', 'PluralRules', 'RelativeTimeFormat', 'Segmenter'] as const).map((name): [string, (value: object) => boolean] => {
    const resolvedOptions = (Intl as unknown as Record<string, { prototype: { resolvedOptions?: () => unknown } } | undefined>)[name]?.prototype.resolvedOptions;
    return [`[object Intl.${name}]`, value => resolvedOptions !== undefined && branded(resolvedOptions, value)];
  }),
  ...(['NumberFormat', 'DateTimeFormat'] as const).map((name): [string, (value: object) => boolean] => {
    const formatToParts = (Intl as unknown as Record<string, { prototype: { formatToParts?: (n: number) => unknown } } | undefined>)[name]?.prototype.formatToParts;
    return [`[object Intl.${name}]`, value => formatToParts !== undefined && branded(formatToParts as (this: unknown) => unknown, value, [0])];
  }),
  ['[object Intl.Locale]', value => branded(getterOf(Intl.Locale?.prototype, 'baseName'), value)],
  ['[object WeakRef]', value => typeof WeakRef === 'function' && branded(WeakRef.prototype.deref as (this: unknown) => unknown, value)],
]);
const objectToString = Object.prototype.toString;

/** V8 copies or refuses these itself, reading internal slots only. `branding`: run the brand checks too. */
const isNative = (value: object, branding: boolean): boolean =>
  isArrayBuffer(value) ||
  isSharedArrayBuffer(value) ||
  ArrayBuffer.isView(value) ||
  isDate(value) ||
  isRegExp(value) ||
  isBoxedPrimitive(value) ||
  isPromise(value) ||
  isWeakMap(value) ||
  isWeakSet(value) ||
  isMapIterator(value) ||
  isSetIterator(value) ||
  isGeneratorObject(value) ||
  isModuleNamespaceObject(value) ||
  isArgumentsObject(value) ||
  isExternal(value) ||
  (branding && (nativeBrands.get(apply(objectToString, value, []) as string)?.(value) ?? false));

const dataCloneError = (message: string): DOMException => new DOMException(message, 'DataCloneError');

/** Node's own structuredClone, given only objects the host made (platformClasses' samples and equivalents). */
const hostStructuredClone = structuredClone as (value: unknown, options?: unknown) => unknown;

/**
 * A class of Node's platform objects that a service can hold (or a service's
 * own class standing for one: its Request, Response, FormData). What Node's
 * clone does with an instance depends on the Node line, and is decided by a
 * private mark its constructor puts on every instance (markTransferMode,
 * lib/internal/worker/js_transferable.js), which JavaScript cannot read: on
 * Node 22 and 24 a URL, URLSearchParams, Headers, Request, Response or
 * FormData is refused ('Cannot clone object of unsupported type.'), on Node
 * 20 it is copied as a plain object; a web stream not in the transfer list
 * is refused on every line, with a TypeError on 20 and a DataCloneError
 * since; a DOMException is copied as a plain object on 20 and cloned as a
 * DOMException since. So the host's clone is asked, once, about a sample of
 * the class that the host made (no service code runs), and each instance is
 * then treated as that sample was: copied as plain data, refused with the
 * error Node's clone throws for the sample (made again, at the point where
 * Node would reach the instance), or replaced by an equivalent the host made
 * (from what Node's clone reads of it) for Node to clone. An instance is
 * told by its prototype chain and confirmed by a brand check of the host's
 * class (or the service class's private field), never by what it says of
 * itself.
 */
export interface PlatformClass {
  /** The prototype instances inherit from (a quick test before `is`); none when `is` costs no exception. */
  readonly prototype?: object;
  /** A brand check: `value` is an instance (runs no service code). */
  readonly is: (value: object) => boolean;
  /** A new instance made by the host. */
  readonly sample: () => object;
  /**
   * An object made by the host that Node clones as it clones `value`, for a class Node clones as a platform object.
   * What it holds of `value` beyond the host's own data (a DOMException's stack, any value) is given to `copy`,
   * never to Node as it is; `remember` is called with the equivalent before, so a cycle through it ends there.
   */
  readonly equivalent?: (value: object, copy: (part: unknown) => unknown, remember: (equivalent: object) => void) => object;
}
type CloneOutcome = 'plain' | 'refused' | 'cloned';
const platformClasses: PlatformClass[] = [];
const outcomes = new Map<PlatformClass, CloneOutcome>();

/** Register a class of platform objects (see PlatformClass). */
export const clonedAsHostClass = (platform: PlatformClass): void => {
  platformClasses.push(platform);
};

/** What Node's clone does with instances of `platform` on this Node line, asked of its sample once. */
const outcomeOf = (platform: PlatformClass): CloneOutcome => {
  let outcome = outcomes.get(platform);
  if (outcome === undefined) {
    try {
      const copied = hostStructuredClone(platform.sample());
      const proto = typeof copied === 'object' && copied !== null ? getPrototypeOf(copied) : undefined;
      outcome = proto === objectPrototype ? 'plain' : 'cloned';
    } catch {
      outcome = 'refused';
    }
    outcomes.set(platform, outcome);
  }
  return outcome;
};

/**
 * Whether a Proxy is on `value`'s prototype chain (`value` none). The chain is read up to it, never through it: its
 * traps are a service's code, which Node's clone does not run (it reads an object's own properties and its marks).
 */
const proxiedChain = (value: object): boolean => {
  for (let current = getPrototypeOf(value); current !== null; current = getPrototypeOf(current)) if (isProxy(current)) return true;
  return false;
};

/** Whether `proto` is on the prototype chain of `value` (no Proxy on it: proxiedChain). */
const inherits = (value: object, proto: object): boolean => {
  for (let current = getPrototypeOf(value); current !== null; current = getPrototypeOf(current)) if (current === proto) return true;
  return false;
};

/** The registered class `value` is a genuine instance of, if any (no Proxy on its prototype chain: proxiedChain). */
const platformOf = (value: object): PlatformClass | undefined => {
  for (const platform of platformClasses) if ((platform.prototype === undefined || inherits(value, platform.prototype)) && platform.is(value)) return platform;
  return undefined;
};

/** Throw what Node's clone throws for an instance of `platform` (its sample's error, made again). */
const refuseAsNode = (platform: PlatformClass): never => {
  hostStructuredClone(platform.sample());
  throw dataCloneError('Cannot clone object of unsupported type.');
};

const hostGetter = (klass: unknown, key: string): ((this: unknown) => unknown) | undefined =>
  getterOf((klass as { prototype?: object } | undefined)?.prototype, key);
const hostMethod = (klass: unknown, key: string): ((this: unknown, ...args: never[]) => unknown) | undefined => {
  const method = (klass as { prototype?: Record<string, unknown> } | undefined)?.prototype?.[key];
  return typeof method === 'function' ? (method as (this: unknown, ...args: never[]) => unknown) : undefined;
};
const registerHost = (klass: unknown, is: ((this: unknown, ...args: never[]) => unknown) | undefined, sample: () => object, extra: { args?: unknown[]; equivalent?: PlatformClass['equivalent'] } = {}): void => {
  const prototype = (klass as { prototype?: object } | undefined)?.prototype;
  if (typeof klass !== 'function' || prototype === undefined || is === undefined) return;
  clonedAsHostClass({ prototype, is: value => branded(is, value, extra.args), sample, equivalent: extra.equivalent });
};
{
  const host = globalThis as Record<string, unknown>;
  registerHost(URL, hostGetter(URL, 'href'), () => new URL('http://x/'));
  registerHost(URLSearchParams, hostMethod(URLSearchParams, 'toString'), () => new URLSearchParams());
  registerHost(AbortSignal, hostGetter(AbortSignal, 'aborted'), () => new AbortController().signal);
  registerHost(host.ReadableStream, hostGetter(host.ReadableStream, 'locked'), () => new (host.ReadableStream as new () => object)());
  registerHost(host.WritableStream, hostGetter(host.WritableStream, 'locked'), () => new (host.WritableStream as new () => object)());
  registerHost(host.TransformStream, hostGetter(host.TransformStream, 'readable'), () => new (host.TransformStream as new () => object)());
  // Node 22's clone of a DOMException: its name, message and stack (read as `this.stack`), a DOMException again.
  const domMessage = hostGetter(DOMException, 'message');
  const domName = hostGetter(DOMException, 'name');
  registerHost(DOMException, domMessage, () => new DOMException('m', 'DataCloneError'), {
    // The stack is any value a service chose (an own property or getter): copied as the rest of the value is, or a
    // service's object with its own clone method reached Node's serializer inside it (found by the adversarial review:
    // `structuredClone` of a DOMException whose stack held such a Blob built Node's BlockList, on Node 22 and 24).
    equivalent: (value, copy, remember) => {
      const stack = (value as { stack?: unknown }).stack;
      const out = new DOMException(apply(domMessage as () => string, value, []), apply(domName as () => string, value, []));
      remember(out);
      defineProperty(out, 'stack', { value: copy(stack), writable: true, enumerable: false, configurable: true });
      return out;
    },
  });
}

/** Error classes V8 gives a copied error, by the name it reads (value-serializer.cc: WriteJSError). */
const errorClasses: Record<string, ErrorConstructor> = { EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError };

/** ToString, as V8 applies it (a Symbol throws TypeError; an object's toString runs). */
const toStringOf = (value: unknown): string => `${value as string}`;

/**
 * The copy of `root` that Node's serializer is given: see the module's
 * comment. Throws what reading the value throws (a getter's error), and a
 * DataCloneError for a platform object of Node's.
 */
const copyForClone = (root: unknown): unknown => {
  const copies = new Map<object, unknown>();
  const copy = (value: unknown): unknown => {
    if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return value;
    // Functions and proxies: V8 refuses them (DataCloneError) without calling them or their traps.
    if (typeof value === 'function' || isProxy(value)) return value;
    if (copies.has(value)) return copies.get(value);
    // A platform object of Node's (or a service's class standing for one): as Node's clone treats its kind on this line.
    // Plain objects and arrays, most of what a clone copies, are none: their prototype is not a platform class's.
    const proto = getPrototypeOf(value);
    // An object with a Proxy on its prototype chain: copied as the data it holds, as Node copies an ordinary object,
    // without asking its chain anything (the traps would run a service's code where Node's clone runs none).
    const proxied = proto !== objectPrototype && proto !== null && proto !== arrayPrototype && proxiedChain(value);
    const platform = proto === objectPrototype || proto === null || proto === arrayPrototype || proxied ? undefined : platformOf(value);
    const outcome = platform === undefined ? undefined : outcomeOf(platform);
    if (platform !== undefined && outcome === 'refused') refuseAsNode(platform);
    if (platform?.equivalent !== undefined && outcome === 'cloned') {
      return platform.equivalent(value, copy, equivalent => copies.set(value, equivalent));
    }
    // Refused first: whatever it also passes for (found by the adversarial review, with a forged brand).
    if (outcome !== 'plain' && !proxied && ((kClone !== undefined && kClone in value) || (kTransfer !== undefined && kTransfer in value) || value instanceof KeyObject)) {
      const tag = typeof (value as { constructor?: { name?: unknown } }).constructor?.name === 'string' ? (value as { constructor: { name: string } }).constructor.name : 'object';
      throw dataCloneError(
        `${tag} could not be cloned: inside a service, structuredClone copies plain data (objects, arrays, Maps, Sets, errors, buffers, dates), not Node's platform objects (Blob, CryptoKey, KeyObject, streams), which Node clones by asking the object itself`,
      );
    }
    // The brand checks (each an exception for what it refuses) only for objects whose prototype is neither
    // Object.prototype, null nor Array.prototype: plain objects and arrays are most of what is cloned.
    const plain = proto === objectPrototype || proto === null;
    // V8's own objects are told by util.types whatever their prototype (a Date made to inherit from null is still
    // cloned as a Date, found by the adversarial review); an array is none of them.
    const native = !Array.isArray(value) && isNative(value, !plain && proto !== arrayPrototype && !proxied);
    if (native) {
      copies.set(value, value);
      return value;
    }
    if (isMap(value)) {
      const out = new Map<unknown, unknown>();
      copies.set(value, out);
      // V8 takes the entries as they are when it reaches the Map, then writes each.
      const entries = [...apply(Map.prototype.entries, value, []) as IterableIterator<[unknown, unknown]>];
      for (const [key, entry] of entries) out.set(copy(key), copy(entry));
      return out;
    }
    if (isSet(value)) {
      const out = new Set<unknown>();
      copies.set(value, out);
      const entries = [...apply(Set.prototype.values, value, []) as IterableIterator<unknown>];
      for (const entry of entries) out.add(copy(entry));
      return out;
    }
    if (isNativeError(value)) return copyError(value as Error);
    const isArray = Array.isArray(value);
    const out: Record<string, unknown> | unknown[] = isArray ? new Array((value as unknown[]).length) : {};
    copies.set(value, out);
    for (const key of keys(value)) {
      // A getter that ran before may have deleted this key: V8 skips it then.
      if (!hasOwn(value, key)) continue;
      const copied = copy((value as Record<string, unknown>)[key]);
      // An index of a fresh array, or an ordinary key of a fresh object, is assigned (the fast way); an own
      // '__proto__' or a key an override accessor of Object.prototype answers is defined.
      if ((isArray && isArrayIndex(key)) || (!isArray && key !== '__proto__' && !(key in objectPrototype))) (out as Record<string, unknown>)[key] = copied;
      else defineProperty(out, key, { value: copied, writable: true, enumerable: true, configurable: true });
    }
    return out;
  };

  /** An error as V8 writes one: its name read, its own message and cause, its stack read (which formats it, reading the name again). */
  const copyError = (error: Error): Error => {
    const messageDescriptor = getOwnPropertyDescriptor(error, 'message');
    const causeDescriptor = getOwnPropertyDescriptor(error, 'cause');
    const name = toStringOf(error.name);
    const message = messageDescriptor && 'value' in messageDescriptor ? toStringOf(messageDescriptor.value) : undefined;
    const stack = error.stack as unknown;
    const Class = hasOwn(errorClasses, name) ? errorClasses[name] : Error;
    const out = new Class();
    copies.set(error, out);
    for (const key of ownKeys(out)) delete (out as unknown as Record<PropertyKey, unknown>)[key];
    if (message !== undefined) defineProperty(out, 'message', { value: message, writable: true, enumerable: false, configurable: true });
    if (typeof stack === 'string') defineProperty(out, 'stack', { value: stack, writable: true, enumerable: false, configurable: true });
    if (causeDescriptor && 'value' in causeDescriptor) defineProperty(out, 'cause', { value: copy(causeDescriptor.value), writable: true, enumerable: false, configurable: true });
    return out;
  };

  return copy(root);
};

/**
 * `structuredClone(value, options)` for a service, made of the host's
 * (`hostClone`): options are read first, as Node reads them (`transfer`,
 * iterated once into an array), then the value is copied (copyForClone)
 * and the copy given to Node, with the same transfer list (an ArrayBuffer
 * transferred is the service's own, detached as in Node). Throws what Node
 * throws, and DataCloneError for Node's platform objects.
 */
type HostClone = (value: unknown, options?: unknown) => unknown;

let blobTransfer: boolean | undefined;
/** Whether Node accepts a Blob in a transfer list (Node 20 does, and clones it), asked of a Blob the host made. */
const blobTransferAccepted = (): boolean => {
  if (blobTransfer === undefined) {
    try {
      const blob = new Blob([]);
      hostStructuredClone(undefined, { transfer: [blob] });
      blobTransfer = true;
    } catch {
      blobTransfer = false;
    }
  }
  return blobTransfer;
};

export const guardedStructuredClone = (hostClone: HostClone, value: unknown, options?: unknown): unknown => {
  let transfer: unknown[] | undefined;
  if (options !== undefined && options !== null) {
    if (typeof options !== 'object' && typeof options !== 'function') return hostClone(value, options);
    const list = (options as { transfer?: unknown }).transfer;
    if (list !== undefined && list !== null) {
      if (typeof list !== 'object' && typeof list !== 'function') return hostClone(value, { transfer: list as unknown[] });
      transfer = Array.from(list as Iterable<unknown>);
    }
  }
  const copied = copyForClone(value);
  // The transfer list is checked after the copy, whose getters could change what it holds (found by the
  // adversarial review: a stream given its own transfer method by a getter). Node asks a transferable
  // object of its own (a web stream) what to send, as it asks a cloneable one: only ArrayBuffers (V8's
  // own, which it detaches itself) reach it; other objects are refused as Node refuses a plain object.
  // What Node cannot transfer it refuses with its own error, which differs by line (a TypeError on 20, a
  // DataCloneError since): the host's clone is given a plain object to transfer, to throw it. A platform object
  // that Node would copy as a plain object (an AbortSignal, a URL) is as invalid there as a plain one. Node 20
  // accepts a Blob in the list (and clones it): it is left out of the list given to Node then.
  const kept: unknown[] = [];
  const blobs = new Set<unknown>();
  for (const item of transfer ?? []) {
    if (((typeof item === 'object' && item !== null) || typeof item === 'function') && !isArrayBuffer(item)) {
      // A Proxy, or an object with one on its prototype chain, is invalid there, and asked nothing (no trap runs).
      const asked = !isProxy(item) && !proxiedChain(item as object);
      const platform = asked ? platformOf(item as object) : undefined;
      const plainThere = platform !== undefined && outcomeOf(platform) !== 'refused';
      if (asked && !plainThere && ((kTransfer !== undefined && kTransfer in item) || (kClone !== undefined && kClone in item))) {
        if (item instanceof Blob && blobTransferAccepted() && branded(getterOf(Blob.prototype, 'size'), item as object)) {
          // Node 20 refuses a Blob listed twice: its own error, asked of a Blob the host made.
          if (blobs.has(item)) {
            const blob = new Blob([]);
            hostStructuredClone(undefined, { transfer: [blob, blob] });
          }
          blobs.add(item);
          continue;
        }
        if (kTransfer !== undefined && kTransfer in item) {
          throw dataCloneError('inside a service only ArrayBuffers can be transferred: a stream or another platform object of Node would be asked, by itself, what to send');
        }
      }
      hostClone(undefined, { transfer: [{}] });
      throw Object.assign(new TypeError('Found invalid object in transferList'), { code: 'ERR_INVALID_TRANSFER_OBJECT' });
    }
    kept.push(item);
  }
  return transfer === undefined ? hostClone(copied) : hostClone(copied, { transfer: kept });
};
