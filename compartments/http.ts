/**
 * `http` and `https` inside a service: the client half of Node's API,
 * recorded at the request level (as nock and Polly.js intercept it).
 *
 * A `ClientRequest` is a Writable of the service's own `stream` port: it
 * collects the headers and the body the service writes, and on `end()` the
 * request crosses as ONE async syscall, `http.request`, whose argument is a
 * request record and whose result is the whole response. The host performs
 * it with Node's own `http`/`https` client (one hop: `http.request` follows
 * no redirects, decodes nothing), after the reach check of fetch
 * (compartments/reach.ts), and marks secret headers and bodies as fetch does
 * (compartments/secrets.ts). The log therefore holds request-level records
 * and replay needs no network. The response comes back as an
 * `IncomingMessage`, a Readable of the service's stream port holding the
 * body as the server sent it: a `content-encoding` is left to the client,
 * as in plain Node (axios, got and node-fetch decompress with the service's
 * zlib, compartments/zlib.ts), so the service sees the bytes, headers and
 * raw headers plain Node would see.
 *
 * Wire format of the syscall (both plain data, copied by the membrane):
 *
 * | record              | fields                                                             |
 * | ------------------- | ------------------------------------------------------------------ |
 * | `HttpRequestRecord` | `url` (absolute), `method`, `headers` ([name, value] pairs, names  |
 * |                     | as the service spelled them, in order), `body` (bytes or null)      |
 * | `HttpOutcome` ok    | `ok: true`, `status`, `statusMessage`, `httpVersion`, `rawHeaders`  |
 * |                     | (Node's flat [name, value, ...] list), `body` (bytes, as sent)      |
 * | `HttpOutcome` error | `ok: false`, `code` (ECONNREFUSED...), `message`, and the `errno`,  |
 * |                     | `syscall`, `address`, `port`, `hostname` Node's error carried       |
 *
 * A network error is data, not a thrown host error, so the service gets
 * the same error (with its `code`) at build time and on every replay. A
 * reach refusal (REACH_DENIED) rejects the syscall as fetch's does.
 *
 * Not offered: the server side (`createServer`, `Server`, `ServerResponse`
 * refuse with DETERMINISM_VIOLATION, naming `runtime.declare`), sockets
 * (no 'socket' event; `req.socket` is null), custom agents and their
 * `createConnection` (an https proxy agent's tunnel is not used), and
 * `socketPath`; the TLS options of https (`ca`, `rejectUnauthorized`...)
 * are not honoured: the host's defaults apply. Agents are accepted and
 * kept, and do nothing. A request to an HTTP proxy (a path in absolute
 * form, as axios sends when `HTTP_PROXY` is set) is recorded and performed
 * as a direct request to its target, without the proxy's credentials.
 */
import { createRequire } from 'node:module';
import type { ClientRequest as HostClientRequest, OutgoingHttpHeaders } from 'node:http';
import { SnapshotError } from '../replay-log/index.js';
import type { Membrane } from '../membrane/index.js';
import type { Reach } from './reach.js';
import type { SecretMatcher } from './secrets.js';
import { refusedConstructor } from './errors.js';
import { abortError, listenerError, nodeError as nodeStyleError } from './node-style-errors.js';

/** A request as the log holds it (the argument of the `http.request` syscall). */
export interface HttpRequestRecord {
  /** Absolute URL: protocol, host, port when not the default, path and query (normalized, as a URL is; for the reach policy and messages). */
  readonly url: string;
  /**
   * The request target as the service wrote it (`/a/../b`, `abc`, `/x#y`), sent as it is, as
   * Node sends `options.path`; absent for a request in absolute form (to a proxy) and in logs
   * written before it was recorded (the URL's path and query are sent then).
   */
  readonly path?: string;
  /** Upper-case method. */
  readonly method: string;
  /** Header [name, value] pairs, names as the service spelled them, in the order it set them. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** The whole body, or null when the service wrote none. */
  readonly body: Uint8Array | null;
}

/** A response or a network error, as the log holds it (the result of the `http.request` syscall). */
export type HttpOutcome =
  | {
      readonly ok: true;
      readonly status: number;
      readonly statusMessage: string;
      readonly httpVersion: string;
      /** Node's `rawHeaders`: [name, value, name, value, ...] as received. */
      readonly rawHeaders: readonly string[];
      /** The body as received (not decoded). */
      readonly body: Uint8Array;
    }
  | {
      readonly ok: false;
      readonly code: string;
      readonly message: string;
      readonly errno?: number;
      readonly syscall?: string;
      readonly address?: string;
      readonly port?: number;
      readonly hostname?: string;
    };

// node:http and node:https load when a service first imports http or makes a request: a restore
// that never does skips them (and the tls, net and dns modules they load).
const hostRequire = createRequire(import.meta.url);

const errorFields = ['errno', 'syscall', 'address', 'port', 'hostname'] as const;

/**
 * Whether a request to `url` with these Host header values goes to a secret host (secrets.hosts): the URL's
 * host, or the site a Host header names (a shared ingress serves many by name; found by the adversarial
 * review: a Vault token sent to an address with Host: vault.internal was logged in clear).
 */
const isSecretSite = (secrets: SecretMatcher, url: string, hostHeaders: readonly string[]): boolean => {
  if (secrets.isSecretHost(url)) return true;
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return false; // the request fails on it anyway
  }
  // A Host that names no host a server could route by is no secret host.
  return hostHeaders.some(value => secrets.isSecretHost(hostSite(target, value)?.href ?? ''));
};

/**
 * The site a Host header `value` names for a request to `url`: its host, with the request's port when it gives
 * none; undefined when it names no host (or carries credentials).
 */
const hostSite = (url: URL, value: string): URL | undefined => {
  let named: URL;
  try {
    named = new URL(`${url.protocol}//${value}/`);
  } catch {
    return undefined;
  }
  if (named.username !== '' || named.password !== '') return undefined;
  if (named.port === '' && url.port !== '') named.port = url.port;
  return named;
};

/**
 * The host side of `http.request`: check the reach policy, perform one hop
 * with Node's client, read the whole response. Resolves to an HttpOutcome
 * (network errors included); rejects with REACH_DENIED when refused.
 */
export const hostHttpRequest = async (request: HttpRequestRecord, reach: Reach, secrets: SecretMatcher): Promise<HttpOutcome> => {
  reach.checkFetch(request.url);
  const url = new URL(request.url);
  // The site a Host header names is reached as much as the address is (a shared ingress serves many by name):
  // under a fetch policy it must be allowed too (found by the adversarial review). Without a port, the request's.
  if (reach.policy?.fetch) {
    for (const [name, value] of request.headers) {
      if (name.toLowerCase() !== 'host') continue;
      const named = hostSite(url, value);
      if (named === undefined) {
        throw new SnapshotError('REACH_DENIED', `a request to ${url.origin} with the Host header ${JSON.stringify(value)}, which names no host the policy could check: refused. Send the Host the URL names.`, {
          details: { kind: 'fetch', target: `${url.origin} (Host: ${value})`, allowed: [...reach.policy.fetch] },
        });
      }
      reach.checkFetch(named.href);
    }
  }
  const transport = hostRequire(url.protocol === 'https:' ? 'node:https' : 'node:http') as typeof import('node:http');
  const secretHost = isSecretSite(secrets, url.href, request.headers.filter(([name]) => name.toLowerCase() === 'host').map(([, value]) => value));
  const headers: string[] = [];
  for (const [name, value] of request.headers) headers.push(name, value);
  // Headers as a list: Node adds no Host of its own then. The service's ClientRequest sets one as Node's does;
  // without one (headers given as a flat list, or setHost: false), none is sent, as from Node.
  const once = (fresh: boolean) =>
    new Promise<HttpOutcome & { staleSocket?: true }>(resolve => {
      const failed = (error: NodeJS.ErrnoException) => {
        const outcome: Record<string, unknown> = { ok: false, code: typeof error.code === 'string' ? error.code : 'ERR_HTTP_REQUEST', message: String(error.message) };
        for (const key of errorFields) {
          const value = (error as unknown as Record<string, unknown>)[key];
          if (typeof value === 'string' || typeof value === 'number') outcome[key] = value;
        }
        resolve(outcome as HttpOutcome);
      };
      let req: HostClientRequest;
      try {
        const target = {
          protocol: url.protocol,
          hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
          port: url.port === '' ? undefined : Number(url.port),
          path: typeof request.path === 'string' ? request.path : `${url.pathname}${url.search}`,
        };
        req = transport.request({ ...target, method: request.method, headers: headers as unknown as OutgoingHttpHeaders, setHost: false, ...(fresh ? { agent: false } : {}) }, res => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', failed);
          res.on('end', () => {
            const rawHeaders = res.rawHeaders.map((text, i) => (i % 2 === 0 ? text : secrets.mark(text, secretHost || secrets.isSecretHeader(res.rawHeaders[i - 1]), `response header ${res.rawHeaders[i - 1]}`)));
            resolve({
              ok: true,
              status: res.statusCode ?? 0,
              statusMessage: res.statusMessage ?? '',
              httpVersion: res.httpVersion,
              rawHeaders,
              body: secrets.mark(new Uint8Array(Buffer.concat(chunks)), secretHost, `response body from ${url.href}`),
            });
          });
        });
      } catch (error) {
        failed(error as NodeJS.ErrnoException);
        return;
      }
      req.on('error', (error: NodeJS.ErrnoException) => {
        // A kept-alive socket the server closed as it was reused: the request never reached it (Node's
        // documented race, `request.reusedSocket`). Sent again once on a new connection, below.
        if (!fresh && req.reusedSocket && error.code === 'ECONNRESET') resolve({ ok: false, code: 'ECONNRESET', message: String(error.message), staleSocket: true } as HttpOutcome & { staleSocket: true });
        else failed(error);
      });
      req.end(request.body ?? undefined);
    });
  const outcome = await once(false);
  return 'staleSocket' in outcome ? once(true) : outcome;
};

// ---- the service's side ------------------------------------------------------------

/** The parts of the service's own `stream` and `events` modules used here. */
interface Emitter {
  on(event: string | symbol, listener: (...args: unknown[]) => void): this;
  once(event: string | symbol, listener: (...args: unknown[]) => void): this;
  emit(event: string | symbol, ...args: unknown[]): boolean;
  listenerCount(event: string | symbol): number;
}
interface WritableLike extends Emitter {
  readonly destroyed: boolean;
  write(chunk: unknown, ...rest: unknown[]): boolean;
  end(...args: unknown[]): this;
  destroy(error?: Error): this;
}
interface ReadableLike extends Emitter {
  readonly destroyed: boolean;
  push(chunk: unknown): boolean;
  resume(): this;
  destroy(error?: Error): this;
}
export interface GuestStreamModule {
  readonly Writable: new (options?: Record<string, unknown>) => WritableLike;
  readonly Readable: new (options?: Record<string, unknown>) => ReadableLike;
}
export type GuestEventEmitter = new () => Emitter;

/** What a service's http modules are made of. */
export interface GuestHttpOptions {
  readonly membrane: Membrane;
  readonly reach: Reach;
  readonly secrets: SecretMatcher;
  /** The service's stream and events modules (its own instances). */
  readonly stream: GuestStreamModule;
  readonly EventEmitter: GuestEventEmitter;
  /** The service's Buffer, setTimeout and clearTimeout (recorded timers) and nextTick. */
  readonly Buffer: typeof Buffer;
  readonly setTimeout: (fn: () => void, ms: number) => unknown;
  readonly clearTimeout: (handle: unknown) => void;
  readonly nextTick: (fn: () => void) => void;
}

const { isArray } = Array;

/** Node's `IncomingMessage` header rules: duplicates of these are dropped, the first kept. */
const singleValued = new Set([
  'age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since', 'if-unmodified-since',
  'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent',
]);

const setOwn = (target: Record<string, unknown>, key: string, value: unknown): void => {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
};

/** `headers` and `headersDistinct` from raw headers, as Node's IncomingMessage computes them. */
const headersOf = (raw: readonly string[]): { headers: Record<string, string | string[]>; distinct: Record<string, string[]> } => {
  const headers: Record<string, string | string[]> = {};
  const distinct: Record<string, string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const value = raw[i + 1];
    if (Object.hasOwn(distinct, name)) distinct[name].push(value);
    else setOwn(distinct, name, [value]);
    if (!Object.hasOwn(headers, name)) setOwn(headers, name, name === 'set-cookie' ? [value] : value);
    else if (name === 'set-cookie') (headers[name] as string[]).push(value);
    else if (singleValued.has(name)) continue;
    else headers[name] = `${headers[name] as string}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  return { headers, distinct };
};

/**
 * An error as Node's http raises it: a `code` (ERR_INVALID_PROTOCOL,
 * ECONNREFUSED...). One raised later than the call that caused it (a
 * network error, a hang-up) has no service frame to show, and its stack
 * would show only this library's files on the build host: it gets a stack
 * of its first line only, the same on every host.
 */
const nodeError = (ErrorClass: new (message: string) => Error, code: string, message: string, later = false): Error => {
  // Node's ERR_* errors print as `TypeError [ERR_INVALID_PROTOCOL]: ...`; the others (ECONNRESET, ABORT_ERR) are errors with a code.
  const internal = code.startsWith('ERR_');
  const error = internal ? nodeStyleError(ErrorClass, code, message) : new ErrorClass(message);
  if (!internal) Object.defineProperty(error, 'code', { value: code, writable: true, enumerable: true, configurable: true });
  if (later) Object.defineProperty(error, 'stack', { value: internal ? `${error.name} [${code}]: ${message}` : `${error.name}: ${message}`, writable: true, enumerable: false, configurable: true });
  return error;
};

const tokenRe = /^[\^_`a-zA-Z\-0-9!#$%&'*+.|~]+$/;

/**
 * A service's `http` and `https` modules. Built when first imported; the
 * classes extend the service's own stream and events classes, so nothing
 * here is shared with the host or with another service.
 */
export const makeGuestHttp = (options: GuestHttpOptions): { http: Record<string, unknown>; https: Record<string, unknown> } => {
  const { membrane, secrets, stream, EventEmitter, Buffer: GuestBuffer } = options;
  const { reach } = options;

  /** Kept, and does nothing: connections are the host's. */
  class Agent extends EventEmitter {
    defaultPort = 80;
    protocol = 'http:';
    options: Record<string, unknown>;
    keepAlive: boolean;
    keepAliveMsecs: number;
    maxSockets: number;
    maxFreeSockets: number;
    maxTotalSockets: number;
    totalSocketCount = 0;
    requests: Record<string, unknown> = {};
    sockets: Record<string, unknown> = {};
    freeSockets: Record<string, unknown> = {};

    constructor(agentOptions: Record<string, unknown> = {}) {
      super();
      this.options = { __proto__: null, ...agentOptions, path: null } as Record<string, unknown>;
      this.keepAlive = agentOptions.keepAlive === true;
      this.keepAliveMsecs = typeof agentOptions.keepAliveMsecs === 'number' ? agentOptions.keepAliveMsecs : 1000;
      this.maxSockets = typeof agentOptions.maxSockets === 'number' ? agentOptions.maxSockets : Infinity;
      this.maxFreeSockets = typeof agentOptions.maxFreeSockets === 'number' ? agentOptions.maxFreeSockets : 256;
      this.maxTotalSockets = typeof agentOptions.maxTotalSockets === 'number' ? agentOptions.maxTotalSockets : Infinity;
    }

    getName(nameOptions: { host?: string; port?: number; localAddress?: string; family?: number } = {}): string {
      let name = nameOptions.host || 'localhost';
      name += ':';
      if (nameOptions.port) name += nameOptions.port;
      name += ':';
      if (nameOptions.localAddress) name += nameOptions.localAddress;
      if (nameOptions.family === 4 || nameOptions.family === 6) name += `:${nameOptions.family}`;
      return name;
    }

    destroy(): void {}
  }

  class HttpsAgent extends Agent {
    constructor(agentOptions: Record<string, unknown> = {}) {
      super(agentOptions);
      this.defaultPort = 443;
      this.protocol = 'https:';
    }
  }

  const globalAgent = new Agent({ keepAlive: true, scheduling: 'lifo', timeout: 5000 });
  const httpsGlobalAgent = new HttpsAgent({ keepAlive: true, scheduling: 'lifo', timeout: 5000 });

  const validateHeaderName = (name: unknown, label = 'Header name'): void => {
    if (typeof name !== 'string' || !name || !tokenRe.test(name)) throw nodeError(TypeError, 'ERR_INVALID_HTTP_TOKEN', `${label} must be a valid HTTP token ["${String(name)}"]`);
  };
  const validateHeaderValue = (name: string, value: unknown): void => {
    if (value === undefined) throw nodeError(TypeError, 'ERR_HTTP_INVALID_HEADER_VALUE', `Invalid value "${String(value)}" for header "${name}"`);
    if (/[^\t\x20-\x7e\x80-\xff]/.test(String(value))) throw nodeError(TypeError, 'ERR_INVALID_CHAR', `Invalid character in header content ["${name}"]`);
  };

  type Callback = (res: IncomingMessage) => void;

  /** The body and fields of a response, handed to IncomingMessage by `deliver`. */
  const bodies = new WeakMap<object, Uint8Array>();

  class IncomingMessage extends stream.Readable {
    socket: unknown;
    httpVersion = '1.1';
    httpVersionMajor = 1;
    httpVersionMinor = 1;
    complete = false;
    aborted = false;
    rawHeaders: string[] = [];
    headers: Record<string, string | string[]> = {};
    headersDistinct: Record<string, string[]> = {};
    trailers: Record<string, string> = {};
    trailersDistinct: Record<string, string[]> = {};
    rawTrailers: string[] = [];
    url = '';
    method: string | null = null;
    statusCode: number | null = null;
    statusMessage: string | null = null;
    req: ClientRequest | null = null;
    #pushed = false;

    constructor(socket: unknown = null) {
      super();
      this.socket = socket;
    }

    get connection(): unknown {
      return this.socket;
    }

    _read(): void {
      if (this.#pushed) return;
      this.#pushed = true;
      const body = bodies.get(this);
      if (body && body.byteLength > 0) this.push(GuestBuffer.from(body.buffer, body.byteOffset, body.byteLength));
      this.complete = true;
      this.push(null);
    }

    setTimeout(_ms: number, callback?: () => void): this {
      if (typeof callback === 'function') this.once('timeout', callback);
      return this;
    }
  }

  /** Request options as Node reads them from (url, options, callback). */
  const requestArguments = (input: unknown, rest: unknown[], defaultAgent: Agent): { opts: Record<string, unknown>; callback?: Callback } => {
    // Node's ClientRequest(input, options, cb): a URL's fields, then the options over them; a function in the
    // options' place is the callback, whatever follows; options left undefined keep the callback after them.
    let opts: Record<string, unknown> = {};
    let options = rest[0];
    let callback = rest[1] as Callback | undefined;
    if (typeof input === 'string' || input instanceof URL) {
      const url = new URL(String(input instanceof URL ? input.href : input));
      opts = {
        protocol: url.protocol,
        hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
        hash: url.hash,
        search: url.search,
        pathname: url.pathname,
        path: `${url.pathname || ''}${url.search || ''}`,
        href: url.href,
      };
      if (url.port !== '') opts.port = Number(url.port);
      if (url.username || url.password) opts.auth = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    } else {
      callback = options as Callback | undefined;
      options = input;
    }
    if (typeof options === 'function') callback = options as Callback;
    else if (options !== null && typeof options === 'object') opts = { ...opts, ...(options as Record<string, unknown>) };
    if (typeof callback !== 'function') callback = undefined;
    if (opts.agent === undefined) opts.agent = defaultAgent;
    return { opts, callback };
  };

  class ClientRequest extends stream.Writable {
    readonly method: string;
    readonly path: string;
    readonly host: string;
    readonly protocol: string;
    readonly agent: unknown;
    readonly socket = null;
    readonly connection = null;
    readonly reusedSocket = false;
    maxHeadersCount: number | null = null;
    aborted = false;
    headersSent = false;
    res: IncomingMessage | null = null;
    timeoutCb: (() => void) | null = null;
    readonly #headers = new Map<string, [string, string | string[]]>();
    readonly #chunks: Uint8Array[] = [];
    readonly #url: string;
    #timer: unknown;
    #done = false;
    #viaProxy = false;
    #finalDone: ((error?: Error | null) => void) | undefined;

    constructor(input?: unknown, ...rest: unknown[]) {
      super({ autoDestroy: false, decodeStrings: true });
      const defaultAgent = (rest.find(r => r instanceof Agent) as Agent | undefined) ?? globalAgent;
      const { opts, callback } = requestArguments(input, rest.filter(r => !(r instanceof Agent)), defaultAgent);
      const agent = opts.agent === false ? new (defaultAgent instanceof HttpsAgent ? HttpsAgent : Agent)() : opts.agent;
      const agentProtocol = agent instanceof Agent ? agent.protocol : defaultAgent.protocol;
      const protocol = typeof opts.protocol === 'string' ? opts.protocol : agentProtocol;
      if (protocol !== agentProtocol) throw nodeError(TypeError, 'ERR_INVALID_PROTOCOL', `Protocol "${protocol}" not supported. Expected "${agentProtocol}"`);
      if (opts.socketPath !== undefined) throw refusedConstructor('http.request with socketPath', 'a service does not reach host sockets', 'Request a TCP URL instead.')();
      if (typeof opts.createConnection === 'function') {
        throw refusedConstructor('http.request with createConnection', 'a service does not hold host sockets', 'Leave connections to the host (remove createConnection).')();
      }
      this.agent = agent;
      this.protocol = protocol;
      const defaultPort = (typeof opts.defaultPort === 'number' ? opts.defaultPort : undefined) ?? (agent instanceof Agent ? agent.defaultPort : protocol === 'https:' ? 443 : 80);
      const port = Number(opts.port ?? defaultPort) || defaultPort;
      const hostname = String(opts.hostname || opts.host || 'localhost');
      this.host = hostname;
      const path = typeof opts.path === 'string' ? opts.path : '/';
      if (/[\u0000-\u0020]/.test(path)) throw nodeError(TypeError, 'ERR_UNESCAPED_CHARACTERS', 'Request path contains unescaped characters');
      this.path = path;
      const method = opts.method === undefined ? 'GET' : String(opts.method).toUpperCase();
      validateHeaderName(method, 'Method');
      this.method = method;
      const bracketed = hostname.includes(':') && !hostname.startsWith('[') ? `[${hostname}]` : hostname;
      const portPart = port !== defaultPort ? `:${port}` : '';
      // A path in absolute form (`http://target/x`, sent to an HTTP proxy): the record names the
      // target, which the host requests directly (proxies are the host's business, not the log's).
      this.#viaProxy = /^[a-z][a-z0-9+.-]*:\/\//i.test(path);
      // Otherwise the path goes as written (#path); the URL only names where it goes: a path that does
      // not start with '/' ('abc', '@elsewhere/x') is still sent to this host, as Node sends it.
      this.#url = this.#viaProxy ? new URL(path).href : `${protocol}//${bracketed}${portPart}${path.startsWith('/') ? '' : '/'}${path}`;
      // Headers: an object, or a flat [name, value, ...] list as Node takes them.
      const given = opts.headers;
      if (isArray(given)) for (let i = 0; i + 1 < given.length; i += 2) this.#append(String(given[i]), String(given[i + 1]));
      else if (given !== null && typeof given === 'object') for (const [name, value] of Object.entries(given)) if (value !== undefined) this.setHeader(name, value as string);
      if (opts.setHost !== false && !this.hasHeader('host') && !isArray(given)) this.setHeader('Host', `${bracketed}${portPart}`);
      if (typeof opts.auth === 'string' && !this.hasHeader('authorization')) this.setHeader('Authorization', `Basic ${GuestBuffer.from(opts.auth).toString('base64')}`);
      if (callback) this.once('response', callback as (...a: unknown[]) => void);
      // Expect: 100-continue: the service may wait for 'continue' before it writes the body; the host
      // sends the whole request at once, so it may go on at once.
      options.nextTick(() => {
        if (/100-continue/i.test(String(this.getHeader('expect') ?? ''))) this.emit('continue');
      });
      if (typeof opts.timeout === 'number') this.setTimeout(opts.timeout);
      const signal = opts.signal as AbortSignal | undefined;
      if (signal) {
        const onAbort = () => this.destroy(listenerError(abortError(signal.reason)));
        if (signal.aborted) options.nextTick(onAbort);
        else signal.addEventListener('abort', onAbort, { once: true });
      }
    }

    #append(name: string, value: string): void {
      const key = name.toLowerCase();
      const existing = this.#headers.get(key);
      if (!existing) this.#headers.set(key, [name, value]);
      else existing[1] = [...(isArray(existing[1]) ? existing[1] : [existing[1]]), value];
    }

    #checkHeadersOpen(): void {
      if (this.headersSent) throw nodeError(Error, 'ERR_HTTP_HEADERS_SENT', 'Cannot set headers after they are sent to the client');
    }

    setHeader(name: string, value: string | number | readonly string[]): this {
      this.#checkHeadersOpen();
      validateHeaderName(name);
      validateHeaderValue(name, value);
      this.#headers.set(String(name).toLowerCase(), [name, isArray(value) ? value.map(String) : String(value)]);
      return this;
    }

    appendHeader(name: string, value: string | readonly string[]): this {
      this.#checkHeadersOpen();
      validateHeaderName(name);
      validateHeaderValue(name, value);
      for (const v of isArray(value) ? value : [value]) this.#append(name, String(v));
      return this;
    }

    getHeader(name: string): string | string[] | undefined {
      const entry = this.#headers.get(String(name).toLowerCase());
      return entry?.[1];
    }

    hasHeader(name: string): boolean {
      return this.#headers.has(String(name).toLowerCase());
    }

    removeHeader(name: string): void {
      this.#checkHeadersOpen();
      this.#headers.delete(String(name).toLowerCase());
    }

    getHeaders(): Record<string, string | string[]> {
      const out = Object.create(null) as Record<string, string | string[]>;
      for (const [key, [, value]] of this.#headers) out[key] = value;
      return out;
    }

    getHeaderNames(): string[] {
      return [...this.#headers.keys()];
    }

    getRawHeaderNames(): string[] {
      return [...this.#headers.values()].map(([name]) => name);
    }

    flushHeaders(): void {
      this.headersSent = true;
    }

    setNoDelay(): void {}

    setSocketKeepAlive(): void {}

    setTimeout(ms: number, callback?: () => void): this {
      if (typeof callback === 'function') this.once('timeout', callback);
      if (this.#timer !== undefined) options.clearTimeout(this.#timer);
      this.#timer = undefined;
      if (ms > 0 && !this.#done) this.#timer = options.setTimeout(() => this.emit('timeout'), ms);
      return this;
    }

    abort(): void {
      if (this.aborted) return;
      this.aborted = true;
      options.nextTick(() => this.emit('abort'));
      this.destroy();
    }

    _write(chunk: Uint8Array, _encoding: string, done: (error?: Error | null) => void): void {
      this.headersSent = true;
      this.#chunks.push(chunk);
      done();
    }

    _final(done: (error?: Error | null) => void): void {
      this.headersSent = true;
      // 'finish' when the response arrives (Node: when the request was written to a socket, which a
      // request that fails to connect never is).
      this.#finalDone = done;
      this.#send();
    }

    _destroy(error: Error | null, done: (error?: Error | null) => void): void {
      if (!error && !this.res && !this.aborted && !this.#done) {
        // As Node: a request destroyed before its response fails with "socket hang up".
        error = nodeError(Error, 'ECONNRESET', 'socket hang up', true);
      }
      this.#finish();
      done(error);
    }

    #finish(): void {
      this.#done = true;
      if (this.#timer !== undefined) options.clearTimeout(this.#timer);
      this.#timer = undefined;
    }

    /** Cross once: the whole request out, the whole response (or the network error) back. */
    #send(): void {
      const secretHost = isSecretSite(secrets, this.#url, [...this.#headers].filter(([key]) => key === 'host').flatMap(([, [, value]]) => (isArray(value) ? value : [value]).map(String)));
      const headers: Array<[string, string]> = [];
      for (const [key, [name, value]] of this.#headers) {
        // Through a proxy: the target gets neither the proxy's credentials nor the proxy's Host.
        if (this.#viaProxy && (key === 'proxy-authorization' || key === 'proxy-connection' || key === 'host')) continue;
        for (const v of isArray(value) ? value : [value]) headers.push([name, secrets.mark(v, secretHost || secrets.isSecretHeader(name), `request header ${name}`)]);
      }
      const body = this.#chunks.length === 0 ? null : concat(this.#chunks);
      const record: HttpRequestRecord = {
        url: this.#url,
        ...(this.#viaProxy ? {} : { path: String(this.path) }),
        method: this.method,
        headers,
        body: secrets.mark(body, secretHost, `request body for ${this.#url}`),
      };
      let pending: Promise<HttpOutcome>;
      try {
        pending = membrane.syscall('http.request', [record], r => hostHttpRequest(r as HttpRequestRecord, reach, secrets)) as Promise<HttpOutcome>;
      } catch (error) {
        this.destroy(error as Error);
        return;
      }
      pending.then(
        outcome => this.#deliver(outcome),
        (error: Error) => {
          if (!this.destroyed) this.destroy(error);
        },
      );
    }

    #deliver(outcome: HttpOutcome): void {
      if (this.destroyed) return;
      if (!outcome.ok) {
        const error = nodeError(Error, outcome.code, outcome.message, true);
        for (const key of errorFields) if (outcome[key] !== undefined) (error as unknown as Record<string, unknown>)[key] = outcome[key];
        this.destroy(error);
        return;
      }
      const res = new IncomingMessage(null);
      res.statusCode = outcome.status;
      res.statusMessage = outcome.statusMessage;
      res.httpVersion = outcome.httpVersion;
      const [major, minor] = outcome.httpVersion.split('.').map(Number);
      res.httpVersionMajor = major;
      res.httpVersionMinor = minor;
      res.rawHeaders = [...outcome.rawHeaders];
      const { headers, distinct } = headersOf(outcome.rawHeaders);
      res.headers = headers;
      res.headersDistinct = distinct;
      res.req = this;
      bodies.set(res, outcome.body);
      this.res = res;
      this.#finish();
      // When the connection is kept alive, the request closes as its response ends, before the
      // response does (Node: res 'end', req 'close', res 'close'); when it is not (an agent without
      // keepAlive, `Connection: close` either way, HTTP/1.0 without keep-alive) and after a HEAD,
      // the socket's close comes first to the response (res 'close', then req 'close').
      const agentKeepsAlive = this.agent instanceof Agent ? this.agent.keepAlive : false;
      const closing = (value: unknown) => /(^|,)\s*close\s*(,|$)/i.test(String(value ?? ''));
      const responseKeepsAlive = closing(headers.connection)
        ? false
        : outcome.httpVersion === '1.0'
          ? /(^|,)\s*keep-alive\s*(,|$)/i.test(String(headers.connection ?? ''))
          : true;
      const keptAlive = this.method !== 'HEAD' && agentKeepsAlive && !closing(this.getHeader('connection')) && responseKeepsAlive;
      res.once(keptAlive ? 'end' : 'close', () => {
        if (!this.destroyed) this.destroy();
      });
      const respond = () => {
        if (this.destroyed) return;
        // With no 'response' listener Node dumps the body.
        if (!this.emit('response', res)) res.resume();
      };
      const finalDone = this.#finalDone;
      this.#finalDone = undefined;
      if (!finalDone) return respond();
      // 'finish' (a tick after _final is done), then 'response'.
      this.once('finish', respond);
      finalDone();
    }
  }

  const concat = (chunks: readonly Uint8Array[]): Uint8Array => {
    const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  };

  const refuseServer = (name: string) =>
    refusedConstructor(`${name}`, 'a service does not listen on sockets of the host', 'Export fetch(request) from the service and call runtime.declare({ http: { port } }) to serve HTTP after restore.');

  // The service's own copies, writable as Node's are (code adds its own status texts).
  const hostHttp = hostRequire('node:http') as typeof import('node:http');
  const STATUS_CODES: Record<string, string | undefined> = { ...hostHttp.STATUS_CODES };
  const METHODS = [...hostHttp.METHODS];

  const makeModule = (defaultAgent: Agent, AgentClass: typeof Agent, prefix: string): Record<string, unknown> => {
    const request = (input?: unknown, ...rest: unknown[]) => new ClientRequest(input, ...rest, defaultAgent);
    const get = (input?: unknown, ...rest: unknown[]) => {
      const req = request(input, ...rest);
      req.end();
      return req;
    };
    return {
      request,
      get,
      Agent: AgentClass,
      globalAgent: defaultAgent,
      ClientRequest,
      IncomingMessage,
      STATUS_CODES,
      METHODS,
      maxHeaderSize: 16384,
      validateHeaderName: (name: unknown, label?: string) => validateHeaderName(name, label),
      validateHeaderValue: (name: string, value: unknown) => validateHeaderValue(name, value),
      createServer: refuseServer(`${prefix}.createServer`),
      Server: refuseServer(`${prefix}.Server`),
      ServerResponse: refuseServer(`${prefix}.ServerResponse`),
    };
  };
  const http = makeModule(globalAgent, Agent, 'http');
  // Node's https has only these (no STATUS_CODES, ClientRequest...: code that reads https.STATUS_CODES gets undefined).
  const full = makeModule(httpsGlobalAgent, HttpsAgent, 'https');
  const https = Object.fromEntries(['Agent', 'globalAgent', 'Server', 'createServer', 'get', 'request'].map(name => [name, full[name]]));
  return { http, https };
};
