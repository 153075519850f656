/**
 * `zlib` inside a service. Compression is pure computation, so the work is
 * done by the host's synchronous functions (bytes in, bytes out, nothing
 * recorded); what a service holds is its own:
 *
 * | export                                   | what it is                                      |
 * | ---------------------------------------- | ----------------------------------------------- |
 * | `gzipSync`, `inflateSync`, ... `*Sync`    | the host's function, its `info` option refused |
 * | `gzip(buf, [opts], cb)`, ... callbacks    | the sync function, the callback a microtask later |
 * | `createGunzip()`, `Gunzip`, ... streams   | a Transform of the service's own `stream` port  |
 * | `constants`, `codes`                      | the service's own copies of the host's          |
 *
 * The streams are Node's, run synchronously (zlibStream): the same chunks
 * out at the same points, flush(), params(), reset().
 * The host's zlib stream objects (with their shared prototypes and native
 * handles) never reach a service, nor does the memory around a result:
 * Node returns a slice of a 16 KiB output buffer from `allocUnsafe`, whose
 * other bytes are whatever the host's heap held there (found by the
 * adversarial review), so every result is a copy that owns its memory.
 */
import hostZlib from 'node:zlib';
import { Buffer as HostBuffer } from 'node:buffer';
import { unpooled } from './web.js';
import { invalidArgType, nodeError, outOfRange, validateFunction } from './node-style-errors.js';
import { likeHostPrototype } from './host-shape.js';

type SyncFn = (buffer: Uint8Array | string, options?: Record<string, unknown>) => Buffer;

/** The algorithms: the name of the stream class, of its factory, and the sync function doing the work. */
const ALGORITHMS = [
  ['Deflate', 'deflate'],
  ['Inflate', 'inflate'],
  ['Gzip', 'gzip'],
  ['Gunzip', 'gunzip'],
  ['DeflateRaw', 'deflateRaw'],
  ['InflateRaw', 'inflateRaw'],
  ['Unzip', 'unzip'],
  ['BrotliCompress', 'brotliCompress'],
  ['BrotliDecompress', 'brotliDecompress'],
  ['ZstdCompress', 'zstdCompress'],
  ['ZstdDecompress', 'zstdDecompress'],
] as const;

const hostSync = (name: string): SyncFn | undefined => {
  const fn = (hostZlib as unknown as Record<string, unknown>)[`${name}Sync`];
  return typeof fn === 'function' ? (fn as SyncFn) : undefined;
};

/** Options as the host function gets them: a copy, without `info` (its engine is a host object); options that are not an object are the defaults, as in Node. */
const hostOptions = (options: unknown): Record<string, unknown> | undefined => {
  if (options === undefined || options === null || typeof options !== 'object') return undefined;
  const copy: Record<string, unknown> = { ...(options as Record<string, unknown>) };
  if (copy.info) throw new TypeError('zlib inside a service does not support the info option (it would hand out the host engine)');
  delete copy.info;
  return copy;
};

/** The service's stream module, as much of it as zlib uses. */
interface StreamModule {
  readonly Transform: new (options?: Record<string, unknown>) => TransformLike;
}
interface TransformLike {
  push(chunk: unknown): boolean;
}

/** What a host zlib stream holds that the service's stream drives: its native engine, never handed out. */
interface HostEngine {
  _handle: ZlibHandle | null;
  readonly _writeState: Uint32Array;
  readonly _chunkSize: number;
  readonly _defaultFlushFlag: number;
  readonly _finishFlushFlag: number;
  readonly _defaultFullFlushFlag: number;
  readonly _level?: number;
  readonly _strategy?: number;
}
interface ZlibHandle {
  onerror: (message: string, errno: number, code: string) => void;
  writeSync(flush: number, input: Uint8Array, inOffset: number, inLength: number, output: Uint8Array, outOffset: number, outLength: number): void;
  params(level: number, strategy: number): void;
  reset(): void;
  close(): void;
}

const { Z_NO_FLUSH, Z_BLOCK, Z_PARTIAL_FLUSH, Z_SYNC_FLUSH, Z_FULL_FLUSH, Z_FINISH, Z_MIN_LEVEL, Z_MAX_LEVEL, Z_DEFAULT_STRATEGY, Z_FIXED } = hostZlib.constants;
/** Node's flush order (lib/zlib.js maxFlush): the stronger of two flushes. */
const flushiness = [Z_NO_FLUSH, Z_BLOCK, Z_PARTIAL_FLUSH, Z_SYNC_FLUSH, Z_FULL_FLUSH, Z_FINISH];
const maxFlush = (a: number, b: number): number => (flushiness.indexOf(a) > flushiness.indexOf(b) ? a : b);
/** The flush values flush(kind) knows, each at its own index (Node's kFlushBuffers). */
const flushByKind: number[] = [];
for (const flag of flushiness) flushByKind[flag] = flag;
/** Brotli's operations (PROCESS, FLUSH, FINISH, EMIT_METADATA): what its engine takes as a flush value. */
const brotliOperations = new Set([0, 1, 2, 3]);

/** A typed array's own length, not what a subclass's getter says (the native engine trusts the length it is given). */
const byteLengthOf = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype) as object, 'byteLength')?.get as (this: unknown) => number;

/** Node's assert(this._handle, 'zlib binding closed'), as it throws it. */
const bindingClosed = (): Error =>
  nodeError(
    Error,
    'ERR_INTERNAL_ASSERTION',
    'zlib binding closed\nThis is caused by either a bug in Node.js or incorrect usage of Node.js internals.\nPlease open an issue with this stack trace at https://github.com/nodejs/node/issues\n',
  );

/** The empty chunks flush(kind) writes, with their flush flag (Node's kFlushBuffers). */
const flushMarks = new WeakMap<object, number>();

/** Node's checkRangesOrGetDefault for params(level, strategy): undefined and NaN pass, other values are checked. */
const checkRange = (value: unknown, name: string, lower: number, upper: number): void => {
  if (value === undefined || Number.isNaN(value)) return;
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isFinite(value)) throw outOfRange(name, 'a finite number', value);
  if (value < lower || value > upper) throw outOfRange(name, `>= ${lower} and <= ${upper}`, value);
};

/**
 * A zlib stream class of the service's own `stream` module, as Node's
 * (lib/zlib.js ZlibBase and Zlib): the same options and checks (a host
 * engine is made of them, Node's errors for bad ones), the same output
 * chunks at the same points (each piece the engine writes into a 16 KiB
 * output buffer, one chunk; the 2-byte header of a deflate stream before
 * its body), flush(kind), params(), reset() and close(). Node runs the
 * engine on its thread pool; here it runs synchronously in a later turn of
 * the service's, an immediate after the write (the same bytes; the
 * immediate is recorded as the service's own are).
 * Each chunk is a copy (Node's are slices of a buffer from allocUnsafe,
 * whose other bytes are the host's).
 */
const zlibStream = (stream: StreamModule, HostEngine: new (options?: Record<string, unknown>) => HostEngine, brotli: boolean, later: (work: () => void) => void): new (options?: Record<string, unknown>) => object =>
  class ZlibStream extends stream.Transform {
    #handle: ZlibHandle | null;
    readonly #state: Uint32Array;
    readonly #chunkSize: number;
    #out: Buffer;
    #outOffset = 0;
    readonly #defaultFlushFlag: number;
    readonly #finishFlushFlag: number;
    readonly #fullFlushFlag: number;
    #level: number | undefined;
    #strategy: number | undefined;
    #failure: Error | undefined;
    bytesWritten = 0;

    constructor(options?: Record<string, unknown>) {
      const engine = new HostEngine(hostOptions(options));
      let opts = options;
      if (opts && (opts.encoding || opts.objectMode || opts.writableObjectMode)) opts = { ...opts, encoding: null, objectMode: false, writableObjectMode: false };
      super({ autoDestroy: true, ...opts });
      const handle = engine._handle as ZlibHandle;
      // Node's zlibOnError, here: the error is thrown by the write that met it (Node's message, errno and code).
      handle.onerror = (message, errno, code) => {
        this.#failure = Object.assign(new Error(message), { errno, code });
      };
      this.#handle = handle;
      this.#state = engine._writeState;
      this.#chunkSize = engine._chunkSize;
      this.#out = HostBuffer.alloc(this.#chunkSize);
      this.#defaultFlushFlag = engine._defaultFlushFlag;
      this.#finishFlushFlag = engine._finishFlushFlag;
      this.#fullFlushFlag = engine._defaultFullFlushFlag;
      this.#level = engine._level;
      this.#strategy = engine._strategy;
    }

    get _closed(): boolean {
      return !this.#handle;
    }

    _transform(chunk: Uint8Array, _encoding: string, done: (error?: Error | null) => void): void {
      let flushFlag = flushMarks.get(chunk) ?? this.#defaultFlushFlag;
      const self = this as unknown as { writableEnded: boolean; writableLength: number };
      let length: number;
      try {
        length = Reflect.apply(byteLengthOf, chunk, []);
      } catch {
        done(invalidArgType('chunk', 'an instance of Buffer or Uint8Array', chunk));
        return;
      }
      // For the last chunk, also the finishing flush (Node's _transform).
      if (self.writableEnded && self.writableLength === length) flushFlag = maxFlush(flushFlag, this.#finishFlushFlag);
      // A zlib flush value Brotli has no operation for (flush(Z_FINISH) on a Brotli stream): Node's engine
      // never answers that write, and the stream stalls; so does this one (the engine would spin).
      if (brotli && !brotliOperations.has(flushFlag)) return;
      // Node's engine works on the chunk on its thread pool and the write is done when that comes back, in a
      // later turn of the event loop: after the code that wrote (a reset() right after it acts first; its next
      // write(), flush(), end() queue behind it and decide their flush then), and after a reader has taken the
      // output of the write before (a `for await` reads each piece apart). Here the work, its output and the
      // write's end come in a later turn too (`later`: the service's setImmediate, recorded as its timers
      // are), the flush decided now as Node decides it.
      later(() => this.#process(chunk, flushFlag, 0, length, this.#chunkSize - this.#outOffset, done));
    }

    _flush(done: (error?: Error | null) => void): void {
      this._transform(HostBuffer.alloc(0), '', done);
    }

    _final(done: () => void): void {
      done();
    }

    _destroy(error: Error | null, done: (error: Error | null) => void): void {
      this.#handle?.close();
      this.#handle = null;
      done(error);
    }

    /**
     * One round of Node's processCallback: the engine fills the output buffer once, that piece is pushed as one
     * chunk, and while the engine has more (the buffer came back full) the next round comes in a later turn, as
     * Node's next trip to its thread pool does (a reader takes each piece apart); then the write is `done`. On an
     * error (Node's zlibOnError) the stream is destroyed with it, and `done` is never called.
     */
    #process(chunk: Uint8Array, flushFlag: number, inOffset: number, availInBefore: number, availOutBefore: number, done: (error?: Error | null) => void): void {
      let more: (() => void) | undefined;
      try {
        // A 'data' listener may have destroyed, closed or reset the stream, or shrunk the chunk's resizable
        // buffer, since the last piece (the engine would end the process on either).
        const handle = this.#handle;
        if (!handle || (this as unknown as { destroyed: boolean }).destroyed) return;
        const byteLength = Reflect.apply(byteLengthOf, chunk, []);
        if (inOffset + availInBefore > byteLength) throw outOfRange('chunk', `a buffer of at least ${inOffset + availInBefore} bytes, as it was written`, byteLength);
        this.#failure = undefined;
        handle.writeSync(flushFlag, chunk, inOffset, availInBefore, this.#out, this.#outOffset, availOutBefore);
        if (this.#failure) {
          const failure = this.#failure;
          this.#handle?.close();
          this.#handle = null;
          throw failure;
        }
        const availOutAfter = this.#state[0];
        const availInAfter = this.#state[1];
        const inDelta = availInBefore - availInAfter;
        this.bytesWritten += inDelta;
        const have = availOutBefore - availOutAfter;
        if (have > 0) {
          const piece = HostBuffer.from(this.#out.subarray(this.#outOffset, this.#outOffset + have));
          this.#outOffset += have;
          this.push(piece);
        }
        let nextOut = availOutBefore;
        if (availOutAfter === 0 || this.#outOffset >= this.#chunkSize) {
          nextOut = this.#chunkSize;
          this.#outOffset = 0;
        }
        if (availOutAfter === 0) {
          if (have === 0 && inDelta === 0) throw new Error('zlib: the engine took no input and gave no output');
          more = () => this.#process(chunk, flushFlag, inOffset + inDelta, availInAfter, nextOut, done);
        } else if (availInAfter > 0) {
          // Input left over with room to write: the compressed stream ended early (Node ends the readable side).
          this.push(null);
        }
      } catch (error) {
        (this as unknown as { destroy(error: Error): void }).destroy(error as Error);
        return;
      }
      if (more) later(more);
      else done();
    }

    flush(kind?: unknown, callback?: unknown): void {
      let flag = kind;
      let done = callback as (() => void) | undefined;
      if (typeof kind === 'function' || (kind === undefined && !callback)) {
        done = kind as (() => void) | undefined;
        flag = this.#fullFlushFlag;
      }
      const self = this as unknown as { writableFinished: boolean; writableEnded: boolean; once(event: string, f: () => void): void; write(chunk: unknown, encoding: string, cb?: () => void): boolean };
      if (self.writableFinished) {
        if (done) queueMicrotask(done);
      } else if (self.writableEnded) {
        if (done) self.once('end', done);
      } else {
        // Node writes kFlushBuffers[kind] (a property lookup: '2' is 2); none, and write(undefined) throws
        // (the native engine would end the process on a flush value it does not know).
        // (flushByKind.length is 6, as Node's kFlushBuffers.length: written, and refused, as Node refuses it).
        const known: unknown = flushByKind[flag as number];
        if (typeof known !== 'number' || !flushiness.includes(known)) throw invalidArgType('chunk', 'of type string or an instance of Buffer, TypedArray, or DataView', known);
        const mark = HostBuffer.alloc(0);
        flushMarks.set(mark, known);
        self.write(mark, '', done);
      }
    }

    /** Node's Zlib.prototype.params (Brotli's streams inherit it too). */
    params(level: unknown, strategy: unknown, callback?: () => void): void {
      checkRange(level, 'level', Z_MIN_LEVEL, Z_MAX_LEVEL);
      checkRange(strategy, 'strategy', Z_DEFAULT_STRATEGY, Z_FIXED);
      if (this.#level === level && this.#strategy === strategy) {
        if (callback) queueMicrotask(callback);
        return;
      }
      this.flush(Z_SYNC_FLUSH, () => {
        if (!this.#handle) throw bindingClosed();
        this.#handle.params(level as number, strategy as number);
        if (!(this as unknown as { destroyed: boolean }).destroyed) {
          this.#level = level as number;
          this.#strategy = strategy as number;
          callback?.();
        }
      });
    }

    reset(): void {
      if (!this.#handle) throw bindingClosed();
      this.#handle.reset();
    }

    close(callback?: () => void): void {
      if (typeof callback === 'function') (this as unknown as { once(e: string, f: () => void): void }).once('close', callback);
      (this as unknown as { destroy(): void }).destroy();
    }
  };

/**
 * A service's `zlib` namespace. `stream` is the service's own stream
 * module (guest-builtins.ts), loaded when zlib is first imported; `later`
 * runs a stream's engine work in a later turn (the service's setImmediate).
 */
export const makeGuestZlib = (stream: StreamModule, later: (work: () => void) => void): Record<string, unknown> => {
  const zlib: Record<string, unknown> = {
    constants: { ...hostZlib.constants },
    codes: Object.freeze({ ...(hostZlib as unknown as { codes: Record<string, unknown> }).codes }),
  };
  for (const [className, name] of ALGORITHMS) {
    const work = hostSync(name);
    if (!work) continue; // zstd: Node 22.15 and later
    const sync = (buffer: unknown, options?: unknown): Buffer => {
      const input = typeof buffer === 'string' || buffer instanceof Uint8Array ? buffer : ArrayBuffer.isView(buffer) ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength) : buffer instanceof ArrayBuffer ? new Uint8Array(buffer) : buffer;
      return unpooled(work(input as Uint8Array, hostOptions(options)));
    };
    Object.defineProperty(sync, 'name', { value: `${name}Sync` });
    const callback = (buffer: unknown, options: unknown, cb?: unknown): void => {
      const done = (typeof options === 'function' ? options : cb) as ((error: Error | null, result?: Buffer) => void) | undefined;
      validateFunction(done, 'callback');
      let result: Buffer;
      try {
        result = sync(buffer, typeof options === 'function' ? undefined : options);
      } catch (error) {
        queueMicrotask(() => done(error as Error));
        return;
      }
      queueMicrotask(() => done(null, result));
    };
    Object.defineProperty(callback, 'name', { value: name });
    const HostEngine = (hostZlib as unknown as Record<string, new (options?: Record<string, unknown>) => HostEngine>)[className];
    // The stream: Node's (lib/zlib.js ZlibBase), its engine driven synchronously (see ZlibStream).
    const Stream = class extends zlibStream(stream, HostEngine, className.startsWith('Brotli'), later) {};
    Object.defineProperty(Stream, 'name', { value: className });
    // The members of the service's zlib stream, shaped as those Node's stream inherits (Zlib's, ZlibBase's).
    likeHostPrototype(Object.getPrototypeOf(Stream.prototype) as object, HostEngine.prototype);
    zlib[className] = Stream;
    zlib[`create${className}`] = (options?: Record<string, unknown>) => new Stream(options);
    zlib[name] = callback;
    zlib[`${name}Sync`] = sync;
  }
  // Node's legacy constants (zlib.Z_SYNC_FLUSH, zlib.Z_BEST_COMPRESSION, zlib.DEFLATE...): numbers on the
  // module object, neither enumerable nor writable, and not named exports. node-fetch 2 reads them; without
  // them a `level: zlib.Z_BEST_COMPRESSION` was undefined, and the data compressed at the default level.
  for (const [key, descriptor] of Object.entries(Object.getOwnPropertyDescriptors(hostZlib))) {
    if ('value' in descriptor && typeof descriptor.value === 'number' && !descriptor.enumerable && !(key in zlib)) Object.defineProperty(zlib, key, descriptor);
  }
  if (typeof (hostZlib as unknown as { crc32?: unknown }).crc32 === 'function') {
    const crc32 = (hostZlib as unknown as { crc32: (data: unknown, value?: number) => number }).crc32;
    zlib.crc32 = (data: unknown, value?: number) => crc32(data, value);
  }
  return zlib;
};
