/**
 * The directory of service references in one process. Every membrane
 * registers the host-side proxies it hands out (a service's exported
 * objects), so that when one service's proxy crosses into another service,
 * the receiving membrane knows it is a reference to "export #M of service
 * db" and not an anonymous host object. That is what lets a restored app
 * re-bind its references between services by name.
 *
 * It also knows which host objects take a call as wire values (a
 * transport's stand-in for an object on another host): a membrane calling
 * one hands it the arguments as they crossed and settles the service's
 * promise with the wire answer, so no copy walk runs on this host between
 * the service and the network.
 *
 * And it knows which host objects are another service of this process (a
 * membrane's proxy of an export, its methods, the bound methods a service
 * read off one): a membrane calling one hands it host arguments and gets the
 * answer through a callback, when the other service gives it, instead of
 * through a promise that a then-callback one promise job later turns into
 * the settle delivery (two promises and a promise job on every call).
 */
import type { Slot, Wire } from '../replay-log/index.js';

/** Where a service reference points: an exported object of a named service. */
export interface ExportRef {
  readonly service: string;
  readonly export: number;
  readonly iface: string;
}

/** A call's outcome as a wire value: what it returned (`ok`) or threw. */
export interface WireAnswer {
  readonly ok: boolean;
  readonly value: Wire;
}

/** How a wire caller names the calling membrane's objects: its Slots to host objects and back. */
export interface WireSide {
  /** The Slot host object `object` enters the service as. */
  hostSlot(object: object): Slot;
  /** The host object a Slot of a leaving wire value stands for. */
  hostObjectOf(slot: Slot): unknown;
}

/**
 * Call a host object with wire arguments (the service's Slots as `side`
 * names them). Returns undefined when it cannot take these arguments as
 * wire values: the membrane then calls it with host values.
 */
export type WireCall = (args: readonly Wire[], side: WireSide) => Promise<WireAnswer> | undefined;

/**
 * Call a service of this process with host arguments, as calling the
 * object would (its `this` is not used), and hand its outcome to `settle`:
 * once, as a host value, never before the call has returned (a refusal,
 * such as an argument that cannot cross, one promise job later, as the
 * rejected promise of a call would have come).
 */
export type LocalCall = (hostArgs: readonly unknown[], settle: (ok: boolean, value: unknown) => void) => void;

export class Directory {
  readonly #origins = new WeakMap<object, ExportRef>();
  readonly #wireCalls = new WeakMap<object, WireCall>();
  readonly #localCalls = new WeakMap<object, LocalCall>();

  /** `object`, when called, is a call on a service of this process, which `call` makes directly. */
  registerLocalCall(object: object, call: LocalCall): void {
    this.#localCalls.set(object, call);
  }

  localCallOf(value: unknown): LocalCall | undefined {
    return (typeof value === 'object' || typeof value === 'function') && value !== null ? this.#localCalls.get(value) : undefined;
  }

  /** `object`, when called, takes its arguments as wire values through `call`. */
  registerWireCall(object: object, call: WireCall): void {
    this.#wireCalls.set(object, call);
  }

  wireCallOf(value: unknown): WireCall | undefined {
    return (typeof value === 'object' || typeof value === 'function') && value !== null ? this.#wireCalls.get(value) : undefined;
  }

  register(proxy: object, ref: ExportRef): void {
    this.#origins.set(proxy, ref);
  }

  originOf(value: unknown): ExportRef | undefined {
    return (typeof value === 'object' || typeof value === 'function') && value !== null ? this.#origins.get(value) : undefined;
  }
}
