/**
 * `Function('return this')()` inside a service.
 *
 * In Node a function made by the Function constructor is sloppy-mode code:
 * called with no receiver, its `this` is the global object. The idiom
 * `Function('return this')()` (lodash, core-js, protobufjs, older bundles)
 * relies on it to find the global. SES evaluates everything in strict mode,
 * where that `this` is undefined. Each compartment's Function constructor
 * is wrapped so that functions it makes whose body mentions `this` get the
 * receiver sloppy mode gives them: the compartment's global for an
 * undefined or null receiver, and a primitive receiver boxed
 * (`Function('return typeof this').call(5)` is 'object'), as in Node.
 * Functions whose body does not mention `this`, and bodies that start with
 * a "use strict" directive (strict in Node too), are returned as they are
 * (templates and validators compiled with `new Function` keep their speed).
 * Functions nested in such a body still see strict-mode `this`.
 */
const { apply, construct } = Reflect;

const mentionsThis = /\bthis\b/;

/** Whitespace and comments, then one directive (a string literal) and what may end it. */
const directive = /^(?:\s|\/\/[^\n]*|\/\*[\s\S]*?\*\/)*('(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")[ \t]*(?:;|\n|\r|(?=\/[/*])|$)/;

/** Does the body begin with a directive prologue holding "use strict" (exactly, no escapes)? */
export const strictBody = (body: string): boolean => {
  let rest = body;
  for (let match = directive.exec(rest); match; match = directive.exec(rest)) {
    if (match[1].slice(1, -1) === 'use strict') return true;
    rest = rest.slice(match[0].length);
  }
  return false;
};

/** The `this` a sloppy-mode function gets for a receiver. */
const sloppyReceiver = (receiver: unknown, global: object): unknown => {
  if (receiver === undefined || receiver === null) return global;
  return typeof receiver === 'object' || typeof receiver === 'function' ? receiver : Object(receiver);
};

/** Install the wrapper on a compartment's global object. */
export const installSloppyThis = (global: Record<string, unknown>): void => {
  const original = global.Function as (...args: string[]) => (...a: unknown[]) => unknown;
  if (typeof original !== 'function') return;
  const sloppy = (fn: (...a: unknown[]) => unknown, args: unknown[]) => {
    const body = args.length > 0 ? String(args[args.length - 1]) : '';
    if (!mentionsThis.test(body) || strictBody(body)) return fn;
    return new Proxy(fn, {
      apply: (target, receiver, callArgs) => apply(target, sloppyReceiver(receiver, global), callArgs),
    });
  };
  const wrapped = new Proxy(original, {
    apply: (target, _receiver, args: string[]) => sloppy(apply(target, undefined, args) as (...a: unknown[]) => unknown, args),
    construct: (target, args: string[]) => sloppy(construct(target, args) as (...a: unknown[]) => unknown, args),
  });
  Object.defineProperty(global, 'Function', { value: wrapped, writable: true, enumerable: false, configurable: true });
};
