/**
 * The body of a Fetch `Request` or `Response` inside a service (the Body
 * mixin of https://fetch.spec.whatwg.org/#body-mixin): either bytes already
 * in memory, or a `ReadableStream` of `Uint8Array` chunks (a request body
 * arriving over HTTP, a response body the service produces as it goes).
 * Read once: as text, JSON, an ArrayBuffer or bytes, or through `body`.
 *
 * Everything here runs inside the service's turn; the streams are the
 * host's `ReadableStream` (hardened, web.ts), driven by the service's own
 * code and by syscalls, never read by the host directly.
 */
import { Readable } from 'node:stream';
import { GuestReadableStream, teeStream } from './readable-stream.js';
import { formFromBody, formParts, isBlobLike, isFormDataLike, kitOf, readParts, type BodyPart, type FormKit } from './form-data.js';

// Captured once: a stream read from is disturbed (node:stream knows it for web streams too).
const { isDisturbed } = Readable;

const decoder = new TextDecoder();
const { isView } = ArrayBuffer;

/** Bodies no one else holds (a fetched response's fresh copy): arrayBuffer() may hand their buffer over. */
const ownedBodies = new WeakSet<Uint8Array>();

/** Mark a body as this body's own copy, so that reading it as an ArrayBuffer copies nothing (a 50 MB fetch). */
export const ownBody = (body: Uint8Array): Uint8Array => {
  ownedBodies.add(body);
  return body;
};

/** What a body is made from: bytes, a stream of Uint8Array chunks, or nothing (`body` is null). */
export type BodySource = Uint8Array | ReadableStream<Uint8Array> | null;

const concat = (chunks: readonly Uint8Array[], total: number): Uint8Array => {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
};

/** Read a stream of Uint8Array chunks to its end, into fresh bytes. */
export const readAll = async (stream: ReadableStream<Uint8Array>): Promise<Uint8Array> => {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (!(value instanceof Uint8Array)) throw new TypeError('Received non-Uint8Array chunk: a body stream must produce Uint8Array chunks (encode strings with TextEncoder)');
    chunks.push(value.slice());
    total += value.byteLength;
  }
  return ownBody(concat(chunks, total));
};

/** A stream of one chunk. */
/**
 * A body's stream, as Node's (undici's) extractBody makes one: a byte
 * stream (`supportsBYOB`, a BYOB reader works) holding the bytes as one
 * chunk. A copy is enqueued: a byte stream transfers (detaches) the whole
 * buffer of what it is given, and a recorded body is a view of the log's.
 */
const streamOfBytes = (bytes: Uint8Array): ReadableStream<Uint8Array> => {
  let control: ReadableByteStreamController | undefined;
  const stream = new GuestReadableStream({
    type: 'bytes',
    start(controller) {
      control = controller as ReadableByteStreamController;
      if (bytes.byteLength > 0) controller.enqueue(bytes.slice());
      controller.close();
    },
  }) as ReadableStream<Uint8Array>;
  if (control) byteControllers.set(stream, control);
  return stream;
};

/** The controllers of the streams made of bytes here: an aborted fetch errors its response's stream (abortBody). */
const byteControllers = new WeakMap<ReadableStream<Uint8Array>, ReadableByteStreamController>();

/** A stream that is errored with `reason` from the start. */
const erroredStream = (reason: unknown): ReadableStream<Uint8Array> =>
  new GuestReadableStream<Uint8Array>({
    start(controller) {
      controller.error(reason);
    },
  });

/**
 * The stream of a body made from one (or whose `body` was read), or
 * undefined for bytes: how the HTTP runtime tells a response to stream
 * from one to send whole. Private state, so no other object passes.
 */
export let bodyStreamOf: (body: unknown) => ReadableStream<Uint8Array> | undefined;
/** Read, or its stream locked by a reader: what Node calls an unusable body (clone, fetch and new Request refuse it). */
export let bodyUnusable: (body: FetchBody) => boolean;
/**
 * Hand a body over to a new Request made from its Request (`new
 * Request(request)`), as the Fetch standard does: the old body is used from
 * then on and its `body` a locked stream. Callers check bodyUnusable first.
 */
export let takeBody: (from: FetchBody) => BodySource;
/** Whether `body` (a Request or Response) was made with no body at all (`new Response(null)`, a 204): undefined for an object of another class. */
export let isNullBody: (body: unknown) => boolean | undefined;
/**
 * What an abort of a fetch's signal does to its response once it arrived,
 * as Node's fetch (undici) does: unless its body was already read, reading
 * it (`text()`, `json()`...) rejects with `DOMException [AbortError]: The
 * operation was aborted.`, and its `body` stream errors with the signal's
 * reason. Nothing once the body was read.
 */
export let abortBody: (body: FetchBody, reason: unknown) => void;

/** Callbacks run once when a body is read whole through text(), json()... (fetch then stops listening to its signal). */
const takenCallbacks = new WeakMap<FetchBody, () => void>();
/** Run `then` once `body` is read through text(), json(), arrayBuffer(), bytes() or blob(). */
export const onBodyTaken = (body: FetchBody, then: () => void): void => {
  takenCallbacks.set(body, then);
};

/**
 * A Request's or Response's own headers, for blob() (fetch.ts sets it): not
 * its `headers` getter, which a subclass may answer differently (Node reads
 * its internal header list).
 */
let headersOf: (body: FetchBody) => Headers | undefined = () => undefined;
/** Set how blob() reads a body's own headers (fetch.ts, once, for its Request and Response). */
export const readHeadersWith = (read: (body: FetchBody) => Headers | undefined): void => {
  headersOf = read;
};

/**
 * The service a Request or Response belongs to, for formData() (whose answer
 * is made of the service's FormData and File, form-data.ts): known for what
 * the library makes for a service (a fetched response, a request it serves)
 * and for a body made of the service's own form. The classes are shared by
 * every service, so a body made from text or bytes by `new Response()` has none.
 */
const formKits = new WeakMap<FetchBody, FormKit>();

/** Say which service's FormData and File `body.formData()` answers with. */
export const useFormKit = (body: FetchBody, kit: FormKit | undefined): void => {
  if (kit !== undefined) formKits.set(body, kit);
};

/** The service `from` belongs to, given to `to` (a clone, a Request made of another). */
export const shareFormKit = (from: FetchBody, to: FetchBody): void => useFormKit(to, formKits.get(from));

const NO_FORM_KIT =
  "formData() inside a service reads a fetched response, a request the service serves, or a body made of the service's FormData; this body was made from text or bytes by the service: parse them (new URLSearchParams(await body.text()) for a urlencoded form)";

export class FetchBody {
  #bytes: Uint8Array | undefined;
  #stream: ReadableStream<Uint8Array> | undefined;
  #used = false;
  /** Set by abortBody: the reason of the fetch's signal. */
  #aborted: { readonly reason: unknown } | undefined;

  constructor(source: BodySource) {
    if (source instanceof ReadableStream) this.#stream = source;
    else if (source !== null) this.#bytes = source;
  }

  // Module functions with access to the private state, not statics: a
  // service's Response and Request inherit FetchBody's statics, and must have
  // only Node's.
  static {
    bodyStreamOf = body => (typeof body === 'object' && body !== null && #stream in body ? (body as FetchBody).#stream : undefined);
    bodyUnusable = body => body.bodyUsed || body.#stream?.locked === true;
    isNullBody = body => (typeof body === 'object' && body !== null && #bytes in body ? (body as FetchBody).#bytes === undefined && (body as FetchBody).#stream === undefined && !(body as FetchBody).#used : undefined);
    abortBody = (body, reason) => {
      if (body.#aborted || body.#used || (body.#stream === undefined && body.#bytes === undefined)) return;
      const stream = body.#stream;
      if (stream && isDisturbed(stream)) {
        // Being read through `body`: the reads not yet answered fail with the reason (a read to its end changes nothing).
        try {
          byteControllers.get(stream)?.error(reason);
        } catch {
          // closed and drained already: the body was read
        }
        return;
      }
      body.#aborted = { reason };
      if (stream) byteControllers.get(stream)?.error(reason);
    };
    takeBody = from => {
      const source = from.#stream ?? from.#bytes ?? null;
      from.#used = true;
      if (from.#stream) {
        from.#stream = new GuestReadableStream<Uint8Array>();
        void from.#stream.getReader(); // locked, as a taken body's stream is
      }
      return source;
    };
  }

  /** The body as a stream (made on first use for a body held as bytes); null for no body. */
  get body(): ReadableStream<Uint8Array> | null {
    if (this.#stream) return this.#stream;
    if (this.#aborted) {
      this.#stream = erroredStream(this.#aborted.reason);
      this.#bytes = undefined;
      return this.#stream;
    }
    if (this.#bytes === undefined) return null;
    if (this.#used) {
      const spent = new GuestReadableStream<Uint8Array>();
      void spent.getReader(); // locked, as a consumed body's stream is
      return spent;
    }
    this.#stream = streamOfBytes(this.#bytes);
    this.#bytes = undefined;
    return this.#stream;
  }

  /** Read, through the methods below or through `body` (a stream read from is disturbed, as in undici). */
  get bodyUsed(): boolean {
    return this.#used || (this.#stream !== undefined && isDisturbed(this.#stream));
  }

  /** A copy of the body for clone(): bytes copied, a stream teed. TypeError once it was read. */
  protected copyBody(what: string): BodySource {
    if (this.bodyUsed || this.#stream?.locked) throw new TypeError(`${what}: Body has already been consumed.`);
    if (this.#stream) {
      const [mine, theirs] = teeStream(this.#stream, GuestReadableStream as typeof ReadableStream); // not the host's tee: see readable-stream.ts
      this.#stream = mine;
      return theirs;
    }
    return this.#bytes === undefined ? null : ownBody(this.#bytes.slice());
  }

  /** The whole body, once; bytes that may be this body's own (callers copy when they hand them out). */
  async #take(): Promise<Uint8Array> {
    // Node's Body mixin checks an aborted fetch first (undici: throwIfAborted), with its own message.
    if (this.#aborted) throw new DOMException('The operation was aborted.', 'AbortError');
    if (this.bodyUsed || this.#stream?.locked) throw new TypeError('Body is unusable: Body has already been read');
    // No body at all: reading it uses nothing (Node: bodyUsed stays false, it reads '' again, it clones).
    if (this.#stream === undefined && this.#bytes === undefined) return new Uint8Array(0);
    this.#used = true;
    const taken = takenCallbacks.get(this);
    if (taken) {
      takenCallbacks.delete(this);
      taken();
    }
    if (this.#stream) return readAll(this.#stream);
    return this.#bytes ?? new Uint8Array(0);
  }

  async text(): Promise<string> {
    return decoder.decode(await this.#take());
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text()) as unknown;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const body = await this.#take();
    if (ownedBodies.has(body) && body.byteOffset === 0 && body.byteLength === body.buffer.byteLength && body.buffer instanceof ArrayBuffer) return body.buffer;
    return body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer;
  }

  async bytes(): Promise<Uint8Array> {
    const body = await this.#take();
    if (!ownedBodies.has(body)) return body.slice();
    // Handed over: the service holds it now, so a body made from it later is a copy (Node copies one).
    ownedBodies.delete(body);
    return body;
  }

  /**
   * The body as the service's `FormData`, parsed by Node's own parser
   * (multipart/form-data or application/x-www-form-urlencoded, by the
   * Content-Type; its TypeError otherwise). A body with no known service
   * (see formKits) is refused with a TypeError before it is read.
   */
  async formData(): Promise<FormData> {
    const kit = formKits.get(this);
    if (kit === undefined) throw new TypeError(NO_FORM_KIT);
    const type = headersOf(this)?.get('content-type') ?? null;
    return formFromBody(await this.#take(), type, kit);
  }

  /**
   * The body as a `Blob` (Node's, the service's global), typed as Node
   * types it: the MIME type the Content-Type header gives, by the Fetch
   * standard's "extract a MIME type" (the last valid type of a list;
   * https://fetch.spec.whatwg.org/#concept-header-extract-mime-type), as
   * Blob lowercases it; '' without a valid one. Node's own Response, made
   * from the bytes and that one header, does the extraction.
   */
  async blob(): Promise<Blob> {
    const body = await this.#take();
    const type = headersOf(this)?.get('content-type') ?? null;
    // Read here, not at load: Node loads its fetch (undici) on the first read of the global.
    const HostResponse = (globalThis as { Response: typeof Response }).Response;
    return new HostResponse(body, { headers: type === null ? [] : [['content-type', type]] }).blob();
  }
}

/** A stream given as a body, checked as Node's extractBody does: TypeError when something read it or holds its reader. */
const usableStream = (stream: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> => {
  if (stream.locked || isDisturbed(stream)) throw new TypeError('Response body object should not be disturbed or locked');
  return stream;
};

/** The Content-Type a string body implies, and a URLSearchParams body (https://fetch.spec.whatwg.org/#concept-bodyinit-extract). */
const TEXT_TYPE = 'text/plain;charset=UTF-8';
export const FORM_TYPE = 'application/x-www-form-urlencoded;charset=UTF-8';

/** An object with Symbol.asyncIterator that is not a stream (an async generator, a Node Readable): Node's fetch takes it as a stream body. */
const isAsyncIterableBody = (body: unknown): body is AsyncIterable<unknown> =>
  typeof body === 'object' && body !== null && !(body instanceof ReadableStream) && typeof (body as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function';

/**
 * An async iterable's chunks as a body stream, as undici's
 * ReadableStreamFrom makes one: each chunk through Buffer.from (a string is
 * its UTF-8 bytes; a number is Node's TypeError), empty ones skipped.
 */
const iterableStream = (iterable: AsyncIterable<unknown>): ReadableStream<Uint8Array> => {
  let iterator: AsyncIterator<unknown> | undefined;
  return new GuestReadableStream<Uint8Array>(
    {
      async pull(controller) {
        iterator ??= iterable[Symbol.asyncIterator]();
        const { done, value } = await iterator.next();
        if (done) {
          controller.close();
          return;
        }
        const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value as string);
        if (bytes.byteLength > 0) controller.enqueue(new Uint8Array(bytes));
      },
      async cancel(reason) {
        await iterator?.return?.(reason);
      },
    },
    { highWaterMark: 0 },
  );
};

/** What a body given to a Request, a Response or fetch is (bodyContent). */
export type BodyContent =
  | { readonly kind: 'text'; readonly text: string; readonly type: string }
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array }
  | { readonly kind: 'stream'; readonly stream: ReadableStream<Uint8Array> }
  | { readonly kind: 'parts'; readonly parts: readonly BodyPart[]; readonly type: string | null; readonly kit?: FormKit };

/**
 * A body as the Fetch standard's "extract a body" takes it in Node
 * (undici), classified once for Request, Response and fetch: text (a
 * string, URLSearchParams, or any other value as the string WebIDL makes of
 * it: `new Response(12345)` is '12345'), with the Content-Type it implies;
 * bytes (a copy of an ArrayBuffer or view, or a fetched body this module
 * owns); a stream (a ReadableStream nothing read or locked, or an async
 * iterable made one); parts (a FormData, encoded as multipart/form-data, or
 * a Blob, with its type: read when the body is, as undici streams them).
 * null for no body. Throws TypeError for a Symbol, a disturbed or locked stream.
 */
export const bodyContent = (body: unknown): BodyContent | null => {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string') return { kind: 'text', text: body, type: TEXT_TYPE };
  if (body instanceof ReadableStream) return { kind: 'stream', stream: usableStream(body as ReadableStream<Uint8Array>) };
  if (body instanceof Uint8Array && ownedBodies.has(body)) return { kind: 'bytes', bytes: body };
  if (body instanceof ArrayBuffer) return { kind: 'bytes', bytes: new Uint8Array(body.slice(0)) };
  if (isView(body)) return { kind: 'bytes', bytes: new Uint8Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength)) };
  if (body instanceof URLSearchParams) return { kind: 'text', text: body.toString(), type: FORM_TYPE };
  if (isFormDataLike(body)) return { kind: 'parts', ...formParts(body), kit: kitOf(body) };
  if (isBlobLike(body)) return { kind: 'parts', parts: [body], type: body.type || null };
  if (isAsyncIterableBody(body)) return { kind: 'stream', stream: iterableStream(body) };
  return { kind: 'text', text: bodyString(body), type: TEXT_TYPE };
};

/** A body's content as FetchBody holds it: bytes (text encoded) or a stream. */
export const bodySource = (content: BodyContent | null): BodySource =>
  content === null
    ? null
    : content.kind === 'text'
      ? new TextEncoder().encode(content.text)
      : content.kind === 'bytes'
        ? content.bytes
        : content.kind === 'parts'
          ? iterableStream(readParts(content.parts))
          : content.stream;

/** WebIDL's string of any other body value, as Node converts it (a Symbol: undici's TypeError; a lone surrogate becomes U+FFFD when encoded). */
const bodyString = (body: unknown): string => {
  if (typeof body === 'symbol') throw new TypeError('undefined: undefined is a symbol, which cannot be converted to a DOMString.');
  return String(body);
};
