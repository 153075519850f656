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
 * The streams buffer their input and compress or decompress it when the
 * input ends (one chunk out): HTTP clients pipe a response through
 * `createUnzip()` and read it whole, which this serves; a service that
 * needs output before its input ends (an endless stream) does not get it.
 * The host's zlib stream objects (with their shared prototypes and native
 * handles) never reach a service, nor does the memory around a result:
 * Node returns a slice of a 16 KiB output buffer from `allocUnsafe`, whose
 * other bytes are whatever the host's heap held there (found by the
 * adversarial review), so every result is a copy that owns its memory.
 */
import hostZlib from 'node:zlib';
import { Buffer as HostBuffer } from 'node:buffer';
import { unpooled } from './web.js';
import { validateFunction } from './node-style-errors.js';

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

/**
 * A service's `zlib` namespace. `stream` is the service's own stream
 * module (guest-builtins.ts), loaded when zlib is first imported.
 */
export const makeGuestZlib = (stream: StreamModule): Record<string, unknown> => {
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
    // The stream: collect, then do the work once when the input ends.
    const Stream = class extends stream.Transform {
      readonly #options: Record<string, unknown> | undefined;
      readonly #chunks: Buffer[] = [];
      bytesWritten = 0;

      constructor(options?: Record<string, unknown>) {
        super({ ...(options ?? {}), objectMode: false });
        this.#options = hostOptions(options);
      }

      _transform(chunk: unknown, encoding: BufferEncoding, done: (error?: Error | null) => void): void {
        const bytes = typeof chunk === 'string' ? HostBuffer.from(chunk, encoding) : HostBuffer.from(chunk as Uint8Array);
        this.bytesWritten += bytes.byteLength;
        this.#chunks.push(bytes);
        done();
      }

      _flush(done: (error?: Error | null, data?: Buffer) => void): void {
        let out: Buffer;
        try {
          out = unpooled(work(HostBuffer.concat(this.#chunks), this.#options));
        } catch (error) {
          done(error as Error);
          return;
        }
        this.#chunks.length = 0;
        if (out.byteLength > 0) this.push(out);
        done();
      }

      /** Node's zlib streams take these; with the whole input buffered they have nothing to do. */
      flush(_kind?: unknown, cb?: () => void): void {
        if (typeof _kind === 'function') queueMicrotask(_kind as () => void);
        else if (typeof cb === 'function') queueMicrotask(cb);
      }

      params(_level: unknown, _strategy: unknown, cb?: () => void): void {
        if (typeof cb === 'function') queueMicrotask(cb);
      }

      close(cb?: () => void): void {
        if (typeof cb === 'function') (this as unknown as { once(e: string, f: () => void): void }).once('close', cb);
        (this as unknown as { destroy(): void }).destroy();
      }
    };
    Object.defineProperty(Stream, 'name', { value: className });
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
