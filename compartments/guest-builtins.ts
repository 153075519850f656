/**
 * Node builtin modules that carry state, made per service.
 *
 * `events`, `stream` and `string_decoder` hand out classes that services
 * subclass and prototypes and statics that code writes to
 * (`EventEmitter.prototype.emit`, `EventEmitter.defaultMaxListeners`). The
 * host's own module objects must never reach a service: a service that
 * replaced the host's `EventEmitter.prototype.emit` would run its code the
 * next time the host emitted anything, with the host's objects as
 * arguments. So each service gets its own instances, evaluated inside a
 * compartment with the service's own globals (its recorded `process`,
 * timers, console), from pure-JavaScript ports of Node's modules:
 *
 * | module             | port (npm)                                     |
 * | ------------------ | ---------------------------------------------- |
 * | `events`           | `events` (Node's EventEmitter, browserify)     |
 * | `stream`, `stream/promises` | `readable-stream` 4 (Node's own streams)   |
 *
 * `string_decoder` is Node's own decoder behind a class of the service's
 * (string-decoder.ts): the port decoded a Uint8Array as the text of its
 * numbers.
 *
 * Each is built the first time the service imports it. Frames of their code
 * are named `node:membrane-snapshot/<package>/<file>`, so stacks do not
 * depend on where the library is installed.
 *
 * Known differences from Node 20's `events`: no `captureRejections` or
 * `EventEmitterAsyncResource`; `errorMonitor`, `setMaxListeners`,
 * `getEventListeners`, `getMaxListeners`, `addAbortListener` and `on` (the
 * async iterator get-stream reads responses with) are provided here, and
 * `once` is Node's (the port's takes no `signal`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import hostEvents from 'node:events';
import { abortError, invalidArgType, listenerError, nodeError, validateAbortSignal, validateFunction, validateNumber } from './node-style-errors.js';
import { addWebAdapters } from './stream-web.js';
import { installLazyGlobals } from './lazy-globals.js';
import { fixGlobals } from './fixed-globals.js';
import { makeStringDecoderModule } from './string-decoder.js';
import { likeHostAll } from './host-shape.js';

const hostRequire = createRequire(import.meta.url);

/** Where each port's package lives on this host, and its entry file (relative). */
const PORTS = {
  events: { pkg: 'events', entry: 'events.js' },
  stream: { pkg: 'readable-stream', entry: 'lib/stream.js' },
  'stream/promises': { pkg: 'readable-stream', entry: 'lib/stream/promises.js' },
} as const;

export type GuestBuiltinName = keyof typeof PORTS | 'string_decoder';
export const guestBuiltinNames = [...Object.keys(PORTS), 'string_decoder'] as GuestBuiltinName[];

const packageRoots = new Map<string, string>();
const packageRoot = (pkg: string): string => {
  let root = packageRoots.get(pkg);
  if (!root) {
    root = path.dirname(hostRequire.resolve(`${pkg}/package.json`));
    packageRoots.set(pkg, root);
  }
  return root;
};

/** The name under which a port's compartment finds nodeError (node-style-errors.ts): no service compartment has it. */
const NODE_ERROR = '__membraneSnapshotNodeError';

/**
 * Where a port does what Node 20's module does otherwise (found by the fidelity review), each fix applied
 * where its text is found (another version of the package is left as it is):
 * - readable-stream's errors are instances of a class of its own (`NodeError`, `code` on its prototype);
 *   Node's are instances of TypeError, RangeError or Error with `code` their own (Object.keys, JSON) and
 *   printed `TypeError [ERR_...]: ...`, as nodeError makes them.
 * - Node's streams take any TypedArray or DataView as a chunk (Stream._isArrayBufferView), the port only a
 *   Uint8Array, with another message.
 */
const SOURCE_FIXES: ReadonlyArray<[file: RegExp, find: string, replace: string]> = [
  [
    /[\\/]readable-stream[\\/]lib[\\/]ours[\\/]errors\.js$/,
    '      super(getMessage(code, message, args))\n    }',
    `      super(getMessage(code, message, args))\n      return ${NODE_ERROR}(Base, code, this.message)\n    }`,
  ],
  [
    /[\\/]readable-stream[\\/]lib[\\/]stream\.js$/,
    'Stream._uint8ArrayToBuffer = function',
    'Stream._isArrayBufferView = function isArrayBufferView(value) {\n  return ArrayBuffer.isView(value)\n}\nStream._uint8ArrayToBuffer = function',
  ],
  [/[\\/]readable-stream[\\/]lib[\\/]internal[\\/]streams[\\/](?:readable|writable)\.js$/, 'Stream._isUint8Array(chunk)', 'Stream._isArrayBufferView(chunk)'],
  [/[\\/]readable-stream[\\/]lib[\\/]internal[\\/]streams[\\/](?:readable|writable)\.js$/, "['string', 'Buffer', 'Uint8Array']", "['string', 'Buffer', 'TypedArray', 'DataView']"],
];

/** Sources are read once per process: every service evaluates the same text. */
const sources = new Map<string, string>();
const readSource = (file: string): string => {
  let text = sources.get(file);
  if (text === undefined) {
    text = fs.readFileSync(file, 'utf8');
    for (const [pattern, find, replace] of SOURCE_FIXES) if (pattern.test(file)) text = text.split(find).join(replace);
    sources.set(file, text);
  }
  return text;
};

const resolveFile = (candidate: string): string | undefined => {
  for (const file of [candidate, `${candidate}.js`, path.join(candidate, 'index.js')]) {
    try {
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // try the next candidate
    }
  }
  return undefined;
};

interface CjsModule {
  exports: unknown;
}

/**
 * One service's stateful builtins. `globals` are the service's globals (the
 * ports run with the service's `process`, timers and console); `exits` maps
 * the other modules the ports require (`buffer`, `process`, ...) to the
 * service's own instances of them.
 */
export const makeGuestBuiltins = (
  globals: Record<string, unknown>,
  exits: Readonly<Record<string, unknown>>,
): { load(name: GuestBuiltinName): unknown } => {
  let compartment: Compartment | undefined;
  const cache = new Map<string, CjsModule>();

  const evaluate = (file: string, pkg: string): CjsModule => {
    const cached = cache.get(file);
    if (cached) return cached;
    if (compartment === undefined) {
      compartment = new Compartment({ __options__: true, globals: { ...globals, [NODE_ERROR]: harden(nodeError) } } as never);
      installLazyGlobals(compartment.globalThis, globals); // the spread copies no lazy global (lazy-globals.ts)
      fixGlobals(compartment.globalThis);
    }
    const display = `node:membrane-snapshot/${pkg}/${path.relative(packageRoot(pkg), file).split(path.sep).join('/')}`;
    const functor = compartment.evaluate(`(function (exports, require, module, __filename, __dirname) { ${readSource(file)}\n})\n//# sourceURL=${display}\n`) as (
      ...args: unknown[]
    ) => void;
    const module: CjsModule = { exports: {} };
    cache.set(file, module); // before running: cycles see the module's current exports, as in Node
    const require = (specifier: string): unknown => {
      if (specifier.startsWith('.')) {
        const target = resolveFile(path.resolve(path.dirname(file), specifier));
        if (!target || !target.startsWith(packageRoot(pkg))) throw new Error(`Cannot find module '${specifier}' from ${display}`);
        return evaluate(target, pkg).exports;
      }
      const bare = specifier.replace(/^node:/, '').replace(/\/$/, '');
      if (bare in PORTS || bare === 'string_decoder') return load(bare as GuestBuiltinName);
      if (bare in exits) return exits[bare];
      throw new Error(`Cannot find module '${specifier}' from ${display}`);
    };
    functor.call(module.exports, module.exports, require, module, display, path.posix.dirname(display));
    return module;
  };

  const adapted = new WeakSet<object>();
  const shaped = new WeakSet<object>();
  let stringDecoder: unknown;
  const load = (name: GuestBuiltinName): unknown => {
    if (name === 'string_decoder') return (stringDecoder ??= likeHostAll(makeStringDecoderModule((exits.buffer as { Buffer: Parameters<typeof makeStringDecoderModule>[0] }).Buffer), hostRequire('node:string_decoder')));
    const { pkg, entry } = PORTS[name];
    const exports = evaluate(path.join(packageRoot(pkg), entry), pkg).exports;
    if (name === 'events') completeEvents(exports as EventEmitterClass, exits.util as { inspect?: (value: unknown) => string } | undefined);
    // Node's names and lengths, once, as soon as the module is made (before anything can harden it).
    if (!shaped.has(exports as object)) {
      shaped.add(exports as object);
      likeHostAll(exports as object, hostRequire(`node:${name}`));
    }
    if (name === 'stream' && !adapted.has(exports as object)) {
      adapted.add(exports as object);
      addWebAdapters(exports as Parameters<typeof addWebAdapters>[0], (exits.buffer as { Buffer: Parameters<typeof addWebAdapters>[1] }).Buffer);
    }
    return exports;
  };

  return { load };
};

interface EventEmitterClass {
  (): void;
  prototype: { listeners(name: unknown): unknown[]; getMaxListeners(): number; setMaxListeners(n: number): unknown };
  defaultMaxListeners: number;
  [key: string]: unknown;
}

/**
 * What Node 20's `events` has and the port lacks or does otherwise, on the
 * service's own EventEmitter: statics, the instance fields Node's `init`
 * sets (`Symbol(shapeMode)` and `Symbol(kCapture)`, which Node's inspect
 * prints), `listenerCount(name, listener)`, and the ERR_UNHANDLED_ERROR an
 * 'error' event that is not an Error throws with no listener.
 */
const completeEvents = (EventEmitter: EventEmitterClass, util: { inspect?: (value: unknown) => string } | undefined): void => {
  if (typeof EventEmitter.getEventListeners === 'function') return;
  const kShapeMode = Symbol('shapeMode');
  const kCapture = Symbol('kCapture');
  const proto = EventEmitter.prototype as unknown as Record<PropertyKey, unknown> & {
    emit: (this: unknown, type: unknown, ...args: unknown[]) => boolean;
  };
  proto[kCapture] = false;
  EventEmitter.init = function (this: Record<PropertyKey, unknown>) {
    if (this._events === undefined || this._events === (Object.getPrototypeOf(this) as Record<string, unknown>)._events) {
      this._events = Object.create(null);
      this._eventsCount = 0;
      this[kShapeMode] = false;
    } else {
      this[kShapeMode] = true;
    }
    this._maxListeners = this._maxListeners || undefined;
    this[kCapture] = proto[kCapture];
  };
  EventEmitter.captureRejectionSymbol = Symbol.for('nodejs.rejection');
  EventEmitter.usingDomains = false;
  proto.listenerCount = function listenerCount(this: { _events?: Record<PropertyKey, unknown> }, type: PropertyKey, listener?: unknown): number {
    const listeners = this._events?.[type] as undefined | ((...a: unknown[]) => unknown) | Array<{ listener?: unknown }>;
    if (typeof listeners === 'function') {
      if (listener != null) return listener === listeners || listener === (listeners as { listener?: unknown }).listener ? 1 : 0;
      return 1;
    }
    if (listeners === undefined) return 0;
    if (listener != null) return listeners.filter(each => each === listener || each.listener === listener).length;
    return listeners.length;
  };
  // errorMonitor: listeners that see 'error' events before the 'error' listeners (or the throw).
  const errorMonitor = Symbol('events.errorMonitor');
  EventEmitter.errorMonitor = errorMonitor;
  const emit = proto.emit;
  proto.emit = function (this: unknown, type: unknown, ...args: unknown[]) {
    const self = this as { _events?: Record<PropertyKey, unknown> };
    if (type === 'error') {
      emit.call(this, errorMonitor, ...args);
      const error = args[0];
      if (self._events?.error === undefined && !(error instanceof Error)) {
        // Node: new ERR_UNHANDLED_ERROR(inspect(er)), with the value as `context` (the port said "(undefined)" and had no code).
        let text: unknown;
        try {
          text = util?.inspect ? util.inspect(error) : String(error);
        } catch {
          text = error;
        }
        // One of Node's errors (nodeError): its stack reads `Error [ERR_UNHANDLED_ERROR]: ...` as Node's, where an
        // own toString left the stack's first line without the code (found by the fidelity hunt).
        const unhandled = nodeError(Error, 'ERR_UNHANDLED_ERROR', `Unhandled error. (${String(text)})`) as Error & { context: unknown };
        unhandled.context = error;
        throw unhandled;
      }
    }
    return emit.call(this, type, ...args);
  };
  const isEventTarget = (value: unknown): value is EventTarget => typeof (value as EventTarget | null)?.addEventListener === 'function' && !('listeners' in (value as object));
  EventEmitter.getEventListeners = (emitter: { listeners(name: unknown): unknown[] }, name: unknown) => {
    if (isEventTarget(emitter)) throw new TypeError('getEventListeners on an EventTarget is not supported inside a service');
    return emitter.listeners(name);
  };
  // An EventTarget's (an AbortSignal's) limit is Node's to keep: a number on the object (lib/events.js), read
  // and set with Node's own functions (found by the fidelity review: setMaxListeners(n, signal) threw).
  EventEmitter.getMaxListeners = (emitter: { getMaxListeners(): number }) => (isEventTarget(emitter) ? hostEvents.getMaxListeners(emitter) : emitter.getMaxListeners());
  EventEmitter.setMaxListeners = (n = EventEmitter.defaultMaxListeners, ...targets: Array<{ setMaxListeners(n: number): unknown }>) => {
    validateNumber(n, 'setMaxListeners', 0);
    if (targets.length === 0) EventEmitter.defaultMaxListeners = n;
    for (const target of targets) {
      if (isEventTarget(target)) hostEvents.setMaxListeners(n, target);
      else if (typeof target?.setMaxListeners !== 'function') throw invalidArgType('eventTargets', 'an instance of EventEmitter or EventTarget', target);
      else target.setMaxListeners(n);
    }
  };
  // Node's checks and messages where the port has its own ("must be of type Function", "a non-negative number").
  const portSetMaxListeners = proto.setMaxListeners as (this: unknown, n: number) => unknown;
  proto.setMaxListeners = function setMaxListeners(this: unknown, n: unknown) {
    validateNumber(n, 'setMaxListeners', 0);
    return Reflect.apply(portSetMaxListeners, this, [n]);
  };
  const checked = (name: string, method: (this: unknown, type: unknown, listener: unknown) => unknown) =>
    ({
      [name](this: unknown, type: unknown, listener: unknown) {
        validateFunction(listener, 'listener');
        return Reflect.apply(method, this, [type, listener]);
      },
    })[name];
  for (const name of ['addListener', 'prependListener', 'once', 'prependOnceListener', 'removeListener']) proto[name] = checked(name, proto[name] as (this: unknown, type: unknown, listener: unknown) => unknown);
  proto.on = proto.addListener;
  proto.off = proto.removeListener;
  EventEmitter.on = (emitter: Listenable, event: string | symbol, options: { signal?: AbortSignal; close?: readonly (string | symbol)[] } = {}) =>
    eventIterator(emitter, event, options);
  // The port's once() takes no options: once(emitter, name, { signal }) never settled where Node rejects with an AbortError.
  // Per service, as every function here: a shared one could be written by one service and read by another.
  EventEmitter.once = async function once(emitter: Target, name: string | symbol, options: { signal?: AbortSignal } = {}) {
    return eventOnce(emitter, name, options);
  };
  EventEmitter.addAbortListener = (signal: AbortSignal, listener: (event: Event) => void) => {
    if (signal.aborted) queueMicrotask(() => listener(new Event('abort')));
    else signal.addEventListener('abort', listener, { once: true });
    const dispose = (Symbol as { dispose?: symbol }).dispose ?? Symbol.for('nodejs.dispose');
    return { [dispose]: () => signal.removeEventListener('abort', listener) };
  };
};


/**
 * Node's AbortError, as events makes it (node-style-errors.ts), `cause`
 * the signal's reason. `later`: made in the signal's abort listener
 * (listenerError: its stack only as far as the service's own frames show).
 */
const abortErrorOf = (signal: AbortSignal | undefined, later = false): Error => {
  const error = abortError(signal?.reason);
  return later ? listenerError(error) : error;
};

type Target = Partial<Listenable> & {
  once?(event: string | symbol, listener: (...args: unknown[]) => void): unknown;
  addEventListener?(event: string | symbol, listener: (...args: unknown[]) => void, options?: object): unknown;
  removeEventListener?(event: string | symbol, listener: (...args: unknown[]) => void): unknown;
};

/**
 * Node 20's `events.once(emitter, name, { signal })`: a promise of the
 * arguments of the next `name` event (of an EventEmitter or an
 * EventTarget), rejected by an 'error' event of an EventEmitter, or with an
 * AbortError when `signal` aborts (at once if it already has).
 */
const eventOnce = async (emitter: Target, name: string | symbol, options: { signal?: AbortSignal } = {}): Promise<unknown[]> => {
  const signal = (options as { signal?: AbortSignal } | null | undefined)?.signal;
  validateAbortSignal(signal, 'options.signal');
  if (signal?.aborted) throw abortErrorOf(signal);
  const add = (target: Target, event: string | symbol, listener: (...args: unknown[]) => void) => {
    if (typeof target.on === 'function') (target.once as NonNullable<Target['once']>).call(target, event, listener);
    else if (typeof target.addEventListener === 'function') target.addEventListener(event, listener, { once: true });
    else throw invalidArgType('emitter', 'an instance of EventEmitter', target);
  };
  const remove = (target: Target, event: string | symbol, listener: (...args: unknown[]) => void) => {
    if (typeof target.removeListener === 'function') target.removeListener(event, listener);
    else if (typeof target.removeEventListener === 'function') target.removeEventListener(event, listener);
  };
  return new Promise((resolve, reject) => {
    const errorListener = (error: unknown) => {
      remove(emitter, name, resolver);
      if (signal) remove(signal as unknown as Target, 'abort', abortListener);
      reject(error);
    };
    const resolver = (...args: unknown[]) => {
      if (typeof emitter.removeListener === 'function') emitter.removeListener('error', errorListener);
      if (signal) remove(signal as unknown as Target, 'abort', abortListener);
      resolve(args);
    };
    const abortListener = () => {
      remove(emitter, name, resolver);
      remove(emitter, 'error', errorListener);
      reject(abortErrorOf(signal, true));
    };
    add(emitter, name, resolver);
    if (name !== 'error' && typeof emitter.once === 'function') emitter.once('error', errorListener);
    if (signal) add(signal as unknown as Target, 'abort', abortListener);
  });
};

interface Listenable {
  on(event: string | symbol, listener: (...args: unknown[]) => void): unknown;
  removeListener(event: string | symbol, listener: (...args: unknown[]) => void): unknown;
}

/**
 * Node's `events.on(emitter, event, { signal, close })`: an async iterator
 * of the argument lists `event` is emitted with. An 'error' event ends it
 * with that error; an event named in `close`, or `return()`, ends it.
 */
const eventIterator = (emitter: Listenable, event: string | symbol, options: { signal?: AbortSignal; close?: readonly (string | symbol)[] }): AsyncIterableIterator<unknown[]> => {
  const { signal } = options;
  validateAbortSignal(signal, 'options.signal');
  if (signal?.aborted) throw abortErrorOf(signal);
  const queue: unknown[][] = [];
  const waiting: Array<{ resolve: (r: IteratorResult<unknown[]>) => void; reject: (e: unknown) => void }> = [];
  let failure: unknown;
  let finished = false;
  const listeners: Array<[string | symbol, (...args: unknown[]) => void]> = [];
  const listen = (name: string | symbol, fn: (...args: unknown[]) => void) => {
    emitter.on(name, fn);
    listeners.push([name, fn]);
  };
  const close = (): void => {
    finished = true;
    for (const [name, fn] of listeners) emitter.removeListener(name, fn);
    signal?.removeEventListener('abort', onAbort);
    while (waiting.length > 0) (waiting.shift() as (typeof waiting)[number]).resolve({ value: undefined, done: true } as IteratorResult<unknown[]>);
  };
  const fail = (error: unknown): void => {
    const next = waiting.shift();
    if (next) next.reject(error);
    else failure = error;
    close();
  };
  const onAbort = () => fail(abortErrorOf(signal, true));
  listen(event, (...args: unknown[]) => {
    const next = waiting.shift();
    if (next) next.resolve({ value: args, done: false });
    else queue.push(args);
  });
  if (event !== 'error') listen('error', fail);
  for (const name of options.close ?? []) listen(name, close);
  signal?.addEventListener('abort', onAbort, { once: true });
  const iterator: AsyncIterableIterator<unknown[]> = {
    next(): Promise<IteratorResult<unknown[]>> {
      const value = queue.shift();
      if (value) return Promise.resolve({ value, done: false });
      if (failure !== undefined) {
        const error = failure;
        failure = undefined;
        return Promise.reject(error);
      }
      if (finished) return Promise.resolve({ value: undefined, done: true } as IteratorResult<unknown[]>);
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
    return(): Promise<IteratorResult<unknown[]>> {
      close();
      return Promise.resolve({ value: undefined, done: true } as IteratorResult<unknown[]>);
    },
    throw(error: unknown): Promise<IteratorResult<unknown[]>> {
      fail(error);
      return Promise.reject(error);
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
};
