/**
 * Errors shaped as Node's internal ones (lib/internal/errors.js), for the
 * parts of Node's API this library implements itself (timers, util,
 * zlib, events, diagnostics_channel, http).
 *
 * A Node error has its `code` as an own enumerable property, prints as
 * `TypeError [ERR_INVALID_ARG_TYPE]: message` (its `toString()`, and the
 * first line of its stack: Node's stack formatter writes that header for
 * any error that inherits its `kIsNodeError` symbol), and its messages end
 * with what was received, written by Node's `determineSpecificType`.
 */
import path from 'node:path';
import { inspect } from 'node:util';
import { hasServiceStack } from '../membrane/marks.js';
import { captureBeyondLibrary } from './guest-errors.js';

let mark: symbol | null | undefined;

/**
 * Node's `kIsNodeError` symbol, found on the prototype chain of an error
 * Node raises (`path.join(1)`); null if this Node has none.
 */
export const nodeErrorMark = (): symbol | null => {
  if (mark !== undefined) return mark;
  mark = null;
  try {
    path.join(1 as unknown as string);
  } catch (error) {
    for (let proto = Object.getPrototypeOf(error) as object | null; proto !== null && mark === null; proto = Object.getPrototypeOf(proto) as object | null) {
      mark = Object.getOwnPropertySymbols(proto).find(symbol => symbol.description === 'kIsNodeError') ?? null;
    }
  }
  return mark;
};

/**
 * The first line Node writes in the stack of `error`: `Name [CODE]: message`
 * for one of Node's errors (or one made by `nodeError`), otherwise
 * Error.prototype.toString's text.
 */
export const nodeStackHeader = (error: unknown, errorToString: () => string): string => {
  const symbol = nodeErrorMark();
  if (symbol !== null && typeof error === 'object' && error !== null && symbol in error) {
    const { name, code, message } = error as { name?: unknown; code?: unknown; message?: unknown };
    return `${String(name)} [${String(code)}]: ${String(message)}`;
  }
  return errorToString();
};

const prototypes = new Map<object, object>();

/** Between `Base.prototype` and an error: Node's mark and `toString`, as the prototypes of Node's error classes carry them. */
const nodeStylePrototype = (Base: new (message: string) => Error): object => {
  let proto = prototypes.get(Base.prototype);
  if (!proto) {
    const symbol = nodeErrorMark();
    const methods = {
      toString(this: { name?: unknown; code?: unknown; message?: unknown }): string {
        return `${String(this.name)} [${String(this.code)}]: ${String(this.message)}`;
      },
    };
    proto = Object.create(Base.prototype, {
      ...(symbol === null ? {} : { [symbol]: { value: true } }),
      toString: { value: methods.toString, writable: true, enumerable: false, configurable: true },
    }) as object;
    harden(proto);
    prototypes.set(Base.prototype, proto);
  }
  return proto;
};

/**
 * An error as Node raises one of its own: an instance of `Base` (TypeError,
 * RangeError, Error) with `code`, printed `Name [CODE]: message`.
 */
export const nodeError = <E extends Error>(Base: new (message: string) => E, code: string, message: string): E => {
  const error = new Base(message);
  Object.setPrototypeOf(error, nodeStylePrototype(Base));
  Object.defineProperty(error, 'code', { value: code, writable: true, enumerable: true, configurable: true });
  return error;
};

/** What Node's messages say was received (lib/internal/errors.js, determineSpecificType). */
export const describeReceived = (value: unknown): string => {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  switch (typeof value) {
    case 'bigint':
      return `type bigint (${value}n)`;
    case 'number':
      return `type number (${Object.is(value, -0) ? '-0' : String(value)})`;
    case 'boolean':
      return `type boolean (${value})`;
    case 'symbol':
      return `type symbol (${String(value)})`;
    case 'function':
      return `function ${value.name}`;
    case 'object': {
      const ctor = (value as { constructor?: { name?: unknown } }).constructor;
      if (ctor && 'name' in ctor) return `an instance of ${String(ctor.name)}`;
      return inspect(value, { depth: -1 });
    }
    case 'string': {
      const text = value.length > 28 ? `${value.slice(0, 25)}...` : value;
      return text.includes("'") ? `type string (${JSON.stringify(text)})` : `type string ('${text}')`;
    }
    default:
      return `type ${typeof value}`;
  }
};

/**
 * Node's ERR_INVALID_ARG_TYPE: `name` is an argument's name (`"callback"
 * argument`), a property's when it has a dot (`"options.signal" property`),
 * or taken as written when it ends in ' argument' (`last argument`);
 * `expected` is the rest of the sentence (`of type function`).
 */
export const invalidArgType = (name: string, expected: string, actual: unknown): TypeError => {
  const subject = name.endsWith(' argument') ? name : `"${name}" ${name.includes('.') ? 'property' : 'argument'}`;
  return nodeError(TypeError, 'ERR_INVALID_ARG_TYPE', `The ${subject} must be ${expected}. Received ${describeReceived(actual)}`);
};

/**
 * `error` with a stack of its first line only: for an error made for a
 * service later than anything it called (in a timer of its, a listener),
 * whose stack has no frame of the service to show and would name this
 * library's files where it is installed, a host path that differs on every
 * host (in Node, such a stack holds only Node's own frames).
 */
export const laterError = <E extends Error>(error: E): E => {
  Object.defineProperty(error, 'stack', { value: `${error.name}: ${error.message}`, writable: true, enumerable: false, configurable: true });
  return error;
};

/**
 * `error`, made for a service in a listener (an abort): its stack as it is
 * when it shows a frame of the service's (the service's own call led here,
 * `controller.abort()`), as Node's shows that call; otherwise its first line
 * only (laterError), never this library's frames. The stack is captured
 * again from the listener down, this library's frames not counted against
 * the frame limit (captureBeyondLibrary), as Node's own listener's are none.
 */
export const listenerError = <E extends Error>(error: E): E => {
  captureBeyondLibrary(error, listenerError);
  void error.stack; // formatted now, which marks a stack with service frames
  return hasServiceStack(error) ? error : laterError(error);
};

/**
 * Node's AbortError (lib/internal/errors.js), as `new AbortError(undefined,
 * { cause: signal.reason })` makes it for an aborted operation: an Error
 * named 'AbortError', message 'The operation was aborted', `code`
 * 'ABORT_ERR' and `name` own and enumerable (assigned, as Node's
 * constructor does), `cause` the reason (own, not enumerable).
 */
export const abortError = (reason: unknown): Error & { code: string } => new (abortErrorClass())('The operation was aborted', { cause: reason });

type AbortErrorClass = new (message?: string, options?: ErrorOptions) => Error & { code: string };
let AbortError: AbortErrorClass | undefined;

/**
 * Node's AbortError class, made once and hardened (services share it, as
 * `error.constructor`): it extends the Error every compartment shares, never
 * the host's own, whose statics set how the host's stacks are made.
 */
const abortErrorClass = (): AbortErrorClass => {
  if (!AbortError) {
    const SharedError = Object.getPrototypeOf(TypeError) as ErrorConstructor;
    AbortError = class AbortError extends SharedError {
      constructor(message = 'The operation was aborted', options?: ErrorOptions) {
        super(message, options);
        (this as unknown as { code: string }).code = 'ABORT_ERR';
        this.name = 'AbortError';
      }
    } as unknown as AbortErrorClass;
    harden(AbortError);
  }
  return AbortError;
};

/** Node's validateAbortSignal: undefined, or an AbortSignal (ERR_INVALID_ARG_TYPE otherwise). */
export const validateAbortSignal = (value: unknown, name: string): void => {
  if (value !== undefined && (value === null || typeof value !== 'object' || !('aborted' in value))) throw invalidArgType(name, 'an instance of AbortSignal', value);
};

/** Node's validateFunction: throws ERR_INVALID_ARG_TYPE unless `value` is a function. */
export const validateFunction: (value: unknown, name: string) => asserts value is (...args: unknown[]) => unknown = (value, name) => {
  if (typeof value !== 'function') throw invalidArgType(name, 'of type function', value);
};

/** Digits grouped by threes with underscores, as Node's messages print a large integer (lib/internal/errors.js addNumericalSeparator). */
const withSeparators = (digits: string): string => {
  let out = '';
  let i = digits.length;
  const start = digits[0] === '-' ? 1 : 0;
  for (; i >= start + 4; i -= 3) out = `_${digits.slice(i - 3, i)}${out}`;
  return `${digits.slice(0, i)}${out}`;
};

/**
 * Node's ERR_OUT_OF_RANGE: `The value of "name" is out of range. It must be
 * <range>. Received <value>`, the value printed as Node prints it (an
 * integer beyond 2^32 with underscores, a bigint with `n`).
 */
export const outOfRange = (name: string, range: string, received: unknown): RangeError => {
  let text: string;
  if (typeof received === 'number' && Number.isInteger(received) && Math.abs(received) > 2 ** 32) text = withSeparators(String(received));
  else if (typeof received === 'bigint') text = `${received > 2n ** 32n || received < -(2n ** 32n) ? withSeparators(String(received)) : String(received)}n`;
  else text = inspect(received);
  return nodeError(RangeError, 'ERR_OUT_OF_RANGE', `The value of "${name}" is out of range. It must be ${range}. Received ${text}`);
};

/** Node's ERR_INVALID_ARG_VALUE: `The argument 'name' <reason>. Received <value>` (the value inspected, cut at 128 characters). */
export const invalidArgValue = (name: string, value: unknown, reason: string): TypeError => {
  let shown = inspect(value);
  if (shown.length > 128) shown = `${shown.slice(0, 128)}...`;
  return nodeError(TypeError, 'ERR_INVALID_ARG_VALUE', `The ${name.includes('.') ? 'property' : 'argument'} '${name}' ${reason}. Received ${shown}`);
};

/** Node's validateInteger(value, name, min = MIN_SAFE_INTEGER): ERR_INVALID_ARG_TYPE for a value that is not a number, ERR_OUT_OF_RANGE for one that is not an integer from `min` to MAX_SAFE_INTEGER. */
export const validateInteger = (value: unknown, name: string, min: number = Number.MIN_SAFE_INTEGER): number => {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value);
  if (value < min || value > Number.MAX_SAFE_INTEGER) throw outOfRange(name, `>= ${min} && <= ${Number.MAX_SAFE_INTEGER}`, value);
  return value;
};

/** Node's validateInt32(value, name, min = -2^31): ERR_INVALID_ARG_TYPE for a value that is not a number, ERR_OUT_OF_RANGE for one that is not an integer from `min` to 2^31-1. */
export const validateInt32 = (value: unknown, name: string, min: number = -(2 ** 31)): void => {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value);
  if (value < min || value > 2 ** 31 - 1) throw outOfRange(name, `>= ${min} && <= ${2 ** 31 - 1}`, value);
};

/** Node's validateUint32(value, name): ERR_INVALID_ARG_TYPE for a value that is not a number, ERR_OUT_OF_RANGE for one that is not an integer from 0 to 2^32-1. */
export const validateUint32 = (value: unknown, name: string): void => {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value);
  if (value < 0 || value > 4_294_967_295) throw outOfRange(name, '>= 0 && <= 4294967295', value);
};

/** Node's validateNumber(value, name, min, max): ERR_INVALID_ARG_TYPE for a value that is not a number, ERR_OUT_OF_RANGE outside [min, max] (NaN included). */
export const validateNumber = (value: unknown, name: string, min?: number, max?: number): void => {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  const bounded = min !== undefined || max !== undefined;
  if ((min !== undefined && value < min) || (max !== undefined && value > max) || (bounded && Number.isNaN(value))) {
    throw outOfRange(name, `${min !== undefined ? `>= ${min}` : ''}${min !== undefined && max !== undefined ? ' && ' : ''}${max !== undefined ? `<= ${max}` : ''}`, value);
  }
};
