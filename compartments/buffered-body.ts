/**
 * The body of a fully buffered Fetch `Request` or `Response` inside a
 * service (the Body mixin of https://fetch.spec.whatwg.org/#body-mixin,
 * without streams): read once, as text, JSON, an ArrayBuffer or bytes.
 */
const decoder = new TextDecoder();

/** Bodies no one else holds (a fetched response's fresh copy): arrayBuffer() may hand their buffer over. */
const ownedBodies = new WeakSet<Uint8Array>();

/** Mark a body as this body's own copy, so that reading it as an ArrayBuffer copies nothing (a 50 MB fetch). */
export const ownBody = (body: Uint8Array): Uint8Array => {
  ownedBodies.add(body);
  return body;
};

export class BufferedBody {
  #body: Uint8Array;
  #used = false;

  constructor(body: Uint8Array) {
    this.#body = body;
  }

  get bodyUsed(): boolean {
    return this.#used;
  }

  /** A copy of the body, for clone(); TypeError once it was read. */
  protected copyBody(what: string): Uint8Array {
    if (this.#used) throw new TypeError(`${what}: Body has already been consumed.`);
    return this.#body.slice();
  }

  #take(): Uint8Array {
    if (this.#used) throw new TypeError('Body is unusable: Body has already been read');
    this.#used = true;
    return this.#body;
  }

  text(): Promise<string> {
    try {
      return Promise.resolve(decoder.decode(this.#take()));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  json(): Promise<unknown> {
    return this.text().then(text => JSON.parse(text) as unknown);
  }

  arrayBuffer(): Promise<ArrayBuffer> {
    try {
      const body = this.#take();
      if (ownedBodies.has(body) && body.byteOffset === 0 && body.byteLength === body.buffer.byteLength && body.buffer instanceof ArrayBuffer) return Promise.resolve(body.buffer);
      return Promise.resolve(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  bytes(): Promise<Uint8Array> {
    try {
      return Promise.resolve(this.#take().slice());
    } catch (error) {
      return Promise.reject(error);
    }
  }
}
