/**
 * Deterministic web and Node globals, offered as they are. They are host
 * objects, so they are hardened first: a service cannot change them for the
 * host or for other services. What cannot be made deterministic is refused
 * with an error that says why.
 */
import { Buffer as HostBuffer } from 'node:buffer';
import { refusedConstructor, determinismViolation, nameAs } from './errors.js';
import { GuestReadableStream } from './readable-stream.js';

let shared: Record<string, unknown> | undefined;

/** The pure globals every service gets (built once per process). */
export const pureGlobals = (): Record<string, unknown> => {
  if (shared) return shared;
  const classes = {
    URL,
    URLSearchParams,
    TextEncoder,
    TextDecoder,
    AbortController,
    AbortSignal,
    Event,
    EventTarget,
    DOMException,
    // WHATWG streams: promise jobs only, no host timing (Compression/DecompressionStream, which
    // settle on the host's thread pool, are left out). got and ky test for them.
    ...webStreams(),
    // ReadableStream is Node's with a tee() and from() that stay in the turn (readable-stream.ts):
    // streamed request and response bodies (fetch-body.ts) are of this class.
    ReadableStream: GuestReadableStream,
  };
  // SES no longer shares the float typed arrays with compartments; Intl is
  // as deterministic as the pinned locale and time zone (see lockdown.ts).
  // Intl's constructors are the host's: frozen here; its namespace object is each service's own (endowments.ts).
  for (const value of Object.values(Object.getOwnPropertyDescriptors(Intl))) if (typeof value.value === 'function') harden(value.value);
  const more: Record<string, unknown> = { Float32Array, Float64Array };
  const float16 = (globalThis as Record<string, unknown>).Float16Array;
  if (typeof float16 === 'function') more.Float16Array = float16;
  for (const value of Object.values(classes)) harden(value);
  hardenReturnedPrototypes();
  shared = {
    ...classes,
    Headers: standIn(hostHeaders, {}),
    // Blob URLs are process-wide state (and draw host randomness): not for services.
    URL: facade(URL, { createObjectURL: refusedStatic('URL.createObjectURL'), revokeObjectURL: refusedStatic('URL.revokeObjectURL') }),
    ...more,
    atob: harden(atob),
    btoa: harden(btoa),
    structuredClone: harden(structuredClone),
    queueMicrotask: harden((fn: () => void) => queueMicrotask(fn)),
    Buffer: guestBuffer(),
    WeakRef: refusedConstructor('WeakRef', 'garbage collection timing differs between the build and every replay', 'Keep a strong reference (a Map) instead.'),
    FinalizationRegistry: refusedConstructor(
      'FinalizationRegistry',
      'garbage collection timing differs between the build and every replay',
      'Release resources explicitly (a close() method) instead.',
    ),
  };
  return shared;
};

/** The WHATWG stream classes of Node's globals (`stream/web`), the deterministic ones. */
export const webStreams = (): Record<string, unknown> => {
  const names = [
    'ReadableStream', 'ReadableStreamDefaultReader', 'ReadableStreamBYOBReader', 'ReadableStreamBYOBRequest', 'ReadableByteStreamController',
    'ReadableStreamDefaultController', 'WritableStream', 'WritableStreamDefaultWriter', 'WritableStreamDefaultController', 'TransformStream',
    'TransformStreamDefaultController', 'ByteLengthQueuingStrategy', 'CountQueuingStrategy', 'TextEncoderStream', 'TextDecoderStream',
  ];
  const out: Record<string, unknown> = {};
  for (const name of names) {
    const value = (globalThis as Record<string, unknown>)[name];
    if (typeof value === 'function') out[name] = harden(value);
  }
  return out;
};

const refusedStatic = (name: string) =>
  harden(() => {
    throw determinismViolation(name, 'it keeps state in the host process, shared with every service', 'Keep the Blob and pass it around instead of a URL.');
  });

/**
 * The host classes services get return objects of other host classes
 * (iterators of Headers and URLSearchParams, the ReadableStream of a Blob
 * and its reader, Intl.Segmenter's segments): their prototypes are the
 * host's too, shared with the host's own fetch and streams. Each is frozen
 * once, found from a sample object, walking up its prototype chain: here
 * for the cheap ones, on first use for Headers (hostHeaders) and
 * Intl.Segmenter (guestSegmenter).
 */
const hardenReturnedPrototypes = (): void => {
  const blobStream = new Blob(['x']).stream();
  // What a ReadableStream hands the code that makes or reads it: its
  // controllers, readers and BYOB requests (Node's globals), its async iterator.
  for (const name of ['ReadableStreamDefaultController', 'ReadableByteStreamController', 'ReadableStreamDefaultReader', 'ReadableStreamBYOBReader', 'ReadableStreamBYOBRequest']) {
    const hostClass = (globalThis as Record<string, unknown>)[name];
    if (typeof hostClass === 'function') harden(hostClass);
  }
  hardenChains([new URLSearchParams('a=1').entries(), new URLSearchParams('a=1')[Symbol.iterator](), blobStream, blobStream.getReader(), new ReadableStream().values()]);
};

const hardenChains = (samples: readonly unknown[]): void => {
  for (const sample of samples) {
    for (let proto = Object.getPrototypeOf(sample) as object | null; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object | null) harden(proto);
  }
};

let hostHeadersClass: typeof Headers | undefined;

/**
 * The host's Headers, frozen with the prototype of its iterators, on first
 * use: Node loads it (undici) only when it is first read, which costs more
 * than a small restore's whole replay, and most services never touch a
 * header. Everything that hands a Headers to a service goes through here.
 */
export const hostHeaders = (): typeof Headers => {
  if (hostHeadersClass) return hostHeadersClass;
  const headers = globalThis.Headers;
  harden(headers);
  hardenChains([new headers({ a: '1' }).entries()]);
  hostHeadersClass = headers;
  return headers;
};

type SegmenterClass = new () => { segment(text: string): Iterable<unknown> };
let segmenterReady = false;

/**
 * A service's Intl.Segmenter: the host's (frozen with the other Intl
 * constructors), behind a stand-in that freezes the prototypes of its
 * segments and their iterator before the service can make any. Finding
 * them means segmenting a sample, which loads ICU's break rules: on first
 * use only. Undefined when this Node has no Segmenter.
 */
export const guestSegmenter = (): unknown => {
  const host = (Intl as unknown as { Segmenter?: SegmenterClass }).Segmenter;
  if (typeof host !== 'function') return undefined;
  return standIn(() => {
    if (!segmenterReady) {
      const segments = new host().segment('ab');
      hardenChains([segments, segments[Symbol.iterator]()]);
      segmenterReady = true;
    }
    return host;
  }, {});
};

let bufferFacade: typeof HostBuffer | undefined;

/** A Buffer that owns its memory: small Buffers otherwise share Node's 8 KB pool, whose other bytes are the host's. */
const unpooled = (buffer: Buffer): Buffer => {
  if (buffer.byteOffset === 0 && buffer.byteLength === buffer.buffer.byteLength) return buffer;
  const copy = HostBuffer.alloc(buffer.byteLength);
  copy.set(buffer);
  return copy;
};

const isArrayBufferLike = (value: unknown): boolean => value instanceof ArrayBuffer || (typeof SharedArrayBuffer === 'function' && value instanceof SharedArrayBuffer);

/**
 * Node's Buffer, except that no Buffer a service makes shares memory with
 * the host: `allocUnsafe` returns zeroed memory, and `from` and `concat`
 * never return a slice of Node's shared pool (through `buf.buffer` a
 * service would read what the host wrote there, which replay cannot
 * reproduce either). `Buffer.from(arrayBuffer)` still views the service's
 * own ArrayBuffer, as in Node. A facade, so the host's own Buffer is left as
 * it is; `new Buffer()` (long deprecated) is not supported.
 */
export const guestBuffer = (): typeof HostBuffer => {
  // One stand-in for the process: the global Buffer and buffer.Buffer are the same (each call wrapped it again).
  if (bufferFacade) return bufferFacade;
  bufferFacade = facade(HostBuffer, {
    allocUnsafe: HostBuffer.alloc,
    allocUnsafeSlow: HostBuffer.alloc,
    from: (value: unknown, ...rest: unknown[]) =>
      isArrayBufferLike(value) ? HostBuffer.from(value as ArrayBuffer, ...(rest as [number, number])) : unpooled(HostBuffer.from(value as string, ...(rest as [BufferEncoding]))),
    concat: (list: readonly Uint8Array[], totalLength?: number) => unpooled(HostBuffer.concat(list, totalLength)),
    copyBytesFrom: (...args: unknown[]) => unpooled(Reflect.apply(HostBuffer.copyBytesFrom, HostBuffer, args) as Buffer),
  });
  // Buffer(...) called as a function (long deprecated): as Buffer.from / Buffer.alloc, never pooled.
  const from = (bufferFacade as unknown as { from: (...a: unknown[]) => Buffer }).from;
  bufferFacade = new Proxy(bufferFacade, {
    apply: (_target, _this, args: unknown[]) => (typeof args[0] === 'number' ? HostBuffer.alloc(args[0]) : from(...args)),
  });
  return bufferFacade;
};

/**
 * A read-only stand-in for a host class (frozen by lockdown) with some of its
 * statics replaced. The proxy's target is a frozen bound function: it has no
 * own `prototype` the proxy would have to report faithfully (so the replaced
 * statics do not break Proxy invariants), and nothing reachable through it is
 * mutable. Calls, `new`, `instanceof` (through `prototype`) and other statics
 * reach the host class.
 */
const facade = <T extends object>(host: T, overrides: Record<string, unknown>): T => standIn(() => host, overrides);

/**
 * A facade whose host class is `ready()`'s answer, asked for by every trap
 * that reaches the class (the first one may load it and freeze what it
 * returns); `typeof`, freezing and copying the stand-in do not.
 */
const standIn = <T extends object>(ready: () => T, overrides: Record<string, unknown>): T => {
  // The target: constructible (a bound function) with no own property at all, so that the proxy may
  // report the class's own properties (name, length, statics) as they are; it is never handed out,
  // and every trap that would change it refuses.
  // Its own functions are shared as the class is: frozen (Buffer.from was writable behind the proxy).
  for (const value of Object.values(overrides)) if ((typeof value === 'function' || typeof value === 'object') && value !== null) harden(value);
  const target = function facade() {}.bind(null);
  delete (target as { name?: string }).name;
  delete (target as { length?: number }).length;
  const own = (key: PropertyKey): PropertyDescriptor | undefined => {
    const descriptor = Reflect.getOwnPropertyDescriptor(ready(), key);
    if (typeof key === 'string' && key in overrides) return { value: overrides[key], writable: false, enumerable: descriptor?.enumerable ?? false, configurable: true };
    return descriptor && { ...descriptor, configurable: true };
  };
  return new Proxy(target as unknown as T, {
    get: (_target, key) => (typeof key === 'string' && key in overrides ? overrides[key] : Reflect.get(ready(), key)),
    has: (_target, key) => Reflect.has(ready(), key),
    ownKeys: () => [...new Set([...Reflect.ownKeys(ready()), ...Object.keys(overrides)])],
    getOwnPropertyDescriptor: (_target, key) => own(key),
    apply: (_target, thisArg, args) => Reflect.apply(ready() as unknown as (...a: unknown[]) => unknown, thisArg, args),
    construct: (_target, args, newTarget) => {
      const host = ready() as unknown as new (...a: unknown[]) => object;
      return Reflect.construct(host, args, newTarget === _target ? host : newTarget);
    },
    set: () => false,
    defineProperty: () => false,
    deleteProperty: () => false,
    setPrototypeOf: () => false,
    preventExtensions: () => false,
  });
};

/**
 * The web classes that read the host's clock, made per service:
 * `Event#timeStamp` is the recorded monotonic clock at construction,
 * `AbortSignal.timeout(ms)` runs on the service's recorded timers, and a
 * `File`'s default `lastModified` is the recorded wall clock.
 */
export const clockedWeb = (
  perfNow: () => number,
  setTimeout: (fn: () => void, ms: number) => unknown,
  now: () => number,
): { Event: typeof Event; AbortSignal: typeof AbortSignal; File: typeof File } => {
  // A File made without lastModified takes the recorded wall clock (Node reads the host's).
  class GuestFile extends File {
    constructor(bits: ConstructorParameters<typeof File>[0], name: string, options?: FilePropertyBag) {
      super(bits, name, { ...options, lastModified: options?.lastModified ?? now() });
    }
  }
  Object.defineProperty(GuestFile, 'name', { value: 'File' });
  harden(GuestFile);
  class GuestEvent extends Event {
    readonly #timeStamp = perfNow();
    get timeStamp(): number {
      return this.#timeStamp;
    }
  }
  nameAs(GuestEvent, 'Event', false);
  harden(GuestEvent);
  const timeout = (ms: number): AbortSignal => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), ms);
    return controller.signal;
  };
  return { Event: GuestEvent as typeof Event, AbortSignal: facade(AbortSignal, { timeout }), File: GuestFile as typeof File };
};

/**
 * A service's `Intl.DateTimeFormat`: `format()` and `formatToParts()`
 * without a date format the recorded wall clock (`now`), where Node's read
 * the host's. Callable with or without `new`, as Node's; instances are
 * `instanceof` it.
 */
export const clockedDateTimeFormat = (now: () => number): typeof Intl.DateTimeFormat => {
  const Host = Intl.DateTimeFormat;
  class GuestDateTimeFormat extends Host {
    formatToParts(date?: Date | number): Intl.DateTimeFormatPart[] {
      return super.formatToParts(date === undefined ? now() : date);
    }
  }
  // `format` is an accessor that returns a bound function (ECMA-402), so it stays one.
  const hostFormat = Object.getOwnPropertyDescriptor(Host.prototype, 'format')?.get as (this: Intl.DateTimeFormat) => (date?: Date | number) => string;
  Object.defineProperty(GuestDateTimeFormat.prototype, 'format', {
    get(this: Intl.DateTimeFormat) {
      const format = hostFormat.call(this);
      return (date?: Date | number) => format(date === undefined ? now() : date);
    },
    enumerable: false,
    configurable: true,
  });
  const DateTimeFormat = function DateTimeFormat(locales?: string | string[], options?: Intl.DateTimeFormatOptions) {
    return new GuestDateTimeFormat(locales, options);
  } as unknown as typeof Intl.DateTimeFormat;
  Object.defineProperties(DateTimeFormat, {
    prototype: { value: GuestDateTimeFormat.prototype, writable: false, enumerable: false, configurable: false },
    supportedLocalesOf: { value: Host.supportedLocalesOf, writable: true, enumerable: false, configurable: true },
  });
  Object.defineProperty(GuestDateTimeFormat.prototype, 'constructor', { value: DateTimeFormat, writable: true, enumerable: false, configurable: true });
  return harden(DateTimeFormat);
};
