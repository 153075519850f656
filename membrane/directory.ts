/**
 * The directory of service references in one process. Every membrane
 * registers the host-side proxies it hands out (a service's exported
 * objects), so that when one service's proxy crosses into another service,
 * the receiving membrane knows it is a reference to "export #M of service
 * db" and not an anonymous host object. That is what lets a restored app
 * re-bind its references between services by name.
 */

/** Where a service reference points: an exported object of a named service. */
export interface ExportRef {
  readonly service: string;
  readonly export: number;
  readonly iface: string;
}

export class Directory {
  readonly #origins = new WeakMap<object, ExportRef>();

  register(proxy: object, ref: ExportRef): void {
    this.#origins.set(proxy, ref);
  }

  originOf(value: unknown): ExportRef | undefined {
    return (typeof value === 'object' || typeof value === 'function') && value !== null ? this.#origins.get(value) : undefined;
  }
}
