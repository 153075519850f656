/**
 * `Readable.toWeb()` and `Readable.fromWeb()` for the `stream` module a
 * service gets (readable-stream 4, a port of Node's streams, leaves Node's
 * web-stream adapters out: `Readable.toWeb` threw "is not a function").
 * They follow Node 20's lib/internal/webstreams/adapters.js
 * (newReadableStreamFromStreamReadable, newStreamReadableFromReadableStream):
 * the same checks and errors, backpressure through pause/resume and the
 * queuing strategy, cancel destroying the Readable, a premature close
 * reported as an AbortError. The web side is the service's ReadableStream
 * (readable-stream.ts). Writable and Duplex adapters throw a TypeError
 * saying they are not supported inside a service yet.
 */
import { GuestReadableStream } from './readable-stream.js';
import { abortError, invalidArgType, invalidArgValue } from './node-style-errors.js';

interface NodeReadable {
  _readableState?: unknown;
  destroyed?: boolean;
  readable?: boolean;
  readableObjectMode?: boolean;
  readableHighWaterMark?: number;
  pause(): unknown;
  resume(): unknown;
  push(chunk: unknown): boolean;
  destroy(error?: unknown): unknown;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
}

interface StreamModule {
  Readable: (new (options: Record<string, unknown>) => NodeReadable) & Record<string, unknown>;
  Writable: Record<string, unknown>;
  Duplex: Record<string, unknown>;
  finished(stream: NodeReadable, callback: (error?: unknown) => void): () => void;
}

interface BufferClass {
  isBuffer(value: unknown): boolean;
  isEncoding(value: unknown): boolean;
}


/** Put the adapters on the service's `stream` module (its Readable, Writable and Duplex classes). */
export const addWebAdapters = (stream: StreamModule, Buffer: BufferClass): void => {
  const { Readable } = stream;

  /** Readable.toWeb(streamReadable, { strategy }): a ReadableStream of its chunks (Buffers as Uint8Arrays). */
  const toWeb = function toWeb(streamReadable: NodeReadable, options: { strategy?: QueuingStrategy } = {}): ReadableStream {
    if (typeof streamReadable?._readableState !== 'object' || streamReadable._readableState === null) throw invalidArgType('streamReadable', 'an stream.Readable', streamReadable); // Node's words
    if (streamReadable.destroyed || streamReadable.readable === false) {
      const readable = new GuestReadableStream();
      void readable.cancel();
      return readable;
    }
    const objectMode = streamReadable.readableObjectMode === true;
    const highWaterMark = streamReadable.readableHighWaterMark;
    const strategy: QueuingStrategy = options?.strategy ?? (objectMode ? new CountQueuingStrategy({ highWaterMark: highWaterMark ?? 16 }) : new ByteLengthQueuingStrategy({ highWaterMark: highWaterMark ?? 65536 }));
    let controller!: ReadableStreamDefaultController;
    const onData = (chunk: unknown): void => {
      const value = Buffer.isBuffer(chunk) && !objectMode ? new Uint8Array(chunk as Uint8Array) : chunk;
      controller.enqueue(value);
      if ((controller.desiredSize ?? 0) <= 0) streamReadable.pause();
    };
    const onFinished = (error?: unknown): void => {
      cleanup();
      // As Node's: a legacy stream that emits 'error' again after it finished is not an uncaught error.
      streamReadable.on('error', () => {});
      streamReadable.off('data', onData as (...args: unknown[]) => void);
      if ((error as { code?: unknown } | undefined)?.code === 'ERR_STREAM_PREMATURE_CLOSE') {
        controller.error(abortError(error));
        return;
      }
      if (error) controller.error(error);
      else controller.close();
    };
    streamReadable.pause();
    const cleanup = stream.finished(streamReadable, onFinished);
    streamReadable.on('data', onData as (...args: unknown[]) => void);
    return new GuestReadableStream(
      {
        start(c) {
          controller = c;
        },
        pull() {
          streamReadable.resume();
        },
        cancel(reason) {
          streamReadable.destroy(reason);
        },
      },
      strategy,
    );
  };

  /** Readable.fromWeb(readableStream, { highWaterMark, encoding, objectMode, signal }): a Readable of its chunks. */
  const fromWeb = function fromWeb(readableStream: ReadableStream, options: Record<string, unknown> = {}): NodeReadable {
    if (!(readableStream instanceof GuestReadableStream)) throw invalidArgType('readableStream', 'an instance of ReadableStream', readableStream);
    if (typeof options !== 'object' || options === null || Array.isArray(options)) throw invalidArgType('options', 'of type object', options);
    const { highWaterMark, encoding, objectMode = false, signal } = options;
    // Node's call has its arguments the other way round: "The argument 'nope' is invalid. Received 'options.encoding'".
    if (encoding !== undefined && !Buffer.isEncoding(encoding)) throw invalidArgValue(String(encoding), 'options.encoding', 'is invalid');
    if (typeof objectMode !== 'boolean') throw invalidArgType('options.objectMode', 'of type boolean', objectMode);
    const reader = readableStream.getReader();
    let closed = false;
    const readable: NodeReadable = new Readable({
      objectMode,
      highWaterMark,
      encoding,
      signal,
      read() {
        reader.read().then(
          chunk => {
            readable.push(chunk.done ? null : chunk.value);
          },
          (error: unknown) => readable.destroy(error),
        );
      },
      destroy(error: unknown, callback: (error?: unknown) => void) {
        const done = (): void => callback(error);
        if (!closed) {
          reader.cancel(error).then(done, done);
          return;
        }
        done();
      },
    });
    reader.closed.then(
      () => {
        closed = true;
      },
      (error: unknown) => {
        closed = true;
        readable.destroy(error);
      },
    );
    return readable;
  };

  const notYet = (name: string) =>
    function unsupported(): never {
      throw new TypeError(`${name} is not supported inside a service yet: use Readable.toWeb / Readable.fromWeb, or the stream's events`);
    };
  Object.defineProperties(Readable, {
    toWeb: { value: toWeb, writable: true, enumerable: true, configurable: true },
    fromWeb: { value: fromWeb, writable: true, enumerable: true, configurable: true },
  });
  for (const [target, name] of [
    [stream.Writable, 'Writable'],
    [stream.Duplex, 'Duplex'],
  ] as const) {
    Object.defineProperties(target, {
      toWeb: { value: notYet(`${name}.toWeb`), writable: true, enumerable: true, configurable: true },
      fromWeb: { value: notYet(`${name}.fromWeb`), writable: true, enumerable: true, configurable: true },
    });
  }
};
