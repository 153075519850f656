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
import { Slot, Tagged, type Side, type TagName } from './wire.js';
import type { Entry, Outcome } from './entries.js';

export const packr = new Packr({ useRecords: false, moreTypes: true, int64AsType: 'number' });

addExtension({
  Class: Slot,
  type: 0x51,
  write: (slot: Slot) => (slot.iface ? [slot.side === 'guest' ? 0 : 1, slot.id, slot.iface] : [slot.side === 'guest' ? 0 : 1, slot.id]),
  read: (data: [number, number, string?]) => new Slot((data[0] === 0 ? 'guest' : 'host') as Side, data[1], data[2] ?? ''),
});

addExtension({
  Class: Tagged,
  type: 0x52,
  write: (tagged: Tagged) => [tagged.tag, tagged.payload],
  read: (data: [TagName, unknown]) => new Tagged(data[0], data[1]),
});

const outcomeCode = { return: 0, throw: 1, async: 2 } as const;

const packOutcome = (o: Outcome): [number, unknown] =>
  o.type === 'async' ? [outcomeCode.async, o.promise] : [outcomeCode[o.type], o.value];

const unpackOutcome = (code: number, value: unknown): Outcome => {
  if (code === 2) return { type: 'async', promise: value as number };
  return { type: code === 1 ? 'throw' : 'return', value };
};

/** The msgpack tuple of a sys entry's body (its op is written apart). */
export const sysTuple = (args: readonly unknown[], outcome: Outcome): unknown[] => [args, ...packOutcome(outcome)];

export const tupleToSys = (op: string, t: unknown): Entry | undefined =>
  Array.isArray(t) && t.length === 3 ? { kind: 'sys', op, args: t[0] as unknown[], outcome: unpackOutcome(t[1] as number, t[2]) } : undefined;

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
    case 'send':
      return ['send', entry.target, entry.method, entry.args, ...packOutcome(entry.outcome)];
    case 'ret':
      return ['ret', entry.answer, entry.ok, entry.value];
    default:
      throw new TypeError(`entry kind ${entry.kind} has an encoding of its own (format.ts)`);
  }
};

export const tupleToEntry = (t: unknown[]): Entry | undefined => {
  switch (t[0]) {
    case 'start':
      return { kind: 'start' };
    case 'call':
      return { kind: 'call', target: t[1] as number, method: t[2] as string | null, args: t[3] as unknown[], answer: t[4] as number };
    case 'settle':
      return { kind: 'settle', promise: t[1] as number, ok: t[2] as boolean, value: t[3] };
    case 'timer':
      return { kind: 'timer', timer: t[1] as number };
    case 'send':
      return { kind: 'send', target: t[1] as Slot, method: t[2] as string | null, args: t[3] as unknown[], outcome: unpackOutcome(t[4] as number, t[5]) };
    case 'ret':
      return { kind: 'ret', answer: t[1] as number, ok: t[2] as boolean, value: t[3] };
    default:
      return undefined;
  }
};
