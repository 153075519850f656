/**
 * `fetch` inside a service: one async syscall per request. The host performs
 * the request and reads the whole response (status, headers, body) before
 * the result crosses, so the log holds the response and replay needs no
 * network. The service gets a `Response` whose body is already in memory.
 *
 * Secret headers (and, for secret hosts, every header and both bodies) are
 * marked `secret()` on their way into the log, so they are sealed there
 * (compartments/secrets.ts). The reach policy is checked on the host before
 * each request and each redirect it follows (compartments/reach.ts).
 */
import type { Membrane } from '../membrane/index.js';
import { makeReach, type Reach } from './reach.js';
import { FetchBody, ownBody, toBodySource } from './fetch-body.js';
import { makeSecretMatcher, type SecretMatcher } from './secrets.js';
import { nameAs } from './errors.js';
import { hostHeaders } from './web.js';

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


/**
 * Header lists of recorded responses (fetch below): arrays this module made
 * and no service holds, so their Headers may be made on first use.
 */
const recordedHeaders = new WeakSet<object>();

/**
 * A Response, enough of the Fetch API for services: its body is bytes (a
 * fetched response, a string...) or a ReadableStream the service produces,
 * which the HTTP runtime sends as it comes (lib/http.ts).
 */
export class GuestResponse extends FetchBody {
  readonly status: number;
  readonly statusText: string;
  readonly url: string;
  readonly redirected: boolean;
  /** 'basic' for a fetched response, 'default' for one the service made, as in Node. */
  readonly type: 'basic' | 'default';
  #headers: Headers | undefined;
  readonly #headerList: Array<[string, string]> | undefined;

  constructor(body?: unknown, init: { status?: number; statusText?: string; headers?: HeadersInit; url?: string; redirected?: boolean } = {}) {
    super(toBodySource(body, 'new Response()'));
    this.status = init.status ?? 200;
    this.statusText = init.statusText ?? '';
    // A service's own init is read now (as Node does: later changes to it do not show, bad
    // names throw here); a recorded response's list is made into Headers when first read.
    const fetched = typeof init.headers === 'object' && init.headers !== null && recordedHeaders.has(init.headers);
    if (fetched) this.#headerList = init.headers as Array<[string, string]>;
    else {
      this.#headers = new (hostHeaders())(init.headers);
      // The Content-Type its body implies, as Node's Response sets it ('text/plain;charset=UTF-8' for a string).
      const implied = impliedContentType(body);
      if (implied !== undefined && !this.#headers.has('content-type')) this.#headers.set('content-type', implied);
    }
    this.type = fetched ? 'basic' : 'default';
    this.url = init.url ?? '';
    this.redirected = init.redirected ?? false;
  }

  /** A getter, as on Node's Response (the same Headers every time). */
  get headers(): Headers {
    return (this.#headers ??= new (hostHeaders())(this.#headerList));
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  clone(): GuestResponse {
    return new GuestResponse(this.copyBody('Response.clone'), { status: this.status, statusText: this.statusText, headers: this.headers, url: this.url, redirected: this.redirected });
  }

  static json(data: unknown, init: { status?: number; headers?: HeadersInit } = {}): GuestResponse {
    const headers = new (hostHeaders())(init.headers);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    return new GuestResponse(JSON.stringify(data), { ...init, headers });
  }
}
// Named and tagged as Node's: `Response.name`, `String(response)` is [object Response].
nameAs(GuestResponse, 'Response');
harden(GuestResponse);

const toBody = (body: unknown): string | Uint8Array | null => {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string') return body;
  if (body instanceof URLSearchParams) return body.toString();
  if (body instanceof ArrayBuffer) return new Uint8Array(body.slice(0));
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
  throw new TypeError('fetch inside a service takes a string, URLSearchParams, ArrayBuffer or typed array body (streams, Blob and FormData are not supported yet)');
};

/** The Content-Type a body implies (https://fetch.spec.whatwg.org/#concept-bodyinit-extract), when it implies one. */
const impliedContentType = (body: unknown): string | undefined =>
  typeof body === 'string' ? 'text/plain;charset=UTF-8' : body instanceof URLSearchParams ? 'application/x-www-form-urlencoded;charset=UTF-8' : undefined;

/** What `new Request(input, init)` reads from `init`. */
export interface GuestRequestInit {
  readonly method?: string;
  readonly headers?: HeadersInit;
  readonly body?: unknown;
  readonly signal?: AbortSignal | null;
  readonly redirect?: 'follow' | 'manual' | 'error';
  readonly [key: string]: unknown;
}

const standardMethods = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT']);
const requestBodies = new WeakMap<object, string | Uint8Array | null>();
/** Requests whose body is a ReadableStream (`duplex: 'half'`): read to its end when fetched or read. */
const requestStreams = new WeakMap<object, ReadableStream>();

const isReadableStream = (value: unknown): value is ReadableStream => typeof ReadableStream === 'function' && value instanceof ReadableStream;

/** Read a stream of byte chunks to its end; TypeError for a chunk that is not bytes. */
const readAll = async (stream: ReadableStream): Promise<Uint8Array> => {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  for (;;) {
    const { done, value } = (await reader.read()) as { done: boolean; value: unknown };
    if (done) break;
    if (!(value instanceof Uint8Array)) throw new TypeError('Received non-Uint8Array chunk');
    chunks.push(value);
    length += value.byteLength;
  }
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
};
const textDecoder = new TextDecoder();

/**
 * The WinterCG `Request` services get (the global `Request`): a URL, a
 * method, the service's Headers and a fully buffered body (a string,
 * URLSearchParams, ArrayBuffer or typed array; no streams). `fetch` takes
 * it as its input, body included. `url` must be absolute (there is no
 * document base), as in Node.
 */
export class GuestRequest extends FetchBody {
  readonly url: string;
  readonly method: string;
  readonly headers: Headers;
  readonly signal: AbortSignal;
  readonly redirect: string;
  readonly credentials = 'same-origin';
  readonly mode = 'cors';
  readonly cache = 'default';
  readonly referrer = 'about:client';
  readonly referrerPolicy = '';
  readonly integrity = '';
  readonly keepalive = false;
  readonly destination = '';
  readonly duplex = 'half';

  constructor(input: unknown, init: GuestRequestInit = {}) {
    const base = input instanceof GuestRequest ? input : undefined;
    let body: string | Uint8Array | null;
    let stream: ReadableStream | undefined;
    if (isReadableStream(init.body)) {
      if (init.duplex !== 'half') throw new TypeError('RequestInit: duplex option is required when sending a body.');
      stream = init.body;
      body = null;
    } else if (init.body !== undefined && init.body !== null) body = toBody(init.body);
    else if (base) {
      body = requestBodies.get(base) ?? null;
      stream = requestStreams.get(base);
    } else body = null;
    super(body === null ? null : typeof body === 'string' ? new TextEncoder().encode(body) : body);
    if (base?.bodyUsed) throw new TypeError('Cannot construct a Request with a Request object that has already been used.');
    this.url = base ? base.url : new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : String(input)).href;
    const method = typeof init.method === 'string' ? init.method : (base?.method ?? 'GET');
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(method)) throw new TypeError(`'${method}' is not a valid HTTP method.`);
    this.method = standardMethods.has(method.toUpperCase()) ? method.toUpperCase() : method;
    if ((body !== null || stream) && (this.method === 'GET' || this.method === 'HEAD')) throw new TypeError('Request with GET/HEAD method cannot have body.');
    this.headers = new (hostHeaders())(init.headers ?? base?.headers);
    const implied = init.body === undefined ? undefined : impliedContentType(init.body);
    if (implied && !this.headers.has('content-type')) this.headers.set('content-type', implied);
    this.signal = init.signal ?? base?.signal ?? new AbortController().signal;
    this.redirect = init.redirect ?? base?.redirect ?? 'follow';
    requestBodies.set(this, body);
    if (stream) requestStreams.set(this, stream);
  }

  clone(): GuestRequest {
    if (this.bodyUsed) throw new TypeError('Request.clone: Body has already been consumed.');
    const stream = requestStreams.get(this);
    if (!stream) return new GuestRequest(this);
    // As the Fetch standard does: tee the stream, one branch each.
    const [mine, theirs] = stream.tee();
    requestStreams.set(this, mine);
    const copy = new GuestRequest(this);
    requestStreams.set(copy, theirs);
    return copy;
  }

  // A stream body is read to its end first.
  text(): Promise<string> {
    const stream = requestStreams.get(this);
    return stream ? readAll(stream).then(bytes => textDecoder.decode(bytes)) : super.text();
  }

  json(): Promise<unknown> {
    return this.text().then(text => JSON.parse(text) as unknown);
  }

  arrayBuffer(): Promise<ArrayBuffer> {
    const stream = requestStreams.get(this);
    return stream ? readAll(stream).then(bytes => bytes.buffer as ArrayBuffer) : super.arrayBuffer();
  }

  bytes(): Promise<Uint8Array> {
    const stream = requestStreams.get(this);
    return stream ? readAll(stream) : super.bytes();
  }
}
nameAs(GuestRequest, 'Request');
harden(GuestRequest);

const normalize = (input: unknown, init: Record<string, unknown> = {}, secrets?: SecretMatcher): RequestRecord => {
  let url: string;
  let method = 'GET';
  // No headers given: none (without loading Headers, see hostHeaders).
  let headers: Iterable<[string, string]> = [];
  if (typeof input === 'string') url = input;
  else if (input instanceof URL) url = input.href;
  else if (input && typeof input === 'object' && typeof (input as { url?: unknown }).url === 'string') {
    const req = input as { url: string; method?: string; headers?: HeadersInit };
    url = req.url;
    method = req.method ?? method;
    headers = new (hostHeaders())(req.headers);
  } else throw new TypeError('fetch: the first argument must be a URL or a string');
  if (typeof init.method === 'string') method = init.method.toUpperCase();
  if (init.headers !== undefined) headers = new (hostHeaders())(init.headers as HeadersInit);
  // A URLSearchParams body crosses as its text: the form Content-Type it implies is set here, as Node's
  // fetch sets it (the host's fetch would send text/plain). A string implies text/plain there too.
  if (init.body instanceof URLSearchParams) {
    const withType = new (hostHeaders())(headers as HeadersInit);
    if (!withType.has('content-type')) withType.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
    headers = withType;
  }
  const href = new URL(url).href;
  const secretHost = secrets?.isSecretHost(href) ?? false;
  let body = toBody(init.body);
  if (body === null && input instanceof GuestRequest) {
    // Fetching a Request uses its body up, as in Node.
    if (input.bodyUsed) throw new TypeError('Cannot fetch a Request whose body has already been used.');
    body = requestBodies.get(input) ?? null;
    if (body !== null) void input.arrayBuffer();
  }
  const pairs = [...headers]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]): [string, string] => [name, secrets ? secrets.mark(value, secretHost || secrets.isSecretHeader(name), `request header ${name}`) : value]);
  return { url: href, method, headers: pairs, body: secrets ? secrets.mark(body, secretHost, `request body for ${href}`) : body };
};

const redirectStatuses = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 20;

/** Fetch on the host; with a reach policy, redirects are followed here so each hop is checked. */
const hostFetch = async (request: RequestRecord, reach: Reach, secrets: SecretMatcher): Promise<ResponseRecord> => {
  reach.checkFetch(request.url);
  let url = request.url;
  let method = request.method;
  let body = request.body as BodyInit | null;
  let headers = request.headers;
  let response: Response;
  let redirected = false;
  for (let hops = 0; ; hops += 1) {
    response = await fetch(url, { method, headers, body, redirect: reach.policy?.fetch ? 'manual' : 'follow' });
    const location = response.headers.get('location');
    if (!reach.policy?.fetch || !redirectStatuses.has(response.status) || location === null) break;
    if (hops >= MAX_REDIRECTS) throw new TypeError('fetch failed: redirect count exceeded');
    await response.arrayBuffer();
    const next = new URL(location, url);
    reach.checkFetch(next.href);
    if (response.status === 303 || ((response.status === 301 || response.status === 302) && method === 'POST')) {
      method = method === 'HEAD' ? 'HEAD' : 'GET';
      body = null;
      headers = headers.filter(([name]) => !/^content-/.test(name));
    }
    if (next.origin !== new URL(url).origin) headers = headers.filter(([name]) => !['authorization', 'proxy-authorization', 'cookie'].includes(name));
    url = next.href;
    redirected = true;
  }
  const secretHost = secrets.isSecretHost(response.url || url);
  const responseBody = new Uint8Array(await response.arrayBuffer());
  return {
    url: response.url || url,
    status: response.status,
    statusText: response.statusText,
    redirected: redirected || response.redirected,
    headers: [...response.headers].map(([name, value]): [string, string] => [name, secrets.mark(value, secretHost || secrets.isSecretHeader(name), `response header ${name}`)]),
    body: secrets.mark(responseBody, secretHost, `response body from ${response.url || url}`),
  };
};

/** Options of the fetch endowment: the service's reach policy and secrets. */
export interface FetchOptions {
  readonly reach?: Reach;
  readonly secrets?: SecretMatcher;
}

export const makeFetch = (membrane: Membrane, options: FetchOptions = {}) => {
  const reach = options.reach ?? makeReach(membrane.name, undefined);
  const secrets = options.secrets ?? makeSecretMatcher();
  const guestFetch = (input: unknown, init?: Record<string, unknown>): Promise<GuestResponse> => {
    // A stream body (init.body, or a Request's) is read to its end first: the request crosses whole.
    const stream = isReadableStream(init?.body) ? init.body : input instanceof GuestRequest && init?.body === undefined ? requestStreams.get(input) : undefined;
    if (stream) return readAll(stream).then(bytes => guestFetch(input, { ...init, body: bytes }));
    let request: RequestRecord;
    try {
      request = normalize(input, init, secrets);
    } catch (error) {
      return Promise.reject(error);
    }
    const pending = membrane.syscall('fetch', [request], req => hostFetch(req as RequestRecord, reach, secrets)) as Promise<ResponseRecord>;
    return pending.then(r => {
      if (typeof r.headers === 'object' && r.headers !== null) recordedHeaders.add(r.headers);
      return new GuestResponse(ownBody(r.body), {
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
