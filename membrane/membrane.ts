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
import { SnapshotError, Slot, Tagged, describeWire, type SnapshotErrorCode, type DeliveryEntry, type ErrorRecord, type Outcome, type Side, type Wire } from '../replay-log/index.js';
import type { Journal } from './journal.js';
import type { Directory, ExportRef } from './directory.js';
import { Turns } from './turns.js';

const { apply, getPrototypeOf, ownKeys } = Reflect;
const { is, keys, defineProperty } = Object;
const { isArray } = Array;
const { isView } = ArrayBuffer;
const objectPrototype = Object.prototype;
const MAX_DEPTH = 100;

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
}

export class Membrane {
  readonly name: string;
  readonly journal: Journal;
  readonly turns: Turns;
  readonly #start: () => Promise<object>;
  readonly #directory: Directory | undefined;

  readonly #exportIds = new WeakMap<object, number>();
  readonly #exports: object[] = [];
  readonly #importIds = new Map<object, number>();
  readonly #imports = new Map<number, Import>();
  readonly #guestProxies = new Map<number, object>();
  readonly #guestProxyIds = new WeakMap<object, number>();
  readonly #hostProxies = new Map<number, object>();
  readonly #hostProxyIds = new WeakMap<object, number>();
  readonly #promises = new Map<number, PendingPromise>();
  readonly #answers = new Map<number, Answer>();
  readonly #hostSettlers = new Set<() => void>();
  readonly #boundMethods = new WeakMap<object, Map<string, { fn: unknown; proxy: object }>>();
  #nextImport = 1;
  #nextPromise = 1;
  #nextAnswer = 1;
  #failure: unknown;
  readonly #failureListeners: Array<(error: unknown) => void> = [];

  /** Called when a recorded timer fires (installed by the timers endowment). */
  onTimer: (id: number) => void = id => {
    throw new Error(`timer #${id} fired but the service has no timers`);
  };

  constructor(options: MembraneOptions) {
    this.name = options.name;
    this.journal = options.journal;
    this.#start = options.start;
    this.#directory = options.directory;
    this.turns = new Turns(this.journal, entry => this.#perform(entry), error => this.fail(error));
    this.journal.onDivergence(error => this.fail(error));
  }

  // ---- the host's view ---------------------------------------------------

  /**
   * Evaluate the service (the first delivery) and resolve to its exports as
   * the host sees them: functions and objects with behaviour as proxies,
   * data as copies taken when evaluation finished.
   */
  startService(): Promise<Record<string, unknown>> {
    const promise = this.#awaitAnswer(0);
    // On replay the start delivery comes from the log like every other one.
    if (!this.journal.replaying) this.turns.enqueue({ kind: 'start' });
    return promise as Promise<Record<string, unknown>>;
  }

  /** Deliver a call on a guest object; always eventual. */
  deliverCall(target: number, method: string | null, hostArgs: readonly unknown[], label = `#${target}`): Promise<unknown> {
    if (this.#failure) return Promise.reject(this.#failure);
    let args: Wire[];
    try {
      args = this.#toWireArray(hostArgs, 'host', `argument of ${method ?? label.replace(/^function /, '')}()`);
    } catch (error) {
      return Promise.reject(error);
    }
    const answer = this.#nextAnswer++;
    const promise = this.#awaitAnswer(answer);
    this.turns.enqueue({ kind: 'call', target, method, args, answer });
    return promise;
  }

  /** Stop the service: every later delivery and waiting caller gets `error`. */
  fail(error: unknown): void {
    if (this.#failure) return;
    this.#failure = error;
    for (const listener of this.#failureListeners) listener(error);
    this.turns.stop(error);
    for (const answer of this.#answers.values()) answer.reject(error);
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
    for (const cancel of this.#hostSettlers) cancel();
    this.#hostSettlers.clear();
  }

  // ---- the guest's view: syscalls ------------------------------------------

  /** Clock, randomness: the journal's fast kinds. */
  now(real: () => number): number {
    return this.journal.now(real);
  }

  perf(real: () => number): number {
    return this.journal.perf(real);
  }

  seed(real: () => Uint8Array): Uint8Array {
    return this.journal.seed(real);
  }

  randomFill(target: Uint8Array, real: (target: Uint8Array) => void): void {
    this.journal.randomFill(target, real);
  }

  /**
   * A call to a host capability by stable name. `perform` runs only when
   * live, with the arguments copied to the host; a thenable result makes
   * this an async syscall whose guest promise settles in a later delivery.
   */
  syscall(op: string, guestArgs: readonly unknown[], perform: (...hostArgs: unknown[]) => unknown): unknown {
    const args = this.#toWireArray(guestArgs, 'guest', `argument of ${op}()`);
    const outcome = this.journal.sys(op, args, () => this.#performHost(op, () => perform(...this.#fromWireArray(args, 'host'))));
    return this.#guestOutcome(outcome, op, args);
  }

  /** A call on a host object the guest holds by reference. */
  send(slot: Slot, method: string | null, guestArgs: readonly unknown[]): unknown {
    const args = this.#toWireArray(guestArgs, 'guest', `argument of ${method ?? 'call'}()`);
    const member = method === null ? '()' : method === '[[get]]' ? `.${String(guestArgs[0])}` : `.${method}()`;
    const what = `${slot.iface || `host reference #${slot.id}`}${member}`;
    const outcome = this.journal.send(slot, method, args, () => {
      const target = this.#liveImport(slot, what);
      return this.#performHost(what, () => {
        if (method === null) return apply(target as (...a: unknown[]) => unknown, undefined, this.#fromWireArray(args, 'host'));
        if (method === '[[get]]') return this.#hostGet(target, args[0] as string);
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
        return this.#answerWith(0, () => this.#start().then(ns => this.#namespaceToWire(ns)), true);
      case 'call': {
        const target = this.#exports[entry.target];
        this.#answerWith(entry.answer, () => {
          if (target === undefined) throw new TypeError(`service "${this.name}" has no object #${entry.target}`);
          const args = this.#fromWireArray(entry.args, 'guest');
          if (entry.method === null) return apply(target as (...a: unknown[]) => unknown, undefined, args);
          const fn = (target as Record<string, unknown>)[entry.method];
          if (typeof fn !== 'function') throw new TypeError(`${entry.method} is not a function of service "${this.name}"`);
          return apply(fn, target, args);
        });
        return;
      }
      case 'settle': {
        const pending = this.#promises.get(entry.promise);
        if (!pending) throw new Error(`settle for unknown promise #${entry.promise}`);
        this.#promises.delete(entry.promise);
        const value = this.#fromWire(entry.value, 'guest', 0);
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
  #answerWith(answer: number, run: () => unknown, preWired = false): void {
    let result: unknown;
    try {
      result = run();
    } catch (error) {
      this.#ret(answer, false, error, false);
      return;
    }
    Promise.resolve(result).then(
      value => this.#ret(answer, true, value, preWired),
      error => this.#ret(answer, false, error, false),
    );
  }

  #ret(answer: number, ok: boolean, value: unknown, preWired: boolean): void {
    let wire: Wire;
    try {
      wire = preWired ? value : this.#toWire(value, 'guest', 0, `result of call #${answer}`);
    } catch (error) {
      ok = false;
      wire = this.#toWire(error, 'guest', 0, 'error');
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
    let hostValue: unknown;
    try {
      hostValue = this.#fromWire(wire, 'host', 0);
    } catch (error) {
      waiter.reject(error);
      return;
    }
    if (ok) waiter.resolve(hostValue);
    else waiter.reject(hostValue);
  }

  #awaitAnswer(answer: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#answers.set(answer, { resolve, reject });
    });
  }

  #namespaceToWire(namespace: object): Wire {
    const out: Record<string, Wire> = {};
    for (const key of keys(namespace)) {
      out[key] = this.#toWire((namespace as Record<string, unknown>)[key], 'guest', 0, `export ${key}`);
    }
    return out;
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
    return { type: 'return', value: this.#toWire(result, 'host', 0, `result of ${what}`) };
  }

  #settleLater(promise: number, hostPromise: PromiseLike<unknown>, what: string): void {
    let cancelled = false;
    const cancel = () => {
      cancelled = true;
    };
    this.#hostSettlers.add(cancel);
    const settle = (ok: boolean, value: unknown) => {
      this.#hostSettlers.delete(cancel);
      if (cancelled) return;
      let wire: Wire;
      try {
        wire = this.#toWire(value, 'host', 0, `result of ${what}`);
      } catch (error) {
        ok = false;
        wire = this.#toWire(error, 'host', 0, 'error');
      }
      this.turns.enqueue({ kind: 'settle', promise, ok, value: wire });
    };
    Promise.resolve(hostPromise).then(
      value => settle(true, value),
      error => settle(false, error),
    );
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

  /** Property read on a host object: data comes back by copy, methods bound to the object. */
  #hostGet(target: object, key: string): unknown {
    const value = (target as Record<string, unknown>)[key];
    if (typeof value !== 'function') return value;
    // The same method read twice is the same bound function (one import, not one per read).
    let methods = this.#boundMethods.get(target);
    if (!methods) this.#boundMethods.set(target, (methods = new Map()));
    let bound = methods.get(key);
    if (!bound || bound.fn !== value) {
      bound = { fn: value, proxy: new Proxy(value, { apply: (fn, _this, args) => apply(fn, target, args) }) };
      methods.set(key, bound);
    }
    return bound.proxy;
  }

  // ---- proxies --------------------------------------------------------------------

  #hostProxyFor(id: number, iface: string): object {
    const existing = this.#hostProxies.get(id);
    if (existing) return existing;
    const membrane = this;
    const methods = new Map<string, (...args: unknown[]) => Promise<unknown>>();
    const label = `${this.name} ${iface || `#${id}`}`;
    const target = iface.startsWith('function') ? function serviceFunction() {} : {};
    const proxy = new Proxy(target, {
      apply: (_t, _this, args) => membrane.deliverCall(id, null, args, iface),
      get: (_t, key) => {
        if (key === 'then' || typeof key === 'symbol') {
          return key === Symbol.toStringTag ? `Service ${label}` : undefined;
        }
        let method = methods.get(key);
        if (!method) {
          method = (...args: unknown[]) => membrane.deliverCall(id, key, args);
          methods.set(key, method);
        }
        return method;
      },
      set: () => false,
      defineProperty: () => false,
      deleteProperty: () => false,
    });
    this.#hostProxies.set(id, proxy);
    this.#hostProxyIds.set(proxy, id);
    this.#directory?.register(proxy, { service: this.name, export: id, iface });
    return proxy;
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
          return key === Symbol.toStringTag ? `Host ${iface}` : undefined;
        }
        return membrane.send(slot, '[[get]]', [key]);
      },
      set: () => {
        throw new TypeError(`cannot set properties of ${iface || 'a host object'} from inside service "${membrane.name}"`);
      },
      defineProperty: () => false,
      deleteProperty: () => false,
    });
    this.#guestProxies.set(id, proxy);
    this.#guestProxyIds.set(proxy, id);
    return proxy;
  }

  // ---- the wire walk ----------------------------------------------------------------

  // Arrays are built with push: under lockdown, `new Array(n)` filled by
  // index is two orders of magnitude slower on Node 20.
  #toWireArray(values: readonly unknown[], from: Side, context: string): Wire[] {
    const out: Wire[] = [];
    for (let i = 0; i < values.length; i += 1) out.push(this.#toWire(values[i], from, 0, context));
    return out;
  }

  #fromWireArray(values: readonly Wire[], to: Side): unknown[] {
    const out: unknown[] = [];
    for (let i = 0; i < values.length; i += 1) out.push(this.#fromWire(values[i], to, 0));
    return out;
  }

  /** Copy a value leaving side `from`: data by copy, behaviour by reference. */
  #toWire(value: unknown, from: Side, depth: number, context: string): Wire {
    switch (typeof value) {
      case 'string':
      case 'boolean':
      case 'undefined':
        return value;
      case 'number':
        return value === 0 && is(value, -0) ? new Tagged('-0', 0) : value;
      case 'bigint':
        return new Tagged('bigint', value.toString());
      case 'symbol': {
        const key = Symbol.keyFor(value);
        if (key !== undefined) return new Tagged('symbol', key);
        throw notPassable(this.name, context, `a unique symbol (${String(value)}) cannot cross the membrane; use a string or Symbol.for()`);
      }
      case 'function':
        return this.#ref(value, from, context);
      default:
        break;
    }
    if (value === null) return null;
    const object = value as object;
    if (depth > MAX_DEPTH) throw notPassable(this.name, context, `a value nested more than ${MAX_DEPTH} deep (a cycle?) cannot be copied`);
    if (from === 'guest') {
      const id = this.#guestProxyIds.get(object);
      if (id !== undefined) return new Slot('host', id, this.#imports.get(id)?.iface ?? '');
    } else {
      const id = this.#hostProxyIds.get(object);
      if (id !== undefined) return new Slot('guest', id);
      // Another service's object: a reference, whatever its shape.
      if (this.#directory?.originOf(object)) return this.#ref(object, from, context);
    }
    if (isArray(object)) {
      const out: Wire[] = [];
      for (let i = 0; i < object.length; i += 1) out.push(this.#toWire(object[i], from, depth + 1, context));
      return out;
    }
    const proto = getPrototypeOf(object);
    if (proto === objectPrototype || proto === null) {
      const names = keys(object);
      for (const name of names) {
        const v = (object as Record<string, unknown>)[name];
        // A record of references (a service's exports) is data; a method is behaviour.
        if (typeof v === 'function' && !this.#isReference(v, from)) return this.#ref(object, from, context);
      }
      const out: Record<string, Wire> = {};
      for (const name of names) {
        const wire = this.#toWire((object as Record<string, unknown>)[name], from, depth + 1, context);
        if (name === '__proto__') defineProperty(out, name, { value: wire, enumerable: true, writable: true, configurable: true });
        else out[name] = wire;
      }
      return out;
    }
    if (isView(object)) return object;
    if (object instanceof ArrayBuffer) return object.slice(0);
    if (object instanceof Date) return new Date(object.getTime());
    if (object instanceof Error) return new Tagged('error', this.#errorRecord(object, from, depth, context));
    if (object instanceof Map) {
      return new Tagged('map', [...object].map(([k, v]) => [this.#toWire(k, from, depth + 1, context), this.#toWire(v, from, depth + 1, context)]));
    }
    if (object instanceof Set) return new Set([...object].map(v => this.#toWire(v, from, depth + 1, context)));
    if (object instanceof RegExp) return new RegExp(object.source, object.flags);
    if (isThenable(object)) {
      throw notPassable(this.name, context, 'a promise cannot be passed inside a value; await it first, or return it as the result of a call');
    }
    return this.#ref(object, from, context);
  }

  /** Is `value` already a reference (a proxy of the other side, or of another service)? */
  #isReference(value: object, from: Side): boolean {
    if (from === 'guest') return this.#guestProxyIds.has(value);
    return this.#hostProxyIds.has(value) || this.#directory?.originOf(value) !== undefined;
  }

  #errorRecord(error: Error, from: Side, depth: number, context: string): ErrorRecord {
    const record: ErrorRecord = { name: String(error.name), message: String(error.message) };
    if (typeof error.stack === 'string') record.stack = error.stack;
    const props: Record<string, unknown> = {};
    let any = false;
    for (const name of keys(error)) {
      if (name === 'stack' || name === 'message') continue;
      const v = (error as unknown as Record<string, unknown>)[name];
      if (typeof v === 'function') continue;
      props[name] = this.#toWire(v, from, depth + 1, context);
      any = true;
    }
    if (any) record.props = props;
    return record;
  }

  #ref(object: object, from: Side, context: string): Slot {
    if (from === 'guest') {
      let id = this.#exportIds.get(object);
      if (id === undefined) {
        id = this.#exports.length;
        this.#exports.push(object);
        this.#exportIds.set(object, id);
      }
      return new Slot('guest', id, ifaceOf(object));
    }
    let id = this.#importIds.get(object);
    if (id === undefined) {
      id = this.#nextImport++;
      this.#importIds.set(object, id);
      const origin = this.#directory?.originOf(object);
      this.#imports.set(id, origin ? { value: object, iface: serviceIface(origin), origin } : { value: object, iface: `${ifaceOf(object)} (${context})` });
    }
    return new Slot('host', id, this.#imports.get(id)?.iface ?? '');
  }

  /** Materialise a wire value on side `to`. Always returns fresh copies of data. */
  #fromWire(wire: Wire, to: Side, depth: number): unknown {
    if (typeof wire !== 'object' || wire === null) return wire;
    if (isArray(wire)) {
      const out: unknown[] = [];
      for (let i = 0; i < wire.length; i += 1) out.push(this.#fromWire(wire[i], to, depth + 1));
      return out;
    }
    if (wire instanceof Slot) return this.#slotTo(wire, to);
    if (wire instanceof Tagged) return this.#untag(wire, to, depth);
    const proto = getPrototypeOf(wire);
    if (proto === objectPrototype || proto === null) {
      const out: Record<string, unknown> = {};
      for (const name of keys(wire)) {
        const v = this.#fromWire((wire as Record<string, unknown>)[name], to, depth + 1);
        if (name === '__proto__') defineProperty(out, name, { value: v, enumerable: true, writable: true, configurable: true });
        else out[name] = v;
      }
      return out;
    }
    if (Buffer.isBuffer(wire)) return Buffer.from(wire);
    if (isView(wire)) return (wire as unknown as { slice(): unknown }).slice();
    if (wire instanceof ArrayBuffer) return wire.slice(0);
    if (wire instanceof Date) return new Date(wire.getTime());
    if (wire instanceof Set) return new Set([...wire].map(v => this.#fromWire(v, to, depth + 1)));
    if (wire instanceof RegExp) return new RegExp(wire.source, wire.flags);
    return wire;
  }

  #slotTo(slot: Slot, to: Side): unknown {
    if (slot.side === 'guest') {
      if (to === 'host') return this.#hostProxyFor(slot.id, slot.iface);
      const object = this.#exports[slot.id];
      if (object === undefined) throw new Error(`service "${this.name}" has no object #${slot.id}`);
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

  #untag(tagged: Tagged, to: Side, depth: number): unknown {
    switch (tagged.tag) {
      case 'bigint':
        return BigInt(tagged.payload as string);
      case '-0':
        return -0;
      case 'symbol':
        return Symbol.for(tagged.payload as string);
      case 'map':
        return new Map((tagged.payload as Array<[Wire, Wire]>).map(([k, v]) => [this.#fromWire(k, to, depth + 1), this.#fromWire(v, to, depth + 1)]));
      case 'error':
        return reviveError(tagged.payload as ErrorRecord, props => (props ? (this.#fromWire(props, to, depth + 1) as Record<string, unknown>) : undefined));
      default:
        return tagged.payload;
    }
  }
}

const errorConstructors: Record<string, ErrorConstructor> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

/** An Error equal to the recorded one, including its stack text, on every replay. */
const reviveError = (record: ErrorRecord, revive: (props: Record<string, unknown> | undefined) => Record<string, unknown> | undefined): Error => {
  const props = revive(record.props);
  if (record.name.startsWith('SnapshotError[') && typeof props?.code === 'string') {
    // Our own typed errors keep their type across the membrane.
    const error = new SnapshotError(props.code as SnapshotErrorCode, record.message, { details: (props.details ?? {}) as Record<string, unknown> });
    defineProperty(error, 'stack', { value: record.stack ?? `${record.name}: ${record.message}`, writable: true, configurable: true });
    return error;
  }
  const Ctor = errorConstructors[record.name] ?? Error;
  const error = new Ctor(record.message);
  if (!(record.name in errorConstructors)) defineProperty(error, 'name', { value: record.name, writable: true, configurable: true });
  defineProperty(error, 'stack', { value: record.stack ?? `${record.name}: ${record.message}`, writable: true, configurable: true });
  if (props) for (const name of ownKeys(props) as string[]) (error as unknown as Record<string, unknown>)[name] = props[name];
  return error;
};

/** The label of another service's export: "function get of service db". */
const serviceIface = (origin: ExportRef): string => `${origin.iface || `object #${origin.export}`} of service ${origin.service}`;

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';

const ifaceOf = (object: object): string => {
  if (typeof object === 'function') return `function ${object.name || 'anonymous'}`;
  const proto = getPrototypeOf(object);
  const name = proto && proto !== objectPrototype ? (proto.constructor as { name?: string } | undefined)?.name : undefined;
  return name ? `${name}` : 'object';
};

const notPassable = (service: string, context: string, why: string): SnapshotError =>
  new SnapshotError('NOT_PASSABLE', `service "${service}": ${context}: ${why}`, { details: { service, context } });
