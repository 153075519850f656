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
import { FORM_TYPE, FetchBody, abortBody, onBodyTaken, bodyContent, bodySource, bodyStreamOf, bodyUnusable, ownBody, readAll, readHeadersWith, shareFormKit, takeBody, useFormKit, type BodyContent } from './fetch-body.js';
import type { FormKit } from './form-data.js';
import { makeSecretMatcher, type SecretMatcher } from './secrets.js';
import { nameAs } from './errors.js';
import { hostHeaders, markImmutable, withEventStamps } from './web.js';
import { clonedAsHostClass } from './structured-clone.js';
import { formatWithOptions, type InspectOptions } from 'node:util';
import { createHash } from 'node:crypto';

const inspectCustom = Symbol.for('nodejs.util.inspect.custom');
/** How Node's (undici's) Response and Request print: their name, then their fields as an object. */
const printed = (name: string, options: InspectOptions, properties: Record<string, unknown>): string => {
  if (options.depth === null) options.depth = 2;
  options.colors ??= true;
  return `${name} ${formatWithOptions(options, properties)}`;
};

interface RequestRecord {
  url: string;
  method: string;
  headers: Array<[string, string]>;
  body: string | Uint8Array | null;
  /** The request's redirect mode when it is not 'follow' (absent for 'follow', as logs before it hold it). */
  redirect?: 'manual' | 'error';
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

/** What only this module sets on a Response: a service's init cannot (Node ignores `init.url` and the like). */
interface ResponseInternals {
  readonly url: string;
  readonly redirected: boolean;
  readonly type: 'basic' | 'default' | 'error';
  /** Its headers cannot be changed (a fetched response, Response.error(), Response.redirect()): undici's 'immutable' guard. */
  readonly immutable?: boolean;
}

/** The host's Headers of `list`, marked immutable when `immutable` (web.ts). */
const headersFrom = (list: HeadersInit | undefined, immutable: boolean): Headers => {
  const headers = new (hostHeaders())(list);
  return immutable ? markImmutable(headers) : headers;
};

/** The internals of the Response being made by this module now (construction is synchronous). */
let makingInternals: ResponseInternals | undefined;
const makeResponse = (body: unknown, init: ResponseInitLike, internals: ResponseInternals): GuestResponse => {
  makingInternals = internals;
  try {
    return new GuestResponse(body, init);
  } finally {
    makingInternals = undefined;
  }
};

type ResponseInitLike = { status?: unknown; statusText?: unknown; headers?: HeadersInit } | null | undefined;

/**
 * A WebIDL dictionary argument: undefined and null are an empty one, an
 * object is itself, anything else a TypeError (Node's message).
 */
const dictionary = (value: unknown, where: string): object => {
  if (value === undefined || value === null) return {};
  if (typeof value === 'object' || typeof value === 'function') return value;
  // Node's text, 'undefined' prefix included (undici names no context for Response's init).
  throw new TypeError(`${where}: Expected ${`${value as string}`} to be one of: Null, Undefined, Object.`);
};

/** A status as WebIDL's `unsigned short` converts it (ToNumber, truncated, modulo 2^16; NaN and infinities are 0). */
const unsignedShort = (value: unknown): number => {
  const n = Math.trunc(Number(value));
  return Number.isFinite(n) ? ((n % 65536) + 65536) % 65536 : 0;
};
/** HTTP's reason-phrase: tabs, spaces, visible ASCII and obs-text (RFC 9112 section 4). */
const reasonPhrase = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Statuses whose response has no body (Fetch standard: null body status). */
const nullBodyStatus = new Set([101, 103, 204, 205, 304]);
const redirectStatus = new Set([301, 302, 303, 307, 308]);

/**
 * A Response, enough of the Fetch API for services: its body is bytes (a
 * fetched response, a string...) or a ReadableStream the service produces,
 * which the HTTP runtime sends as it comes (lib/http.ts). The constructor
 * checks its init as Node's (undici's) does, with the same errors: a
 * status outside 200 to 599 is a RangeError, a bad statusText or a body
 * with a null body status (204...) a TypeError. `Response.error()`,
 * `Response.redirect()` and `Response.json()` as in the Fetch standard.
 */
/** A Response's own headers, read with its private state (the static block below). */
let responseHeaders: (body: object) => Headers | undefined;
/** A Request's own headers, likewise. */
let requestHeaders: (body: object) => Headers | undefined;
/** A Request's fields (redirect, mode...), for fetch: what `new Request(input, init)` would hold. */
let requestFieldsOf: (request: GuestRequest) => RequestFields;

export class GuestResponse extends FetchBody {
  // Node's Response keeps these in internal slots behind getters: no own properties (JSON.stringify gives {}), none writable.
  readonly #status: number;
  readonly #statusText: string;
  readonly #url: string;
  readonly #redirected: boolean;
  readonly #type: 'basic' | 'default' | 'error';
  #headers: Headers | undefined;
  readonly #headerList: Array<[string, string]> | undefined;
  readonly #immutable: boolean;

  // Defaults as Node's (Response.length is 0).
  constructor(body: unknown = null, init: ResponseInitLike = undefined) {
    const internals = makingInternals;
    makingInternals = undefined;
    const options = dictionary(init, 'undefined') as NonNullable<ResponseInitLike>;
    const status = options.status === undefined ? 200 : unsignedShort(options.status);
    const statusText = options.statusText === undefined ? '' : `${options.statusText as string}`;
    // A service's own init is checked as Node checks it; a response this module makes (fetched: any status a server sent) is not.
    if (internals === undefined) {
      if (status < 200 || status > 599) throw new RangeError('init["status"] must be in the range of 200 to 599, inclusive.');
      if (!reasonPhrase.test(statusText)) throw new TypeError('Invalid statusText');
      if (body !== undefined && body !== null && nullBodyStatus.has(status)) throw new TypeError(`Response constructor: Invalid response status code ${status}`);
    }
    const content = bodyContent(body);
    super(bodySource(content));
    if (content?.kind === 'parts') useFormKit(this, content.kit);
    this.#status = internals?.type === 'error' ? 0 : status;
    this.#statusText = statusText;
    // A service's own init is read now (as Node does: later changes to it do not show, bad
    // names throw here); a recorded response's list is made into Headers when first read.
    this.#immutable = internals?.immutable === true;
    if (typeof options.headers === 'object' && options.headers !== null && recordedHeaders.has(options.headers)) this.#headerList = options.headers as Array<[string, string]>;
    else this.#headers = headersFrom(options.headers, this.#immutable);
    // As Node's: a string, URLSearchParams, FormData or typed Blob body implies its Content-Type unless the init gives one.
    const implied = internals === undefined && (content?.kind === 'text' || content?.kind === 'parts') ? content.type : undefined;
    if (implied && !this.headers.has('content-type')) this.headers.set('content-type', implied);
    this.#url = internals?.url ?? '';
    this.#redirected = internals?.redirected ?? false;
    this.#type = internals?.type ?? 'default';
  }

  get status(): number {
    return this.#status;
  }
  get statusText(): string {
    return this.#statusText;
  }
  get url(): string {
    return this.#url;
  }
  get redirected(): boolean {
    return this.#redirected;
  }
  get type(): 'basic' | 'default' | 'error' {
    return this.#type;
  }

  /** A getter, as on Node's Response (the same Headers every time). */
  get headers(): Headers {
    return (this.#headers ??= headersFrom(this.#headerList, this.#immutable));
  }

  static {
    // structuredClone treats a service's Response as Node's clone treats Node's (refused since Node 22).
    clonedAsHostClass({ prototype: this.prototype, is: value => #status in value, sample: () => new (globalThis as unknown as { Response: new () => object }).Response() });
    responseHeaders = response => (#headers in response ? (response.#headers ??= headersFrom(response.#headerList, response.#immutable)) : undefined);
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  /** Printed as Node prints a Response (undici's inspect hook: the same fields, in its order). */
  [inspectCustom](_depth: number, options: InspectOptions): string {
    return printed('Response', options, {
      status: this.status,
      statusText: this.statusText,
      headers: this.headers,
      body: this.body,
      bodyUsed: this.bodyUsed,
      ok: this.ok,
      redirected: this.redirected,
      type: this.type,
      url: this.url,
    });
  }

  clone(): GuestResponse {
    const copy = makeResponse(
      this.copyBody('Response.clone'),
      { status: this.#type === 'error' ? undefined : this.#status, statusText: this.#statusText, headers: this.headers },
      { url: this.#url, redirected: this.#redirected, type: this.#type, immutable: this.#immutable },
    );
    shareFormKit(this, copy);
    return copy;
  }

  static json(data: unknown, init: ResponseInitLike = undefined): GuestResponse {
    const options = dictionary(init, 'undefined') as NonNullable<ResponseInitLike>;
    // As undici: undefined, a function or a symbol has no JSON (a 200 with an empty body otherwise).
    const text = JSON.stringify(data) as string | undefined;
    if (text === undefined) throw new TypeError('Value is not JSON serializable');
    const headers = new (hostHeaders())(options.headers);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    // The init's fields are read as the constructor reads them (inherited ones too), not spread.
    return new GuestResponse(text, { status: options.status, statusText: options.statusText, headers });
  }

  /** A network error (Fetch standard): type 'error', status 0, no body. */
  static error(): GuestResponse {
    return makeResponse(null, {}, { url: '', redirected: false, type: 'error', immutable: true });
  }

  /**
   * A redirect to `url` (absolute: a service has no base URL, as in Node)
   * with `status` 301, 302 (the default), 303, 307 or 308. Throws
   * TypeError for a URL that does not parse, RangeError for another status.
   */
  static redirect(url: unknown, status: unknown = 302): GuestResponse {
    let parsed: URL;
    try {
      parsed = new URL(`${url as string}`);
    } catch (cause) {
      throw new TypeError(`Failed to parse URL from ${url as string}`, { cause });
    }
    const code = unsignedShort(status);
    if (!redirectStatus.has(code)) throw new RangeError(`Invalid status code ${code}`);
    return makeResponse(null, { status: code, headers: [['location', parsed.href]] }, { url: '', redirected: false, type: 'default', immutable: true });
  }
}
// Named and tagged as Node's: `Response.name`, `String(response)` is [object Response].
nameAs(GuestResponse, 'Response');
harden(GuestResponse);


/** A body that is not a stream, as a request carries it: text stays text (the request record keeps strings as strings), bytes as they are. */
const requestBody = (content: BodyContent | null): string | Uint8Array | null => (content === null || content.kind === 'stream' || content.kind === 'parts' ? null : content.kind === 'text' ? content.text : content.bytes);

/** What `new Request(input, init)` reads from `init`. */
export interface GuestRequestInit {
  readonly method?: string;
  readonly headers?: HeadersInit;
  readonly body?: unknown;
  readonly signal?: AbortSignal | null;
  readonly redirect?: 'follow' | 'manual' | 'error';
  readonly [key: string]: unknown;
}

/** RequestInit's enumerations, as undici lists them in its messages. */
const requestEnums: Record<string, readonly string[]> = {
  cache: ['default', 'no-store', 'reload', 'no-cache', 'force-cache', 'only-if-cached'],
  credentials: ['omit', 'same-origin', 'include'],
  mode: ['navigate', 'same-origin', 'no-cors', 'cors'],
  redirect: ['follow', 'manual', 'error'],
  referrerPolicy: ['', 'no-referrer', 'no-referrer-when-downgrade', 'same-origin', 'origin', 'strict-origin', 'origin-when-cross-origin', 'strict-origin-when-cross-origin', 'unsafe-url'],
};

/** The fields of a Request a script sets and a server never does, with undici's defaults. */
interface RequestFields {
  readonly cache: string;
  readonly credentials: string;
  readonly integrity: string;
  readonly keepalive: boolean;
  readonly mode: string;
  readonly redirect: string;
  readonly referrer: string;
  readonly referrerPolicy: string;
}
/** RequestInit's members (https://fetch.spec.whatwg.org/#requestinit). */
const initMembers = ['body', 'cache', 'credentials', 'duplex', 'headers', 'integrity', 'keepalive', 'method', 'mode', 'redirect', 'referrer', 'referrerPolicy', 'signal', 'window'] as const;
const defaultFields: RequestFields = { cache: 'default', credentials: 'same-origin', integrity: '', keepalive: false, mode: 'cors', redirect: 'follow', referrer: 'about:client', referrerPolicy: '' };

/**
 * A RequestInit read as undici's WebIDL conversion reads it: each member
 * once, in its order (method, headers, body, referrer, referrerPolicy, mode,
 * credentials, cache, redirect, integrity, keepalive, signal, window,
 * duplex, dispatcher), strings and enumerations converted as they are read
 * (an enumeration value it does not list is a TypeError naming them), a
 * signal that is not an AbortSignal refused. The constructor then uses this
 * copy only: a getter in the init runs once, as in Node.
 */
const readRequestInit = (init: GuestRequestInit): GuestRequestInit => {
  const out: Record<string, unknown> = {};
  for (const key of ['method', 'headers', 'body', 'referrer', 'referrerPolicy', 'mode', 'credentials', 'cache', 'redirect', 'integrity', 'keepalive', 'signal', 'window', 'duplex', 'dispatcher'] as const) {
    const value = init[key];
    if (value === undefined) continue;
    if (key === 'keepalive') out.keepalive = Boolean(value);
    else if (key === 'signal') {
      if (value !== null && !(value instanceof AbortSignal)) throw new TypeError("Failed to construct 'Request': member signal is not of type AbortSignal.");
      out.signal = value;
    } else if (key === 'method' || key === 'referrer' || key === 'integrity') out[key] = `${value as string}`;
    else if (key === 'duplex' || key in requestEnums) {
      const text = `${value as string}`;
      const allowed = key === 'duplex' ? ['half'] : requestEnums[key];
      if (!allowed.includes(text)) throw new TypeError(`Request constructor: ${text} is not an accepted type. Expected one of ${allowed.join(', ')}.`);
      out[key] = text;
    } else out[key] = value;
  }
  if (out.window !== undefined && out.window !== null) throw new TypeError("'window' option 'client' must be null");
  return out as GuestRequestInit;
};

/**
 * A Request's fields from its init as readRequestInit read it, then the
 * constructor's own checks (mode 'navigate', 'only-if-cached' outside
 * 'same-origin', a referrer that is not a URL). Unset fields come from
 * `base` (new Request(request)).
 */
const requestFields = (options: GuestRequestInit, base: RequestFields): RequestFields => {
  const fields: Record<string, unknown> = { ...base };
  // The Fetch standard: an init with any member resets the referrer and its policy of the request it copies.
  if (initMembers.some(key => options[key] !== undefined)) {
    fields.referrer = defaultFields.referrer;
    fields.referrerPolicy = defaultFields.referrerPolicy;
  }
  for (const key of ['cache', 'credentials', 'integrity', 'keepalive', 'mode', 'redirect', 'referrer', 'referrerPolicy'] as const) {
    if (options[key] !== undefined) fields[key] = options[key];
  }
  if (options.mode === 'navigate') throw new TypeError('Request constructor: invalid request mode navigate.');
  if (fields.cache === 'only-if-cached' && fields.mode !== 'same-origin') throw new TypeError("'only-if-cached' can be set only with 'same-origin' mode");
  if (options.referrer !== undefined && fields.referrer !== '' && fields.referrer !== 'about:client') {
    try {
      fields.referrer = new URL(fields.referrer as string).href;
    } catch (cause) {
      throw new TypeError(`Referrer "${fields.referrer as string}" is not a valid URL.`, { cause });
    }
  }
  return fields as unknown as RequestFields;
};

/** The Request constructor's check (undici's text, its stray quote included): no-cors allows GET, HEAD and POST only. */
const refuseNoCorsMethod = (mode: string, method: string): void => {
  if (mode === 'no-cors' && method !== 'GET' && method !== 'HEAD' && method !== 'POST') throw new TypeError(`'${method} is unsupported in no-cors mode.`);
};

const integrityAlgorithms = ['sha256', 'sha384', 'sha512'] as const;

/**
 * Whether `bytes` match a Request's `integrity` metadata, as Node's fetch
 * (undici's bytesMatch, https://w3c.github.io/webappsec-subresource-integrity/):
 * no valid `sha256-`/`sha384-`/`sha512-` token matches anything; otherwise
 * only the strongest algorithm listed counts, and one of its digests must
 * equal the body's (base64 or base64url).
 */
const integrityMatches = (metadata: string, bytes: Uint8Array): boolean => {
  const tokens = metadata
    .split(/\s+/)
    .map(token => /^(sha256|sha384|sha512)-([A-Za-z0-9+/_=-]+)$/.exec(token))
    .filter((match): match is RegExpExecArray => match !== null);
  if (tokens.length === 0) return true;
  const strongest = integrityAlgorithms.filter(algorithm => tokens.some(([, name]) => name === algorithm)).pop() as string;
  const digest = createHash(strongest).update(bytes).digest('base64');
  const url = digest.replace(/\+/g, '-').replace(/\//g, '_');
  return tokens.some(([, name, value]) => name === strongest && (value === digest || value === url || value === url.replace(/=+$/, '') || value === digest.replace(/=+$/, '')));
};

const standardMethods = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT']);
const forbiddenMethods = new Set(['CONNECT', 'TRACE', 'TRACK']);
/**
 * A request method as the Fetch standard normalizes it (and Node's fetch):
 * a token, never CONNECT, TRACE or TRACK (TypeError otherwise); the six
 * standard methods upper-cased, any other kept as written ('patch' is sent
 * as 'patch').
 */
const normalizeMethod = (method: string): string => {
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(method)) throw new TypeError(`'${method}' is not a valid HTTP method.`);
  const upper = method.toUpperCase();
  if (forbiddenMethods.has(upper)) throw new TypeError(`'${method}' HTTP method is unsupported.`);
  return standardMethods.has(upper) ? upper : method;
};
const requestBodies = new WeakMap<object, string | Uint8Array | null>();


/**
 * The WinterCG `Request` services get (the global `Request`): a URL, a
 * method, the service's Headers and a body (a string, URLSearchParams,
 * ArrayBuffer, typed array, or a ReadableStream with `duplex: 'half'`,
 * which `body` answers and `fetch` reads to its end before the request
 * crosses). `fetch` takes it as its input, body included. `url` must be absolute (there is no
 * document base), as in Node.
 */
export class GuestRequest extends FetchBody {
  // Node's Request keeps these in internal slots behind getters: no own properties (JSON.stringify gives {}), none writable.
  readonly #url: string;
  readonly #method: string;
  readonly #headers: Headers;
  readonly #signal: AbortSignal;
  #fields: RequestFields;

  constructor(input: unknown, init: GuestRequestInit | null | undefined = undefined) {
    const options = readRequestInit(dictionary(init, 'Request constructor') as GuestRequestInit);
    const base = input instanceof GuestRequest ? input : undefined;
    const fields = requestFields(options, base ? base.#fields : defaultFields);
    // A signal of its own that follows the one given (or the original request's), as undici's.
    const parent = options.signal !== undefined ? options.signal : base?.signal;
    let body: string | Uint8Array | null;
    let stream: ReadableStream | undefined;
    let taken: GuestRequest | undefined;
    const content = bodyContent(options.body);
    if (content?.kind === 'stream') {
      if (fields.keepalive) throw new TypeError('keepalive');
      if (options.duplex !== 'half') throw new TypeError('RequestInit: duplex option is required when sending a body.');
      stream = content.stream;
      body = null;
    } else if (content?.kind === 'parts') {
      // A FormData or Blob body: read when the body is (no duplex needed, as in Node).
      stream = bodySource(content) as ReadableStream;
      body = null;
    } else if (content !== null) body = requestBody(content);
    else if (base) {
      body = requestBodies.get(base) ?? null;
      if (body === null) stream = bodyStreamOf(base);
      // The Fetch standard: a Request made from one with a body takes that body over (undici's message).
      if (body !== null || stream) {
        if (bodyUnusable(base)) throw new TypeError('Cannot construct a Request with a Request object that has already been used.');
        taken = base;
      }
    } else body = null;
    const url = base ? base.url : new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : String(input)).href;
    const method = options.method !== undefined ? normalizeMethod(`${options.method as string}`) : (base?.method ?? 'GET');
    if ((body !== null || stream) && (method === 'GET' || method === 'HEAD')) throw new TypeError('Request with GET/HEAD method cannot have body.');
    refuseNoCorsMethod(fields.mode, method);
    if (taken) takeBody(taken);
    // A stream body is FetchBody's own: `body` answers it, reading it makes `bodyUsed` true, as in Node.
    super(stream ?? (body === null ? null : typeof body === 'string' ? new TextEncoder().encode(body) : body));
    this.#url = url;
    this.#method = method;
    this.#headers = new (hostHeaders())(options.headers ?? base?.headers);
    if ((content?.kind === 'text' || content?.kind === 'parts') && content.type !== null && !this.#headers.has('content-type')) this.#headers.set('content-type', content.type);
    if (content?.kind === 'parts') useFormKit(this, content.kit);
    else if (taken) shareFormKit(taken, this);
    this.#signal = parent ? AbortSignal.any([parent]) : new AbortController().signal;
    this.#fields = fields;
    requestBodies.set(this, body);
  }

  get url(): string {
    return this.#url;
  }
  get method(): string {
    return this.#method;
  }
  get headers(): Headers {
    return this.#headers;
  }
  static {
    // structuredClone treats a service's Request as Node's clone treats Node's (refused since Node 22).
    clonedAsHostClass({ prototype: this.prototype, is: value => #method in value, sample: () => new (globalThis as unknown as { Request: new (url: string) => object }).Request('http://x/') });
    requestHeaders = request => (#headers in request ? request.#headers : undefined);
    requestFieldsOf = request => request.#fields;
  }
  get signal(): AbortSignal {
    return this.#signal;
  }
  get redirect(): string {
    return this.#fields.redirect;
  }
  get credentials(): string {
    return this.#fields.credentials;
  }
  get mode(): string {
    return this.#fields.mode;
  }
  get cache(): string {
    return this.#fields.cache;
  }
  /** '' for no referrer, 'about:client' by default, else the URL given. */
  get referrer(): string {
    return this.#fields.referrer;
  }
  get referrerPolicy(): string {
    return this.#fields.referrerPolicy;
  }
  get integrity(): string {
    return this.#fields.integrity;
  }
  get keepalive(): boolean {
    return this.#fields.keepalive;
  }
  // What no Request made in Node sets otherwise: getters on the prototype (defineRequestDefaults).
  declare readonly destination: string;
  declare readonly duplex: string;

  /** Printed as Node prints a Request (undici's inspect hook: the same fields, in its order). */
  [inspectCustom](_depth: number, options: InspectOptions): string {
    return printed('Request', options, {
      method: this.method,
      url: this.url,
      headers: this.headers,
      destination: this.destination,
      referrer: this.referrer,
      referrerPolicy: this.referrerPolicy,
      mode: this.mode,
      credentials: this.credentials,
      cache: this.cache,
      redirect: this.redirect,
      integrity: this.integrity,
      keepalive: this.keepalive,
      isReloadNavigation: false,
      isHistoryNavigation: false,
      signal: this.signal,
    });
  }

  clone(): GuestRequest {
    if (bodyUnusable(this)) throw new TypeError('Request.clone: Body has already been consumed.');
    // A copy of the body (bytes copied, a stream teed: copyBody), not the body taken over as new Request(this) would.
    const body = this.copyBody('Request.clone');
    const copy = new GuestRequest(this, body === null ? {} : { body, duplex: 'half' });
    copy.#fields = this.#fields; // all of them: the init that carried the body reset the referrer
    shareFormKit(this, copy);
    return copy;
  }
}
/**
 * What Node's `new Request(url, init)` answers for the fields neither a
 * script nor a server sets (undici's defaults), as getters on `proto`, named
 * as Node's (`get mode`).
 */
const defineRequestDefaults = (proto: object): void => {
  const defaults: Record<string, string | boolean> = {
    destination: '',
    duplex: 'half',
  };
  for (const [key, value] of Object.entries(defaults)) {
    const { get } = Object.getOwnPropertyDescriptor({ get [key]() { return value; } }, key) as PropertyDescriptor;
    Object.defineProperty(proto, key, { get, enumerable: false, configurable: true });
  }
};
defineRequestDefaults(GuestRequest.prototype);
nameAs(GuestRequest, 'Request');
harden(GuestRequest);
readHeadersWith(body => responseHeaders(body) ?? requestHeaders(body));

/** A fetch's request as it crosses: `content` is init.body (bodyContent), a stream already read to bytes. */
const normalize = (input: unknown, init: Record<string, unknown> = {}, content: BodyContent | null, secrets?: SecretMatcher, redirect = 'follow'): RequestRecord => {
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
  if (init.method !== undefined) method = normalizeMethod(`${init.method as string}`);
  if (init.headers !== undefined) headers = new (hostHeaders())(init.headers as HeadersInit);
  // A URLSearchParams body crosses as its text: the form Content-Type it implies is set here, as Node's
  // fetch sets it (the host's fetch would send text/plain). A string implies text/plain there too.
  if (content?.kind === 'text' && content.type === FORM_TYPE) {
    const withType = new (hostHeaders())(headers as HeadersInit);
    if (!withType.has('content-type')) withType.set('content-type', FORM_TYPE);
    headers = withType;
  }
  const href = new URL(url).href;
  const secretHost = secrets?.isSecretHost(href) ?? false;
  let body = requestBody(content);
  if (body === null && input instanceof GuestRequest) {
    // Fetching a Request uses its body up, as in Node (guestFetch refused an unusable one).
    body = requestBodies.get(input) ?? null;
    if (body !== null) takeBody(input);
  }
  const pairs = [...headers]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]): [string, string] => [name, secrets ? secrets.mark(value, secretHost || secrets.isSecretHeader(name), `request header ${name}`) : value]);
  const record: RequestRecord = { url: href, method, headers: pairs, body: secrets ? secrets.mark(body, secretHost, `request body for ${href}`) : body };
  if (redirect === 'manual' || redirect === 'error') record.redirect = redirect;
  return record;
};

const redirectStatuses = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 20;

/** Fetch on the host; with a reach policy, redirects are followed here so each hop is checked. */
const hostFetch = async (request: RequestRecord, reach: Reach, secrets: SecretMatcher, signal?: AbortSignal): Promise<ResponseRecord> => {
  reach.checkFetch(request.url);
  let url = request.url;
  let method = request.method;
  let body = request.body as BodyInit | null;
  let headers = request.headers;
  let response: Response;
  let redirected = false;
  const mode = request.redirect ?? 'follow';
  for (let hops = 0; ; hops += 1) {
    response = await fetch(url, { method, headers, body, redirect: reach.policy?.fetch && mode === 'follow' ? 'manual' : mode, signal });
    const location = response.headers.get('location');
    if (!reach.policy?.fetch || mode !== 'follow' || !redirectStatuses.has(response.status) || location === null) break;
    // Node's errors (undici): 'fetch failed', the reason its cause.
    if (hops >= MAX_REDIRECTS) throw new TypeError('fetch failed', { cause: new Error('redirect count exceeded') });
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
  /** The service's FormData and File, for the formData() of the responses it fetches (form-data.ts). */
  readonly form?: FormKit;
}

const { addEventListener, removeEventListener } = EventTarget.prototype;

export const makeFetch = (membrane: Membrane, options: FetchOptions = {}) => {
  const reach = options.reach ?? makeReach(membrane.name, undefined);
  const secrets = options.secrets ?? makeSecretMatcher();
  const guestFetch = (input: unknown, given?: unknown): Promise<GuestResponse> => {
    // As Node's fetch, which makes a Request of its arguments: the init read once and checked as the Request
    // constructor checks it (an unknown redirect or mode, a window, a bad referrer: its TypeError), the
    // signal and the redirect mode the init's or else the Request's.
    let init: GuestRequestInit;
    let signal: AbortSignal | null;
    let fields: RequestFields;
    try {
      init = readRequestInit(dictionary(given, 'Request constructor') as GuestRequestInit);
      const base = input instanceof GuestRequest ? input : undefined;
      fields = requestFields(init, base ? requestFieldsOf(base) : defaultFields);
      signal = init.signal !== undefined ? init.signal : (base?.signal ?? null);
    } catch (error) {
      return Promise.reject(error);
    }
    // An aborted signal: Node's fetch rejects with its reason, and sends nothing.
    if (signal?.aborted) return Promise.reject(signal.reason);
    const takesRequestBody = input instanceof GuestRequest && (init.body === undefined || init.body === null);
    // Fetching a Request uses its body (undici makes a new Request of it): one read, or locked by a reader, is refused.
    if (takesRequestBody && bodyUnusable(input)) return Promise.reject(new TypeError('Cannot construct a Request with a Request object that has already been used.'));
    // A stream body (init.body, an async iterable, or a Request's) is read to its end first: the request crosses whole.
    let stream: ReadableStream<Uint8Array> | undefined;
    let content: BodyContent | null;
    try {
      content = bodyContent(init.body);
      // As Node's fetch (it makes a Request of its arguments): a stream body needs duplex: 'half'.
      if (content?.kind === 'stream' && init.duplex !== 'half') throw new TypeError('RequestInit: duplex option is required when sending a body.');
      stream = content?.kind === 'stream' ? content.stream : takesRequestBody && requestBodies.get(input) === null ? bodyStreamOf(input) : undefined;
    } catch (error) {
      return Promise.reject(error);
    }
    // A FormData or Blob body is read first too, and sent with the Content-Type it implies (unless one is set), as Node sends it.
    if (content?.kind === 'parts') {
      const headers = new (hostHeaders())((init.headers ?? (input instanceof GuestRequest ? input.headers : undefined)) as HeadersInit | undefined);
      if (content.type !== null && !headers.has('content-type')) headers.set('content-type', content.type);
      init = { ...init, headers };
      stream = bodySource(content) as ReadableStream<Uint8Array>;
    }
    if (stream) return readAll(stream).then(bytes => guestFetch(input, { ...init, body: bytes }));
    let request: RequestRecord;
    try {
      request = normalize(input, init, content, secrets, fields.redirect);
      refuseNoCorsMethod(fields.mode, request.method);
    } catch (error) {
      return Promise.reject(error);
    }
    // At build time the host's request is stopped when the service aborts (on replay there is none to stop).
    const hostAbort = signal ? new AbortController() : undefined;
    const pending = membrane.syscall('fetch', [request], req => hostFetch(req as RequestRecord, reach, secrets, hostAbort?.signal)) as Promise<ResponseRecord>;
    const respond = (r: ResponseRecord): GuestResponse => {
      // As Node's fetch: a body that does not match the request's integrity fails the fetch.
      if (fields.integrity !== '' && !integrityMatches(fields.integrity, r.body ?? new Uint8Array(0))) throw new TypeError('fetch failed', { cause: new Error('integrity mismatch') });
      if (typeof r.headers === 'object' && r.headers !== null) recordedHeaders.add(r.headers);
      // As Node's fetch: no body at all (null, not an empty stream) for a HEAD request or a status that has none.
      const bodiless = request.method === 'HEAD' || nullBodyStatus.has(r.status);
      const made = makeResponse(bodiless ? null : ownBody(r.body), { status: r.status, statusText: r.statusText, headers: r.headers }, { url: r.url, redirected: r.redirected, type: 'basic', immutable: true });
      useFormKit(made, options.form);
      return made;
    };
    if (!signal) return pending.then(respond);
    // The service's signal, as in Node: an abort while the request is out rejects with its reason (the
    // answer, recorded or replayed, then goes to no one); once the response is here, its unread body fails.
    // Both the abort (the service's own code or recorded timer) and the answer come in recorded turns,
    // so replay settles the race as the build did.
    // The listener holds the response weakly, and goes once the body is read whole (a signal shared by
    // many requests, a service's shutdown signal, keeps no response alive).
    const aborting = signal;
    return new Promise<GuestResponse>((resolve, reject) => {
      let response: WeakRef<GuestResponse> | undefined;
      let settled = false;
      const onAbort = () => {
        if (hostAbort) withEventStamps(undefined, () => hostAbort.abort()); // the host's own AbortError (the service's reason stays the service's)
        const arrived = response?.deref();
        if (arrived) abortBody(arrived, aborting.reason);
        else if (!settled) {
          settled = true;
          reject(aborting.reason);
        }
      };
      const stopListening = () => Reflect.apply(removeEventListener, aborting, ['abort', onAbort]);
      Reflect.apply(addEventListener, aborting, ['abort', onAbort, { once: true }]);
      pending.then(
        r => {
          if (settled) return;
          settled = true;
          try {
            const made = respond(r);
            response = new WeakRef(made);
            onBodyTaken(made, stopListening);
            resolve(made);
          } catch (error) {
            stopListening();
            reject(error);
          }
        },
        (error: unknown) => {
          if (settled) return;
          settled = true;
          stopListening();
          reject(error);
        },
      );
    });
  };
  // Named and shaped as Node's fetch (fetch(input, init = undefined)).
  Object.defineProperties(guestFetch, { name: { value: 'fetch' }, length: { value: 1 } });
  return harden(guestFetch);
};
