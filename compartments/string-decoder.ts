/**
 * `string_decoder` for one service: Node's own decoder (lib/string_decoder.js
 * over its C++ decoder) behind a class of the service's own, so that it
 * decodes exactly as Node does (every encoding, base64url included; any
 * TypedArray or DataView; the same errors: ERR_INVALID_ARG_TYPE,
 * ERR_UNKNOWN_ENCODING, ERR_INVALID_THIS), where the npm port decoded a
 * Uint8Array that is no Buffer as the text of its numbers ("65,66", found
 * by the fidelity review). The class, its prototype and its methods are the
 * service's: it may change or subclass them, as in Node; the host's decoder
 * each instance holds is never handed out (`lastChar` is a copy of its
 * pending bytes, where Node gives a view of its state).
 *
 * The shape is Node 20's: a function `StringDecoder(encoding)` with an own
 * `encoding`; `write`, `end` and `text` on the prototype (`end` and `text`
 * call `this.write`, so a subclass's write is used); `lastChar`,
 * `lastNeed` and `lastTotal` enumerable getters.
 */
import { StringDecoder as HostStringDecoder } from 'node:string_decoder';

/** What @types/node leaves out of Node's StringDecoder (its text() and state getters). */
interface HostDecoder extends HostStringDecoder {
  text(buf: Uint8Array, offset: number): string;
  readonly lastChar: Uint8Array;
  readonly lastNeed: number;
  readonly lastTotal: number;
}

interface BufferClass {
  from(bytes: Uint8Array): Uint8Array;
}

/** A StringDecoder class (in a module object, `{ StringDecoder }`, as Node's) for one service, whose Buffer is `ServiceBuffer`. */
export const makeStringDecoderModule = (ServiceBuffer: BufferClass): { StringDecoder: unknown } => {
  const decoders = new WeakMap<object, HostDecoder>();
  const hostWrite = HostStringDecoder.prototype.write;
  /** The host decoder of `self`; for anything else Node's ERR_INVALID_THIS, thrown by Node's own write. */
  const decoderOf = (self: unknown): HostDecoder => {
    const decoder = typeof self === 'object' && self !== null ? decoders.get(self) : undefined;
    if (decoder === undefined) {
      Reflect.apply(hostWrite, {}, [new Uint8Array(0)]); // throws ERR_INVALID_THIS
      throw new TypeError('Value of "this" must be of type StringDecoder');
    }
    return decoder;
  };
  // A function, as Node's: StringDecoder.length is 1, and it is no class.
  const StringDecoder = function StringDecoder(this: { encoding?: string }, encoding?: string): void {
    const decoder = new HostStringDecoder(encoding as BufferEncoding); // throws ERR_UNKNOWN_ENCODING as Node does
    this.encoding = (decoder as unknown as { encoding: string }).encoding;
    decoders.set(this, decoder as HostDecoder);
  };
  const proto = StringDecoder.prototype as Record<string, unknown>;
  proto.write = function write(this: unknown, buf: unknown): string {
    if (typeof buf === 'string') return buf;
    // Node's write checks the argument before the receiver.
    if (!ArrayBuffer.isView(buf)) return hostWrite.call(new HostStringDecoder(), buf as Buffer);
    return decoderOf(this).write(buf as Buffer);
  };
  proto.end = function end(this: { write(buf: unknown): string }, buf?: unknown): string {
    let text = '';
    if (buf !== undefined) text = this.write(buf);
    return text + decoderOf(this).end();
  };
  proto.text = function text(this: { write(buf: unknown): string }, buf: Uint8Array, offset: number): string {
    decoderOf(this).text(new Uint8Array(0), 0); // Node's text forgets what was pending first
    return this.write(buf.slice(offset));
  };
  Object.defineProperties(proto, {
    lastChar: {
      configurable: true,
      enumerable: true,
      get(this: unknown) {
        return ServiceBuffer.from(decoderOf(this).lastChar);
      },
    },
    lastNeed: {
      configurable: true,
      enumerable: true,
      get(this: unknown) {
        return decoderOf(this).lastNeed;
      },
    },
    lastTotal: {
      configurable: true,
      enumerable: true,
      get(this: unknown) {
        return decoderOf(this).lastTotal;
      },
    },
  });
  return { StringDecoder };
};
