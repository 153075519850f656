/**
 * `fetch` inside a service: one async syscall per request. The host performs
 * the request and reads the whole response (status, headers, body) before
 * the result crosses, so the log holds the response and replay needs no
 * network. The service gets a `Response` whose body is already in memory.
 */
import type { Membrane } from '../membrane/index.js';

interface RequestRecord {
  url: string;
  method: string;
  headers: Array<[string, string]>;
  body: string | Uint8Array | null;
}

interface ResponseRecord {
  url: string;
  status: number;
  statusText: string;
  redirected: boolean;
  headers: Array<[string, string]>;
  body: Uint8Array;
}

type HeadersInit = ConstructorParameters<typeof Headers>[0];
type BodyInit = NonNullable<RequestInit["body"]>;

const decoder = new TextDecoder();
/** Bodies of fetched responses: fresh copies no one else holds. */
const fetchedBodies = new WeakSet<Uint8Array>();

/** A fully-buffered Response, enough of the Fetch API for services. */
export class GuestResponse {
  readonly status: number;
  readonly statusText: string;
  readonly url: string;
  readonly redirected: boolean;
  readonly headers: Headers;
  readonly type = 'basic';
  #body: Uint8Array;
  #used = false;

  constructor(body?: string | Uint8Array | ArrayBuffer | null, init: { status?: number; statusText?: string; headers?: HeadersInit; url?: string; redirected?: boolean } = {}) {
    this.#body = typeof body === 'string' ? new TextEncoder().encode(body) : body instanceof ArrayBuffer ? new Uint8Array(body) : (body ?? new Uint8Array(0));
    this.status = init.status ?? 200;
    this.statusText = init.statusText ?? '';
    this.headers = new Headers(init.headers);
    this.url = init.url ?? '';
    this.redirected = init.redirected ?? false;
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  get bodyUsed(): boolean {
    return this.#used;
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
      // A fetched body is this response's own copy, read once: hand its buffer over (a 50 MB body is not copied again).
      if (fetchedBodies.has(body) && body.byteOffset === 0 && body.byteLength === body.buffer.byteLength && body.buffer instanceof ArrayBuffer) return Promise.resolve(body.buffer);
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

  clone(): GuestResponse {
    if (this.#used) throw new TypeError('Response.clone: Body has already been consumed.');
    return new GuestResponse(this.#body.slice(), { status: this.status, statusText: this.statusText, headers: this.headers, url: this.url, redirected: this.redirected });
  }

  static json(data: unknown, init: { status?: number; headers?: HeadersInit } = {}): GuestResponse {
    const headers = new Headers(init.headers);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    return new GuestResponse(JSON.stringify(data), { ...init, headers });
  }
}
harden(GuestResponse);

const toBody = (body: unknown): string | Uint8Array | null => {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string') return body;
  if (body instanceof URLSearchParams) return body.toString();
  if (body instanceof ArrayBuffer) return new Uint8Array(body.slice(0));
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
  throw new TypeError('fetch inside a service takes a string, URLSearchParams, ArrayBuffer or typed array body (streams and FormData are not supported yet)');
};

const normalize = (input: unknown, init: Record<string, unknown> = {}): RequestRecord => {
  let url: string;
  let method = 'GET';
  let headers = new Headers();
  if (typeof input === 'string') url = input;
  else if (input instanceof URL) url = input.href;
  else if (input && typeof input === 'object' && typeof (input as { url?: unknown }).url === 'string') {
    const req = input as { url: string; method?: string; headers?: HeadersInit };
    url = req.url;
    method = req.method ?? method;
    headers = new Headers(req.headers);
  } else throw new TypeError('fetch: the first argument must be a URL or a string');
  if (typeof init.method === 'string') method = init.method.toUpperCase();
  if (init.headers !== undefined) headers = new Headers(init.headers as HeadersInit);
  const pairs = [...headers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { url: new URL(url).href, method, headers: pairs, body: toBody(init.body) };
};

const hostFetch = async (request: RequestRecord): Promise<ResponseRecord> => {
  const response = await fetch(request.url, {
    method: request.method,
    headers: request.headers,
    body: request.body as BodyInit | null,
  });
  const body = new Uint8Array(await response.arrayBuffer());
  return {
    url: response.url,
    status: response.status,
    statusText: response.statusText,
    redirected: response.redirected,
    headers: [...response.headers],
    body,
  };
};

export const makeFetch = (membrane: Membrane) => {
  const guestFetch = (input: unknown, init?: Record<string, unknown>): Promise<GuestResponse> => {
    let request: RequestRecord;
    try {
      request = normalize(input, init);
    } catch (error) {
      return Promise.reject(error);
    }
    const pending = membrane.syscall('fetch', [request], req => hostFetch(req as RequestRecord)) as Promise<ResponseRecord>;
    return pending.then(r => {
      fetchedBodies.add(r.body);
      return new GuestResponse(r.body, {
        status: r.status,
        statusText: r.statusText,
        headers: r.headers,
        url: r.url,
        redirected: r.redirected,
      });
    });
  };
  return harden(guestFetch);
};
