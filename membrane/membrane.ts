/**
 * The membrane between one service (the guest) and everything else (the
 * host: the build script, host capabilities, other services).
 *
 *           host side                      |   guest side (SES compartments)
 *                                          |
 *   hostProxy(#3) --call/deliver-->  Turns ---> exports[3]  (a guest object)
 *        ^  hostProxyIds / hostProxies     |        exportIds (WeakMap)
 *        |                                 |
 *   imports[7] (a host object) <--send--- guestProxy(#7)
 *        importIds (Map)                   |        guestProxyIds / guestProxies
 *
 * Two identity tables, one per direction: guest objects the host can reach
 * are *exports* (ids assigned in the order the guest hands them out, which
 * is deterministic, so replay reassigns the same ids); host objects the
 * guest can reach are *imports* (ids assigned when they cross, and recorded
 * in the log, so replay reads them back). Each side sees the other's objects
 * as proxies, and a proxy that crosses back unwraps to the original.
 *
 * Everything else crosses by copy, through wire values (replay-log/wire.ts):
 * the same walk produces what is logged and what the other side receives,
 * so recording and replay cannot disagree about what crossed.
 *
 * Guest-to-host operations are syscalls (checked on replay); host-to-guest
 * operations are deliveries (queued, one per turn, replayed from the log).
 */
import { LIVE_ANSWERS_FROM, SnapshotError, Slot, Tagged, describeWire, isDOMException, boxedValue, isArrayIndex, fromCodeUnits, viewConstructors, isRecordKey, objectEntries, objectWire, primitiveWire, NOT_PRIMITIVE, UNIQUE_SYMBOL, isSecret, packr, type Sealer, type SnapshotErrorCode, type DeliveryEntry, type ErrorRecord, type Outcome, type Side, type Wire } from '../replay-log/index.js';
import type { Journal } from './journal.js';
import type { Directory, ExportRef, LocalCall, WireAnswer, WireSide } from './directory.js';
import { Turns } from './turns.js';
import { IdTable } from './id-table.js';
import { calledByJsonStringify, isV8StackAccessor } from '../compartments/guest-errors.js';
import { hasHostStack, hasServiceStack, isLibraryError, markHostAnswer, markLibraryError, noteServiceLoaded } from './marks.js';
import { types } from 'node:util';
import { createHash } from 'node:crypto';

const { apply, getPrototypeOf, getOwnPropertyDescriptor, ownKeys } = Reflect;
const { keys, defineProperty, hasOwn } = Object;
const { isArray } = Array;
const { isView } = ArrayBuffer;
const objectPrototype = Object.prototype;
const MAX_DEPTH = 1000;
/** A settled promise: `then` on it queues a promise job and nothing else. */
const settled = Promise.resolve();

/** What a pending async syscall is, for NOT_QUIESCENT messages. */
interface PendingPromise {
  readonly resolve: (value: unknown) => void;
  readonly reject: (reason: unknown) => void;
  readonly what: string;
  readonly args: readonly Wire[];
}

interface Answer {
  readonly resolve: (value: unknown) => void;
  readonly reject: (reason: unknown) => void;
  /** Resolve with the answer's wire value (`WireAnswer`) instead of a host copy of it. */
  readonly wire?: true;
}


interface Import {
  /** The host object; absent after restore (a build-time handle) unless re-bound. */
  value: object | undefined;
  readonly iface: string;
  /** Set when the object is another service's export. */
  readonly origin?: ExportRef;
}

/** An import of this service that designates another service's export. */
export interface ServiceReference extends ExportRef {
  readonly import: number;
}

export interface MembraneOptions {
  readonly name: string;
  readonly journal: Journal;
  /** Evaluates the service's modules (the `start` delivery); resolves to its namespace. */
  readonly start: () => Promise<object>;
  /** Shared by the services of one process, so references between them are recognised. */
  readonly directory?: Directory;
  /** Seals secrets (`secret(value)`) in what is recorded and opens sealed values on replay. */
  readonly sealer?: Sealer;
}

export class Membrane implements WireSide {
  readonly name: string;
  readonly journal: Journal;
  readonly turns: Turns;
  readonly #start: () => Promise<object>;
  readonly #directory: Directory | undefined;
  readonly #sealer: Sealer | undefined;

  readonly #exportIds = new WeakMap<object, number>();
  readonly #exports: object[] = [];
  readonly #importIds = new Map<object, number>();
  readonly #imports = new Map<number, Import>();
  readonly #guestProxies = new Map<number, object>();
  readonly #guestProxyIds = new WeakMap<object, number>();
  readonly #hostProxies = new Map<number, object>();
  readonly #hostProxyIds = new WeakMap<object, number>();
  readonly #promises = new IdTable<PendingPromise>();
  readonly #answers = new IdTable<Answer>();
  /** Counts detachHost calls: an async syscall's host settlement is dropped when one happened since it started. */
  #hostEpoch = 0;
  readonly #boundMethods = new WeakMap<object, Map<string, { fn: unknown; proxy: object }>>();
  /** Exported functions of the service's namespace: called as `ns.f()`, their `this` is the namespace (as in Node). */
  readonly #receivers = new WeakMap<object, object>();
  /** The service's module namespace (#namespaceToWire), read through SES's own Proxy by #readData; and its export id. */
  readonly #namespaces = new WeakSet<object>();
  #namespaceId: number | undefined;
  #nextImport = 1;
  #nextPromise = 1;
  #nextAnswer = 1;
  #failure: unknown;
  readonly #failureListeners: Array<(error: unknown) => void> = [];

  /** The service's own Date.prototype (compartments/clock.ts): Dates copied into the service get it, as its own Dates have it. */
  guestDatePrototype: object | undefined;

  /** Called when a recorded timer fires (installed by the timers endowment). */
  onTimer: (id: number) => void = id => {
    throw new Error(`timer #${id} fired but the service has no timers`);
  };

  constructor(options: MembraneOptions) {
    this.name = options.name;
    noteServiceLoaded();
    this.journal = options.journal;
    this.#start = options.start;
    this.#directory = options.directory;
    this.#sealer = options.sealer;
    this.turns = new Turns(this.journal, entry => this.#perform(entry), error => this.fail(error));
    this.journal.onDivergence(error => this.fail(error));
    // Calls made while the log replays (another service gone live first, a timer re-armed) wait for the replay to
    // end; their answers are numbered apart from those the log's deliveries carry, or a replayed answer settled the
    // live call given its number (found by the adversarial review: a service got answers to the build's calls).
    if (this.journal.replaying) this.#nextAnswer = LIVE_ANSWERS_FROM;
  }

  // ---- the host's view ---------------------------------------------------

  /**
   * Evaluate the service (the first delivery) and resolve to its exports as
   * the host sees them: functions and objects with behaviour as proxies,
   * data exports read as they are at the time of reading (a copy at each
   * read), as live bindings (#liveExports).
   */
  startService(): Promise<Record<string, unknown>> {
    const promise = this.#awaitAnswer(0).then(record => this.#liveExports(record as Record<string, unknown>));
    // On replay the start delivery comes from the log like every other one.
    if (!this.journal.replaying) this.turns.enqueue({ kind: 'start' });
    return promise;
  }

  /** Deliver a call on a guest object; always eventual. */
  deliverCall(target: number, method: string | null, hostArgs: readonly unknown[], label = `#${target}`): Promise<unknown> {
    if (this.#failure) return Promise.reject(this.#failure);
    let args: Wire[];
    try {
      args = this.#toWireArray(hostArgs, 'host', () => `argument of ${method ?? label.replace(/^function /, '')}()`);
    } catch (error) {
      return Promise.reject(error);
    }
    const answer = this.#nextAnswer++;
    const promise = this.#awaitAnswer(answer);
    this.turns.enqueue({ kind: 'call', target, method, args, answer });
    return promise;
  }

  /**
   * Deliver a call from another service of this process (its LocalCall, see
   * directory.ts): as deliverCall, the answer handed to `settle` when the
   * service gives it rather than through a promise.
   */
  #deliverLocal(target: number, method: string | null, hostArgs: readonly unknown[], label: string, settle: (ok: boolean, value: unknown) => void): void {
    let args: Wire[];
    try {
      if (this.#failure) throw this.#failure;
      args = this.#toWireArray(hostArgs, 'host', () => `argument of ${method ?? label.replace(/^function /, '')}()`);
    } catch (error) {
      // In the promise job where the rejection of deliverCall's promise would have been seen.
      void settled.then(() => settle(false, error));
      return;
    }
    const answer = this.#nextAnswer++;
    this.#answers.set(answer, { resolve: value => settle(true, value), reject: reason => settle(false, reason) });
    this.turns.enqueue({ kind: 'call', target, method, args, answer });
  }

  /**
   * Deliver a call whose arguments are wire values already: a transport that
   * decoded them from bytes hands them over as they are, so they are not
   * walked into host values and back. In `args`, Slot('guest', id) is this
   * service's export #id and Slot('host', id) its import #id (`hostSlot`
   * makes them); the caller vouches for their shape, as a journal's reader
   * does for a log. Resolves to the answer's wire value (`hostObjectOf`
   * turns its Slots into host objects); rejects only when the service has
   * failed.
   */
  deliverWireCall(target: number, method: string | null, args: Wire[]): Promise<WireAnswer> {
    if (this.#failure) return Promise.reject(this.#failure);
    const answer = this.#nextAnswer++;
    const promise = new Promise<WireAnswer>((resolve, reject) => {
      this.#answers.set(answer, { resolve: resolve as (value: unknown) => void, reject, wire: true });
    });
    this.turns.enqueue({ kind: 'call', target, method, args, answer });
    return promise;
  }

  /** The Slot host object `object` crosses into the service as: an import, or the export it is a proxy of. */
  hostSlot(object: object): Slot {
    const id = this.#hostProxyIds.get(object);
    if (id !== undefined) return new Slot('guest', id);
    return this.#ref(object, 'host', 'an argument from another host');
  }

  /** The host object a Slot of a wire value leaving the service stands for (what the host would get). */
  hostObjectOf(slot: Slot): unknown {
    return this.#slotTo(slot, 'host');
  }

  /** Stop the service: every later delivery and waiting caller gets `error`. */
  fail(error: unknown): void {
    if (this.#failure) return;
    this.#failure = error;
    for (const listener of this.#failureListeners) listener(error);
    this.turns.stop(error);
    for (const [, answer] of this.#answers.entries()) answer.reject(error);
    this.#answers.clear();
  }

  /** Called once, with the error that stopped the service. */
  onFailure(listener: (error: unknown) => void): void {
    if (this.#failure) listener(this.#failure);
    else this.#failureListeners.push(listener);
  }

  get failure(): unknown {
    return this.#failure;
  }

  /** The host-side proxy of exported object #id (what another service or a transport calls). */
  exportProxy(id: number, iface = ''): object {
    return this.#hostProxyFor(id, iface);
  }

  /** This service's references to other services' exports, by import id. */
  references(): ServiceReference[] {
    const out: ServiceReference[] = [];
    for (const [id, imported] of this.#imports) if (imported.origin) out.push({ import: id, ...imported.origin });
    return out;
  }

  /**
   * Bind import #id to a live host object (another service's export, through
   * a transport) before replay, so it is alive when the service goes live.
   */
  bindImport(id: number, value: object, origin: ExportRef): void {
    this.#imports.set(id, { value, iface: serviceIface(origin), origin });
    this.#importIds.set(value, id); // the same object crossing again is the same import
    this.#nextImport = Math.max(this.#nextImport, id + 1);
  }

  /** Async syscalls still waiting on the host, described. */
  pendingSyscalls(): string[] {
    return [...this.#promises.entries()].map(([id, p]) => `promise #${id}: ${p.what}(${p.args.map(a => describeWire(a, 80)).join(', ')})`);
  }

  /** Forget host-side settlement of pending async syscalls (the build is sealing). */
  detachHost(): void {
    this.#hostEpoch += 1;
  }

  // ---- the guest's view: syscalls ------------------------------------------

  /** Clock, randomness: the journal's fast kinds. */
  // Errors this library raises into the service from here on are marked as
  // the library's (see marks.ts), so that they keep their type if the
  // service lets them through, and only they do.
  now(real: () => number): number {
    try {
      return this.journal.now(real);
    } catch (error) {
      throw markLibraryError(error);
    }
  }

  perf(real: () => number): number {
    try {
      return this.journal.perf(real);
    } catch (error) {
      throw markLibraryError(error);
    }
  }

  seed(real: () => Uint8Array): Uint8Array {
    try {
      return this.journal.seed(real);
    } catch (error) {
      throw markLibraryError(error);
    }
  }

  randomFill(target: Uint8Array, real: (target: Uint8Array) => void): void {
    try {
      this.journal.randomFill(target, real);
    } catch (error) {
      throw markLibraryError(error);
    }
  }

  /**
   * What a syscall's recorded arguments hold in place of bytes the service
   * may keep secret (the data and keys of its crypto calls; compartments/
   * crypto.ts): `{ hmac }`, a fingerprint keyed with the seal key and bound
   * to this service (seal.ts `fingerprint`), when a seal key is set, so that
   * a weak secret cannot be guessed from the log; else `{ sha256 }`, as no
   * secret can be in play (a build that meets one without a key fails
   * SEAL_KEY_MISSING). Hex. The build and its replays compute the same for
   * the same bytes. Never throws.
   */
  fingerprint(bytes: Uint8Array): { hmac: string } | { sha256: string } {
    return this.#sealer ? { hmac: this.#sealer.fingerprint(bytes) } : { sha256: createHash('sha256').update(bytes).digest('hex') };
  }

  /**
   * A call to a host capability by stable name. `perform` runs only when
   * live, with the arguments copied to the host; a thenable result makes
   * this an async syscall whose guest promise settles in a later delivery.
   */
  syscall(op: string, guestArgs: readonly unknown[], perform: (...hostArgs: unknown[]) => unknown): unknown {
    let outcome: Outcome;
    let args: Wire[];
    try {
      args = this.#toWireArray(guestArgs, 'guest', () => `argument of ${op}()`);
      const wired = args;
      outcome = this.journal.sys(op, wired, () => this.#performHost(op, () => apply(perform, undefined, this.#fromWireArray(wired, 'host'))));
    } catch (error) {
      throw error instanceof SnapshotError ? markLibraryError(error) : error;
    }
    return this.#guestOutcome(outcome, op, args);
  }

  /** A call on a host object the guest holds by reference. */
  send(slot: Slot, method: string | null, guestArgs: readonly unknown[]): unknown {
    try {
      return this.#send(slot, method, guestArgs);
    } catch (error) {
      throw error instanceof SnapshotError ? markLibraryError(error) : error;
    }
  }

  #send(slot: Slot, method: string | null, guestArgs: readonly unknown[]): unknown {
    const args = this.#toWireArray(guestArgs, 'guest', () => `argument of ${method ?? 'call'}()`);
    const member = method === null ? '()' : method === '[[get]]' ? `.${String(guestArgs[0])}` : `.${method}()`;
    const what = `${slot.iface || `host reference #${slot.id}`}${member}`;
    const outcome = this.journal.send(slot, method, args, () => {
      const target = this.#liveImport(slot, what);
      if (method === null) {
        // A stand-in for an object elsewhere (a transport's) takes the arguments as they crossed.
        const answer = this.#directory?.wireCallOf(target)?.(args, this);
        if (answer) return this.#performWire(what, answer);
        // Another service of this process: its answer comes straight to the settle delivery.
        const local = this.#directory?.localCallOf(target);
        if (local) return this.#performLocal(what, local, args);
      }
      return this.#performHost(what, () => {
        if (method === null) return apply(target as (...a: unknown[]) => unknown, undefined, this.#fromWireArray(args, 'host'));
        if (method === '[[get]]') return this.#hostGet(target, args[0] as string);
        if (method === '[[keys]]') return this.#hostKeys(target);
        if (method === '[[own]]') return this.#hostOwn(target, args[0] as string);
        if (method === '[[has]]') return (args[0] as string) in (target as object);
        if (method === '[[tag]]') return this.#hostTag(target);
        const fn = (target as Record<string, unknown>)[method];
        if (typeof fn !== 'function') throw new TypeError(`${what}: not a function`);
        return apply(fn, target, this.#fromWireArray(args, 'host'));
      });
    });
    return this.#guestOutcome(outcome, what, args);
  }

  // ---- deliveries ---------------------------------------------------------------

  #perform(entry: DeliveryEntry): void {
    switch (entry.kind) {
      case 'start':
        // A load failure is reported by this library (SERVICE_LOAD_FAILED, MODULE_NOT_GRANTED...).
        return this.#answerWith(
          0,
          () =>
            this.#start().then(
              ns => this.#namespaceToWire(ns),
              error => {
                throw error instanceof SnapshotError ? markLibraryError(error) : error;
              },
            ),
          true,
        );
      case 'call': {
        const target = this.#exports[entry.target];
        // For messages about its answer (NOT_PASSABLE...), made only if one is: what was called, a
        // function by its own name read as data (a getter of the service's is not run here).
        const called = (): string => {
          const name = typeof target === 'function' ? getOwnPropertyDescriptor(target, 'name')?.value : undefined;
          return entry.method !== null ? `${entry.method}()` : typeof name === 'string' && name ? `${name}()` : `call of export #${entry.target}`;
        };
        this.#answerWith(entry.answer, () => {
          if (target === undefined) throw new TypeError(`service "${this.name}" has no object #${entry.target}`);
          // What a service may not read of an object it holds, no caller may call on one of its own: a caller on
          // another host named __defineGetter__ and redefined the service's methods (found by the adversarial review).
          if (entry.method !== null && UNREACHABLE_THROUGH_REFERENCES.has(entry.method)) {
            throw new TypeError(`${entry.method} of an object of service "${this.name}" cannot be called through a reference: a reference gives the object's methods and data, not its class or prototype`);
          }
          const args = this.#argumentsOf(entry.args, entry.answer);
          if (entry.method === null) return apply(target as (...a: unknown[]) => unknown, this.#receivers.get(target), args);
          if (entry.method === '[[get]]') {
            // A getter read by the outside (#hostProxyFor): run here, in the service's turn.
            const key = args[0];
            if (typeof key !== 'string' || UNREACHABLE_THROUGH_REFERENCES.has(key)) throw new TypeError(`${String(key)} of an object of service "${this.name}" cannot be read through a reference`);
            return (target as Record<string, unknown>)[key];
          }
          const fn = (target as Record<string, unknown>)[entry.method];
          if (typeof fn !== 'function') throw new TypeError(`${entry.method} is not a function of service "${this.name}"`);
          return apply(fn, target, args);
        }, false, called);
        return;
      }
      case 'settle': {
        const pending = this.#promises.get(entry.promise);
        if (!pending) throw new SnapshotError('LOG_CORRUPT', `service "${this.name}": the log settles promise #${entry.promise} at event ${this.journal.index - 1}, but the service waits on no such promise. The log is damaged or does not belong to this archive; rebuild the snapshot.`, { details: { service: this.name, promise: entry.promise } });
        this.#promises.delete(entry.promise);
        let value: unknown;
        try {
          value = this.#fromWire(entry.value, 'guest', 0);
        } catch (error) {
          // Live, a value that does not hold together came in a reply from another host (a log's is refused when
          // read): the call fails, the service goes on (it failed as a whole, its promise left unsettled).
          if (this.journal.replaying || !(error instanceof SnapshotError) || error.code !== 'LOG_CORRUPT') throw error;
          const malformed = new SnapshotError('TRANSPORT_FAILED', `a reply from another host is malformed: ${error.message}`, { cause: error });
          pending.reject(this.#fromWire(this.#toWire(malformed, 'host', 0, 'error'), 'guest', 0));
          return;
        }
        if (entry.ok) pending.resolve(value);
        else pending.reject(value);
        return;
      }
      case 'timer':
        return this.onTimer(entry.timer);
      default:
        throw new Error('unknown delivery');
    }
  }

  /** Run guest code for answer `answer`, then report its outcome (a checked `ret`). */
  #answerWith(answer: number, run: () => unknown, preWired = false, called?: () => string): void {
    let result: unknown;
    try {
      result = run();
    } catch (error) {
      this.#ret(answer, false, error, false, called);
      return;
    }
    if ((typeof result !== 'object' && typeof result !== 'function') || result === null) {
      // A primitive: answered in the very promise job Promise.resolve(result).then would run, without making that promise.
      void settled.then(() => this.#ret(answer, true, result, preWired, called));
      return;
    }
    Promise.resolve(result).then(
      value => this.#ret(answer, true, value, preWired, called),
      error => this.#ret(answer, false, error, false, called),
    );
  }

  /** `called` says what was called, for messages (NOT_PASSABLE...). */
  #ret(answer: number, ok: boolean, value: unknown, preWired: boolean, called?: () => string): void {
    let wire: Wire;
    try {
      wire = preWired ? value : this.#toWire(value, 'guest', 0, () => `${ok ? 'result' : 'error'} of ${called ? called() : `call #${answer}`}`);
    } catch (error) {
      ok = false;
      // The answer could not be copied (NOT_PASSABLE...): this library's error, copied as a host error is,
      // so that its stack (this library's frames, where it is installed) is not logged and compared on replay.
      wire = this.#toWire(error, error instanceof SnapshotError ? 'host' : 'guest', 0, 'error');
    }
    try {
      this.journal.ret(answer, ok, wire);
    } catch (error) {
      this.fail(error);
      return;
    }
    const waiter = this.#answers.get(answer);
    if (!waiter) return;
    this.#answers.delete(answer);
    if (waiter.wire) {
      waiter.resolve({ ok, value: wire });
      return;
    }
    let hostValue: unknown;
    try {
      hostValue = this.#fromWire(wire, 'host', 0);
    } catch (error) {
      waiter.reject(error);
      return;
    }
    if (ok) waiter.resolve(hostValue);
    else {
      markHostAnswer(hostValue, `${this.name}.${called ? called() : `call #${answer}`}`);
      waiter.reject(hostValue);
    }
  }

  #awaitAnswer(answer: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#answers.set(answer, { resolve, reject });
    });
  }

  /**
   * The service's module namespace as the outside first receives it: a
   * record, functions and objects with behaviour by reference, data
   * copied (a promise export is NOT_PASSABLE). The namespace itself also
   * gets an id in the export table, in this start turn, so that the host
   * reads its data exports live afterwards (#liveExports).
   */
  #namespaceToWire(namespace: object): Wire {
    // objectWire: an export named '__proto__' (export * as '__proto__' from) is an own key, not the record's prototype.
    const entries: Array<[string, Wire]> = [];
    for (const key of keys(namespace)) {
      const value = (namespace as Record<string, unknown>)[key];
      if (typeof value === 'function') this.#receivers.set(value, namespace);
      entries.push([key, this.#toWire(value, 'guest', 0, `export ${key}`)]);
    }
    this.#namespaces.add(namespace);
    this.#namespaceId = this.#ref(namespace, 'guest', 'the namespace').id;
    return objectWire(entries) as Wire;
  }

  /**
   * The host's record of the service's exports, its data exports made
   * live: each an accessor that reads the export as it is now (a copy at
   * each read), as a live binding reads in Node (`svc.count` after
   * `await svc.increment()` was the count when the modules were evaluated:
   * found by the fidelity review). A data export holding references (an
   * array of functions) keeps the copy made at start. Runs no service code
   * and records nothing (#readData).
   */
  #liveExports(record: Record<string, unknown>): Record<string, unknown> {
    const id = this.#namespaceId;
    if (id === undefined || typeof record !== 'object' || record === null) return record;
    const namespace = this.#exports[id] as Record<string, unknown>;
    for (const key of keys(record)) {
      const atStart = record[key];
      if ((typeof atStart === 'object' || typeof atStart === 'function') && atStart !== null && this.#hostProxyIds.has(atStart)) continue;
      const startValue = namespace[key]; // SES's namespace Proxy reads the binding: no service code
      defineProperty(record, key, {
        get: () => {
          const data = this.#readData(id, key);
          if (data === null) return undefined;
          if (data !== undefined) return data.value;
          // Not data a read outside the service's turns can hand out (a function, an object with methods): the copy
          // made at start while the binding still holds that value, else said, never an old value passed off as the
          // current one (found by the adversarial review).
          if (namespace[key] === startValue) return atStart;
          throw new TypeError(
            `export "${key}" of service "${this.name}" now holds a function or an object with methods, which the outside can only receive as the result of a call: export a function that returns it`,
          );
        },
        enumerable: true,
        configurable: false,
      });
    }
    return record;
  }

  // ---- host side of syscalls -----------------------------------------------------

  #performHost(what: string, run: () => unknown): Outcome {
    let result: unknown;
    try {
      result = run();
    } catch (error) {
      return { type: 'throw', value: this.#toWire(error, 'host', 0, 'error') };
    }
    if (isThenable(result)) {
      const promise = this.#nextPromise++;
      this.#settleLater(promise, result, what);
      return { type: 'async', promise };
    }
    return { type: 'return', value: this.#toWire(result, 'host', 0, () => `result of ${what}`) };
  }

  /** An async syscall answered in wire values (a WireCall): settled with them as they are. */
  #performWire(what: string, answer: Promise<WireAnswer>): Outcome {
    const promise = this.#nextPromise++;
    const epoch = this.#hostEpoch;
    answer.then(
      ({ ok, value }) => {
        if (epoch === this.#hostEpoch) this.turns.enqueue({ kind: 'settle', promise, ok, value });
      },
      (error: unknown) => {
        if (epoch !== this.#hostEpoch) return;
        let wire: Wire;
        try {
          wire = this.#toWire(error, 'host', 0, `error of ${what}`);
        } catch {
          wire = this.#toWire(new Error(`${what} failed`), 'host', 0, 'error');
        }
        this.turns.enqueue({ kind: 'settle', promise, ok: false, value: wire });
      },
    );
    return { type: 'async', promise };
  }

  /** An async syscall that calls another service of this process: settled when that service answers. */
  #performLocal(what: string, local: LocalCall, args: readonly Wire[]): Outcome {
    let hostArgs: unknown[];
    try {
      hostArgs = this.#fromWireArray(args, 'host');
    } catch (error) {
      return { type: 'throw', value: this.#toWire(error, 'host', 0, 'error') };
    }
    const promise = this.#nextPromise++;
    try {
      local(hostArgs, this.#settler(promise, what));
    } catch (error) {
      // Refused before any delivery (a toJSON called by JSON.stringify): a throw of the syscall, in the log as such.
      return { type: 'throw', value: this.#toWire(error, 'host', 0, 'error') };
    }
    return { type: 'async', promise };
  }

  #settleLater(promise: number, hostPromise: PromiseLike<unknown>, what: string): void {
    const settle = this.#settler(promise, what);
    Promise.resolve(hostPromise).then(
      value => settle(true, value),
      error => settle(false, error),
    );
  }

  /** Settles the service's promise #promise with a host outcome: queues its settle delivery. */
  #settler(promise: number, what: string): (ok: boolean, value: unknown) => void {
    // A counter, not a set of cancellers: adding to a Set and deleting cost ~0.2 us, on every async syscall.
    const epoch = this.#hostEpoch;
    return (ok: boolean, value: unknown) => {
      if (epoch !== this.#hostEpoch) return;
      let wire: Wire;
      try {
        wire = this.#toWire(value, 'host', 0, () => `result of ${what}`);
      } catch (error) {
        ok = false;
        wire = this.#toWire(error, 'host', 0, 'error');
      }
      this.turns.enqueue({ kind: 'settle', promise, ok, value: wire });
    };
  }

  #guestOutcome(outcome: Outcome, what: string, args: readonly Wire[]): unknown {
    if (outcome.type === 'return') return this.#fromWire(outcome.value, 'guest', 0);
    if (outcome.type === 'throw') throw this.#fromWire(outcome.value, 'guest', 0);
    this.#nextPromise = Math.max(this.#nextPromise, outcome.promise + 1);
    return new Promise((resolve, reject) => {
      this.#promises.set(outcome.promise, { resolve, reject, what, args });
    });
  }

  #liveImport(slot: Slot, what: string): object {
    const imported = this.#imports.get(slot.id);
    if (imported?.value !== undefined) return imported.value;
    throw new SnapshotError(
      'STALE_HANDLE',
      `service "${this.name}" used ${what}, but that object only existed at build time. ` +
        'Build-time handles (open files, functions of the build script, sockets) die with the build; reopen or re-request the resource after restore, or pass a host capability by name instead.',
      { details: { service: this.name, id: slot.id, iface: slot.iface } },
    );
  }

  /**
   * Property read on a host object: data comes back by copy, methods bound
   * to the object. A reference gives an object's methods and data, never
   * its class, its prototype or Object.prototype's mutators: through those a
   * service could change the object (or every object of its class) for the
   * host (`__defineGetter__`, `constructor.prototype`).
   */
  #hostGet(target: object, key: string): unknown {
    if (UNREACHABLE_THROUGH_REFERENCES.has(key)) {
      throw new TypeError(`service "${this.name}" read .${key} of a host object it holds by reference: a reference gives the object's methods and data, not its class or prototype`);
    }
    const value = (target as Record<string, unknown>)[key];
    if (typeof value !== 'function') return value;
    // The same method read twice is the same bound function (one import, not one per read).
    let methods = this.#boundMethods.get(target);
    if (!methods) this.#boundMethods.set(target, (methods = new Map()));
    let bound = methods.get(key);
    if (!bound || bound.fn !== value) {
      bound = { fn: value, proxy: new Proxy(value, { apply: (fn, _this, args) => apply(fn, target, args) }) };
      methods.set(key, bound);
      const wireCall = this.#directory?.wireCallOf(value);
      if (wireCall) this.#directory?.registerWireCall(bound.proxy, wireCall); // bound to nothing it needs: it names its target itself
      const local = this.#directory?.localCallOf(value);
      if (local) this.#directory?.registerLocalCall(bound.proxy, local); // nor does a service's method or function (its `this` is not used)
    }
    return bound.proxy;
  }

  /**
   * The keys a service lists on a host object it holds by reference
   * (`Object.keys`, `JSON.stringify`, spread, `for...in`): its own
   * enumerable string keys, as Node lists them, but those no reference
   * gives (see #hostGet).
   */
  #hostKeys(target: object): string[] {
    return keys(target).filter(key => !UNREACHABLE_THROUGH_REFERENCES.has(key));
  }

  /**
   * An own property a service reads the descriptor of, on a host object it
   * holds by reference: `[value]` (read as #hostGet reads it) when `key` is
   * one of the keys #hostKeys lists, else null.
   */
  #hostOwn(target: object, key: string): [unknown] | null {
    if (UNREACHABLE_THROUGH_REFERENCES.has(key) || getOwnPropertyDescriptor(target, key)?.enumerable !== true) return null;
    return [this.#hostGet(target, key)];
  }

  /**
   * The `Symbol.toStringTag` a host object held by reference shows a
   * service (`Object.prototype.toString`, jose's CryptoKey check): its own,
   * a string, or none (`[object Object]`, as Node prints a class instance
   * without one). Another service's object shows none: its proxy's tag
   * names the service, for the host.
   */
  #hostTag(target: object): string | undefined {
    if (this.#directory?.originOf(target) || this.#hostProxyIds.has(target)) return undefined;
    const tag = (target as Record<symbol, unknown>)[Symbol.toStringTag];
    return typeof tag === 'string' ? tag : undefined;
  }

  // ---- proxies --------------------------------------------------------------------

  #hostProxyFor(id: number, iface: string): object {
    const existing = this.#hostProxies.get(id);
    if (existing) return existing;
    const membrane = this;
    const methods = new Map<string, (...args: unknown[]) => Promise<unknown>>();
    const label = `${this.name} ${iface || `#${id}`}`;
    const isFunction = iface.startsWith('function');
    const target = isFunction ? function serviceFunction() {} : {};
    const handler: ProxyHandler<object> = {
      apply: (_t, _this, args) => membrane.deliverCall(id, null, args, iface),
      get: (_t, key) => {
        if (key === 'then' || typeof key === 'symbol') {
          return key === Symbol.toStringTag ? `Service ${label}` : undefined;
        }
        const data = this.#readData(id, key);
        if (data) return data.value;
        if (data === null) return undefined; // the object has no such property
        // A getter (a Response's status, a class's `get size()`): its value, read in a turn of the service as a
        // call is, so a promise of it (`await res.status`); it was a method that threw, found by the new-user trial.
        if (this.#isGetter(id, key)) return membrane.deliverCall(id, '[[get]]', [key]);
        let method = methods.get(key);
        if (!method) {
          // A toJSON called by JSON.stringify would have the promise it answers with written as {}: a wrong value, so
          // refused, saying what to do (found by the new-user trial: a URL a service returned was written {}).
          const refuseJson = key === 'toJSON' ? (caller: (...a: never[]) => unknown) => {
            if (calledByJsonStringify(caller)) throw this.#jsonRefusal(iface || `#${id}`);
          } : undefined;
          const stub = (...args: unknown[]): Promise<unknown> => {
            refuseJson?.(stub);
            return membrane.deliverCall(id, key, args);
          };
          const local: LocalCall = (args, settle) => {
            refuseJson?.(local);
            membrane.#deliverLocal(id, key, args, `#${id}`, settle);
          };
          method = stub;
          this.#directory?.registerLocalCall(method, local);
          methods.set(key, method);
        }
        return method;
      },
      set: () => false,
      defineProperty: () => false,
      deleteProperty: () => false,
    };
    if (!isFunction) {
      // Own keys as the service object has them, so Object.keys and JSON.stringify see its data.
      handler.ownKeys = () => this.#dataKeys(id);
      handler.getOwnPropertyDescriptor = (_t, key) => {
        if (typeof key !== 'string' || !this.#dataKeys(id).includes(key)) return undefined;
        const value = handler.get?.(target, key, target);
        return { value, writable: false, enumerable: true, configurable: true };
      };
      handler.has = (_t, key) => typeof key === 'string' && this.#has(id, key);
    }
    const proxy = new Proxy(target, handler);
    this.#hostProxies.set(id, proxy);
    this.#hostProxyIds.set(proxy, id);
    this.#directory?.register(proxy, { service: this.name, export: id, iface });
    if (isFunction) this.#directory?.registerLocalCall(proxy, (args, settle) => membrane.#deliverLocal(id, null, args, iface, settle));
    return proxy;
  }

  /** JSON.stringify of a service object with a toJSON, refused: what happened and what to do. */
  #jsonRefusal(what: string): TypeError {
    return new TypeError(
      `JSON.stringify of an object of service "${this.name}" (${what}): its toJSON() runs in that service and answers with a promise, which JSON.stringify would write as {}. ` +
        'Await it first (JSON.stringify(await value.toJSON())), or have the service return plain data.',
    );
  }

  /**
   * The host reads data of a service object it holds by reference: the
   * value of an own data property, copied, when copying it runs no service
   * code and hands out no new reference (the export table changes only in
   * turns, so replay assigns the same ids). `{ value }` for data, `null`
   * when the object has no such property, `undefined` when it is not data
   * the host can read that way (a method, a getter, an object with methods:
   * then a call is delivered, as for any method).
   */
  #readData(id: number, key: string): { value: unknown } | null | undefined {
    const object = this.#exports[id];
    let descriptor: PropertyDescriptor | undefined;
    if (this.#namespaces.has(object as object)) {
      // SES's module namespace is a Proxy of SES's own whose traps read the bindings (no service code): the value of
      // the export now. One that has its reference (made at start) is that reference, as `svc.fn` always was.
      if (!keys(object as object).includes(key)) return null;
      const value = (object as Record<string, unknown>)[key];
      const exported = typeof value === 'object' || typeof value === 'function' ? this.#exportIds.get(value as object) : undefined;
      if (exported !== undefined) return { value: this.#hostProxyFor(exported, ifaceOf(value as object, 'guest')) };
      descriptor = { value };
    } else {
      if (!readable(object)) return undefined;
      descriptor = getOwnPropertyDescriptor(object, key);
    }
    if (!descriptor) return hasWithoutTraps(object, key) === false ? null : undefined;
    if (!('value' in descriptor) || typeof descriptor.value === 'function') return undefined;
    try {
      return { value: this.#copyIn(this.#copyOut(descriptor.value, { from: 'guest', context: `.${key}`, seen: undefined, count: 0, base: 0, noRefs: true }, 0), { to: 'host', objects: [], base: 0 }, 0) };
    } catch (error) {
      if (error === NEEDS_REFERENCE) return undefined;
      throw error;
    }
  }

  /** Whether `proto` is the prototype of a class whose instances a host data read copies (#readData): one of the intrinsics'. */
  #dataPrototype(proto: object | null): boolean {
    return proto === null || DATA_PROTOTYPES.has(proto) || proto === this.guestDatePrototype;
  }

  /** Whether `key` of a service object is an accessor with a getter, found on its prototype chain without running any trap. */
  #isGetter(id: number, key: string): boolean {
    const found = descriptorWithoutTraps(this.#exports[id], key);
    // Lockdown's override accessors (toString, call, hasOwnProperty... of the shared prototypes; SES's and
    // overrides.ts's getters carry `originalValue`) stand for data: a method, reached as methods are (they were
    // read as getters, and `ref.toString()` threw; found by the adversarial review).
    return typeof found === 'object' && typeof found.get === 'function' && !hasOwn(found.get, 'originalValue');
  }

  /** Own enumerable string keys of a service object, when it can be read without running its code. */
  #dataKeys(id: number): string[] {
    const object = this.#exports[id];
    return readable(object) || this.#namespaces.has(object as object) ? keys(object as object) : [];
  }

  /**
   * `key in object` for a service object, answered without running its
   * code: false when a Proxy in its prototype chain would have to be asked
   * (its `has` trap would run outside the service's turn, on the host's
   * stack; found by the adversarial review).
   */
  #has(id: number, key: string): boolean {
    const object = this.#exports[id];
    if (this.#namespaces.has(object as object)) return keys(object as object).includes(key); // SES's own traps
    return hasWithoutTraps(object, key) === true;
  }

  #guestProxyFor(id: number, iface: string): object {
    const existing = this.#guestProxies.get(id);
    if (existing) return existing;
    const slot = new Slot('host', id, iface);
    const membrane = this;
    const target = iface.startsWith('function') ? function hostFunction() {} : {};
    const proxy = new Proxy(target, {
      apply: (_t, _this, args) => membrane.send(slot, null, args),
      get: (_t, key) => {
        if (key === 'then' || typeof key === 'symbol') {
          // The host object's own tag (jose recognises a CryptoKey by Symbol.toStringTag), or none, as in Node.
          return key === Symbol.toStringTag ? membrane.send(slot, '[[tag]]', []) : undefined;
        }
        return membrane.send(slot, '[[get]]', [key]);
      },
      // Its keys and data as the host object has them (Object.keys, JSON.stringify, spread, `in`), each read a
      // syscall of the log as a property read is. A frozen view (harden) lists what its own empty target holds.
      ownKeys: t => (Reflect.isExtensible(t) ? [...new Set([...(membrane.send(slot, '[[keys]]', []) as string[]), ...Reflect.ownKeys(t)])] : Reflect.ownKeys(t)),
      getOwnPropertyDescriptor: (t, key) => {
        const own = Reflect.getOwnPropertyDescriptor(t, key);
        if (own || typeof key !== 'string' || !Reflect.isExtensible(t)) return own;
        // One syscall: whether it is an own key the object lists, and its value.
        const found = membrane.send(slot, '[[own]]', [key]) as [unknown] | null;
        return found === null ? undefined : { value: found[0], writable: false, enumerable: true, configurable: true };
      },
      has: (t, key) => (typeof key === 'string' && Reflect.isExtensible(t) && !Reflect.getOwnPropertyDescriptor(t, key) ? (membrane.send(slot, '[[has]]', [key]) as boolean) : Reflect.has(t, key)),
      set: () => {
        throw new TypeError(`cannot set properties of ${iface || 'a host object'} from inside service "${membrane.name}"`);
      },
      defineProperty: () => false,
      deleteProperty: () => false,
      setPrototypeOf: () => false,
      // Freezing it (harden) freezes the service's view, never the host's object: the proxy's target is an
      // empty object of its own, and every read and call still goes to the host.
      preventExtensions: t => Reflect.preventExtensions(t),
    });
    this.#guestProxies.set(id, proxy);
    this.#guestProxyIds.set(proxy, id);
    return proxy;
  }

  // ---- the wire walk ----------------------------------------------------------------

  // Arrays are built with push: under lockdown, `new Array(n)` filled by
  // index is two orders of magnitude slower on Node 20.
  //
  // An argument list is copied as one structured clone (as postMessage copies one message): an object met
  // in an earlier argument is the same object again, Tagged('argref', n) with n its number counted from the
  // first argument; within an argument, Tagged('ref', n) counts from that argument's first object, as when
  // each argument was a clone of its own (logs before format version 3 have no argref).
  // While a log of format version 1 or 2 replays, each argument is a clone of its own, as that build made them
  // (the log's sys and send entries are compared with them; found by the adversarial review).
  #toWireArray(values: readonly unknown[], from: Side, context: Context): Wire[] {
    const walk: OutWalk = { from, context, seen: undefined, count: 0, base: 0 };
    const apart = this.journal.formatVersion < 3;
    const out: Wire[] = [];
    for (let i = 0; i < values.length; i += 1) {
      if (apart) {
        walk.seen = undefined;
        walk.count = 0;
      }
      walk.base = walk.count;
      out.push(this.#copyOut(values[i], walk, 0));
    }
    return out;
  }

  /**
   * A delivered call's arguments, made in the service. Those of a call from another host (deliverWireCall) come
   * from its message, not from a log: what does not hold together in them is a malformed message (TRANSPORT_FAILED).
   */
  #argumentsOf(args: readonly Wire[], answer: number): unknown[] {
    try {
      return this.#fromWireArray(args, 'guest');
    } catch (error) {
      if (error instanceof SnapshotError && error.code === 'LOG_CORRUPT' && this.#answers.get(answer)?.wire) {
        throw new SnapshotError('TRANSPORT_FAILED', `a message from another host is malformed: ${error.message}`, { cause: error });
      }
      throw error;
    }
  }

  #fromWireArray(values: readonly Wire[], to: Side): unknown[] {
    const walk: InWalk = { to, objects: [], base: 0 };
    const out: unknown[] = [];
    for (let i = 0; i < values.length; i += 1) {
      walk.base = walk.objects.length;
      const wire = values[i];
      out.push(typeof wire !== 'object' || wire === null ? wire : this.#copyIn(wire, walk, 0));
    }
    return out;
  }

  /** Copy a value leaving side `from`: data by copy (structured clone), behaviour by reference. */
  #toWire(value: unknown, from: Side, _depth: number, context: Context): Wire {
    return this.#copyOut(value, { from, context, seen: undefined, count: 0, base: 0 }, 0);
  }

  /** Materialise a wire value on side `to`. Always returns fresh copies of data. */
  #fromWire(wire: Wire, to: Side, _depth: number): unknown {
    if (typeof wire !== 'object' || wire === null) return wire;
    return this.#copyIn(wire, { to, objects: [], base: 0 }, 0);
  }

  #copyOut(value: unknown, walk: OutWalk, depth: number): Wire {
    if (typeof value === 'function') {
      if (walk.noRefs) throw NEEDS_REFERENCE;
      return this.#ref(value, walk.from, walk.context);
    }
    const primitive = primitiveWire(value);
    if (primitive === UNIQUE_SYMBOL) throw notPassable(this.name, contextText(walk.context), `a unique symbol (${String(value)}) cannot cross the membrane; use a string or Symbol.for()`);
    if (primitive !== NOT_PRIMITIVE) return primitive as Wire;
    const object = value as object;
    if (depth > MAX_DEPTH) throw notPassable(this.name, contextText(walk.context), `a value nested more than ${MAX_DEPTH} deep cannot be copied`);
    const { from } = walk;
    if (from === 'guest') {
      const id = this.#guestProxyIds.get(object);
      if (id !== undefined) return new Slot('host', id, this.#imports.get(id)?.iface ?? '');
    } else {
      const id = this.#hostProxyIds.get(object);
      if (id !== undefined) return new Slot('guest', id);
      // Another service's object: a reference, whatever its shape.
      if (this.#directory?.originOf(object)) return this.#ref(object, from, walk.context);
    }
    const again = walk.seen?.get(object);
    if (again !== undefined) return again >= walk.base ? new Tagged('ref', again - walk.base) : new Tagged('argref', again);
    // A data read by the host runs no service code: no Proxy traps (of the object, or of a Proxy in its prototype
    // chain, which `instanceof` and a `then` lookup would run: found by the adversarial review), no getters.
    // Nor getters on its prototype: only an object whose prototype is one of the intrinsic data classes' (whose
    // getters are the shared intrinsics') is read as data (a class instance's `get then`, read by the thenable check,
    // or a RegExp subclass's `get global`, read by `flags`, ran: found by the adversarial review).
    if (walk.noRefs && (isProxy(object) || !this.#dataPrototype(getPrototypeOf(object)) || !dataOnly(object))) throw NEEDS_REFERENCE;
    // A revoked Proxy: every operation on it throws V8's TypeError, `isArray` first.
    if (isProxy(object) && isRevoked(object)) throw notPassable(this.name, contextText(walk.context), 'a revoked Proxy cannot be passed: every operation on it throws (structuredClone refuses it too)');
    if (isArray(object)) {
      remember(walk, object);
      const length = object.length;
      let own = 0;
      let named = false;
      for (const key of keys(object)) {
        if (isArrayIndex(key)) own += 1;
        else named = true;
      }
      if (named) {
        // Its own named properties cross too, as structuredClone copies them (a RegExp match's index, input, groups).
        const indices: number[] = [];
        const values: Wire[] = [];
        const entries: Array<[string, Wire]> = [];
        for (const key of keys(object)) {
          if (!isArrayIndex(key)) continue;
          indices.push(Number(key));
          values.push(this.#copyOut((object as unknown as Record<string, unknown>)[key], walk, depth + 1));
        }
        for (const key of keys(object)) if (!isArrayIndex(key)) entries.push([key, this.#copyOut((object as unknown as Record<string, unknown>)[key], walk, depth + 1)]);
        return new Tagged('array', [length, indices, values, objectWire(entries)]);
      }
      if (own === length) {
        const out: Wire[] = [];
        for (let i = 0; i < length; i += 1) out.push(this.#copyOut(object[i], walk, depth + 1));
        return out;
      }
      // Holes stay holes.
      const indices: number[] = [];
      const values: Wire[] = [];
      for (const key of keys(object)) {
        if (!isArrayIndex(key)) continue;
        indices.push(Number(key));
        values.push(this.#copyOut((object as unknown as Record<string, unknown>)[key], walk, depth + 1));
      }
      return new Tagged('sparse', [length, indices, values]);
    }
    const proto = getPrototypeOf(object);
    // A Proxy in its prototype chain: `instanceof` and a `then` lookup below would run its traps. A reference,
    // whose reads run the service's code in the service's turns.
    if (proto !== objectPrototype && proto !== null && proxyInChain(object)) {
      if (walk.noRefs) throw NEEDS_REFERENCE;
      return this.#ref(object, from, walk.context);
    }
    if (proto === objectPrototype || proto === null) {
      const names = keys(object);
      // A CommonJS module's exports that a compiler made from an ES module (esbuild, tsc, Babel: marked
      // `__esModule`, a `true` or, on esbuild's namespace of `import * as x`, a getter, not run here) hold its
      // exports as getters, live bindings that may give functions: behaviour.
      const esModule = getOwnPropertyDescriptor(object, '__esModule');
      if (esModule && (esModule.value === true || typeof esModule.get === 'function') && names.some(name => getOwnPropertyDescriptor(object, name)?.get)) {
        if (walk.noRefs) throw NEEDS_REFERENCE;
        return this.#ref(object, from, walk.context);
      }
      // Data or behaviour is decided from the descriptors, so that no getter runs for it: each getter then runs
      // once, when its property is copied, as structuredClone runs it (it ran twice, and a getter counting its
      // reads gave the host 2 where Node gives 1).
      for (const name of names) {
        const v = getOwnPropertyDescriptor(object, name)?.value;
        // A record of references (a service's exports) is data; a method is behaviour.
        if (typeof v === 'function' && !this.#isReference(v, from)) {
          if (walk.noRefs) throw NEEDS_REFERENCE;
          return this.#ref(object, from, walk.context);
        }
      }
      remember(walk, object);
      const read = (name: string): Wire => {
        const v = (object as Record<string, unknown>)[name];
        if (typeof v === 'function' && !this.#isReference(v, from)) {
          throw notPassable(this.name, contextText(walk.context), `the getter of its property "${name}" returned a function, which cannot be copied (structuredClone refuses it too); make it a method or a data property`);
        }
        return this.#copyOut(v, walk, depth + 1);
      };
      if (!names.every(isRecordKey)) {
        const entries: Array<[string, Wire]> = [];
        for (const name of names) entries.push([name, read(name)]);
        return objectWire(entries) as Wire;
      }
      const out: Record<string, Wire> = {};
      for (const name of names) out[name] = read(name);
      return out;
    }
    if (isView(object)) {
      remember(walk, object);
      return this.#copyView(object, walk, depth);
    }
    if (isSharedArrayBuffer(object)) throw sharedMemory(this.name, walk, 'a SharedArrayBuffer');
    if (isArrayBuffer(object)) {
      remember(walk, object);
      return from === 'guest' ? copyBuffer(object) : object;
    }
    if (object instanceof Date) {
      if (!isDate(object)) return this.#withoutSlots(object, 'Date', walk);
      remember(walk, object);
      return new Date(apply(dateGetTime, object, []) as number);
    }
    if (object instanceof Error) {
      remember(walk, object);
      return new Tagged('error', this.#errorRecord(object, walk, depth));
    }
    if (object instanceof Map) {
      if (!isMap(object)) return this.#withoutSlots(object, 'Map', walk);
      remember(walk, object);
      const entries: Array<[Wire, Wire]> = [];
      for (const [k, v] of iterate(apply(mapEntries, object, []) as Iterator<[unknown, unknown]>)) {
        entries.push([this.#copyOut(k, walk, depth + 1), this.#copyOut(v, walk, depth + 1)]);
      }
      return new Tagged('map', entries);
    }
    if (object instanceof Set) {
      if (!isSet(object)) return this.#withoutSlots(object, 'Set', walk);
      remember(walk, object);
      const out = new Set<Wire>();
      for (const v of iterate(apply(setValues, object, []) as Iterator<unknown>)) out.add(this.#copyOut(v, walk, depth + 1));
      return out;
    }
    if (object instanceof RegExp) {
      if (!isRegExp(object)) return this.#withoutSlots(object, 'RegExp', walk);
      remember(walk, object);
      return new RegExp(apply(regexpSource, object, []) as string, apply(regexpFlags, object, []) as string);
    }
    if (isBoxedPrimitive(object)) {
      // Object(5), Object('s'), Object(true), Object(1n): their primitive, as structuredClone copies them.
      const primitive = boxedValue(object);
      if (typeof primitive === 'symbol') throw notPassable(this.name, contextText(walk.context), 'a Symbol object cannot be copied (structuredClone refuses it too)');
      remember(walk, object);
      return new Tagged('boxed', primitiveWire(primitive));
    }
    if (isThenable(object)) {
      throw notPassable(this.name, contextText(walk.context), 'a promise cannot be passed inside a value; await it first, or return it as the result of a call');
    }
    // A secret is sealed on its own: its objects are numbered apart from the value around it.
    if (isSecret(object)) return this.#seal(this.#copyOut(object.reveal(), { from, context: walk.context, seen: undefined, count: 0, base: 0 }, depth + 1), object.label);
    if (walk.noRefs) throw NEEDS_REFERENCE;
    return this.#ref(object, from, walk.context);
  }

  /**
   * An object `instanceof` takes for a Date, Map, Set or RegExp without being
   * one: it has none of the internal data its copy is read from (the
   * intrinsics would throw V8's "this is not a Date object"). A Proxy of one
   * is NOT_PASSABLE, as structuredClone refuses a Proxy; an object that only
   * inherits from its prototype (`Object.create(Map.prototype)`) is a class
   * instance, by reference.
   */
  #withoutSlots(object: object, kind: string, walk: OutWalk): Slot {
    if (isProxy(object)) throw notPassable(this.name, contextText(walk.context), `a Proxy of a ${kind} cannot be copied: it holds none of the ${kind}'s own data (structuredClone refuses a Proxy too); pass the ${kind} itself`);
    if (walk.noRefs) throw NEEDS_REFERENCE;
    return this.#ref(object, walk.from, walk.context);
  }

  /**
   * A typed array or DataView. The bytes are read through the intrinsics
   * captured at load, never through methods the service may have replaced
   * on the object; a view that does not span its whole buffer keeps its
   * buffer, offset and length, as structured clone does.
   */
  #copyView(view: ArrayBufferView, walk: OutWalk, depth: number): Wire {
    const isTyped = apply(typedArrayTag, view, []) !== undefined;
    const buffer = (isTyped ? apply(typedArrayBuffer, view, []) : apply(dataViewBuffer, view, [])) as ArrayBuffer;
    if (isSharedArrayBuffer(buffer)) throw sharedMemory(this.name, walk, `a ${isTyped ? (apply(typedArrayTag, view, []) as string) : 'DataView'} over a SharedArrayBuffer`);
    if (isBuffer(view)) {
      // A Buffer is its own bytes (small ones share Node's 8 KB pool, which never crosses).
      return walk.from === 'host' ? view : unpooledCopy(view);
    }
    const offset = (isTyped ? apply(typedArrayByteOffset, view, []) : apply(dataViewByteOffset, view, [])) as number;
    const bytes = (isTyped ? apply(typedArrayByteLength, view, []) : apply(dataViewByteLength, view, [])) as number;
    const name = isTyped ? (apply(typedArrayTag, view, []) as string) : 'DataView';
    if (offset === 0 && bytes === apply(arrayBufferByteLength, buffer, []) && !walk.seen?.has(buffer)) {
      remember(walk, buffer); // the view, then its buffer: the order #copyIn makes them in
      return walk.from === 'host' ? view : makeView(name, copyBuffer(buffer), 0, isTyped ? (apply(typedArrayLength, view, []) as number) : bytes);
    }
    const length = isTyped ? (apply(typedArrayLength, view, []) as number) : bytes;
    return new Tagged('view', [name, this.#copyOut(buffer, walk, depth + 1), offset, length]);
  }

  /** A secret's wire form, sealed when it is recorded or checked against a log (seal.ts). */
  #seal(wire: Wire, label: string): Wire {
    if (!this.journal.recording && !this.journal.replaying) return wire; // live: nothing is written
    if (!this.#sealer) {
      const error = new SnapshotError(
        'SEAL_KEY_MISSING',
        `service "${this.name}": ${label} is a secret, and no seal key is set to seal it in the replay log (nothing of it was written). ` +
          'Set SNAPSHOT_SEAL_KEY to 32 random bytes in base64 (`openssl rand -base64 32`) or pass --seal-key <file>, at build and at restore; ' +
          'or, if it is not secret, narrow what is: importService(spec, { secrets: { defaults: false, ... } }).',
        { details: { service: this.name, secret: label } },
      );
      this.fail(error);
      throw error;
    }
    return new Tagged('sealed', this.#sealer.seal(packr.pack(wire)));
  }

  #unseal(sealed: unknown): Wire {
    if (!this.#sealer) {
      const error = new SnapshotError('SEAL_KEY_MISSING', `service "${this.name}": its replay log holds sealed secrets, and no seal key is set, or the key set is not the one the manifest names (seal.keyId; a manifest that counts no sealed values for this service was altered): set SNAPSHOT_SEAL_KEY or pass --seal-key <file> with the key the snapshot was built with.`, {
        details: { service: this.name },
      });
      this.fail(error);
      throw error;
    }
    try {
      return packr.unpack(this.#sealer.open(sealed as Uint8Array)) as Wire;
    } catch (error) {
      this.fail(error); // the service cannot go on without what the log holds
      throw error;
    }
  }

  /** Is `value` already a reference (a proxy of the other side, or of another service)? */
  #isReference(value: object, from: Side): boolean {
    if (from === 'guest') return this.#guestProxyIds.has(value);
    return this.#hostProxyIds.has(value) || this.#directory?.originOf(value) !== undefined;
  }

  /**
   * What a copied Error keeps. Its stack: a service's own stack as it is
   * (rendered from service frames only, so free of host paths), but its
   * first line when it was rendered with no service frame (the membrane's
   * TypeError for a method a reference's object lacks: this library's
   * paths, which differ where the restore runs); a host error's stack only
   * when it was rendered from service frames, otherwise its first line.
   * `library` only for errors this library raised.
   */
  #errorRecord(error: Error, walk: OutWalk, depth: number): ErrorRecord {
    // An object that inherits from DOMException.prototype without being one: DOMException's getters throw Node's
    // ERR_INVALID_THIS for it (a build then sealed a snapshot whose replay diverged, found by the adversarial review),
    // so only its own data properties are read.
    const lookAlike = typeof DOMException === 'function' && error instanceof DOMException && !isDOMException(error);
    const own = (key: string): unknown => getOwnPropertyDescriptor(error, key)?.value;
    const record: ErrorRecord = lookAlike ? { name: String(own('name') ?? 'Error'), message: String(own('message') ?? '') } : { name: String(error.name), message: String(error.message) };
    const stack: unknown = lookAlike ? own('stack') : error.stack;
    if (typeof stack === 'string') record.stack = (walk.from === 'guest' && !hasHostStack(error)) || hasServiceStack(error) ? stack : stackHeader(stack);
    if (walk.from === 'host' ? error instanceof SnapshotError : isLibraryError(error)) record.library = true;
    else if (!lookAlike && isDOMException(error)) record.dom = true;
    const props: Array<[string, Wire]> = [];
    for (const name of keys(error)) {
      if (name === 'stack' || name === 'message') continue;
      const v = (error as unknown as Record<string, unknown>)[name];
      if (typeof v === 'function') continue;
      props.push([name, this.#copyOut(v, walk, depth + 1)]);
    }
    if (props.length > 0) record.props = objectWire(props);
    // An error keeps its cause, as structuredClone keeps it (a service reads `error.cause.code === 'ECONNREFUSED'` on
    // a failed fetch, as in Node): an own data property only (a getter is not run), and only if it can be copied;
    // otherwise the error crosses without it, the objects the attempt numbered forgotten so that the copy's pre-order
    // stays whole. A host error's cause is copied as the error itself is (its stack's first line only), and only
    // when it is data all through: a cause holding a host object with methods (a socket) would cross as a reference.
    if (!props.some(([name]) => name === 'cause')) {
      const cause = getOwnPropertyDescriptor(error, 'cause');
      if (cause && 'value' in cause && (walk.from === 'guest' || isPlainData(cause.value))) {
        const count = walk.count;
        try {
          record.cause = this.#copyOut(cause.value, walk, depth + 1);
        } catch {
          walk.count = count;
          if (walk.seen) for (const [object, n] of walk.seen) if (n >= count) walk.seen.delete(object);
        }
      }
    }
    return record;
  }

  #ref(object: object, from: Side, context: Context): Slot {
    if (from === 'guest') {
      let id = this.#exportIds.get(object);
      if (id === undefined) {
        id = this.#exports.length;
        this.#exports.push(object);
        this.#exportIds.set(object, id);
      }
      return new Slot('guest', id, ifaceOf(object, 'guest'));
    }
    let id = this.#importIds.get(object);
    if (id === undefined) {
      id = this.#nextImport++;
      this.#importIds.set(object, id);
      const origin = this.#directory?.originOf(object);
      this.#imports.set(id, origin ? { value: object, iface: serviceIface(origin), origin } : { value: object, iface: `${ifaceOf(object, 'host')} (${contextText(context)})` });
    }
    return new Slot('host', id, this.#imports.get(id)?.iface ?? '');
  }

  /**
   * Materialise one wire node. Objects are registered in the order they are
   * created, which is the pre-order `#copyOut` counted them in, so that
   * `ref` tags find them (shared references and cycles come back as such).
   */
  #copyIn(wire: Wire, walk: InWalk, depth: number): unknown {
    if (typeof wire !== 'object' || wire === null) return wire;
    const { to, objects } = walk;
    if (isArray(wire)) {
      const out: unknown[] = [];
      objects.push(out);
      for (let i = 0; i < wire.length; i += 1) out.push(this.#copyIn(wire[i], walk, depth + 1));
      return out;
    }
    if (wire instanceof Slot) return this.#slotTo(wire, to);
    if (wire instanceof Tagged) return this.#untag(wire, walk, depth);
    const proto = getPrototypeOf(wire);
    if (proto === objectPrototype || proto === null) {
      const out: Record<string, unknown> = {};
      objects.push(out);
      for (const name of keys(wire)) out[name] = this.#copyIn((wire as Record<string, unknown>)[name], walk, depth + 1);
      return out;
    }
    if (isView(wire)) {
      if (isBuffer(wire)) {
        const copy = unpooledCopy(wire);
        objects.push(copy);
        return copy;
      }
      const copy = copyViewWhole(wire);
      objects.push(copy, copy.buffer);
      return copy;
    }
    if (isArrayBuffer(wire)) {
      const copy = copyBuffer(wire);
      objects.push(copy);
      return copy;
    }
    if (wire instanceof Date) {
      const copy = new Date(apply(dateGetTime, wire, []) as number);
      if (walk.to === 'guest' && this.guestDatePrototype) Object.setPrototypeOf(copy, this.guestDatePrototype);
      objects.push(copy);
      return copy;
    }
    if (wire instanceof Set) {
      const out = new Set<unknown>();
      objects.push(out);
      for (const v of wire) out.add(this.#copyIn(v, walk, depth + 1));
      return out;
    }
    if (wire instanceof RegExp) {
      const copy = new RegExp(wire.source, wire.flags);
      objects.push(copy);
      return copy;
    }
    return wire;
  }

  #slotTo(slot: Slot, to: Side): unknown {
    if (slot.side === 'guest') {
      if (to === 'host') return this.#hostProxyFor(slot.id, slot.iface);
      const object = this.#exports[slot.id];
      if (object === undefined) throw new SnapshotError('LOG_CORRUPT', `service "${this.name}" has no object #${slot.id}, yet the log hands it one; rebuild the snapshot.`, { details: { service: this.name, id: slot.id } });
      return object;
    }
    if (to === 'guest') {
      if (!this.#imports.has(slot.id)) {
        // Replay: the object existed at build time only. It stays dead unless rebound.
        this.#imports.set(slot.id, { value: undefined, iface: slot.iface });
        this.#nextImport = Math.max(this.#nextImport, slot.id + 1);
      }
      return this.#guestProxyFor(slot.id, slot.iface);
    }
    return this.#liveImport(slot, `${slot.iface || `host reference #${slot.id}`}, returned to the host`);
  }

  #untag(tagged: Tagged, walk: InWalk, depth: number): unknown {
    const { objects } = walk;
    switch (tagged.tag) {
      case 'bigint':
        return BigInt(tagged.payload as string);
      case '-0':
        return -0;
      case 'symbol':
        return Symbol.for(tagged.payload as string);
      case 'utf16':
        return fromCodeUnits(tagged.payload as Uint16Array);
      case 'sealed':
        // Its objects are numbered apart, as #copyOut sealed them.
        return this.#copyIn(this.#unseal(tagged.payload), { to: walk.to, objects: [], base: 0 }, depth + 1);
      case 'ref': {
        const n = walk.base + (tagged.payload as number);
        if (!(n >= walk.base && n < objects.length)) throw new SnapshotError('LOG_CORRUPT', `a copied value refers to object #${String(tagged.payload)}, which it does not hold`);
        return objects[n];
      }
      case 'argref': {
        const n = tagged.payload as number;
        if (!(n >= 0 && n < walk.base)) throw new SnapshotError('LOG_CORRUPT', `an argument refers to object #${String(n)} of the arguments before it, which they do not hold`);
        return objects[n];
      }
      case 'map': {
        const out = new Map<unknown, unknown>();
        objects.push(out);
        for (const [k, v] of tagged.payload as Array<[Wire, Wire]>) out.set(this.#copyIn(k, walk, depth + 1), this.#copyIn(v, walk, depth + 1));
        return out;
      }
      case 'sparse': {
        const [length, indices, values] = tagged.payload as [number, number[], Wire[]];
        const out: unknown[] = [];
        out.length = length;
        objects.push(out);
        for (let i = 0; i < indices.length; i += 1) out[indices[i]] = this.#copyIn(values[i], walk, depth + 1);
        return out;
      }
      case 'array': {
        const [length, indices, values, named] = tagged.payload as [number, number[], Wire[], Wire];
        const out: unknown[] = [];
        out.length = length;
        objects.push(out);
        for (let i = 0; i < indices.length; i += 1) out[indices[i]] = this.#copyIn(values[i], walk, depth + 1);
        for (const [k, v] of objectEntries(named) ?? []) {
          defineProperty(out, k, { value: this.#copyIn(v as Wire, walk, depth + 1), enumerable: true, writable: true, configurable: true });
        }
        return out;
      }
      case 'boxed': {
        const out = Object(this.#copyIn(tagged.payload as Wire, walk, depth + 1)) as object;
        objects.push(out);
        return out;
      }
      case 'object': {
        const out: Record<string, unknown> = {};
        objects.push(out);
        for (const [k, v] of objectEntries(tagged) ?? []) {
          defineProperty(out, k, { value: this.#copyIn(v as Wire, walk, depth + 1), enumerable: true, writable: true, configurable: true });
        }
        return out;
      }
      case 'view': {
        const [name, bufferWire, offset, length] = tagged.payload as [string, Wire, number, number];
        const at = objects.length;
        objects.push(undefined); // the view's place, taken before its buffer's
        const buffer = this.#copyIn(bufferWire, walk, depth + 1);
        if (!isArrayBuffer(buffer)) throw new SnapshotError('LOG_CORRUPT', 'a copied typed array has no buffer');
        const view = makeView(name, buffer, offset, length);
        objects[at] = view;
        return view;
      }
      case 'error': {
        const record = tagged.payload as ErrorRecord;
        const error = reviveError(record);
        objects.push(error);
        if (record.props) {
          // The props record is bookkeeping, not one of the value's objects: its entries are.
          const props: Array<[string, unknown]> = [];
          for (const [name, v] of objectEntries(record.props) ?? []) props.push([name, this.#copyIn(v as Wire, walk, depth + 1)]);
          assignErrorProps(error, props);
        }
        if (hasOwn(record, 'cause')) {
          // Copied in whatever it is attached to: the objects it holds are numbered in the order they were copied out.
          const cause = this.#copyIn(record.cause as Wire, walk, depth + 1);
          if (!(error instanceof SnapshotError)) defineProperty(error, 'cause', { value: cause, writable: true, enumerable: false, configurable: true });
        }
        if (walk.to === 'guest' && error instanceof SnapshotError) markLibraryError(error);
        return error;
      }
      default:
        return tagged.payload;
    }
  }
}

/**
 * Whether `value` is data all through, as a host error's cause must be to
 * cross (Node's network errors: code, errno, syscall, address, a nested
 * cause): primitives, and plain objects, arrays, errors and dates holding
 * only such values (own data properties; at most `budget` values, 8 deep).
 * No functions, no accessors, no other class.
 */
const isPlainData = (value: unknown, depth = 0, budget = { left: 256 }): boolean => {
  if (typeof value === 'function') return false;
  if (typeof value !== 'object' || value === null) return true;
  budget.left -= 1;
  if (depth > 8 || budget.left < 0) return false;
  const proto = Object.getPrototypeOf(value) as object | null;
  const plain = proto === null || proto === Object.prototype || Array.isArray(value) || types.isNativeError(value) || types.isDate(value);
  if (!plain) return false;
  for (const key of Reflect.ownKeys(value)) {
    const descriptor = getOwnPropertyDescriptor(value, key) as PropertyDescriptor;
    // From Node 22 an error's own `stack` is V8's accessor: its text is data (a network error's cause crossed
    // without it, found on Node 24).
    if (!('value' in descriptor)) {
      if (isV8StackAccessor(key, descriptor)) continue;
      return false;
    }
    if (!isPlainData(descriptor.value, depth + 1, budget)) return false;
  }
  return true;
};

/** Keys a service may not read through a reference to a host object (see #hostGet). */
const UNREACHABLE_THROUGH_REFERENCES = new Set(['constructor', 'prototype', '__proto__', '__defineGetter__', '__defineSetter__', '__lookupGetter__', '__lookupSetter__']);

/** State of one outgoing copy: objects seen so far, numbered in pre-order. */
/**
 * What a value is, for messages (`argument of fetch()`): text, or a function
 * making it, so that a crossing that raises no error builds none (these run
 * on every call and syscall).
 */
type Context = string | (() => string);
const contextText = (context: Context): string => (typeof context === 'string' ? context : context());

interface OutWalk {
  readonly from: Side;
  readonly context: Context;
  seen: Map<object, number> | undefined;
  count: number;
  /** The number of the first object of the argument being copied (0 outside an argument list). */
  base: number;
  /** Copy data only: a value that would need a new reference throws NEEDS_REFERENCE instead. */
  readonly noRefs?: boolean;
}

const NEEDS_REFERENCE = Symbol('needs a reference');

/**
 * `key in object`, found by walking the prototype chain with own property
 * lookups, so that no Proxy trap runs: true or false, or undefined when a
 * Proxy (the object itself, or one in its chain) would have to be asked.
 */
const hasWithoutTraps = (object: unknown, key: PropertyKey): boolean | undefined => {
  const found = descriptorWithoutTraps(object, key);
  return found === PROXY_IN_CHAIN ? undefined : found !== undefined;
};

const PROXY_IN_CHAIN = Symbol('a Proxy would have to be asked');

/** The prototypes of the classes whose instances a host data read copies: plain objects, arrays, the collections, dates, RegExps, bytes, boxed primitives. */
const DATA_PROTOTYPES = new Set<object>([
  Object.prototype,
  Array.prototype,
  Date.prototype,
  Map.prototype,
  Set.prototype,
  RegExp.prototype,
  ArrayBuffer.prototype,
  DataView.prototype,
  Buffer.prototype,
  Number.prototype,
  String.prototype,
  Boolean.prototype,
  BigInt.prototype,
  ...[Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array].map(C => C.prototype as object),
]);

/**
 * The descriptor of `key` on `object` or the nearest object of its
 * prototype chain that has one, found with own property lookups only, so
 * that no Proxy trap runs: undefined when none has it, PROXY_IN_CHAIN when
 * a Proxy (the object itself, or one in its chain) would have to be asked.
 */
const descriptorWithoutTraps = (object: unknown, key: PropertyKey): PropertyDescriptor | typeof PROXY_IN_CHAIN | undefined => {
  for (let current: unknown = object; (typeof current === 'object' || typeof current === 'function') && current !== null; current = getPrototypeOf(current)) {
    if (isProxy(current)) return PROXY_IN_CHAIN;
    const descriptor = getOwnPropertyDescriptor(current, key);
    if (descriptor !== undefined) return descriptor;
  }
  return undefined;
};

/** Whether a Proxy is in the prototype chain of `object` (itself no Proxy): found without running any trap. */
const proxyInChain = (object: object): boolean => {
  for (let proto = getPrototypeOf(object); proto !== null; proto = getPrototypeOf(proto)) if (isProxy(proto)) return true;
  return false;
};

/** Every own property is a data property (reading them runs no code). */
const dataOnly = (object: object): boolean => {
  if (object instanceof Error) return false;
  for (const key of ownKeys(object)) {
    const descriptor = getOwnPropertyDescriptor(object, key);
    if (descriptor && !('value' in descriptor)) return false;
  }
  return true;
};

/** An object the host may read synchronously: not a Proxy (whose traps are service code), or nothing. */
const readable = (object: unknown): object is object =>
  (typeof object === 'object' || typeof object === 'function') && object !== null && !isProxy(object);

/** State of one incoming copy: the objects made so far, in the same order. */
interface InWalk {
  readonly to: Side;
  readonly objects: unknown[];
  /** Where the argument being copied starts in `objects` (0 outside an argument list). */
  base: number;
}

const remember = (walk: OutWalk, object: object): void => {
  (walk.seen ??= new Map()).set(object, walk.count);
  walk.count += 1;
};


// Intrinsics captured once: copies read internal slots, never what a service
// defined on the object itself (a `slice` of its own, a getter for `source`).
const typedArrayPrototype = getPrototypeOf(Uint8Array.prototype) as object;
const getter = (target: object, key: PropertyKey): ((...a: unknown[]) => unknown) =>
  (getOwnPropertyDescriptor(target, key) as PropertyDescriptor).get as (...a: unknown[]) => unknown;
const typedArrayTag = getter(typedArrayPrototype, Symbol.toStringTag);
const typedArrayBuffer = getter(typedArrayPrototype, 'buffer');
const typedArrayByteOffset = getter(typedArrayPrototype, 'byteOffset');
const typedArrayByteLength = getter(typedArrayPrototype, 'byteLength');
const typedArrayLength = getter(typedArrayPrototype, 'length');
const dataViewBuffer = getter(DataView.prototype, 'buffer');
const dataViewByteOffset = getter(DataView.prototype, 'byteOffset');
const dataViewByteLength = getter(DataView.prototype, 'byteLength');
const arrayBufferByteLength = getter(ArrayBuffer.prototype, 'byteLength');
const arrayBufferSlice = ArrayBuffer.prototype.slice;
const dateGetTime = Date.prototype.getTime;
const mapEntries = Map.prototype.entries;
const setValues = Set.prototype.values;
const regexpSource = getter(RegExp.prototype, 'source');
const regexpFlags = getter(RegExp.prototype, 'flags');
const { isBuffer } = Buffer;
const { isProxy, isBoxedPrimitive, isSharedArrayBuffer, isDate, isMap, isSet, isRegExp } = types;

/** Whether `proxy` (a Proxy) is revoked, or holds a revoked one: `isArray` runs no trap and throws only then. */
const isRevoked = (proxy: object): boolean => {
  try {
    isArray(proxy);
    return false;
  } catch {
    return true;
  }
};





const isArrayBuffer = (value: unknown): value is ArrayBuffer => {
  if (typeof value !== 'object' || value === null) return false;
  try {
    apply(arrayBufferByteLength, value, []);
    return true;
  } catch {
    return false;
  }
};

/** A Buffer with its own memory (never a slice of Node's shared pool, which holds other data). */
const unpooledCopy = (bytes: Uint8Array): Buffer => {
  const copy = Buffer.alloc(bytes.byteLength);
  copy.set(bytes);
  return copy;
};

const copyBuffer = (buffer: ArrayBuffer): ArrayBuffer => apply(arrayBufferSlice, buffer, [0]) as ArrayBuffer;

/** Iterate an intrinsic iterator without touching anything a service can replace. */
function* iterate<T>(iterator: Iterator<T>): Generator<T> {
  for (let step = iterator.next(); !step.done; step = iterator.next()) yield step.value;
}


const makeView = (name: string, buffer: ArrayBuffer, offset: number, length: number): ArrayBufferView => {
  const Ctor = viewConstructors[name];
  if (!Ctor) throw new SnapshotError('LOG_CORRUPT', `a copied value is a ${JSON.stringify(name)}, which is not a typed array`);
  return new Ctor(buffer, offset, length);
};

/** A copy of a whole view (its own buffer, offset 0). */
const copyViewWhole = (view: ArrayBufferView): ArrayBufferView => {
  const isTyped = apply(typedArrayTag, view, []) !== undefined;
  const name = isTyped ? (apply(typedArrayTag, view, []) as string) : 'DataView';
  const buffer = (isTyped ? apply(typedArrayBuffer, view, []) : apply(dataViewBuffer, view, [])) as ArrayBuffer;
  const offset = (isTyped ? apply(typedArrayByteOffset, view, []) : apply(dataViewByteOffset, view, [])) as number;
  const bytes = (isTyped ? apply(typedArrayByteLength, view, []) : apply(dataViewByteLength, view, [])) as number;
  const copy = apply(arrayBufferSlice, buffer, [offset, offset + bytes]) as ArrayBuffer;
  return makeView(name, copy, 0, isTyped ? (apply(typedArrayLength, view, []) as number) : bytes);
};

/** The first line(s) of a stack: its header, without frames (which name host paths). */
const stackHeader = (stack: string): string => {
  const at = stack.indexOf('\n    at ');
  return at < 0 ? stack : stack.slice(0, at);
};

/** By name, own keys only (a record named 'constructor' or 'toString' is an Error of that name, not Object or a function). */
const errorConstructors: Readonly<Record<string, ErrorConstructor>> = Object.assign(Object.create(null) as Record<string, ErrorConstructor>, {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
});

/**
 * An Error equal to the recorded one, including its stack text, on every
 * replay. A SnapshotError only when the record says this library raised
 * it: a service cannot make its own errors pass for the library's.
 */
const reviveError = (record: ErrorRecord): Error => {
  if (record.library && record.name.startsWith('SnapshotError[')) {
    const code = record.name.slice('SnapshotError['.length, -1) as SnapshotErrorCode;
    const error = new SnapshotError(code, record.message);
    defineProperty(error, 'stack', { value: record.stack ?? `${record.name}: ${record.message}`, writable: true, configurable: true });
    return error;
  }
  if (record.dom && typeof DOMException === 'function') {
    // Its name gives its code (DOMException's table), as the host's had.
    const error = new DOMException(record.message, record.name) as unknown as Error;
    defineProperty(error, 'stack', { value: record.stack ?? `${record.name}: ${record.message}`, writable: true, configurable: true });
    return error;
  }
  const Ctor = errorConstructors[record.name] ?? Error;
  const error = new Ctor(record.message);
  if (!(record.name in errorConstructors)) defineProperty(error, 'name', { value: record.name, writable: true, configurable: true });
  defineProperty(error, 'stack', { value: record.stack ?? `${record.name}: ${record.message}`, writable: true, configurable: true });
  return error;
};

/** An error's copied own properties back on it, as own enumerable data properties (an own `__proto__` too). */
const assignErrorProps = (error: Error, props: ReadonlyArray<readonly [string, unknown]>): void => {
  if (error instanceof SnapshotError) {
    // Its code and details are the library's own, and read-only.
    const details = props.find(([name]) => name === 'details')?.[1];
    defineProperty(error, 'details', { value: (details ?? {}) as Record<string, unknown>, configurable: true });
    return;
  }
  for (const [name, value] of props) defineProperty(error, name, { value, writable: true, enumerable: true, configurable: true });
};

/** The label of another service's export: "function get of service db". */
const serviceIface = (origin: ExportRef): string => `${origin.iface || `object #${origin.export}`} of service ${origin.service}`;

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';

const ifaceOf = (object: object, from: Side): string => {
  if (from === 'host') {
    // The host's own object (a FileHandle behind the host's Proxy): its traps and getters are the host's.
    if (typeof object === 'function') return `function ${object.name || 'anonymous'}`;
    const proto = getPrototypeOf(object);
    const name = proto && proto !== objectPrototype ? (proto.constructor as { name?: string } | undefined)?.name : undefined;
    return name ? `${name}` : 'object';
  }
  // A service's: read from descriptors, asking no Proxy and running no getter (its prototype's `constructor` read
  // through a Proxy in the chain ran the trap: found by the adversarial review).
  const nameOf = (fn: unknown): unknown => (typeof fn === 'function' && !isProxy(fn) ? getOwnPropertyDescriptor(fn, 'name')?.value : undefined);
  if (typeof object === 'function') {
    const name = nameOf(object);
    return `function ${typeof name === 'string' && name ? name : 'anonymous'}`;
  }
  if (isProxy(object)) return 'object';
  for (let proto = getPrototypeOf(object); proto !== null && proto !== objectPrototype && !isProxy(proto); proto = getPrototypeOf(proto)) {
    const ctor = getOwnPropertyDescriptor(proto, 'constructor');
    if (ctor === undefined) continue;
    // Lockdown makes an intrinsic prototype's `constructor` an accessor (override taming): asked on a frozen prototype only.
    const value = 'value' in ctor ? ctor.value : ctor.get && Object.isFrozen(proto) ? apply(ctor.get, proto, []) : undefined;
    const name = nameOf(value);
    return typeof name === 'string' && name ? name : 'object';
  }
  return 'object';
};

/**
 * NOT_PASSABLE for shared memory: parties share no memory (a write to it after the crossing would reach
 * the other side with no delivery, outside the log), as structured clone refuses a SharedArrayBuffer
 * across agent clusters (HTML, StructuredSerializeInternal).
 */
const sharedMemory = (service: string, walk: { context: Context }, what: string): SnapshotError =>
  notPassable(service, contextText(walk.context), `${what} cannot be copied: services and the host share no memory. Copy its bytes first (new Uint8Array(shared).slice(), whose buffer is an ArrayBuffer)`);

const notPassable = (service: string, context: string, why: string): SnapshotError =>
  new SnapshotError('NOT_PASSABLE', `service "${service}": ${context}: ${why}`, { details: { service, context } });
