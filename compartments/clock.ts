/**
 * Time and randomness inside a service.
 *
 * - `Date.now()`, `new Date()`, `Date()` read the recorded clock.
 * - `performance.now()` (and `process.hrtime`) read the recorded monotonic clock.
 * - `Math.random()` is a sfc32 generator seeded from one recorded 16-byte
 *   seed: a million calls cost one log entry. Each value takes two of its
 *   32-bit outputs and holds 52 random bits, a multiple of 2^-52 in [0, 1),
 *   as V8's does (one output, as before log format version 3, left the low
 *   bits of `Math.random() * 2 ** 52` always 0). When the service goes live
 *   it is reseeded from the host's entropy, never from anything in the log.
 * - Crypto randomness is recorded byte for byte (crypto.ts).
 */
import { randomFillSync } from 'node:crypto';
import { SEED_BYTES } from '../replay-log/index.js';
import type { Membrane } from '../membrane/index.js';
import { guardedStructuredClone } from './structured-clone.js';
import { inheritTag } from './host-shape.js';

const HostDate = Date;
const hostNow = Date.now;
let hostPerfNow: (() => number) | undefined;
/**
 * The host's performance.now(), captured when first read: Node loads its perf_hooks modules (about a
 * millisecond) the first time the global is touched, which a restore that never reads the live clock
 * does without.
 */
const hostPerf = (): number => (hostPerfNow ??= performance.now.bind(performance))();
const realSeed = (): Uint8Array => randomFillSync(new Uint8Array(SEED_BYTES));

export interface Clock {
  readonly now: () => number;
  readonly perfNow: () => number;
  readonly Date: DateConstructor;
  /** `Date.prototype` inside the service: its own, inheriting the shared one, whose `constructor` is the service's Date. */
  readonly datePrototype: object;
  /** structuredClone inside the service: copied Dates have its Date.prototype. */
  readonly structuredClone: (value: unknown, options?: { transfer?: unknown[] }) => unknown;
  /**
   * Clone `object` (a Proxy of the service's, which V8 cannot clone: process.env) as what `plain()` makes
   * when it is the value given to structuredClone, as Node clones its own exotic object.
   */
  readonly cloneAs: (object: object, plain: () => unknown) => void;
  readonly Math: Math;
  readonly performance: { now(): number; readonly timeOrigin: number };
}

export const makeClock = (membrane: Membrane): Clock => {
  const now = () => membrane.now(hostNow);
  const perfNow = () => membrane.perf(hostPerf);

  // A Date constructor whose "current time" is recorded. Its prototype is
  // the service's own, inheriting the shared Date.prototype (every method),
  // so that `date.constructor === Date` and `Date.prototype.constructor ===
  // Date` hold as in Node (papaparse, dequal and klona compare constructors).
  // `instanceof Date` holds for every Date, made here or by the host
  // (structuredClone), as it did when the prototype was the shared one.
  function GuestDate(this: unknown, ...args: unknown[]): unknown {
    if (new.target === undefined) return new HostDate(now()).toString();
    if (args.length === 0) return Reflect.construct(HostDate, [now()], new.target);
    return Reflect.construct(HostDate, args, new.target);
  }
  // The shared prototype's members are its own too (as Date.prototype's in Node: getOwnPropertyNames, hasOwnProperty).
  const datePrototype = Object.create(HostDate.prototype, {
    ...Object.getOwnPropertyDescriptors(HostDate.prototype),
    constructor: { value: GuestDate, writable: true, enumerable: false, configurable: true },
  }) as object;
  const isPrototypeOf = Object.prototype.isPrototypeOf;
  Object.defineProperties(GuestDate, {
    prototype: { value: datePrototype },
    // What OrdinaryHasInstance answers in Node, for Dates of either prototype.
    [Symbol.hasInstance]: { value: (value: unknown): boolean => value !== datePrototype && Reflect.apply(isPrototypeOf, HostDate.prototype, [value]) },
    now: { value: now, writable: true, configurable: true },
    parse: { value: HostDate.parse, writable: true, configurable: true },
    UTC: { value: HostDate.UTC, writable: true, configurable: true },
    name: { value: 'Date' },
    length: { value: 7 },
  });

  // Math with a recorded-seed generator: sfc32, its state in closure
  // variables (typed-array stores are slow under lockdown).
  let seeded = false;
  // 52 random bits a value (two steps), as V8's Math.random gives (multiples of 2^-52); a log of format
  // version 1 or 2 was made with 32 (one step), and is replayed so (Journal#formatVersion).
  let wide = true;
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  const step = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (((c << 21) | (c >>> 11)) + t) | 0;
    return t >>> 0;
  };
  const random = (): number => {
    if (!seeded) {
      const seed = new DataView(Uint8Array.from(membrane.seed(realSeed)).buffer);
      a = seed.getUint32(0, true) | 0;
      b = seed.getUint32(4, true) | 0;
      c = seed.getUint32(8, true) | 0;
      d = seed.getUint32(12, true) | 0;
      if ((a | b | c | d) === 0) d = 1;
      seeded = true;
      wide = membrane.journal.formatVersion >= 3;
      for (let i = 0; i < 12; i += 1) step();
    }
    return wide ? ((step() >>> 6) * 67108864 + (step() >>> 6)) / 4503599627370496 : step() / 4294967296;
  };
  membrane.journal.onLive(() => {
    seeded = false;
  });
  const GuestMath = Object.create(Object.prototype, {
    ...Object.getOwnPropertyDescriptors(Math),
    random: { value: random, writable: true, configurable: true, enumerable: false },
  }) as Math;

  let timeOrigin: number | undefined;
  const guestPerformance = {
    // A method, so named 'now' as Node's.
    now() {
      return perfNow();
    },
    get timeOrigin(): number {
      timeOrigin ??= membrane.syscall('performance.timeOrigin', [], () => performance.timeOrigin) as number;
      return timeOrigin;
    },
    toJSON() {
      return { timeOrigin: this.timeOrigin };
    },
  };

  // structuredClone, whose Dates get the service's Date.prototype as its own Dates have it.
  const hostClone = structuredClone;
  const withGuestDates = (root: unknown): void => {
    const seen = new Set<object>();
    const visit = (value: unknown): void => {
      if (typeof value !== 'object' || value === null || seen.has(value)) return;
      seen.add(value);
      if (value instanceof HostDate) {
        if (Object.getPrototypeOf(value) === HostDate.prototype) Object.setPrototypeOf(value, datePrototype);
      } else if (value instanceof Map) {
        for (const [key, entry] of value) {
          visit(key);
          visit(entry);
        }
      } else if (value instanceof Set) {
        for (const entry of value) visit(entry);
      } else if (!ArrayBuffer.isView(value)) {
        for (const key of Object.keys(value)) visit((value as Record<string, unknown>)[key]);
        if (value instanceof Error) visit((value as { cause?: unknown }).cause);
      }
    };
    visit(root);
  };
  const clonedAs = new WeakMap<object, () => unknown>();
  const guestStructuredClone = {
    structuredClone(...args: unknown[]): unknown {
      // Without a value Node throws its own TypeError.
      if (args.length === 0) return Reflect.apply(hostClone, undefined, []);
      const plain = typeof args[0] === 'object' && args[0] !== null ? clonedAs.get(args[0]) : undefined;
      const copy = guardedStructuredClone(hostClone as (value: unknown, options?: unknown) => unknown, plain ? plain() : args[0], args[1]);
      withGuestDates(copy);
      return copy;
    },
  }.structuredClone;

  // Node's is a Performance (its names are the methods' own): tagged without reading the global, which loads perf_hooks.
  inheritTag(guestPerformance, 'Performance');
  // Node's clone of its performance copies its own enumerable properties: it has none (its methods are inherited).
  clonedAs.set(guestPerformance, () => ({}));
  return harden({
    now,
    perfNow,
    structuredClone: guestStructuredClone,
    cloneAs: (object: object, plain: () => unknown) => {
      clonedAs.set(object, plain);
    },
    Date: GuestDate as unknown as DateConstructor,
    datePrototype,
    Math: GuestMath,
    performance: guestPerformance,
  });
};
