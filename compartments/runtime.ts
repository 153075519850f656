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
import { BufferedBody } from './buffered-body.js';
import { hostHeaders } from './web.js';
import { MAX_REPLICAS, isPort, isReplicaCount } from './runtime-limits.js';

const { freeze, keys, getPrototypeOf } = Object;
const objectPrototype = Object.prototype;

/** What a service may declare. Every field is optional; nothing else is accepted. */
export interface RuntimeDeclaration {
  /** Serve the service's `fetch(request)` handler over HTTP on this TCP port (1..65535). */
  readonly http?: { readonly port: number };
  /** How many copies run at once behind one queue group (1..64; default 1). */
  readonly replicas?: number;
}

/** A request as it crosses into a service: bytes and strings only. */
export interface RequestRecord {
  readonly url: string;
  readonly method: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** The whole body (absent for GET/HEAD). */
  readonly body?: Uint8Array;
}

/** A response as it leaves a service. */
export interface ResponseRecord {
  readonly status: number;
  readonly statusText: string;
  readonly headers: Array<[string, string]>;
  readonly body: Uint8Array;
}

export { MAX_REPLICAS } from './runtime-limits.js';

/** Raised into the service, marked as the library's so it keeps its code on the way out. */
const invalid = (message: string, value: unknown): SnapshotError =>
  markLibraryError(new SnapshotError('DECLARATION_INVALID', `runtime.declare(): ${message} (got ${describe(value)}). Example: runtime.declare({ http: { port: 8080 }, replicas: 2 })`));

const describe = (value: unknown): string => {
  try {
    return typeof value === 'string' ? JSON.stringify(value) : typeof value === 'object' && value !== null ? JSON.stringify(value) ?? String(value) : String(value);
  } catch {
    return String(value);
  }
};

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && (getPrototypeOf(value) === objectPrototype || getPrototypeOf(value) === null);

/**
 * Check a declaration and return a frozen copy holding only known fields.
 * Throws DECLARATION_INVALID saying which field is wrong and what it takes.
 */
export const validateDeclaration = (value: unknown): RuntimeDeclaration => {
  if (!isRecord(value)) throw invalid('takes one plain object', value);
  for (const key of keys(value)) {
    if (key !== 'http' && key !== 'replicas') throw invalid(`unknown field "${key}"; known fields: http, replicas`, value);
  }
  const out: { http?: { port: number }; replicas?: number } = {};
  if (value.http !== undefined) {
    const http = value.http;
    if (!isRecord(http)) throw invalid('http takes an object { port }', http);
    for (const key of keys(http)) if (key !== 'port') throw invalid(`unknown field "http.${key}"; http takes { port }`, http);
    const port = http.port;
    if (!isPort(port)) throw invalid('http.port takes an integer TCP port from 1 to 65535', port);
    out.http = freeze({ port });
  }
  if (value.replicas !== undefined) {
    const replicas = value.replicas;
    if (!isReplicaCount(replicas)) {
      throw invalid(`replicas takes an integer from 1 to ${MAX_REPLICAS}`, replicas);
    }
    out.replicas = replicas;
  }
  return freeze(out);
};

/** A fully buffered WinterCG `Request`, built inside the service from a request record. */
export class GuestRequest extends BufferedBody {
  readonly url: string;
  readonly method: string;
  readonly headers: Headers;

  constructor(record: RequestRecord) {
    super(record.body instanceof Uint8Array ? record.body : new Uint8Array(0));
    this.url = String(record.url);
    this.method = String(record.method);
    this.headers = new (hostHeaders())(record.headers as Array<[string, string]>);
  }
}
harden(GuestRequest);

type Handler = (request: GuestRequest) => unknown;

/** Read what a handler answered into a response record (inside the service's turn). */
const toResponseRecord = async (response: unknown): Promise<ResponseRecord> => {
  const r = response as { status?: unknown; statusText?: unknown; headers?: unknown; arrayBuffer?: unknown } | null;
  if (typeof r !== 'object' || r === null || typeof r.status !== 'number' || typeof r.arrayBuffer !== 'function') {
    throw new TypeError(`the fetch handler returned ${describe(response)}, not a Response: return new Response(body, { status, headers })`);
  }
  const headers: Array<[string, string]> = [];
  if (r.headers instanceof hostHeaders()) r.headers.forEach((v, k) => headers.push([k, v]));
  const body = new Uint8Array((await (r.arrayBuffer as () => Promise<ArrayBuffer>).call(r)) as ArrayBuffer);
  return { status: r.status, statusText: typeof r.statusText === 'string' ? r.statusText : '', headers, body };
};

/**
 * Delivered by the HTTP runtime: `target` is the service's `fetch` export
 * (a function) or its default export (an object with a `fetch` method).
 */
const httpAdapter = harden(async function httpAdapter(target: unknown, record: RequestRecord): Promise<ResponseRecord> {
  let handler: Handler;
  if (typeof target === 'function') handler = target as Handler;
  else if (typeof target === 'object' && target !== null && typeof (target as { fetch?: unknown }).fetch === 'function') {
    handler = request => (target as { fetch: Handler }).fetch(request);
  } else throw new TypeError('the service exports no fetch(request) handler');
  return toResponseRecord(await handler(new GuestRequest(record)));
});

/** What the host does with a declaration (build time only); absent on restore hosts. */
export type DeclareHost = (declaration: RuntimeDeclaration, httpAdapter: unknown) => void;

/** The `runtime` object of the library module, for one service. */
export const makeRuntime = (membrane: Membrane, declareHost: DeclareHost | undefined): { declare(declaration: unknown): void } =>
  harden({
    declare(declaration: unknown): void {
      const checked = validateDeclaration(declaration);
      membrane.syscall('runtime.declare', [checked, httpAdapter], (d, adapter) => {
        if (!declareHost) throw new TypeError('runtime.declare() is made while a snapshot is built, at module top level; it has no effect once the service is live');
        declareHost(d as RuntimeDeclaration, adapter);
      });
    },
  });
