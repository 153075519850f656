/**
 * Error stacks and the V8 Error statics, as services see them.
 *
 * Two problems, one file:
 *
 * 1. **Stacks must not depend on the host.** A stack that runs through
 *    service code also runs through this library (the membrane, the turns)
 *    and Node's internals, whose paths differ on every host. Such a stack,
 *    logged or returned by the service, would be recorded with the build
 *    host's paths and diverge on replay anywhere else. The host-wide
 *    `Error.prepareStackTrace` installed here renders a stack that contains
 *    service frames (code SES evaluated: every module of an archive) with
 *    those frames only; a stack with no service frame is left to Node's own
 *    formatter, untouched.
 *
 * 2. **Statics must not be shared.** V8's `Error.stackTraceLimit`,
 *    `Error.prepareStackTrace` and `Error.captureStackTrace` live on one
 *    constructor that every compartment shares. With SES's `unsafe-debug`
 *    error taming, writing them from a service changes them for the host and
 *    every other service, and a service's `prepareStackTrace` receives the
 *    host's call sites (`getThis()`, `getFunction()`: host objects). The
 *    shared constructor's statics are made inert before lockdown hardens it
 *    (`neuterSharedErrorStatics`), and each service gets its own `Error`
 *    (and `TypeError`, ...): a proxy of the shared constructor whose statics
 *    belong to that service and are honoured for the errors it constructs
 *    and the stacks it captures. A service's `prepareStackTrace` receives
 *    copies of its own call sites, with `getThis()` and `getFunction()`
 *    undefined (as V8 gives them for strict code).
 *
 * Setting MEMBRANE_SNAPSHOT_HOST_FRAMES=1 keeps the host frames, to debug
 * this library (stacks then depend on the host, and replays may diverge).
 *
 * Known difference from Node: errors V8 creates by itself (`null.x`) use the
 * host's limit (10) and Node's formatting, not the service's own statics.
 */

import { fileURLToPath } from 'node:url';
import { anyServiceLoaded, hasServiceStack, markHostStack, markServiceStack } from '../membrane/marks.js';
import { nodeErrorMark, nodeStackHeader } from './node-style-errors.js';

const { apply, construct, defineProperty, getOwnPropertyDescriptor } = Reflect;
const { freeze, setPrototypeOf } = Object;

/** V8's call-site object (https://v8.dev/docs/stack-trace-api#customizing-stack-traces). */
interface CallSite {
  getThis(): unknown;
  getTypeName(): string | null;
  getFunction(): unknown;
  getFunctionName(): string | null;
  getMethodName(): string | null;
  getFileName(): string | undefined | null;
  getLineNumber(): number | null;
  getColumnNumber(): number | null;
  getEvalOrigin(): string | undefined;
  getScriptNameOrSourceURL(): string | undefined | null;
  isToplevel(): boolean;
  isEval(): boolean;
  isNative(): boolean;
  isConstructor(): boolean;
  isAsync(): boolean;
  isPromiseAll(): boolean;
  getPromiseIndex(): number | null;
  toString(): string;
}

type Prepare = (error: Error, sites: CallSite[]) => unknown;

interface HostErrorStatics {
  stackTraceLimit: number;
  prepareStackTrace?: Prepare;
  captureStackTrace(target: object, constructorOpt?: unknown): void;
}

/**
 * The start compartment's Error after lockdown (SES's InitialError), whose
 * statics reach V8's own. Read when used: this module is evaluated before
 * lockdown replaces the global (and freezes the original).
 */
let initialError: HostErrorStatics | undefined;

/** V8's own Error, as this module saw it before lockdown (its statics are V8's). */
const feralError: unknown = Error;
const host = (): HostErrorStatics => (initialError ??= globalThis.Error as unknown as HostErrorStatics);
const errorToString = Error.prototype.toString;

/**
 * A frame of service code: SES evaluates every module of an archive (with a
 * sourceURL naming the module) and the service's own `eval`/`Function`.
 * A host frame is one of a file on disk or of Node's internals.
 */
const isHostSite = (site: CallSite): boolean => !site.isEval() && typeof site.getFileName() === 'string';

/** The directory this library's code is in (dist/, or the sources under tsx): its frames are skipped below. */
const libraryRoot = fileURLToPath(new URL('..', import.meta.url));

/** Whether `site` is a frame of this library's own code (dist/, or the sources under tsx, or the restore bundle). */
const isLibrarySite = (site: CallSite): boolean => {
  if (!isHostSite(site)) return false;
  const file = site.getFileName() as string;
  return file.startsWith(libraryRoot) || file.startsWith(`file://${libraryRoot}`);
};

/**
 * The host's call sites from the caller of `below` down, at most `limit`
 * (V8's own, captured with the host's statics set for it and put back).
 */
const hostCallSites = (below: (...args: never[]) => unknown, limit: number): CallSite[] => {
  const statics = host();
  const savedLimit = statics.stackTraceLimit;
  const savedPrepare = statics.prepareStackTrace;
  let sites: CallSite[] = [];
  const holder: { stack?: unknown } = {};
  try {
    statics.stackTraceLimit = limit;
    statics.prepareStackTrace = (_error, callSites) => {
      sites = callSites;
      return '';
    };
    statics.captureStackTrace(holder, below as never);
    void holder.stack;
  } finally {
    statics.stackTraceLimit = savedLimit;
    statics.prepareStackTrace = savedPrepare;
  }
  return sites;
};

/**
 * Whether the function that calls `fn` is `JSON.stringify`, this library's
 * own frames in between skipped (a service's JSON.stringify reaches another
 * service's method through a syscall of its membrane, on the same stack).
 * The membrane asks it when a `toJSON` of another service's object is called
 * (membrane.ts): JSON.stringify would write the promise that method answers
 * with as `{}`. Looks at most 64 frames; false when it cannot tell.
 */
export const calledByJsonStringify = (fn: (...args: never[]) => unknown): boolean => {
  for (const site of hostCallSites(fn, 64)) {
    const file = site.getFileName();
    // A builtin (no file, not evaluated code: a service's own `stringify` is evaluated code), called on JSON or, passed
    // around (`values.map(JSON.stringify)`), on nothing.
    if (site.getFunctionName() === 'stringify' && !file && !site.isEval() && [null, undefined, 'JSON'].includes(site.getTypeName() as never)) return true;
    if (!isLibrarySite(site)) return false;
  }
  return false;
};

/**
 * Capture `error`'s stack again, from the caller of `below` down, with as
 * many frames as the host's `Error.stackTraceLimit` counts when none of them
 * is this library's: an error this library makes for a service stands where
 * Node's own code makes it, whose frames (Node's internals) V8 counts, but
 * this library's are more and are not shown. Counting them cut the service's
 * own frame off the stack of an AbortError made in an abort listener on Node
 * 22 and 24, whose AbortController#abort is one frame deeper (runAbort,
 * lib/internal/abort_controller.js): it printed as `[AbortError: ...]`.
 */
export const captureBeyondLibrary = (error: object, below: (...args: never[]) => unknown): void => {
  const statics = host();
  const savedLimit = statics.stackTraceLimit;
  if (typeof savedLimit !== 'number' || savedLimit <= 0) return;
  const sites = hostCallSites(below, savedLimit + 64);
  try {
    let counted = 0;
    let limit = 0;
    while (limit < sites.length && counted < savedLimit) if (!isLibrarySite(sites[limit++])) counted++;
    statics.stackTraceLimit = limit;
    statics.captureStackTrace(error, below as never);
  } finally {
    statics.stackTraceLimit = savedLimit;
  }
};

/** One frame the way V8 prints it, without the eval origin (which names where SES is installed). */
const renderSite = (site: CallSite): string => {
  const file = site.getScriptNameOrSourceURL() || (site.isNative() ? 'native' : '<anonymous>');
  const line = site.getLineNumber();
  const column = site.getColumnNumber();
  const where = line === null ? file : `${file}:${line}${column === null ? '' : `:${column}`}`;
  const fn = site.getFunctionName();
  let call: string | null;
  if (site.isConstructor()) {
    call = `new ${fn ?? '<anonymous>'}`;
  } else if (!site.isToplevel()) {
    // SES's module namespaces are proxies: a function called as `ns.f()` would read "Proxy.f".
    const type = site.getTypeName() === 'Proxy' ? null : site.getTypeName();
    const method = site.getMethodName();
    if (fn) {
      call = `${type && !fn.startsWith(`${type}.`) ? `${type}.` : ''}${fn}${method && !fn.endsWith(method) ? ` [as ${method}]` : ''}`;
    } else {
      call = `${type ? `${type}.` : ''}${method ?? '<anonymous>'}`;
    }
  } else {
    call = fn;
  }
  if (site.isPromiseAll()) call = `Promise.all (index ${site.getPromiseIndex() ?? 0})`;
  const async = site.isAsync() ? 'async ' : '';
  return call ? `${async}${call} (${where})` : `${async}${where}`;
};

/** The stack's first line, as Node writes it: `TypeError [ERR_INVALID_ARG_TYPE]: ...` for Node's own errors. */
const header = (error: unknown): string => {
  try {
    return nodeStackHeader(error, () => String(apply(errorToString, error, [])));
  } catch {
    return '<error>';
  }
};

let installed = false;

/** The objects a service captured a stack on (makeGuestErrors' capture): never rendered with host frames alone. */
const serviceCaptures = new WeakSet<object>();

/**
 * Install the host-wide stack formatter (once). Stacks with no service
 * frame keep Node's own formatting (source maps included).
 */
export const installStackFormatter = (): void => {
  if (installed) return;
  installed = true;
  nodeErrorMark(); // found now, with Node's formatter: finding it raises one of Node's errors
  const nodePrepare = host().prepareStackTrace;
  // For debugging this library only: keep host frames (replays elsewhere will then diverge).
  const keepHostFrames = process.env.MEMBRANE_SNAPSHOT_HOST_FRAMES === '1';
  host().prepareStackTrace = (error, sites) => {
    let service = keepHostFrames;
    for (const site of sites) {
      if (!isHostSite(site)) {
        service = true;
        break;
      }
    }
    // A service's capture with no frame of its own (Error.captureStackTrace(error, itsOutermostFunction), the
    // frames below being the membrane's): its first line only, as a capture that found no frame. Node's rendering
    // named this library's files and functions to the service, and differed where the restore runs (REPLAY_DIVERGED;
    // found by the adversarial review).
    if (!service && typeof error === 'object' && error !== null && serviceCaptures.has(error) && !keepHostFrames) {
      markServiceStack(error);
      return header(error);
    }
    if (!service) {
      if (typeof error === 'object' && error !== null) markHostStack(error);
      if (typeof nodePrepare === 'function') return nodePrepare(error, sites);
      return `${header(error)}${sites.map(site => `\n    at ${String(site)}`).join('')}`;
    }
    if (typeof error === 'object' && error !== null) markServiceStack(error);
    let text = header(error);
    for (const site of sites) if (keepHostFrames || !isHostSite(site)) text += `\n    at ${isHostSite(site) ? String(site) : renderSite(site)}`;
    return text;
  };
};

/**
 * The process's uncaught-exception handler (lockdown uses errorTrapping
 * 'none'): an error thrown by service code is reported on stderr and the
 * process goes on, and so is a thrown value that is not an Error once a
 * service is loaded (it has no stack to attribute; this library throws
 * none); anything else is printed and ends the process with code 1, as Node
 * does.
 */
export const installUncaughtHandler = (): void => {
  process.on('uncaughtException', error => {
    const stack = typeof error === 'object' && error !== null ? (error as { stack?: unknown }).stack : undefined;
    if (typeof error === 'object' && error !== null && hasServiceStack(error)) {
      process.stderr.write(`uncaught exception in service code (reported; the process goes on): ${String(stack).replace(/\r|\x1b/g, '?')}\n`);
      return;
    }
    // A value that is not an Error has no stack to tell where it came from. This library never
    // throws one; once services run here, one of them may (from an EventTarget listener, whose
    // error Node rethrows on its own tick queue): reported, so that no service can end the host.
    if (!(error instanceof Error) && anyServiceLoaded()) {
      let text: string;
      try {
        text = typeof error === 'string' ? JSON.stringify(error) : String(error);
      } catch {
        text = Object.prototype.toString.call(error);
      }
      process.stderr.write(`uncaught non-Error value thrown (by a service's callback, as only services run code here that throws such values; reported, the process goes on): ${text.replace(/\r|\x1b|\n/g, '?')}\n`);
      return;
    }
    process.stderr.write(`${typeof stack === 'string' ? stack : String(error)}\n`);
    process.exit(1);
  });
};

/**
 * Make the statics of the Error constructor that compartments share inert
 * (call between SES's `repairIntrinsics()` and `hardenIntrinsics()`): a
 * service that reaches it (`Object.getPrototypeOf(TypeError)`) can neither
 * read nor change the host's stack settings through it.
 */
// Shared by every service through the inert statics' getter: frozen (it was a writable object between them),
// and a method, so it has no `prototype` object (a function's was shared and writable, found by the adversarial review).
const inertCaptureStackTrace = Object.freeze(
  {
    captureStackTrace(target: object): void {
      defineProperty(target, 'stack', { value: '', writable: true, configurable: true });
    },
  }.captureStackTrace,
);

export const neuterSharedErrorStatics = (): void => {
  const shared = Object.getPrototypeOf(TypeError) as object;
  if (shared === Error) return; // not repaired by SES: nothing shared to neuter
  Object.defineProperties(shared, {
    stackTraceLimit: { get: () => 10, set: () => {}, enumerable: false, configurable: true },
    prepareStackTrace: { get: () => undefined, set: () => {}, enumerable: false, configurable: true },
    // An accessor, not a data property: once frozen, a data property would
    // oblige every service's Error proxy to return this very function.
    captureStackTrace: {
      get: () => inertCaptureStackTrace,
      set: () => {},
      enumerable: false,
      configurable: true,
    },
  });
};

/** V8's own `stack` getter: from Node 22 (V8 12.4) every error's `stack` is this own accessor; undefined on Node 20 (a data property). */
const v8StackGetter = getOwnPropertyDescriptor(new Error(), 'stack')?.get;

/** Whether `descriptor`, the own property `key` of an error, is V8's `stack` accessor: its text is data, read with the getter. */
export const isV8StackAccessor = (key: PropertyKey, descriptor: PropertyDescriptor): descriptor is PropertyDescriptor & { get: () => unknown } => key === 'stack' && descriptor.get !== undefined && descriptor.get === v8StackGetter;

/**
 * Make `proto.constructor` (an own, writable, configurable data property)
 * an accessor before `proto` is frozen, as SES's overrideTaming does for
 * the intrinsics: reading gives `value`; assigning on `proto` itself
 * throws; assigning on an object that inherits it defines (or sets) that
 * object's own property, as it did before the freeze. Node's own code
 * assigns `constructor` on instances of some of its classes, which throws
 * "Cannot assign to read only property 'constructor'" once the data
 * property they inherit is frozen (the override mistake). Only for those:
 * Node's util.inspect names an object by the first `constructor` data
 * property of its prototype chain, and prints the getters of every
 * prototype it skips (a DOMException's prototype would throw). Returns
 * whether it changed `proto`.
 */
export const overridableConstructor = (proto: object, value: unknown): boolean => {
  const descriptor = getOwnPropertyDescriptor(proto, 'constructor');
  if (!descriptor || !('value' in descriptor) || !descriptor.writable || !descriptor.configurable) return false;
  defineProperty(proto, 'constructor', {
    get: () => value,
    set(this: object, replacement: unknown) {
      if (this === proto) throw new TypeError("Cannot assign to read only property 'constructor' of a frozen prototype");
      if (Object.prototype.hasOwnProperty.call(this, 'constructor')) {
        if (!Reflect.set(this, 'constructor', replacement)) throw new TypeError("Cannot assign to read only property 'constructor'");
        // Object.defineProperty, as SES's override setter: an heir that is not extensible (frozen) throws, where
        // Reflect's would fail silently (found by helper-94).
      } else Object.defineProperty(this, 'constructor', { value: replacement, writable: true, enumerable: true, configurable: true });
    },
    enumerable: descriptor.enumerable,
    configurable: false,
  });
  return true;
};

/**
 * Harden a host value handed to services (a function, a class, a plain
 * object of them), first re-parenting every class reachable from it that
 * extends V8's original Error (Node's `AssertionError`, defined before
 * lockdown) onto the inert shared Error: hardening must not freeze V8's
 * own Error (the host's stack settings live on it), and a service must not
 * reach it through `Object.getPrototypeOf(AssertionError)`.
 */
export const hardenHostValue = <T>(value: T): T => {
  hardenHostValues([value]);
  return value;
};

/**
 * Whether `value` is V8's own Error, not the shared one SES gives compartments (`Object.getPrototypeOf(TypeError)`):
 * the global one when this module loaded, or the one a module that loaded before lockdown captured (Node's
 * internal errors, the library's SnapshotError). The process's stack settings are its own properties.
 */
export const isV8Error = (value: unknown): boolean =>
  value !== Object.getPrototypeOf(TypeError) &&
  (value === feralError ||
    (typeof value === 'function' &&
      !Object.isFrozen(value) &&
      Object.prototype.hasOwnProperty.call(value, 'captureStackTrace') &&
      Object.prototype.hasOwnProperty.call(value, 'stackTraceLimit')));

/**
 * `hardenHostValue` for many values in one walk: values that share
 * prototypes and statics (Node's hundreds of error classes) are visited
 * once.
 *
 * The walk is SES's harden (every object reachable through prototypes and
 * own properties, accessors included, frozen), without its bookkeeping:
 * an object already frozen is handed to `harden`, which returns at once
 * for what lockdown hardened and walks anything else; the others are
 * fixed up (above), frozen and walked here. Objects with harden's special
 * cases (typed arrays, errors with an own `stack`) go to `harden` too.
 * Node's error classes (about 1,500 objects) take 1 ms so against 3 to
 * 7 ms through `harden`, which keeps a weak set of every object it froze
 * (`harden` later walks these objects again if it meets them: they are
 * frozen, so it only costs time).
 */
export const hardenHostValues = (values: readonly unknown[]): void => {
  const shared = Object.getPrototypeOf(TypeError) as object;
  const seen = new Set<unknown>();
  const pending: object[] = [];
  const add = (v: unknown): void => {
    if ((typeof v !== 'object' && typeof v !== 'function') || v === null || seen.has(v)) return;
    seen.add(v);
    pending.push(v);
  };
  for (const value of values) add(value);
  while (pending.length > 0) {
    const v = pending.pop() as object;
    if (Object.isFrozen(v) || ArrayBuffer.isView(v) || Object.prototype.hasOwnProperty.call(v, 'stack')) {
      harden(v);
      continue;
    }
    if (typeof v === 'function' && shared !== feralError && isV8Error(Object.getPrototypeOf(v))) Object.setPrototypeOf(v, shared);
    // Node's error prototypes answer `constructor` with a getter returning the Error they were made from, V8's
    // own (harden calls no getter): it answers the inert shared Error instead, or a service reading
    // error.constructor held the process's stack settings (found by the adversarial review).
    const ctor = getOwnPropertyDescriptor(v, 'constructor');
    if (ctor?.get && ctor.configurable && shared !== feralError) {
      let answer: unknown;
      try {
        answer = apply(ctor.get, v, []);
      } catch {
        answer = undefined;
      }
      if (isV8Error(answer)) defineProperty(v, 'constructor', { get: () => shared, set: ctor.set, enumerable: ctor.enumerable, configurable: false });
    }
    freeze(v);
    add(Object.getPrototypeOf(v));
    for (const key of Reflect.ownKeys(v)) {
      const descriptor = getOwnPropertyDescriptor(v, key) as PropertyDescriptor;
      if ('value' in descriptor) add(descriptor.value);
      else {
        add(descriptor.get);
        add(descriptor.set);
      }
    }
  }
};

/** A copy of a service's call site that leads back to no object: what a service's prepareStackTrace receives. */
const copySite = (site: CallSite): CallSite => {
  const text = renderSite(site);
  const fixed = {
    typeName: site.getTypeName(),
    functionName: site.getFunctionName(),
    methodName: site.getMethodName(),
    fileName: site.getScriptNameOrSourceURL() ?? undefined,
    line: site.getLineNumber(),
    column: site.getColumnNumber(),
    toplevel: site.isToplevel(),
    // A service's modules are code SES evaluated, each named by its sourceURL: V8 says eval, Node (which loads
    // them as files) does not (depd read it so, found by the fidelity review). Code a service evaluates itself has no name.
    eval: site.isEval() && !site.getScriptNameOrSourceURL(),
    native: site.isNative(),
    ctor: site.isConstructor(),
    async: site.isAsync(),
    promiseAll: site.isPromiseAll(),
    promiseIndex: site.getPromiseIndex(),
  };
  return freeze({
    getThis: () => undefined,
    getFunction: () => undefined,
    getTypeName: () => fixed.typeName,
    getFunctionName: () => fixed.functionName,
    getMethodName: () => fixed.methodName,
    getFileName: () => fixed.fileName,
    getLineNumber: () => fixed.line,
    getColumnNumber: () => fixed.column,
    getEvalOrigin: () => undefined,
    getScriptNameOrSourceURL: () => fixed.fileName,
    isToplevel: () => fixed.toplevel,
    isEval: () => fixed.eval,
    isNative: () => fixed.native,
    isConstructor: () => fixed.ctor,
    isAsync: () => fixed.async,
    isPromiseAll: () => fixed.promiseAll,
    getPromiseIndex: () => fixed.promiseIndex,
    toString: () => text,
  });
};

/** Construct an error without V8 capturing a stack (it is captured next, with the service's statics). */
const constructUncaptured = (target: object, args: unknown[], newTarget: unknown): object => {
  const saved = host().stackTraceLimit;
  host().stackTraceLimit = 0;
  try {
    return construct(target as new (...a: unknown[]) => object, args, newTarget as new (...a: unknown[]) => object);
  } finally {
    host().stackTraceLimit = saved;
  }
};

const NATIVE_ERRORS = ['Error', 'TypeError', 'RangeError', 'SyntaxError', 'ReferenceError', 'EvalError', 'URIError', 'AggregateError'] as const;

/**
 * One service's error constructors, each a proxy (so `instanceof`,
 * prototypes and subclassing are Node's: `prototype` is the shared
 * intrinsic's, constructing one constructs the intrinsic) of a function of
 * the service's own that holds its statics as Node's Error does:
 *
 * - `stackTraceLimit` (default 10, as in Node: an enumerable data property
 *   of Error, which `Object.keys(Error)` lists) bounds the frames of the
 *   errors the service constructs and of `captureStackTrace`;
 * - `prepareStackTrace`, when the service sets one, is called for those
 *   errors with copies of the call sites (see `copySite`);
 * - `captureStackTrace(target, fn)` is V8's, with both of the above.
 *
 * Each has Node's own properties in Node's order, is extensible (a package
 * may add a static), and TypeError and the others inherit from the
 * service's Error, as in Node (`Object.getPrototypeOf(TypeError) ===
 * Error`). Found by the fidelity hunt: the statics were accessors of the
 * shared, frozen Error, `{ ...Error }` was `{}`, and adding one threw.
 *
 * Shapes: `{ Error, TypeError, RangeError, SyntaxError, ReferenceError,
 * EvalError, URIError, AggregateError }`, to be installed as the service's
 * globals.
 */
export const makeGuestErrors = (): Record<string, unknown> => {
  /** The service's Error's own function, which holds its statics (made below, first). */
  let statics: object | undefined;
  /** A static as V8 reads it from Error, taken from its data property (a service's getter is not run here, inside the host's capture). */
  const staticOf = (key: string): unknown => {
    const descriptor = statics === undefined ? undefined : getOwnPropertyDescriptor(statics, key);
    return descriptor !== undefined && 'value' in descriptor ? descriptor.value : undefined;
  };

  /** Capture `target`'s stack as of the caller of `above`, with this service's statics. */
  const capture = (target: object, above: unknown): void => {
    const savedLimit = host().stackTraceLimit;
    const savedPrepare = host().prepareStackTrace;
    const stackTraceLimit = staticOf('stackTraceLimit');
    if (typeof stackTraceLimit !== 'number') {
      // V8 captures nothing when Error.stackTraceLimit is not a number (deleted, a string): `stack` is undefined.
      defineProperty(target, 'stack', { value: undefined, writable: true, enumerable: false, configurable: true });
      return;
    }
    const limit = stackTraceLimit;
    const prepare = staticOf('prepareStackTrace');
    let sites: CallSite[] | undefined;
    try {
      host().stackTraceLimit = limit;
      if (typeof prepare === 'function') {
        host().prepareStackTrace = (_error, callSites) => {
          // The service's frames only, as its stacks hold: a host frame's name and line are this library's (they
          // differ where the restore runs, and a prepareStackTrace that printed them diverged), and how many lie
          // below the service's first frame depends on who called it (found by the adversarial review).
          sites = callSites.filter(site => !isHostSite(site)).map(copySite);
          return '';
        };
      }
      serviceCaptures.add(target);
      host().captureStackTrace(target, above as never);
      if (typeof prepare === 'function') void (target as { stack?: unknown }).stack; // formats now, with the capture above
    } finally {
      host().stackTraceLimit = savedLimit;
      host().prepareStackTrace = savedPrepare;
    }
    if (typeof prepare === 'function' && sites) {
      // The service's own function, run as the service: outside our try, with only copies.
      const value = apply(prepare as Prepare, undefined, [target as Error, sites]);
      defineProperty(target, 'stack', { value, writable: true, enumerable: false, configurable: true });
    }
  };

  const captureStackTrace = function captureStackTrace(target: unknown, constructorOpt?: unknown): void {
    if ((typeof target !== 'object' && typeof target !== 'function') || target === null) {
      throw new TypeError('Invalid argument: Error.captureStackTrace needs an object');
    }
    capture(target, typeof constructorOpt === 'function' ? constructorOpt : captureStackTrace);
  };

  const out: Record<string, unknown> = {};
  for (const name of NATIVE_ERRORS) {
    const intrinsic = (globalThis as Record<string, unknown>)[name] as (new (...args: unknown[]) => object) | undefined;
    if (typeof intrinsic !== 'function') continue;
    const shared = name === 'Error' ? (Object.getPrototypeOf(TypeError) as typeof intrinsic) : intrinsic;
    const own = ownStatics(name, shared, captureStackTrace);
    if (name === 'Error') statics = own;
    else setPrototypeOf(own, out.Error as object);
    const handler: ProxyHandler<typeof shared> = {
      construct: (_own, args, newTarget) => {
        const error = constructUncaptured(shared, args, newTarget);
        // As V8's Error constructor: the frames up to the topmost call of new.target are left out (a subclass's
        // `new MyError` and its `super()` chain), or all of them when new.target is not on the stack.
        capture(error, newTarget === out[name] ? handler.construct : newTarget);
        return error;
      },
      apply: (_own, _this, args) => {
        const error = constructUncaptured(shared, args, shared);
        capture(error, handler.apply);
        return error;
      },
    };
    out[name] = new Proxy(own as typeof shared, handler);
    errorConstructors.add(out[name] as object);
  }
  return out;
};

/**
 * A service's own function for the error class `name`: the own properties
 * of V8's constructor of that name, in its order and with its attributes
 * (`length`, `name`, `prototype`, and Error's `captureStackTrace`,
 * `prepareStackTrace`, `stackTraceLimit`), holding `shared`'s prototype,
 * the service's `captureStackTrace`, no `prepareStackTrace` and a
 * `stackTraceLimit` of 10, as Node starts with. A static function the
 * shared intrinsic does not have is V8's, hardened (Node 24's
 * `Error.isError`); any other property it lacks is left out.
 */
const ownStatics = (name: string, shared: object, captureStackTrace: unknown): object => {
  // V8's Error as this module saw it before lockdown (SES's shared Error holds accessors); the others are V8's own.
  const model = (name === 'Error' ? feralError : shared) as object;
  const own = function () {} as unknown as object;
  for (const key of Reflect.ownKeys(model)) {
    const descriptor = getOwnPropertyDescriptor(model, key) as PropertyDescriptor;
    let value: unknown;
    if (key === 'prototype') value = (shared as { prototype: unknown }).prototype;
    else if (key === 'captureStackTrace') value = captureStackTrace;
    else if (key === 'prepareStackTrace') value = undefined;
    else if (key === 'stackTraceLimit') value = 10;
    else if (key === 'length' || key === 'name' || Object.prototype.hasOwnProperty.call(shared, key)) value = (shared as Record<PropertyKey, unknown>)[key];
    // A static function SES's shared Error lacks (Node 24's Error.isError, a brand check): V8's own, frozen.
    else if (typeof descriptor.value === 'function') value = harden(descriptor.value);
    else continue;
    const { writable = true, enumerable, configurable } = descriptor;
    defineProperty(own, key, { value, writable, enumerable, configurable });
  }
  return own;
};

/** Every service's Error constructors (makeGuestErrors), and the shared ones they stand for. */
const errorConstructors = new WeakSet<object>();
for (const name of NATIVE_ERRORS) {
  const intrinsic = (globalThis as Record<string, unknown>)[name];
  if (typeof intrinsic === 'function') errorConstructors.add(intrinsic);
}
errorConstructors.add(Object.getPrototypeOf(TypeError) as object);

/**
 * Whether `value` is an Error class to a service: one of its Error constructors, or a class that
 * extends one, as `Error.isPrototypeOf(value)` says in Node (a service's Error is its own, which
 * Node's checks against the host's Error do not know: node:assert, guest-assert.ts).
 */
export const isServiceErrorClass = (value: unknown): boolean => {
  for (let current = value; typeof current === 'function'; current = Object.getPrototypeOf(current)) {
    if (errorConstructors.has(current)) return true;
  }
  return false;
};
