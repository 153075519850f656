/**
 * msgpack encoding of wire values and generic entries.
 *
 * Records are off (`useRecords: false`) so an entry's bytes never depend on
 * what was encoded before it, and no decoder is compiled with `new Function`.
 * `moreTypes` keeps typed arrays, Set and RegExp; the two wire classes are
 * extensions: 0x51 `Slot` ([side, id, iface]) and 0x52 `Tagged` ([tag,
 * payload]).
 */
import { Packr, addExtension } from 'msgpackr';
import { Slot, Tagged, isArrayIndex, objectEntries, type Side, type TagName } from './wire.js';
import type { Entry, Outcome } from './entries.js';
import { LIVE_ANSWERS_FROM } from './format.js';

export const packr = new Packr({ useRecords: false, moreTypes: true, int64AsType: 'number' });

/**
 * Thrown while decoding a value whose shape no writer produces. The reader
 * turns it (like any other decoding failure) into LOG_CORRUPT at the entry's
 * offset; it never escapes replay-log.
 */
export class ShapeError extends Error {}

const shape = (ok: boolean, why: string): void => {
  if (!ok) throw new ShapeError(why);
};

const { isArray } = Array;
const { isSafeInteger } = Number;
const { getPrototypeOf } = Object;
const objectPrototype = Object.prototype;

/** A plain record (what msgpack maps decode to), not a class instance. */
const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !isArray(v) && (getPrototypeOf(v) === objectPrototype || getPrototypeOf(v) === null);

/** An id: a non-negative safe integer. */
export const isId = (v: unknown): v is number => typeof v === 'number' && isSafeInteger(v) && v >= 0;

/** A logged call's answer number: an id below LIVE_ANSWERS_FROM (format.ts). */
const isAnswer = (v: unknown): v is number => isId(v) && v < LIVE_ANSWERS_FROM;

const readSlot = (data: unknown): Slot => {
  shape(isArray(data) && (data.length === 2 || data.length === 3), 'a slot is [side, id, iface?]');
  const [side, id, iface] = data as unknown[];
  shape(side === 0 || side === 1, 'a slot side is 0 or 1');
  shape(isId(id), 'a slot id is a non-negative integer');
  shape(iface === undefined || typeof iface === 'string', 'a slot label is a string');
  return new Slot((side === 0 ? 'guest' : 'host') as Side, id as number, (iface as string | undefined) ?? '');
};

/** Bytes per element of each view a `view` tag may name (a DataView's length is in bytes). */
const viewElementBytes: Record<string, number> = {
  Int8Array: 1,
  Uint8Array: 1,
  Uint8ClampedArray: 1,
  Int16Array: 2,
  Uint16Array: 2,
  Float16Array: 2,
  Int32Array: 4,
  Uint32Array: 4,
  Float32Array: 4,
  Float64Array: 8,
  BigInt64Array: 8,
  BigUint64Array: 8,
  DataView: 1,
};

const readTagged = (data: unknown): Tagged => {
  shape(isArray(data) && data.length === 2, 'a tagged value is [tag, payload]');
  const [tag, payload] = data as [unknown, unknown];
  switch (tag) {
    case 'bigint':
      shape(typeof payload === 'string' && /^-?[0-9]{1,100000}$/.test(payload), 'a bigint is a string of digits');
      break;
    case '-0':
      break;
    case 'symbol':
      shape(typeof payload === 'string', 'a registered symbol has a string key');
      break;
    case 'map':
      shape(isArray(payload) && payload.every(pair => isArray(pair) && pair.length === 2), 'a map is a list of [key, value] pairs');
      break;
    case 'error': {
      shape(isRecord(payload), 'an error is a record');
      const { name, message, stack, props, library, dom } = payload as Record<string, unknown>;
      shape(typeof name === 'string' && typeof message === 'string', 'an error has a string name and message');
      shape(stack === undefined || typeof stack === 'string', 'an error stack is a string');
      shape(props === undefined || objectEntries(props) !== undefined, 'error properties are a record or an object tag');
      shape(library === undefined || library === true, 'an error library mark is true');
      shape(dom === undefined || dom === true, 'an error DOMException mark is true');
      break;
    }
    case 'sealed':
      shape(payload instanceof Uint8Array, 'a sealed value is bytes');
      break;
    case 'utf16':
      shape(payload instanceof Uint16Array, 'a utf16 string is a Uint16Array of code units');
      break;
    case 'ref':
      shape(isId(payload), 'a ref names an object by its pre-order number');
      break;
    case 'argref':
      shape(isId(payload), 'an argref names an object of the arguments before by its pre-order number');
      break;
    case 'object':
      // Its keys: strings, or utf16 tags (decoded, and so checked, before this one).
      shape(objectEntries(new Tagged('object', payload)) !== undefined, 'an object is a list of [key, value] pairs, each key a string or a utf16 tag');
      break;
    case 'sparse': {
      shape(isArray(payload) && payload.length === 3, 'a sparse array is [length, indices, values]');
      const [length, indices, values] = payload as unknown[];
      shape(isId(length) && (length as number) <= 2 ** 32 - 1, 'a sparse array length is a valid array length');
      shape(isArray(indices) && isArray(values) && indices.length === values.length, 'a sparse array has one value per index');
      shape((indices as unknown[]).every(i => isId(i) && (i as number) < (length as number)), 'a sparse array index is inside its length');
      break;
    }
    case 'array': {
      shape(isArray(payload) && payload.length === 4, 'an array with named properties is [length, indices, values, named]');
      const [length, indices, values, named] = payload as unknown[];
      shape(isId(length) && (length as number) <= 2 ** 32 - 1, 'an array length is a valid array length');
      shape(isArray(indices) && isArray(values) && indices.length === values.length, 'an array has one value per index');
      shape((indices as unknown[]).every(i => isId(i) && (i as number) < (length as number)), 'an array index is inside its length');
      shape(objectEntries(named) !== undefined, "an array's named properties are a record or an object tag");
      shape(objectEntries(named)?.every(([name]) => name !== 'length' && !isArrayIndex(name)) === true, "an array's named properties are neither its length nor an index");
      break;
    }
    case 'boxed':
      shape(
        typeof payload === 'number' || typeof payload === 'string' || typeof payload === 'boolean' || (payload instanceof Tagged && (payload.tag === 'bigint' || payload.tag === '-0' || payload.tag === 'utf16')),
        'a boxed primitive holds a number, string, boolean or bigint',
      );
      break;
    case 'view': {
      shape(isArray(payload) && payload.length === 4, 'a view is [constructor name, buffer, offset, length]');
      const [name, buffer, offset, length] = payload as unknown[];
      const size = typeof name === 'string' && Object.hasOwn(viewElementBytes, name) ? viewElementBytes[name] : undefined;
      shape(size !== undefined, 'a view names a typed array or DataView');
      shape(isId(offset) && isId(length) && (offset as number) % (size as number) === 0, 'a view offset and length are aligned counts');
      if (buffer instanceof ArrayBuffer) shape((offset as number) + (length as number) * (size as number) <= buffer.byteLength, 'a view stays inside its buffer');
      break;
    }
    default:
      shape(false, `unknown tag ${String(tag)}`);
  }
  return new Tagged(tag as TagName, payload);
};

addExtension({
  Class: Slot,
  type: 0x51,
  write: (slot: Slot) => (slot.iface ? [slot.side === 'guest' ? 0 : 1, slot.id, slot.iface] : [slot.side === 'guest' ? 0 : 1, slot.id]),
  read: readSlot,
});

addExtension({
  Class: Tagged,
  type: 0x52,
  write: (tagged: Tagged) => [tagged.tag, tagged.payload],
  read: readTagged,
});

/** msgpackr's typed-array codes of its ext 0x74, in its order (unpack.js `typedArrays`). */
const typedArrayTypes = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array] as const;
const { slice: uint8Slice } = Uint8Array.prototype;
const { apply } = Reflect;
let viewing = false;

/**
 * msgpackr's own decoding of ext 0x74 (typed arrays, ArrayBuffer, DataView:
 * a type code, then the bytes), which always copies the bytes; inside
 * `unpackViewing`, a typed array whose bytes are aligned for its type views
 * them instead.
 */
addExtension({
  type: 0x74,
  unpack: (data: Uint8Array): unknown => {
    const code = data[0];
    const Type = typedArrayTypes[code];
    if (viewing && Type !== undefined) {
      const offset = data.byteOffset + 1;
      const bytes = data.byteLength - 1;
      const size = Type.BYTES_PER_ELEMENT;
      if (offset % size === 0 && bytes % size === 0) return new Type(data.buffer as ArrayBuffer, offset, bytes / size);
    }
    const buffer = (apply(uint8Slice, data, [1]) as Uint8Array).buffer as ArrayBuffer;
    if (Type !== undefined) return new Type(buffer);
    if (code === 16) return buffer;
    if (code === 17) return new DataView(buffer);
    throw new ShapeError(`unknown typed array code ${String(code)}`);
  },
} as unknown as Parameters<typeof addExtension>[0]);

/**
 * Decode `bytes` with its typed arrays viewing `bytes` (where their
 * alignment allows) instead of copying them: for the log reader, whose
 * buffer is never written once read. Every value replay hands a service is
 * copied by the membrane on its way in, so a 50 MB fetch body is copied
 * once on restore, not twice.
 */
export const unpackViewing = (bytes: Uint8Array): unknown => {
  viewing = true;
  try {
    return packr.unpack(bytes);
  } finally {
    viewing = false;
  }
};

const outcomeCode = { return: 0, throw: 1, async: 2 } as const;

const packOutcome = (o: Outcome): [number, unknown] =>
  o.type === 'async' ? [outcomeCode.async, o.promise] : [outcomeCode[o.type], o.value];

const unpackOutcome = (code: unknown, value: unknown): Outcome => {
  if (code === 2) {
    shape(isId(value) && (value as number) > 0, 'an async outcome names a promise id');
    return { type: 'async', promise: value as number };
  }
  shape(code === 0 || code === 1, 'an outcome is 0 (return), 1 (throw) or 2 (async)');
  return { type: code === 1 ? 'throw' : 'return', value };
};

const isMethod = (v: unknown): v is string | null => v === null || typeof v === 'string';

/** The msgpack tuple of a sys entry's body (its op is written apart). */
/** An outcome's code and payload, the last two items of its entry's tuple. */
/** What a kept sys entry (format.ts) may return: undefined, null, a boolean, a number or a string (a -0 crosses as a Tagged, not a number). */
export const isKeptValue = (value: unknown): boolean =>
  value === undefined || value === null || typeof value === 'boolean' || typeof value === 'number' || typeof value === 'string';

export const outcomeCodeOf = (o: Outcome): number => (o.type === 'async' ? 2 : o.type === 'throw' ? 1 : 0);
export const outcomePayload = (o: Outcome): unknown => (o.type === 'async' ? o.promise : o.value);

// Built without spread: under lockdown V8 spreads through the (frozen) array iterator, slowly.
export const sysTuple = (args: readonly unknown[], outcome: Outcome): unknown[] =>
  outcome.type === 'async' ? [args, outcomeCode.async, outcome.promise] : [args, outcomeCode[outcome.type], outcome.value];

/**
 * A sys entry from its decoded tuple; `undefined` when the tuple does not
 * have the shape the writer gives it (a list of arguments, a valid outcome).
 */
export const tupleToSys = (op: string, t: unknown): Entry | undefined => {
  if (!isArray(t) || t.length !== 3 || !isArray(t[0])) return undefined;
  try {
    return { kind: 'sys', op, args: t[0] as unknown[], outcome: unpackOutcome(t[1], t[2]) };
  } catch (error) {
    if (error instanceof ShapeError) return undefined;
    throw error;
  }
};

/** The msgpack tuple of a generic (non-fast) entry. */
export const entryToTuple = (entry: Entry): unknown[] => {
  switch (entry.kind) {
    case 'start':
      return ['start'];
    case 'call':
      return ['call', entry.target, entry.method, entry.args, entry.answer];
    case 'settle':
      return ['settle', entry.promise, entry.ok, entry.value];
    case 'timer':
      return ['timer', entry.timer];
    case 'send': {
      const outcome = packOutcome(entry.outcome);
      return ['send', entry.target, entry.method, entry.args, outcome[0], outcome[1]];
    }
    case 'ret':
      return ['ret', entry.answer, entry.ok, entry.value];
    default:
      throw new TypeError(`entry kind ${entry.kind} has an encoding of its own (format.ts)`);
  }
};

/**
 * A generic entry from its decoded tuple; `undefined` when the tuple is not
 * one the writer produces: every field is checked (ids are non-negative
 * integers, `ok` a boolean, `args` a list, `target` of a send a host slot),
 * so the membrane never meets a value of the wrong type.
 */
export const tupleToEntry = (t: unknown[]): Entry | undefined => {
  try {
    return decodeTuple(t);
  } catch (error) {
    if (error instanceof ShapeError) return undefined;
    throw error;
  }
};

const decodeTuple = (t: unknown[]): Entry | undefined => {
  const [kind, a, b, c, d, e] = t;
  switch (kind) {
    case 'start':
      return t.length === 1 ? { kind: 'start' } : undefined;
    case 'call':
      return t.length === 5 && isId(a) && isMethod(b) && isArray(c) && isAnswer(d) ? { kind: 'call', target: a, method: b, args: c, answer: d } : undefined;
    case 'settle':
      return t.length === 4 && isId(a) && a > 0 && typeof b === 'boolean' ? { kind: 'settle', promise: a, ok: b, value: c } : undefined;
    case 'timer':
      return t.length === 2 && isId(a) ? { kind: 'timer', timer: a } : undefined;
    case 'send':
      return t.length === 6 && a instanceof Slot && a.side === 'host' && isMethod(b) && isArray(c)
        ? { kind: 'send', target: a, method: b, args: c, outcome: unpackOutcome(d, e) }
        : undefined;
    case 'ret':
      return t.length === 4 && isAnswer(a) && typeof b === 'boolean' ? { kind: 'ret', answer: a, ok: b, value: c } : undefined;
    default:
      return undefined;
  }
};
