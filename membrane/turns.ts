/**
 * Turns: deliveries run one at a time, and the service's microtasks drain
 * before the next delivery starts. That turn discipline is what makes the
 * order of deliveries the whole story: the log records it, replay
 * reproduces it.
 *
 * How a turn's end is found: after a delivery runs, a microtask queued
 * once it has run asks for a `process.nextTick`. Node runs
 * nextTick callbacks only once V8's microtask queue is empty (its tick loop
 * is "run every queued tick, then drain every microtask, then again if a
 * tick was queued meanwhile"), so when that tick runs every microtask of
 * the turn has run, however many it chained. Services queue on the same
 * tick queue (their `process.nextTick`, through `nextTick` here, so that
 * it runs before promise jobs as in Node): a service tick queued after ours
 * has not run yet, and one that ran before ours may have queued microtasks
 * that have not. So the turn ends only at a tick of ours with no service
 * tick pending and none run since the microtask that queued it; otherwise
 * the check goes round again (microtask, then tick). The next delivery then
 * starts right there: a turn costs a microtask and a tick, not a trip round
 * the event loop (setImmediate, ~20 us per call across two membranes). To
 * let I/O in, every `BURST` turns the next one waits for setImmediate.
 * Where that microtask sits in the queue does not matter, only that it is
 * one: the tick it asks for runs after the whole queue has drained, and
 * if it ran before some of the service's microtasks, those that queued a
 * tick only make the check go round again. So the services whose turns
 * ran in one tick share one (afterMicrotask), as they share the tick.
 *
 * A delivery to an idle service (its last turn over, nothing queued) needs
 * no such check: none of its code has run since its last turn ended, so it
 * has no microtask or tick pending. It only has to start in a tick of its
 * own (a delivery always starts on the tick queue, so that its
 * `process.nextTick` callbacks run before its promise jobs, at build time
 * and on replay alike) and not on its caller's stack. So it asks for the
 * next tick straight away, and when that is asked during the tick that
 * runs the turns (a service calling an idle one), it starts in that same
 * tick callback, after the turn that called it has returned. A call from
 * one service to an idle other then costs no extra drain of the microtask
 * queue.
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

/**
 * One tick serves every Turns of the process that asked in the same drain
 * of the microtask queue: under lockdown a `process.nextTick` costs about
 * 0.4 us (Node keeps its async context in typed arrays, whose stores
 * lockdown slows), and a call across two services asks for several in each
 * drain. Each asker's check is its own: a tick queued earlier than the one
 * it would have queued only makes it look again (see #drained), never end
 * a turn early, because every callback here still runs after the drain in
 * which it asked.
 */
let drainAskers: Array<() => void> = [];
let spareAskers: Array<() => void> = [];
let drainTickQueued = false;
/** The askers being run, while runDrainAskers runs: an idle service asking for a tick joins them (inTick). */
let runningAskers: Array<() => void> | undefined;

const runDrainAskers = (): void => {
  drainTickQueued = false;
  const askers = drainAskers;
  drainAskers = spareAskers;
  spareAskers = askers;
  runningAskers = askers;
  runAll(askers); // with those inTick appends meanwhile
  runningAskers = undefined;
};

/**
 * Run and remove every callback of `askers`. Taken off one by one, which
 * leaves the list empty for its next use (`length = 0` costs ~0.2 us under
 * lockdown) and runs those appended meanwhile. One that throws does not stop
 * the others: its error surfaces as it would have from a tick of its own.
 */
const runAll = (askers: Array<() => void>): void => {
  for (let asker = askers.shift(); asker !== undefined; asker = askers.shift()) {
    try {
      asker();
    } catch (error) {
      process.nextTick(rethrow, error);
    }
  }
};

const rethrow = (error: unknown): never => {
  throw error;
};

/**
 * One promise job serves every Turns that asks for the check of its turn's
 * end in the same tick: each asks after its delivery has run, and the job
 * runs in the microtask queue that follows (see the header).
 */
let microtaskAskers: Array<() => void> = [];
let spareMicrotaskAskers: Array<() => void> = [];
let microtaskQueued = false;

const runMicrotaskAskers = (): void => {
  microtaskQueued = false;
  const askers = microtaskAskers;
  microtaskAskers = spareMicrotaskAskers;
  spareMicrotaskAskers = askers;
  runAll(askers);
};

/** Run `callback` in a promise job (with any other asker before that job runs). */
const afterMicrotask = (callback: () => void): void => {
  microtaskAskers.push(callback);
  if (microtaskQueued) return;
  microtaskQueued = true;
  void settled.then(runMicrotaskAskers);
};

/** Run `callback` on the tick queue once the microtask queue has drained (with any other asker of this drain). */
const afterDrain = (callback: () => void): void => {
  drainAskers.push(callback);
  if (drainTickQueued) return;
  drainTickQueued = true;
  process.nextTick(runDrainAskers);
};

/**
 * Run `callback` on the tick queue, drained or not: in the tick callback
 * that runs the askers, after them, when it is running; else in the next
 * tick (shared with the askers of afterDrain, which a tick that runs
 * early only makes look again). For a service with nothing pending.
 */
const inTick = (callback: () => void): void => {
  if (runningAskers) runningAskers.push(callback);
  else afterDrain(callback);
};

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
  /** Service ticks queued and run so far, and the runs counted when our check was queued. */
  #ticksQueued = 0;
  #ticksRun = 0;
  #ticksRunAtCheck = 0;

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
    // In a turn whose code is running (a host function it called calls the service back): #tick asks for the check
    // of the turn's end once that code returns. A second check asked here ended the next turn as soon as the first
    // had started it, its microtasks still pending (found by the adversarial review: the replay diverged).
    if (this.#scheduled || this.#stopped || this.#inTurn) return;
    this.#scheduled = true;
    // Idle: nothing of the service is pending (see the header), so the delivery only waits for a tick.
    this.#ticksRunAtCheck = this.#ticksRun;
    inTick(this.#drained);
  }

  /**
   * The service's `process.nextTick`: `callback` runs on the host's tick
   * queue (before promise jobs, as in Node), counted so that a turn does
   * not end while one is pending or its microtasks may be.
   */
  nextTick(callback: () => void): void {
    this.#ticksQueued += 1;
    process.nextTick(this.#runTick, callback);
  }

  readonly #runTick = (callback: () => void): void => {
    this.#ticksRun += 1;
    callback();
  };

  /** Queued behind the microtasks of the turn: ticks run once they have all drained. */
  readonly #afterMicrotasks = (): void => {
    this.#ticksRunAtCheck = this.#ticksRun;
    afterDrain(this.#drained);
  };

  readonly #drained = (): void => {
    if (this.#ticksQueued !== this.#ticksRun || this.#ticksRunAtCheck !== this.#ticksRun) {
      // A service tick is still queued behind ours, or one ran and its microtasks may not have: check again.
      afterMicrotask(this.#afterMicrotasks);
      return;
    }
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
    afterMicrotask(this.#afterMicrotasks);
  };

  #notifyIdle(): void {
    if (this.#idleWaiters.length === 0) return; // as after most turns: no list made for nobody
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
