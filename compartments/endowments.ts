/**
 * Everything a service gets from outside, installed in one place: the
 * globals of its compartments and the Node builtin modules it may import.
 *
 * | kind      | what                                                             |
 * | --------- | ---------------------------------------------------------------- |
 * | recorded  | Date, Math.random, performance, crypto randomness, timers,       |
 * |           | console, fetch, process (env, platform, cwd...), fs, os,         |
 * |           | http/https requests (http.ts)                                     |
 * | pure      | URL, URLSearchParams, TextEncoder/Decoder, atob/btoa,            |
 * |           | structuredClone, AbortController, Event(Target), Headers,        |
 * |           | Request, Response, Blob, File, web streams, Buffer,              |
 * |           | queueMicrotask; path, url, util, buffer, querystring, assert,    |
 * |           | zlib's functions, net.isIP... (host functions, frozen)           |
 * | own       | events, stream, string_decoder (a fresh instance per service,    |
 * |           | guest-builtins.ts); http, https, zlib streams,                   |
 * |           | diagnostics_channel; Error and its statics (guest-errors.ts);    |
 * |           | util.inspect's options; Reflect (packages extend it)             |
 * | refused   | WeakRef, FinalizationRegistry, crypto key generation,            |
 * |           | process.exit; sockets, servers, name lookups (sockets.ts);       |
 * |           | modules not listed here (granted on request)                     |
 *
 * docs/environment.md is the user-facing version of this table.
 */
import { builtinModules, isBuiltin } from 'node:module';
import hostOs from 'node:os';
import path from 'node:path';
import url from 'node:url';
import util from 'node:util';
import buffer from 'node:buffer';
import querystring from 'node:querystring';
import { createRequire } from 'node:module';
import type { Membrane } from '../membrane/index.js';
import { makeClock } from './clock.js';
import { hardenNodeErrorPrototypes } from './node-errors.js';
import { makeConsole, type ConsoleUtil, defaultPrinter } from './console.js';
import { guestWebAssembly } from './wasm.js';
import { cryptoConstants, makeCrypto } from './crypto.js';
import { makeFetch, GuestResponse, GuestRequest } from './fetch.js';
import { makeFormData } from './form-data.js';
import { makeFs, statsConstructorDeprecated } from './fs.js';
import type { StreamModule } from './fs-streams.js';
import { makeProcess } from './process.js';
import { makeReach, type ReachPolicy } from './reach.js';
import { makeSecretMatcher, type SecretsPolicy } from './secrets.js';
import { makeTimers, type GuestTimers } from './timers.js';
import { pureGlobals, guestBuffer, guestSlowBuffer, guestSegmenter, clockedWeb, clockedDateTimeFormat, webStreams, unpooled, hardenLateInternals, STREAM_GLOBALS } from './web.js';
import { readyStreams } from './readable-stream.js';
import { defineLazyGlobal } from './lazy-globals.js';
import { refusedConstructor } from './errors.js';
import { makeGuestErrors, hardenHostValue, hardenHostValues } from './guest-errors.js';
import { makeGuestAssert } from './guest-assert.js';
import { makeGuestBuiltins, guestBuiltinNames } from './guest-builtins.js';
import { isDeprecated, makeGuestUtil } from './guest-util.js';
import { makeRuntime, type DeclareHost } from './runtime.js';
import { makeGuestHttp, type GuestStreamModule, type GuestEventEmitter } from './http.js';
import { makeGuestZlib } from './zlib.js';
import { makeSocketModules } from './sockets.js';
import { makeDiagnosticsChannel } from './diagnostics-channel.js';
import { invalidArgType, validateFunction } from './node-style-errors.js';
import { markPhase } from './phases.cjs';
import { likeHost, likeHostAll } from './host-shape.js';

type Namespace = Record<string, unknown>;

/** A module namespace for an exit module: named exports plus `default`. */
const namespaceOf = (value: Record<string, unknown>): Namespace => {
  const ns: Namespace = { default: value };
  for (const key of Object.keys(value)) {
    // Accessors (process.platform...) are recorded reads: leave them on the default export.
    const descriptor = Object.getOwnPropertyDescriptor(value, key);
    if (key !== 'default' && descriptor && 'value' in descriptor) ns[key] = descriptor.value;
  }
  return ns;
};

/**
 * Host modules whose exports are pure functions and classes. A service gets
 * a frozen copy of the namespace; the values themselves are the host's,
 * hardened once (their prototypes and statics frozen), so that no service
 * can change them for the host or for another service. The module objects
 * themselves are never handed out, nor frozen.
 */
/** Node's querystring.unescapeBuffer (public, not in @types/node). */
const hostUnescapeBuffer = (querystring as unknown as { unescapeBuffer: (s: string, decodeSpaces?: boolean) => Buffer }).unescapeBuffer;
const pureModules: Record<string, Record<string, unknown>> = {
  // unescapeBuffer slices its result from Node's shared 8 KB pool, whose other bytes are the host's
  // (found by the adversarial review): the service gets a copy that owns its memory.
  querystring: { ...querystring, unescapeBuffer: harden(likeHost((s: string, decodeSpaces?: boolean) => unpooled(hostUnescapeBuffer(s, decodeSpaces)), hostUnescapeBuffer)) },
};

/** Node builtins loaded when first used: node:assert and node:tty cost more to load than most endowments. */
const hostRequire = createRequire(import.meta.url);

/** Node's own module that a service's builtin `name` stands for (`sys` is util, whose deprecation warning its require prints). */
const hostBuiltin = (name: string): unknown => (name === 'sys' ? util : name === 'process' ? process : name === 'console' ? console : hostRequire(`node:${name}`));
let hostAssert: Record<string, unknown> | undefined;

/**
 * node:assert, hardened as the pure modules are, when a service first imports it: Node's, its error
 * checks knowing a service's Error classes (guest-assert.ts).
 */
const lazyAssert = (): Record<string, unknown> => {
  if (!hostAssert) {
    const assert = hostRequire('node:assert') as Parameters<typeof makeGuestAssert>[0];
    hardenHostValue(assert);
    hostAssert = harden(makeGuestAssert(assert));
  }
  return hostAssert;
};

let hardenedHostModules = false;

/** Harden the values the pure host modules export (once per process). */
const hardenHostModules = (): void => {
  if (hardenedHostModules) return;
  hardenedHostModules = true;
  const moduleObjects = new Set<unknown>([path, path.posix, path.win32, url, util, buffer, querystring]);
  // Node hands its own inspect to custom inspectors ([util.inspect.custom](depth, options, inspect)), and
  // its defaultOptions getter returns Node's own options object: frozen, so that no service can change
  // how the host prints through it. (The host cannot change its inspect defaults after this either.)
  Object.freeze(util.inspect.defaultOptions);
  // Node hands a custom inspector its own stylize function (with colors or without): frozen, or a
  // service could hang values on it for another service's hook, or the host's, to read.
  for (const colors of [false, true]) {
    util.inspect({ [util.inspect.custom]: (_depth: number, options: { stylize?: unknown }) => (harden(options.stylize), '') }, { colors });
  }
  const values = (mod: object) => Object.values(mod).filter(v => (typeof v === 'function' || (typeof v === 'object' && v !== null)) && !moduleObjects.has(v));
  hardenHostValues([path.posix, path.win32, url, util, buffer, querystring].flatMap(values));
};

/**
 * Node's stream/consumers (lib/stream/consumers.js): read an async iterable
 * (a web or Node stream) to its end, as a Blob, ArrayBuffer, Buffer, text
 * or JSON, with the service's own Blob, Buffer and TextDecoder.
 */
const makeStreamConsumers = (globals: Record<string, unknown>): Record<string, (stream: AsyncIterable<unknown>) => Promise<unknown>> => {
  const GuestBlob = globals.Blob as typeof Blob;
  const GuestBuffer = globals.Buffer as typeof Buffer;
  const GuestTextDecoder = globals.TextDecoder as typeof TextDecoder;
  const blob = async (stream: AsyncIterable<unknown>): Promise<Blob> => {
    const chunks: unknown[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    return new GuestBlob(chunks as ConstructorParameters<typeof Blob>[0]);
  };
  const arrayBuffer = async (stream: AsyncIterable<unknown>): Promise<ArrayBuffer> => (await blob(stream)).arrayBuffer();
  const buffer = async (stream: AsyncIterable<unknown>): Promise<Buffer> => GuestBuffer.from(await arrayBuffer(stream));
  const text = async (stream: AsyncIterable<unknown>): Promise<string> => {
    const decoder = new GuestTextDecoder();
    let out = '';
    for await (const chunk of stream) out += typeof chunk === 'string' ? chunk : decoder.decode(chunk as Uint8Array, { stream: true });
    return out + decoder.decode(undefined, { stream: false });
  };
  const json = async (stream: AsyncIterable<unknown>): Promise<unknown> => JSON.parse(await text(stream)) as unknown;
  return { arrayBuffer, blob, buffer, text, json };
};

/** Every builtin module name a service may import (each also as `node:name`). */
export const builtinModuleNames: readonly string[] = [
  ...Object.keys(pureModules),
  'assert',
  ...guestBuiltinNames,
  'path',
  'url',
  'util',
  'path/posix',
  'buffer',
  'fs',
  'fs/promises',
  'crypto',
  'timers',
  'timers/promises',
  'process',
  'os',
  'tty',
  'http',
  'https',
  'zlib',
  'net',
  'tls',
  'dns',
  'http2',
  'diagnostics_channel',
  'stream/web',
  // Pure modules, or other names of what services have (graceful-fs requires 'constants' as it loads).
  'constants',
  'assert/strict',
  'path/win32',
  'util/types',
  'sys',
  'stream/consumers',
  'perf_hooks',
  'punycode',
  'console',
  'dns/promises',
  'worker_threads',
  'module',
];

/** Both spellings of a module name: `fs` and `node:fs`. */
export const spellings = (name: string): string[] => {
  const bare = name.startsWith('node:') ? name.slice(5) : name;
  return [bare, `node:${bare}`];
};

/** The library itself: a service may import services (nested services) at build time. */
export const LIBRARY_MODULE = 'membrane-snapshot';
/** The library's side-effect-free `runtime` entry (lib/runtime-entry.ts): the same `runtime` inside a service. */
export const LIBRARY_RUNTIME_MODULE = 'membrane-snapshot/runtime';

/** Every exit module name a service may import, builtins and granted ones. */
export const exitModuleNames = (granted: readonly string[] = []): string[] => [
  ...new Set([...[...builtinModuleNames, ...granted].flatMap(spellings), LIBRARY_MODULE, LIBRARY_RUNTIME_MODULE]),
];

/** What a granted module looks like, as the manifest keeps it. */
export interface GrantShape {
  readonly functions: readonly string[];
  readonly values: readonly string[];
}

export const grantShape = (host: Record<string, unknown>): GrantShape => {
  const keys = Object.keys(host).filter(k => k !== 'default');
  return { functions: keys.filter(k => typeof host[k] === 'function'), values: keys.filter(k => typeof host[k] !== 'function') };
};

/** A module granted beyond the builtins: its shape, and the host module when this host has it. */
export interface Grant extends GrantShape {
  readonly host?: Record<string, unknown>;
}

/**
 * A granted host module: its functions become syscalls named
 * `module:<name>.<fn>` (recorded, checked, absorbed on replay), its other
 * values are copied in once through the membrane (never handed over, so
 * the host's objects are neither shared nor frozen: an object with methods,
 * such as v8.promiseHooks, crosses as a reference, which dies with the
 * build). On a host without the module, replay still works; live calls say
 * what is missing.
 */
const grantedModule = (membrane: Membrane, name: string, grant: Grant): Namespace => {
  const { host } = grant;
  const out: Record<string, unknown> = {};
  const missing = () =>
    new TypeError(`module "${name}" was granted to service "${membrane.name}" at build time but is not available on this host: pass it to restoreSnapshot({ modules: { '${name}': ... } })`);
  for (const key of grant.functions) {
    // Named as the module's function. A class of the module (v8.Serializer, async_hooks.AsyncResource) is a
    // recorded call too: a service may name it in `extends` (undici does as it loads), and making one says why not.
    out[key] = {
      [key]: function (...args: unknown[]): unknown {
        if (new.target !== undefined) {
          throw new TypeError(
            `${name}.${key} cannot be constructed or extended inside service "${membrane.name}": the functions of a granted module are recorded calls to the host's, and its classes are not passed in (their objects would be the host's). Call its functions, or leave the module to the build script.`,
          );
        }
        return membrane.syscall(`module:${name}.${key}`, args, (...a) => {
          const fn = host?.[key];
          if (typeof fn !== 'function') throw missing();
          return (fn as (...x: unknown[]) => unknown)(...a);
        });
      },
    }[key];
  }
  for (const key of grant.values) {
    out[key] = membrane.syscall(`module:${name}.${key}`, [], () => {
      if (!host) throw missing();
      return host[key];
    });
  }
  // The module object stays the service's own to change, as Node's module objects are; what it holds is hardened.
  for (const value of Object.values(out)) harden(value);
  return namespaceOf(out);
};

/** A service's own copy of a namespace object (its methods the shared, frozen intrinsics). */
const ownCopy = (namespace: object): object => {
  const descriptors = Object.getOwnPropertyDescriptors(namespace) as Record<PropertyKey, PropertyDescriptor>;
  for (const key of Reflect.ownKeys(descriptors)) {
    const descriptor = descriptors[key as string];
    if ('value' in descriptor) descriptor.writable = true;
    descriptor.configurable = true;
  }
  return Object.create(Object.getPrototypeOf(namespace), descriptors);
};

/** A service's own Intl, its Segmenter behind a stand-in (web.ts: guestSegmenter). */
const guestIntl = (now: () => number): object => {
  const intl = ownCopy(Intl) as Record<string, unknown>;
  intl.DateTimeFormat = clockedDateTimeFormat(now);
  const segmenter = guestSegmenter();
  if (segmenter !== undefined) intl.Segmenter = segmenter;
  return intl;
};

export interface Endowments {
  readonly globals: Record<string, unknown>;
  readonly modules: Record<string, Namespace>;
  readonly timers: GuestTimers;
}

export interface EndowmentOptions {
  /** Modules granted to this service beyond the builtins. */
  readonly granted?: Readonly<Record<string, Grant>>;
  /** Where the service's console output goes. */
  readonly print?: (text: string) => void;
  /** What `importService` inside the service does on the host (nested services). */
  readonly importService?: (specifier: string, options: unknown) => Promise<unknown>;
  /** What `runtime.declare` inside the service does on the host (build time only). */
  readonly declare?: DeclareHost;
  /** What fetch and fs may reach (default: everything). */
  readonly reach?: ReachPolicy;
  /** Which env values, headers and fetch hosts are secrets, sealed in the log (default: the defaults of secrets.ts). */
  readonly secrets?: SecretsPolicy;
}

let hostHardened: Promise<void> | undefined;

/**
 * Freeze what services share with the host, once per process, before the
 * first service is evaluated: Node's internal error classes
 * (node-errors.ts), the pure host modules, the web classes and the
 * internals they share with the host (web.ts; those of the web streams when
 * a service first reaches a stream: readyStreams), and the stream
 * internals Node makes only a turn later (hardenLateInternals). The synchronous part
 * (about 15 ms) runs in the call, so a caller's reads on Node's thread pool
 * go on meanwhile; resolves a turn later. Idempotent. Throws what the
 * hardening throws (a host whose internals cannot be frozen).
 */
export const hardenHost = (): Promise<void> =>
  (hostHardened ??= (() => {
    hardenNodeErrorPrototypes();
    markPhase('node-errors-hardened');
    hardenHostModules();
    markPhase('host-modules-hardened');
    pureGlobals();
    markPhase('web-classes-hardened');
    return hardenLateInternals().then(() => markPhase('late-internals-hardened'));
  })());

/** A service's globals and builtin modules. Call after `hardenHost()` has resolved (lib/service.ts does). */
export const makeEndowments = (membrane: Membrane, options: EndowmentOptions = {}): Endowments => {
  // Node's internal error classes are shared with the host: frozen before the first service runs (node-errors.ts).
  // Each of these returns at once after hardenHost().
  hardenNodeErrorPrototypes();
  const print = options.print ?? defaultPrinter(membrane.name);
  const clock = makeClock(membrane);
  membrane.guestDatePrototype = clock.datePrototype;
  // The service's util, made below (it prints with this console's methods).
  let consoleUtil: ConsoleUtil | undefined;
  const guestConsole = makeConsole(membrane, clock.perfNow, print, () => consoleUtil as ConsoleUtil);
  // The console's own error method, kept: the service may replace it on its console, and Node prints uncaught
  // errors itself, whatever console.error now is.
  const guestConsoleError = guestConsole.error as (...a: unknown[]) => void;
  const onUncaught = (error: unknown, where: string) => guestConsoleError(`uncaught exception in ${where}:`, error);
  const timers = makeTimers(membrane, onUncaught);
  // A Hash or Cipher is a lazy Transform, a Sign or Verify a Writable, of the service's own stream module (builtins is made below).
  const crypto = makeCrypto(membrane, () => builtins.load('stream') as { Transform: new (options?: object) => object; Writable: new (options?: object) => object });
  const reach = makeReach(membrane.name, options.reach);
  const secrets = makeSecretMatcher(options.secrets);
  // The file streams are made of the service's own stream module, loaded when first used (builtins is made below).
  const { fs, promises } = makeFs(membrane, reach, secrets, {
    stream: () => builtins.load('stream') as StreamModule,
    Buffer: guestBuffer() as typeof Buffer,
    // The service's process.nextTick (counted by its turns), made just below: called only once a stream reads.
    nextTick: callback => (guestProcess.nextTick as (fn: () => void) => void)(callback),
  }, onUncaught, (fd, text) => ((guestProcess[fd === 1 ? 'stdout' : 'stderr'] as { write: (t: string) => void }).write(text)));
  const guestProcess = makeProcess(membrane, clock.perfNow, print, onUncaught, secrets);
  // structuredClone(process.env) copies every variable, as Node's does (the service's env is a Proxy, which V8 cannot clone).
  clock.cloneAs(guestProcess.env as object, () => ({ ...(guestProcess.env as Record<string, string>) }));
  // Node 20.12's process.loadEnvFile(path = '.env'): the file read with the service's own fs (so a
  // .env stays sealed in the log), parsed as Node parses it, each variable set unless already set.
  const parseEnv = (util as unknown as { parseEnv?: (text: string) => Record<string, string> }).parseEnv;
  if (typeof parseEnv === 'function') {
    guestProcess.loadEnvFile = function loadEnvFile(path: unknown = '.env') {
      // Node's path validation: a descriptor is not a path here.
      if (typeof path !== 'string' && !(path instanceof URL) && !(path instanceof Uint8Array)) throw invalidArgType('path', 'of type string or an instance of Buffer or URL', path);
      const text = (fs.readFileSync as (p: unknown, encoding: string) => string)(path, 'utf8');
      const env = guestProcess.env as Record<string, string | undefined>;
      for (const [key, value] of Object.entries(parseEnv(text))) if (!(key in env)) env[key] = value;
    };
  }
  const os: Record<string, unknown> = { EOL: hostOs.EOL, constants: hostOs.constants, devNull: hostOs.devNull };
  for (const fn of ['platform', 'arch', 'type', 'release', 'version', 'machine', 'hostname', 'homedir', 'tmpdir', 'cpus', 'totalmem', 'freemem', 'uptime', 'endianness', 'availableParallelism', 'loadavg', 'networkInterfaces', 'userInfo'] as const) {
    const host = (hostOs as unknown as Record<string, (...a: unknown[]) => unknown>)[fn];
    if (typeof host === 'function') os[fn] = (...args: unknown[]) => membrane.syscall(`os.${fn}`, args, (...a) => host(...a));
  }

  hardenHostModules();
  // util.log prints through console.log as it is when called, as Node's does.
  const guestUtil = makeGuestUtil(guestProcess, guestConsoleError, (...args) => (guestConsole.log as (...a: unknown[]) => void)(...args), () => clock.Date.now());
  // Node 22 and later deprecate the Stats constructor (fs.ts, statsConstructorDeprecated): the service's warns
  // through its own util.deprecate, once, as Node's does.
  if (statsConstructorDeprecated) fs.Stats = harden((guestUtil.deprecate as (fn: unknown, message: string, code: string) => unknown)(fs.Stats, statsConstructorDeprecated.message, statsConstructorDeprecated.code));
  const webGlobals = pureGlobals();
  const web = clockedWeb(clock.perfNow, (fn, ms) => (timers.globals.setTimeout as (f: () => void, m: number) => unknown)(fn, ms), () => clock.Date.now());
  // The service's FormData: its File, its recorded crypto.randomInt for a multipart boundary (form-data.ts).
  const form = makeFormData(web.File, (min, max) => (crypto.nodeCrypto.randomInt as (a: number, b: number) => number)(min, max));
  const globals: Record<string, unknown> = {
    ...webGlobals,
    ...makeGuestErrors(),
    // A microtask that throws is reported as uncaught, as a timer callback is (it would end the host process).
    queueMicrotask: (fn: () => void) => {
      validateFunction(fn, 'callback');
      queueMicrotask(() => {
        try {
          fn();
        } catch (error) {
          onUncaught(error, 'queueMicrotask callback');
        }
      });
    },
    // Packages extend Reflect (reflect-metadata defines Reflect.metadata): each service its own.
    Reflect: ownCopy(Reflect),
    Intl: guestIntl(() => clock.Date.now()),
    ...timers.globals,
    Date: clock.Date,
    structuredClone: clock.structuredClone,
    Math: clock.Math,
    performance: clock.performance,
    console: guestConsole,
    crypto: crypto.webcrypto,
    fetch: makeFetch(membrane, { reach, secrets, form }),
    Response: GuestResponse,
    Request: GuestRequest,
    Blob: buffer.Blob,
    process: guestProcess,
    WebAssembly: guestWebAssembly(),
    ...web,
    FormData: form.FormData,
  };
  likeHostAll(globals, globalThis);
  // Lazy, as Node's own are: the first read readies the streams (readable-stream.ts), which a service that never
  // touches one does not wait for.
  for (const name of STREAM_GLOBALS) {
    if (!Object.prototype.hasOwnProperty.call(globals, name)) continue;
    const value = globals[name];
    delete globals[name];
    defineLazyGlobal(globals, name, () => {
      readyStreams();
      return value;
    });
  }

  const modules: Record<string, Namespace> = {};
  // Node 20.16's process.getBuiltinModule(id): the builtin modules this service is given, as its require finds them;
  // undefined for what is no builtin, as in Node; a builtin services are not given fails as a require of it does.
  guestProcess.getBuiltinModule = function getBuiltinModule(id: unknown): unknown {
    if (typeof id !== 'string') throw invalidArgType('id', 'of type string', id);
    if (!isBuiltin(id)) return undefined;
    const ns = Object.prototype.hasOwnProperty.call(modules, id) ? modules[id] : undefined;
    if (ns === undefined) {
      const missing = new Error(`Cannot find module '${id}': the Node builtin is not given to services (grant it with importService(specifier, { modules: { '${id}': ... } }), or see docs/environment.md)`);
      throw Object.assign(missing, { code: 'MODULE_NOT_FOUND' });
    }
    return Object.prototype.hasOwnProperty.call(ns, 'default') ? ns.default : ns;
  };
  const add = (name: string, ns: Namespace) => {
    likeHostAll(ns.default as object, hostBuiltin(name));
    modules[name] = ns;
    modules[`node:${name}`] = ns;
  };
  for (const [name, mod] of Object.entries(pureModules)) add(name, namespaceOf(typeof mod === 'function' ? mod : Object.freeze({ ...mod })));
  let assertNs: Namespace | undefined;
  const getAssert = () => (assertNs ??= namespaceOf(lazyAssert()));
  for (const spelling of spellings('assert')) Object.defineProperty(modules, spelling, { get: getAssert, enumerable: true, configurable: true });
  consoleUtil = guestUtil as unknown as ConsoleUtil;
  add('util', namespaceOf(guestUtil));
  // events, stream and string_decoder: the service's own instances, built on first import.
  // node:buffer as the service sees it: its Buffer, and its File (the global, on the recorded clock: Node's
  // buffer.File is the global File, and the host's reads the host's clock, which diverged on replay).
  // buffer.SlowBuffer as the host has it: none where the host has none; deprecated where the host's is (Node 24's
  // lib/buffer.js: `deprecate(SlowBuffer, 'SlowBuffer() is deprecated. Please use Buffer.allocUnsafeSlow()', 'DEP0030')`),
  // a wrapper named `deprecated` of the host's length that warns once through the service's process.
  const hostSlowBuffer = (buffer as unknown as Record<string, unknown>).SlowBuffer;
  const slowBuffer = isDeprecated(hostSlowBuffer)
    ? (guestUtil.deprecate as (fn: unknown, message: string, code: string) => unknown)(guestSlowBuffer(), 'SlowBuffer() is deprecated. Please use Buffer.allocUnsafeSlow()', 'DEP0030')
    : guestSlowBuffer();
  const guestBufferModule: Record<string, unknown> = { ...buffer, Buffer: guestBuffer(), ...(typeof hostSlowBuffer === 'function' ? { SlowBuffer: slowBuffer } : {}), File: globals.File };
  const builtins = makeGuestBuiltins(globals, {
    buffer: guestBufferModule,
    'safe-buffer': { Buffer: guestBuffer() },
    process: guestProcess,
    util: guestUtil,
    'abort-controller': { AbortController: globals.AbortController, AbortSignal: globals.AbortSignal, default: globals.AbortController },
  });
  for (const name of guestBuiltinNames) {
    let ns: Namespace | undefined;
    const get = () => (ns ??= namespaceOf(builtins.load(name) as Record<string, unknown>));
    for (const spelling of spellings(name)) Object.defineProperty(modules, spelling, { get, enumerable: true, configurable: true });
  }
  // path and url resolve relative paths against the working directory: the recorded one.
  const cwd = () => membrane.syscall('process.cwd', [], () => process.cwd()) as string;
  // The service's own path objects: a copy of Node's would still hold the host's `posix` and `win32` module objects.
  const guestPosix: Record<string, unknown> = {
    ...path.posix,
    resolve: (...parts: string[]) => path.posix.resolve(cwd(), ...parts),
    relative: (from: string, to: string) => path.posix.relative(path.posix.resolve(cwd(), from), path.posix.resolve(cwd(), to)),
  };
  // win32's resolve and relative read the working directory too (Node's on POSIX: '\\tmp\\x'): the recorded one.
  const guestWin32: Record<string, unknown> = {
    ...path.win32,
    resolve: (...parts: string[]) => path.win32.resolve(cwd(), ...parts),
    relative: (from: string, to: string) => path.win32.relative(path.win32.resolve(cwd(), from), path.win32.resolve(cwd(), to)),
  };
  guestPosix.posix = guestPosix;
  guestPosix.win32 = guestWin32;
  guestWin32.posix = guestPosix;
  guestWin32.win32 = guestWin32;
  Object.freeze(guestPosix);
  Object.freeze(guestWin32);
  const guestPath = guestPosix as typeof path.posix;
  add('path', namespaceOf(guestPath));
  add('path/posix', namespaceOf(guestPosix));
  add(
    'url',
    // url.URL and url.URLSearchParams are the globals, as in Node (url.URL === URL).
    namespaceOf(
      Object.freeze({
        ...url,
        URL: globals.URL,
        URLSearchParams: globals.URLSearchParams,
        pathToFileURL: (p: string, o?: Parameters<typeof url.pathToFileURL>[1]) => url.pathToFileURL(guestPath.resolve(p), o),
      }),
    ),
  );
  add('buffer', namespaceOf(Object.freeze({ ...guestBufferModule })));
  add('fs', namespaceOf(fs));
  add('crypto', namespaceOf(crypto.nodeCrypto));
  add('timers', namespaceOf(timers.timersModule));
  add('timers/promises', namespaceOf(timers.timersPromisesModule));
  add('process', namespaceOf(guestProcess));
  add('os', namespaceOf(harden(likeHostAll(os, hostOs))));
  // The HTTP client and what clients import beside it: built on first import, on the service's own stream and events.
  const lazy = (names: readonly string[], make: () => Namespace) => {
    let ns: Namespace | undefined;
    const get = () => {
      if (ns === undefined) {
        ns = make();
        likeHostAll(ns.default as object, hostBuiltin(names[0]));
      }
      return ns;
    };
    for (const name of names) for (const spelling of spellings(name)) Object.defineProperty(modules, spelling, { get, enumerable: true, configurable: true });
  };
  // Made when first imported: shaped like Node's modules (likeHostAll), which loads Node's (fs/promises, tty:
  // about 4 ms of every restore where made at once).
  lazy(['fs/promises'], () => namespaceOf(promises));
  // tty: whether a descriptor is a terminal is host state (recorded); terminal streams are the host's own.
  const refusedStream = (name: string) => refusedConstructor(`tty.${name}`, 'a service does not own the terminal of the process it runs in', 'Write through console instead.');
  lazy(['tty'], () =>
    namespaceOf(
      harden({
        isatty: (fd: unknown) => membrane.syscall('tty.isatty', [fd], f => (hostRequire('node:tty') as typeof import('node:tty')).isatty(f as number)),
        ReadStream: refusedStream('ReadStream'),
        WriteStream: refusedStream('WriteStream'),
      }),
    ),
  );
  let httpModules: ReturnType<typeof makeGuestHttp> | undefined;
  const guestHttp = () =>
    (httpModules ??= makeGuestHttp({
      membrane,
      reach,
      secrets,
      stream: builtins.load('stream') as GuestStreamModule,
      EventEmitter: builtins.load('events') as GuestEventEmitter,
      Buffer: guestBuffer(),
      setTimeout: timers.globals.setTimeout as (fn: () => void, ms: number) => unknown,
      clearTimeout: timers.globals.clearTimeout as (handle: unknown) => void,
      nextTick: guestProcess.nextTick as (fn: () => void) => void,
    }));
  lazy(['http'], () => namespaceOf(guestHttp().http));
  lazy(['https'], () => namespaceOf(guestHttp().https));
  // A zlib stream's engine rounds come back as Node's thread-pool work does: in the event loop's next turn, after
  // the immediates already queued when the work was asked for (one immediate inside another; found by the review).
  const setImmediateOf = timers.globals.setImmediate as (f: () => void) => unknown;
  lazy(['zlib'], () => namespaceOf(makeGuestZlib(builtins.load('stream') as Parameters<typeof makeGuestZlib>[0], work => setImmediateOf(() => setImmediateOf(work)))));
  // stream/web's classes are the globals (its ReadableStream is the service's, with tee() and from() in the turn).
  lazy(['stream/web'], () => {
    readyStreams();
    return namespaceOf(Object.freeze({ ...webStreams(), ReadableStream: globals.ReadableStream }));
  });
  lazy(['diagnostics_channel'], () => namespaceOf(makeDiagnosticsChannel(onUncaught)));
  let socketModules: ReturnType<typeof makeSocketModules> | undefined;
  for (const name of ['net', 'tls', 'dns', 'http2'] as const) lazy([name], () => namespaceOf((socketModules ??= makeSocketModules(membrane))[name]));
  // Node's `constants` (deprecated, still required by graceful-fs and others): os, fs and crypto constants in one frozen
  // object, assembled as lib/constants.js assembles it (Node's own module fails to load once crypto.constants is frozen).
  lazy(['constants'], () => {
    const { dlopen, errno, priority, signals } = hostOs.constants as unknown as Record<string, object>;
    const hostFs = hostRequire('node:fs') as { constants: object };
    // Node assembles it before crypto adds its lazy defaultCipherList: not in it.
    const { defaultCipherList: _notInNode, ...cryptoPart } = cryptoConstants();
    return namespaceOf(Object.freeze(Object.assign({}, dlopen, errno, priority, signals, hostFs.constants, cryptoPart)));
  });
  lazy(['assert/strict'], () => namespaceOf(lazyAssert().strict as Record<string, unknown>));
  add('path/win32', namespaceOf(guestWin32));
  add('util/types', namespaceOf(guestUtil.types as Record<string, unknown>));
  // sys: Node's old name of util.
  add('sys', namespaceOf(guestUtil));
  // stream/consumers: Node's (lib/stream/consumers.js), on the service's own Blob, Buffer and TextDecoder.
  lazy(['stream/consumers'], () => namespaceOf(harden(makeStreamConsumers(globals))));
  // perf_hooks: the service's performance (the recorded clock); the timeline classes are absent, as the globals are.
  lazy(['perf_hooks'], () => namespaceOf(harden({ performance: globals.performance, constants: (hostRequire('node:perf_hooks') as { constants: object }).constants })));
  lazy(['punycode'], () => namespaceOf(hardenHostValue({ ...(hostRequire('node:punycode') as Record<string, unknown>) })));
  add('console', namespaceOf(guestConsole));
  lazy(['dns/promises'], () => namespaceOf((socketModules ??= makeSocketModules(membrane)).dns.promises as Record<string, unknown>));
  // worker_threads: what a package asks as it loads (pino: isMainThread), answered as on the main thread,
  // where a service runs; starting a thread or talking to one is refused.
  lazy(['worker_threads'], () => {
    const host = hostRequire('node:worker_threads') as typeof import('node:worker_threads');
    const noThreads = (name: string, length = 0) =>
      refusedConstructor(`worker_threads.${name}`, 'a service runs on the thread its host gives it, and cannot start or talk to another', 'Do the work in the service itself, or in a service of its own.', length);
    const environmentData = new Map<unknown, unknown>();
    return namespaceOf(
      harden(likeHostAll({
        isMainThread: membrane.syscall('worker_threads.isMainThread', [], () => host.isMainThread),
        threadId: membrane.syscall('worker_threads.threadId', [], () => host.threadId),
        parentPort: null,
        workerData: null,
        resourceLimits: {},
        SHARE_ENV: host.SHARE_ENV,
        Worker: noThreads('Worker', 2),
        MessageChannel: noThreads('MessageChannel'),
        MessagePort: noThreads('MessagePort'),
        BroadcastChannel: noThreads('BroadcastChannel', 1),
        markAsUntransferable: noThreads('markAsUntransferable', 1),
        moveMessagePortToContext: noThreads('moveMessagePortToContext', 2),
        receiveMessageOnPort: noThreads('receiveMessageOnPort', 1),
        postMessageToThread: noThreads('postMessageToThread'),
        // This service's own: no other thread would read it.
        setEnvironmentData: (key: unknown, value: unknown) => {
          if (value === undefined) environmentData.delete(key);
          else environmentData.set(key, value);
        },
        getEnvironmentData: (key: unknown) => environmentData.get(key),
      }, host)),
    );
  });
  // module: createRequire for the builtins a service is given (pino makes one as it loads); a service's other
  // modules are the ones its archive holds, imported statically. builtinModules and isBuiltin are Node's.
  lazy(['module'], () => {
    const notFound = (id: string) =>
      Object.assign(new Error(`Cannot find module '${id}': inside a service, a require made by createRequire finds only the Node builtins it is given; import the module statically instead (import x from '${id}')`), {
        code: 'MODULE_NOT_FOUND',
      });
    const getBuiltin = guestProcess.getBuiltinModule as (id: string) => unknown;
    // Named apart (and given Node's name below): the restore bundle would rename a function named like an import.
    const guestCreateRequire = function (filename: unknown) {
      if (typeof filename !== 'string' && !(filename instanceof URL)) throw invalidArgType('filename', 'a file URL object, file URL string, or absolute path string', filename);
      const require = (id: unknown) => {
        if (typeof id !== 'string') throw invalidArgType('id', 'of type string', id);
        if (!isBuiltin(id)) throw notFound(id);
        return getBuiltin(id);
      };
      require.resolve = (id: unknown) => {
        if (typeof id !== 'string') throw invalidArgType('request', 'of type string', id);
        if (!isBuiltin(id)) throw notFound(id);
        getBuiltin(id);
        return id;
      };
      require.cache = Object.create(null) as Record<string, unknown>;
      return require;
    };
    Object.defineProperty(guestCreateRequire, 'name', { value: 'createRequire' });
    return namespaceOf(
      harden(likeHostAll({
        createRequire: guestCreateRequire,
        builtinModules: [...builtinModules],
        // The service's own function (the host's stays unfrozen): Node's answer.
        isBuiltin: (id: unknown) => isBuiltin(id as string),
        syncBuiltinESMExports: () => {},
        findSourceMap: () => undefined,
      }, hostBuiltin('module'))),
    );
  });
  const hostImportService = options.importService;
  const importService = (specifier: unknown, importOptions?: unknown) =>
    membrane.syscall('service.import', [specifier, importOptions ?? {}], (spec, opts) => {
      if (!hostImportService) throw new TypeError('importService() is only available inside a service while its snapshot is being built');
      return hostImportService(spec as string, opts);
    });
  const serviceRuntime = makeRuntime(membrane, options.declare, form);
  modules[LIBRARY_MODULE] = namespaceOf(harden({ importService, runtime: serviceRuntime }));
  modules[LIBRARY_RUNTIME_MODULE] = namespaceOf(harden({ runtime: serviceRuntime }));
  for (const [name, grant] of Object.entries(options.granted ?? {})) {
    const ns = grantedModule(membrane, name, grant);
    // Over a builtin's stand-in too (worker_threads, module): defined, as those are getters.
    for (const spelling of spellings(name)) Object.defineProperty(modules, spelling, { value: ns, writable: true, enumerable: true, configurable: true });
  }
  return { globals, modules, timers };
};
