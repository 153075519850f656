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
 * `SnapshotError`s come back as `SnapshotError` with the same code (only
 * those this library raised, marked `library` as the membrane marks them:
 * a service cannot forge one by naming its error so).
 *
 * Between two membranes no host values are made at all. A service calling
 * a stub sends its membrane's wire values (`encodeWireCall`: Slots become
 * RemoteRefs) and gets the reply as wire values (`decodeWireReply`), which
 * settle its promise as they are (directory.ts `WireCall`). A replica
 * answering skips both walks too: `decodeWireCall` turns the message into
 * the membrane's own wire values (RemoteRefs become Slots, nothing else is
 * copied, the message is checked in place), the membrane delivers them as
 * they are (`Membrane.deliverWireCall`), and `encodeWireAnswer` sends the
 * wire value it answered with. Each side's service gets its copy from its
 * membrane, once, as for any crossing. encodeCall/decodeReply (host values)
 * remain for callers that are not a membrane (the CLI, a benchmark).
 */
import { types } from 'node:util';
import { addExtension } from 'msgpackr';
import { SnapshotError, Slot, Tagged, packr, isDOMException, boxedValue, isArrayIndex, isRecordKey, objectEntries, objectWire, primitiveWire, NOT_PRIMITIVE, UNIQUE_SYMBOL, fromCodeUnits, viewConstructors, isSnapshotError, type ErrorRecord, type SnapshotErrorCode } from '../replay-log/index.js';

const { getPrototypeOf, keys, defineProperty } = Object;
const { isArray } = Array;
const { isView } = ArrayBuffer;
const { isBoxedPrimitive } = types;

const objectPrototype = Object.prototype;
const MAX_DEPTH = 100;
/** A reference's strings (host id, interface label, service name): longer ones are refused (characters). */
const MAX_REF_TEXT = 256;
/** References in one message: more are refused, so a message cannot make a host keep unbounded stubs. */
export const MAX_REFS_PER_MESSAGE = 1000;
let refsInMessage = 0;

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
    if (data[0].length > MAX_REF_TEXT || data[2].length > MAX_REF_TEXT || data[3].length > MAX_REF_TEXT) {
      throw new SnapshotError('TRANSPORT_FAILED', `a message carried a reference with a name over ${MAX_REF_TEXT} characters`);
    }
    if (++refsInMessage > MAX_REFS_PER_MESSAGE) throw new SnapshotError('TRANSPORT_FAILED', `a message carried more than ${MAX_REFS_PER_MESSAGE} references`);
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

/*
 * Messages (msgpack):
 *
 * | message | shape                    | numbering of `ref` tags                        |
 * | ------- | ------------------------ | ---------------------------------------------- |
 * | call    | [target, method, [args]] | the arguments as one clone, as the membrane    |
 * |         |                          | numbers them: `ref` from the argument's first  |
 * |         |                          | object, `argref` from the first argument's     |
 * | reply   | [ok, value]              | the value alone                                |
 * | ack     | [2, host]                | -                                              |
 *
 * So a call's arguments and a reply's value are the membrane's wire values
 * as they are, and a replica passes them through without a walk.
 */

const unpack = (bytes: Uint8Array): unknown => {
  refsInMessage = 0;
  try {
    return packr.unpack(bytes);
  } catch (cause) {
    if (cause instanceof SnapshotError) throw cause;
    throw new SnapshotError('TRANSPORT_FAILED', 'a message from another host could not be decoded', { cause });
  }
};

const revive = (wire: unknown, refs: RefTable): unknown => reviveArgs([wire], refs)[0];

/** Arguments, as one clone: an object an earlier one holds is the same object again (Tagged('argref', n)). */
const reviveArgs = (args: readonly unknown[], refs: RefTable): unknown[] => {
  const walk: InWalk = { refs, objects: [], base: 0 };
  try {
    return args.map(arg => {
      walk.base = walk.objects.length;
      return fromWire(arg, walk, 0);
    });
  } catch (cause) {
    if (cause instanceof SnapshotError) throw cause;
    throw new SnapshotError('TRANSPORT_FAILED', `a message from another host is malformed: ${(cause as Error)?.message}`, { cause });
  }
};

const isCall = (call: unknown): call is [number, string | null, unknown[]] =>
  isArray(call) && call.length === 3 && typeof call[0] === 'number' && (call[1] === null || typeof call[1] === 'string') && isArray(call[2]);

/** Encode a call of host values: `target` (an object id), `method` (null: call the target itself). Throws NOT_PASSABLE. */
export const encodeCall = (target: number, method: string | null, args: readonly unknown[], refs: RefTable): Uint8Array => {
  const wired: unknown[] = [];
  const walk: OutWalk = { refs, seen: new Map(), base: 0 };
  for (const arg of args) {
    walk.base = walk.seen.size;
    wired.push(toWire(arg, walk, 0));
  }
  return packr.pack([target, method, wired]);
};

/** Decode a call into fresh host values. Throws TRANSPORT_FAILED on malformed input. */
export const decodeCall = (bytes: Uint8Array, refs: RefTable): { target: number; method: string | null; args: unknown[] } => {
  const call = unpack(bytes);
  if (!isCall(call)) throw new SnapshotError('TRANSPORT_FAILED', 'a malformed call arrived over NATS');
  return { target: call[0], method: call[1], args: reviveArgs(call[2], refs) };
};

/** Encode a reply: what the call returned (`ok`) or threw. Throws NOT_PASSABLE. */
export const encodeReply = (ok: boolean, value: unknown, refs: RefTable): Uint8Array => packr.pack([ok, toWire(value, { refs, seen: new Map(), base: 0 }, 0)]);

/** A decoded reply, or the acknowledgement of the host that took the call. */
export type Reply = { readonly ok: boolean; readonly value: unknown } | { readonly ack: string };

/** Decode a reply (or an acknowledgement `[2, host]`) into fresh host values. Throws TRANSPORT_FAILED on malformed input. */
export const decodeReply = (bytes: Uint8Array, refs: RefTable): Reply => {
  const reply = unpack(bytes);
  if (isArray(reply) && reply.length === 2 && reply[0] === ACK && typeof reply[1] === 'string') return { ack: reply[1] };
  if (!isArray(reply) || reply.length !== 2 || typeof reply[0] !== 'boolean') throw new SnapshotError('TRANSPORT_FAILED', 'a malformed reply arrived over NATS');
  return { ok: reply[0], value: revive(reply[1], refs) };
};

/** First element of a replica's acknowledgement `[ACK, host]`. */
export const ACK = 2;

const notPassable = (why: string): SnapshotError => new SnapshotError('NOT_PASSABLE', `a value cannot cross to another host: ${why}`);

/**
 * One encoding walk. Objects copied so far are numbered in pre-order
 * (containers before their contents; a whole typed array, then its
 * buffer); an object met again becomes Tagged('ref', n), so sharing and
 * cycles cross as structured clone keeps them.
 */
interface OutWalk {
  readonly refs: RefTable;
  readonly seen: Map<object, number>;
  /** The number of the argument's first object (0 outside a call's arguments). */
  base: number;
}

interface InWalk {
  readonly refs: RefTable;
  readonly objects: unknown[];
  /** Where the argument starts in `objects` (0 outside a call's arguments). */
  base: number;
}

const remember = (walk: OutWalk, object: object): void => {
  walk.seen.set(object, walk.seen.size);
};


const toWire = (value: unknown, walk: OutWalk, depth: number): unknown => {
  if (typeof value === 'function') return walk.refs.toRef(value);
  const primitive = primitiveWire(value);
  if (primitive === UNIQUE_SYMBOL) throw notPassable(`a unique symbol (${String(value)}); use a string or Symbol.for()`);
  if (primitive !== NOT_PRIMITIVE) return primitive;
  const object = value as object;
  if (depth > MAX_DEPTH) throw notPassable(`a value nested more than ${MAX_DEPTH} deep`);
  if (walk.refs.isRef(object)) return walk.refs.toRef(object);
  const again = walk.seen.get(object);
  if (again !== undefined) return again >= walk.base ? new Tagged('ref', again - walk.base) : new Tagged('argref', again);
  if (isArray(object)) {
    remember(walk, object);
    const indices = keys(object).filter(isArrayIndex);
    const named = keys(object).filter(key => !isArrayIndex(key));
    if (named.length > 0) {
      // Its own named properties cross too, as structuredClone keeps them (a RegExp match's index, input, groups).
      const values = indices.map(i => toWire((object as unknown as Record<string, unknown>)[i], walk, depth + 1));
      return new Tagged('array', [object.length, indices.map(Number), values, objectWire(named.map(name => [name, toWire((object as unknown as Record<string, unknown>)[name], walk, depth + 1)]))]);
    }
    if (indices.length === object.length) return object.map(v => toWire(v, walk, depth + 1));
    return new Tagged('sparse', [object.length, indices.map(Number), indices.map(i => toWire((object as unknown as Record<string, unknown>)[i], walk, depth + 1))]);
  }
  const proto = getPrototypeOf(object);
  if (proto === objectPrototype || proto === null) {
    const names = keys(object);
    for (const name of names) {
      const v = (object as Record<string, unknown>)[name];
      if (typeof v === 'function' && !walk.refs.isRef(v)) return walk.refs.toRef(object);
    }
    remember(walk, object);
    if (!names.every(isRecordKey)) return objectWire(names.map(name => [name, toWire((object as Record<string, unknown>)[name], walk, depth + 1)]));
    const out: Record<string, unknown> = {};
    for (const name of names) out[name] = toWire((object as Record<string, unknown>)[name], walk, depth + 1);
    return out;
  }
  if (isView(object)) {
    remember(walk, object);
    if (Buffer.isBuffer(object)) return object; // its own bytes (a pooled Buffer's pool never crosses)
    const name = object instanceof DataView ? 'DataView' : (object as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag];
    const buffer = object.buffer as ArrayBuffer;
    if (object.byteOffset === 0 && object.byteLength === buffer.byteLength && !walk.seen.has(buffer) && name !== 'DataView') {
      remember(walk, buffer);
      return object;
    }
    const length = object instanceof DataView ? object.byteLength : (object as unknown as { length: number }).length;
    return new Tagged('view', [name, toWire(buffer, walk, depth + 1), object.byteOffset, length]);
  }
  if (object instanceof ArrayBuffer || object instanceof Date || object instanceof RegExp) {
    remember(walk, object);
    return object;
  }
  if (object instanceof Set) {
    remember(walk, object);
    return new Set([...object].map(v => toWire(v, walk, depth + 1)));
  }
  if (object instanceof Map) {
    remember(walk, object);
    return new Tagged('map', [...object].map(([k, v]) => [toWire(k, walk, depth + 1), toWire(v, walk, depth + 1)]));
  }
  if (object instanceof Error) {
    remember(walk, object);
    const record: ErrorRecord = { name: String(object.name), message: String(object.message) };
    if (isSnapshotError(object)) record.library = true;
    else if (isDOMException(object)) record.dom = true;
    const props: Array<[string, unknown]> = [];
    for (const name of keys(object)) {
      const v = (object as unknown as Record<string, unknown>)[name];
      if (name !== 'stack' && name !== 'message' && typeof v !== 'function') props.push([name, toWire(v, walk, depth + 1)]);
    }
    if (props.length > 0) record.props = objectWire(props);
    // Its own cause, as structuredClone keeps it (not enumerable, so not among the properties above).
    const cause = Object.getOwnPropertyDescriptor(object, 'cause');
    if (cause && 'value' in cause) record.cause = toWire(cause.value, walk, depth + 1);
    return new Tagged('error', record);
  }
  if (isBoxedPrimitive(object)) {
    const primitive = boxedValue(object);
    if (typeof primitive === 'symbol') throw notPassable('a Symbol object (structuredClone refuses it too)');
    remember(walk, object);
    return new Tagged('boxed', primitiveWire(primitive));
  }
  if (typeof (object as { then?: unknown }).then === 'function') throw notPassable('a promise inside a value; await it first');
  return walk.refs.toRef(object);
};



/** By name, own keys only (a record named 'constructor' is an Error of that name, not Object). */
const errorConstructors: Readonly<Record<string, ErrorConstructor>> = Object.assign(Object.create(null) as Record<string, ErrorConstructor>, { Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError });

const malformed = (why: string): SnapshotError => new SnapshotError('TRANSPORT_FAILED', `a message from another host is malformed: ${why}`);

const fromWire = (wire: unknown, walk: InWalk, depth: number): unknown => {
  if (typeof wire !== 'object' || wire === null) return wire;
  if (depth > MAX_DEPTH + 1) throw malformed('it nests too deep');
  const { objects } = walk;
  if (isArray(wire)) {
    const out: unknown[] = [];
    objects.push(out);
    for (const v of wire) out.push(fromWire(v, walk, depth + 1));
    return out;
  }
  if (wire instanceof RemoteRef) return walk.refs.fromRef(wire);
  if (wire instanceof Tagged) {
    const payload = wire.payload as never;
    switch (wire.tag) {
      case 'bigint':
        return BigInt(String(payload));
      case '-0':
        return -0;
      case 'symbol':
        return Symbol.for(String(payload));
      case 'utf16': {
        const units = payload as Uint16Array;
        if (!(units instanceof Uint16Array)) throw malformed('a string without code units');
        return fromCodeUnits(units);
      }
      case 'ref': {
        const n = walk.base + (payload as number);
        if (!(typeof payload === 'number' && n >= walk.base && n < objects.length)) throw malformed(`a reference to object #${String(payload)}, which it does not hold`);
        return objects[n];
      }
      case 'argref': {
        const n = payload as number;
        if (!(typeof n === 'number' && n >= 0 && n < walk.base)) throw malformed(`a reference to object #${String(n)} of the arguments before, which they do not hold`);
        return objects[n];
      }
      case 'sparse': {
        const [length, indices, values] = payload as [number, number[], unknown[]];
        if (!isArray(indices) || !isArray(values) || typeof length !== 'number' || length > 2 ** 32 - 1) throw malformed('a bad sparse array');
        const out: unknown[] = [];
        out.length = length;
        objects.push(out);
        for (let i = 0; i < indices.length; i += 1) out[indices[i]] = fromWire(values[i], walk, depth + 1);
        return out;
      }
      case 'array': {
        const [length, indices, values, named] = (isArray(payload) ? payload : []) as unknown as [number, number[], unknown[], unknown];
        if (!isArray(indices) || !isArray(values) || typeof length !== 'number' || length > 2 ** 32 - 1 || indices.length !== values.length) throw malformed('a bad array');
        const entries = objectEntries(named);
        if (entries === undefined || !entries.every(([name]) => !isArrayIndex(name) && name !== 'length')) throw malformed("a bad array's named properties");
        const out: unknown[] = [];
        out.length = length;
        objects.push(out);
        for (let i = 0; i < indices.length; i += 1) out[indices[i]] = fromWire(values[i], walk, depth + 1);
        for (const [name, v] of entries) defineProperty(out, name, { value: fromWire(v, walk, depth + 1), enumerable: true, writable: true, configurable: true });
        return out;
      }
      case 'boxed': {
        const primitive = fromWire(payload, walk, depth + 1);
        if (!['number', 'string', 'boolean', 'bigint'].includes(typeof primitive)) throw malformed('a bad boxed primitive');
        const out = Object(primitive) as object;
        objects.push(out);
        return out;
      }
      case 'object': {
        const out: Record<string, unknown> = {};
        objects.push(out);
        for (const [name, v] of objectEntries(wire) ?? []) defineProperty(out, name, { value: fromWire(v, walk, depth + 1), enumerable: true, writable: true, configurable: true });
        return out;
      }
      case 'view': {
        const [name, bufferWire, offset, length] = payload as [string, unknown, number, number];
        const at = objects.length;
        objects.push(undefined);
        const buffer = fromWire(bufferWire, walk, depth + 1);
        const Ctor = viewConstructors[name];
        if (!Ctor || !(buffer instanceof ArrayBuffer)) throw malformed(`a view of type ${String(name)}`);
        const view = new Ctor(buffer, offset, length);
        objects[at] = view;
        return view;
      }
      case 'map': {
        const out = new Map<unknown, unknown>();
        objects.push(out);
        for (const [k, v] of payload as Array<[unknown, unknown]>) out.set(fromWire(k, walk, depth + 1), fromWire(v, walk, depth + 1));
        return out;
      }
      case 'error':
        return reviveError(payload as ErrorRecord, walk, depth);
      default:
        throw malformed(`an unknown tag ${String(wire.tag)}`);
    }
  }
  const proto = getPrototypeOf(wire);
  if (proto === objectPrototype || proto === null) {
    const out: Record<string, unknown> = {};
    objects.push(out);
    for (const name of keys(wire)) out[name] = fromWire((wire as Record<string, unknown>)[name], walk, depth + 1);
    return out;
  }
  if (wire instanceof Set) {
    const out = new Set<unknown>();
    objects.push(out);
    for (const v of wire) out.add(fromWire(v, walk, depth + 1));
    return out;
  }
  if (isView(wire)) {
    objects.push(wire);
    if (!Buffer.isBuffer(wire)) objects.push(wire.buffer);
    return wire;
  }
  objects.push(wire); // ArrayBuffer, Date, RegExp: fresh from the decoder
  return wire;
};

const reviveError = (record: ErrorRecord, walk: InWalk, depth: number): Error => {
  const name = String(record?.name ?? 'Error');
  const message = String(record?.message ?? '');
  // The error is made, and numbered, before its properties are revived: one of them may be the error itself.
  const entries = objectEntries(record?.props) ?? [];
  const code = entries.find(([key]) => key === 'code')?.[1];
  const library = record?.library === true && name.startsWith('SnapshotError[') && typeof code === 'string';
  let error: Error;
  if (library) {
    error = new SnapshotError(code as SnapshotErrorCode, message);
  } else if (record?.dom === true && typeof DOMException === 'function') {
    error = new DOMException(message, name) as unknown as Error;
  } else {
    const Ctor = errorConstructors[name] ?? Error;
    error = new Ctor(message);
    if (!(name in errorConstructors)) defineProperty(error, 'name', { value: name, writable: true, configurable: true });
  }
  walk.objects.push(error);
  const props: Array<[string, unknown]> = entries.map(([key, v]) => [key, fromWire(v, walk, depth + 1)]);
  if (library) {
    // Its code and details are the library's own.
    defineProperty(error, 'details', { value: (props.find(([key]) => key === 'details')?.[1] ?? {}) as Record<string, unknown>, configurable: true });
  } else {
    // Own enumerable data properties, as they were (an own `__proto__` too).
    for (const [key, value] of props) defineProperty(error, key, { value, writable: true, enumerable: true, configurable: true });
  }
  if (record !== null && typeof record === 'object' && Object.hasOwn(record, 'cause')) {
    defineProperty(error, 'cause', { value: fromWire(record.cause, walk, depth + 1), writable: true, enumerable: false, configurable: true });
  }
  return error;
};

// ---- the membrane's wire values, as they are -------------------------------------

const WIRE_TAGS = new Set(['bigint', '-0', 'symbol', 'utf16', 'ref', 'argref', 'sparse', 'array', 'boxed', 'object', 'view', 'map', 'error']);

/**
 * A call `[target, method, args]` from another host, decoded into the
 * membrane's wire values without a copy: the message is checked in place
 * (only data, known tags and RemoteRefs; never a Slot or a sealed value,
 * which only this host's membrane may make), and each RemoteRef is replaced
 * by the Slot `toSlot` gives. Throws TRANSPORT_FAILED on anything else.
 */
export const decodeWireCall = (bytes: Uint8Array, toSlot: (ref: RemoteRef) => Slot): { target: number; method: string | null; args: unknown[] } => {
  const call = decodeCallFor(bytes, undefined, () => toSlot);
  return { target: call.target, method: call.method, args: call.args };
};

/**
 * A call decoded for whoever answers its target: as wire values when
 * `wireFor(target)` gives the Slots of the membrane that holds it, as host
 * values (with `refs`) otherwise.
 */
export const decodeCallFor = (
  bytes: Uint8Array,
  refs: RefTable | undefined,
  wireFor: (target: number) => ((ref: RemoteRef) => Slot) | undefined,
): { target: number; method: string | null; args: unknown[]; wire: boolean } => {
  const call = unpack(bytes);
  if (!isCall(call)) throw new SnapshotError('TRANSPORT_FAILED', 'a malformed call arrived over NATS');
  const [target, method, args] = call;
  const toSlot = wireFor(target);
  if (toSlot) {
    for (let i = 0; i < args.length; i += 1) args[i] = checkIn(args[i], toSlot, 0, false);
    return { target, method, args, wire: true };
  }
  if (!refs) throw new SnapshotError('TRANSPORT_FAILED', `a call for object #${target}, which takes no call here`);
  return { target, method, args: reviveArgs(args, refs), wire: false };
};

/**
 * A reply (or an acknowledgement) decoded into the calling membrane's wire
 * values, checked in place as decodeWireCall checks a call. An error the
 * answering host's membrane or library marked as the library's keeps that
 * mark: the hosts of one app vouch for each other's library, as they did
 * when its errors were revived by name.
 */
export const decodeWireReply = (bytes: Uint8Array, toSlot: (ref: RemoteRef) => Slot): Reply => {
  const reply = unpack(bytes);
  if (isArray(reply) && reply.length === 2 && reply[0] === ACK && typeof reply[1] === 'string') return { ack: reply[1] };
  if (!isArray(reply) || reply.length !== 2 || typeof reply[0] !== 'boolean') throw new SnapshotError('TRANSPORT_FAILED', 'a malformed reply arrived over NATS');
  return { ok: reply[0], value: checkIn(reply[1], toSlot, 0, true) };
};

/** Thrown inside swapSlots for a value that cannot go out as it is (a sealed secret): the caller falls back to host values. */
const NOT_AS_WIRE = Symbol('not as wire');

/**
 * A call whose arguments are the calling membrane's wire values (their
 * Slots become RemoteRefs through `toRef`, in copies). Undefined when one
 * cannot go as it is (a sealed secret of a recording membrane): the caller
 * then sends host values.
 */
export const encodeWireCall = (target: number, method: string | null, args: readonly unknown[], toRef: (slot: Slot) => RemoteRef): Uint8Array | undefined => {
  try {
    return packr.pack([target, method, args.map(arg => swapSlots(arg, toRef, 0, true))]);
  } catch (error) {
    if (error === NOT_AS_WIRE) return undefined;
    throw error;
  }
};

/** Check one decoded node in place; returns it, or the Slot that replaces a RemoteRef. */
const checkIn = (wire: unknown, toSlot: (ref: RemoteRef) => Slot, depth: number, keepLibrary: boolean): unknown => {
  if (typeof wire !== 'object' || wire === null) return wire;
  if (depth > MAX_DEPTH + 1) throw malformed('it nests too deep');
  if (isArray(wire)) {
    for (let i = 0; i < wire.length; i += 1) wire[i] = checkIn(wire[i], toSlot, depth + 1, keepLibrary);
    return wire;
  }
  if (wire instanceof RemoteRef) return toSlot(wire);
  if (wire instanceof Tagged) {
    if (!WIRE_TAGS.has(wire.tag)) throw malformed(`a value tagged ${String(wire.tag)}`);
    const payload = wire.payload as unknown;
    switch (wire.tag) {
      case 'bigint':
      case 'symbol':
        if (typeof payload !== 'string') throw malformed(`a ${wire.tag} without its text`);
        break;
      case 'utf16':
        if (!(payload instanceof Uint16Array)) throw malformed('a string without code units');
        break;
      case 'ref':
      case 'argref':
        if (typeof payload !== 'number') throw malformed('a reference without its number');
        break;
      case 'sparse': {
        const [length, indices, values] = (isArray(payload) ? payload : []) as [unknown, unknown, unknown];
        if (typeof length !== 'number' || !isArray(indices) || !isArray(values) || length > 2 ** 32 - 1 || indices.length !== values.length || !indices.every(i => typeof i === 'number' && i >= 0 && i < length)) {
          throw malformed('a bad sparse array');
        }
        checkIn(values, toSlot, depth + 1, keepLibrary);
        break;
      }
      case 'array': {
        const [length, indices, values, named] = (isArray(payload) && payload.length === 4 ? payload : []) as [unknown, unknown, unknown, unknown];
        if (typeof length !== 'number' || !isArray(indices) || !isArray(values) || length > 2 ** 32 - 1 || indices.length !== values.length || !indices.every(i => typeof i === 'number' && i >= 0 && i < length)) {
          throw malformed('a bad array');
        }
        if (objectEntries(named)?.every(([name]) => !isArrayIndex(name) && name !== 'length') !== true) throw malformed("a bad array's named properties");
        checkIn(values, toSlot, depth + 1, keepLibrary);
        (payload as unknown[])[3] = checkIn(named, toSlot, depth + 1, keepLibrary);
        break;
      }
      case 'boxed':
        if (!(typeof payload === 'number' || typeof payload === 'string' || typeof payload === 'boolean' || (payload instanceof Tagged && (payload.tag === 'bigint' || payload.tag === '-0' || payload.tag === 'utf16')))) {
          throw malformed('a bad boxed primitive');
        }
        checkIn(payload, toSlot, depth + 1, keepLibrary);
        break;
      case 'object':
      case 'map':
        if (!isArray(payload) || !payload.every(entry => isArray(entry) && entry.length === 2) || (wire.tag === 'object' && objectEntries(wire) === undefined)) throw malformed(`a bad ${wire.tag}`);
        checkIn(payload, toSlot, depth + 1, keepLibrary);
        break;
      case 'view': {
        const [name, buffer, offset, length] = (isArray(payload) ? payload : []) as [unknown, unknown, unknown, unknown];
        if (typeof name !== 'string' || !viewConstructors[name] || typeof offset !== 'number' || typeof length !== 'number') throw malformed(`a view of type ${String(name)}`);
        if (!(buffer instanceof ArrayBuffer) && !(buffer instanceof Tagged && buffer.tag === 'ref')) throw malformed('a view without its buffer');
        checkIn(buffer, toSlot, depth + 1, keepLibrary);
        break;
      }
      case 'error': {
        const record = payload as ErrorRecord | null;
        if (typeof record !== 'object' || record === null || typeof record.name !== 'string' || typeof record.message !== 'string') throw malformed('a bad error');
        if (!keepLibrary || record.library !== true) delete record.library; // a call's arguments: only this host's membrane and library mark errors as ours
        if (record.dom !== true) delete record.dom;
        if (record.stack !== undefined && typeof record.stack !== 'string') throw malformed("a bad error's stack");
        if (record.props !== undefined) {
          if (objectEntries(record.props) === undefined) throw malformed('bad error properties');
          record.props = checkIn(record.props, toSlot, depth + 1, keepLibrary) as ErrorRecord['props'];
        }
        // Its cause is a value like any other: checked, its references made this host's (a Slot in it, left as it
        // came, named an object of this host's membrane by number).
        if (Object.hasOwn(record, 'cause')) record.cause = checkIn(record.cause, toSlot, depth + 1, keepLibrary);
        break;
      }
      default:
        break;
    }
    return wire;
  }
  const proto = getPrototypeOf(wire);
  if (proto === objectPrototype || proto === null) {
    for (const name of keys(wire)) (wire as Record<string, unknown>)[name] = checkIn((wire as Record<string, unknown>)[name], toSlot, depth + 1, keepLibrary);
    return wire;
  }
  if (wire instanceof Set) {
    const values = [...wire];
    const checked = values.map(v => checkIn(v, toSlot, depth + 1, keepLibrary));
    return checked.every((v, i) => v === values[i]) ? wire : new Set(checked);
  }
  if (isView(wire) || wire instanceof ArrayBuffer || wire instanceof Date || wire instanceof RegExp) return wire;
  throw malformed(`an object of type ${String((proto as { constructor?: { name?: string } } | null)?.constructor?.name ?? 'unknown')}`);
};

/**
 * A reply `[ok, value]` whose value is a wire value the membrane answered
 * with: packed as it is, unless it holds Slots (references to the
 * service's objects or to host objects), which `toRef` turns into
 * RemoteRefs in a copy (the journal may hold the original).
 */
export const encodeWireAnswer = (ok: boolean, value: unknown, toRef: (slot: Slot) => RemoteRef): Uint8Array => {
  const swapped = swapSlots(value, toRef, 0, false);
  return packr.pack([ok, swapped]);
};

/** `wire` with its Slots replaced by RemoteRefs: the same object when it holds none. */
const swapSlots = (wire: unknown, toRef: (slot: Slot) => RemoteRef, depth: number, sealedFallsBack: boolean): unknown => {
  if (typeof wire !== 'object' || wire === null) return wire;
  if (depth > MAX_DEPTH * 10) throw notPassable(`a value nested more than ${MAX_DEPTH * 10} deep`);
  if (wire instanceof Slot) return toRef(wire);
  if (isArray(wire)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < wire.length; i += 1) {
      const v = swapSlots(wire[i], toRef, depth + 1, sealedFallsBack);
      if (v !== wire[i]) (out ??= wire.slice())[i] = v;
    }
    return out ?? wire;
  }
  if (wire instanceof Tagged) {
    if (wire.tag === 'sealed') {
      if (sealedFallsBack) throw NOT_AS_WIRE;
      throw notPassable('a sealed secret (a recording host) cannot be sent as it is');
    }
    if (wire.tag === 'error') {
      const record = wire.payload as ErrorRecord;
      const props = record.props === undefined ? undefined : swapSlots(record.props, toRef, depth + 1, sealedFallsBack);
      // The service's stack stays on its host: the caller's error is its own.
      const { stack: _stack, ...rest } = record;
      const out: ErrorRecord = props === record.props ? rest : { ...rest, props: props as ErrorRecord['props'] };
      // Its cause holds references too (a function in it is a Slot of this host's membrane).
      if (Object.hasOwn(record, 'cause')) out.cause = swapSlots(record.cause, toRef, depth + 1, sealedFallsBack);
      return new Tagged('error', out);
    }
    const payload = swapSlots(wire.payload, toRef, depth + 1, sealedFallsBack);
    return payload === wire.payload ? wire : new Tagged(wire.tag, payload);
  }
  const proto = getPrototypeOf(wire);
  if (proto === objectPrototype || proto === null) {
    let out: Record<string, unknown> | undefined;
    for (const name of keys(wire)) {
      const v = swapSlots((wire as Record<string, unknown>)[name], toRef, depth + 1, sealedFallsBack);
      if (v !== (wire as Record<string, unknown>)[name]) (out ??= { ...(wire as Record<string, unknown>) })[name] = v;
    }
    return out ?? wire;
  }
  if (wire instanceof Set) {
    const values = [...wire];
    const swapped = values.map(v => swapSlots(v, toRef, depth + 1, sealedFallsBack));
    return swapped.every((v, i) => v === values[i]) ? wire : new Set(swapped);
  }
  return wire;
};
