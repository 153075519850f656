/**
 * `fs.createReadStream` / `fs.createWriteStream` inside a service, and the
 * `fs.ReadStream` / `fs.WriteStream` classes, as Node's
 * (lib/internal/fs/streams.js in Node 20): streams of the service's own
 * `stream` module whose opening, reads, writes and closing are the
 * service's own recorded `fs` calls (`fs.openSync`, `fs.readSync`,
 * `fs.writeSync`, `fs.closeSync`). Each chunk read is one syscall, so its
 * bytes are in the log, and a restore replays them without the file; a
 * write made at build time is absorbed on restore, like every fs write.
 *
 * Same options as Node's: `flags`, `encoding`, `fd` (a descriptor from
 * `fs.openSync`), `mode`, `autoClose`, `emitClose`, `start`, `end`
 * (inclusive), `highWaterMark` (64 KiB by default); a string for options is
 * the encoding. The same events in the same order: `open` (the descriptor)
 * and `ready` once the file is open, then the stream's own. Not supported:
 * the `fs` option (a custom file system) and `signal`.
 *
 * Where Node reads and writes on its thread pool, these do so synchronously
 * when the stream asks (the stream still hands out its data on later ticks),
 * so a slow disk holds the service's turn.
 */
import type { Readable as ReadableType, Writable as WritableType } from 'node:stream';

type Fn = (...args: unknown[]) => unknown;

/** The service's recorded fs calls the streams are made of. */
export interface StreamFs {
  openSync(path: unknown, flags?: unknown, mode?: unknown): number;
  readSync(fd: unknown, buffer: ArrayBufferView, offset?: number, length?: number, position?: number | null): number;
  writeSync(fd: unknown, data: unknown, offset?: number, length?: number, position?: number | null): number;
  closeSync(fd: unknown): void;
}

/** The service's own `stream` module (readable-stream: Node's streams). */
export interface StreamModule {
  readonly Readable: typeof ReadableType;
  readonly Writable: typeof WritableType;
  readonly finished: (stream: unknown, callback: Fn) => unknown;
}

/** Node's ERR_OUT_OF_RANGE, as its validators word it. */
const outOfRange = (name: string, range: string, received: unknown): RangeError =>
  Object.assign(new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${String(received)}`), { code: 'ERR_OUT_OF_RANGE' });

/** Node's validateInteger(value, name, min). */
const checkInteger = (value: unknown, name: string, min: number): number => {
  if (typeof value !== 'number') {
    throw Object.assign(new TypeError(`The "${name}" argument must be of type number. Received type ${typeof value} (${String(value)})`), { code: 'ERR_INVALID_ARG_TYPE' });
  }
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value);
  if (value < min || value > Number.MAX_SAFE_INTEGER) throw outOfRange(name, `>= ${min} && <= ${Number.MAX_SAFE_INTEGER}`, value);
  return value;
};

interface StreamOptions {
  flags?: string;
  encoding?: BufferEncoding;
  fd?: number | null;
  mode?: number;
  autoClose?: boolean;
  emitClose?: boolean;
  start?: number;
  end?: number;
  highWaterMark?: number;
}

const optionsOf = (options: unknown): StreamOptions => {
  if (options === undefined || options === null) return {};
  if (typeof options === 'string') return { encoding: options as BufferEncoding };
  if (typeof options !== 'object') {
    throw Object.assign(new TypeError(`The "options" argument must be one of type string or an instance of Object. Received type ${typeof options} (${String(options)})`), {
      code: 'ERR_INVALID_ARG_TYPE',
    });
  }
  return { ...(options as StreamOptions) };
};

/**
 * The file stream classes and factories of one service, built on its fs
 * calls and its stream module (made on first use: `stream` is read then);
 * `toPath` turns a `file:` URL into its path, as Node does for `stream.path`;
 * chunks read are the service's `Buffer`s.
 */
export const makeFileStreams = (fs: StreamFs, stream: () => StreamModule, toPath: (path: unknown) => unknown, ServiceBuffer: typeof Buffer) => {
  let classes: { ReadStream: new (path: unknown, options?: unknown) => ReadableType; WriteStream: new (path: unknown, options?: unknown) => WritableType } | undefined;
  const make = () => {
    const { Readable, Writable, finished } = stream();

    const openFor = (self: { fd: number | null; path: unknown; flags: string; mode: number; emit(event: string, ...args: unknown[]): boolean }, callback: (error?: Error | null) => void) => {
      if (typeof self.fd === 'number') {
        callback();
        return;
      }
      let fd: number;
      try {
        fd = fs.openSync(self.path, self.flags, self.mode);
      } catch (error) {
        callback(error as Error);
        return;
      }
      self.fd = fd;
      callback();
      self.emit('open', fd);
      self.emit('ready');
    };
    const closeFor = (self: { fd: number | null; autoClose: boolean }, error: Error | null, callback: (error?: Error | null) => void) => {
      const fd = self.fd;
      self.fd = null;
      if (typeof fd !== 'number' || !self.autoClose) {
        callback(error);
        return;
      }
      try {
        fs.closeSync(fd);
      } catch (closeError) {
        callback(error ?? (closeError as Error));
        return;
      }
      callback(error);
    };

    class ReadStream extends Readable {
      fd: number | null;
      path: unknown;
      flags: string;
      mode: number;
      start: number | undefined;
      end: number;
      pos: number | undefined;
      bytesRead = 0;
      autoClose: boolean;

      constructor(path: unknown, options?: unknown) {
        const opts = optionsOf(options);
        super({ ...opts, highWaterMark: opts.highWaterMark ?? 64 * 1024, autoDestroy: opts.autoClose ?? true, emitClose: opts.emitClose ?? true });
        this.fd = opts.fd ?? null;
        this.path = toPath(path);
        this.flags = opts.flags ?? 'r';
        this.mode = opts.mode ?? 0o666;
        this.autoClose = opts.autoClose ?? true;
        this.start = opts.start;
        this.end = opts.end ?? Infinity;
        this.pos = undefined;
        if (this.start !== undefined) {
          checkInteger(this.start, 'start', 0);
          this.pos = this.start;
        }
        if (this.end !== Infinity) {
          checkInteger(this.end, 'end', 0);
          if (this.start !== undefined && this.start > this.end) throw outOfRange('start', `<= "end" (here: ${this.end})`, this.start);
        }
      }

      get pending(): boolean {
        return this.fd === null;
      }

      _construct(callback: (error?: Error | null) => void): void {
        openFor(this, callback);
      }

      _read(size: number): void {
        const n = this.pos !== undefined ? Math.min(this.end - this.pos + 1, size) : Math.min(this.end - this.bytesRead + 1, size);
        if (n <= 0) {
          this.push(null);
          return;
        }
        const buffer = ServiceBuffer.alloc(n);
        let bytesRead: number;
        try {
          bytesRead = fs.readSync(this.fd, buffer, 0, n, this.pos ?? null);
        } catch (error) {
          this.destroy(error as Error);
          return;
        }
        if (bytesRead > 0) {
          if (this.pos !== undefined) this.pos += bytesRead;
          this.bytesRead += bytesRead;
          this.push(bytesRead === n ? buffer : buffer.subarray(0, bytesRead));
        } else {
          this.push(null);
        }
      }

      _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
        closeFor(this, error, callback);
      }

      close(callback?: Fn): void {
        if (typeof callback === 'function') finished(this, callback);
        this.destroy();
      }
    }

    class WriteStream extends Writable {
      fd: number | null;
      path: unknown;
      flags: string;
      mode: number;
      start: number | undefined;
      pos: number | undefined;
      bytesWritten = 0;
      autoClose: boolean;

      constructor(path: unknown, options?: unknown) {
        const opts = optionsOf(options);
        super({ ...opts, decodeStrings: true, autoDestroy: opts.autoClose ?? true, emitClose: opts.emitClose ?? true });
        this.fd = opts.fd ?? null;
        this.path = toPath(path);
        this.flags = opts.flags ?? 'w';
        this.mode = opts.mode ?? 0o666;
        this.autoClose = opts.autoClose ?? true;
        this.start = opts.start;
        this.pos = undefined;
        if (opts.encoding) this.setDefaultEncoding(opts.encoding);
        if (this.start !== undefined) {
          checkInteger(this.start, 'start', 0);
          this.pos = this.start;
        }
      }

      get pending(): boolean {
        return this.fd === null;
      }

      _construct(callback: (error?: Error | null) => void): void {
        openFor(this, callback);
      }

      _write(chunk: Buffer, _encoding: string, callback: (error?: Error | null) => void): void {
        let written: number;
        try {
          written = fs.writeSync(this.fd, chunk, 0, chunk.length, this.pos ?? null);
        } catch (error) {
          callback(error as Error);
          return;
        }
        this.bytesWritten += written;
        if (this.pos !== undefined) this.pos += written;
        callback();
      }

      _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
        closeFor(this, error, callback);
      }

      close(callback?: Fn): void {
        if (callback) {
          if (this.closed) {
            queueMicrotask(() => callback(null));
            return;
          }
          this.on('close', callback);
        }
        if (!this.autoClose) this.on('finish', () => this.destroy());
        this.end();
      }

      destroySoon(): void {
        this.end();
      }
    }
    return { ReadStream, WriteStream };
  };
  const get = () => (classes ??= make());
  return {
    /** `fs.ReadStream` (made on first read). */
    get ReadStream() {
      return get().ReadStream;
    },
    /** `fs.WriteStream` (made on first read). */
    get WriteStream() {
      return get().WriteStream;
    },
    createReadStream: (path: unknown, options?: unknown) => new (get().ReadStream)(path, options),
    createWriteStream: (path: unknown, options?: unknown) => new (get().WriteStream)(path, options),
  };
};
