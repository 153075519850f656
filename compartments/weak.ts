/**
 * `WeakRef` and `FinalizationRegistry` inside a service, deterministic:
 * nothing a service holds weakly is ever collected from under it. A
 * WeakRef keeps its target (`deref()` always returns it) and a
 * FinalizationRegistry never calls its cleanup callback.
 *
 * The language allows exactly this: an engine need not collect a weakly
 * held object, nor ever call a cleanup callback (ECMA-262, "WeakRef
 * Objects" and "FinalizationRegistry Objects": liveness and cleanup are
 * left to the host). V8's real ones answer by garbage collection timing,
 * which differs between the build and every replay, so a service using
 * them would diverge; these make the build and each replay agree.
 * Packages use them to clean up after objects they do not own (pino's
 * on-exit-leak-free flushes its streams at exit through them); what such
 * code would free by collection stays allocated (docs/environment.md).
 *
 * Shapes and errors as V8's: `new WeakRef(target)` (an object, or a
 * symbol not from Symbol.for), `deref()`; `new
 * FinalizationRegistry(cleanup)`, `register(target, heldValue,
 * unregisterToken?)`, `unregister(token)` (true when a registration with
 * that token was removed). One pair for the process, hardened: services
 * share it and hold no state in it (a registry's tokens are its own,
 * weakly held).
 */

/** What V8 lets a WeakRef or a registry hold weakly: an object, or a symbol not in the global registry. */
const canBeHeldWeakly = (value: unknown): boolean =>
  (typeof value === 'object' && value !== null) || typeof value === 'function' || (typeof value === 'symbol' && Symbol.keyFor(value) === undefined);

const invalidToken = (token: unknown): TypeError => new TypeError(`Invalid unregisterToken ('${typeof token === 'symbol' ? token.description ?? '' : String(token)}')`);

/**
 * A WeakRef that keeps its target: deref() gives it back for as long as the WeakRef lives. Named apart
 * (and given Node's name below): the restore bundle would rename a class named like the global
 * (WeakRef2), and V8's messages name a class by its source name, so build and replay would differ.
 */
class DeterministicWeakRef<T extends object = object> {
  readonly #target: T;
  constructor(target: T) {
    if (!canBeHeldWeakly(target)) throw new TypeError('WeakRef: invalid target');
    this.#target = target;
  }
  deref(): T | undefined {
    return this.#target;
  }
}
Object.defineProperty(DeterministicWeakRef, 'name', { value: 'WeakRef' });
Object.defineProperty(DeterministicWeakRef.prototype, Symbol.toStringTag, { value: 'WeakRef', configurable: true });

/** A FinalizationRegistry that never calls back: its registrations are only counted by token, for unregister. */
class DeterministicFinalizationRegistry {
  readonly #tokens = new WeakMap<object, number>();
  constructor(cleanup: unknown) {
    if (typeof cleanup !== 'function') throw new TypeError('FinalizationRegistry: cleanup must be callable');
  }
  register(target: unknown, heldValue: unknown, unregisterToken: unknown = undefined): undefined {
    if (!canBeHeldWeakly(target)) throw new TypeError('FinalizationRegistry.prototype.register: invalid target');
    if (Object.is(target, heldValue)) throw new TypeError('FinalizationRegistry.prototype.register: target and holdings must not be same');
    if (unregisterToken !== undefined) {
      if (!canBeHeldWeakly(unregisterToken)) throw invalidToken(unregisterToken);
      const key = unregisterToken as object;
      this.#tokens.set(key, (this.#tokens.get(key) ?? 0) + 1);
    }
    return undefined;
  }
  unregister(unregisterToken: unknown): boolean {
    if (!canBeHeldWeakly(unregisterToken)) throw invalidToken(unregisterToken);
    return this.#tokens.delete(unregisterToken as object);
  }
}
Object.defineProperty(DeterministicFinalizationRegistry, 'name', { value: 'FinalizationRegistry' });
Object.defineProperty(DeterministicFinalizationRegistry.prototype, Symbol.toStringTag, { value: 'FinalizationRegistry', configurable: true });

/** The services' WeakRef and FinalizationRegistry (hardened, shared). */
export const deterministicWeakRefs = (): { WeakRef: unknown; FinalizationRegistry: unknown } =>
  harden({ WeakRef: DeterministicWeakRef, FinalizationRegistry: DeterministicFinalizationRegistry });
