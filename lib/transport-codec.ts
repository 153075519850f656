/**
 * How host values travel between hosts: the membrane's copy rules, with
 * references that stay references.
 *
 * A call's arguments and result are host values (the caller's membrane has
 * already copied the data out of its service). They are walked the same way
 * the membrane walks a value: primitives, arrays, plain records, typed
 * arrays, ArrayBuffer, Date, Set, Map, RegExp, bigint, -0, registered
 * symbols and errors cross by copy; functions, objects with methods and
 * class instances cross by reference. The walk produces replay-log wire
 * values (`Tagged` for what msgpack cannot keep) and one more class,
 * `RemoteRef`, encoded by msgpackr as extension 0x53:
 *
 * | RemoteRef field | meaning                                                  |
 * | --------------- | -------------------------------------------------------- |
 * | host            | the host that holds the object ('' for a service export) |
 * | id              | the object's id in that host's reference table           |
 * | service, export | set for a service export: any replica can answer it      |
 * | iface           | a label for messages ("function next")                   |
 *
 * Errors keep name, message, `code` and other data properties; our typed
 * `SnapshotError`s come back as `SnapshotError` with the same code.
 */
import { addExtension } from 'msgpackr';
import { SnapshotError, Tagged, packr, type ErrorRecord, type SnapshotErrorCode } from '../replay-log/index.js';

const { getPrototypeOf, keys, defineProperty, is } = Object;
const { isArray } = Array;
const { isView } = ArrayBuffer;
const objectPrototype = Object.prototype;
const MAX_DEPTH = 100;

/** An object living on another host (or a service export any replica holds). */
export class RemoteRef {
  constructor(
    readonly host: string,
    readonly id: number,
    readonly iface: string,
    readonly service = '',
    readonly exportId = -1,
  ) {}
}

addExtension({
  Class: RemoteRef,
  type: 0x53,
  write: (ref: RemoteRef) => [ref.host, ref.id, ref.iface, ref.service, ref.exportId],
  read: (data: unknown) => {
    if (!isArray(data) || typeof data[0] !== 'string' || typeof data[1] !== 'number' || typeof data[2] !== 'string' || typeof data[3] !== 'string' || typeof data[4] !== 'number') {
      throw new SnapshotError('TRANSPORT_FAILED', 'a message carried a malformed reference');
    }
    return new RemoteRef(data[0], data[1], data[2], data[3], data[4]);
  },
});

/** How the codec turns objects with behaviour into references and back. */
export interface RefTable {
  /** The reference that stands for `object` when it leaves this host. */
  toRef(object: object): RemoteRef;
  /** Is `object` already a reference (a stub, or a service's proxy)? */
  isRef(object: object): boolean;
  /** The host object that stands for `ref` here. */
  fromRef(ref: RemoteRef): object;
}

/** Encode host values for the wire: msgpack bytes. Throws NOT_PASSABLE. */
export const encodeValues = (values: unknown, refs: RefTable): Uint8Array => packr.pack(toWire(values, refs, 0));

/** Decode bytes from `encodeValues` into fresh host values. Throws TRANSPORT_FAILED on malformed input. */
export const decodeValues = (bytes: Uint8Array, refs: RefTable): unknown => {
  let wire: unknown;
  try {
    wire = packr.unpack(bytes);
  } catch (cause) {
    throw new SnapshotError('TRANSPORT_FAILED', 'a message from another host could not be decoded', { cause });
  }
  return fromWire(wire, refs, 0);
};

const notPassable = (why: string): SnapshotError => new SnapshotError('NOT_PASSABLE', `a value cannot cross to another host: ${why}`);

const toWire = (value: unknown, refs: RefTable, depth: number): unknown => {
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'undefined':
      return value;
    case 'number':
      return value === 0 && is(value, -0) ? new Tagged('-0', 0) : value;
    case 'bigint':
      return new Tagged('bigint', value.toString());
    case 'symbol': {
      const key = Symbol.keyFor(value);
      if (key !== undefined) return new Tagged('symbol', key);
      throw notPassable(`a unique symbol (${String(value)}); use a string or Symbol.for()`);
    }
    case 'function':
      return refs.toRef(value);
    default:
      break;
  }
  if (value === null) return null;
  const object = value as object;
  if (depth > MAX_DEPTH) throw notPassable(`a value nested more than ${MAX_DEPTH} deep (a cycle?)`);
  if (refs.isRef(object)) return refs.toRef(object);
  if (isArray(object)) return object.map(v => toWire(v, refs, depth + 1));
  const proto = getPrototypeOf(object);
  if (proto === objectPrototype || proto === null) {
    const names = keys(object);
    for (const name of names) {
      const v = (object as Record<string, unknown>)[name];
      if (typeof v === 'function' && !refs.isRef(v)) return refs.toRef(object);
    }
    const out: Record<string, unknown> = {};
    for (const name of names) {
      const wire = toWire((object as Record<string, unknown>)[name], refs, depth + 1);
      if (name === '__proto__') defineProperty(out, name, { value: wire, enumerable: true, writable: true, configurable: true });
      else out[name] = wire;
    }
    return out;
  }
  if (isView(object) || object instanceof ArrayBuffer || object instanceof Date || object instanceof RegExp) return object;
  if (object instanceof Set) return new Set([...object].map(v => toWire(v, refs, depth + 1)));
  if (object instanceof Map) return new Tagged('map', [...object].map(([k, v]) => [toWire(k, refs, depth + 1), toWire(v, refs, depth + 1)]));
  if (object instanceof Error) {
    const record: ErrorRecord = { name: String(object.name), message: String(object.message) };
    const props: Record<string, unknown> = {};
    for (const name of keys(object)) {
      const v = (object as unknown as Record<string, unknown>)[name];
      if (name !== 'stack' && name !== 'message' && typeof v !== 'function') props[name] = toWire(v, refs, depth + 1);
    }
    if (keys(props).length) record.props = props;
    return new Tagged('error', record);
  }
  if (typeof (object as { then?: unknown }).then === 'function') throw notPassable('a promise inside a value; await it first');
  return refs.toRef(object);
};

const errorConstructors: Record<string, ErrorConstructor> = { Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError };

const fromWire = (wire: unknown, refs: RefTable, depth: number): unknown => {
  if (typeof wire !== 'object' || wire === null) return wire;
  if (depth > MAX_DEPTH + 1) throw new SnapshotError('TRANSPORT_FAILED', 'a message from another host nests too deep');
  if (isArray(wire)) return wire.map(v => fromWire(v, refs, depth + 1));
  if (wire instanceof RemoteRef) return refs.fromRef(wire);
  if (wire instanceof Tagged) {
    switch (wire.tag) {
      case 'bigint':
        return BigInt(String(wire.payload));
      case '-0':
        return -0;
      case 'symbol':
        return Symbol.for(String(wire.payload));
      case 'map':
        return new Map((wire.payload as Array<[unknown, unknown]>).map(([k, v]) => [fromWire(k, refs, depth + 1), fromWire(v, refs, depth + 1)]));
      case 'error':
        return reviveError(wire.payload as ErrorRecord, refs, depth);
      default:
        throw new SnapshotError('TRANSPORT_FAILED', `a message from another host carried an unknown tag ${String(wire.tag)}`);
    }
  }
  const proto = getPrototypeOf(wire);
  if (proto === objectPrototype || proto === null) {
    const out: Record<string, unknown> = {};
    for (const name of keys(wire)) {
      const v = fromWire((wire as Record<string, unknown>)[name], refs, depth + 1);
      if (name === '__proto__') defineProperty(out, name, { value: v, enumerable: true, writable: true, configurable: true });
      else out[name] = v;
    }
    return out;
  }
  if (wire instanceof Set) return new Set([...wire].map(v => fromWire(v, refs, depth + 1)));
  return wire; // typed arrays, ArrayBuffer, Date, RegExp: fresh from the decoder
};

const reviveError = (record: ErrorRecord, refs: RefTable, depth: number): Error => {
  const name = String(record?.name ?? 'Error');
  const message = String(record?.message ?? '');
  const props = (record?.props ? fromWire(record.props, refs, depth + 1) : undefined) as Record<string, unknown> | undefined;
  if (name.startsWith('SnapshotError[') && typeof props?.code === 'string') {
    return new SnapshotError(props.code as SnapshotErrorCode, message, { details: (props.details ?? {}) as Record<string, unknown> });
  }
  const Ctor = errorConstructors[name] ?? Error;
  const error = new Ctor(message);
  if (!(name in errorConstructors)) defineProperty(error, 'name', { value: name, writable: true, configurable: true });
  if (props) for (const key of keys(props)) (error as unknown as Record<string, unknown>)[key] = props[key];
  return error;
};
