/**
 * The entries of a replay log.
 *
 * Deliveries enter the service from outside and are *replayed*: `start`
 * (module evaluation), `call` (a call on an object the service exported),
 * `settle` (an outside promise the service waits on settled), `timer` (a
 * timer fired). Syscalls leave the service during a delivery and are
 * *checked* on replay: the service must make the same one, and gets the
 * recorded outcome. `ret` is the service's answer to a `call`, also checked.
 *
 * The fast kinds (`now`, `perf`, `seed`, `random`) have a compact binary
 * encoding of their own (see format.ts); the others are msgpack tuples.
 */
import type { Slot } from './wire.js';

export type Wire = unknown;

/** How a syscall ended: returned a value, threw, or returned a promise. */
export type Outcome =
  | { readonly type: 'return'; readonly value: Wire }
  | { readonly type: 'throw'; readonly value: Wire }
  | { readonly type: 'async'; readonly promise: number };

export type StartEntry = { readonly kind: 'start' };
export type CallEntry = {
  readonly kind: 'call';
  /** Export id of the service object called. */
  readonly target: number;
  /** `null` when the target itself is called as a function. */
  readonly method: string | null;
  readonly args: readonly Wire[];
  /** Host-side id of the answer the caller waits on. */
  readonly answer: number;
};
export type SettleEntry = {
  readonly kind: 'settle';
  readonly promise: number;
  readonly ok: boolean;
  readonly value: Wire;
};
export type TimerEntry = { readonly kind: 'timer'; readonly timer: number };

export type DeliveryEntry = StartEntry | CallEntry | SettleEntry | TimerEntry;

export type NowEntry = { readonly kind: 'now'; readonly value: number };
export type PerfEntry = { readonly kind: 'perf'; readonly value: number };
export type SeedEntry = { readonly kind: 'seed'; readonly seed: Uint8Array };
export type RandomEntry = { readonly kind: 'random'; readonly bytes: Uint8Array };
/** A call to a host capability bound by a stable name (`fs.readFileSync`, `fetch`, ...). */
export type SysEntry = {
  readonly kind: 'sys';
  readonly op: string;
  readonly args: readonly Wire[];
  readonly outcome: Outcome;
};
/** A call on an outside object the service holds by reference. */
export type SendEntry = {
  readonly kind: 'send';
  readonly target: Slot;
  readonly method: string | null;
  readonly args: readonly Wire[];
  readonly outcome: Outcome;
};
export type RetEntry = {
  readonly kind: 'ret';
  readonly answer: number;
  readonly ok: boolean;
  readonly value: Wire;
};

export type SyscallEntry = NowEntry | PerfEntry | SeedEntry | RandomEntry | SysEntry | SendEntry | RetEntry;

export type Entry = DeliveryEntry | SyscallEntry;
export type EntryKind = Entry['kind'];

const deliveryKinds: ReadonlySet<EntryKind> = new Set(['start', 'call', 'settle', 'timer']);
export const isDelivery = (entry: Entry): entry is DeliveryEntry => deliveryKinds.has(entry.kind);

/** The metadata at the head of every log. */
export interface LogHeader {
  readonly format: 'membrane-snapshot/replay-log';
  readonly version: number;
  readonly service: string;
  readonly archiveSha256: string;
  readonly libraryVersion: string;
}

/** What the closing frame of a sealed log says. */
export interface LogTrailer {
  readonly events: number;
}
