/**
 * The shape of a whole manifest, checked before anything reads it: a
 * snapshot directory is untrusted input on a production host, and what the
 * manifest says becomes paths, ports, container names, subjects, terminal
 * output and memory sizes. A field of the wrong type or out of bounds is a
 * SNAPSHOT_INVALID that names the field and the value (escaped: nothing of
 * it reaches a terminal or a deploy file raw), never a TypeError deep in
 * restore, or a surprise in `snapshot plan`'s compose file.
 *
 * What is checked, beyond types:
 * - names: services as `importService` accepts them (SERVICE_NAME), the app
 *   as `--app` does (APP_NAME); every service a record refers to (parent,
 *   references) is in the manifest;
 * - paths: a service's archive and log are exactly `<name>/archive.zip` and
 *   `<name>/replay.log`, as the build writes them; `entry` and `entryRoot`
 *   are file URLs;
 * - text: no control or bidirectional-override characters, bounded length;
 * - numbers: sizes no larger than a file Node can read, events no more than
 *   the log's bytes (each takes at least one), pending timers no more than
 *   events, ports and replicas as `runtime.declare()` takes them, no two
 *   services on one port;
 * - the manifest itself: at most MAX_MANIFEST_BYTES, and at least one service
 *   (a build never seals none).
 *
 * Fields this module does not know are left alone (later versions and other
 * tools may add them).
 */
import { constants as bufferConstants } from 'node:buffer';
import { fileURLToPath } from 'node:url';
import { SnapshotError } from '../replay-log/index.js';
import { MAX_REPLICAS, isPort, isReplicaCount } from '../compartments/runtime-limits.js';

const { isArray } = Array;
const { isSafeInteger } = Number;

/** A service name: it names a directory of the snapshot, a NATS subject token and containers. */
export const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const isServiceName = (value: unknown): value is string => typeof value === 'string' && SERVICE_NAME.test(value);

/** An app name: it names NATS subjects and the object store bucket. */
export const APP_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** The largest manifest read (a real one is a few KiB per service). */
export const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

const MAX_SERVICES = 1024;
const MAX_TEXT = 4096;
const MAX_LIST = 100_000;
/** The largest archive or log a manifest may declare: Node 20's largest Buffer (4 GiB), on every Node line (Node 22's V8 allows 2^53 - 1, which let a manifest declare a petabyte). */
const MAX_FILE_BYTES = Math.min(bufferConstants.MAX_LENGTH, 2 ** 32);

/** Control characters (C0, DEL, C1) and bidirectional overrides: never in a name, path or version. */
const unsafeCharacters = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

type Check = (value: unknown) => boolean;

const record = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !isArray(v);
const text: Check = v => typeof v === 'string' && v.length <= MAX_TEXT && !unsafeCharacters.test(v);
const texts: Check = v => isArray(v) && v.length <= MAX_LIST && v.every(text);
const optionalTexts: Check = v => v === undefined || texts(v);
const count: Check = v => typeof v === 'number' && isSafeInteger(v) && v >= 0;
const fileSize: Check = v => count(v) && (v as number) <= MAX_FILE_BYTES;
const duration: Check = v => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 1e12;
const hex64: Check = v => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
const fileUrl: Check = v => {
  if (!text(v) || !(v as string).startsWith('file:///')) return false;
  try {
    fileURLToPath(v as string);
    return true;
  } catch {
    return false;
  }
};
const grants: Check = v =>
  record(v) && Object.keys(v).length <= MAX_LIST && Object.entries(v).every(([name, g]) => text(name) && name.length <= 214 && record(g) && texts(g.functions) && texts(g.values));
const packageRoots: Check = v =>
  v === undefined || (record(v) && Object.keys(v).length <= MAX_LIST && Object.entries(v).every(([name, root]) => text(name) && name.length <= 300 && fileUrl(root) && (root as string).endsWith('/')));
const absolutePaths: Check = v => v === undefined || (texts(v) && (v as string[]).every(p => p.startsWith('/')));
const secrets: Check = v => record(v) && texts(v.env) && texts(v.headers) && texts(v.hosts) && absolutePaths(v.files) && optionalTexts(v.fileNames);
const reach: Check = v =>
  record(v) && Object.keys(v).every(k => k === 'fetch' || k === 'read' || k === 'write') && optionalTexts(v.fetch) && absolutePaths(v.read) && absolutePaths(v.write);
const isoDate: Check = v => text(v) && (v as string).length <= 64 && !Number.isNaN(Date.parse(v as string));
/** A library version as the manifest names its writer: "0.1.0", "1.2.3-beta.1". */
export const isLibraryVersion = (v: unknown): v is string => typeof v === 'string' && /^[0-9A-Za-z.+-]{1,64}$/.test(v);

/** A value as a message shows it: JSON, escaped, at most 80 characters, with its kind when that is the point. */
export const shown = (value: unknown): string => {
  let json: string;
  try {
    json = JSON.stringify(value) ?? String(value);
  } catch {
    json = String(value);
  }
  json = json.replace(/[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return json.length > 80 ? `${json.slice(0, 77)}...` : json;
};

/** What kind of JSON value this is, for messages: "a string", "a list", "null"... */
export const kind = (value: unknown): string =>
  value === null ? 'null' : isArray(value) ? 'a list' : typeof value === 'object' ? 'an object' : typeof value === 'string' ? 'a string' : typeof value === 'number' ? 'a number' : `a ${typeof value}`;

const advice = 'The manifest was damaged or edited: copy the snapshot again, or rebuild it.';

/** SNAPSHOT_INVALID for `field` of the manifest (of `service` when given). */
const invalid = (file: string, field: string, value: unknown, what: string, service?: string): SnapshotError =>
  new SnapshotError(
    'SNAPSHOT_INVALID',
    `${file}: ${service === undefined ? '' : `service ${shown(service)}: `}"${field}" is ${value === undefined ? 'missing' : `${shown(value)} (${kind(value)})`}; it must be ${what}. ${advice}`,
    { details: { file, field, ...(service === undefined ? {} : { service }) } },
  );

const fields: ReadonlyArray<[name: string, check: Check, what: string, optional?: boolean]> = [
  ['entry', fileUrl, 'the file URL of the entry module'],
  ['entryRoot', fileUrl, 'the file URL of the entry package'],
  ['packageRoots', packageRoots, "a record of compartment names to the file URLs (ending in '/') of their packages", true],
  ['archiveSha256', hex64, 'a sha256 in hex'],
  ['archiveBytes', fileSize, `a byte count up to ${MAX_FILE_BYTES}`],
  ['logSha256', hex64, 'a sha256 in hex'],
  ['logBytes', fileSize, `a byte count up to ${MAX_FILE_BYTES}`],
  ['events', count, 'an event count'],
  ['granted', grants, 'a record of module names to { functions, values } lists of names'],
  ['references', v => isArray(v) && v.length <= MAX_LIST, 'a list of { import, service, export, iface }'],
  ['pendingTimers', count, 'a count'],
  ['buildMs', duration, 'a duration in ms'],
  ['reach', reach, 'a record { fetch, read, write } of lists (read and write of absolute paths)', true],
  ['secrets', secrets, 'a record of env, headers, hosts (and files, absolute paths, and fileNames) lists', true],
  ['sealedValues', count, 'a count', true],
  ['keyedFingerprints', count, 'a count', true],
];

/** The runtime declaration of a service record, as `runtime.declare()` takes it plus the export id of its HTTP adapter. */
const checkRuntime = (file: string, name: string, runtime: unknown): void => {
  if (!record(runtime)) throw invalid(file, 'runtime', runtime, 'a record { http, replicas, httpAdapter }', name);
  for (const key of Object.keys(runtime)) {
    if (key !== 'http' && key !== 'replicas' && key !== 'httpAdapter') throw invalid(file, `runtime.${key}`, runtime[key], 'absent: the runtime fields are http, replicas and httpAdapter', name);
  }
  if (runtime.http !== undefined) {
    const http = runtime.http;
    if (!record(http)) throw invalid(file, 'runtime.http', http, 'a record { port }', name);
    for (const key of Object.keys(http)) if (key !== 'port') throw invalid(file, `runtime.http.${key}`, http[key], 'absent: http has only a port', name);
    if (!isPort(http.port)) throw invalid(file, 'runtime.http.port', http.port, 'an integer TCP port from 1 to 65535', name);
    if (!count(runtime.httpAdapter)) throw invalid(file, 'runtime.httpAdapter', runtime.httpAdapter, 'the export id of the HTTP adapter (a count), with http', name);
  } else if (runtime.httpAdapter !== undefined) {
    throw invalid(file, 'runtime.httpAdapter', runtime.httpAdapter, 'absent without http', name);
  }
  if (runtime.replicas !== undefined && !isReplicaCount(runtime.replicas)) throw invalid(file, 'runtime.replicas', runtime.replicas, `an integer from 1 to ${MAX_REPLICAS}`, name);
};

/** Check one service record (`key` is its name in `services`, `names` every service's). Throws SNAPSHOT_INVALID. */
const checkService = (file: string, key: string, service: unknown, names: ReadonlySet<string>): void => {
  if (!isServiceName(key)) {
    throw new SnapshotError(
      'SNAPSHOT_INVALID',
      `${file}: ${shown(key)} is not a valid service name: 1 to 128 letters, digits, ".", "_" and "-", starting with a letter or digit. ${advice}`,
      { details: { file, field: 'services', service: shown(key) } },
    );
  }
  if (!record(service)) throw invalid(file, key, service, 'a service record', undefined);
  if (service.name !== key) throw invalid(file, 'name', service.name, `the service's name, ${shown(key)}`, key);
  for (const [name, check, what, optional] of fields) {
    if (optional && service[name] === undefined) continue;
    if (!check(service[name])) throw invalid(file, name, service[name], what, key);
  }
  if (service.archive !== `${key}/archive.zip`) throw invalid(file, 'archive', service.archive, `"${key}/archive.zip"`, key);
  if (service.log !== `${key}/replay.log`) throw invalid(file, 'log', service.log, `"${key}/replay.log"`, key);
  const events = service.events as number;
  if (events > (service.logBytes as number)) throw invalid(file, 'events', events, `at most the log's ${service.logBytes as number} bytes (each event takes at least one)`, key);
  if ((service.pendingTimers as number) > events) throw invalid(file, 'pendingTimers', service.pendingTimers, `at most the ${events} events (each timer was set by one)`, key);
  if (service.sealedValues !== undefined && (service.sealedValues as number) > events) throw invalid(file, 'sealedValues', service.sealedValues, `at most the ${events} events`, key);
  if (service.parent !== undefined && !(isServiceName(service.parent) && service.parent !== key && names.has(service.parent))) {
    throw invalid(file, 'parent', service.parent, 'the name of another service of this manifest', key);
  }
  for (const reference of service.references as unknown[]) {
    const ok =
      record(reference) &&
      count(reference.import) &&
      count(reference.export) &&
      isServiceName(reference.service) &&
      names.has(reference.service) &&
      (reference.iface === undefined || text(reference.iface));
    if (!ok) throw invalid(file, 'references', reference, 'a list of { import, service, export, iface } naming services of this manifest', key);
  }
  if (service.runtime !== undefined) checkRuntime(file, key, service.runtime);
};

/**
 * Check a parsed manifest whole, after its format and version (see
 * manifest.ts). Throws SNAPSHOT_INVALID naming the field, the service and
 * what the field must be.
 */
export const checkManifest = (file: string, manifest: Record<string, unknown>): void => {
  if (!isLibraryVersion(manifest.libraryVersion)) throw invalid(file, 'libraryVersion', manifest.libraryVersion, 'a version such as "0.1.0"');
  if (!isoDate(manifest.createdAt)) throw invalid(file, 'createdAt', manifest.createdAt, 'a date such as "2026-11-30T08:00:00.000Z"');
  if (manifest.node !== undefined && !(typeof manifest.node === 'string' && /^v\d{1,4}\.\d{1,6}\.\d{1,6}$/.test(manifest.node))) {
    throw invalid(file, 'node', manifest.node, 'a Node version such as "v20.20.2"');
  }
  if (manifest.app !== undefined && !(typeof manifest.app === 'string' && APP_NAME.test(manifest.app))) {
    throw invalid(file, 'app', manifest.app, '1 to 64 letters, digits, "-" and "_"');
  }
  if (manifest.seal !== undefined) {
    const seal = manifest.seal;
    if (!(record(seal) && seal.cipher === 'aes-256-gcm-siv-hmac' && typeof seal.keyId === 'string' && /^hmac-sha256:[0-9a-f]{32}$/.test(seal.keyId))) {
      throw invalid(file, 'seal', seal, 'a record { cipher: "aes-256-gcm-siv-hmac", keyId: "hmac-sha256:<32 hex>" }');
    }
  }
  const services = manifest.services;
  if (!record(services)) throw invalid(file, 'services', services, 'a record of services by name');
  const names = new Set(Object.keys(services));
  if (names.size === 0) {
    throw new SnapshotError(
      'SNAPSHOT_INVALID',
      `${file} lists no services: there is nothing to restore, verify or inspect. A build always seals at least one service. ${advice}`,
      { details: { file, field: 'services' } },
    );
  }
  if (names.size > MAX_SERVICES) throw invalid(file, 'services', `${names.size} services`, `at most ${MAX_SERVICES} services`);
  for (const [key, service] of Object.entries(services)) checkService(file, key, service, names);
  // Sealed values and keyed fingerprints exist only under a seal key, which the manifest then names: counts
  // without it were edited in (found by the final review: the restore asked for a key that never existed).
  if (manifest.seal === undefined) {
    for (const [key, service] of Object.entries(services)) {
      const { sealedValues = 0, keyedFingerprints = 0 } = service as { sealedValues?: number; keyedFingerprints?: number };
      if (sealedValues > 0 || keyedFingerprints > 0) throw invalid(file, 'seal', undefined, `a seal record: service ${shown(key)} counts sealed values or keyed fingerprints, which only a build with a seal key makes`);
    }
  }
  const ports = new Map<number, string>();
  for (const [name, service] of Object.entries(services)) {
    const port = ((service as { runtime?: { http?: { port?: number } } }).runtime?.http?.port);
    if (port === undefined) continue;
    const other = ports.get(port);
    if (other !== undefined) {
      throw new SnapshotError('SNAPSHOT_INVALID', `${file}: services ${shown(other)} and ${shown(name)} both declare http port ${port}; a build refuses that. ${advice}`, {
        details: { file, field: 'runtime.http.port', services: [other, name] },
      });
    }
    ports.set(port, name);
  }
};
