/**
 * Turns: deliveries run one at a time, each in its own macrotask, so that
 * the service's microtasks drain before the next delivery starts. That turn
 * discipline is what makes the order of deliveries the whole story: the log
 * records it, replay reproduces it.
 *
 * While the journal replays, deliveries come from the log and host-queued
 * ones wait; when the log runs out the journal goes live and the queue runs.
 */
import type { DeliveryEntry } from '../replay-log/index.js';
import type { Journal } from './journal.js';

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
    setImmediate(this.#tick);
  }

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
    setImmediate(this.#tick);
  };

  #notifyIdle(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
