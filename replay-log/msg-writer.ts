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
 */
import { packr } from './codec.js';

const { getPrototypeOf } = Object;
const objectPrototype = Object.prototype;

export class MsgWriter {
  #buf: Buffer = Buffer.allocUnsafe(4096);
  #view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
  #pos = 0;

  /** The encoding of `value`; valid until the next call. */
  encode(value: unknown): Buffer {
    this.#pos = 0;
    this.#value(value);
    return this.#buf.subarray(0, this.#pos);
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
          for (const item of value) this.#value(item);
          return;
        }
        if (Buffer.isBuffer(value)) return this.#bin(value);
        {
          const proto = getPrototypeOf(value);
          if (proto === objectPrototype || proto === null) {
            const keys = Object.keys(value);
            this.#header(keys.length, 0x80, 0xde);
            for (const key of keys) {
              this.#string(key);
              this.#value((value as Record<string, unknown>)[key]);
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
    this.#reserve(s.length * 3 + 5);
    if (s.length < 32) {
      const written = this.#buf.write(s, this.#pos + 1, 'utf8');
      if (written < 32) {
        this.#view.setUint8(this.#pos, 0xa0 | written);
        this.#pos += 1 + written;
        return;
      }
    }
    const written = this.#buf.write(s, this.#pos + 5, 'utf8');
    this.#view.setUint8(this.#pos, 0xdb);
    this.#view.setUint32(this.#pos + 1, written);
    this.#pos += 5 + written;
  }

  #bin(bytes: Buffer): void {
    this.#reserve(bytes.byteLength + 5);
    this.#view.setUint8(this.#pos, 0xc6);
    this.#view.setUint32(this.#pos + 1, bytes.byteLength);
    bytes.copy(this.#buf, this.#pos + 5);
    this.#pos += 5 + bytes.byteLength;
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
    if (this.#pos + n <= this.#buf.byteLength) return;
    const next = Buffer.allocUnsafe(Math.max(this.#buf.byteLength * 2, this.#pos + n));
    this.#buf.copy(next, 0, 0, this.#pos);
    this.#buf = next;
    this.#view = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }
}
