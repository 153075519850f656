/**
 * The NATS transport: calls between services on different hosts travel as
 * NATS request/reply (`@nats-io/transport-node`).
 *
 * Subjects (tokens escaped so any app or service name is one token):
 *
 * | subject                        | who subscribes                         | carries                                 |
 * | ------------------------------ | -------------------------------------- | --------------------------------------- |
 * | `msnap.<app>.svc.<service>`    | every replica, queue group `<service>` | calls on a service's build-time exports |
 * | `msnap.<app>.obj.<host>`       | one host                               | calls on objects that host handed out   |
 *
 * A request is msgpack `[target, method, args]` (`method` null for a call
 * of the target itself); a reply is `[ok, value]`. Values are encoded by
 * transport-codec.ts, so data is copied and behaviour stays a reference
 * routed back to the host that holds it.
 *
 * Failures are typed: SERVICE_UNAVAILABLE at once when no replica listens
 * (the server's "no responders"), CALL_TIMEOUT after `callTimeoutMs`,
 * CALL_CANCELLED for calls still waiting when the transport closes,
 * CALL_INTERRUPTED when the replica running a call died before answering.
 *
 * A service call runs at most once. The replica that takes a call from the
 * queue group acknowledges it (`[ACK, host]`, written to the connection
 * before the call is delivered to the service), and the caller then watches
 * that host. A call no replica acknowledged was never delivered and is sent
 * to the queue group again, so killing a replica loses none of the calls
 * it had not started; a call it had started fails with CALL_INTERRUPTED,
 * because it may have run in part or in whole (its effects on other
 * services, files or the network may have happened). It is not run again
 * behind the caller's back: the caller decides whether it is safe to retry.
 *
 * Objects handed to other hosts stay in this host's table for the life of
 * the process (there is no distributed garbage collection).
 */
import { connect, createInbox, NoRespondersError, RequestError, TimeoutError, type NatsConnection, type Msg, type Subscription } from '@nats-io/transport-node';
import { randomUUID } from 'node:crypto';
import { SnapshotError, isSnapshotError, packr } from '../replay-log/index.js';
import type { Directory, ExportRef, Membrane } from '../membrane/index.js';
import { unreachable, type Transport } from './transport.js';
import { decodeValues, encodeValues, RemoteRef, type RefTable } from './transport-codec.js';

/** While a call waits longer than this (ms), the host that took it is checked every PROBE_MS. */
const PROBE_MS = 250;
/**
 * A service call that no replica acknowledged within this many ms never
 * reached one (it was sent to a replica as it died) and is sent to the
 * queue group again. A replica acknowledges a call as soon as it reads it,
 * before the service runs it; so only a replica whose event loop is blocked
 * for longer than this with the call unread could run a call that another
 * replica also runs.
 */
const ACK_WAIT_MS = 1000;
/** How many times one unacknowledged call is sent to the queue group again. */
const MAX_RESENDS = 3;
/** First element of a replica's acknowledgement `[ACK, host]`. */
const ACK = 2;
/** A liveness probe: a call on object -1 of a host, answered by the host itself. */
const PING = packr.pack([-1, null, []]);

const isNoResponders = (error: unknown): boolean => error instanceof NoRespondersError || (error instanceof RequestError && error.isNoResponders());

/** Default limit on one call between hosts, in ms. */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;

export interface NatsTransportOptions {
  /** NATS server URL(s), e.g. nats://127.0.0.1:4222. */
  readonly servers: string | readonly string[];
  /** Namespace of the app's subjects: two apps on one server never see each other's calls. */
  readonly app: string;
  /** How long a call may wait for its reply, in ms (default 30000). */
  readonly callTimeoutMs?: number;
  /** Name of this host in the server's connection list. */
  readonly name?: string;
}

/** One subject token: letters, digits, `-` and `_` kept, anything else escaped as `=XX`. */
export const subjectToken = (name: string): string =>
  name.replace(/[^A-Za-z0-9_-]/g, c => [...Buffer.from(c, 'utf8')].map(b => `=${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));

export const serviceSubject = (app: string, service: string): string => `msnap.${subjectToken(app)}.svc.${subjectToken(service)}`;
export const objectSubject = (app: string, host: string): string => `msnap.${subjectToken(app)}.obj.${subjectToken(host)}`;

type Invoke = (target: number, method: string | null, args: unknown[]) => Promise<unknown>;

export class NatsTransport implements Transport {
  readonly app: string;
  /** This process's id on the bus (objects it hands out are routed here). */
  readonly host = randomUUID();
  readonly callTimeoutMs: number;
  readonly #nc: NatsConnection;
  /** Queue group subscriptions (dropped first at shutdown), then the object subject's. */
  readonly #serviceSubscriptions: Subscription[] = [];
  readonly #subscriptions: Subscription[] = [];
  readonly #ack = packr.pack([ACK, this.host]);
  /** Objects this host handed out, by id, and back. */
  readonly #objects: object[] = [];
  readonly #objectIds = new WeakMap<object, number>();
  /** Stubs of remote objects, by "host/id" or "service#export", and their refs. */
  readonly #stubs = new Map<string, object>();
  readonly #stubRefs = new WeakMap<object, RemoteRef>();
  readonly #pending = new Set<(error: SnapshotError) => void>();
  /** This host's reply subject prefix, and the calls waiting on it by token. */
  readonly #inbox = createInbox();
  readonly #waiting = new Map<string, (msg: Msg) => void>();
  #nextToken = 1;
  readonly #inFlight = new Set<Promise<unknown>>();
  #local = new Map<string, Membrane>();
  #directory: Directory | undefined;
  #closed = false;

  private constructor(nc: NatsConnection, options: NatsTransportOptions) {
    this.#nc = nc;
    this.app = options.app;
    this.callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.#replies = nc.subscribe(`${this.#inbox}.*`, {
      callback: (_error, msg) => this.#waiting.get(msg.subject.slice(this.#inbox.length + 1))?.(msg),
    });
  }

  readonly #replies: Subscription;

  /** Connect to NATS. Throws TRANSPORT_FAILED when no server answers. */
  static async connect(options: NatsTransportOptions): Promise<NatsTransport> {
    let nc: NatsConnection;
    try {
      nc = await connect({ servers: options.servers as string | string[], name: options.name ?? 'membrane-snapshot', maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    } catch (cause) {
      throw new SnapshotError('TRANSPORT_FAILED', `cannot connect to NATS at ${String(options.servers)}: ${(cause as Error).message}. Start a server (nats-server -js) or fix --nats.`, { cause });
    }
    return new NatsTransport(nc, options);
  }

  readonly #refs: RefTable = {
    isRef: object => this.#stubRefs.has(object) || this.#directory?.originOf(object) !== undefined,
    toRef: object => {
      const stub = this.#stubRefs.get(object);
      if (stub) return stub;
      let id = this.#objectIds.get(object);
      if (id === undefined) {
        id = this.#objects.length;
        this.#objects.push(object);
        this.#objectIds.set(object, id);
      }
      const origin = this.#directory?.originOf(object);
      const iface = origin?.iface || (typeof object === 'function' ? `function ${(object as { name?: string }).name || 'anonymous'}` : 'object');
      return new RemoteRef(this.host, id, iface);
    },
    fromRef: ref => {
      if (ref.service) return this.connect({ service: ref.service, export: ref.exportId, iface: ref.iface });
      if (ref.host === this.host) {
        const object = this.#objects[ref.id];
        if (object === undefined) throw new SnapshotError('TRANSPORT_FAILED', `a message named object #${ref.id} of this host, which it never handed out`);
        return object;
      }
      const key = `${ref.host}/${ref.id}`;
      return this.#stub(key, ref, objectSubject(this.app, ref.host), ref.id);
    },
  };

  /** A host object whose calls reach `ref` on whichever replica of its service answers. */
  connect(ref: ExportRef): object {
    const local = this.#local.get(ref.service);
    if (local) return local.exportProxy(ref.export, ref.iface);
    if (this.#closed) return unreachable(ref, 'NATS');
    return this.#stub(`${ref.service}#${ref.export}`, new RemoteRef('', ref.export, ref.iface, ref.service, ref.export), serviceSubject(this.app, ref.service), ref.export);
  }

  /** A callable stand-in for a remote object: methods by name, a call of its own if it is a function. */
  #stub(key: string, ref: RemoteRef, subject: string, target: number): object {
    const existing = this.#stubs.get(key);
    if (existing) return existing;
    const call: Invoke = (t, method, args) => this.#request(subject, t, method, args, ref);
    const methods = new Map<string, (...args: unknown[]) => Promise<unknown>>();
    const stub = new Proxy(ref.iface.startsWith('function') ? function remote() {} : {}, {
      apply: (_t, _this, args) => call(target, null, args),
      get: (_t, key) => {
        if (key === 'then' || typeof key === 'symbol') return undefined;
        let method = methods.get(key);
        if (!method) methods.set(key, (method = (...args: unknown[]) => call(target, key, args)));
        return method;
      },
      set: () => false,
      defineProperty: () => false,
      deleteProperty: () => false,
    });
    this.#stubs.set(key, stub);
    this.#stubRefs.set(stub, ref);
    // The membranes of this process then treat the stub as another service's object: a reference.
    this.#directory?.register(stub, { service: ref.service || `host ${ref.host.slice(0, 8)}`, export: target, iface: ref.iface });
    return stub;
  }

  /**
   * Send a call and wait for its reply on this host's inbox. The replica
   * that takes a service call acknowledges it with its host id; while the
   * reply is awaited past PROBE_MS, the taker is probed: if its host has
   * left the bus (no responders on its object subject: it died), the call
   * fails with CALL_INTERRUPTED (it may have run). A call no replica
   * acknowledged within ACK_WAIT_MS goes to the queue group again. A call
   * on an object whose host died fails with SERVICE_UNAVAILABLE.
   */
  #request(subject: string, target: number, method: string | null, args: unknown[], ref: RemoteRef): Promise<unknown> {
    const what = `${ref.iface || `object #${target}`}${method ? `.${method}()` : '()'}${ref.service ? ` of service ${ref.service}` : ''}`;
    if (this.#closed) return Promise.reject(new SnapshotError('CALL_CANCELLED', `${what} was not sent: this host is shutting down`));
    let payload: Uint8Array;
    try {
      payload = encodeValues([target, method, args], this.#refs);
    } catch (error) {
      return Promise.reject(error);
    }
    const token = String(this.#nextToken++);
    const reply = `${this.#inbox}.${token}`;
    return new Promise((resolve, reject) => {
      let taker: string | undefined = ref.service ? undefined : ref.host;
      let probing = false;
      let resends = 0;
      let sentAt = performance.now();
      const finish = (error: unknown, value?: unknown) => {
        if (!this.#waiting.delete(token)) return;
        clearTimeout(deadline);
        clearInterval(probe);
        this.#pending.delete(cancel);
        if (error === undefined) resolve(value);
        else reject(error);
      };
      const cancel = (error: SnapshotError) => finish(error);
      const send = () => {
        sentAt = performance.now();
        this.#nc.publish(subject, payload, { reply });
      };
      const deadline = setTimeout(() => finish(this.#explain(new TimeoutError(), what, ref)), this.callTimeoutMs);
      const probe = setInterval(() => {
        if (taker === undefined && ref.service && performance.now() - sentAt > ACK_WAIT_MS && resends < MAX_RESENDS) {
          resends += 1; // nobody took it: the replica it went to died with it
          send();
          return;
        }
        if (taker === undefined || probing) return;
        probing = true;
        const host = taker;
        this.#nc.request(objectSubject(this.app, host), PING, { timeout: PROBE_MS * 4 }).then(
          () => (probing = false),
          (error: unknown) => {
            probing = false;
            if (!isNoResponders(error) || taker !== host) return;
            if (!ref.service) return finish(this.#explain(error, what, ref));
            // The replica that took the call is gone, and the call may have run there: not run again.
            finish(
              new SnapshotError(
                'CALL_INTERRUPTED',
                `${what}: the replica that took the call (host ${host.slice(0, 8)}) stopped before answering; the call may have run there in part or in whole, and was not run again. Retry it if it is safe to run twice.`,
                { cause: error, details: { service: ref.service, app: this.app, host } },
              ),
            );
          },
        );
      }, PROBE_MS);
      this.#pending.add(cancel);
      this.#waiting.set(token, msg => {
        if (msg.data.length === 0 && msg.headers?.code === 503) return finish(this.#explain(new NoRespondersError(subject), what, ref));
        let decoded: unknown;
        try {
          decoded = decodeValues(msg.data, this.#refs);
        } catch (error) {
          return finish(error);
        }
        if (Array.isArray(decoded) && decoded[0] === ACK && typeof decoded[1] === 'string') {
          taker = decoded[1];
          return;
        }
        if (!Array.isArray(decoded) || typeof decoded[0] !== 'boolean') return finish(new SnapshotError('TRANSPORT_FAILED', `${what}: the reply was malformed`));
        if (decoded[0]) finish(undefined, decoded[1]);
        else finish(decoded[1] ?? new Error(`${what} failed`)); // what the remote service threw, as it threw it
      });
      send();
    });
  }

  #explain(error: unknown, what: string, ref: RemoteRef): unknown {
    if (isSnapshotError(error) || !(error instanceof Error)) return error;
    const noResponders = isNoResponders(error);
    const timeout = error instanceof TimeoutError || error.cause instanceof TimeoutError;
    if (noResponders) {
      return new SnapshotError(
        'SERVICE_UNAVAILABLE',
        ref.service
          ? `${what}: no replica of service "${ref.service}" is running in app "${this.app}". Start one: snapshot restore <snapshot> --service ${ref.service} --nats <url>.`
          : `${what}: the host that handed out this object is gone (its service stopped or restarted); ask its service for a new one.`,
        { cause: error, details: { service: ref.service, app: this.app } },
      );
    }
    if (timeout) {
      return new SnapshotError('CALL_TIMEOUT', `${what} had no reply within ${this.callTimeoutMs} ms (raise the limit with --call-timeout <ms>).`, {
        cause: error,
        details: { service: ref.service, timeoutMs: this.callTimeoutMs },
      });
    }
    return new SnapshotError('TRANSPORT_FAILED', `${what} failed on the NATS connection: ${error.message}`, { cause: error });
  }

  /**
   * Answer calls for the services restored in this process (queue group per
   * service, so replicas share the load) and for objects this host handed out.
   */
  attach(directory: Directory): void {
    this.#directory = directory;
  }

  async serve(local: ReadonlyMap<string, Membrane>): Promise<void> {
    this.#local = new Map(local);
    for (const [name, membrane] of local) {
      const invoke: Invoke = (target, method, args) => membrane.deliverCall(target, method, args);
      this.#serviceSubscriptions.push(
        this.#nc.subscribe(serviceSubject(this.app, name), {
          queue: subjectToken(name),
          callback: (_e, msg) => {
            // Taken: acknowledged before the call is delivered (the client writes it out in a
            // microtask, before the delivery's turn), so the caller knows the call may run here.
            if (msg.reply) msg.respond(this.#ack);
            this.#answer(msg, invoke);
          },
        }),
      );
    }
    const invokeObject: Invoke = (target, method, args) => {
      if (target === -1) return Promise.resolve(true); // a liveness probe
      const object = this.#objects[target];
      if (object === undefined) throw new SnapshotError('TRANSPORT_FAILED', `no object #${target} on this host`);
      if (method === null) return Promise.resolve((object as (...a: unknown[]) => unknown)(...args));
      const fn = (object as Record<string, unknown>)[method];
      if (typeof fn !== 'function') throw new TypeError(`${method} is not a function`);
      return Promise.resolve((fn as (...a: unknown[]) => unknown).apply(object, args));
    };
    this.#subscriptions.push(this.#nc.subscribe(objectSubject(this.app, this.host), { callback: (_e, msg) => this.#answer(msg, invokeObject) }));
    await this.#nc.flush();
  }

  #answer(msg: Msg, invoke: Invoke): void {
    const run = (async () => {
      let reply: Uint8Array;
      try {
        const decoded = decodeValues(msg.data, this.#refs);
        if (!Array.isArray(decoded) || typeof decoded[0] !== 'number' || (decoded[1] !== null && typeof decoded[1] !== 'string') || !Array.isArray(decoded[2])) {
          throw new SnapshotError('TRANSPORT_FAILED', 'a malformed call arrived over NATS');
        }
        const value = await invoke(decoded[0], decoded[1] as string | null, decoded[2] as unknown[]);
        reply = encodeValues([true, value], this.#refs);
      } catch (error) {
        try {
          reply = encodeValues([false, error], this.#refs);
        } catch {
          reply = packr.pack([false, null]);
        }
      }
      if (msg.reply) msg.respond(reply);
    })();
    this.#inFlight.add(run);
    void run.finally(() => this.#inFlight.delete(run));
  }

  /**
   * Stop: unsubscribe (replicas elsewhere take new calls), finish the calls
   * being answered, reject calls still waiting here with CALL_CANCELLED,
   * then drain and close the connection.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // New calls go to other replicas; this host still answers probes and
    // object calls until the calls it took are answered.
    for (const sub of this.#serviceSubscriptions) sub.unsubscribe();
    await this.#nc.flush().catch(() => {});
    await Promise.allSettled([...this.#inFlight]);
    for (const sub of this.#subscriptions) sub.unsubscribe();
    for (const cancel of this.#pending) cancel(new SnapshotError('CALL_CANCELLED', 'the call was cancelled: this host is shutting down'));
    await this.#nc.drain().catch(() => this.#nc.close());
  }

  /** The underlying connection (for the object store and benchmarks). */
  get connection(): NatsConnection {
    return this.#nc;
  }
}
