/**
 * `runtime` in the library module a service imports (`import { runtime }
 * from 'membrane-snapshot'`): how the service asks to run once restored.
 *
 * `runtime.declare({ http: { port: 8080 }, replicas: 2 })` is checked here,
 * inside the service's turn, then made as the syscall `runtime.declare`, so
 * it is recorded at build time and absorbed on replay like any other.
 * The syscall hands the host one more thing: `httpAdapter`, a function the
 * host calls (a delivery) with the service's fetch handler and a copied
 * request record; it builds a `Request` inside the service, runs the
 * handler there, and answers with a copied response record. Requests and
 * responses therefore cross as data, never as references.
 */
import { SnapshotError } from '../replay-log/index.js';
import { markLibraryError, type Membrane } from '../membrane/index.js';
import { hostHeaders } from './web.js';
import { checkDeclaration, describeValue, type RuntimeDeclaration } from './runtime-limits.js';

export type { RuntimeDeclaration } from './runtime-limits.js';
import { bodyStreamOf, isNullBody, useFormKit } from './fetch-body.js';
import type { FormKit } from './form-data.js';
import { GuestReadableStream } from './readable-stream.js';
import { GuestRequest } from './fetch.js';

/**
 * A request as it crosses into a service: bytes and strings only. Its body
 * is either here whole (`body`) or streamed (`stream`: the service pulls
 * each chunk with `io.read(id)` as it reads the body).
 */
export interface RequestRecord {
  /** The request's number on its server, for `HttpIo` calls. */
  readonly id: number;
  readonly url: string;
  readonly method: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** The whole body. */
  readonly body?: Uint8Array;
  /** The body is streamed through `io.read(id)`. */
  readonly stream?: true;
}

/** A response head: what is sent before the body. */
export interface ResponseHead {
  readonly status: number;
  readonly statusText: string;
  readonly headers: Array<[string, string]>;
}

/**
 * A response as it leaves a service: its head with the whole body, or with
 * `streamed` when the head and each chunk were sent through `io` (a
 * ReadableStream body) and the body has ended.
 */
export interface ResponseRecord extends ResponseHead {
  readonly body?: Uint8Array;
  readonly streamed?: true;
}

/**
 * The HTTP runtime's side of streamed bodies, one object per server,
 * handed to the adapter with each request (it crosses once, so it is one
 * import however many requests come). The service reaches it only through
 * the membrane: each call is a syscall with copied arguments, and each
 * promise it returns settles in a delivery.
 */
export interface HttpIo {
  /** The next chunk of request `id`'s body, or null at its end. */
  read(id: number): Promise<Uint8Array | null>;
  /** Stop reading request `id`'s body (the service cancelled its stream). */
  cancel(id: number): void;
  /** Send request `id`'s response head; the body follows with write(). */
  respond(id: number, head: ResponseHead): void;
  /** Send one chunk of the body; resolves when the client can take more. */
  write(id: number, chunk: Uint8Array): Promise<void>;
  /**
   * Register the adapter's abort callback (once per server): the host calls
   * `abort(id, reason)` when request `id`'s client goes away before its
   * response ended, and the handler's `request.signal` aborts with `reason`
   * (@hono/node-server's: 'Client connection prematurely closed.').
   */
  watch(abort: (id: number, reason: string) => void): void;
}

export { MAX_REPLICAS } from './runtime-limits.js';

/** Raised into the service, marked as the library's so it keeps its code on the way out. */
const invalid = (error: SnapshotError): SnapshotError => markLibraryError(error);

/**
 * Check a declaration and return a frozen copy holding only known fields.
 * Throws DECLARATION_INVALID saying which field is wrong and what it takes.
 */
export const validateDeclaration = (value: unknown): RuntimeDeclaration => checkDeclaration(value, invalid);

type Handler = (request: GuestRequest) => unknown;

/** The body of a streamed request: each chunk is pulled from the host as the service reads. */
const requestStream = (io: HttpIo, id: number): ReadableStream<Uint8Array> =>
  new GuestReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const chunk = await io.read(id);
        if (chunk === null) controller.close();
        else controller.enqueue(chunk);
      },
      cancel() {
        io.cancel(id);
      },
    },
    { highWaterMark: 0 },
  );

/**
 * The request a handler gets: the service's own `Request` (the global, so
 * `request instanceof Request`, `clone()` and every body method are the
 * ones it has), made as a server built on Node makes it (@hono/node-server:
 * `new Request(url, { method, headers, body, duplex: 'half' })`, no body
 * for GET and HEAD). A method Node's Request refuses (TRACE) fails the
 * request before the handler runs, as it does there.
 */
const requestOf = (record: RequestRecord, io: HttpIo, signal: AbortSignal, form: FormKit | undefined): GuestRequest => {
  const method = String(record.method);
  const bodyless = method === 'GET' || method === 'HEAD';
  const body = bodyless ? null : record.stream ? requestStream(io, record.id) : record.body instanceof Uint8Array ? record.body : null;
  const request = new GuestRequest(String(record.url), { method, headers: record.headers as Array<[string, string]>, signal, ...(body === null ? {} : { body, duplex: 'half' }) });
  useFormKit(request, form); // request.formData() answers with the service's FormData (a form posted to it)
  return request;
};

/** Per server (its HttpIo, which crosses once): the abort controllers of its requests in flight, by id. */
const inFlight = new WeakMap<HttpIo, Map<number, AbortController>>();

/** The signal of request `id`, aborted when the host says its client went away (HttpIo.watch). */
const signalOf = (io: HttpIo, id: number): { signal: AbortSignal; done(): void } => {
  let controllers = inFlight.get(io);
  if (controllers === undefined) {
    const byId = new Map<number, AbortController>();
    inFlight.set(io, byId);
    controllers = byId;
    io.watch(
      harden((aborted: number, reason: string) => {
        byId.get(aborted)?.abort(reason);
      }),
    );
  }
  const controller = new AbortController();
  controllers.set(id, controller);
  const owner = controllers;
  return { signal: controller.signal, done: () => void owner.delete(id) };
};

/** The head of what a handler answered (inside the service's turn). */
const headOf = (response: unknown): ResponseHead => {
  const r = response as { status?: unknown; statusText?: unknown; headers?: unknown; arrayBuffer?: unknown } | null;
  if (typeof r !== 'object' || r === null || typeof r.status !== 'number' || typeof r.arrayBuffer !== 'function') {
    throw new TypeError(`the fetch handler returned ${describeValue(response)}, not a Response: return new Response(body, { status, headers })`);
  }
  const headers: Array<[string, string]> = [];
  if (r.headers instanceof hostHeaders()) r.headers.forEach((v, k) => headers.push([k, v]));
  return { status: r.status, statusText: typeof r.statusText === 'string' ? r.statusText : '', headers };
};

/**
 * Send a ReadableStream body as it is produced: the head first, then each
 * chunk, waiting for the client to take it (backpressure) before reading
 * the next. The stream is cancelled if the client goes away.
 */
const sendStream = async (io: HttpIo, id: number, head: ResponseHead, stream: ReadableStream<Uint8Array>): Promise<ResponseRecord> => {
  const reader = stream.getReader();
  io.respond(id, head);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!(value instanceof Uint8Array)) throw new TypeError('Received non-Uint8Array chunk: a Response body stream must produce Uint8Array chunks (encode strings with TextEncoder)');
      await io.write(id, value);
    }
  } catch (error) {
    reader.cancel(error).catch(() => {});
    throw error;
  }
  return { ...head, streamed: true };
};

/**
 * Delivered by the HTTP runtime: `target` is the service's `fetch` export
 * (a function) or its default export (an object with a `fetch` method).
 * A response whose body is bytes crosses back whole, in the answer; one
 * whose body is a ReadableStream is sent through `io` as it is produced.
 */
const makeHttpAdapter = (form: FormKit | undefined) =>
  harden(async function httpAdapter(target: unknown, record: RequestRecord, io: HttpIo): Promise<ResponseRecord> {
    let handler: Handler;
    if (typeof target === 'function') handler = target as Handler;
    else if (typeof target === 'object' && target !== null && typeof (target as { fetch?: unknown }).fetch === 'function') {
      handler = request => (target as { fetch: Handler }).fetch(request);
    } else throw new TypeError('the service exports no fetch(request) handler');
    const { signal, done } = signalOf(io, record.id);
    try {
      const response = await handler(requestOf(record, io, signal, form));
      const head = headOf(response);
      // No body at all (a 204, a 304, new Response(null)): none is sent, as Node sends none (a body, even empty, is refused for those statuses).
      if (isNullBody(response) ?? (response as { body?: unknown }).body === null) return head;
      const stream = bodyStreamOf(response);
      if (stream && record.method !== 'HEAD') return await sendStream(io, record.id, head, stream);
      const bytes = new Uint8Array((await (response as { arrayBuffer: () => Promise<ArrayBuffer> }).arrayBuffer()) as ArrayBuffer);
      return { ...head, body: bytes };
    } finally {
      done();
    }
  });

/** What the host does with a declaration (build time only); absent on restore hosts. */
export type DeclareHost = (declaration: RuntimeDeclaration, httpAdapter: unknown) => void;

/** The `runtime` object of the library module, for one service (`form`: its FormData and File, for the requests it serves). */
export const makeRuntime = (membrane: Membrane, declareHost: DeclareHost | undefined, form?: FormKit): { declare(declaration: unknown): void } => {
  const httpAdapter = makeHttpAdapter(form);
  return harden({
    declare(declaration: unknown): void {
      const checked = validateDeclaration(declaration);
      membrane.syscall('runtime.declare', [checked, httpAdapter], (d, adapter) => {
        if (!declareHost) throw new TypeError('runtime.declare() is made while a snapshot is built, at module top level; it has no effect once the service is live');
        declareHost(d as RuntimeDeclaration, adapter);
      });
    },
  });
};
