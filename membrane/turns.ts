/**
 * Turns: deliveries run one at a time, and the service's microtasks drain
 * before the next delivery starts. That turn discipline is what makes the
 * order of deliveries the whole story: the log records it, replay
 * reproduces it.
 *
 * How a turn's end is found: after a delivery runs, a microtask queued
 * behind the service's own asks for a `process.nextTick`. Node runs
 * nextTick callbacks only once V8's microtask queue is empty (its tick loop
 * is "run the ticks, then drain every microtask, then again if a tick was
 * queued meanwhile"), and services cannot reach the real nextTick (their
 * `process.nextTick` is a microtask), so when that tick runs every microtask
 * of the turn has run, however many it chained. The next delivery then
 * starts right there: a turn costs a microtask and a tick, not a trip round
 * the event loop (setImmediate, ~20 us per call across two membranes). To
 * let I/O in, every `BURST` turns the next one waits for setImmediate.
 *
 * While the journal replays, deliveries come from the log and host-queued
 * ones wait; when the log runs out the journal goes live and the queue runs.
 */
import type { DeliveryEntry } from '../replay-log/index.js';
import type { Journal } from './journal.js';

/** Turns in a row started from the tick queue before one waits for the event loop. */
const BURST = 256;
/** A settled promise: `then` on it queues a plain microtask (Node's queueMicrotask adds an AsyncResource per call). */
const settled = Promise.resolve();

export class Turns {
  readonly #journal: Journal;
  readonly #perform: (entry: DeliveryEntry) => void;
  readonly #fatal: (error: unknown) => void;
  readonly #queue: DeliveryEntry[] = [];
  #head = 0;
  #scheduled = false;
  #inTurn = false;
  #stopped: unknown;
  #idleWaiters: Array<() => void> = [];
  #delivered = 0;
  #burst = 0;

  constructor(journal: Journal, perform: (entry: DeliveryEntry) => void, fatal: (error: unknown) => void) {
    this.#journal = journal;
    this.#perform = perform;
    this.#fatal = fatal;
  }

  /** Deliveries run so far. */
  get delivered(): number {
    return this.#delivered;
  }

  /** Deliveries waiting to run. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  get idle(): boolean {
    return !this.#scheduled && !this.#inTurn && this.queued === 0 && !this.#journal.replaying;
  }

  enqueue(entry: DeliveryEntry): void {
    if (this.#stopped) return;
    this.#queue.push(entry);
    this.#schedule();
  }

  /** Start replaying the journal's deliveries. */
  replay(): void {
    this.#schedule();
  }

  /** Resolves the next time no delivery is queued or running. */
  whenIdle(): Promise<void> {
    if (this.idle || this.#stopped) return Promise.resolve();
    return new Promise(resolve => this.#idleWaiters.push(resolve));
  }

  stop(reason: unknown): void {
    this.#stopped = reason ?? new Error('stopped');
    this.#queue.length = 0;
    this.#head = 0;
    this.#notifyIdle();
  }

  #schedule(): void {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    void settled.then(this.#afterMicrotasks);
  }

  /** Queued behind the microtasks of the turn: ticks run once they have all drained. */
  readonly #afterMicrotasks = (): void => {
    process.nextTick(this.#drained);
  };

  readonly #drained = (): void => {
    if (this.#burst < BURST) {
      this.#burst += 1;
      this.#tick();
    } else {
      this.#burst = 0;
      setImmediate(this.#fromLoop);
    }
  };

  readonly #fromLoop = (): void => {
    this.#burst = 0;
    this.#tick();
  };

  readonly #tick = (): void => {
    this.#scheduled = false;
    if (this.#stopped) return;
    if (this.#inTurn) {
      // The previous delivery's microtasks have drained: its turn is over.
      this.#inTurn = false;
      try {
        this.#journal.endTurn();
      } catch (error) {
        this.#fatal(error);
        return;
      }
    }
    let entry: DeliveryEntry | undefined;
    try {
      if (this.#journal.replaying) {
        entry = this.#journal.nextDelivery();
      } else if (this.#head < this.#queue.length) {
        entry = this.#queue[this.#head++];
        if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
          this.#queue.splice(0, this.#head);
          this.#head = 0;
        }
        this.#journal.delivered(entry);
      }
    } catch (error) {
      this.#fatal(error);
      return;
    }
    if (!entry) {
      this.#notifyIdle();
      return;
    }
    this.#inTurn = true;
    this.#delivered += 1;
    try {
      this.#perform(entry);
    } catch (error) {
      this.#fatal(error);
      return;
    }
    this.#scheduled = true;
    void settled.then(this.#afterMicrotasks);
  };

  #notifyIdle(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
