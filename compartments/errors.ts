/** Errors raised inside services for things the deterministic environment refuses. */
import { SnapshotError } from '../replay-log/index.js';
import { markLibraryError } from '../membrane/marks.js';

/** A global or operation that cannot be made deterministic. */
export const determinismViolation = (what: string, why: string, instead: string): SnapshotError =>
  markLibraryError(new SnapshotError('DETERMINISM_VIOLATION', `${what} is not available inside a service: ${why}. ${instead}`, { details: { what } }));

/** A constructor that refuses to be used, saying why. */
export const refusedConstructor = (name: string, why: string, instead: string): (() => never) => {
  const refused = function () {
    throw determinismViolation(name, why, instead);
  };
  Object.defineProperty(refused, 'name', { value: name });
  return harden(refused);
};
