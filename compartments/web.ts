/**
 * Deterministic web and Node globals, offered as they are. They are host
 * objects, so they are hardened first: a service cannot change them for the
 * host or for other services. What cannot be made deterministic is refused
 * with an error that says why.
 */
import { Buffer as HostBuffer } from 'node:buffer';
import { refusedConstructor } from './errors.js';

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
    Headers,
    DOMException,
  };
  // SES no longer shares the float typed arrays with compartments; Intl is
  // as deterministic as the pinned locale and time zone (see lockdown.ts).
  // Intl's constructors are the host's: frozen here; its namespace object is each service's own (endowments.ts).
  for (const value of Object.values(Object.getOwnPropertyDescriptors(Intl))) if (typeof value.value === 'function') harden(value.value);
  const more: Record<string, unknown> = { Float32Array, Float64Array };
  const float16 = (globalThis as Record<string, unknown>).Float16Array;
  if (typeof float16 === 'function') more.Float16Array = float16;
  for (const value of Object.values(classes)) harden(value);
  shared = {
    ...classes,
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
  bufferFacade ??= facade(HostBuffer, {
    allocUnsafe: HostBuffer.alloc,
    allocUnsafeSlow: HostBuffer.alloc,
    from: (value: unknown, ...rest: unknown[]) =>
      isArrayBufferLike(value) ? HostBuffer.from(value as ArrayBuffer, ...(rest as [number, number])) : unpooled(HostBuffer.from(value as string, ...(rest as [BufferEncoding]))),
    concat: (list: readonly Uint8Array[], totalLength?: number) => unpooled(HostBuffer.concat(list, totalLength)),
  });
  return bufferFacade;
};

/**
 * A read-only stand-in for a host class (frozen by lockdown) with some of its
 * statics replaced. The proxy's target is an arrow function: it has no own
 * properties the proxy would have to report faithfully, so the replaced
 * statics do not break Proxy invariants. Calls, `instanceof` (through
 * `prototype`) and other statics reach the host class; `new` is not supported.
 */
const facade = <T extends object>(host: T, overrides: Record<string, unknown>): T =>
  new Proxy((() => {}) as unknown as T, {
    get: (_target, key) => (typeof key === 'string' && key in overrides ? overrides[key] : Reflect.get(host, key)),
    has: (_target, key) => Reflect.has(host, key),
    apply: (_target, thisArg, args) => Reflect.apply(host as unknown as (...a: unknown[]) => unknown, thisArg, args),
    set: () => false,
    defineProperty: () => false,
    deleteProperty: () => false,
    setPrototypeOf: () => false,
  });

/**
 * The two web classes that read the host's clock, made per service:
 * `Event#timeStamp` is the recorded monotonic clock at construction, and
 * `AbortSignal.timeout(ms)` runs on the service's recorded timers.
 */
export const clockedWeb = (
  perfNow: () => number,
  setTimeout: (fn: () => void, ms: number) => unknown,
): { Event: typeof Event; AbortSignal: typeof AbortSignal } => {
  class GuestEvent extends Event {
    readonly #timeStamp = perfNow();
    get timeStamp(): number {
      return this.#timeStamp;
    }
  }
  harden(GuestEvent);
  const timeout = (ms: number): AbortSignal => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), ms);
    return controller.signal;
  };
  return { Event: GuestEvent as typeof Event, AbortSignal: facade(AbortSignal, { timeout }) };
};
