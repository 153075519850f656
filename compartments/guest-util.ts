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
 * Errors given to `inspect`, `format` and the console are printed as Node
 * prints them (the stack, then own properties such as `code`): under
 * lockdown the shared Error prototypes' `constructor` is an accessor, which
 * Node's inspect does not recognise (it would print `{}`). Errors nested
 * inside other values, and Map, Set and Promise, still print differently
 * (see the differential test's known differences).
 */
import util from 'node:util';

type InspectOptions = util.InspectOptions;

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

  /** An Error as Node's inspect prints it: its stack (or header), then its own enumerable properties. */
  const renderError = (error: Error, options: InspectOptions): string => {
    const stack = typeof error.stack === 'string' && error.stack !== '' ? error.stack : String(Error.prototype.toString.call(error));
    const own = Object.keys(error).filter(key => key !== 'stack' && key !== 'message');
    if (own.length === 0) return stack;
    const props: Record<string, unknown> = {};
    for (const key of own) props[key] = (error as unknown as Record<string, unknown>)[key];
    const body = util.inspect(props, { ...options, breakLength: 0 });
    return `${stack} ${body}`;
  };
  const isError = (value: unknown): value is Error => util.types.isNativeError(value) || value instanceof Error;
  // Node inspects an error given to %s or %o as it inspects one given alone: rendered either way.
  const renderArgs = (options: InspectOptions, args: unknown[]): unknown[] => args.map(arg => (isError(arg) ? renderError(arg, options) : arg));

  const inspect = function inspect(value: unknown, ...args: unknown[]): string {
    const options = { ...defaults, ...optionsOf(args) };
    return isError(value) ? renderError(value, options) : util.inspect(value, options);
  } as ((value: unknown, ...args: unknown[]) => string) & Record<string, unknown>;
  Object.defineProperty(inspect, 'defaultOptions', {
    get: () => defaults,
    set: (options: unknown) => {
      if (typeof options !== 'object' || options === null) throw new TypeError('The "options" argument must be of type object.');
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
    return util.formatWithOptions(merged, ...renderArgs(merged, args));
  };
  const format = (...args: unknown[]): string => util.formatWithOptions(defaults, ...renderArgs(defaults, args));

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

  const deprecate = <F extends (...args: unknown[]) => unknown>(fn: F, message: string, code?: string): F => {
    let warned = false;
    function deprecated(this: unknown, ...args: unknown[]): unknown {
      if (!warned && !guestProcess.noDeprecation) {
        warned = true;
        (guestProcess.emitWarning as (m: string, t: string, c?: string) => void)(message, 'DeprecationWarning', code);
      }
      return new.target ? Reflect.construct(fn, args, new.target) : Reflect.apply(fn, this, args);
    }
    Object.setPrototypeOf(deprecated, fn);
    if (fn.prototype) deprecated.prototype = fn.prototype;
    return deprecated as unknown as F;
  };

  // callbackify: the callback runs on the service's own nextTick (a throwing callback is reported, not fatal to the host).
  const callbackify = (original: (...args: unknown[]) => Promise<unknown>) => {
    if (typeof original !== 'function') throw new TypeError('The "original" argument must be of type function');
    const nextTick = guestProcess.nextTick as (fn: (...a: unknown[]) => void, ...args: unknown[]) => void;
    return function callbackified(this: unknown, ...args: unknown[]) {
      const callback = args.pop();
      if (typeof callback !== 'function') throw new TypeError('The last argument must be of type function');
      Reflect.apply(original, this, args).then(
        (value: unknown) => nextTick(callback as (...a: unknown[]) => void, null, value),
        (reason: unknown) => {
          const error = reason ? reason : Object.assign(new Error('Promise was rejected with a falsy value'), { code: 'ERR_FALSY_VALUE_REJECTION', reason });
          nextTick(callback as (...a: unknown[]) => void, error);
        },
      );
    };
  };

  // util.log: Node's format (`30 Nov 06:41:32 - message`) on the recorded clock, through the service's console.
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const log = (...args: unknown[]) => {
    const d = new Date(now());
    const pad = (n: number) => String(n).padStart(2, '0');
    printLog('%s - %s', `${d.getDate()} ${months[d.getMonth()]} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`, format(...args));
  };

  const guestUtil: Record<string, unknown> = { ...util, inspect, format, formatWithOptions, debuglog, debug: debuglog, deprecate, callbackify, log };
  return guestUtil;
};
