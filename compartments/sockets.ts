/**
 * The builtin modules that reach sockets: `net`, `tls`, `dns` and `http2`.
 * A service never holds a host socket (nothing on it could be recorded at
 * the request level, and it would lead back to the host's event loop), so
 * each of these offers its pure helpers and constants, and refuses what
 * would open a socket, listen or resolve a name with a DETERMINISM_VIOLATION
 * that says what to use instead (`fetch`, `http.request`,
 * `runtime.declare({ http })`). HTTP clients import them for helpers
 * (`net.isIP`, `tls.checkServerIdentity`, `http2.constants`) and for options
 * a service does not use (got's `http2: true`, `dnsCache`).
 *
 * | module  | offered                                           | refused                                   |
 * | ------- | ------------------------------------------------- | ----------------------------------------- |
 * | `net`   | isIP, isIPv4, isIPv6                              | Socket, Server, connect, createConnection, createServer |
 * | `tls`   | checkServerIdentity                               | connect, createServer, createSecureContext, TLSSocket, Server |
 * | `dns`   | the lookup flag constants; getDefaultResultOrder (recorded) | lookup, resolve*, Resolver, promises.* |
 * | `http2` | constants, sensitiveHeaders                       | connect, createServer, createSecureServer, Http2ServerRequest/Response |
 */
import { createRequire } from 'node:module';
import type { Membrane } from '../membrane/index.js';
import { refusedConstructor } from './errors.js';

// The host modules are loaded when a service first imports one of these (Node loads tls, http2
// and dns with them, which costs a restore that never uses them more than its endowments).
const hostRequire = createRequire(import.meta.url);
const hostModules = () => ({
  hostNet: hostRequire('node:net') as typeof import('node:net'),
  hostTls: hostRequire('node:tls') as typeof import('node:tls'),
  hostDns: hostRequire('node:dns') as typeof import('node:dns'),
  hostHttp2: hostRequire('node:http2') as typeof import('node:http2'),
});

const NO_SOCKETS = 'a service does not hold host sockets (they could not be recorded nor replayed)';
const USE_HTTP = 'Use fetch or http.request (recorded at the request level) instead.';
const USE_RUNTIME = 'Export fetch(request) and call runtime.declare({ http: { port } }) to serve HTTP instead.';
const NO_DNS = 'a service does not resolve names itself (fetch and http.request resolve them on the host)';

/** A function that refuses, named `module.name` in its error. */
const refused = (name: string, why: string, instead: string) => refusedConstructor(name, why, instead);

let hardened = false;
const hardenHelpers = (): void => {
  if (hardened) return;
  hardened = true;
  const { hostNet, hostTls } = hostModules();
  for (const fn of [hostNet.isIP, hostNet.isIPv4, hostNet.isIPv6, hostTls.checkServerIdentity]) harden(fn);
};

/** `net`, `tls`, `dns` and `http2` for one service. */
export const makeSocketModules = (membrane: Membrane): Record<'net' | 'tls' | 'dns' | 'http2', Record<string, unknown>> => {
  hardenHelpers();
  const { hostNet, hostTls, hostDns, hostHttp2 } = hostModules();
  const net = {
    isIP: hostNet.isIP,
    isIPv4: hostNet.isIPv4,
    isIPv6: hostNet.isIPv6,
    Socket: refused('net.Socket', NO_SOCKETS, USE_HTTP),
    Stream: refused('net.Stream', NO_SOCKETS, USE_HTTP),
    Server: refused('net.Server', NO_SOCKETS, USE_RUNTIME),
    connect: refused('net.connect', NO_SOCKETS, USE_HTTP),
    createConnection: refused('net.createConnection', NO_SOCKETS, USE_HTTP),
    createServer: refused('net.createServer', NO_SOCKETS, USE_RUNTIME),
  };
  const tls = {
    checkServerIdentity: hostTls.checkServerIdentity,
    connect: refused('tls.connect', NO_SOCKETS, USE_HTTP),
    createSecureContext: refused('tls.createSecureContext', NO_SOCKETS, USE_HTTP),
    TLSSocket: refused('tls.TLSSocket', NO_SOCKETS, USE_HTTP),
    Server: refused('tls.Server', NO_SOCKETS, USE_RUNTIME),
    createServer: refused('tls.createServer', NO_SOCKETS, USE_RUNTIME),
  };
  const dnsRefused = (name: string) => refused(`dns.${name}`, NO_DNS, USE_HTTP);
  // Every resolver the host's dns has: Node 22.15 and 23.9 added resolveTlsa (lib/dns.js), later lines may add others.
  const resolvers = Object.keys(hostDns).filter(name => typeof (hostDns as unknown as Record<string, unknown>)[name] === 'function' && /^(lookup|lookupService|resolve[A-Za-z0-9]*|reverse)$/.test(name));
  // Host configuration (--dns-result-order, /etc/resolv.conf): recorded.
  const getDefaultResultOrder = () => membrane.syscall('dns.getDefaultResultOrder', [], () => hostDns.getDefaultResultOrder());
  const getServers = () => membrane.syscall('dns.getServers', [], () => hostDns.getServers());
  // The error codes (dns.NOTFOUND is 'ENOTFOUND'...), on both modules as in Node: code compares an error's code with them.
  const errorCodes = Object.fromEntries(Object.entries(hostDns).filter(([key, value]) => /^[A-Z0-9_]+$/.test(key) && typeof value === 'string'));
  const dnsPromises: Record<string, unknown> = {
    ...errorCodes,
    getDefaultResultOrder,
    getServers,
    setDefaultResultOrder: dnsRefused('promises.setDefaultResultOrder'),
    setServers: dnsRefused('promises.setServers'),
    Resolver: dnsRefused('promises.Resolver'),
  };
  for (const name of resolvers) dnsPromises[name] = dnsRefused(`promises.${name}`);
  const dns: Record<string, unknown> = {
    ADDRCONFIG: hostDns.ADDRCONFIG,
    V4MAPPED: hostDns.V4MAPPED,
    ALL: hostDns.ALL,
    ...errorCodes,
    getDefaultResultOrder,
    getServers,
    setDefaultResultOrder: dnsRefused('setDefaultResultOrder'),
    setServers: dnsRefused('setServers'),
    Resolver: dnsRefused('Resolver'),
    promises: dnsPromises,
  };
  for (const name of resolvers) dns[name] = dnsRefused(name);
  const http2 = {
    constants: { ...hostHttp2.constants },
    sensitiveHeaders: hostHttp2.sensitiveHeaders,
    connect: refused('http2.connect', NO_SOCKETS, USE_HTTP),
    createServer: refused('http2.createServer', NO_SOCKETS, USE_RUNTIME),
    createSecureServer: refused('http2.createSecureServer', NO_SOCKETS, USE_RUNTIME),
    Http2ServerRequest: refused('http2.Http2ServerRequest', NO_SOCKETS, USE_RUNTIME),
    Http2ServerResponse: refused('http2.Http2ServerResponse', NO_SOCKETS, USE_RUNTIME),
    getDefaultSettings: () => ({ ...hostHttp2.getDefaultSettings() }),
  };
  // Each service's own module objects (as writable as Node's); the host functions in them are hardened.
  return { net, tls, dns, http2 };
};
