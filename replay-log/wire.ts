/**
 * Wire values: what crosses the membrane and what the log stores.
 *
 * A wire value is plain data (undefined, null, booleans, numbers, strings,
 * arrays, plain objects, Uint8Array/Buffer and other typed arrays,
 * ArrayBuffer, Date, Set, RegExp) plus two marker classes:
 *
 * - `Slot` designates an object with behaviour by reference. `side` says on
 *   which side of the membrane the object lives: `'guest'` (exported by the
 *   service; `id` indexes its export table) or `'host'` (imported into the
 *   service; `id` indexes its import table). `iface` is a short human label
 *   ("function logger", "FileHandle") kept for error messages.
 * - `Tagged` carries the values msgpack cannot round-trip by itself:
 *
 *   | tag      | payload                                   | for                            |
 *   | -------- | ----------------------------------------- | ------------------------------ |
 *   | bigint   | decimal string                            | bigint                         |
 *   | -0       | 0                                         | negative zero                  |
 *   | symbol   | registry key                              | `Symbol.for(key)`              |
 *   | utf16    | Uint16Array of the code units             | a string with lone surrogates  |
 *   | map      | [[key, value], ...]                       | Map                            |
 *   | error    | ErrorRecord                               | Error and its subclasses       |
 *   | sparse   | [length, [index, ...], [value, ...]]      | an array with holes            |
 *   | array    | [length, [index, ...], [value, ...],      | an array with own named        |
 *   |          |  named: a record or an object tag]        | properties (a RegExp match's   |
 *   |          |                                           | index, input, groups)          |
 *   | boxed    | the primitive                             | Object(5), Object('s'), ...    |
 *   | object   | [[key, value], ...]; a key with lone      | a plain object with an own     |
 *   |          | surrogates as a utf16 tag                 | `__proto__` key, or a key with |
 *   |          |                                           | lone surrogates (msgpack keys  |
 *   |          |                                           | are UTF-8, which loses them)   |
 *   | view     | [constructor name, buffer, offset, length]| a typed array or DataView that |
 *   |          |                                           | does not span its whole buffer |
 *   | ref      | n                                         | the n-th object (pre-order) of |
 *   |          |                                           | the same value, again          |
 *   | sealed   | bytes (replay-log/seal.ts)                | a secret: its own wire value,  |
 *   |          |                                           | msgpack-encoded and encrypted  |
 *
 * Copies follow the structured clone algorithm (HTML, "StructuredSerialize";
 * Node's `structuredClone` is the reference): a value that holds the same
 * object twice, or itself, crosses with that sharing and those cycles
 * intact. The wire stays a tree: the second and later occurrences of an
 * object are `ref` tags naming its position, counted in pre-order over the
 * objects of one top-level value (Slots and primitives do not count).
 *
 * The codec (codec.ts) encodes both as msgpack extensions; a network
 * transport can use the same model with another codec.
 */

import { types } from 'node:util';

export type Side = 'guest' | 'host';

export class Slot {
  constructor(
    readonly side: Side,
    readonly id: number,
    readonly iface: string = '',
  ) {}
}

export type TagName = 'bigint' | '-0' | 'map' | 'error' | 'symbol' | 'utf16' | 'sparse' | 'array' | 'boxed' | 'object' | 'view' | 'ref' | 'argref' | 'sealed';

export class Tagged {
  constructor(
    readonly tag: TagName,
    readonly payload: unknown,
  ) {}
}

/** The data a copied Error keeps. */
export interface ErrorRecord {
  name: string;
  message: string;
  stack?: string;
  /** Own enumerable data properties such as `code`, `errno`, `path`: a plain object's wire form (objectWire). */
  props?: Record<string, unknown> | Tagged;
  /** The error's own `cause` (`new Error(m, { cause })`, a failed fetch's network error), copied as structuredClone copies it; absent when it has none. */
  cause?: unknown;
  /**
   * Set when the error is one this library raised (a SnapshotError created
   * on the host, or handed to the service and thrown back out unchanged):
   * only then is it revived as a SnapshotError. A service cannot forge it.
   */
  library?: true;
  /** Set when the error is a DOMException (crypto.subtle's OperationError...): revived as one, its name giving its code. */
  dom?: true;
}

/** The code units of a string: the payload of a `utf16` tag (UTF-8 would lose lone surrogates). */
export const codeUnits = (text: string): Uint16Array => {
  const out = new Uint16Array(text.length);
  for (let i = 0; i < text.length; i += 1) out[i] = text.charCodeAt(i);
  return out;
};

/** The string of a `utf16` tag's payload. */
export const fromCodeUnits = (units: Uint16Array): string => {
  let text = '';
  for (let i = 0; i < units.length; i += 8192) text += String.fromCharCode(...units.subarray(i, i + 8192));
  return text;
};

/** The constructors a `view` tag may name, by name. */
export const viewConstructors: Readonly<Record<string, new (buffer: ArrayBuffer, offset: number, length: number) => ArrayBufferView>> = Object.freeze({
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  DataView,
});

const { is } = Object;
const { isView } = ArrayBuffer;
const { apply } = Reflect;

const stringIsWellFormed = (String.prototype as { isWellFormed?: () => boolean }).isWellFormed;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** Whether a string has no lone surrogate (String.prototype.isWellFormed, captured, where Node has it). */
export const isWellFormed = (text: string): boolean => (stringIsWellFormed ? (apply(stringIsWellFormed, text, []) as boolean) : !LONE_SURROGATE.test(text));

/** Whether `key` comes back as itself as the key of a wire record (objectWire). */
export const isRecordKey = (key: string): boolean => key !== '__proto__' && isWellFormed(key);

/**
 * The wire form of a plain object from its own enumerable properties as
 * [key, wire value] entries, in order: a record of them, or an `object` tag
 * when a key would not come back as itself from a record (an own
 * `__proto__`, which assigning would make the prototype; a key with lone
 * surrogates, which msgpack's UTF-8 keys turn into U+FFFD), that key then as
 * a `utf16` tag. Shared by the membrane's copies and the NATS codec.
 */
export const objectWire = (entries: ReadonlyArray<readonly [string, unknown]>): Record<string, unknown> | Tagged => {
  if (!entries.every(([key]) => isRecordKey(key))) return new Tagged('object', entries.map(([key, value]) => [isWellFormed(key) ? key : new Tagged('utf16', codeUnits(key)), value]));
  const out: Record<string, unknown> = {};
  for (const [key, value] of entries) out[key] = value;
  return out;
};

/**
 * The [key, wire value] entries of a plain object's wire form (objectWire's
 * record or `object` tag), keys as strings again; undefined when `wire` is
 * neither or a key is not a string or a `utf16` tag (the caller says what
 * was malformed).
 */
export const objectEntries = (wire: unknown): Array<[string, unknown]> | undefined => {
  if (wire instanceof Tagged) {
    if (wire.tag !== 'object' || !Array.isArray(wire.payload)) return undefined;
    const out: Array<[string, unknown]> = [];
    for (const pair of wire.payload as unknown[]) {
      if (!Array.isArray(pair) || pair.length !== 2) return undefined;
      const [key, value] = pair as [unknown, unknown];
      if (typeof key === 'string') out.push([key, value]);
      else if (key instanceof Tagged && key.tag === 'utf16' && key.payload instanceof Uint16Array) out.push([fromCodeUnits(key.payload), value]);
      else return undefined;
    }
    return out;
  }
  // A record is a plain object (what msgpack decodes a map to), not a typed array, Date, Set or Slot.
  if (typeof wire !== 'object' || wire === null || Array.isArray(wire)) return undefined;
  const proto = Object.getPrototypeOf(wire) as unknown;
  if (proto !== Object.prototype && proto !== null) return undefined;
  return Object.keys(wire).map(key => [key, (wire as Record<string, unknown>)[key]]);
};

/** Whether `key` is an array index (a canonical integer string below 2^32 - 1), as ECMA-262 counts them. */
export const isArrayIndex = (key: string): boolean => {
  const n = Number(key);
  return n >>> 0 === n && n !== 4294967295 && String(n) === key;
};

/**
 * A brand check: whether `check` (a getter or method of V8's or Node's own that tests an internal
 * slot) accepts `value` as `this`. No code of the value's runs; a look-alike with the right
 * prototype does not pass.
 */
export const branded = (check: ((this: unknown, ...args: never[]) => unknown) | undefined, value: object, args: readonly unknown[] = []): boolean => {
  if (check === undefined) return false;
  try {
    apply(check, value, args);
    return true;
  } catch {
    return false;
  }
};

const domExceptionCode = typeof DOMException === 'function' ? (Object.getOwnPropertyDescriptor(DOMException.prototype, 'code')?.get as (this: unknown) => unknown) : undefined;

/**
 * Whether `value` is a DOMException (an error record's `dom` mark): its class's own `code` getter
 * accepts it. Asked only of what inherits from DOMException.prototype: the getter throws for every
 * other error, and every error crossing the membrane is asked.
 */
export const isDOMException = (value: object): boolean => typeof DOMException === 'function' && value instanceof DOMException && branded(domExceptionCode, value);

const { isNumberObject, isStringObject, isBooleanObject, isBigIntObject } = types;
const numberValueOf = Number.prototype.valueOf;
const stringValueOf = String.prototype.valueOf;
const booleanValueOf = Boolean.prototype.valueOf;
const bigintValueOf = BigInt.prototype.valueOf;
const symbolValueOf = Symbol.prototype.valueOf;

/** The primitive a boxed primitive (util.types.isBoxedPrimitive) holds, read through the intrinsics, not the object's own valueOf. */
export const boxedValue = (object: object): unknown =>
  apply(
    isNumberObject(object) ? numberValueOf : isStringObject(object) ? stringValueOf : isBooleanObject(object) ? booleanValueOf : isBigIntObject(object) ? bigintValueOf : symbolValueOf,
    object,
    [],
  );

/** What primitiveWire returns for an object or a function: not a primitive. */
export const NOT_PRIMITIVE: unique symbol = Symbol('not a primitive');
/** What primitiveWire returns for a symbol not in the registry: it cannot cross (the caller says why, in its context). */
export const UNIQUE_SYMBOL: unique symbol = Symbol('a unique symbol');

/**
 * The wire form of a primitive, as structured clone keeps it: strings with
 * lone surrogates as `utf16` code units, -0, bigints and registered symbols
 * tagged; null and undefined as they are. Objects and functions give
 * NOT_PRIMITIVE, a unique symbol UNIQUE_SYMBOL. Shared by the membrane's
 * copies and the NATS codec.
 */
export const primitiveWire = (value: unknown): unknown => {
  switch (typeof value) {
    case 'string':
      return isWellFormed(value) ? value : new Tagged('utf16', codeUnits(value));
    case 'boolean':
    case 'undefined':
      return value;
    case 'number':
      return value === 0 && is(value, -0) ? new Tagged('-0', 0) : value;
    case 'bigint':
      return new Tagged('bigint', value.toString());
    case 'symbol': {
      const key = Symbol.keyFor(value);
      return key === undefined ? UNIQUE_SYMBOL : new Tagged('symbol', key);
    }
    default:
      return value === null ? null : NOT_PRIMITIVE;
  }
};

/**
 * Structural equality of two wire values: what replay uses to check that a
 * syscall equals the recorded one. NaN equals NaN; slots are equal when they
 * designate the same object (side and id; the label is ignored).
 */
export const wireEqual = (a: unknown, b: unknown): boolean => {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) {
    return typeof a === 'number' && typeof b === 'number' && is(a, b);
  }
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i += 1) if (!wireEqual(a[i], b[i])) return false;
    return true;
  }
  if (a instanceof Slot) return b instanceof Slot && a.side === b.side && a.id === b.id;
  if (a instanceof Tagged) {
    return b instanceof Tagged && a.tag === b.tag && wireEqual(a.payload, b.payload);
  }
  if (isView(a) || a instanceof ArrayBuffer) {
    if (!(isView(b) || b instanceof ArrayBuffer)) return false;
    const x = toBytes(a);
    const y = toBytes(b);
    if (x.byteLength !== y.byteLength) return false;
    for (let i = 0; i < x.byteLength; i += 1) if (x[i] !== y[i]) return false;
    return true;
  }
  if (a instanceof Date) return b instanceof Date && is(a.getTime(), b.getTime());
  if (a instanceof RegExp) return b instanceof RegExp && String(a) === String(b);
  if (a instanceof Set) return b instanceof Set && wireEqual([...a], [...b]);
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
    if (!wireEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
};

/**
 * Where two wire values first differ, as wireEqual compares them: the path
 * to it (`.value.payload.stack`, `[2]`; empty for the values themselves)
 * and each side there, rendered; undefined when they are equal. For a
 * divergence whose two renderings read the same (an error's stack, a long
 * string's end, what describeWire leaves out).
 */
export const wireDifference = (a: unknown, b: unknown, at = ''): { path: string; expected: string; actual: string } | undefined => {
  if (wireEqual(a, b)) return undefined;
  const here = () => ({ path: at, expected: render(a, 1, 300), actual: render(b, 1, 300) });
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || a instanceof Slot || isView(a) || a instanceof ArrayBuffer || a instanceof Date || a instanceof RegExp) return here();
  if (Array.isArray(a) || a instanceof Set) {
    const x = a instanceof Set ? [...a] : a;
    const y = b instanceof Set ? [...b] : b;
    if (!Array.isArray(y) || x.length !== y.length || Array.isArray(a) !== Array.isArray(b)) return here();
    for (let i = 0; i < x.length; i += 1) {
      const inner = wireDifference(x[i], y[i], `${at}[${i}]`);
      if (inner) return inner;
    }
    return here();
  }
  if (a instanceof Tagged) return b instanceof Tagged && a.tag === b.tag ? wireDifference(a.payload, b.payload, `${at}.payload`) : here();
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length || ka.some(k => !Object.prototype.hasOwnProperty.call(b, k))) return here();
  for (const k of ka) {
    const inner = wireDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${at}.${k}`);
    if (inner) return inner;
  }
  return here();
};

const toBytes = (v: ArrayBufferView | ArrayBuffer): Uint8Array =>
  v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);

/** A short, readable rendering of a wire value for messages and `inspect`. */
export const describeWire = (value: unknown, budget = 120, wide = false): string => {
  const text = render(value, wide ? 8 : 3, wide ? 100_000 : 80);
  return text.length > budget ? `${text.slice(0, budget - 1)}…` : text;
};

const render = (v: unknown, depth: number, cap: number): string => {
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return JSON.stringify(v.length > cap ? `${v.slice(0, cap - 1)}…` : v);
  if (typeof v !== 'object' || v === null) return String(v);
  if (v instanceof Slot) return `<${v.side === 'guest' ? 'service' : 'host'} ref #${v.id}${v.iface ? ` ${v.iface}` : ''}>`;
  if (v instanceof Tagged) {
    if (v.tag === 'bigint') return `${String(v.payload)}n`;
    if (v.tag === '-0') return '-0';
    if (v.tag === 'error') {
      const e = v.payload as ErrorRecord;
      return `${e.name}(${JSON.stringify(e.message)})`;
    }
    if (v.tag === 'utf16' && v.payload instanceof Uint16Array) return JSON.stringify(String.fromCharCode(...v.payload.subarray(0, cap)));
    if (v.tag === 'ref') return `<same as object #${String(v.payload)}>`;
    if (v.tag === 'argref') return `<same as object #${String(v.payload)} of the arguments before>`;
    return `${v.tag}(${depth > 0 ? render(v.payload, depth - 1, cap) : '…'})`;
  }
  if (isView(v)) return `${v.constructor.name}(${v.byteLength} bytes)`;
  if (v instanceof ArrayBuffer) return `ArrayBuffer(${v.byteLength} bytes)`;
  if (v instanceof Date) return `Date(${Number.isNaN(v.getTime()) ? 'invalid' : v.toISOString()})`;
  if (depth <= 0) return Array.isArray(v) ? '[…]' : '{…}';
  if (Array.isArray(v)) return `[${v.map(x => render(x, depth - 1, cap)).join(', ')}]`;
  if (v instanceof Set) return `Set(${render([...v], depth - 1, cap)})`;
  if (v instanceof RegExp) return String(v);
  return `{${Object.entries(v)
    .map(([k, x]) => `${k}: ${render(x, depth - 1, cap)}`)
    .join(', ')}}`;
};
