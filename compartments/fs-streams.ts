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
 * the `fs` option (a custom file system: refused with a TypeError).
 *
 * Where Node reads and writes on its thread pool, these do so synchronously
 * (a read on the tick after the stream asks, one chunk at a time), so a slow
 * disk holds the service's turn.
 */
import type { Readable as ReadableType, Writable as WritableType } from 'node:stream';
import { inspect } from 'node:util';
import hostFs from 'node:fs';
import { likeHostPrototype } from './host-shape.js';
import { describeReceived, invalidArgType, nodeError, outOfRange, validateInteger } from './node-style-errors.js';

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

/** Node's validateEncoding for stream options: ERR_INVALID_ARG_VALUE for an encoding Buffer does not know. */
const checkEncoding = (encoding: unknown): void => {
  if (encoding !== undefined && encoding !== null && (typeof encoding !== 'string' || !Buffer.isEncoding(encoding))) {
    throw nodeError(TypeError, 'ERR_INVALID_ARG_VALUE', `The argument 'encoding' is invalid encoding. Received ${describeReceived(encoding).replace(/^type string \((.*)\)$/, '$1')}`);
  }
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
  if (typeof options !== 'object') throw invalidArgType('options', 'one of type string or an instance of Object', options);
  const copy = { ...(options as StreamOptions & { fs?: unknown; signal?: unknown }) };
  // Refused, not ignored: a stream that silently read through the real fs instead would differ from Node.
  if (copy.fs !== undefined) throw new TypeError("the fs option of a file stream (a custom file system) is not supported inside a service");
  return copy;
};

/**
 * The file stream classes and factories of one service, built on its fs
 * calls and its stream module (made on first use: `stream` is read then);
 * `toPath` turns a `file:` URL into its path, as Node does for `stream.path`;
 * chunks read are the service's `Buffer`s; `nextTick` is the service's
 * `process.nextTick` (a read's chunk is pushed on it).
 */
export const makeFileStreams = (fs: StreamFs, stream: () => StreamModule, toPath: (path: unknown) => unknown, ServiceBuffer: typeof Buffer, nextTick: (callback: () => void) => void) => {
  let classes: { ReadStream: unknown; WriteStream: unknown } | undefined;
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

    type Callback = (error?: Error | null) => void;
    interface FileReadStream extends ReadableType {
      fd: number | null;
      path: unknown;
      flags: string;
      mode: number;
      start: number | undefined;
      end: number;
      pos: number | undefined;
      bytesRead: number;
      autoClose: boolean;
    }
    interface FileWriteStream extends WritableType {
      fd: number | null;
      path: unknown;
      flags: string;
      mode: number;
      start: number | undefined;
      pos: number | undefined;
      bytesWritten: number;
      autoClose: boolean;
    }
    const common = (self: FileReadStream | FileWriteStream, path: unknown, opts: StreamOptions, flags: string): void => {
      // Node validates a path (without a descriptor) or the descriptor when the stream is made, not when it opens.
      if (opts.fd === undefined || opts.fd === null) {
        const given = toPath(path);
        if (typeof given !== 'string' && !(given instanceof Uint8Array)) throw invalidArgType('path', 'of type string or an instance of Buffer or URL', given);
        if ((typeof given === 'string' ? given : Buffer.from(given).toString('latin1')).includes('\0')) {
          throw nodeError(TypeError, 'ERR_INVALID_ARG_VALUE', `The argument 'path' must be a string, Uint8Array, or URL without null bytes. Received ${inspect(given)}`);
        }
      } else if (typeof opts.fd !== 'number') {
        throw invalidArgType('options.fd', 'of type number or an instance of FileHandle', opts.fd);
      }
      self.fd = opts.fd ?? null;
      self.path = toPath(path);
      self.flags = opts.flags ?? flags;
      self.mode = opts.mode ?? 0o666;
      self.autoClose = opts.autoClose ?? true;
      self.start = opts.start;
      self.pos = undefined;
      if (self.start !== undefined) {
        validateInteger(self.start, 'start', 0);
        self.pos = self.start;
      }
    };

    // Function constructors, as Node's: `fs.ReadStream(path)` without `new`, and
    // `fs.ReadStream.call(this, path)` from an ES5 subclass, work as in Node.
    function ReadStream(this: FileReadStream, path: unknown, options?: unknown): FileReadStream | void {
      if (!(this instanceof ReadStream)) return new (ReadStream as unknown as new (p: unknown, o?: unknown) => FileReadStream)(path, options);
      const opts = optionsOf(options);
      checkEncoding(opts.encoding);
      (Readable as unknown as (this: unknown, o: unknown) => void).call(this, { ...opts, highWaterMark: opts.highWaterMark ?? 64 * 1024, autoDestroy: opts.autoClose ?? true, emitClose: opts.emitClose ?? true });
      common(this, path, opts, 'r');
      this.bytesRead = 0;
      this.end = opts.end ?? Infinity;
      if (this.end !== Infinity) {
        validateInteger(this.end, 'end', 0);
        if (this.start !== undefined && this.start > this.end) throw outOfRange('start', `<= "end" (here: ${this.end})`, this.start);
      }
    }
    Object.setPrototypeOf(ReadStream.prototype, Readable.prototype);
    Object.setPrototypeOf(ReadStream, Readable);
    /** What both file streams have: `pending` until the file is open, opening, and closing. */
    const fileMembers: PropertyDescriptorMap = {
      pending: {
        get(this: FileReadStream | FileWriteStream) {
          return this.fd === null;
        },
        configurable: true,
      },
      _construct: {
        value(this: FileReadStream | FileWriteStream, callback: Callback) {
          openFor(this, callback);
        },
        writable: true,
        configurable: true,
      },
      _destroy: {
        value(this: FileReadStream | FileWriteStream, error: Error | null, callback: Callback) {
          closeFor(this, error, callback);
        },
        writable: true,
        configurable: true,
      },
    };
    Object.defineProperties(ReadStream.prototype, {
      ...fileMembers,
      // One read per call, its chunk pushed on a later tick (Node reads on its thread pool): the
      // stream asks again only then, so chunks are at most highWaterMark bytes, and a stream
      // destroyed meanwhile gets nothing more.
      _read: {
        value(this: FileReadStream, size: number) {
          nextTick(() => {
            if (this.destroyed) return;
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
          });
        },
        writable: true,
        configurable: true,
      },
      close: {
        value(this: FileReadStream, callback?: Fn) {
          if (typeof callback === 'function') finished(this, callback);
          this.destroy();
        },
        writable: true,
        configurable: true,
      },
    });

    function WriteStream(this: FileWriteStream, path: unknown, options?: unknown): FileWriteStream | void {
      if (!(this instanceof WriteStream)) return new (WriteStream as unknown as new (p: unknown, o?: unknown) => FileWriteStream)(path, options);
      const opts = optionsOf(options);
      checkEncoding(opts.encoding);
      (Writable as unknown as (this: unknown, o: unknown) => void).call(this, { ...opts, decodeStrings: true, autoDestroy: opts.autoClose ?? true, emitClose: opts.emitClose ?? true });
      common(this, path, opts, 'w');
      this.bytesWritten = 0;
      if (opts.encoding) this.setDefaultEncoding(opts.encoding);
    }
    Object.setPrototypeOf(WriteStream.prototype, Writable.prototype);
    Object.setPrototypeOf(WriteStream, Writable);
    Object.defineProperties(WriteStream.prototype, {
      ...fileMembers,
      _write: {
        value(this: FileWriteStream, chunk: Buffer, _encoding: string, callback: Callback) {
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
        },
        writable: true,
        configurable: true,
      },
      close: {
        value(this: FileWriteStream, callback?: Fn) {
          if (callback) {
            if (this.closed) {
              nextTick(() => callback(null));
              return;
            }
            this.on('close', callback as () => void);
          }
          if (!this.autoClose) this.on('finish', () => this.destroy());
          this.end();
        },
        writable: true,
        configurable: true,
      },
      destroySoon: {
        value(this: FileWriteStream) {
          this.end();
        },
        writable: true,
        configurable: true,
      },
    });
    // Node's names and lengths (its _construct is named, its close and _destroy are not).
    likeHostPrototype(ReadStream.prototype, hostFs.ReadStream.prototype);
    likeHostPrototype(WriteStream.prototype, hostFs.WriteStream.prototype);
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
    createReadStream: (path: unknown, options?: unknown): ReadableType => {
      const ReadStream = get().ReadStream as new (p: unknown, o?: unknown) => ReadableType;
      return new ReadStream(path, options);
    },
    createWriteStream: (path: unknown, options?: unknown): WritableType => {
      const WriteStream = get().WriteStream as new (p: unknown, o?: unknown) => WritableType;
      return new WriteStream(path, options);
    },
  };
};
