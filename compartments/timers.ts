/**
 * Timers inside a service. Arming and clearing a timer are syscalls; a timer
 * firing is a delivery. Timer ids come from a counter inside the service, so
 * replay hands out the same ids. On replay no host timer is armed (the log
 * says when each one fired); when the service goes live, every timer still
 * pending is armed again on the host, with its full delay.
 */
import hostTimers from 'node:timers';
import { addAbortListener } from 'node:events';
import type { Membrane } from '../membrane/index.js';
import { abortError, invalidArgType, listenerError, validateAbortSignal, validateFunction, validateNumber } from './node-style-errors.js';
import { likeHostAll } from './host-shape.js';

/** Not `fn(...args)`: under lockdown a spread call runs through the (frozen) array iterator, about 0.5 us a call. */
const { apply } = Reflect;

type Kind = 'timeout' | 'interval' | 'immediate';

interface GuestTimerRecord {
  readonly fn: (...args: unknown[]) => unknown;
  /** The handle `set` returned: Node calls the callback with it as `this` (`clearInterval(this)`). */
  readonly handle: object;
  readonly args: unknown[];
  readonly kind: Kind;
  readonly delay: number;
}

/** What Node's timer handles share: `ref()`, `unref()`, and `hasRef()` answering what they last set. */
class TimerHandle {
  #referenced = true;
  ref(): this {
    this.#referenced = true;
    return this;
  }
  unref(): this {
    this.#referenced = false;
    return this;
  }
  hasRef(): boolean {
    return this.#referenced;
  }
}

/**
 * What `setTimeout` and `setInterval` return inside a service: Node's
 * `Timeout` (its name and methods; a number when coerced, which
 * clearTimeout takes too; `close()` clears it). Whether a timer is
 * referenced changes nothing else here: a service's timers run as recorded.
 */
class Timeout extends TimerHandle {
  readonly #id: number;
  readonly #clear: (id: number) => void;
  constructor(id: number, clear: (id: number) => void) {
    super();
    this.#id = id;
    this.#clear = clear;
  }
  refresh(): this {
    return this;
  }
  close(): this {
    this.#clear(this.#id);
    return this;
  }
  [Symbol.toPrimitive](): number {
    return this.#id;
  }
  /** Node 20's `using`: clears the timer (lib/internal/timers.js). */
  [Symbol.dispose](): void {
    this.#clear(this.#id);
  }
  static idOf(value: unknown): number {
    return value instanceof Timeout ? value.#id : Number(value);
  }
}
harden(Timeout);

/** What `setImmediate` returns inside a service: Node's `Immediate` (no number when coerced, no refresh or close). */
class Immediate extends TimerHandle {
  readonly #id: number;
  readonly #clear: (id: number) => void;
  constructor(id: number, clear: (id: number) => void) {
    super();
    this.#id = id;
    this.#clear = clear;
  }
  /** Node 20's `using`: clears the immediate (lib/timers.js). */
  [Symbol.dispose](): void {
    this.#clear(this.#id);
  }
  static idOf(value: Immediate): number {
    return value.#id;
  }
}
harden(Immediate);

export interface GuestTimers {
  readonly globals: Record<string, unknown>;
  readonly timersModule: Record<string, unknown>;
  readonly timersPromisesModule: Record<string, unknown>;
  /** Pending timers, for NOT_QUIESCENT reports and tests. */
  pending(): number;
  /** Cancel every host timer (the build is sealing). */
  disarmAll(): void;
}

export const makeTimers = (membrane: Membrane, onUncaught: (error: unknown, where: string) => void): GuestTimers => {
  const table = new Map<number, GuestTimerRecord>();
  const armed = new Map<number, { kind: Kind; handle: unknown }>();
  let nextId = 1;

  const arm = (id: number): void => {
    const timer = table.get(id);
    if (!timer || armed.has(id)) return;
    const fire = () => membrane.turns.enqueue({ kind: 'timer', timer: id });
    const handle =
      timer.kind === 'immediate'
        ? hostTimers.setImmediate(fire)
        : timer.kind === 'interval'
          ? hostTimers.setInterval(fire, timer.delay)
          : hostTimers.setTimeout(fire, timer.delay);
    armed.set(id, { kind: timer.kind, handle });
  };

  const disarm = (id: number): void => {
    const host = armed.get(id);
    if (!host) return;
    armed.delete(id);
    if (host.kind === 'immediate') hostTimers.clearImmediate(host.handle as NodeJS.Immediate);
    else if (host.kind === 'interval') hostTimers.clearInterval(host.handle as NodeJS.Timeout);
    else hostTimers.clearTimeout(host.handle as NodeJS.Timeout);
  };

  membrane.onTimer = id => {
    const timer = table.get(id);
    if (!timer) return; // cleared after it fired on the host, before its turn came
    if (timer.kind !== 'interval') {
      table.delete(id);
      armed.delete(id);
    }
    try {
      apply(timer.fn, timer.handle, timer.args);
    } catch (error) {
      onUncaught(error, `${timer.kind} callback`);
    }
  };

  membrane.journal.onLive(() => {
    for (const id of table.keys()) arm(id);
  });

  const set = (kind: Kind, fn: unknown, delay: unknown, args: unknown[]): Timeout | Immediate => {
    validateFunction(fn, 'callback');
    // Node's rule (lib/internal/timers.js): a delay that is not a number from 1 to 2^31-1 ms is 1 ms.
    const after = Number(delay);
    const ms = kind === 'immediate' ? 0 : after >= 1 && after <= 2 ** 31 - 1 ? after : 1;
    const id = nextId++;
    const handle = kind === 'immediate' ? new Immediate(id, clearId) : new Timeout(id, clearId);
    table.set(id, { fn: fn as (...a: unknown[]) => unknown, handle, args, kind, delay: ms });
    membrane.syscall('timer.set', [id, kind, ms], () => arm(id));
    return handle;
  };

  const clearId = (id: number): void => {
    if (!table.has(id)) return;
    table.delete(id);
    membrane.syscall('timer.clear', [id], () => disarm(id));
  };
  // As Node's: clearTimeout and clearInterval take a Timeout or its number, not an Immediate;
  // clearImmediate takes an Immediate, and a Timeout never runs once given to it (Node unlinks it).
  const clear = (handle: unknown): void => {
    if (handle === undefined || handle === null || handle instanceof Immediate) return;
    clearId(Timeout.idOf(handle));
  };
  const clearImmediate = (handle: unknown): void => {
    if (handle instanceof Immediate) clearId(Immediate.idOf(handle));
    else if (handle instanceof Timeout) clearId(Timeout.idOf(handle));
    // Node marks what it is given as destroyed: on a number or another primitive, that throws.
    else if (handle && typeof handle !== 'object' && typeof handle !== 'function') {
      throw new TypeError(`Cannot create property '_destroyed' on ${typeof handle} '${String(handle)}'`);
    }
  };

  const setTimeout = (fn: unknown, delay?: unknown, ...args: unknown[]) => set('timeout', fn, delay, args);
  const setInterval = (fn: unknown, delay?: unknown, ...args: unknown[]) => set('interval', fn, delay, args);
  const setImmediate = (fn: unknown, ...args: unknown[]) => set('immediate', fn, 0, args);
  // Node's: two functions, each with its name; and Node's lengths (setTimeout(callback, after, arg1, arg2, arg3)).
  const clearTimeout = (handle: unknown): void => clear(handle);
  const clearInterval = (handle: unknown): void => clear(handle);
  for (const [fn, length] of [[setTimeout, 5], [setInterval, 5], [setImmediate, 4]] as const) Object.defineProperty(fn, 'length', { value: length });

  const globals = {
    setTimeout,
    setInterval,
    setImmediate,
    clearTimeout,
    clearInterval,
    clearImmediate,
  };

  // timers/promises, as Node's lib/timers/promises.js: options checked ({ signal, ref }), an aborted signal
  // rejecting with Node's AbortError (its reason the cause) before or while the timer waits. The signal is the
  // service's; its abort comes from the service's own code or recorded timers, so replay settles as the build did.
  // The callback timers, under names the functions below (named as Node's) do not shadow.
  const setTimeoutFn = setTimeout;
  const setIntervalFn = setInterval;
  const setImmediateFn = setImmediate;
  type SignalLike = { aborted: boolean; reason?: unknown; addEventListener(type: string, fn: () => void, options?: object): void; removeEventListener(type: string, fn: () => void): void };
  /** The options of a timers/promises function, checked as Node checks them: their signal, or the error to reject with. */
  const timerOptions = (options: unknown): { signal?: SignalLike; ref: boolean } => {
    if (options === null || typeof options !== 'object') throw invalidArgType('options', 'of type object', options);
    const { signal, ref = true } = options as { signal?: unknown; ref?: unknown };
    validateAbortSignal(signal, 'options.signal');
    if (typeof ref !== 'boolean') throw invalidArgType('options.ref', 'of type boolean', ref);
    return { signal: signal as SignalLike | undefined, ref };
  };
  /**
   * Listen for the signal's abort as Node's timers do: an AbortSignal through events.addAbortListener, which
   * an earlier listener's stopImmediatePropagation() cannot stop (Node's kResistStopPropagation); another
   * object with addEventListener (Node checks only for `aborted`) through that. Returns how to stop listening.
   */
  const onAbortOf = (signal: SignalLike, listener: () => void): (() => void) => {
    if (signal instanceof AbortSignal) {
      const listening = addAbortListener(signal, listener);
      return () => listening[Symbol.dispose]();
    }
    signal.addEventListener('abort', listener, { once: true });
    return () => signal.removeEventListener('abort', listener);
  };
  /** Node's check of a timers/promises delay: undefined, or a number (ERR_INVALID_ARG_TYPE otherwise). */
  const checkDelay = (delay: unknown): void => {
    if (delay !== undefined) validateNumber(delay, 'delay');
  };
  const waitFor = (arm: (resolve: (value: unknown) => void) => Timeout | Immediate, options: unknown, delay?: unknown): Promise<unknown> => {
    let signal: SignalLike | undefined;
    let ref: boolean;
    try {
      checkDelay(delay);
      ({ signal, ref } = timerOptions(options));
    } catch (error) {
      return Promise.reject(error);
    }
    if (signal?.aborted) return Promise.reject(abortError(signal.reason));
    let stopListening: (() => void) | undefined;
    const waiting = new Promise((resolve, reject) => {
      const handle = arm(resolve);
      if (!ref) handle.unref();
      if (signal) {
        const aborting = signal;
        stopListening = onAbortOf(aborting, () => {
          clearImmediate(handle);
          reject(listenerError(abortError(aborting.reason)));
        });
      }
    });
    return stopListening === undefined ? waiting : waiting.finally(stopListening);
  };
  // Named as Node's (setTimeout(delay, value, options), setImmediate(value, options)).
  const promiseTimeout = function setTimeout(delay?: unknown, value?: unknown, options: unknown = {}): Promise<unknown> {
    return waitFor(resolve => setTimeoutFn(() => resolve(value), delay), options, delay);
  };
  const promiseImmediate = function setImmediate(value?: unknown, options: unknown = {}): Promise<unknown> {
    return waitFor(resolve => setImmediateFn(() => resolve(value)), options);
  };
  /** Node's setInterval of timers/promises: an async iterator yielding `value` each `delay` ms, until its signal aborts or it is returned. */
  const promiseInterval = async function* setInterval(delay?: unknown, value?: unknown, options: unknown = {}): AsyncGenerator<unknown, void, unknown> {
    checkDelay(delay);
    const { signal, ref } = timerOptions(options);
    if (signal?.aborted) throw abortError(signal.reason);
    let notYielded = 0;
    let wake: ((failure?: Promise<never>) => void) | undefined;
    let handle: Timeout | undefined;
    let stopListening: (() => void) | undefined;
    try {
      handle = setIntervalFn(() => {
        notYielded += 1;
        wake?.();
        wake = undefined;
      }, delay) as Timeout;
      if (!ref) handle.unref();
      if (signal) {
        stopListening = onAbortOf(signal, () => {
          clearInterval(handle);
          wake?.(Promise.reject(listenerError(abortError(signal.reason))));
          wake = undefined;
        });
      }
      while (!signal?.aborted) {
        if (notYielded === 0) await new Promise<void>(resolve => (wake = resolve as (failure?: Promise<never>) => void));
        for (; notYielded > 0; notYielded -= 1) yield value;
      }
      throw abortError(signal?.reason);
    } finally {
      clearInterval(handle);
      stopListening?.();
    }
  };
  const timersPromisesModule = {
    setTimeout: promiseTimeout,
    setImmediate: promiseImmediate,
    setInterval: promiseInterval,
    scheduler: {
      wait: (delay?: unknown, options?: unknown) => promiseTimeout(delay, undefined, options),
      yield: () => promiseImmediate(),
    },
  };

  // util.promisify(setTimeout) and util.promisify(setImmediate) give timers/promises' functions, as in Node
  // (which defines util.promisify.custom on them; without it promisify passed its callback as the delay).
  // A getter, as Node's: promisify marks the function it returns, so each read makes a fresh one (not frozen,
  // and never shared: it only calls the service's own timers).
  const custom = Symbol.for('nodejs.util.promisify.custom');
  Object.defineProperty(setTimeout, custom, {
    enumerable: true,
    get: () => Object.defineProperty((delay?: number, value?: unknown, options: unknown = {}) => promiseTimeout(delay, value, options), 'name', { value: 'setTimeout' }),
  });
  Object.defineProperty(setImmediate, custom, {
    enumerable: true,
    get: () => Object.defineProperty((value?: unknown, options: unknown = {}) => promiseImmediate(value, options), 'name', { value: 'setImmediate' }),
  });

  likeHostAll(globals, hostTimers);
  likeHostAll(timersPromisesModule, hostTimers.promises);
  return {
    globals: harden(globals),
    // timers.promises is timers/promises, as in Node.
    timersModule: harden({ ...globals, promises: timersPromisesModule }),
    timersPromisesModule: harden(timersPromisesModule),
    pending: () => table.size,
    disarmAll: () => {
      for (const id of [...armed.keys()]) disarm(id);
    },
  };
};
