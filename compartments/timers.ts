/**
 * Timers inside a service. Arming and clearing a timer are syscalls; a timer
 * firing is a delivery. Timer ids come from a counter inside the service, so
 * replay hands out the same ids. On replay no host timer is armed (the log
 * says when each one fired); when the service goes live, every timer still
 * pending is armed again on the host, with its full delay.
 */
import hostTimers from 'node:timers';
import type { Membrane } from '../membrane/index.js';

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

/** What `setTimeout` returns inside a service: Node's shape, a number when coerced; named as Node's class (inspect prints `Timeout {...}`). */
class Timeout {
  readonly #id: number;
  constructor(id: number) {
    this.#id = id;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  hasRef(): boolean {
    return true;
  }
  refresh(): this {
    return this;
  }
  [Symbol.toPrimitive](): number {
    return this.#id;
  }
  static idOf(value: unknown): number {
    if (value instanceof Timeout) return value.#id;
    return Number(value);
  }
}
/** What `setImmediate` returns (Node's class is `Immediate`). */
class Immediate extends Timeout {}
harden(Timeout);
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

  const set = (kind: Kind, fn: unknown, delay: unknown, args: unknown[]): Timeout => {
    if (typeof fn !== 'function') throw new TypeError(`The "callback" argument must be of type function. Received ${typeof fn}`);
    const ms = kind === 'immediate' ? 0 : Math.max(1, Math.min(2 ** 31 - 1, Number(delay) || 0));
    const id = nextId++;
    const handle = kind === 'immediate' ? new Immediate(id) : new Timeout(id);
    table.set(id, { fn: fn as (...a: unknown[]) => unknown, handle, args, kind, delay: ms });
    membrane.syscall('timer.set', [id, kind, ms], () => arm(id));
    return handle;
  };

  const clear = (handle: unknown): void => {
    if (handle === undefined || handle === null) return;
    const id = Timeout.idOf(handle);
    if (!table.has(id)) return;
    table.delete(id);
    membrane.syscall('timer.clear', [id], () => disarm(id));
  };

  const setTimeout = (fn: unknown, delay?: unknown, ...args: unknown[]) => set('timeout', fn, delay, args);
  const setInterval = (fn: unknown, delay?: unknown, ...args: unknown[]) => set('interval', fn, delay, args);
  const setImmediate = (fn: unknown, ...args: unknown[]) => set('immediate', fn, 0, args);

  const globals = {
    setTimeout,
    setInterval,
    setImmediate,
    clearTimeout: clear,
    clearInterval: clear,
    clearImmediate: clear,
  };

  const timersPromisesModule = {
    setTimeout: (delay?: number, value?: unknown) => new Promise(resolve => setTimeout(() => resolve(value), delay)),
    setImmediate: (value?: unknown) => new Promise(resolve => setImmediate(() => resolve(value))),
    scheduler: {
      wait: (delay?: number) => new Promise(resolve => setTimeout(resolve, delay)),
      yield: () => new Promise(resolve => setImmediate(resolve)),
    },
  };

  // util.promisify(setTimeout) and util.promisify(setImmediate) give timers/promises' functions, as in Node
  // (which defines util.promisify.custom on them; without it promisify passed its callback as the delay).
  // A getter, as Node's: promisify marks the function it returns, so each read makes a fresh one (not frozen,
  // and never shared: it only calls the service's own timers).
  const custom = Symbol.for('nodejs.util.promisify.custom');
  Object.defineProperty(setTimeout, custom, {
    enumerable: true,
    get: () => Object.defineProperty((delay?: number, value?: unknown) => timersPromisesModule.setTimeout(delay, value), 'name', { value: 'setTimeout' }),
  });
  Object.defineProperty(setImmediate, custom, {
    enumerable: true,
    get: () => Object.defineProperty((value?: unknown) => timersPromisesModule.setImmediate(value), 'name', { value: 'setImmediate' }),
  });

  return {
    globals: harden(globals),
    timersModule: harden({ ...globals }),
    timersPromisesModule: harden(timersPromisesModule),
    pending: () => table.size,
    disarmAll: () => {
      for (const id of [...armed.keys()]) disarm(id);
    },
  };
};
