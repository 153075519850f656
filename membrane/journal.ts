/**
 * The journal: the one interface between the membrane and the replay log.
 *
 * A journal *replays* while it has a log cursor with entries left, and is
 * *live* otherwise. Independently, it *records* when it has a writer. Build
 * time is live + recording; restore is replaying, then live; a durable live
 * journal (later) is replaying, then live + recording into a new log. Nothing
 * here assumes recording ends at build time.
 *
 * Replay checks every syscall against the next entry. The first divergence
 * is latched: every later journal operation throws the same error, so a
 * service that catches it cannot carry on in a state the log never saw.
 */
import {
  SnapshotError,
  SEED_BYTES,
  TAG_NOW,
  TAG_PERF,
  TAG_RANDOM,
  TAG_SEED,
  FORMAT_VERSION,
  describeEntry,
  isDelivery,
  wireEqual,
  wireDifference,
  type DeliveryEntry,
  type Entry,
  type LogCursor,
  type LogWriter,
  type Outcome,
  type Slot,
  type Wire,
} from '../replay-log/index.js';

/** Placeholder outcome for describing an attempted call. */
const RETURNED: Outcome = { type: 'return', value: undefined };

export interface JournalOptions {
  /** The service's name, for messages. */
  readonly service: string;
  /** Replay these entries first. */
  readonly replay?: LogCursor;
  /** Record every entry (build time, or a durable live journal). */
  readonly record?: LogWriter;
}

export class Journal {
  readonly service: string;
  #cursor: LogCursor | undefined;
  /** The format version of the log replayed (its header's), if it says. */
  readonly #replayVersion: number | undefined;
  #writer: LogWriter | undefined;
  #divergence: SnapshotError | undefined;
  #liveListeners: Array<() => void> = [];
  #divergenceListeners: Array<(error: SnapshotError) => void> = [];
  /** The last delivery, described only when a message needs it. */
  #lastDeliveryEntry: DeliveryEntry | undefined;

  #lastDelivery(): string {
    return this.#lastDeliveryEntry ? describeEntry(this.#lastDeliveryEntry) : 'none yet';
  }

  constructor(options: JournalOptions) {
    this.service = options.service;
    this.#cursor = options.replay && !options.replay.done ? options.replay : undefined;
    this.#replayVersion = options.replay?.reader.header?.version;
    this.#writer = options.record;
  }

  /**
   * The log format version the service's own nondeterminism must follow:
   * while it replays, the replayed log's (a log of an older version is
   * replayed as that version's build made it: clock.ts's Math.random), and
   * FORMAT_VERSION otherwise (recording, live).
   */
  get formatVersion(): number {
    return this.#cursor ? (this.#replayVersion ?? FORMAT_VERSION) : FORMAT_VERSION;
  }

  /** True while entries are answered from the log. */
  get replaying(): boolean {
    return this.#cursor !== undefined;
  }

  get recording(): boolean {
    return this.#writer !== undefined;
  }

  get divergence(): SnapshotError | undefined {
    return this.#divergence;
  }

  /** Index of the next event (replay) or events recorded so far. */
  get index(): number {
    return this.#cursor ? this.#cursor.index : (this.#writer?.events ?? 0);
  }

  onLive(listener: () => void): void {
    this.#liveListeners.push(listener);
  }

  onDivergence(listener: (error: SnapshotError) => void): void {
    this.#divergenceListeners.push(listener);
  }

  /** Start recording from now on (a durable journal after restore). */
  attachWriter(writer: LogWriter | undefined): void {
    this.#writer = writer;
  }

  // ---- fast kinds ---------------------------------------------------------

  now(real: () => number): number {
    return this.#clock(TAG_NOW, 'Date.now()', real);
  }

  perf(real: () => number): number {
    return this.#clock(TAG_PERF, 'performance.now()', real);
  }

  #clock(tag: typeof TAG_NOW | typeof TAG_PERF, what: string, real: () => number): number {
    const cursor = this.#cursor;
    if (cursor) {
      if (cursor.tag === tag) return cursor.takeFloat();
      return this.diverge(what);
    }
    this.#check();
    const value = real();
    this.#writer?.clock(tag, value);
    return value;
  }

  /** A seed for the service's Math.random generator. */
  seed(real: () => Uint8Array): Uint8Array {
    const cursor = this.#cursor;
    if (cursor) {
      if (cursor.tag === TAG_SEED) {
        const entry = cursor.next();
        if (entry.kind === 'seed') return entry.seed;
      }
      return this.diverge('Math.random() (seeding)');
    }
    this.#check();
    const seed = real();
    if (seed.byteLength !== SEED_BYTES) throw new RangeError('bad seed');
    this.#writer?.seed(seed);
    return seed;
  }

  /** Fill `target` with randomness: recorded bytes on replay, `real` otherwise. */
  randomFill(target: Uint8Array, real: (target: Uint8Array) => void): void {
    const cursor = this.#cursor;
    if (cursor) {
      if (cursor.tag === TAG_RANDOM && cursor.takeRandomInto(target)) return;
      this.diverge(`crypto random ${target.byteLength} bytes`);
    }
    this.#check();
    real(target);
    this.#writer?.random(target);
  }

  // ---- generic syscalls -----------------------------------------------------

  /** A call to a host capability by stable name. `perform` runs only when live. */
  sys(op: string, args: readonly Wire[], perform: () => Outcome): Outcome {
    const cursor = this.#cursor;
    if (cursor) {
      const entry = this.#peekSyscall(() => ({ kind: 'sys', op, args, outcome: RETURNED }));
      if (entry.kind === 'sys' && entry.op === op && wireEqual(entry.args, args)) {
        cursor.next();
        return entry.outcome;
      }
      return this.diverge({ kind: 'sys', op, args, outcome: RETURNED });
    }
    this.#check();
    const outcome = perform();
    this.#writer?.sys(op, args, outcome);
    return outcome;
  }

  /** A call on an outside object the service holds by reference. */
  send(target: Slot, method: string | null, args: readonly Wire[], perform: () => Outcome): Outcome {
    const cursor = this.#cursor;
    if (cursor) {
      const entry = this.#peekSyscall(() => ({ kind: 'send', target, method, args, outcome: RETURNED }));
      if (entry.kind === 'send' && entry.target.side === target.side && entry.target.id === target.id && entry.method === method && wireEqual(entry.args, args)) {
        cursor.next();
        return entry.outcome;
      }
      return this.diverge({ kind: 'send', target, method, args, outcome: RETURNED });
    }
    this.#check();
    const outcome = perform();
    this.#writer?.entry({ kind: 'send', target, method, args, outcome });
    return outcome;
  }

  /** The service's answer to a call. */
  ret(answer: number, ok: boolean, value: Wire): void {
    const cursor = this.#cursor;
    if (cursor) {
      const entry = this.#peekSyscall(() => ({ kind: 'ret', answer, ok, value }));
      if (entry.kind === 'ret' && entry.answer === answer && entry.ok === ok && wireEqual(entry.value, value)) {
        cursor.next();
        return;
      }
      this.diverge({ kind: 'ret', answer, ok, value });
    }
    this.#check();
    this.#writer?.entry({ kind: 'ret', answer, ok, value });
  }

  // ---- deliveries -------------------------------------------------------------

  /**
   * At a turn boundary while replaying: the next recorded delivery. Anything
   * else means the service skipped a syscall it made at build time.
   */
  nextDelivery(): DeliveryEntry {
    const cursor = this.#cursor as LogCursor;
    const entry = cursor.peek();
    if (!isDelivery(entry)) {
      return this.diverge(`nothing: the service ended its turn (after ${this.#lastDelivery()})`);
    }
    cursor.next();
    this.#lastDeliveryEntry = entry;
    return entry;
  }

  /** A delivery is about to run (recorded when recording). */
  delivered(entry: DeliveryEntry): void {
    this.#check();
    this.#lastDeliveryEntry = entry;
    this.#writer?.entry(entry);
  }

  /** A turn ended: flush what it recorded; if the log is used up, go live. */
  endTurn(): void {
    this.#writer?.flush();
    const cursor = this.#cursor;
    if (cursor && cursor.done && !this.#divergence) {
      this.#cursor = undefined;
      for (const listener of this.#liveListeners) listener();
    }
  }

  /** Raise (and latch) a divergence: the service did `actual` where the log says otherwise. */
  diverge(actual: Entry | string): never {
    if (this.#divergence) throw this.#divergence;
    const cursor = this.#cursor;
    let expected = 'the end of the log';
    let expectedEntry: Entry | undefined;
    if (cursor && !cursor.done) {
      try {
        expectedEntry = cursor.peek();
        expected = describeEntry(expectedEntry, true);
      } catch (cause) {
        expected = `an undecodable entry (${String(cause)})`;
      }
    }
    const actualText = typeof actual === 'string' ? actual : describeEntry(actual, true);
    const [shownExpected, shownActual] = focus(expected, actualText);
    // Two renderings that read the same (an error's stack, what the rendering leaves out): where the entries differ.
    const difference = shownExpected === shownActual && expectedEntry !== undefined && typeof actual !== 'string' ? wireDifference(expectedEntry, actual) : undefined;
    const differs = difference ? `  they differ at ${difference.path || 'the entry itself'}: expected ${difference.expected}, actual ${difference.actual}\n` : '';
    const index = cursor?.index ?? this.index;
    const stack = serviceStack(new Error('here').stack ?? '');
    const error = new SnapshotError(
      'REPLAY_DIVERGED',
      `service "${this.service}" diverged from its replay log at event ${index}:\n  expected: ${shownExpected}\n  actual:   ${shownActual}\n${differs}  last delivery: ${this.#lastDelivery()}\n` +
        `The service's code or inputs differ from the build (changed sources, a different archive, or nondeterminism the membrane does not see). Rebuild the snapshot.` +
        (stack ? `\n  service stack:\n${stack}` : ''),
      { details: { service: this.service, index, expected, actual: actualText, stack } },
    );
    this.#divergence = error;
    for (const listener of this.#divergenceListeners) listener(error);
    throw error;
  }

  #peekSyscall(what: () => Entry): Entry {
    const cursor = this.#cursor as LogCursor;
    if (this.#divergence) throw this.#divergence;
    if (cursor.done) return this.diverge(what());
    return cursor.peek();
  }

  #check(): void {
    if (this.#divergence) throw this.#divergence;
  }
}

const SHOWN = 160;

/** Both descriptions cut to a window around their first difference, so it shows. */
const focus = (expected: string, actual: string): [string, string] => {
  let at = 0;
  while (at < expected.length && at < actual.length && expected[at] === actual[at]) at += 1;
  const from = at > SHOWN / 2 ? at - 40 : 0;
  const cut = (text: string) => `${from > 0 ? '…' : ''}${text.slice(from, from + SHOWN)}${text.length > from + SHOWN ? '…' : ''}`;
  return [cut(expected), cut(actual)];
};

/** The frames of a stack that belong to service code (not this library, not Node). */
const serviceStack = (stack: string): string =>
  stack
    .split('\n')
    .slice(1)
    .filter(line => !/membrane-snapshot\/(dist|membrane|compartments|lib|replay-log)\/|node:internal|\/(membrane|compartments|replay-log|lib)\/[^/]+\.(ts|js|cjs)|@endo\/|\/ses\//.test(line))
    .slice(0, 12)
    .map(line => `    ${line.trim()}`)
    .join('\n');
