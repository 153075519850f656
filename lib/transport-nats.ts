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
import { connect, createInbox, credsAuthenticator, headers as natsHeaders, NoRespondersError, RequestError, TimeoutError, type ConnectionOptions, type MsgHdrs, type NatsConnection, type Msg, type Subscription } from '@nats-io/transport-node';
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import { SnapshotError, isSnapshotError, packr, type Slot, type Wire } from '../replay-log/index.js';
import type { Directory, ExportRef, Membrane, WireAnswer, WireCall, WireSide } from '../membrane/index.js';
import { unreachable, type Transport } from './transport.js';
import { keepFromServices } from '../compartments/reach.js';
import { ACK, decodeCallFor, decodeReply, decodeWireCall, decodeWireReply, encodeCall, encodeReply, encodeWireAnswer, encodeWireCall, RemoteRef, type RefTable, type Reply } from './transport-codec.js';
import { subjectToken } from './subjects.js';

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
  /**
   * The app's message key, 32 bytes (default: the SNAPSHOT_APP_KEY
   * environment variable, base64). With it, every call, reply and
   * acknowledgement carries an HMAC over its subject, reply subject, time and
   * a nonce, and a message without a valid one, older than a minute, or seen
   * before, is dropped: a client of the bus without the key can neither call
   * the app's services, answer in their place, nor send a call again.
   * Messages are authenticated, not encrypted (use TLS for that).
   */
  readonly appKey?: Uint8Array;
}

/** The header that carries a message's authentication: `<ms>.<nonce>.<reply bound: 1|0>.<mac>`. */
const AUTH_HEADER = 'Msnap-Auth';
/** How far a message's time may be from this host's clock, ms. */
const AUTH_WINDOW_MS = 60_000;

/**
 * Signs and checks the app's messages with its key (HMAC-SHA256, 128 bits
 * kept). A nonce is accepted once within the time window (replay cache).
 */
class MessageAuth {
  readonly #key: Buffer;
  /** Nonces seen, in arrival order, with the time they carried. */
  readonly #seen = new Map<string, number>();
  constructor(key: Uint8Array) {
    this.#key = Buffer.from(key);
  }
  #mac(subject: string, reply: string, stamp: string, payload: Uint8Array): string {
    return createHmac('sha256', this.#key).update(`${subject}\n${reply}\n${stamp}\n`).update(payload).digest().subarray(0, 16).toString('base64url');
  }
  /** Headers for a message on `subject`, bound to `reply` when it is known (a request's reply subject is nats.js's own). */
  sign(subject: string, reply: string | undefined, payload: Uint8Array): MsgHdrs {
    const stamp = `${Date.now()}.${randomBytes(12).toString('base64url')}.${reply === undefined ? 0 : 1}`;
    const h = natsHeaders();
    h.set(AUTH_HEADER, `${stamp}.${this.#mac(subject, reply ?? '', stamp, payload)}`);
    return h;
  }
  /** Whether `msg` carries a valid, fresh authentication it did not carry before. */
  verify(msg: Msg): boolean {
    const value = msg.headers?.get(AUTH_HEADER);
    if (!value) return false;
    const parts = value.split('.');
    if (parts.length !== 4) return false;
    const [ms, nonce, bound, mac] = parts;
    const at = Number(ms);
    const now = Date.now();
    if (!Number.isFinite(at) || Math.abs(now - at) > AUTH_WINDOW_MS || (bound !== '0' && bound !== '1')) return false;
    const expected = Buffer.from(this.#mac(msg.subject, bound === '1' ? (msg.reply ?? '') : '', `${ms}.${nonce}.${bound}`, msg.data));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return false;
    if (this.#seen.has(nonce)) return false;
    this.#seen.set(nonce, at);
    // Forget nonces whose time is out of the window (they would be refused by time anyway).
    for (const [old, time] of this.#seen) {
      if (now - time <= 2 * AUTH_WINDOW_MS) break;
      this.#seen.delete(old);
    }
    return true;
  }
}

/** The app key from SNAPSHOT_APP_KEY (base64 of 32 bytes), or undefined. Throws USAGE for a malformed one. */
const appKeyFromEnv = (env: NodeJS.ProcessEnv = process.env): Uint8Array | undefined => {
  const text = env.SNAPSHOT_APP_KEY?.trim();
  if (!text) return undefined;
  const key = Buffer.from(text, 'base64');
  if (key.byteLength !== 32 || key.toString('base64') !== text) {
    throw new SnapshotError('USAGE', `SNAPSHOT_APP_KEY must be 32 bytes in base64 (\`openssl rand -base64 32\`); this one is ${key.byteLength} bytes.`);
  }
  return key;
};

/**
 * Server URLs without their credentials, the same for messages (no
 * password shown), and the credentials as nats.js takes them: user and
 * password or a token from a URL's user info, or the `.creds` file that
 * NATS_CREDS names. Throws TRANSPORT_FAILED when that file cannot be read.
 */
export const natsAuth = (given: string | readonly string[], env: NodeJS.ProcessEnv = process.env): { servers: string[]; shown: string; auth: Partial<ConnectionOptions> } => {
  const auth: Partial<ConnectionOptions> = {};
  // A list may come as one comma-separated string; a server with or without its scheme.
  const list = (typeof given === 'string' ? given.split(',') : [...given]).map(server => server.trim()).filter(server => server !== '');
  const servers = list.map(server => {
    const userInfo = /^((?:[a-z][a-z0-9+.-]*:\/\/)?)([^@/]*)@(.*)$/i.exec(server);
    if (!userInfo) return server;
    const [, scheme, credentials, rest] = userInfo;
    const at = credentials.indexOf(':');
    let user: string;
    let pass: string;
    try {
      user = decodeURIComponent(at < 0 ? credentials : credentials.slice(0, at));
      pass = at < 0 ? '' : decodeURIComponent(credentials.slice(at + 1));
    } catch {
      throw new SnapshotError('USAGE', `the credentials in the NATS URL ${scheme}...@${rest} are not valid URL encoding (escape % as %25).`);
    }
    if (pass !== '') Object.assign(auth, { user, pass });
    else Object.assign(auth, { token: user });
    return `${scheme}${rest}`;
  });
  const credsFile = env.NATS_CREDS;
  if (credsFile) {
    let creds: Uint8Array;
    try {
      creds = fs.readFileSync(credsFile);
      keepFromServices(credsFile);
    } catch (cause) {
      throw new SnapshotError('TRANSPORT_FAILED', `NATS_CREDS names ${credsFile}, which cannot be read: ${(cause as Error).message}.`, { cause });
    }
    auth.authenticator = credsAuthenticator(creds);
  }
  return { servers, shown: servers.join(', '), auth };
};


export const serviceSubject = (app: string, service: string): string => `msnap.${subjectToken(app)}.svc.${subjectToken(service)}`;
export const objectSubject = (app: string, host: string): string => `msnap.${subjectToken(app)}.obj.${subjectToken(host)}`;

type Invoke = (target: number, method: string | null, args: unknown[]) => Promise<unknown>;

/** References to other hosts' objects a host keeps at most (each is a stub its services may hold for good). */
const MAX_STUBS = 100_000;
/** How often waiting calls are checked (deadlines, resends, probes), in ms. */
const TICK_MS = 25;

/** A call sent and waiting for its reply on this host's inbox. */
interface PendingCall {
  /** A "no responders" status came (with an app key, final only once no replica acknowledged after the resends). */
  noResponders?: boolean;
  readonly token: string;
  readonly subject: string;
  readonly payload: Uint8Array;
  /** This host's inbox subject for the reply. */
  readonly reply: string;
  readonly ref: RemoteRef;
  readonly target: number;
  readonly method: string | null;
  /** Decodes the reply (host values, or the calling membrane's wire values). */
  readonly decode: (bytes: Uint8Array) => Reply;
  /** What the remote call returned (`ok`) or threw. */
  readonly answer: (ok: boolean, value: unknown) => void;
  /** The transport failed the call (timeout, interrupted, cancelled...). */
  readonly reject: (error: unknown) => void;
  /** performance.now() past which the call fails with CALL_TIMEOUT. */
  readonly deadline: number;
  sentAt: number;
  probedAt: number;
  /** The host that acknowledged the call (for an object call: the object's host). */
  taker: string | undefined;
  probing: boolean;
  resends: number;
}

/** A call, for messages: `function echo() of service db`. */
const describeCall = (ref: RemoteRef, target: number, method: string | null): string =>
  `${ref.iface || `object #${target}`}${method ? `.${method}()` : '()'}${ref.service ? ` of service ${ref.service}` : ''}`;

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
  /** This host's reply subject prefix, and the calls waiting on it by token. */
  readonly #inbox = createInbox();
  readonly #calls = new Map<string, PendingCall>();
  #nextToken = 1;
  /** One timer for every waiting call (deadlines, probes, resends), running while any waits. */
  #ticker: ReturnType<typeof setInterval> | undefined;
  readonly #inFlight = new Set<Promise<unknown>>();
  #local = new Map<string, Membrane>();
  #directory: Directory | undefined;
  #closed = false;

  /** Signs and checks messages when the app has a key. */
  readonly #auth: MessageAuth | undefined;

  private constructor(nc: NatsConnection, options: NatsTransportOptions) {
    this.#nc = nc;
    this.app = options.app;
    this.callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    const key = options.appKey ?? appKeyFromEnv();
    this.#auth = key && new MessageAuth(key);
    this.#replies = nc.subscribe(`${this.#inbox}.*`, {
      callback: (_error, msg) => {
        const call = this.#calls.get(msg.subject.slice(this.#inbox.length + 1));
        // The server's "no responders" status carries no body and is not the app's to sign.
        const serverStatus = msg.data.length === 0 && msg.headers?.code === 503;
        if (call && (serverStatus || !this.#auth || this.#auth.verify(msg))) this.#onReply(call, msg);
      },
    });
  }

  /** Publish options for a message on `subject`: its reply subject, and its signature when the app has a key. */
  #signed(subject: string, payload: Uint8Array, reply?: string): { reply?: string; headers?: MsgHdrs } {
    return { ...(reply === undefined ? {} : { reply }), ...(this.#auth ? { headers: this.#auth.sign(subject, reply, payload) } : {}) };
  }

  /** Is `msg` the app's (signed with its key, fresh, not seen before)? Always, when the app has no key. */
  #accepted(msg: Msg): boolean {
    return !this.#auth || this.#auth.verify(msg);
  }

  readonly #replies: Subscription;

  /**
   * Connect to NATS. Credentials come from the server URL
   * (`nats://user:password@host:port`, or `nats://token@host:port`) or from
   * the NATS_CREDS environment variable naming a `.creds` file (a user JWT
   * and its nkey seed, as `nsc` writes them). Throws TRANSPORT_FAILED when no
   * server answers or the credentials are refused.
   */
  static async connect(options: NatsTransportOptions): Promise<NatsTransport> {
    let nc: NatsConnection;
    const { servers, shown, auth } = natsAuth(options.servers);
    try {
      nc = await connect({ servers, name: options.name ?? 'membrane-snapshot', maxReconnectAttempts: -1, reconnectTimeWait: 250, ...auth });
    } catch (cause) {
      throw new SnapshotError('TRANSPORT_FAILED', `cannot connect to NATS at ${shown}: ${(cause as Error).message}. Start a server (nats-server -js), or fix --nats and the credentials.`, { cause });
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
    // Every stub is kept (a service may hold it for good): a bound, so that messages cannot grow a host without end.
    if (this.#stubs.size >= MAX_STUBS) {
      throw new SnapshotError('TRANSPORT_FAILED', `this host already holds ${MAX_STUBS} references to objects of other hosts, the most it keeps; refused one more (${ref.iface.slice(0, 40)})`, {
        details: { maxStubs: MAX_STUBS },
      });
    }
    const call: Invoke = (t, method, args) => this.#request(subject, t, method, args, ref);
    // A membrane of this process calls the stub, and each method of it, with the wire values of its service.
    const wireCall =
      (method: string | null): WireCall =>
      (args, side) =>
        this.#requestWire(subject, target, method, args, ref, side);
    const methods = new Map<string, (...args: unknown[]) => Promise<unknown>>();
    const stub = new Proxy(ref.iface.startsWith('function') ? function remote() {} : {}, {
      apply: (_t, _this, args) => call(target, null, args),
      get: (_t, key) => {
        if (key === 'then' || typeof key === 'symbol') return undefined;
        let method = methods.get(key);
        if (!method) {
          methods.set(key, (method = (...args: unknown[]) => call(target, key, args)));
          this.#directory?.registerWireCall(method, wireCall(key));
        }
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
    this.#directory?.registerWireCall(stub, wireCall(null));
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
    let payload: Uint8Array;
    try {
      payload = encodeCall(target, method, args, this.#refs);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) =>
      this.#send(subject, payload, ref, target, method, reject, bytes => decodeReply(bytes, this.#refs), (ok, value) =>
        ok ? resolve(value) : reject(value ?? new Error(`${describeCall(ref, target, method)} failed`)), // what the remote service threw, as it threw it
      ),
    );
  }

  /**
   * The same call with the calling membrane's wire values (`side` names its
   * Slots): no walk into host values and back on this host. Undefined when
   * the arguments cannot go as they are (the membrane then calls the stub).
   */
  #requestWire(subject: string, target: number, method: string | null, args: readonly Wire[], ref: RemoteRef, side: WireSide): Promise<WireAnswer> | undefined {
    let payload: Uint8Array | undefined;
    try {
      payload = encodeWireCall(target, method, args, slot => this.#refs.toRef(side.hostObjectOf(slot) as object));
    } catch (error) {
      return Promise.reject(error);
    }
    if (payload === undefined) return undefined;
    const sent = payload;
    const toSlot = (remote: RemoteRef): Slot => side.hostSlot(this.#refs.fromRef(remote));
    return new Promise((resolve, reject) =>
      this.#send(subject, sent, ref, target, method, reject, bytes => decodeWireReply(bytes, toSlot), (ok, value) => resolve({ ok, value: value as Wire })),
    );
  }

  #send(
    subject: string,
    payload: Uint8Array,
    ref: RemoteRef,
    target: number,
    method: string | null,
    reject: (error: unknown) => void,
    decode: (bytes: Uint8Array) => Reply,
    answer: (ok: boolean, value: unknown) => void,
  ): void {
    if (this.#closed) return reject(new SnapshotError('CALL_CANCELLED', `${describeCall(ref, target, method)} was not sent: this host is shutting down`));
    const token = String(this.#nextToken++);
    const now = performance.now();
    const call: PendingCall = {
      token,
      subject,
      payload,
      reply: `${this.#inbox}.${token}`,
      ref,
      target,
      method,
      decode,
      answer,
      reject,
      deadline: now + this.callTimeoutMs,
      sentAt: now,
      probedAt: now,
      taker: ref.service ? undefined : ref.host,
      probing: false,
      resends: 0,
    };
    this.#calls.set(token, call);
    if (this.#ticker === undefined) {
      this.#ticker = setInterval(this.#tick, TICK_MS);
      this.#ticker.unref();
    }
    const refused = this.#oversize(payload.byteLength, 'the call');
    if (refused) {
      this.#calls.delete(token);
      return reject(refused);
    }
    try {
      this.#nc.publish(subject, payload, this.#signed(subject, payload, call.reply));
    } catch (cause) {
      this.#calls.delete(token);
      reject(new SnapshotError('TRANSPORT_FAILED', `${describeCall(ref, target, method)} could not be sent: ${(cause as Error).message}`, { cause }));
    }
  }

  /** TRANSPORT_FAILED when a message of `bytes` is over the NATS server's max_payload (it would be refused). */
  #oversize(bytes: number, what: string): SnapshotError | undefined {
    const max = this.#nc.info?.max_payload;
    if (max === undefined || bytes <= max) return undefined;
    return new SnapshotError(
      'TRANSPORT_FAILED',
      `${what} is ${bytes} bytes, over the NATS server's max_payload of ${max}: pass less in one call (a cursor, pages), or raise max_payload on the server.`,
      { details: { bytes, maxPayload: max } },
    );
  }

  /** Reply to a call: a reply over max_payload, or one the connection refuses, becomes a TRANSPORT_FAILED reply. */
  #respond(msg: Msg, reply: Uint8Array): void {
    if (!msg.reply) return;
    const refused = this.#oversize(reply.byteLength, 'the reply');
    try {
      const data = refused ? this.#failureReply(refused) : reply;
      msg.respond(data, this.#signed(msg.reply, data));
    } catch (cause) {
      try {
        const data = this.#failureReply(new SnapshotError('TRANSPORT_FAILED', `the reply could not be sent: ${(cause as Error).message}`));
        msg.respond(data, this.#signed(msg.reply, data));
      } catch {
        // the connection is gone: the caller's own deadline answers it
      }
    }
  }

  /** A call ends: with the transport's `error`, or with what the remote call returned or threw. */
  #finish(call: PendingCall, error: unknown, answer?: { ok: boolean; value: unknown }): void {
    if (!this.#calls.delete(call.token)) return;
    if (answer) call.answer(answer.ok, answer.value);
    else call.reject(error);
  }

  #onReply(call: PendingCall, msg: Msg): void {
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      // The server's "no responders". Any client can publish such a status to a reply subject it saw,
      // so with an app key it only counts once no replica acknowledged the call after its resends.
      if (!this.#auth) return this.#finish(call, this.#explain(new NoRespondersError(call.subject), call));
      call.noResponders = true;
      return;
    }
    let reply: Reply;
    try {
      reply = call.decode(msg.data);
    } catch (error) {
      return this.#finish(call, error);
    }
    if ('ack' in reply) {
      call.taker = reply.ack;
      return;
    }
    this.#finish(call, undefined, reply);
  }

  /** Every TICK_MS while calls wait: time out, resend what no replica took, probe the hosts that took the others. */
  readonly #tick = (): void => {
    if (this.#calls.size === 0) {
      // Stopped once idle for a whole tick, not after each call: a call costs no timer of its own.
      clearInterval(this.#ticker);
      this.#ticker = undefined;
      return;
    }
    const now = performance.now();
    for (const call of this.#calls.values()) {
      if (now >= call.deadline) {
        this.#finish(call, this.#explain(new TimeoutError(), call));
        continue;
      }
      if (call.taker === undefined) {
        if (call.ref.service && now - call.sentAt > ACK_WAIT_MS && call.resends < MAX_RESENDS) {
          call.resends += 1; // nobody took it: the replica it went to died before reading it
          call.sentAt = now;
          try {
            this.#nc.publish(call.subject, call.payload, this.#signed(call.subject, call.payload, call.reply));
          } catch (cause) {
            this.#finish(call, new SnapshotError('TRANSPORT_FAILED', `${describeCall(call.ref, call.target, call.method)} could not be sent again: ${(cause as Error).message}`, { cause }));
          }
        } else if (call.noResponders && now - call.sentAt > ACK_WAIT_MS) {
          this.#finish(call, this.#explain(new NoRespondersError(call.subject), call));
        }
        continue;
      }
      if (call.probing || now - call.probedAt < PROBE_MS) continue;
      this.#probe(call, call.taker);
    }
  };

  /** Is the host that took `call` still on the bus? If it left (died), the call fails: it may have run there. */
  #probe(call: PendingCall, host: string): void {
    call.probing = true;
    const subject = objectSubject(this.app, host);
    this.#nc.request(subject, PING, { timeout: PROBE_MS * 4, ...this.#signed(subject, PING) }).then(
      () => {
        call.probing = false;
        call.probedAt = performance.now();
      },
      (error: unknown) => {
        call.probing = false;
        call.probedAt = performance.now();
        if (!isNoResponders(error) || call.taker !== host) return;
        if (!call.ref.service) return this.#finish(call, this.#explain(error, call));
        // The replica that took the call is gone, and the call may have run there: not run again.
        this.#finish(
          call,
          new SnapshotError(
            'CALL_INTERRUPTED',
            `${describeCall(call.ref, call.target, call.method)}: the replica that took the call (host ${host.slice(0, 8)}) stopped before answering; the call may have run there in part or in whole, and was not run again. Retry it if it is safe to run twice.`,
            { cause: error, details: { service: call.ref.service, app: this.app, host } },
          ),
        );
      },
    );
  }

  #explain(error: unknown, call: PendingCall): unknown {
    if (isSnapshotError(error) || !(error instanceof Error)) return error;
    const { ref } = call;
    const what = describeCall(ref, call.target, call.method);
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
      // Service calls go straight from the message to the membrane's wire values and back (transport-codec.ts).
      const toSlot = (ref: RemoteRef): Slot => membrane.hostSlot(this.#refs.fromRef(ref));
      const toRef = (slot: Slot): RemoteRef => {
        const object = membrane.hostObjectOf(slot);
        return this.#refs.toRef(object as object);
      };
      this.#serviceSubscriptions.push(
        this.#nc.subscribe(serviceSubject(this.app, name), {
          queue: subjectToken(name),
          callback: (_e, msg) => {
            // Taken: acknowledged before the call is delivered (the client writes it out in a
            // microtask, before the delivery's turn), so the caller knows the call may run here.
            if (!this.#accepted(msg)) return; // not the app's: no acknowledgement, no call
            if (msg.reply) msg.respond(this.#ack, this.#signed(msg.reply, this.#ack));
            this.#track(this.#answerWire(msg, membrane, toSlot, toRef));
          },
        }),
      );
    }
    this.#subscriptions.push(
      this.#nc.subscribe(objectSubject(this.app, this.host), {
        callback: (_e, msg) => {
          if (this.#accepted(msg)) this.#track(this.#answerObject(msg));
        },
      }),
    );
    await this.#nc.flush();
  }

  /**
   * The service of this process whose export `object` is (its membrane and
   * export id): calls on it then go in and out as wire values.
   */
  #exportOf(object: object | undefined): { membrane: Membrane; id: number } | undefined {
    const origin = this.#directory?.originOf(object);
    const membrane = origin && this.#local.get(origin.service);
    return membrane && membrane.exportProxy(origin.export) === object ? { membrane, id: origin.export } : undefined;
  }

  /**
   * Answer a call on an object this host handed out: a service's object
   * (a cursor) as wire values, through its membrane; anything else (a
   * liveness probe, a stub handed on) with host values.
   */
  async #answerObject(msg: Msg): Promise<void> {
    let reply: Uint8Array;
    try {
      let local: { membrane: Membrane; id: number } | undefined;
      const call = decodeCallFor(msg.data, this.#refs, target => {
        local = target >= 0 ? this.#exportOf(this.#objects[target]) : undefined;
        const membrane = local?.membrane;
        return membrane && ((ref: RemoteRef) => membrane.hostSlot(this.#refs.fromRef(ref)));
      });
      if (local && call.wire) {
        const { membrane } = local;
        const answer = await membrane.deliverWireCall(local.id, call.method, call.args);
        reply = encodeWireAnswer(answer.ok, answer.value, slot => this.#refs.toRef(membrane.hostObjectOf(slot) as object));
      } else {
        reply = encodeReply(true, await this.#invokeObject(call.target, call.method, call.args), this.#refs);
      }
    } catch (error) {
      reply = this.#failureReply(error);
    }
    this.#respond(msg, reply);
  }

  #invokeObject(target: number, method: string | null, args: unknown[]): Promise<unknown> {
    if (target === -1) return Promise.resolve(true); // a liveness probe
    const object = this.#objects[target];
    if (object === undefined) throw new SnapshotError('TRANSPORT_FAILED', `no object #${target} on this host`);
    if (method === null) return Promise.resolve((object as (...a: unknown[]) => unknown)(...args));
    const fn = (object as Record<string, unknown>)[method];
    if (typeof fn !== 'function') throw new TypeError(`${method} is not a function`);
    return Promise.resolve((fn as (...a: unknown[]) => unknown).apply(object, args));
  }

  /** Answer a call on a service's export: wire values in, the membrane's wire answer out. */
  async #answerWire(msg: Msg, membrane: Membrane, toSlot: (ref: RemoteRef) => Slot, toRef: (slot: Slot) => RemoteRef): Promise<void> {
    let reply: Uint8Array;
    try {
      const call = decodeWireCall(msg.data, toSlot);
      const answer = await membrane.deliverWireCall(call.target, call.method, call.args);
      reply = encodeWireAnswer(answer.ok, answer.value, toRef);
    } catch (error) {
      reply = this.#failureReply(error);
    }
    this.#respond(msg, reply);
  }

  #failureReply(error: unknown): Uint8Array {
    try {
      return encodeReply(false, error, this.#refs);
    } catch {
      return packr.pack([false, null]);
    }
  }

  /** Calls being answered: close() waits for them. */
  #track(run: Promise<void>): void {
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
    for (const call of [...this.#calls.values()]) this.#finish(call, new SnapshotError('CALL_CANCELLED', `${describeCall(call.ref, call.target, call.method)} was cancelled: this host is shutting down`));
    await this.#nc.drain().catch(() => this.#nc.close());
  }

  /** The underlying connection (for the object store and benchmarks). */
  get connection(): NatsConnection {
    return this.#nc;
  }
}
