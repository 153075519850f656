/**
 * `WebAssembly` inside a service: the host's namespace and classes (hardened,
 * as every shared intrinsic is), except that what V8 does asynchronously is
 * done at once. `compile`, `instantiate` and their streaming forms compile on
 * V8's background threads and settle whenever that is done, a moment no log
 * entry places (a restore would settle them elsewhere among the service's
 * turns). Here they compile with the synchronous constructors, `new
 * WebAssembly.Module(bytes)` and `new WebAssembly.Instance(module, imports)`,
 * and settle in a microtask, with Node's results and errors (their messages
 * name the function called, as V8's asynchronous ones do). Compiling and
 * running a module is deterministic: its bytes come from the archive or a
 * recorded read, and it reaches nothing but its imports.
 *
 * Source: the WebAssembly JavaScript Interface (webassembly.github.io/spec/js-api)
 * and Web API (compileStreaming: a Response of type application/wasm).
 */

import { hardenHostValue } from './guest-errors.js';

/** The parts of the host's WebAssembly used here (the project's TypeScript libraries have no WebAssembly types). */
interface HostWasm {
  readonly Module: new (bytes: unknown) => object;
  readonly Instance: new (module: object, imports?: unknown) => object;
}
type Imports = unknown;
type Bytes = unknown;

/** `error` from a synchronous constructor, its message naming `api` as V8's asynchronous one does ("WebAssembly.compile(): ..."). */
const named = (error: unknown, api: string): unknown => {
  if (error instanceof Error && /^WebAssembly\.(?:Module|Instance)\(\): /.test(error.message)) {
    try {
      error.message = error.message.replace(/^WebAssembly\.(?:Module|Instance)\(\): /, `WebAssembly.${api}(): `);
    } catch {
      // a message that cannot be set: V8's own
    }
  }
  return error;
};

/** Run `make` now; its result or its error (named for `api`) settles the promise in a microtask. */
const settled = <T>(api: string, make: () => T): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    try {
      resolve(make());
    } catch (error) {
      reject(named(error, api));
    }
  });

/** The bytes of a Response (or a promise of one) as compileStreaming takes them: Node's checks of its type. */
const responseBytes = async (source: unknown, api: string): Promise<ArrayBuffer> => {
  const response = (await source) as Response;
  // The service's Response is its own class: what it can do, not which class it is.
  if (typeof response?.arrayBuffer !== 'function' || typeof response.headers?.get !== 'function') {
    throw new TypeError(`WebAssembly.${api}(): Argument 0 must be provided and must be a Response`);
  }
  const type = response.headers.get('content-type');
  if (type !== 'application/wasm') throw new TypeError(`WebAssembly response has unsupported MIME type '${type}'`);
  if (!response.ok) throw new TypeError(`WebAssembly response has status code ${response.status}`);
  return response.arrayBuffer();
};

/** The service's `WebAssembly`: shared by every service (nothing in it is mutable once hardened). */
let shared: object | undefined;

export const guestWebAssembly = (): object => {
  if (shared) return shared;
  const host = (globalThis as unknown as { WebAssembly: HostWasm }).WebAssembly;
  // Node's members as Node has them (not enumerable, Symbol.toStringTag 'WebAssembly').
  const wasm = Object.defineProperties({}, Object.getOwnPropertyDescriptors(host)) as Record<string | symbol, unknown>;
  const instantiate = (source: Bytes | object, imports?: Imports) =>
    settled('instantiate', () => {
      if (source instanceof host.Module) return new host.Instance(source, imports);
      const module = new host.Module(source);
      return { module, instance: new host.Instance(module, imports) };
    });
  const replacements: Record<string, (...args: never[]) => unknown> = {
    compile: (bytes: Bytes) => settled('compile', () => new host.Module(bytes)),
    instantiate,
    compileStreaming: async (source: unknown) => {
      const bytes = await responseBytes(source, 'compileStreaming');
      return settled('compile', () => new host.Module(bytes));
    },
    instantiateStreaming: async (source: unknown, imports?: Imports) => {
      const bytes = await responseBytes(source, 'instantiateStreaming');
      return instantiate(bytes, imports);
    },
  };
  for (const [name, fn] of Object.entries(replacements)) {
    const hostFn = (host as unknown as Record<string, (...a: unknown[]) => unknown>)[name];
    Object.defineProperty(fn, 'name', { value: name });
    Object.defineProperty(fn, 'length', { value: hostFn.length });
    Object.defineProperty(wasm, name, { ...Object.getOwnPropertyDescriptor(host, name), value: fn });
  }
  // Its error classes extend the host's own Error, which harden would freeze (stackTraceLimit with it):
  // hardenHostValue moves them onto the shared Error first, as it does Node's error classes. A shared memory's
  // buffer is a SharedArrayBuffer, a global services do not get, so lockdown never froze it (found by the
  // adversarial review: one service planted on its prototype what another, and the host, then saw).
  hardenHostValue(SharedArrayBuffer);
  shared = hardenHostValue(wasm);
  return shared;
};
