/**
 * A `process` for services: what packages commonly read, each read of host
 * state recorded. `env` reads are syscalls (writes stay inside the service);
 * `platform`, `version`, `cwd()`... are recorded so that replay on another
 * host sees the build host's answers; `exit` and signals are refused.
 * `nextTick` queues on the host's own tick queue, so its callbacks run
 * before promise jobs exactly as in Node (the turn ends only once both
 * queues are empty); a callback that throws is reported as uncaught, as a
 * timer callback is, instead of taking the host process down.
 *
 * The environment records only what the service reads: enumerating it
 * (`Object.keys(process.env)`, `for...in`) records the names (`env.keys`),
 * `name in process.env` records a boolean (`env.has`), and a value is
 * recorded when it is read (`env.get`). Its properties are therefore
 * accessors, not data properties as in Node (only
 * `Object.getOwnPropertyDescriptor(process.env, name)` shows the difference).
 * Values of secret names (compartments/secrets.ts) are sealed in the log.
 */
import type { Membrane } from '../membrane/index.js';
import { Writable } from 'node:stream';
import { determinismViolation } from './errors.js';
import { likeHost } from './host-shape.js';
import { makeSecretMatcher, type SecretMatcher } from './secrets.js';
import { invalidArgType, nodeError, outOfRange, validateFunction } from './node-style-errors.js';

/** Not `fn(...args)`: under lockdown a spread call runs through the (frozen) array iterator, about 0.5 us a call. */
const { apply } = Reflect;

/**
 * The library's own configuration: never shown to services. The seal key
 * would let one read every sealed value; the app's bus key
 * (SNAPSHOT_APP_KEY) would let it, or whoever it sent the key to, sign
 * calls and replies on the bus as any host of the app; NATS_CREDS names
 * the bus credentials file.
 */
const hiddenEnv: ReadonlySet<string> = new Set(['SNAPSHOT_SEAL_KEY', 'SNAPSHOT_APP_KEY', 'NATS_CREDS', 'MEMBRANE_SNAPSHOT_PINNED', 'MEMBRANE_SNAPSHOT_PARENT_FD']);

/**
 * The name of an environment variable as the system reads it: up to its first NUL (Node hands the name to
 * getenv/setenv as a C string). A service asking for 'SNAPSHOT_SEAL_KEY\0' read the seal key, past a check of
 * the name as written (found by the adversarial review). A name with '=' in it names no variable here: glibc's
 * getenv('N=p') answers what follows 'p=' in N's value, a part of N read under another name (found by the
 * adversarial review: SERVICE_KEY's secret read as 'SERVICE_KEY=id', unsealed).
 */
const envName = (key: string): string => {
  const nul = key.indexOf('\0');
  return nul === -1 ? key : key.slice(0, nul);
};

/** A name no service reads: one of the library's own, or one with '=' (see envName). */
const unreadable = (name: string): boolean => hiddenEnv.has(name) || name.includes('=');

export const makeProcess = (
  membrane: Membrane,
  perfNow: () => number,
  print: (text: string) => void,
  onUncaught: (error: unknown, where: string) => void,
  secrets: SecretMatcher = makeSecretMatcher(),
): Record<string, unknown> => {
  const overlay = new Map<string, string | undefined>();
  const envGet = (written: string): string | undefined => {
    const key = envName(written);
    if (overlay.has(key)) return overlay.get(key);
    if (unreadable(key)) return undefined;
    // Variables only, one lookup: a variable's value is a string, what the host's process.env inherits is not
    // (its hasOwnProperty is the host's function).
    return membrane.syscall('env.get', [key], k => {
      const name = envName(String(k));
      if (unreadable(name)) return undefined;
      const value: unknown = process.env[name];
      return secrets.mark(typeof value === 'string' ? value : undefined, secrets.isSecretEnv(name), `environment variable ${name}`);
    }) as string | undefined;
  };
  const envHas = (written: string): boolean => {
    const key = envName(written);
    if (overlay.has(key)) return overlay.get(key) !== undefined;
    if (unreadable(key)) return false;
    return membrane.syscall('env.has', [key], k => {
      const name = envName(String(k));
      return !unreadable(name) && Object.prototype.hasOwnProperty.call(process.env, name);
    }) as boolean;
  };
  /**
   * Set variable `key` for the service. TZ takes UTC only: the process runs in UTC (lockdown.ts), and
   * V8 reads TZ for the whole process, so another zone cannot be the service's alone; where Node would
   * move every local-time reading (getHours, toString) to that zone, a service's would silently stay
   * in UTC (found by the fidelity review): refused with DETERMINISM_VIOLATION instead.
   */
  const setVariable = (key: string, value: string): void => {
    const name = envName(key);
    if (name === 'TZ' && !/^:?(?:Etc\/)?UTC$/.test(value)) {
      throw determinismViolation(
        `process.env.TZ = ${JSON.stringify(value)}`,
        "a service's local time is UTC on every host (the process runs in UTC, and a time zone is the whole process's)",
        "Read the time in a zone with Intl.DateTimeFormat(locale, { timeZone }) or toLocaleString(locale, { timeZone }), or a date library's time-zone support.",
      );
    }
    overlay.set(name, value);
  };
  /** A value set, as Node stores it: ToString, which refuses a Symbol (String() would write "Symbol(v)"). */
  const envValue = (value: unknown): string => {
    if (typeof value === 'symbol') throw new TypeError('Cannot convert a Symbol value to a string');
    return String(value);
  };
  const accessors = new Map<string, PropertyDescriptor>();
  const accessor = (key: string): PropertyDescriptor => {
    let descriptor = accessors.get(key);
    if (!descriptor) {
      descriptor = {
        get: () => envGet(key),
        set: (value: unknown) => {
          setVariable(key, envValue(value));
        },
        enumerable: true,
        configurable: true,
      };
      accessors.set(key, descriptor);
    }
    return { ...descriptor };
  };
  const envKeys = (): string[] => {
    // In the host's order, as Node enumerates process.env (the order of the process's environment), not sorted.
    const host = membrane.syscall('env.keys', [], () => Object.keys(process.env).filter(k => !hiddenEnv.has(k))) as string[];
    const keys = new Set(host);
    for (const [k, v] of overlay) {
      if (v === undefined) keys.delete(k);
      else keys.add(k);
    }
    return [...keys];
  };
  // As Node's process.env: a variable, else what objects inherit (process.env.hasOwnProperty('X'),
  // String(process.env)); values set are strings; a Symbol key is refused, as Node refuses it.
  const env = new Proxy({} as Record<string, string | undefined>, {
    get: (target, key, receiver) => {
      if (typeof key === 'string') {
        const value = envGet(key);
        if (value !== undefined) return value;
      }
      return Reflect.get(target, key, receiver);
    },
    has: (target, key) => (typeof key === 'string' && envHas(key)) || Reflect.has(target, key),
    set: (_t, key, value) => {
      if (typeof key === 'symbol') throw new TypeError('Cannot convert a Symbol value to a string');
      setVariable(key, envValue(value));
      return true;
    },
    deleteProperty: (_t, key) => {
      if (typeof key === 'string') overlay.set(envName(key), undefined);
      return true;
    },
    ownKeys: () => envKeys(),
    // An accessor, not a data property as Node's: a data descriptor holds the value, and Object.keys(process.env)
    // asks for every descriptor, so every value would be recorded where only the names were read.
    getOwnPropertyDescriptor: (_t, key) => (typeof key === 'string' && envHas(key) ? accessor(key) : undefined),
    // Node's process.env cannot be made non-extensible (nor frozen, nor sealed): the target stays extensible,
    // or the traps above would break the proxy's invariants for good.
    preventExtensions: () => {
      throw new TypeError('Cannot prevent extensions');
    },
    // Node's rule: a data descriptor that is configurable, writable and enumerable sets the variable (as a string).
    defineProperty: (_t, key, descriptor) => {
      if (typeof key === 'symbol') throw new TypeError('Cannot convert a Symbol value to a string');
      if ('get' in descriptor || 'set' in descriptor) throw nodeError(TypeError, 'ERR_INVALID_OBJECT_DEFINE_PROPERTY', "'process.env' does not accept an accessor(getter/setter) descriptor");
      if (!descriptor.configurable || !descriptor.writable || !descriptor.enumerable) {
        throw nodeError(TypeError, 'ERR_INVALID_OBJECT_DEFINE_PROPERTY', "'process.env' only accepts a configurable, writable, and enumerable data descriptor");
      }
      setVariable(key, String(descriptor.value));
      return true;
    },
  });

  // Named as Node's function (memoryUsage.rss is 'rss').
  const hostInfo = (name: string, read: () => unknown) =>
    Object.defineProperty(() => membrane.syscall(`process.${name}`, [], read), 'name', { value: name.slice(name.lastIndexOf('.') + 1) });
  const platform = hostInfo('platform', () => process.platform);
  const arch = hostInfo('arch', () => process.arch);
  const version = hostInfo('version', () => process.version);
  const versions = hostInfo('versions', () => ({ ...process.versions }));
  const release = hostInfo('release', () => ({ ...process.release }));

  const memoryUsage = hostInfo('memoryUsage', () => process.memoryUsage());
  (memoryUsage as typeof memoryUsage & { rss: () => unknown }).rss = hostInfo('memoryUsage.rss', () => process.memoryUsage.rss());
  /**
   * Node's `process.cpuUsage(previousValue?)`: `{ user, system }` in microseconds, the host's CPU
   * time (recorded), less `previousValue`'s when one is given; a bad previous value throws Node's
   * own errors (the host's cpuUsage checks it; its reading is not used).
   */
  const cpuUsage = (previousValue?: unknown): { user: number; system: number } => {
    const previous = previousValue as NodeJS.CpuUsage;
    if (previous) process.cpuUsage(previous);
    const [user, system] = membrane.syscall('process.cpuUsage', [], () => {
      const usage = process.cpuUsage();
      return [usage.user, usage.system];
    }) as [number, number];
    return previous ? { user: user - previous.user, system: system - previous.system } : { user, system };
  };
  const hrtime = (previous?: [number, number]): [number, number] => {
    // Node's checks: an array of two numbers, or nothing.
    if (previous !== undefined) {
      if (!Array.isArray(previous)) throw invalidArgType('time', 'an instance of Array', previous);
      if (previous.length !== 2) throw outOfRange('time', '2', previous.length);
    }
    const ns = Math.round(perfNow() * 1e6);
    let sec = Math.floor(ns / 1e9);
    let nano = ns % 1e9;
    if (previous) {
      sec -= previous[0];
      nano -= previous[1];
      if (nano < 0) {
        sec -= 1;
        nano += 1e9;
      }
    }
    return [sec, nano];
  };
  hrtime.bigint = () => BigInt(Math.round(perfNow() * 1e6));

  const self: Record<string, unknown> = {};
  // Listening does nothing: each its own function, named as Node's (on is addListener and off removeListener, as in Node).
  const ignored = () => () => self;
  const addListener = ignored();
  const removeListener = ignored();
  const refuse = (what: string) => () => {
    throw determinismViolation(`process.${what}`, 'a service does not own the process it runs in', 'Return from your function or throw an error instead.');
  };
  // Shaped as Node's process.stdout.write, a Writable's.
  const write = likeHost((text: unknown) => {
    membrane.syscall('console.log', [String(text).replace(/\n$/, '')], t => print(t as string));
    return true;
  }, Writable.prototype.write);
  Object.defineProperties(self, {
    env: { value: env, enumerable: true },
    platform: { get: platform, enumerable: true },
    arch: { get: arch, enumerable: true },
    version: { get: version, enumerable: true },
    versions: { get: versions, enumerable: true },
    release: { get: release, enumerable: true },
    // Object.prototype.toString.call(process) is '[object process]' in Node (axios picks its http adapter by it).
    [Symbol.toStringTag]: { value: 'process', configurable: true },
  });
  Object.assign(self, {
    argv: ['node', 'service'],
    execArgv: [],
    title: 'node',
    browser: false,
    exitCode: undefined,
    cwd: hostInfo('cwd', () => process.cwd()),
    uptime: () => perfNow() / 1000,
    memoryUsage,
    // What metrics libraries read (prom-client's default metrics): the host's, recorded, as memoryUsage.
    cpuUsage,
    resourceUsage: hostInfo('resourceUsage', () => process.resourceUsage()),
    availableMemory: hostInfo('availableMemory', () => process.availableMemory()),
    constrainedMemory: hostInfo('constrainedMemory', () => process.constrainedMemory()),
    hrtime,
    nextTick: (fn: (...args: unknown[]) => void, ...args: unknown[]) => {
      validateFunction(fn, 'callback');
      membrane.turns.nextTick(() => {
        try {
          apply(fn, undefined, args);
        } catch (error) {
          onUncaught(error, 'process.nextTick callback');
        }
      });
    },
    // As Node prints one (lib/internal/process/warning.js), without the pid a service does not have: `[code] Type: message`,
    // then its detail; a warning neither a string nor an Error is Node's ERR_INVALID_ARG_TYPE (found by the fidelity review).
    emitWarning: (warning: unknown, typeOrOptions?: unknown, codeArg?: unknown): void => {
      let type: unknown = 'Warning';
      let code: unknown = codeArg;
      let detail: unknown;
      if (typeof typeOrOptions === 'object' && typeOrOptions !== null) {
        ({ type = 'Warning', code, detail } = typeOrOptions as { type?: unknown; code?: unknown; detail?: unknown });
      } else if (typeof typeOrOptions === 'string') type = typeOrOptions;
      let message: string;
      if (warning instanceof Error) {
        message = String(warning.message);
        type = warning.name;
      } else if (typeof warning === 'string') message = warning;
      else throw invalidArgType('warning', 'of type string or an instance of Error', warning);
      write(`${typeof code === 'string' ? `[${code}] ` : ''}${String(type)}: ${message}${typeof detail === 'string' ? `\n${detail}` : ''}`);
    },
    on: addListener,
    once: ignored(),
    off: removeListener,
    addListener,
    removeListener,
    removeAllListeners: ignored(),
    prependListener: ignored(),
    listeners: () => [],
    listenerCount: () => 0,
    emit: () => false,
    exit: refuse('exit'),
    reallyExit: refuse('reallyExit'),
    abort: refuse('abort'),
    kill: refuse('kill'),
    chdir: refuse('chdir'),
    umask: () => 0o022,
    // No isTTY, as Node's streams when they are no terminal (a pipe, a file): a service's output is none.
    stdout: { write, fd: 1 },
    stderr: { write, fd: 2 },
  });
  return self;
};
