/**
 * HTTP serving of restored services. A service that declared `http` and
 * exports a WinterCG `fetch(request)` handler is served on its port once
 * live. `@hono/node-server` adapts node:http to the Fetch API; each request
 * becomes one delivery into the service (through its HTTP adapter, see
 * compartments/runtime.ts), crossing as a record of bytes and strings.
 *
 * Bodies stream both ways, through one `HttpIo` object per server that the
 * adapter receives with each request:
 *
 *   client --chunks--> node:http --> io.read(id)   <--syscall-- service's request.body
 *   client <-chunked-- node:http <-- io.respond/write(id) <--  service's ReadableStream
 *
 * The service pulls each request chunk when it reads (a syscall whose
 * promise settles in a delivery, as any other), and a response whose body
 * is a ReadableStream is sent chunk by chunk as the service produces it,
 * each write waiting until the client can take more. A response whose body
 * is bytes comes back whole in the adapter's answer (one crossing). The
 * service never holds a host stream: only copies of chunks cross.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SnapshotError, describeError, isSnapshotError } from '../replay-log/index.js';
import { block } from '../replay-log/errors.js';
import type { HttpIo, RequestRecord, ResponseHead, ResponseRecord } from '../compartments/index.js';
import type { RestoredService } from './service.js';

/** Default cap on a request body, in bytes (16 MiB). */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;

export interface ServeHttpOptions {
  /** Port to listen on; default: the declared one. 0 picks a free port. */
  readonly port?: number;
  /** Address to bind (default 127.0.0.1; use 0.0.0.0 in a container). */
  readonly host?: string;
  /** Largest request body accepted, in bytes (default 16 MiB); larger ones get 413 (BODY_TOO_LARGE in the service). */
  readonly maxBodyBytes?: number;
  /** Where failures of the handler are reported (default: stderr). */
  readonly report?: (text: string) => void;
}

/** A listening HTTP front of one service. */
export interface HttpServer {
  readonly service: string;
  /** The bound port (the declared one, or the one picked for 0). */
  readonly port: number;
  readonly url: string;
  /** Stop accepting, let in-flight requests finish, then close idle keep-alive connections. */
  close(): Promise<void>;
}

/**
 * Serve `service`'s fetch handler over HTTP. Throws USAGE when the service
 * declared no `http`, TRANSPORT_FAILED when the port cannot be bound.
 */
export const serveHttp = async (service: RestoredService, declaredPort: number | undefined, adapterId: number | undefined, options: ServeHttpOptions = {}): Promise<HttpServer> => {
  if (declaredPort === undefined || adapterId === undefined) {
    throw new SnapshotError('USAGE', `service "${service.name}" declared no http port at build time: add runtime.declare({ http: { port } }) to it and rebuild.`);
  }
  const handler = typeof service.exports.fetch === 'function' ? service.exports.fetch : service.exports.default;
  const adapter = service.membrane.exportProxy(adapterId, 'function httpAdapter') as (target: unknown, record: RequestRecord, io: HttpIo) => Promise<ResponseRecord>;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  // A service's error text in it: shown as one block, its control characters escaped (a line of it cannot pass for ours).
  const report = options.report ?? ((text: string) => process.stderr.write(`${block(text)}\n`));
  const tooLarge = () => new Response(`request body over ${maxBodyBytes} bytes\n`, { status: 413 });
  const inFlight = new Map<number, InFlight>();
  const { io, abort } = makeIo(service.name, inFlight, maxBodyBytes);
  let nextId = 1;

  // Loaded here, not at the top: a restore that serves no HTTP never loads the adapter.
  const { getRequestListener } = await import('@hono/node-server');
  const listener = getRequestListener(
    async (request: Request): Promise<Response> => {
      const length = Number(request.headers.get('content-length') ?? 0);
      if (length > maxBodyBytes) return tooLarge();
      const id = nextId++;
      const hasBody = request.method !== 'GET' && request.method !== 'HEAD' && request.body !== null;
      const record: RequestRecord = { id, url: request.url, method: request.method, headers: [...request.headers], ...(hasBody ? { stream: true } : {}) };
      let answer!: (response: Response) => void;
      const head = new Promise<Response>(resolve => (answer = resolve));
      const flight: InFlight = { reader: hasBody ? (request.body as ReadableStream<Uint8Array>).getReader() : undefined, received: 0, tooLarge: false, answer, answered: false, closed: false };
      inFlight.set(id, flight);
      // The client went away before the response ended (@hono/node-server aborts the signal then): tell the handler.
      const onAbort = () => abort(id, request.signal.reason);
      request.signal.addEventListener('abort', onAbort, { once: true });
      adapter(handler, record, io).then(
        response => {
          if (response.streamed) closeQuietly(() => flight.body?.close());
          else if (flight.tooLarge && !flight.answered) flight.answer(tooLarge()); // even if the handler caught BODY_TOO_LARGE
          else if (!flight.answered) {
            let answer: Response;
            try {
              // A HEAD response keeps its body here: node:http sends its length and drops the bytes, as for a handler in plain Node.
              answer = new Response(response.body ?? null, headInit(response));
            } catch (error) {
              // A response Node's Response refuses (a 204 with a body, status 999): the client gets a 500, not silence.
              report(`snapshot: ${service.name}: ${request.method} ${new URL(request.url).pathname} answered a response HTTP cannot carry: ${describeError(error)}`);
              answer = new Response('internal error\n', { status: 500 });
            }
            flight.answer(answer);
          }
        },
        error => {
          const what = describeError(error);
          report(`snapshot: ${service.name}: ${request.method} ${new URL(request.url).pathname} failed${flight.answered ? ' while streaming its response' : ''}: ${what}`);
          if (flight.answered) {
            // The client sees the response cut short, not a complete one; the service's message stays in the
            // report (before the first chunk, the HTTP layer would send it to the client as the body).
            closeQuietly(() => flight.body?.error(new Error('internal error')));
            return;
          }
          if (flight.tooLarge) return flight.answer(tooLarge());
          const status = isSnapshotError(error) && (error.code === 'SERVICE_UNAVAILABLE' || error.code === 'CALL_TIMEOUT' || error.code === 'CALL_INTERRUPTED') ? 503 : 500;
          flight.answer(new Response(`${status === 503 ? 'service unavailable' : 'internal error'}\n`, { status }));
        },
      ).finally(() => {
        request.signal.removeEventListener('abort', onAbort);
        inFlight.delete(id);
        flight.reader?.cancel().catch(() => {});
        // Whatever happened above, the client gets an answer (a no-op when it has one).
        flight.answer(new Response('internal error\n', { status: 500 }));
      });
      return head;
    },
    { overrideGlobalObjects: false },
  );
  const server = http.createServer((req, res) => void listener(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', cause =>
      reject(new SnapshotError('TRANSPORT_FAILED', `service "${service.name}" cannot listen on port ${options.port ?? declaredPort}: ${(cause as Error).message}. Free the port, or choose another with --port ${service.name}=<port>.`, { cause })),
    );
    server.listen(options.port ?? declaredPort, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    service: service.name,
    port: address.port,
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>(resolve => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
};

/** A request being served: its body as it arrives, its response as it leaves. */
interface InFlight {
  /** The request body, read as the service pulls it. */
  readonly reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  received: number;
  tooLarge: boolean;
  /** Hands the response (head, and body or body stream) to node:http, once. */
  readonly answer: (response: Response) => void;
  answered: boolean;
  /** The response body stream, once the head was sent. */
  body?: ReadableStreamDefaultController<Uint8Array>;
  /** Resolves the write waiting for the client to take more. */
  more?: () => void;
  /** The client went away: further writes fail. */
  closed: boolean;
}

/** Close or error a response stream the client may already have cancelled. */
const closeQuietly = (close: () => void): void => {
  try {
    close();
  } catch {
    // already cancelled by node:http (the client went away)
  }
};

const headInit = (head: ResponseHead): ResponseInit => ({ status: head.status, statusText: head.statusText, headers: head.headers });

/**
 * The host side of streamed bodies (compartments/runtime.ts `HttpIo`). Its
 * arguments come from the service: each is checked before it is used.
 */
const makeIo = (serviceName: string, inFlight: Map<number, InFlight>, maxBodyBytes: number): { io: HttpIo; abort(id: number, reason: unknown): void } => {
  /** The adapter's abort callback (HttpIo.watch), a function of the service. */
  let aborter: ((id: number, reason: string) => Promise<unknown>) | undefined;
  const abort = (id: number, reason: unknown): void => {
    if (!inFlight.has(id) || aborter === undefined) return;
    // A delivery into the service; it fails only if the service did (reported with the request).
    const callback = aborter;
    void Promise.resolve()
      .then(() => callback(id, typeof reason === 'string' ? reason : 'This operation was aborted'))
      .catch(() => {});
  };
  const find = (id: unknown, what: string): InFlight => {
    const flight = typeof id === 'number' ? inFlight.get(id) : undefined;
    if (!flight) throw new TypeError(`${what}: request ${String(id)} is not in flight on service "${serviceName}" (its response was already sent)`);
    return flight;
  };
  const io: HttpIo = Object.freeze({
    watch(callback: (id: number, reason: string) => void): void {
      if (typeof callback !== 'function') throw new TypeError('watch: the abort callback is a function');
      aborter = callback as (id: number, reason: string) => Promise<unknown>;
    },
    async read(id: number): Promise<Uint8Array | null> {
      const flight = find(id, 'request.body');
      if (!flight.reader) return null;
      const { done, value } = await flight.reader.read();
      if (done) return null;
      // A chunk of its own: a Buffer may view Node's shared pool, whose other bytes are the host's.
      const chunk = new Uint8Array(value.byteLength);
      chunk.set(value);
      flight.received += chunk.byteLength;
      if (flight.received > maxBodyBytes) {
        flight.tooLarge = true;
        flight.reader.cancel().catch(() => {});
        throw new SnapshotError('BODY_TOO_LARGE', `the request body is over ${maxBodyBytes} bytes, the limit of this server; the client gets 413. Send less, or raise the limit (serveHttp's maxBodyBytes).`, {
          details: { limit: maxBodyBytes },
        });
      }
      return chunk;
    },
    cancel(id: number): void {
      find(id, 'request.body.cancel()').reader?.cancel().catch(() => {});
    },
    respond(id: number, head: ResponseHead): void {
      const flight = find(id, 'response');
      if (flight.answered) throw new TypeError('response: its head was already sent');
      flight.answered = true;
      const body = new ReadableStream<Uint8Array>(
        {
          start: controller => void (flight.body = controller),
          pull: () => {
            flight.more?.();
            flight.more = undefined;
          },
          cancel: () => {
            flight.closed = true;
            flight.more?.();
            flight.more = undefined;
          },
        },
        { highWaterMark: 1 },
      );
      flight.answer(new Response(body, headInit(head)));
    },
    async write(id: number, chunk: Uint8Array): Promise<void> {
      const flight = find(id, 'response body');
      if (!flight.body) throw new TypeError('response body: write before the head was sent');
      if (!(chunk instanceof Uint8Array)) throw new TypeError('response body: chunks are Uint8Array');
      if (flight.closed) throw new SnapshotError('CALL_CANCELLED', 'the HTTP client closed the connection before the response ended; stop producing it.');
      flight.body.enqueue(chunk);
      if ((flight.body.desiredSize ?? 0) > 0) return;
      await new Promise<void>(resolve => (flight.more = resolve));
      if (flight.closed) throw new SnapshotError('CALL_CANCELLED', 'the HTTP client closed the connection before the response ended; stop producing it.');
    },
  });
  return { io, abort };
};
