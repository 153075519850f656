/**
 * The bounds of a runtime declaration, shared by the check inside a service
 * (runtime.ts) and the check of a manifest on read (lib/manifest-shape.ts).
 * It imports only the library's error class, so reading a manifest, and
 * the side-effect-free `membrane-snapshot/runtime` entry, need no lockdown.
 */
import { SnapshotError } from '../replay-log/errors.js';

/** What a service may declare. Every field is optional; nothing else is accepted. */
export interface RuntimeDeclaration {
  /** Serve the service's `fetch(request)` handler over HTTP on this TCP port (1..65535). */
  readonly http?: { readonly port: number };
  /** How many copies run at once behind one queue group (1..64; default 1). */
  readonly replicas?: number;
}

/** The most replicas a service may declare. */
export const MAX_REPLICAS = 64;

/** A TCP port a service may declare for HTTP: an integer from 1 to 65535. */
export const isPort = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535;

/** A replica count a service may declare: an integer from 1 to MAX_REPLICAS. */
export const isReplicaCount = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_REPLICAS;

/** A value as a message shows it: JSON when it can, else String(). Never throws. */
export const describeValue = (value: unknown): string => {
  try {
    return typeof value === 'string' ? JSON.stringify(value) : typeof value === 'object' && value !== null ? JSON.stringify(value) ?? String(value) : String(value);
  } catch {
    return String(value);
  }
};

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null);

/**
 * Check a runtime declaration and return a frozen copy holding only known
 * fields. Throws DECLARATION_INVALID (passed through `raise`, which may
 * mark it) saying which field is wrong and what it takes.
 */
export const checkDeclaration = (value: unknown, raise: (error: SnapshotError) => SnapshotError = error => error): RuntimeDeclaration => {
  const invalid = (message: string, got: unknown): SnapshotError =>
    raise(new SnapshotError('DECLARATION_INVALID', `runtime.declare(): ${message} (got ${describeValue(got)}). Example: runtime.declare({ http: { port: 8080 }, replicas: 2 })`));
  if (!isRecord(value)) throw invalid('takes one plain object', value);
  for (const key of Object.keys(value)) {
    if (key !== 'http' && key !== 'replicas') throw invalid(`unknown field "${key}"; known fields: http, replicas`, value);
  }
  const out: { http?: { port: number }; replicas?: number } = {};
  if (value.http !== undefined) {
    const http = value.http;
    if (!isRecord(http)) throw invalid('http takes an object { port }', http);
    for (const key of Object.keys(http)) if (key !== 'port') throw invalid(`unknown field "http.${key}"; http takes { port }`, http);
    const port = http.port;
    // 0 (any free port) is chosen where the service runs: `snapshot restore --port <service>=0`.
    if (!isPort(port)) throw invalid(`http.port takes an integer TCP port from 1 to 65535${port === 0 ? '; for any free port, declare one and restore with --port <service>=0' : ''}`, port);
    out.http = Object.freeze({ port });
  }
  if (value.replicas !== undefined) {
    const replicas = value.replicas;
    if (!isReplicaCount(replicas)) throw invalid(`replicas takes an integer from 1 to ${MAX_REPLICAS}`, replicas);
    out.replicas = replicas;
  }
  return Object.freeze(out);
};
