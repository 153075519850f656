/**
 * Transports carry calls from one service to another service's exports.
 * The membrane only ever sees host objects; a transport decides what host
 * object stands for "export #M of service db": today the service's own
 * proxy when it runs in this process, or a stub that fails fast with
 * SERVICE_UNAVAILABLE. The NATS transport (transport-nats.ts) implements
 * the same interface between hosts.
 */
import { SnapshotError } from '../replay-log/index.js';
import type { Directory, ExportRef, Membrane } from '../membrane/index.js';

export interface Transport {
  /** A host object whose calls reach `ref`; calls reject with SERVICE_UNAVAILABLE when it cannot. */
  connect(ref: ExportRef): object;
  /**
   * Called once before any `connect`, with the directory of this process's
   * service references (so the transport's stand-ins are recognised as
   * references by every membrane here).
   */
  attach?(directory: Directory): void;
  /** Start answering calls for the services restored in this process (once they are live). */
  serve?(local: ReadonlyMap<string, Membrane>): Promise<void>;
  /** Stop answering, finish calls being answered, cancel calls waiting, disconnect. */
  close?(): Promise<void>;
}

const unavailable = (ref: ExportRef, transport: string): SnapshotError =>
  new SnapshotError(
    'SERVICE_UNAVAILABLE',
    `service "${ref.service}" is not reachable (${ref.iface || `export #${ref.export}`}): it is not restored in this process and the ${transport} transport has no other route to it. Restore it here (drop --service, or add --service ${ref.service}).`,
    { details: { service: ref.service, export: ref.export } },
  );

/** A stand-in that rejects every call at once: unreachable services never hang a caller. */
export const unreachable = (ref: ExportRef, transport: string): object => {
  const fail = () => Promise.reject(unavailable(ref, transport));
  return new Proxy(function unreachableService() {}, {
    apply: fail,
    get: (_t, key) => (key === 'then' || typeof key === 'symbol' ? undefined : fail),
  });
};

/** Services restored in this process call each other through their membranes directly. */
export class InProcessTransport implements Transport {
  readonly #services = new Map<string, Membrane>();

  add(name: string, membrane: Membrane): void {
    this.#services.set(name, membrane);
  }

  connect(ref: ExportRef): object {
    const membrane = this.#services.get(ref.service);
    return membrane ? membrane.exportProxy(ref.export, ref.iface) : unreachable(ref, 'in-process');
  }
}
