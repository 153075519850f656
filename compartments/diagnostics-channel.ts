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
 * `unsubscribe`, `hasSubscribers`, `Channel`, and `tracingChannel(name)`
 * (Node 20's TracingChannel: its five channels, `traceSync`,
 * `tracePromise`, `traceCallback`; lru-cache 11 imports it). Not offered:
 * stores (`bindStore` binds nothing).
 */
import { invalidArgType, validateFunction } from './node-style-errors.js';

type Subscriber = (message: unknown, name: string | symbol) => void;

/** The five channels of a TracingChannel, in Node's order. */
const traceEvents = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const;
type TraceEvent = (typeof traceEvents)[number];


/** A service's `diagnostics_channel` namespace; a subscriber's error goes to `onUncaught` (the service's console). */
export const makeDiagnosticsChannel = (onUncaught: (error: unknown, where: string) => void): Record<string, unknown> => {
  class Channel {
    readonly name: string | symbol;
    readonly #subscribers: Subscriber[] = [];

    constructor(name: string | symbol) {
      if (typeof name !== 'string' && typeof name !== 'symbol') throw invalidArgType('channel', 'one of type string or symbol', name);
      this.name = name;
    }

    get hasSubscribers(): boolean {
      return this.#subscribers.length > 0;
    }

    subscribe(subscriber: Subscriber): void {
      validateFunction(subscriber, 'subscription');
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

  // Node 20's TracingChannel (lib/diagnostics_channel.js), over this registry's channels.
  const channelFor = (nameOrChannels: unknown, event: TraceEvent): Channel => {
    if (typeof nameOrChannels === 'string') return channel(`tracing:${nameOrChannels}:${event}`);
    if (typeof nameOrChannels === 'object' && nameOrChannels !== null) {
      const given = (nameOrChannels as Record<string, unknown>)[event];
      // Node's Channel[Symbol.hasInstance] reads the prototype of what it is given, and so throws on a missing channel.
      if (given === undefined || given === null) throw new TypeError('Cannot convert undefined or null to object');
      if (given instanceof Channel) return given;
      throw invalidArgType(`nameOrChannels.${event}`, 'an instance of Channel', given);
    }
    throw invalidArgType('nameOrChannels', 'of type string or an instance of TracingChannel or Object', nameOrChannels);
  };
  type Context = Record<string, unknown>;
  class TracingChannel {
    declare readonly start: Channel;
    declare readonly end: Channel;
    declare readonly asyncStart: Channel;
    declare readonly asyncEnd: Channel;
    declare readonly error: Channel;

    constructor(nameOrChannels: unknown) {
      for (const event of traceEvents) Object.defineProperty(this, event, { value: channelFor(nameOrChannels, event) });
    }

    get hasSubscribers(): boolean {
      return this.start.hasSubscribers || this.end.hasSubscribers || this.asyncStart.hasSubscribers || this.asyncEnd.hasSubscribers || this.error.hasSubscribers;
    }

    subscribe(handlers: Partial<Record<TraceEvent, Subscriber>>): void {
      for (const event of traceEvents) if (handlers[event]) this[event].subscribe(handlers[event]);
    }

    unsubscribe(handlers: Partial<Record<TraceEvent, Subscriber>>): boolean {
      let done = true;
      for (const event of traceEvents) if (handlers[event] && !this[event].unsubscribe(handlers[event])) done = false;
      return done;
    }

    traceSync<T>(fn: (...args: unknown[]) => T, context: Context = {}, thisArg?: unknown, ...args: unknown[]): T {
      if (!this.hasSubscribers) return Reflect.apply(fn, thisArg, args);
      return this.#traced(context, () => {
        const result = Reflect.apply(fn, thisArg, args);
        context.result = result;
        return result;
      });
    }

    /**
     * Run `body` in the start channel's stores, as Node's tracing does: an
     * error it throws is published on `error` (and rethrown), and `end` is
     * published when it returns or throws.
     */
    #traced<R>(context: Context, body: () => R): R {
      const { start, end, error } = this;
      return start.runStores(context, () => {
        try {
          return body();
        } catch (err) {
          context.error = err;
          error.publish(context);
          throw err;
        } finally {
          end.publish(context);
        }
      });
    }

    tracePromise<T>(fn: (...args: unknown[]) => PromiseLike<T> | T, context: Context = {}, thisArg?: unknown, ...args: unknown[]): Promise<T> {
      if (!this.hasSubscribers) return Reflect.apply(fn, thisArg, args) as Promise<T>;
      const { asyncStart, asyncEnd, error } = this;
      const reject = (err: unknown): Promise<never> => {
        context.error = err;
        error.publish(context);
        asyncStart.publish(context);
        asyncEnd.publish(context);
        return Promise.reject(err);
      };
      const resolve = (result: T): T => {
        context.result = result;
        asyncStart.publish(context);
        asyncEnd.publish(context);
        return result;
      };
      return this.#traced(context, () => {
        let promise = Reflect.apply(fn, thisArg, args) as Promise<T>;
        if (!(promise instanceof Promise)) promise = Promise.resolve(promise);
        return promise.then(resolve, reject);
      });
    }

    traceCallback<T>(fn: (...args: unknown[]) => T, position = -1, context: Context = {}, thisArg?: unknown, ...args: unknown[]): T {
      if (!this.hasSubscribers) return Reflect.apply(fn, thisArg, args);
      const { asyncStart, asyncEnd, error } = this;
      const callback = args.at(position);
      validateFunction(callback, 'callback');
      function wrappedCallback(this: unknown, err: unknown, res: unknown): void {
        if (err) {
          context.error = err;
          error.publish(context);
        } else {
          context.result = res;
        }
        const callArgs = arguments;
        asyncStart.runStores(context, () => {
          try {
            return Reflect.apply(callback as (...a: unknown[]) => unknown, this, callArgs);
          } finally {
            asyncEnd.publish(context);
          }
        });
      }
      args.splice(position, 1, wrappedCallback);
      return this.#traced(context, () => Reflect.apply(fn, thisArg, args));
    }
  }

  return {
    Channel,
    channel,
    tracingChannel: (nameOrChannels: unknown) => new TracingChannel(nameOrChannels),
    hasSubscribers: (name: string | symbol) => channels.get(name)?.hasSubscribers ?? false,
    subscribe: (name: string | symbol, subscriber: Subscriber) => channel(name).subscribe(subscriber),
    unsubscribe: (name: string | symbol, subscriber: Subscriber) => channel(name).unsubscribe(subscriber),
  };
};
