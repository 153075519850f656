/**
 * `ReadableStream` for services: Node's, except `tee()` and `from()`.
 *
 * Node's `tee()` hands chunks to its branches through `process.nextTick`,
 * which no service's turn sees (compartments/timers.ts counts only the
 * service's own ticks): a turn could end with a teed read still on its way,
 * at a point that differs between the build and a replay, and the replay
 * diverges. `teeStream` does the same with promises only, so every step
 * stays in the turn that reads. `from()` builds a stream of this class, so
 * that its `tee()` is this one too.
 */
import { nameAs } from './errors.js';
import type { QueuingStrategy, UnderlyingByteSource, UnderlyingDefaultSource } from 'node:stream/web';
import { hardenSharedInternals } from './host-internals.js';

const HostReadableStream = ReadableStream;
// The tee reads its source through these, never through methods a service may have put on its stream.
const { getReader } = HostReadableStream.prototype as unknown as { getReader: (this: ReadableStream, options?: { mode: 'byob' }) => AnyReader };
const isLocked = Object.getOwnPropertyDescriptor(HostReadableStream.prototype, 'locked')?.get as (this: ReadableStream) => boolean;

let streams: 'cold' | 'hardening' | 'ready' = 'cold';

/**
 * Freeze what Node's web streams share with the host (host-internals.ts):
 * the internal classes of their read requests, async iterators, tees and
 * pipes, a TransformStream's internal sides, a TextDecoderStream's
 * decoder, found from samples. The stream classes themselves, and what
 * a pipe makes only a turn later, are frozen before any service runs
 * (web.ts: pureGlobals, hardenLateInternals); this part waits for the
 * first service that can hold a stream, as making the samples has V8
 * compile Node's stream code (about 10 ms of a restore that never reads
 * a stream).
 *
 * Everything that can hand a service a stream or a stream class calls it
 * first: the stream globals of every compartment (endowments.ts:
 * `defineLazyGlobal`), `stream/web`, Blob#stream (web.ts), and every
 * GuestReadableStream (fetch bodies, `Readable.toWeb`, `ReadableStream.from`,
 * requests served). Once per process; synchronous; throws what the
 * hardening throws, and is tried again at the next call then.
 */
export const readyStreams = (): void => {
  if (streams !== 'cold') return; // 'hardening': the samples themselves make streams
  streams = 'hardening';
  try {
    hardenSharedInternals(streamSamples);
    streams = 'ready';
  } finally {
    if (streams === 'hardening') streams = 'cold';
  }
};

/** The samples of readyStreams: what a stream, its readers and controllers, and the streams made of it hand out. */
const streamSamples: ReadonlyArray<() => unknown> = [
  () => new Blob(['x']).stream(),
  () => new Blob(['x']).stream().getReader(),
  () => new HostReadableStream({ start: controller => controller.enqueue(1) }),
  () => new HostReadableStream().values(),
  () => new HostReadableStream().tee(),
  // A byte stream's tee (a Blob's stream is one) makes its branches of Node's InternalReadableByteStream, which no
  // other sample reaches (found by the adversarial review: its getReader hooked, every byte tee in the process read).
  () => new HostReadableStream({ type: 'bytes' }).tee(),
  // Node's own ReadableStream.from (Node 20.6; a service reaches it as the parent class's), over an array and an async iterable.
  () => (HostReadableStream as unknown as { from?: (source: unknown) => unknown }).from?.(['x']),
  () => (HostReadableStream as unknown as { from?: (source: unknown) => unknown }).from?.((async function* () {})()),
  () => new HostReadableStream({ type: 'bytes' }).getReader({ mode: 'byob' }),
  // Readers with a read pending hold Node's internal read requests (DefaultReadRequest, ReadIntoRequest,
  // the async iterator's), whose [kChunk] every read of the host's own streams calls.
  () => {
    const reader = new HostReadableStream().getReader();
    void reader.read();
    return reader;
  },
  () => {
    const reader = new HostReadableStream({ type: 'bytes' }).getReader({ mode: 'byob' });
    void reader.read(new Uint8Array(1));
    return reader;
  },
  () => {
    const stream = new HostReadableStream();
    const iterator = stream.values();
    void iterator.next();
    return [stream, iterator];
  },
  () => new WritableStream().getWriter(),
  () => new TransformStream(),
  () => new HostReadableStream().pipeThrough(new TransformStream()),
  // A strategy's size is a getter (not walked) returning one function for the whole process.
  () => [new CountQueuingStrategy({ highWaterMark: 1 }).size, new ByteLengthQueuingStrategy({ highWaterMark: 1 }).size],
  () => new TextEncoderStream(),
  () => new TextDecoderStream(),
];

/** A promise and what settles it (the Streams standard's "a new promise"). */
const deferred = <T>(): { promise: Promise<T>; resolve: (value: T | PromiseLike<T>) => void } => {
  let resolve!: (value: T | PromiseLike<T>) => void;
  const promise = new Promise<T>(r => (resolve = r));
  return { promise, resolve };
};

/**
 * The cancel algorithms of a tee's two branches: each settles only once
 * both branches are cancelled, the source then cancelled with both reasons,
 * `[reason1, reason2]`, through `cancelSource` (the tee's reader of that
 * moment). `canceled[i]` says whether branch i was; `cancelled` settles the
 * branches' promise early (the source closed or errored).
 */
const teeCancellation = (cancelSource: (reasons: unknown[]) => Promise<void>) => {
  const canceled = [false, false];
  const reasons: unknown[] = [undefined, undefined];
  const cancelled = deferred<void>();
  const cancel =
    (i: 0 | 1) =>
    (reason: unknown): Promise<void> => {
      canceled[i] = true;
      reasons[i] = reason;
      if (canceled[1 - i]) cancelled.resolve(cancelSource([reasons[0], reasons[1]]));
      return cancelled.promise;
    };
  return { canceled, cancelled, cancel };
};

/** Whether `stream` is a readable byte stream (only those give a BYOB reader). `stream` is not locked. */
const isByteStream = (stream: ReadableStream): boolean => {
  try {
    getReader.call(stream, { mode: 'byob' }).releaseLock();
    return true;
  } catch {
    return false;
  }
};

/**
 * `stream.tee()` as Node 20 has it (lib/internal/webstreams/readablestream.js:
 * readableStreamDefaultTee, and readableByteStreamTee for a byte stream,
 * which follow https://streams.spec.whatwg.org/#readable-stream-tee), on the
 * public API, with promises only: Node's default tee closes its branches on
 * a `process.nextTick`, which no service's turn sees (see above).
 *
 * As the standard and Node: the branches are of `Make` (byte streams for a
 * byte stream, which give BYOB readers; the second branch of a byte tee
 * gets copies of the chunks), they pull as soon as they are made (a default
 * branch's high-water mark is 1), an error of the source errors both at
 * once, and a branch's `cancel()` settles only when both are cancelled, the
 * source then cancelled with the reasons of both (`[reason1, reason2]`).
 * Throws Node's TypeError when `stream` is locked.
 */
export const teeStream = <T>(stream: ReadableStream<T>, Make: typeof ReadableStream = HostReadableStream): [ReadableStream<T>, ReadableStream<T>] => {
  if (!isLocked.call(stream) && isByteStream(stream)) return byteTee(stream as unknown as ReadableStream<Uint8Array>, Make) as unknown as [ReadableStream<T>, ReadableStream<T>];
  return defaultTee(stream, Make);
};

const defaultTee = <T>(stream: ReadableStream<T>, Make: typeof ReadableStream): [ReadableStream<T>, ReadableStream<T>] => {
  const reader = getReader.call(stream) as unknown as ReadableStreamDefaultReader<T>;
  // Node's readableStreamDefaultTee, which has no readAgain flag (a pull while a read is on its way is dropped,
  // the branch pulls again when it is read) and frees the read before the branches get the chunk.
  let reading = false;
  const { canceled, cancelled, cancel } = teeCancellation(reasons => reader.cancel(reasons));
  const controllers: Array<ReadableStreamDefaultController<T>> = [];
  const pull = (): Promise<void> => {
    if (reading) return Promise.resolve();
    reading = true;
    reader.read().then(
      ({ done, value }) => {
        reading = false;
        if (done) {
          // Node closes the branches on a process.nextTick (nodejs/node#39758); a microtask keeps it in the turn.
          for (const i of [0, 1]) if (!canceled[i]) controllers[i].close();
          if (!canceled[0] || !canceled[1]) cancelled.resolve();
          return;
        }
        for (const i of [0, 1]) if (!canceled[i]) controllers[i].enqueue(value);
      },
      () => {
        reading = false; // the source's error reaches the branches through reader.closed
      },
    );
    return Promise.resolve();
  };
  const branch = (i: 0 | 1): ReadableStream<T> =>
    new Make<T>({
      start: controller => {
        controllers[i] = controller;
      },
      pull,
      cancel: cancel(i),
    });
  const branches: [ReadableStream<T>, ReadableStream<T>] = [branch(0), branch(1)];
  reader.closed.then(undefined, (error: unknown) => {
    for (const controller of controllers) controller.error(error);
    if (!canceled[0] || !canceled[1]) cancelled.resolve();
  });
  return branches;
};

/** The byte stream's controller and reader shapes the byte tee uses (lib ES2022 does not declare them). */
interface ByteController {
  readonly byobRequest: { readonly view: Uint8Array | null; respond(bytes: number): void; respondWithNewView(view: Uint8Array): void } | null;
  enqueue(chunk: Uint8Array): void;
  close(): void;
  error(error: unknown): void;
}
interface AnyReader {
  read(view?: Uint8Array): Promise<{ done: boolean; value: Uint8Array | undefined }>;
  releaseLock(): void;
  cancel(reason: unknown): Promise<void>;
  readonly closed: Promise<void>;
}

/** A copy of a chunk's bytes, in a buffer of its own (the standard's CloneAsUint8Array). */
const cloneBytes = (chunk: Uint8Array): Uint8Array => new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength).slice();

const byteTee = (stream: ReadableStream<Uint8Array>, Make: typeof ReadableStream): [ReadableStream<Uint8Array>, ReadableStream<Uint8Array>] => {
  let reader = getReader.call(stream);
  let byob = false;
  let reading = false;
  const readAgain = [false, false];
  const { canceled, cancelled, cancel } = teeCancellation(reasons => reader.cancel(reasons));
  const controllers: ByteController[] = [];
  const errorBoth = (error: unknown): void => {
    for (const controller of controllers) controller.error(error);
  };
  const forwardReaderError = (thisReader: AnyReader): void => {
    thisReader.closed.then(undefined, (error: unknown) => {
      if (thisReader !== reader) return;
      errorBoth(error);
      if (!canceled[0] || !canceled[1]) cancelled.resolve();
    });
  };
  /** Copies the chunk for the other branch; an error copying errors both branches and cancels the source. */
  const cloneOrFail = (chunk: Uint8Array): Uint8Array | undefined => {
    try {
      return cloneBytes(chunk);
    } catch (error) {
      errorBoth(error);
      cancelled.resolve(reader.cancel(error));
      return undefined;
    }
  };
  const readAgainIfAsked = (): void => {
    if (readAgain[0]) void pull(0);
    else if (readAgain[1]) void pull(1);
  };
  const pullWithDefaultReader = (): void => {
    if (byob) {
      reader.releaseLock();
      reader = getReader.call(stream);
      byob = false;
      forwardReaderError(reader);
    }
    reader.read().then(
      ({ done, value }) => {
        reading = false;
        if (done) {
          for (const i of [0, 1]) if (!canceled[i]) controllers[i].close();
          for (const i of [0, 1]) controllers[i].byobRequest?.respond(0);
          if (!canceled[0] || !canceled[1]) cancelled.resolve();
          return;
        }
        readAgain[0] = readAgain[1] = false;
        const chunk = value as Uint8Array;
        let second = chunk;
        if (!canceled[0] && !canceled[1]) {
          const copy = cloneOrFail(chunk);
          if (copy === undefined) return;
          second = copy;
        }
        if (!canceled[0]) controllers[0].enqueue(chunk);
        if (!canceled[1]) controllers[1].enqueue(second);
        readAgainIfAsked();
      },
      () => {
        reading = false;
      },
    );
  };
  const pullWithByobReader = (view: Uint8Array, forBranch: 0 | 1): void => {
    if (!byob) {
      reader.releaseLock();
      reader = getReader.call(stream, { mode: 'byob' });
      byob = true;
      forwardReaderError(reader);
    }
    const other = (1 - forBranch) as 0 | 1;
    reader.read(view).then(
      ({ done, value }) => {
        reading = false;
        const byobCanceled = canceled[forBranch];
        const otherCanceled = canceled[other];
        if (done) {
          if (!byobCanceled) controllers[forBranch].close();
          if (!otherCanceled) controllers[other].close();
          if (value !== undefined) {
            if (!byobCanceled) controllers[forBranch].byobRequest?.respondWithNewView(value);
            if (!otherCanceled) controllers[other].byobRequest?.respond(0);
          }
          if (!byobCanceled || !otherCanceled) cancelled.resolve();
          return;
        }
        readAgain[0] = readAgain[1] = false;
        const chunk = value as Uint8Array;
        if (!otherCanceled) {
          const copy = cloneOrFail(chunk);
          if (copy === undefined) return;
          if (!byobCanceled) controllers[forBranch].byobRequest?.respondWithNewView(chunk);
          controllers[other].enqueue(copy);
        } else if (!byobCanceled) {
          controllers[forBranch].byobRequest?.respondWithNewView(chunk);
        }
        readAgainIfAsked();
      },
      () => {
        reading = false;
      },
    );
  };
  const pull = (i: 0 | 1): Promise<void> => {
    if (reading) {
      readAgain[i] = true;
      return Promise.resolve();
    }
    reading = true;
    const view = controllers[i].byobRequest?.view;
    if (view) pullWithByobReader(view, i);
    else pullWithDefaultReader();
    return Promise.resolve();
  };
  const branch = (i: 0 | 1): ReadableStream<Uint8Array> =>
    new (Make as unknown as new (source: object) => ReadableStream<Uint8Array>)({
      type: 'bytes',
      start: (controller: ByteController) => {
        controllers[i] = controller;
      },
      pull: () => pull(i),
      cancel: cancel(i),
    });
  const branches: [ReadableStream<Uint8Array>, ReadableStream<Uint8Array>] = [branch(0), branch(1)];
  forwardReaderError(reader);
  return branches;
};

type Source<T> = AsyncIterable<T> | Iterable<T | PromiseLike<T>>;

/** The ReadableStream class services get (hardened with the other globals, web.ts). */
export class GuestReadableStream<T = unknown> extends HostReadableStream<T> {
  // Node's parameters (ReadableStream.length is 0), after readyStreams: every stream this library makes for a service is one.
  constructor(underlyingSource?: UnderlyingDefaultSource<T>, strategy?: QueuingStrategy<T>);
  constructor(underlyingSource: UnderlyingByteSource, strategy?: { highWaterMark?: number });
  constructor(...args: unknown[]) {
    readyStreams();
    super(...(args as [UnderlyingDefaultSource<T>, QueuingStrategy<T>?]));
  }

  /**
   * Every ReadableStream is one: those Node makes for a service (a Blob's
   * stream(), a TransformStream's readable side, a TextDecoderStream's) are
   * of Node's class, this one's parent, and `x instanceof ReadableStream`
   * is true for them as it is in Node.
   */
  static [Symbol.hasInstance](value: unknown): boolean {
    return value instanceof HostReadableStream;
  }

  tee(): [ReadableStream<T>, ReadableStream<T>] {
    return teeStream(this, GuestReadableStream as typeof ReadableStream);
  }

  static from<T>(source: Source<T>): GuestReadableStream<T> {
    const async = (source as AsyncIterable<T>)?.[Symbol.asyncIterator];
    const sync = (source as Iterable<T>)?.[Symbol.iterator];
    if (typeof async !== 'function' && typeof sync !== 'function') throw new TypeError('ReadableStream.from() takes an iterable or an async iterable');
    const iterator = (typeof async === 'function' ? async.call(source) : (sync as () => Iterator<T>).call(source)) as AsyncIterator<T> | Iterator<T | PromiseLike<T>>;
    return new GuestReadableStream<T>(
      {
        async pull(controller) {
          const { done, value } = await iterator.next();
          if (done) controller.close();
          else controller.enqueue(await value);
        },
        async cancel(reason) {
          await iterator.return?.(reason);
        },
      },
      { highWaterMark: 0 },
    );
  }
}
nameAs(GuestReadableStream, 'ReadableStream', false);
