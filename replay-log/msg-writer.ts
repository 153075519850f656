/**
 * A msgpack encoder for the values a log entry mostly holds (strings,
 * numbers, booleans, null, undefined, arrays, plain objects, Buffers),
 * writing into one reusable Buffer. Anything else (slots, tagged values,
 * typed arrays, Dates, Sets, RegExps) is encoded by msgpackr, so the bytes
 * are always what `packr.unpack` reads back.
 *
 * Why not msgpackr for everything: under SES lockdown, Node 20 makes indexed
 * stores into typed arrays many times slower, and msgpackr writes short
 * strings byte by byte. Here single bytes go through a DataView and strings
 * through Buffer's native utf8 `write`.
 *
 * Typed arrays are written here too, as msgpackr writes them (ext 0x74: a
 * type byte, then the bytes), and those of `EXTERNAL_BYTES` or more are not
 * copied at all: `encodeParts` hands them back as parts of the encoding that
 * point at the caller's memory, so a 50 MB fetch body is written to the log
 * without an intermediate copy, and no scratch buffer grows to its size.
 */
import { packr } from './codec.js';

const { getPrototypeOf } = Object;

/**
 * Node's Buffer#utf8Write(string, offset): Buffer#write's native writer
 * without its argument checks and encoding lookup, most of a short
 * string's cost (msgpackr writes with it too). Buffer#write where a Node
 * lacks it. Returns the bytes written; the caller reserved room for them.
 */
const utf8Write: (this: Buffer, s: string, offset: number) => number =
  (Buffer.prototype as unknown as { utf8Write?: (this: Buffer, s: string, offset: number) => number }).utf8Write ??
  function write(this: Buffer, s: string, offset: number): number {
    return this.write(s, offset, 'utf8');
  };
const objectPrototype = Object.prototype;

/** Binary values at least this long are referenced by `encodeParts`, not copied. */
export const EXTERNAL_BYTES = 64 * 1024;

/** msgpackr's type codes of typed arrays in its ext 0x74 (its `typedArrays` order). */
const typedArrayCodes = new Map<unknown, number>(
  [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array].map((ctor, code) => [ctor, code]),
);

/** Thrown inside `encodeTripleInto` when the encoding may grow too large for it (never escapes). */
const TOO_LARGE = Symbol('too large to encode in place');

/** An encoding in parts: concatenated, they are the msgpack bytes. */
export interface EncodedParts {
  readonly parts: readonly Uint8Array[];
  readonly byteLength: number;
}

export class MsgWriter {
  #buf: Buffer = Buffer.allocUnsafe(4096);
  #view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
  /** `#buf.byteLength`, kept as a number: the typed-array getter is slow under lockdown. */
  #capacity = 4096;
  #pos = 0;
  /** Parts finished so far (when encoding in parts), and where the current one starts in `#buf`. */
  #parts: Uint8Array[] | undefined;
  #partStart = 0;
  #partBytes = 0;

  /** The encoding of `value`; valid until the next call. */
  encode(value: unknown): Buffer {
    this.#pos = 0;
    this.#parts = undefined;
    this.#value(value);
    return this.#buf.subarray(0, this.#pos);
  }

  /**
   * The encoding of `value`, with binary values of `EXTERNAL_BYTES` or more
   * left where they are: then the encoding comes in parts, those values
   * being parts of their own that view the caller's memory (do not change
   * them before the parts are written). Usually there is no such value and
   * this is `encode(value)`. Valid until the next call.
   */
  encodeParts(value: unknown): Uint8Array | EncodedParts {
    this.#beginParts();
    this.#value(value);
    return this.#endParts();
  }

  /** `encodeParts([first, second, third])`, without making the array (a sys entry's tuple, per syscall). */
  encodeTripleParts(first: unknown, second: unknown, third: unknown): Uint8Array | EncodedParts {
    this.#beginParts();
    this.#byte(0x93);
    this.#value(first);
    this.#value(second);
    this.#value(third);
    return this.#endParts();
  }

  /**
   * Encode `[first, second, third]` straight into `buf` (a log writer's
   * frame buffer, `view` over it, `capacity` its byte length) from byte
   * `at`, growing it as needed (the bytes before `at` are kept). Returns
   * where the encoding ends; the buffer then holding it is `directBuffer`
   * (a new one if it grew, with `directView`). Returns -1 when the encoding
   * might take `EXTERNAL_BYTES` or more (a large value): nothing from `at`
   * on counts then, and the caller encodes in parts instead, so the bytes
   * are always those of `encodeTripleParts`. Saves the copy out of this
   * writer's own buffer, and the view over it, per syscall.
   */
  encodeTripleInto(buf: Buffer, view: DataView, capacity: number, at: number, first: unknown, second: unknown, third: unknown): number {
    const ownBuf = this.#buf;
    const ownView = this.#view;
    const ownCapacity = this.#capacity;
    this.#buf = buf;
    this.#view = view;
    this.#directLimit = at + EXTERNAL_BYTES;
    // Capped at the limit, so that `#reserve`'s one compare also keeps the encoding below it.
    this.#capacity = Math.min(capacity, this.#directLimit);
    this.#pos = at;
    this.#parts = undefined;
    try {
      this.#byte(0x93);
      this.#value(first);
      this.#value(second);
      this.#value(third);
      return this.#pos;
    } catch (error) {
      if (error === TOO_LARGE) return -1;
      throw error;
    } finally {
      this.directBuffer = this.#buf;
      this.directView = this.#view;
      this.#buf = ownBuf;
      this.#view = ownView;
      this.#capacity = ownCapacity;
      this.#directLimit = Infinity;
    }
  }

  /** The buffer (and a view of it) the last `encodeTripleInto` left its bytes in. */
  directBuffer: Buffer = this.#buf;
  directView: DataView = this.#view;
  /** While encoding into a caller's buffer: the offset the encoding must stay below. */
  #directLimit = Infinity;

  #beginParts(): void {
    this.#pos = 0;
    this.#parts = this.#noParts;
    this.#partStart = 0;
    this.#partBytes = 0;
  }

  #endParts(): Uint8Array | EncodedParts {
    const parts = this.#parts as Uint8Array[];
    this.#parts = undefined;
    // A plain view, not Buffer#subarray: that one builds a Buffer through species, several times slower.
    if (parts.length === 0) return new Uint8Array(this.#buf.buffer, this.#buf.byteOffset, this.#pos);
    this.#noParts = [];
    if (this.#pos > this.#partStart) parts.push(this.#buf.subarray(this.#partStart, this.#pos));
    return { parts, byteLength: this.#partBytes + this.#pos - this.#partStart };
  }

  /** An empty list for the parts of the next encoding (replaced once used). */
  #noParts: Uint8Array[] = [];

  /** Bytes of a binary value: copied, or (in parts mode, when large) referenced. */
  #payload(bytes: Uint8Array): void {
    if (this.#parts && bytes.byteLength >= EXTERNAL_BYTES) {
      if (this.#pos > this.#partStart) {
        this.#parts.push(this.#buf.subarray(this.#partStart, this.#pos));
        this.#partBytes += this.#pos - this.#partStart;
      }
      this.#parts.push(bytes);
      this.#partBytes += bytes.byteLength;
      // Later bytes go to a fresh region: earlier parts may still view this buffer.
      this.#buf = Buffer.allocUnsafe(4096);
      this.#view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
      this.#capacity = 4096;
      this.#pos = 0;
      this.#partStart = 0;
      return;
    }
    this.#reserve(bytes.byteLength);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.byteLength;
  }

  /** A typed array as msgpackr writes it with `moreTypes`: ext 0x74, its type code, its bytes. */
  #typedArray(array: ArrayBufferView, code: number): void {
    const length = array.byteLength + 1;
    this.#reserve(7);
    if (length < 0x100) {
      this.#view.setUint8(this.#pos, 0xc7);
      this.#view.setUint8(this.#pos + 1, length);
      this.#pos += 2;
    } else if (length < 0x10000) {
      this.#view.setUint8(this.#pos, 0xc8);
      this.#view.setUint16(this.#pos + 1, length);
      this.#pos += 3;
    } else {
      this.#view.setUint8(this.#pos, 0xc9);
      this.#view.setUint32(this.#pos + 1, length);
      this.#pos += 5;
    }
    this.#view.setUint8(this.#pos, 0x74);
    this.#view.setUint8(this.#pos + 1, code);
    this.#pos += 2;
    this.#payload(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
  }

  #value(value: unknown): void {
    switch (typeof value) {
      case 'string':
        return this.#string(value);
      case 'number':
        return this.#number(value);
      case 'boolean':
        return this.#byte(value ? 0xc3 : 0xc2);
      case 'undefined':
        this.#reserve(3);
        this.#view.setUint8(this.#pos, 0xd4);
        this.#view.setUint16(this.#pos + 1, 0);
        this.#pos += 3;
        return;
      case 'object':
        if (value === null) return this.#byte(0xc0);
        if (Array.isArray(value)) {
          this.#header(value.length, 0x90, 0xdc);
          for (let i = 0; i < value.length; i += 1) this.#value(value[i]);
          return;
        }
        if (Buffer.isBuffer(value)) return this.#bin(value);
        if (ArrayBuffer.isView(value)) {
          const code = typedArrayCodes.get(value.constructor);
          if (code !== undefined) return this.#typedArray(value, code);
        }
        {
          const proto = getPrototypeOf(value);
          if (proto === objectPrototype || proto === null) {
            const keys = Object.keys(value);
            this.#header(keys.length, 0x80, 0xde);
            for (let i = 0; i < keys.length; i += 1) {
              this.#string(keys[i]);
              this.#value((value as Record<string, unknown>)[keys[i]]);
            }
            return;
          }
        }
        return this.#raw(packr.pack(value));
      default:
        return this.#raw(packr.pack(value));
    }
  }

  #number(n: number): void {
    this.#reserve(9);
    const view = this.#view;
    if (Number.isInteger(n) && !Object.is(n, -0)) {
      if (n >= 0 && n < 128) {
        view.setUint8(this.#pos++, n);
        return;
      }
      if (n < 0 && n >= -32) {
        view.setInt8(this.#pos++, n);
        return;
      }
      if (n >= 0 && n <= 0xffffffff) {
        view.setUint8(this.#pos, 0xce);
        view.setUint32(this.#pos + 1, n);
        this.#pos += 5;
        return;
      }
      if (n < 0 && n >= -0x80000000) {
        view.setUint8(this.#pos, 0xd2);
        view.setInt32(this.#pos + 1, n);
        this.#pos += 5;
        return;
      }
    }
    view.setUint8(this.#pos, 0xcb);
    view.setFloat64(this.#pos + 1, n);
    this.#pos += 9;
  }

  #string(s: string): void {
    const length = s.length;
    this.#reserve(length * 3 + 5);
    const buf = this.#buf;
    const pos = this.#pos;
    if (length < 256) {
      // ASCII up to 255 characters (keys, names, paths, most small values): byte by byte, cheaper
      // than a call into Buffer's utf8 writer; a fixstr header up to 31 bytes, a str8 one up to 255.
      const at = pos + (length < 32 ? 1 : 2);
      let i = 0;
      for (; i < length; i += 1) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[at + i] = c;
      }
      if (i === length) {
        if (length < 32) buf[pos] = 0xa0 | length;
        else {
          buf[pos] = 0xd9;
          buf[pos + 1] = length;
        }
        this.#pos = at + length;
        return;
      }
      if (length < 32) {
        const written = utf8Write.call(buf, s, pos + 1);
        if (written < 32) {
          buf[pos] = 0xa0 | written;
          this.#pos = pos + 1 + written;
          return;
        }
      }
    }
    const written = utf8Write.call(buf, s, pos + 5);
    this.#view.setUint8(pos, 0xdb);
    this.#view.setUint32(pos + 1, written);
    this.#pos = pos + 5 + written;
  }

  #bin(bytes: Buffer): void {
    this.#reserve(5);
    this.#view.setUint8(this.#pos, 0xc6);
    this.#view.setUint32(this.#pos + 1, bytes.byteLength);
    this.#pos += 5;
    this.#payload(bytes);
  }

  #header(n: number, fix: number, wide16: number): void {
    this.#reserve(5);
    if (n < 16) {
      this.#view.setUint8(this.#pos++, fix | n);
    } else if (n < 0x10000) {
      this.#view.setUint8(this.#pos, wide16);
      this.#view.setUint16(this.#pos + 1, n);
      this.#pos += 3;
    } else {
      this.#view.setUint8(this.#pos, wide16 + 1);
      this.#view.setUint32(this.#pos + 1, n);
      this.#pos += 5;
    }
  }

  #byte(b: number): void {
    this.#reserve(1);
    this.#view.setUint8(this.#pos++, b);
  }

  #raw(bytes: Uint8Array): void {
    this.#reserve(bytes.byteLength);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.byteLength;
  }

  #reserve(n: number): void {
    if (this.#pos + n <= this.#capacity) return;
    if (this.#pos + n >= this.#directLimit) throw TOO_LARGE;
    const size = this.#buf.byteLength;
    if (this.#pos + n > size) {
      const next = Buffer.allocUnsafe(Math.max(size * 2, this.#pos + n));
      this.#buf.copy(next, 0, 0, this.#pos);
      this.#buf = next;
      this.#view = new DataView(next.buffer, next.byteOffset, next.byteLength);
    }
    this.#capacity = Math.min(this.#buf.byteLength, this.#directLimit);
  }
}
