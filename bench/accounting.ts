/**
 * Log size accounting for figure (e): what a log costs per event, compared
 * with the raw payload of its entries and with the same entries written as
 * JSON lines.
 *
 * Raw payload of an entry: the bytes of the values it records, counted the
 * way the brief asks: 8 per number (a timestamp, a float, a count), the
 * UTF-8 length of every string (object keys included: in recorded data they
 * are data), the byte length of buffers and typed arrays, 1 per boolean,
 * 8 per Date, 0 for null/undefined. What identifies an entry rather than
 * carrying a value is not payload: its kind, a syscall's op name
 * ("env.get"), method names, promise/answer/export ids and slot ids.
 *   now/perf: 8           seed: 16              random: the bytes
 *   sys/send: args + result value (an async outcome's promise id: 0)
 *   call: args            settle/ret: the value  start/timer: 0
 *
 * JSON lines: one `JSON.stringify` of the entry per line, with byte arrays
 * as base64 strings and slots/tagged values as small objects: what a naive
 * log format would write.
 */
import { LogReader, Slot, Tagged, isDelivery, type Entry, type EntryKind, type Wire } from '../dist/replay-log/index.js';

const utf8 = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Payload bytes of a wire value. */
export const valueBytes = (value: Wire): number => {
  switch (typeof value) {
    case 'number':
      return 8;
    case 'string':
      return utf8(value);
    case 'boolean':
      return 1;
    case 'bigint':
      return utf8(value.toString());
    case 'undefined':
      return 0;
    default:
      break;
  }
  if (value === null || typeof value !== 'object') return 0;
  if (value instanceof Slot) return 0;
  if (value instanceof Tagged) return valueBytes(value.payload);
  if (ArrayBuffer.isView(value)) return value.byteLength;
  if (value instanceof ArrayBuffer) return value.byteLength;
  if (value instanceof Date) return 8;
  if (value instanceof RegExp) return utf8(value.source) + utf8(value.flags);
  if (value instanceof Set) return [...value].reduce((n: number, v: Wire) => n + valueBytes(v), 0);
  if (Array.isArray(value)) return value.reduce((n: number, v: Wire) => n + valueBytes(v), 0);
  let n = 0;
  for (const [key, v] of Object.entries(value)) n += utf8(key) + valueBytes(v);
  return n;
};

const outcomeBytes = (outcome: { type: string; value?: Wire }): number => (outcome.type === 'async' ? 0 : valueBytes(outcome.value));

/** Raw payload bytes of one entry (see the top of this file). */
export const payloadBytes = (entry: Entry): number => {
  switch (entry.kind) {
    case 'now':
    case 'perf':
      return 8;
    case 'seed':
      return entry.seed.byteLength;
    case 'random':
      return entry.bytes.byteLength;
    case 'sys':
    case 'send':
      return valueBytes(entry.args) + outcomeBytes(entry.outcome);
    case 'call':
      return valueBytes(entry.args);
    case 'settle':
    case 'ret':
      return valueBytes(entry.value);
    case 'start':
    case 'timer':
      return 0;
    default:
      return 0;
  }
};

/** A JSON-ready copy of a wire value. */
const jsonable = (value: unknown): unknown => {
  if (value === undefined) return null;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof Slot) return { slot: [value.side, value.id] };
  if (value instanceof Tagged) return { tag: value.tag, payload: jsonable(value.payload) };
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (value instanceof ArrayBuffer) return Buffer.from(value).toString('base64');
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Set) return [...value].map(jsonable);
  if (value instanceof RegExp) return String(value);
  if (Array.isArray(value)) return value.map(jsonable);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) out[key] = jsonable(v);
  return out;
};

/** Bytes of the entry as one JSON line. */
export const jsonLineBytes = (entry: Entry): number => utf8(JSON.stringify(jsonable(entry))) + 1;

export interface KindTotals {
  entries: number;
  logBytes: number;
  payloadBytes: number;
  jsonBytes: number;
}

export interface LogAccount {
  readonly fileBytes: number;
  readonly events: number;
  readonly payloadBytes: number;
  readonly jsonBytes: number;
  readonly byKind: ReadonlyMap<EntryKind, KindTotals>;
}

/** Walk a log: its file size, its events, and their payload and JSON-lines sizes, by kind. */
export const accountLog = (bytes: Uint8Array, source: string): LogAccount => {
  const reader = LogReader.open(bytes, source);
  const byKind = new Map<EntryKind, KindTotals>();
  let events = 0;
  let payload = 0;
  let json = 0;
  for (const { size, entry } of reader.entries()) {
    const p = payloadBytes(entry);
    const j = jsonLineBytes(entry);
    events += 1;
    payload += p;
    json += j;
    let totals = byKind.get(entry.kind);
    if (!totals) byKind.set(entry.kind, (totals = { entries: 0, logBytes: 0, payloadBytes: 0, jsonBytes: 0 }));
    totals.entries += 1;
    totals.logBytes += size;
    totals.payloadBytes += p;
    totals.jsonBytes += j;
  }
  return { fileBytes: bytes.byteLength, events, payloadBytes: payload, jsonBytes: json, byKind };
};

/**
 * Entries of the turn of the log's first `call` delivery: the call, the
 * syscalls it made, its answer. (The workload logs hold one call each.)
 */
export const callTurn = (bytes: Uint8Array, source: string): { events: number; byKind: Map<EntryKind, number>; logEvents: number } => {
  const reader = LogReader.open(bytes, source);
  const logEvents = reader.trailer?.events ?? 0;
  const byKind = new Map<EntryKind, number>();
  let inside = false;
  let events = 0;
  for (const { entry } of reader.entries()) {
    if (isDelivery(entry)) {
      if (inside) break;
      inside = entry.kind === 'call';
    }
    if (!inside) continue;
    events += 1;
    byKind.set(entry.kind, (byKind.get(entry.kind) ?? 0) + 1);
  }
  return { events, byKind, logEvents };
};
