/**
 * A host going live: restore the services asked for (from a snapshot
 * directory, or from an app pushed to NATS), join the app's other hosts
 * over NATS when asked, and serve the HTTP handlers the services declared.
 * `stop()` is the graceful shutdown: no new requests or calls, in-flight
 * ones finished, then the connection drained.
 */
import fs from 'node:fs';
import { SnapshotError } from '../replay-log/index.js';
import { readCheckedOptions } from '../replay-log/errors.js';
import { readManifest, type Manifest } from './manifest.js';
import { loadTrustedKeys } from './signing.js';
import { restoreSnapshot, type RestoredSnapshot } from './restore.js';
import type { HttpServer } from './http.js';
import { checkAppName } from './runtime.js';
import type { Transport } from './transport.js';
import { withNats } from './nats-modules.js';

export interface GoLiveOptions {
  /** A snapshot directory, or `nats://host:port/app` (implies `nats`). */
  readonly source: string;
  readonly services?: readonly string[];
  /** NATS server URL: join the app's other hosts. */
  readonly nats?: string;
  /** Subject namespace; default: the manifest's app. */
  readonly app?: string;
  /** Limit on one call to another host, in ms. */
  readonly callTimeoutMs?: number;
  /** Serve HTTP handlers (default true). */
  readonly http?: boolean;
  /**
   * Per-service port overrides (0: a free port). Each must name a restored
   * service that serves HTTP: otherwise USAGE (a mistyped name or a service
   * without HTTP was silently left on no port).
   */
  readonly ports?: Readonly<Record<string, number>>;
  /** Address HTTP services bind (default 127.0.0.1). */
  readonly httpHost?: string;
  /** Files of trusted ed25519 public keys: the snapshot must be signed by one (restoreSnapshot's `trust`). */
  readonly trust?: readonly string[];
  /** The seal key's file (restoreSnapshot's `sealKeyFile`). */
  readonly sealKeyFile?: string;
  readonly print?: (text: string) => void;
}

export interface LiveHost {
  readonly restored: RestoredSnapshot;
  readonly app: string | undefined;
  readonly http: readonly HttpServer[];
  /** Stop accepting, finish what is in flight, disconnect. */
  stop(): Promise<void>;
}

const isNatsSource = (source: string): boolean => /^(nats|tls):\/\//.test(source);

/**
 * A snapshot directory for `source`: the directory itself, or for
 * `nats://host:port/app` a temporary copy of what `services` need, pulled
 * from the app's object store with the checks of pullSnapshot (signature
 * with `trust`, every hash). `done()` removes the copy. For the commands
 * that read a directory and need no live NATS: `restore --replay-only`,
 * `verify`.
 */
export const openSource = async (source: string, options: { services?: readonly string[]; trust?: readonly string[] } = {}): Promise<{ dir: string; done(): void }> => {
  if (!isNatsSource(source)) return { dir: source, done: () => {} };
  const { parseNatsSource, pullSnapshot } = await withNats(() => import('./push.js'));
  const remote = parseNatsSource(source);
  if (!remote) throw new SnapshotError('USAGE', `${source} is not a snapshot source: use nats://host:port/<app>`);
  const trusted = options.trust?.length ? loadTrustedKeys(options.trust) : undefined;
  const { NatsTransport } = await withNats(() => import('./transport-nats.js'));
  const nats = await NatsTransport.connect({ servers: remote.server, app: remote.app, name: 'snapshot pull' });
  try {
    const { dir } = await pullSnapshot(nats.connection, remote.app, { services: options.services, trusted, source });
    return { dir, done: () => fs.rmSync(dir, { recursive: true, force: true }) };
  } finally {
    await nats.close();
  }
};

/** Restore and go live. Throws what restore throws, TRANSPORT_FAILED for NATS or port trouble. */
/**
 * Refuse (USAGE) a port override for a service not in `restored` (names the
 * manifest has), or for one that declared no HTTP: a mistyped name must not
 * leave the service on its declared port unnoticed. Used before a replay
 * (the CLI, from the manifest) and after one (goLive, any source).
 */
export const checkPorts = (manifest: Manifest, restored: readonly string[], ports: Readonly<Record<string, number>>): void => {
  for (const [name, port] of Object.entries(ports)) {
    if (!restored.includes(name) || !Object.hasOwn(manifest.services, name)) {
      throw new SnapshotError('USAGE', `--port ${name}=${port}: no service "${name}" is restored here (restored: ${restored.join(', ') || 'none'})`);
    }
    if (!manifest.services[name].runtime?.http) {
      throw new SnapshotError('USAGE', `--port ${name}=${port}: service "${name}" serves no HTTP (its build declared none: runtime.declare({ http: ... }) and a fetch handler); drop --port ${name}`);
    }
  }
};

export const goLive = async (given: GoLiveOptions): Promise<LiveHost> => {
  // Read once: what is checked is what is used.
  const options = readCheckedOptions(
    given,
    { source: 'string', services: 'strings', nats: 'string', app: 'string', callTimeoutMs: 'ms', http: 'boolean', ports: 'object', httpHost: 'string', trust: 'strings', sealKeyFile: 'string', print: 'function' },
    'goLive()',
    ['source'],
  );
  if (options.trust !== undefined && options.trust.length === 0) throw new SnapshotError('USAGE', 'goLive(): trust takes one or more files of trusted keys; an empty list would check nothing.');
  let dir = options.source;
  let pulledDir: string | undefined;
  let transport: (Transport & { close(): Promise<void> }) | undefined;
  let app = options.app;
  const { parseNatsSource } = /^(nats|tls):\/\//.test(options.source) ? await withNats(() => import('./push.js')) : { parseNatsSource: () => undefined };
  const remote = parseNatsSource(options.source);
  if (/^(nats|tls):\/\//.test(options.source) && !remote) {
    throw new SnapshotError('USAGE', `${options.source} is not a snapshot source: use nats://host:port/<app>`);
  }
  const natsUrl = options.nats ?? remote?.server;
  // Keys are read before anything is fetched: a bad key file fails first (KEY_INVALID).
  const trusted = remote && options.trust?.length ? loadTrustedKeys(options.trust) : undefined;
  if (natsUrl) {
    const { NatsTransport } = await withNats(() => import('./transport-nats.js'));
    if (remote) app ??= remote.app;
    if (!app) app = readManifest(dir).app;
    app = checkAppName(app ?? 'app');
    const nats = await NatsTransport.connect({ servers: natsUrl, app, callTimeoutMs: options.callTimeoutMs });
    transport = nats;
    if (remote) {
      try {
        const { pullSnapshot } = await withNats(() => import('./push.js'));
        pulledDir = (await pullSnapshot(nats.connection, remote.app, { services: options.services, trusted, source: options.source })).dir;
        dir = pulledDir;
      } catch (error) {
        await nats.close();
        throw error;
      }
    }
  }
  let restored: RestoredSnapshot;
  try {
    restored = await restoreSnapshot({ dir, services: options.services, transport, print: options.print, trust: options.trust, sealKeyFile: options.sealKeyFile });
  } catch (error) {
    await transport?.close();
    throw error;
  } finally {
    if (pulledDir) fs.rmSync(pulledDir, { recursive: true, force: true });
  }
  const http: HttpServer[] = [];
  try {
    checkPorts(restored.manifest, [...restored.services.keys()], options.ports ?? {});
    if (options.http !== false) {
      for (const service of restored.services.values()) {
        const declared = restored.manifest.services[service.name]?.runtime;
        if (!declared?.http) continue;
        // Own entries only: a service named toString must not get Object.prototype's function as its port.
        const port = options.ports && Object.hasOwn(options.ports, service.name) ? options.ports[service.name] : undefined;
        // node:http and @hono/node-server only for a host that serves HTTP.
        const { serveHttp } = await import('./http.js');
        http.push(await serveHttp(service, declared.http.port, declared.httpAdapter, { port, host: options.httpHost }));
      }
    }
  } catch (error) {
    await Promise.all(http.map(server => server.close()));
    await transport?.close();
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return {
    restored,
    app,
    http,
    stop: () =>
      (stopping ??= (async () => {
        await Promise.all(http.map(server => server.close()));
        await transport?.close();
      })()),
  };
};
