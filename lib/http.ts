/**
 * HTTP serving of restored services. A service that declared `http` and
 * exports a WinterCG `fetch(request)` handler is served on its port once
 * live. `@hono/node-server` adapts node:http to the Fetch API; each request
 * becomes one delivery into the service (through its HTTP adapter, see
 * compartments/runtime.ts), crossing as a record of bytes and strings, and
 * the response comes back the same way.
 *
 * Bodies are buffered: a request body is read whole (up to
 * `maxBodyBytes`) before the delivery, and the service's response body is
 * complete when it crosses back.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SnapshotError, isSnapshotError } from '../replay-log/index.js';
import type { RequestRecord, ResponseRecord } from '../compartments/index.js';
import type { RestoredService } from './service.js';

/** Default cap on a request body, in bytes (16 MiB). */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;

export interface ServeHttpOptions {
  /** Port to listen on; default: the declared one. 0 picks a free port. */
  readonly port?: number;
  /** Address to bind (default 127.0.0.1; use 0.0.0.0 in a container). */
  readonly host?: string;
  /** Largest request body accepted, in bytes (default 16 MiB); larger ones get 413. */
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
  const adapter = service.membrane.exportProxy(adapterId, 'function httpAdapter') as (target: unknown, record: RequestRecord) => Promise<ResponseRecord>;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const report = options.report ?? ((text: string) => process.stderr.write(`${text}\n`));

  // Loaded here, not at the top: a restore that serves no HTTP never loads the adapter.
  const { getRequestListener } = await import('@hono/node-server');
  const listener = getRequestListener(
    async (request: Request): Promise<Response> => {
      const length = Number(request.headers.get('content-length') ?? 0);
      if (length > maxBodyBytes) return new Response(`request body over ${maxBodyBytes} bytes\n`, { status: 413 });
      let body: Uint8Array | undefined;
      if (request.method !== 'GET' && request.method !== 'HEAD' && request.body) {
        body = new Uint8Array(await request.arrayBuffer());
        if (body.byteLength > maxBodyBytes) return new Response(`request body over ${maxBodyBytes} bytes\n`, { status: 413 });
      }
      const record: RequestRecord = { url: request.url, method: request.method, headers: [...request.headers], ...(body ? { body } : {}) };
      try {
        const answer = await adapter(handler, record);
        return new Response(request.method === 'HEAD' ? null : answer.body, { status: answer.status, statusText: answer.statusText, headers: answer.headers });
      } catch (error) {
        const what = isSnapshotError(error) ? `${error.code}: ${error.message}` : error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        report(`snapshot: ${service.name}: ${request.method} ${new URL(request.url).pathname} failed: ${what}`);
        const status = isSnapshotError(error) && (error.code === 'SERVICE_UNAVAILABLE' || error.code === 'CALL_TIMEOUT') ? 503 : 500;
        return new Response(`${status === 503 ? 'service unavailable' : 'internal error'}\n`, { status });
      }
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
