/** Errors raised inside services for things the deterministic environment refuses. */
import { SnapshotError } from '../replay-log/index.js';
import { markLibraryError } from '../membrane/marks.js';

/** A global or operation that cannot be made deterministic. */
export const determinismViolation = (what: string, why: string, instead: string): SnapshotError =>
  markLibraryError(new SnapshotError('DETERMINISM_VIOLATION', `${what} is not available inside a service: ${why}. ${instead}`, { details: { what } }));

/** A constructor that refuses to be used, saying why. */
export const refusedConstructor = (name: string, why: string, instead: string, length = 0): (() => never) => {
  const refused = function () {
    throw determinismViolation(name, why, instead);
  };
  Object.defineProperty(refused, 'name', { value: name });
  Object.defineProperty(refused, 'length', { value: length });
  return harden(refused);
};

/**
 * Give a class the name (and, with `tag`, the `Symbol.toStringTag`) of the
 * Node class it stands for: `Response.name` is 'Response' and
 * `Object.prototype.toString.call(response)` is '[object Response]', as in
 * Node. Call before hardening.
 */
export const nameAs = (klass: Function, name: string, tag = true): void => {
  Object.defineProperty(klass, 'name', { value: name, writable: false, enumerable: false, configurable: true });
  if (tag) Object.defineProperty(klass.prototype, Symbol.toStringTag, { value: name, writable: false, enumerable: false, configurable: true });
};
