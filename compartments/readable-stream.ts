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

/**
 * Two streams that each yield every chunk of `stream` (the same chunk
 * objects, as the Streams standard's tee does), read from it as the faster
 * branch asks; a branch cancelled stops receiving, both cancelled cancel
 * the source.
 */
export const teeStream = <T>(stream: ReadableStream<T>, Make: typeof ReadableStream = HostReadableStream): [ReadableStream<T>, ReadableStream<T>] => {
  const reader = stream.getReader();
  const queues: [T[], T[]] = [[], []];
  const cancelled = [false, false];
  let ended = false;
  let failure: { error: unknown } | undefined;
  let reading: Promise<void> | undefined;
  const readMore = (): Promise<void> =>
    (reading ??= reader.read().then(
      ({ done, value }) => {
        reading = undefined;
        if (done) ended = true;
        else for (const i of [0, 1]) if (!cancelled[i]) queues[i].push(value);
      },
      (error: unknown) => {
        reading = undefined;
        failure = { error };
      },
    ));
  const branch = (i: 0 | 1): ReadableStream<T> =>
    new Make<T>(
      {
        async pull(controller) {
          while (queues[i].length === 0 && !ended && !failure) await readMore();
          if (queues[i].length > 0) controller.enqueue(queues[i].shift() as T);
          else if (failure) controller.error(failure.error);
          else controller.close();
        },
        cancel(reason) {
          cancelled[i] = true;
          queues[i].length = 0;
          return cancelled[0] && cancelled[1] ? reader.cancel(reason) : undefined;
        },
      },
      { highWaterMark: 0 },
    );
  return [branch(0), branch(1)];
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
