/**
 * `diagnostics_channel` inside a service: the service's own registry of
 * named channels (got publishes its request events on some). Node's
 * registry is process-wide, so a subscriber there would see the host's and
 * every other service's messages, and a service's subscriber would run
 * inside host code: each service gets one of its own instead, in which
 * only the service publishes and subscribes.
 *
 * Offered: `channel(name)` (a Channel with `name`, `hasSubscribers`,
 * `subscribe`, `unsubscribe`, `publish`, `runStores`), `subscribe`,
 * `unsubscribe`, `hasSubscribers`, `Channel`. Not offered: `tracingChannel`
 * and stores (`bindStore` binds nothing).
 */
type Subscriber = (message: unknown, name: string | symbol) => void;

/** A service's `diagnostics_channel` namespace; a subscriber's error goes to `onUncaught` (the service's console). */
export const makeDiagnosticsChannel = (onUncaught: (error: unknown, where: string) => void): Record<string, unknown> => {
  class Channel {
    readonly name: string | symbol;
    readonly #subscribers: Subscriber[] = [];

    constructor(name: string | symbol) {
      if (typeof name !== 'string' && typeof name !== 'symbol') throw new TypeError('The "channel" argument must be one of type string or symbol.');
      this.name = name;
    }

    get hasSubscribers(): boolean {
      return this.#subscribers.length > 0;
    }

    subscribe(subscriber: Subscriber): void {
      if (typeof subscriber !== 'function') throw new TypeError('The "subscription" argument must be of type function.');
      this.#subscribers.push(subscriber);
    }

    unsubscribe(subscriber: Subscriber): boolean {
      const index = this.#subscribers.indexOf(subscriber);
      if (index === -1) return false;
      this.#subscribers.splice(index, 1);
      return true;
    }

    publish(message: unknown): void {
      for (const subscriber of [...this.#subscribers]) {
        try {
          subscriber(message, this.name);
        } catch (error) {
          // As in Node, publishing goes on; the error is reported as uncaught.
          onUncaught(error, `diagnostics_channel subscriber of ${String(this.name)}`);
        }
      }
    }

    bindStore(): void {}

    unbindStore(): boolean {
      return false;
    }

    runStores<T>(message: unknown, fn: (...args: unknown[]) => T, thisArg?: unknown, ...args: unknown[]): T {
      this.publish(message);
      return Reflect.apply(fn, thisArg, args);
    }
  }
  const channels = new Map<string | symbol, Channel>();
  const channel = (name: string | symbol): Channel => {
    let found = channels.get(name);
    if (!found) {
      found = new Channel(name);
      channels.set(name, found);
    }
    return found;
  };
  return {
    Channel,
    channel,
    hasSubscribers: (name: string | symbol) => channels.get(name)?.hasSubscribers ?? false,
    subscribe: (name: string | symbol, subscriber: Subscriber) => channel(name).subscribe(subscriber),
    unsubscribe: (name: string | symbol, subscriber: Subscriber) => channel(name).unsubscribe(subscriber),
  };
};
