/** Errors raised inside services for things the deterministic environment refuses. */
import { SnapshotError } from '../replay-log/index.js';
import { markLibraryError } from '../membrane/marks.js';
import { createRequire, isBuiltin } from 'node:module';
import { likeHost } from './host-shape.js';

/** A global or operation that cannot be made deterministic. */
export const determinismViolation = (what: string, why: string, instead: string): SnapshotError =>
  markLibraryError(new SnapshotError('DETERMINISM_VIOLATION', `${what} is not available inside a service: ${why}. ${instead}`, { details: { what } }));

const hostRequire = createRequire(import.meta.url);

/** The Node function `module.path` names (`net.Socket`, `dns.promises.lookup`), when there is one. */
const hostFunctionNamed = (what: string): unknown => {
  const [module, ...path] = what.split('.');
  if (path.length === 0 || !/^[a-z_0-9]+$/.test(module) || !isBuiltin(module)) return undefined;
  let at: unknown = hostRequire(`node:${module}`);
  for (const key of path) at = at === null || at === undefined ? undefined : (at as Record<string, unknown>)[key];
  return at;
};

/**
 * A constructor (or function) that refuses to be used, saying why. Where `name` names a function of Node's
 * (`net.Socket`), it has that function's name and length, as Node's own; otherwise `name` and `length`.
 */
export const refusedConstructor = (name: string, why: string, instead: string, length = 0): (() => never) => {
  const refused = function () {
    throw determinismViolation(name, why, instead);
  };
  Object.defineProperty(refused, 'name', { value: name, configurable: true });
  Object.defineProperty(refused, 'length', { value: length, configurable: true });
  return harden(likeHost(refused, hostFunctionNamed(name)));
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
