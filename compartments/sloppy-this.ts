/**
 * `Function('return this')()` inside a service.
 *
 * In Node a function made by the Function constructor is sloppy-mode code:
 * called with no receiver, its `this` is the global object. The idiom
 * `Function('return this')()` (lodash, core-js, protobufjs, older bundles)
 * relies on it to find the global. SES evaluates everything in strict mode,
 * where that `this` is undefined. Each compartment's Function constructor
 * is wrapped so that functions it makes whose body mentions `this`, when
 * called with an undefined or null receiver, get the compartment's global
 * instead, as in Node. Functions whose body does not mention `this` are
 * returned as they are (templates and validators compiled with
 * `new Function` keep their speed).
 */
const { apply, construct } = Reflect;

const mentionsThis = /\bthis\b/;

/** Install the wrapper on a compartment's global object. */
export const installSloppyThis = (global: Record<string, unknown>): void => {
  const original = global.Function as (...args: string[]) => (...a: unknown[]) => unknown;
  if (typeof original !== 'function') return;
  const sloppy = (fn: (...a: unknown[]) => unknown, args: unknown[]) => {
    const body = args.length > 0 ? String(args[args.length - 1]) : '';
    if (!mentionsThis.test(body)) return fn;
    return new Proxy(fn, {
      apply: (target, receiver, callArgs) => apply(target, receiver ?? global, callArgs),
    });
  };
  const wrapped = new Proxy(original, {
    apply: (target, _receiver, args: string[]) => sloppy(apply(target, undefined, args) as (...a: unknown[]) => unknown, args),
    construct: (target, args: string[]) => sloppy(construct(target, args) as (...a: unknown[]) => unknown, args),
  });
  Object.defineProperty(global, 'Function', { value: wrapped, writable: true, enumerable: false, configurable: true });
};
