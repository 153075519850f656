/**
 * Deterministic web and Node globals, offered as they are. They are host
 * objects, so they are hardened first: a service cannot change them for the
 * host or for other services. What cannot be made deterministic is refused
 * with an error that says why.
 */
import { Blob as HostBlob, Buffer as HostBuffer } from 'node:buffer';
import { inspect as nodeInspect } from 'node:util';
import { determinismViolation, nameAs } from './errors.js';
import { GuestReadableStream, readyStreams } from './readable-stream.js';
import { hardenSharedInternals } from './host-internals.js';
import { hardenHostValue, overridableConstructor } from './guest-errors.js';
import { laterError, validateUint32 } from './node-style-errors.js';
import { deterministicWeakRefs } from './weak.js';
import { clonedAsHostClass } from './structured-clone.js';
import { branded } from '../replay-log/index.js';
import { likeHost, likeHostPrototype } from './host-shape.js';

let shared: Record<string, unknown> | undefined;

/** Give `proto[key]` another value, its other attributes kept: a host method replaced before the class is frozen. */
const redefine = (proto: object, key: PropertyKey, value: unknown): void => {
  Object.defineProperty(proto, key, { ...Object.getOwnPropertyDescriptor(proto, key), value });
};

/**
 * WebIDL's `[Clamp] long long` (https://webidl.spec.whatwg.org/#abstract-opdef-converttoint):
 * NaN is 0, the value clamped to the range and rounded half to even.
 */
const clampLongLong = (value: unknown): number => {
  const x = +(value as number); // ToNumber: a BigInt or a Symbol throws a TypeError, as WebIDL's conversion does
  if (Number.isNaN(x)) return 0;
  const clamped = Math.min(Math.max(x, -Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER);
  const floor = Math.floor(clamped);
  const rounded = clamped - floor > 0.5 || (clamped - floor === 0.5 && floor % 2 !== 0) ? floor + 1 : floor;
  return rounded === 0 ? 0 : rounded;
};

/**
 * Blob.prototype.slice with its bounds converted as the File API says
 * (`[Clamp] long long`), before Node's: Node 20's passes a bound that is
 * not a number (`blob.slice('a')`, NaN) to its native code, whose assertion
 * ends the process (found by the adversarial review: a service's bad
 * argument took the host and every service down). The Blob class is the
 * host's, shared with the host: changed once, before anything freezes it.
 */
const guardBlobSlice = (): void => {
  const proto = HostBlob.prototype as unknown as Record<string, unknown>;
  if (Object.isFrozen(proto)) return;
  const original = proto.slice as (this: unknown, start?: number, end?: number, contentType?: string) => Blob;
  const slice = function slice(this: unknown, ...args: unknown[]): Blob {
    const bounds = args.slice(0, 2).map(bound => (bound === undefined ? undefined : clampLongLong(bound)));
    return Reflect.apply(original, this, [...bounds, ...args.slice(2)]);
  };
  Object.defineProperty(slice, 'length', { value: original.length });
  redefine(proto, 'slice', slice);
};
guardBlobSlice();

/**
 * Blob#stream, which hands out a ReadableStream of Node's, after
 * readyStreams (readable-stream.ts): a Blob is no stream class, and a
 * service that has one can reach the stream internals through it. Changed
 * on the host's class once, before anything freezes it.
 */
const guardBlobStream = (): void => {
  const proto = HostBlob.prototype as unknown as Record<string, unknown>;
  if (Object.isFrozen(proto)) return;
  const original = proto.stream as (this: unknown) => ReadableStream;
  const inTurns = blobStreamInTurns();
  const stream = function stream(this: unknown): ReadableStream {
    readyStreams();
    return inTurns?.(this) ?? Reflect.apply(original, this, []);
  };
  redefine(proto, 'stream', stream);
};

/** The native reader of a Blob's bytes (Node's internal `blob[kHandle].getReader()`). */
interface BlobReader {
  pull(callback: (status: number, buffer?: ArrayBuffer) => void): void;
  setWakeup?: unknown;
}

/**
 * Blob#stream as Node 20 and 22 make it (lib/internal/blob.js), for a Node
 * whose own waits for the event loop between two reads: from Node 24 its
 * reader (with `setWakeup`) goes on in a `setImmediate`, outside the turn
 * of the service that reads, so the chunks arrived at build time in one
 * order of the service's deliveries and at replay in another (a restore
 * on Node 24 of any service reading a Blob's stream diverged). Here the
 * next read is a microtask, as in Node 20: the reads stay in the turn.
 * Undefined on a Node whose own is that already; the function returns
 * undefined for what is not a Blob (Node's then throws its
 * ERR_INVALID_THIS).
 */
const blobStreamInTurns = (): ((blob: unknown) => ReadableStream | undefined) | undefined => {
  const handleKey = Object.getOwnPropertySymbols(new HostBlob([])).find(symbol => symbol.description === 'kHandle');
  if (handleKey === undefined) return undefined;
  const handleOf = (blob: unknown): { getReader(): BlobReader } | undefined =>
    typeof blob === 'object' && blob !== null ? ((blob as Record<symbol, { getReader(): BlobReader } | undefined>)[handleKey] ?? undefined) : undefined;
  const probe = handleOf(new HostBlob([]))?.getReader();
  if (typeof probe?.setWakeup !== 'function') return undefined;
  const HostReadableStream = ReadableStream;
  return blob => {
    const handle = handleOf(blob);
    if (handle === undefined || !(blob instanceof HostBlob)) return undefined;
    const reader = handle.getReader();
    let pendingPulls: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
    return new HostReadableStream(
      {
        type: 'bytes',
        pull(controller: { close(): void; enqueue(chunk: Uint8Array): void; error(error: unknown): void; byobRequest?: { respond(bytes: number): void } | null; desiredSize: number | null }) {
          return new Promise<void>((resolve, reject) => {
            pendingPulls.push({ resolve, reject });
            const readNext = (): void => {
              reader.pull((status, buffer) => {
                // Cancelled meanwhile: the result is of no use.
                if (pendingPulls.length === 0) return;
                if (status === 0) {
                  controller.close();
                  controller.byobRequest?.respond(0);
                  pendingPulls.shift()?.resolve();
                  return;
                }
                if (status < 0 || status === 2) {
                  // A part that is not in memory (a file's): unreadable here, as Node 20 says when a read fails.
                  const error = new DOMException('The blob could not be read', 'NotReadableError');
                  const pending = pendingPulls.shift();
                  controller.error(error);
                  pending?.reject(error);
                  return;
                }
                if (buffer !== undefined && buffer.byteLength !== 0) controller.enqueue(new Uint8Array(buffer));
                queueMicrotask(() => {
                  if ((controller.desiredSize ?? 0) < 0) {
                    pendingPulls.shift()?.resolve();
                    return;
                  }
                  readNext();
                });
              });
            };
            readNext();
          });
        },
        cancel(reason: unknown) {
          for (const pending of pendingPulls) pending.reject(reason);
          pendingPulls = [];
        },
      } as unknown as ConstructorParameters<typeof ReadableStream>[0],
      // No reads before the first read() (Node's highWaterMark 0); a byte stream takes no size function.
      { highWaterMark: 0 } as ConstructorParameters<typeof ReadableStream>[1],
    ) as ReadableStream;
  };
};
guardBlobStream();

/**
 * The host classes on whose instances Node's own code assigns
 * `constructor`, each made an override accessor (overridableConstructor)
 * before anything freezes them: Node makes a Blob (createBlob, every
 * `blob.slice()`) or a transferable web stream (newReadableStream...) with
 * an internal constructor, then writes `stream.constructor =
 * ReadableStream`; from Node 24 on that object's prototype is the public
 * class's own, whose frozen data property made the assignment throw (a
 * service's Blob#slice, Response#body, stream pipes: every restore on Node
 * 24 failed). Found by listing the `.constructor = ` writes of Node 20, 22
 * and 24's own modules; RecordableHistogram, the only other, is not given
 * to services. On every line: Node 22's stream writes meet it where its
 * Blob's do not, so no probe of one tells for the others. The cost: their
 * `constructor` reads as an accessor in Object.getOwnPropertyDescriptor
 * (docs/environment.md).
 */
const overridableConstructors = (): void => {
  const host = globalThis as Record<string, unknown>;
  for (const klass of [HostBlob, host.ReadableStream, host.WritableStream, host.TransformStream]) {
    const proto = (klass as { prototype?: object } | undefined)?.prototype;
    if (proto && !Object.isFrozen(proto)) overridableConstructor(proto, klass);
  }
};
overridableConstructors();

/**
 * Node's web streams and AbortSignal are transferable (structuredClone with
 * `transfer`, postMessage): their symbol-keyed transfer methods make a
 * MessageChannel, whose ports (and their shared prototypes) a service would
 * then hold, and whose messages arrive on the host's event loop, outside the
 * service's turns (found by the adversarial reviews: a stream's, then
 * `signal[Symbol(messaging_transfer_list_symbol)]()`, called directly, gave
 * a host MessagePort, whose prototype's postMessage the host's module
 * loader hooks use). Inside a process that runs services these methods
 * throw a DataCloneError instead; changed on the host's classes once,
 * before they are frozen.
 */
const refuseTransfer = (): void => {
  const what: Record<string, string> = {
    ReadableStream: 'its chunks',
    WritableStream: 'its chunks',
    TransformStream: 'its chunks',
    AbortSignal: 'its abort',
  };
  for (const [name, carried] of Object.entries(what)) {
    const proto = ((globalThis as Record<string, unknown>)[name] as { prototype?: object } | undefined)?.prototype;
    if (proto === undefined || Object.isFrozen(proto)) continue;
    for (const symbol of Object.getOwnPropertySymbols(proto)) {
      if (!/^Symbol\(messaging_(?:transfer|transfer_list|deserialize)_symbol\)$/.test(String(symbol))) continue;
      const refuse = function refuse(): never {
        throw new DOMException(`${/^[AEIOU]/.test(name) ? 'an' : 'a'} ${name} cannot be transferred in a process that runs services: ${carried} would arrive over a MessagePort, outside the service's turns`, 'DataCloneError');
      };
      redefine(proto, symbol, refuse);
    }
  }
};
refuseTransfer();

/** The service's recorded clock, read once when its abort began (withEventStamps), if an abort is being dispatched. */
let stampTime: number | undefined;
/** The timeStamp of the events Node made while a service's abort was dispatched: the service's clock then. */
const eventStamps = new WeakMap<object, number>();

/**
 * Which time stamps the events dispatched until the next call (undefined: Node's), and what it
 * replaced: one reading for a whole abort, however many signals follow it (AbortSignal.any keeps
 * its followers weakly, so how many are dispatched to depends on the host's garbage collection).
 */
const stampWith = (time: number | undefined): number | undefined => {
  const outer = stampTime;
  stampTime = time;
  return outer;
};

/**
 * Run `abort` so that the events Node makes and dispatches meanwhile (a
 * signal's 'abort', and those of the signals following it, AbortSignal.any)
 * have `clock` as their `timeStamp`: a service's abort (its
 * AbortSignal.timeout) with the service's recorded clock, where Node stamps
 * them with the host's performance.now(), which a replay does not repeat
 * (found by the adversarial review: a listener that kept `event.timeStamp`
 * held another value after a restore, silently). `undefined` for an abort
 * of the host's own (its fetch stopped when a service aborts it, at build
 * time only): its events reach no service, and reading the service's clock
 * for them would make the build read it more often than a replay.
 */
export const withEventStamps = <T>(clock: (() => number) | undefined, abort: () => T): T => {
  const outer = stampWith(clock?.());
  try {
    return abort();
  } finally {
    stampWith(outer);
  }
};

/** EventTarget#dispatchEvent stamps an event it dispatches within withEventStamps; Event#timeStamp answers that stamp. */
const guardEventStamps = (): void => {
  const targetProto = EventTarget.prototype as unknown as Record<string, unknown>;
  const eventProto = Event.prototype as unknown as Record<string, unknown>;
  if (Object.isFrozen(targetProto) || Object.isFrozen(eventProto)) return;
  const dispatch = targetProto.dispatchEvent as (this: unknown, ...args: unknown[]) => boolean;
  const dispatchEvent = function dispatchEvent(this: unknown, ...args: unknown[]): boolean {
    const [event] = args;
    if (stampTime !== undefined && typeof event === 'object' && event !== null && !eventStamps.has(event)) eventStamps.set(event, stampTime);
    return Reflect.apply(dispatch, this, args);
  };
  Object.defineProperty(dispatchEvent, 'length', { value: dispatch.length });
  redefine(targetProto, 'dispatchEvent', dispatchEvent);
  const descriptor = Object.getOwnPropertyDescriptor(eventProto, 'timeStamp') as PropertyDescriptor;
  const hostStamp = descriptor.get as (this: unknown) => number;
  const timeStamp = {
    get timeStamp(): number {
      const stamped = eventStamps.get(this as object);
      return stamped === undefined ? Reflect.apply(hostStamp, this, []) : stamped;
    },
  };
  Object.defineProperty(eventProto, 'timeStamp', { ...descriptor, get: Object.getOwnPropertyDescriptor(timeStamp, 'timeStamp')?.get });
  // Node's inspect of an Event prints its internal stamp (the host's clock), not timeStamp: a service that printed
  // an Event held another text after a restore, which diverged (found by the fidelity review). As Node's
  // (lib/internal/event_target.js), with timeStamp read through the getter above (a service's Event: its own).
  const custom = Symbol.for('nodejs.util.inspect.custom');
  if (typeof (eventProto as unknown as Record<symbol, unknown>)[custom] === 'function') {
    const inspectEvent = {
      [custom](this: Event, depth: number, options: Record<string, unknown>, inspect: (value: unknown, options: object) => string = nodeInspect) {
        const name = (this.constructor as { name?: unknown } | undefined)?.name;
        if (depth < 0) return name;
        const opts = { ...options, depth: Number.isInteger(options?.depth) ? (options.depth as number) - 1 : options?.depth };
        return `${String(name)} ${inspect({ type: this.type, defaultPrevented: this.defaultPrevented, cancelable: this.cancelable, timeStamp: this.timeStamp }, opts)}`;
      },
    }[custom];
    redefine(eventProto, custom, inspectEvent);
  }
};
guardEventStamps();

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
  // SES leaves SharedArrayBuffer out of compartments (with Atomics, a timer for side channels across
  // threads); a service has no threads, and packages read it as they load (webidl-conversions 7+, so
  // whatwg-url, jsdom and the mongodb driver: `SharedArrayBuffer.prototype`), so it has the host's, frozen
  // (its prototype is the one a shared WebAssembly memory's buffer has). Atomics stays absent: waitAsync
  // settles on the host's clock.
  const more: Record<string, unknown> = { Float32Array, Float64Array, SharedArrayBuffer: hardenHostValue(SharedArrayBuffer) };
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
    // Never collecting, so that the build and every replay agree (weak.ts).
    ...deterministicWeakRefs(),
  };
  return shared;
};

/**
 * The WHATWG stream classes of Node's globals (`stream/web`), the
 * deterministic ones: a service's globals of these names are lazy, as
 * Node's are, and reading one first readies the streams (readyStreams).
 */
export const STREAM_GLOBALS: readonly string[] = [
  'ReadableStream', 'ReadableStreamDefaultReader', 'ReadableStreamBYOBReader', 'ReadableStreamBYOBRequest', 'ReadableByteStreamController',
  'ReadableStreamDefaultController', 'WritableStream', 'WritableStreamDefaultWriter', 'WritableStreamDefaultController', 'TransformStream',
  'TransformStreamDefaultController', 'ByteLengthQueuingStrategy', 'CountQueuingStrategy', 'TextEncoderStream', 'TextDecoderStream',
];

/** The classes of STREAM_GLOBALS that this Node has, hardened. */
export const webStreams = (): Record<string, unknown> => {
  const out: Record<string, unknown> = {};
  for (const name of STREAM_GLOBALS) {
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
 * (iterators of Headers and URLSearchParams, a Blob's native handle,
 * Intl.Segmenter's segments): their prototypes are the host's too, shared
 * with the host's own fetch and streams. Each is frozen once, found from a
 * sample object, walking up its prototype chain: here for the cheap ones,
 * on first use for the web streams (readyStreams, readable-stream.ts),
 * Headers (hostHeaders) and Intl.Segmenter (guestSegmenter).
 */
const hardenReturnedPrototypes = (): void => {
  // What a ReadableStream hands the code that makes or reads it: its
  // controllers, readers and BYOB requests (Node's globals); what they share inside, readyStreams.
  for (const name of ['ReadableStreamDefaultController', 'ReadableByteStreamController', 'ReadableStreamDefaultReader', 'ReadableStreamBYOBReader', 'ReadableStreamBYOBRequest']) {
    const hostClass = (globalThis as Record<string, unknown>)[name];
    if (typeof hostClass === 'function') harden(hostClass);
  }
  // Everything these share with the host's own objects of the same classes, their internals included
  // (a Blob's native handle, a TransformStream's internal readable and writable, a TextDecoder's ICU
  // converter, the streams' algorithms, an AbortSignal.any's set of sources): host-internals.ts.
  hardenSharedInternals([
    () => new URLSearchParams('a=1').entries(),
    () => new URLSearchParams('a=1')[Symbol.iterator](),
    () => new URL('http://x/?a=1'),
    () => new Blob(['x']),
    () => new Blob([new Blob(['x'])]).slice(1),
    () => new File(['x'], 'n'),
    () => new TextEncoder(),
    () => new TextDecoder(),
    () => new TextDecoder('utf-8', { fatal: true }),
    () => new TextDecoder('utf-16le'),
    () => new TextDecoder('latin1'),
    () => {
      const controller = new AbortController();
      controller.signal.addEventListener('abort', () => {});
      return [controller, AbortSignal.any([controller.signal]), AbortSignal.abort()];
    },
    () => {
      const target = new EventTarget();
      target.addEventListener('x', () => {});
      return [target, new Event('x'), new DOMException('x')];
    },
  ]);
};

let lateInternals: Promise<void> | undefined;

/**
 * Harden what Node's streams make only a turn after they are asked to:
 * `pipeTo`'s read request (its internal PipeToReadableStreamReadRequest,
 * which every piped read of the host's calls), requested once the pipe's
 * writer is ready. Resolves when done; once per process. Every service
 * waits for it before it is evaluated (lib/service.ts), as a service could
 * otherwise start a pipe and reach the class before the host froze it.
 */
export const hardenLateInternals = (): Promise<void> =>
  (lateInternals ??= (async () => {
    const pipe = () => {
      const source = new ReadableStream();
      void source.pipeTo(new WritableStream()).catch(() => {});
      return source;
    };
    // A `for await` over a stream: its read request exists only once the read is pending, a turn later
    // (found by the adversarial review: one service hooked its chunk handler and read every chunk read so).
    const iterated = () => {
      const source = new ReadableStream();
      void (source.values() as AsyncIterator<unknown>).next().catch(() => {});
      return source;
    };
    const samples = [pipe(), pipe()];
    const iterations = [iterated(), iterated()];
    await new Promise(resolve => setImmediate(resolve));
    let next = 0;
    let nextIteration = 0;
    hardenSharedInternals([() => samples[next++], () => iterations[nextIteration++]]);
  })());

let hostHeadersClass: typeof Headers | undefined;

/** Headers that cannot be changed (markImmutable): undici's 'immutable' guard. */
const immutableHeaders = new WeakSet<object>();

/**
 * Mark `headers` immutable, as undici guards the headers of a fetched
 * response, Response.error() and Response.redirect(): append, set and delete
 * throw TypeError 'immutable', however they are called
 * (Headers.prototype.set.call(headers, ...) too). It stays an ordinary
 * Headers (its prototype is Headers.prototype).
 */
export const markImmutable = (headers: Headers): Headers => {
  immutableHeaders.add(headers);
  return headers;
};

/**
 * Headers.prototype's append, set and delete, each first refusing a marked
 * Headers (before the class is frozen; named and sized as the originals;
 * any other Headers, the host's own included, is handled as before).
 */
const guardMutators = (proto: Record<string, unknown>): void => {
  for (const name of ['append', 'set', 'delete']) {
    const original = proto[name] as (...args: unknown[]) => unknown;
    const guarded = {
      [name](this: object, ...args: unknown[]): unknown {
        if (immutableHeaders.has(this)) throw new TypeError('immutable');
        return Reflect.apply(original, this, args);
      },
    }[name];
    Object.defineProperty(guarded, 'length', { value: original.length });
    redefine(proto, name, guarded);
  }
};

/**
 * Headers.prototype.forEach without undici's default receiver: undici's
 * `forEach(callbackfn, thisArg = globalThis)` called a service's callback
 * with the host's global object (its `process`, every builtin) as `this`.
 * The callback gets `thisArg`, undefined when none is given (a service's
 * code is strict: its own global is not one object, each package
 * compartment has its own). The same checks and messages as undici's,
 * then the entries in order, as its iterator gives them.
 */
const guardForEach = (proto: Record<string, unknown>): void => {
  const entries = proto.entries as (this: unknown) => Iterable<[string, string]>;
  const forEach = function forEach(this: unknown, callbackfn: unknown, thisArg: unknown = undefined): void {
    const iterator = Reflect.apply(entries, this, []); // undici's brand check: TypeError 'Illegal invocation'
    if (arguments.length < 1) throw new TypeError('Headers.forEach: 1 argument required, but 0 found.');
    if (typeof callbackfn !== 'function') throw new TypeError("Failed to execute 'forEach' on 'Headers': parameter 1 is not of type 'Function'.");
    for (const [key, value] of iterator) Reflect.apply(callbackfn, thisArg, [value, key, this]);
  };
  redefine(proto, 'forEach', forEach);
};

/**
 * The host's Headers, frozen with the prototype of its iterators, on first
 * use: Node loads it (undici) only when it is first read, which costs more
 * than a small restore's whole replay, and most services never touch a
 * header. Everything that hands a Headers to a service goes through here.
 */
export const hostHeaders = (): typeof Headers => {
  if (hostHeadersClass) return hostHeadersClass;
  const headers = globalThis.Headers;
  guardMutators(headers.prototype as unknown as Record<string, unknown>);
  guardForEach(headers.prototype as unknown as Record<string, unknown>);
  harden(headers);
  hardenSharedInternals([() => new headers({ a: '1' }), () => new headers({ a: '1' }).entries()]);
  // structuredClone treats a service's Headers as Node's clone treats Node's (refused since Node 22).
  const has = headers.prototype.has as (this: unknown, name: string) => boolean;
  clonedAsHostClass({ prototype: headers.prototype, is: value => branded(has as (this: unknown, ...args: never[]) => unknown, value, ['a']), sample: () => new headers() });
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
      hardenSharedInternals([
        () => new host().segment('ab'),
        () => new host().segment('ab')[Symbol.iterator](),
      ]);
      segmenterReady = true;
    }
    return host;
  }, {});
};

let bufferFacade: typeof HostBuffer | undefined;

/** A Buffer that owns its memory: small Buffers otherwise share Node's 8 KB pool, whose other bytes are the host's. */
export const unpooled = (buffer: Buffer): Buffer => {
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
  // Plain functions, as Node's are, with their names and lengths: `new Buffer.allocUnsafeSlow(n)` gives the Buffer
  // (cbor-x allocates so; arrows and methods cannot be constructed, found by the fidelity review). Zeroed, and
  // allocUnsafe with one parameter, so a second argument is not a fill as alloc's would be.
  const allocUnsafe = function allocUnsafe(size: number): Buffer {
    return HostBuffer.alloc(size);
  };
  const allocUnsafeSlow = function allocUnsafeSlow(size: number): Buffer {
    return HostBuffer.alloc(size);
  };
  const from = function from(value: unknown, encodingOrOffset?: unknown, length?: unknown): Buffer {
    const rest = [encodingOrOffset, length].slice(0, Math.max(0, arguments.length - 1));
    return isArrayBufferLike(value) ? HostBuffer.from(value as ArrayBuffer, ...(rest as [number, number])) : unpooled(HostBuffer.from(value as string, ...(rest as [BufferEncoding])));
  };
  const concat = function concat(list: readonly Uint8Array[], totalLength?: number): Buffer {
    return unpooled(HostBuffer.concat(list, totalLength));
  };
  const copyBytesFrom = function copyBytesFrom(view: unknown, offset?: unknown, length?: unknown): Buffer {
    return unpooled(Reflect.apply(HostBuffer.copyBytesFrom, HostBuffer, [view, offset, length].slice(0, arguments.length)) as Buffer);
  };
  bufferFacade = facade(HostBuffer, {
    allocUnsafe: harden(allocUnsafe),
    allocUnsafeSlow: harden(allocUnsafeSlow),
    from: harden(from),
    concat: harden(concat),
    copyBytesFrom: harden(copyBytesFrom),
  });
  // Buffer(...) called as a function (long deprecated): as Buffer.from / Buffer.alloc, never pooled.
  bufferFacade = new Proxy(bufferFacade, {
    apply: (_target, _this, args: unknown[]) => (typeof args[0] === 'number' ? HostBuffer.alloc(args[0]) : Reflect.apply(from, undefined, args)),
  });
  return bufferFacade;
};

let slowBuffer: ((size: number) => Buffer) | undefined;

/**
 * `buffer.SlowBuffer` (deprecated) as Node 20's: a function of one
 * parameter, callable with or without `new`, whose prototype chain is
 * Uint8Array's; its memory is zeroed, as allocUnsafeSlow's is here.
 */
export const guestSlowBuffer = (): ((size: number) => Buffer) => {
  if (slowBuffer) return slowBuffer;
  function SlowBuffer(size: number): Buffer {
    return HostBuffer.alloc(size);
  }
  Object.setPrototypeOf(SlowBuffer.prototype, Uint8Array.prototype);
  Object.setPrototypeOf(SlowBuffer, Uint8Array);
  slowBuffer = harden(SlowBuffer);
  return slowBuffer;
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

/** `value`, hardened (as a host value: classes moved off V8's own Error first) when it is an object not frozen yet. */
const hardenedValue = (value: unknown): unknown => {
  if (((typeof value === 'object' && value !== null) || typeof value === 'function') && !Object.isFrozen(value)) hardenHostValue(value);
  return value;
};

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
    // What the class hands out is hardened as it is handed out: a static getter's value too (Buffer[Symbol.species]
    // is Node's FastBuffer, whose re-parenting captured every Buffer made afterwards; found by the adversarial review).
    get: (_target, key) => (typeof key === 'string' && key in overrides ? overrides[key] : hardenedValue(Reflect.get(ready(), key))),
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

export { laterError };

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
): { Event: typeof Event; CustomEvent: typeof CustomEvent; AbortController: typeof AbortController; AbortSignal: typeof AbortSignal; File: typeof File } => {
  // A File made without lastModified takes the recorded wall clock (Node reads the host's). Node's
  // constructor reads `options.lastModified` once, after Blob has read the rest, and calls Date.now()
  // only when it is undefined: the options it is given answer that one read (inherited properties,
  // getters and a lastModified of null, which Node makes 0, pass as they are); missing arguments
  // throw Node's own error.
  class GuestFile extends File {
    // Two named parameters, as Node's (File.length is 2).
    constructor(bits: ConstructorParameters<typeof File>[0], name: string, ...rest: [FilePropertyBag?]) {
      const options = rest[0];
      if (arguments.length < 2 || (options !== undefined && options !== null && typeof options !== 'object' && typeof options !== 'function')) {
        super(...([bits, name, ...rest].slice(0, arguments.length) as [ConstructorParameters<typeof File>[0], string])); // Node's own TypeError
        return;
      }
      if (options === undefined || options === null) {
        super(bits, name, { lastModified: now() });
        return;
      }
      super(
        bits,
        name,
        new Proxy(options, {
          get(target, key) {
            const value: unknown = Reflect.get(target, key);
            return key === 'lastModified' && value === undefined ? now() : value;
          },
        }),
      );
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
  harden(likeHost(GuestEvent, Event));
  // Node's CustomEvent (a global since Node 19), on the service's Event: its timeStamp is recorded too.
  class GuestCustomEvent extends GuestEvent {
    readonly #detail: unknown;
    constructor(type: string, options?: { bubbles?: boolean; cancelable?: boolean; composed?: boolean; detail?: unknown }) {
      if (arguments.length === 0) {
        const missing = new TypeError('The "type" argument must be specified');
        Object.defineProperty(missing, 'code', { value: 'ERR_MISSING_ARGS', writable: true, enumerable: false, configurable: true });
        throw missing;
      }
      super(type, options);
      this.#detail = options?.detail ?? null;
    }
    get detail(): unknown {
      return this.#detail;
    }
  }
  nameAs(GuestCustomEvent, 'CustomEvent'); // tagged, as Node's CustomEvent.prototype is
  harden(likeHost(GuestCustomEvent, CustomEvent));
  const timeout = (ms: number): AbortSignal => {
    // As Node's: a bad delay throws, where the timer would have made it 1 ms (found by the fidelity review).
    validateUint32(ms, 'delay');
    const controller = new AbortController();
    setTimeout(() => withEventStamps(perfNow, () => controller.abort(laterError(new DOMException('The operation was aborted due to timeout', 'TimeoutError')))), ms);
    return controller.signal;
  };
  // Node's AbortController, its abort() dispatching with the service's clock stamped on the events (withEventStamps),
  // inline: one frame more than Node's in the stack of an error made by a listener (V8 keeps ten).
  const hostAbort = AbortController.prototype.abort;
  class GuestAbortController extends AbortController {
    abort(...args: unknown[]): void {
      const outer = stampWith(perfNow());
      try {
        Reflect.apply(hostAbort, this, args);
      } finally {
        stampWith(outer);
      }
    }
  }
  nameAs(GuestAbortController, 'AbortController', false);
  harden(GuestAbortController);
  return {
    Event: GuestEvent as typeof Event,
    CustomEvent: GuestCustomEvent as typeof CustomEvent,
    AbortController: GuestAbortController as typeof AbortController,
    AbortSignal: facade(AbortSignal, { timeout }),
    File: GuestFile as typeof File,
  };
};

/**
 * A service's `Intl.DateTimeFormat`: `format()` and `formatToParts()`
 * without a date format the recorded wall clock (`now`), where Node's read
 * the host's. Callable with or without `new`, as Node's; instances are
 * `instanceof` it. Its prototype inherits from Object.prototype, as Node's
 * does, and holds Node's members (the host's own functions, which read no
 * clock, but those two): not the host's prototype, whose `constructor`, the
 * host's class, formatted the host's clock (found by the adversarial review).
 * Instances are made by the host's constructor (they have its internal
 * slots), with this prototype.
 */
export const clockedDateTimeFormat = (now: () => number): typeof Intl.DateTimeFormat => {
  const Host = Intl.DateTimeFormat;
  const hostPrototype = Host.prototype;
  // `format` is an accessor that returns a bound function (ECMA-402), the same one at every read.
  const hostFormat = Object.getOwnPropertyDescriptor(hostPrototype, 'format')?.get as (this: Intl.DateTimeFormat) => (date?: Date | number) => string;
  const hostFormatToParts = hostPrototype.formatToParts;
  const boundFormats = new WeakMap<object, (date?: Date | number) => string>();
  // Called or constructed, as Node's (length 0); a subclass's `new` makes an instance of the subclass.
  const DateTimeFormat = function DateTimeFormat(this: unknown, ...args: [(string | string[])?, Intl.DateTimeFormatOptions?]) {
    return Reflect.construct(Host, args, new.target ?? DateTimeFormat) as Intl.DateTimeFormat;
  } as unknown as typeof Intl.DateTimeFormat;
  // Node's attributes (lockdown froze the host's: the copy is made writable and configurable, then hardened).
  const copied = Object.getOwnPropertyDescriptors(hostPrototype) as Record<PropertyKey, PropertyDescriptor>;
  for (const key of Reflect.ownKeys(copied)) {
    const descriptor = copied[key as string];
    if ('value' in descriptor) descriptor.writable = key !== Symbol.toStringTag;
    descriptor.configurable = true;
  }
  const prototype = Object.create(Object.prototype, copied) as Intl.DateTimeFormat;
  const members = {
    formatToParts(this: Intl.DateTimeFormat, date?: Date | number): Intl.DateTimeFormatPart[] {
      return Reflect.apply(hostFormatToParts, this, [date === undefined ? now() : date]) as Intl.DateTimeFormatPart[];
    },
    get format() {
      const self = this as unknown as Intl.DateTimeFormat;
      let bound = boundFormats.get(self);
      if (!bound) {
        const format = hostFormat.call(self);
        bound = (date?: Date | number) => format(date === undefined ? now() : date);
        Object.defineProperty(bound, 'name', { value: '' }); // anonymous, as ECMA-402's bound format
        boundFormats.set(self, bound);
      }
      return bound;
    },
  };
  const own = Object.getOwnPropertyDescriptors(members);
  Object.defineProperties(prototype, {
    constructor: { value: DateTimeFormat, writable: true, enumerable: false, configurable: true },
    formatToParts: { ...own.formatToParts, enumerable: false },
    format: { ...own.format, enumerable: false },
  });
  likeHostPrototype(prototype, hostPrototype);
  Object.defineProperties(DateTimeFormat, {
    prototype: { value: prototype, writable: false, enumerable: false, configurable: false },
    supportedLocalesOf: { value: Host.supportedLocalesOf, writable: true, enumerable: false, configurable: true },
  });
  return harden(DateTimeFormat);
};
