/**
 * `util` inside a service: Node's own functions (hardened once, see
 * endowments.ts), except those that keep process-wide state, which are the
 * service's own:
 *
 * - `inspect.defaultOptions` (and `format`/`formatWithOptions`, which use
 *   them): writing them in one service changes neither the host's output
 *   nor another service's;
 * - `inspect.colors` and `inspect.styles`: copies (Node's inspect keeps
 *   using its own tables, so writes to these copies change nothing);
 * - `debuglog(section)`: enabled by `NODE_DEBUG`, read through the service's
 *   recorded environment, printing through its recorded console;
 * - `deprecate(fn, msg, code)`: warns once through the service's
 *   `process.emitWarning`.
 *
 * Errors, Maps, Sets and Promises print as in Node, nested or not: see
 * inspection.ts for how, under lockdown. `format`'s `%s` inspects the
 * objects Node inspects (those with a built-in `toString`), which under
 * lockdown it would turn into `[object Object]`.
 */
import util from 'node:util';
import { invalidArgType, nodeError, validateFunction } from './node-style-errors.js';
import { refusedConstructor } from './errors.js';

type InspectOptions = util.InspectOptions;

const { getOwnPropertyDescriptor, getPrototypeOf } = Object;
const hasOwn = (object: object, key: PropertyKey): boolean => Object.prototype.hasOwnProperty.call(object, key);
/** Node's set of built-in constructor names (lib/internal/util/inspect.js, `builtInObjects`). */
const builtInNames = new Set(Object.getOwnPropertyNames(globalThis).filter(name => /^[A-Z][a-zA-Z0-9]+$/.test(name)));

/**
 * Whether Node's `%s` would inspect `value` (its `hasBuiltInToString`: the
 * object whose own `toString` or `Symbol.toPrimitive` it inherits has a
 * built-in constructor) where, under lockdown, it calls `String(value)`
 * because that `constructor` is an override accessor (`{ a: 1 }` would
 * print as `[object Object]`, a Map as `[object Map]`).
 */
const hiddenBuiltInToString = (value: object): boolean => {
  if (util.types.isProxy(value)) return false;
  const record = value as Record<PropertyKey, unknown>;
  if (typeof record.toString !== 'function' && typeof record[Symbol.toPrimitive] !== 'function') return false;
  if (hasOwn(value, 'toString') || hasOwn(value, Symbol.toPrimitive)) return false;
  let pointer: object | null = value;
  do pointer = getPrototypeOf(pointer) as object | null;
  while (pointer !== null && !hasOwn(pointer, 'toString') && !hasOwn(pointer, Symbol.toPrimitive));
  if (pointer === null) return false;
  const descriptor = getOwnPropertyDescriptor(pointer, 'constructor');
  const original = descriptor && !('value' in descriptor) ? (descriptor.get as { originalValue?: unknown } | undefined)?.originalValue : undefined;
  return typeof original === 'function' && builtInNames.has(original.name);
};

/** The arguments of util.format with each object that `%s` would inspect in Node already inspected, as Node does it. */
const inspectForS = (options: InspectOptions, args: unknown[]): unknown[] => {
  const [first] = args;
  if (typeof first !== 'string' || args.length < 2) return args;
  let out: unknown[] | undefined;
  let a = 0;
  for (let i = 0; i < first.length - 1 && a < args.length - 1; i++) {
    if (first.charCodeAt(i) !== 37) continue; // '%'
    const directive = first[++i];
    if (directive === '%') continue;
    if (!'sjdOoifc'.includes(directive)) continue;
    a++;
    const arg = args[a];
    if (directive === 's' && typeof arg === 'object' && arg !== null && hiddenBuiltInToString(arg)) {
      out ??= [...args];
      out[a] = util.inspect(arg, { ...options, depth: 0, colors: false, compact: 3 });
    }
  }
  return out ?? args;
};

/**
 * Whether `fn`, a function of the host's, is wrapped by Node's deprecate
 * (lib/internal/util.js): the wrapper is named `deprecated`. Node 22 wraps
 * util.log and the util.is* functions, Node 24 buffer.SlowBuffer.
 */
export const isDeprecated = (fn: unknown): boolean => typeof fn === 'function' && fn.name === 'deprecated';

/**
 * Whether the host's util.deprecate gives its wrapper the length of the
 * function it wraps (Node 22 and later: `ObjectDefineProperty(deprecated,
 * 'length', ...)`; Node 20's keeps the wrapper's 0). Asked of the host's own
 * deprecate, which warns only when its wrapper is called.
 */
const deprecateKeepsLength = util.deprecate(function wrapped(_a: unknown) {}, 'probe').length === 1;

/**
 * Whether the host's util.deprecate takes options as its fourth argument
 * (Node 24: `deprecate(fn, msg, code, { modifyPrototype })`, false leaving
 * the wrapper's prototype chain its own).
 */
const deprecateTakesOptions = (() => {
  const wrapped = function wrapped() {};
  const deprecated = (util.deprecate as (fn: () => void, msg: string, code?: string, options?: object) => () => void)(wrapped, 'probe', undefined, { modifyPrototype: false });
  return getPrototypeOf(deprecated) !== wrapped;
})();

export const makeGuestUtil = (
  guestProcess: Record<string, unknown>,
  printError: (...args: unknown[]) => void,
  printLog: (...args: unknown[]) => void,
  now: () => number,
): Record<string, unknown> => {
  const defaults: InspectOptions = { ...util.inspect.defaultOptions };

  /** Node's legacy signature: inspect(value, showHidden, depth, colors). */
  const optionsOf = (args: unknown[]): InspectOptions => {
    const [first] = args;
    if (typeof first === 'object' && first !== null) return first as InspectOptions;
    const legacy: InspectOptions = {};
    if (args.length > 0 && first !== undefined) legacy.showHidden = Boolean(first);
    if (args.length > 1 && args[1] !== undefined) legacy.depth = args[1] as number | null;
    if (args.length > 2 && args[2] !== undefined) legacy.colors = Boolean(args[2]);
    return legacy;
  };

  const inspect = function inspect(value: unknown, ...args: unknown[]): string {
    const options = { ...defaults, ...optionsOf(args) };
    return util.inspect(value, options);
  } as ((value: unknown, ...args: unknown[]) => string) & Record<string, unknown>;
  Object.defineProperty(inspect, 'defaultOptions', {
    get: () => defaults,
    set: (options: unknown) => {
      if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'of type object', options);
      Object.assign(defaults, options);
    },
    enumerable: true,
    configurable: true,
  });
  inspect.custom = util.inspect.custom;
  inspect.colors = structuredClone({ ...util.inspect.colors });
  inspect.styles = { ...util.inspect.styles };

  const formatWithOptions = (options: InspectOptions, ...args: unknown[]): string => {
    const merged = { ...defaults, ...options };
    return util.formatWithOptions(merged, ...inspectForS(merged, args));
  };
  const format = (...args: unknown[]): string => util.formatWithOptions(defaults, ...inspectForS(defaults, args));

  const env = () => guestProcess.env as Record<string, string | undefined>;
  const debuglog = (section: string, callback?: (fn: (...args: unknown[]) => void) => void) => {
    const upper = String(section).toUpperCase();
    let enabled: boolean | undefined;
    const isEnabled = () => {
      if (enabled === undefined) {
        const patterns = (env().NODE_DEBUG ?? '').split(/[\s,]+/).filter(Boolean);
        enabled = patterns.some(p => new RegExp(`^${p.replace(/[|\\{}()[\]^$+?.]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i').test(upper));
      }
      return enabled;
    };
    const logger = (...args: unknown[]) => {
      if (isEnabled()) printError(`${upper}: ${format(...args)}`);
    };
    Object.defineProperty(logger, 'enabled', { get: isEnabled, enumerable: true });
    if (callback) callback(logger);
    return logger;
  };

  // As Node's: a code is a string, and a code warns once however many functions carry it.
  const codesWarned = new Set<string>();
  const deprecate = <F extends (...args: unknown[]) => unknown>(fn: F, message: string, code?: string, options?: unknown): F => {
    if (code !== undefined && typeof code !== 'string') throw invalidArgType('code', 'of type string', code);
    const modifyPrototype = !(deprecateTakesOptions && typeof options === 'object' && options !== null && !(options as { modifyPrototype?: unknown }).modifyPrototype);
    let warned = false;
    function deprecated(this: unknown, ...args: unknown[]): unknown {
      if (!warned && !guestProcess.noDeprecation) {
        warned = true;
        if (code === undefined || !codesWarned.has(code)) {
          (guestProcess.emitWarning as (m: string, t: string, c?: string) => void)(message, 'DeprecationWarning', code);
          if (code !== undefined) codesWarned.add(code);
        }
      }
      return new.target ? Reflect.construct(fn, args, new.target) : Reflect.apply(fn, this, args);
    }
    if (!modifyPrototype) return deprecated as unknown as F;
    Object.setPrototypeOf(deprecated, fn);
    if (fn.prototype) deprecated.prototype = fn.prototype;
    if (deprecateKeepsLength) Object.defineProperty(deprecated, 'length', { ...Object.getOwnPropertyDescriptor(fn, 'length') });
    return deprecated as unknown as F;
  };

  // callbackify, as Node's: the callback is bound to the callbackified function's `this` and runs on the
  // service's own nextTick (a throwing callback is reported, not fatal to the host); a falsy rejection becomes
  // ERR_FALSY_VALUE_REJECTION; the function carries the original's properties, `name` + 'Callbackified' and `length` + 1.
  const callbackify = (original: unknown) => {
    validateFunction(original, 'original');
    const nextTick = guestProcess.nextTick as (fn: (...a: unknown[]) => void, ...args: unknown[]) => void;
    const onRejected = (reason: unknown, callback: (error: unknown) => void): void => {
      if (!reason) {
        const error = nodeError(Error, 'ERR_FALSY_VALUE_REJECTION', 'Promise was rejected with falsy value') as Error & { reason?: unknown };
        error.reason = reason;
        callback(error);
        return;
      }
      callback(reason);
    };
    function callbackified(this: unknown, ...args: unknown[]): void {
      const maybeCallback = args.pop();
      validateFunction(maybeCallback, 'last argument');
      const callback = Function.prototype.bind.call(maybeCallback, this) as (...a: unknown[]) => void;
      (Reflect.apply(original as (...a: unknown[]) => unknown, this, args) as Promise<unknown>).then(
        (value: unknown) => nextTick(callback, null, value),
        (reason: unknown) => nextTick(onRejected as (...a: unknown[]) => void, reason, callback),
      );
    }
    const descriptors = Object.getOwnPropertyDescriptors(original) as Record<string, PropertyDescriptor>;
    if (typeof descriptors.length?.value === 'number') descriptors.length.value += 1;
    if (typeof descriptors.name?.value === 'string') descriptors.name.value += 'Callbackified';
    Object.defineProperties(callbackified, descriptors);
    return callbackified;
  };

  // util.log: Node's format (`30 Nov 06:41:32 - message`) on the recorded clock, through the service's console;
  // where the host's warns (Node 22's, DEP0059), warning once through the service's process as Node's does; none
  // where the host has none (Node 23 removed it).
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const logNow = function log(...args: unknown[]): void {
    const d = new Date(now());
    const pad = (n: number) => String(n).padStart(2, '0');
    printLog('%s - %s', `${d.getDate()} ${months[d.getMonth()]} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`, format(...args));
  };
  const hostLog = (util as unknown as Record<string, unknown>).log;
  // Node 22's message (lib/util.js), its missing backquote included.
  const log = typeof hostLog !== 'function' ? undefined : isDeprecated(hostLog) ? deprecate(logNow, 'The `util.log API is deprecated. Please use console.log() with a custom formatter or a third-party logger instead.', 'DEP0059') : logNow;

  // Node's promisify, except for a function whose promisified form is frozen with the service's module
  // (fs.exists): Node's marks that form with defineProperty, which a frozen one refuses; it is marked already.
  const customPromisified = util.promisify.custom;
  const promisify = Object.defineProperty(
    function promisify(original: unknown): unknown {
      const custom = typeof original === 'function' ? (original as unknown as Record<symbol, unknown>)[customPromisified] : undefined;
      if (typeof custom === 'function' && Object.isFrozen(custom) && (custom as unknown as Record<symbol, unknown>)[customPromisified] === custom) return custom;
      return util.promisify(original as (...args: unknown[]) => void);
    },
    'custom',
    { value: customPromisified, writable: true, enumerable: true, configurable: true },
  );
  // Node's transferableAbortSignal marks any object it is given as transferable (lib/internal/abort_controller.js:
  // markTransferMode), after which structuredClone hands Node's deserializer what the object's own
  // messaging methods answer: a module and class of Node's internals to construct (found by the adversarial
  // review: FileHandle, CryptoKey, X509Certificate, their prototypes the host's). A transfer only serves
  // another thread, which a service cannot have (worker_threads).
  const noTransfer = (name: string, length: number) =>
    refusedConstructor(`util.${name}`, 'a transferable signal serves a MessagePort to another thread, which a service cannot have', 'Use the AbortSignal itself: pass it to what should stop.', length);
  const guestUtil: Record<string, unknown> = {
    ...util,
    inspect,
    format,
    formatWithOptions,
    debuglog,
    debug: debuglog,
    deprecate,
    callbackify,
    ...(log ? { log } : {}),
    promisify,
    transferableAbortSignal: noTransfer('transferableAbortSignal', 1),
    transferableAbortController: noTransfer('transferableAbortController', 0),
  };
  return guestUtil;
};
