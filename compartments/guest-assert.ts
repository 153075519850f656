/**
 * node:assert for services: Node's, except where it asks whether an
 * argument is an Error class.
 *
 * `assert.throws(fn, MyError)` (and `rejects`, `doesNotThrow`,
 * `doesNotReject`) tells an Error class from a validation function by
 * `Error.isPrototypeOf(expected)`, with the host's Error (lib/assert.js
 * expectedException, hasMatchingError). A service's Error is its own
 * (guest-errors.ts), so a service's class failed that test: an error of
 * another class was handed to the class as to a validation function, which
 * threw "Class constructor MyError cannot be invoked without 'new'" where
 * Node fails with its AssertionError (found by the fidelity review). Here,
 * for an Error class of the service's, Node's function is given a
 * validation function that checks `instanceof` and fails as Node fails,
 * with Node's message; what Node reports as expected is the class again.
 * Everything else is Node's own function, called as it is.
 */
import { inspect } from 'node:util';
import { isServiceErrorClass } from './guest-errors.js';

type AssertFn = (...args: unknown[]) => unknown;
type AssertModule = AssertFn & Record<string, unknown>;
type AssertionErrorClass = new (options: { actual: unknown; expected: unknown; message?: unknown; operator: string; stackStartFn: unknown }) => Error & { expected?: unknown; generatedMessage?: boolean };

const { defineProperty, getOwnPropertyDescriptors } = Object;

/** Node's isError (lib/internal/util.js): a native error, or what says it is one. */
const isErrorLike = (value: unknown): boolean => Object.prototype.toString.call(value) === '[object Error]' || value instanceof Error;

/** Node's message for an error that is no instance of the Error class `expected` (lib/assert.js expectedException). */
const mismatchMessage = (actual: unknown, expected: { name?: unknown }): string => {
  let message = `The error is expected to be an instance of "${String(expected.name)}". Received `;
  if (isErrorLike(actual)) {
    const error = actual as { constructor?: { name?: unknown }; name?: unknown; message?: unknown };
    const name = (error.constructor && error.constructor.name) || error.name;
    message += expected.name === name ? 'an error with identical name but a different prototype.' : `"${String(name)}"`;
    if (error.message) message += `\n\nError message:\n\n${String(error.message)}`;
  } else {
    message += `"${inspect(actual, { depth: -1 })}"`;
  }
  return message;
};

/**
 * Node's `host` (throws, rejects, doesNotThrow or doesNotReject) as `name`, for a service. `expects`:
 * whether it expects an error (throws, rejects) or none.
 */
const wrap = (host: AssertFn, name: string, expects: boolean, AssertionError: AssertionErrorClass): AssertFn => {
  const wrapped = {
    [name](this: unknown, fn: unknown, ...args: unknown[]): unknown {
      const expected = args[0];
      if (!isServiceErrorClass(expected)) return Reflect.apply(host, this, [fn, ...args]);
      const message = args[1];
      const expectedName = (expected as { name?: unknown }).name;
      const validate = expects
        ? (actual: unknown): true => {
            if ((expected as { prototype?: unknown }).prototype !== undefined && actual instanceof (expected as new () => unknown)) return true;
            const error = new AssertionError({ actual, expected, message: message || mismatchMessage(actual, expected as { name?: unknown }), operator: name, stackStartFn: wrapped });
            error.generatedMessage = !message;
            throw error;
          }
        : (actual: unknown): boolean => (expected as { prototype?: unknown }).prototype !== undefined && actual instanceof (expected as new () => unknown);
      // Node names the class in "Missing expected exception (MyError)."
      defineProperty(validate, 'name', { value: expectedName });
      /** Node's own failures name what it was given as expected: the class, not the validation function. */
      const asGiven = (error: unknown): never => {
        if (error instanceof AssertionError && error.expected === validate) error.expected = expected;
        throw error;
      };
      let outcome: unknown;
      try {
        outcome = Reflect.apply(host, this, [fn, validate, ...args.slice(1)]);
      } catch (error) {
        return asGiven(error);
      }
      return outcome instanceof Promise ? outcome.catch(asGiven) : outcome;
    },
  }[name];
  defineProperty(wrapped, 'length', { value: host.length });
  return wrapped;
};

/** A copy of `host` (assert, or assert.strict) whose four error checks are wrapped. */
const copyOf = (host: AssertModule, AssertionError: AssertionErrorClass): AssertModule => {
  // A function (not a method): Node's assert and assert.strict are, with a prototype.
  const copy = function (this: unknown, ...args: unknown[]): unknown {
    return Reflect.apply(host, this, args);
  } as AssertModule;
  // As Node's are before the caller hardens the copy: writable and configurable (the host's are hardened).
  const descriptors = getOwnPropertyDescriptors(host) as Record<string, PropertyDescriptor>;
  for (const [key, descriptor] of Object.entries(descriptors)) {
    if (key === 'prototype') defineProperty(copy, key, { value: descriptor.value });
    else defineProperty(copy, key, { ...descriptor, ...('value' in descriptor ? { writable: true } : {}), configurable: true });
  }
  for (const [key, expects] of [['throws', true], ['rejects', true], ['doesNotThrow', false], ['doesNotReject', false]] as const) {
    if (typeof host[key] === 'function') defineProperty(copy, key, { ...descriptors[key], value: wrap(host[key] as AssertFn, key, expects, AssertionError) });
  }
  return copy;
};

/** node:assert as services get it, made from the host's (hardened by the caller). */
export const makeGuestAssert = (host: AssertModule): AssertModule => {
  const AssertionError = host.AssertionError as AssertionErrorClass;
  const assert = copyOf(host, AssertionError);
  const strict = copyOf(host.strict as AssertModule, AssertionError);
  defineProperty(strict, 'strict', { ...Object.getOwnPropertyDescriptor(host.strict as object, 'strict'), value: strict });
  defineProperty(assert, 'strict', { ...Object.getOwnPropertyDescriptor(host, 'strict'), value: strict });
  return assert;
};
