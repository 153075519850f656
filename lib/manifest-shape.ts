/**
 * The shape of a manifest's service records, checked before anything reads
 * them: a snapshot directory is untrusted input, and a field of the wrong
 * type must be a SNAPSHOT_INVALID that names it, not a TypeError deep in
 * restore or inspect. Fields this module does not know are left alone
 * (later versions and other tools may add them).
 */
import { SnapshotError } from '../replay-log/index.js';

const { isArray } = Array;
const { isSafeInteger } = Number;

type Check = (value: unknown) => boolean;

const string: Check = v => typeof v === 'string';
const count: Check = v => typeof v === 'number' && isSafeInteger(v) && v >= 0;
const duration: Check = v => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const hex64: Check = v => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
const record = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !isArray(v);
const strings: Check = v => isArray(v) && v.every(s => typeof s === 'string');
const grants: Check = v => record(v) && Object.values(v).every(g => record(g) && strings(g.functions) && strings(g.values));
const references: Check = v =>
  isArray(v) && v.every(r => record(r) && count(r.import) && typeof r.service === 'string' && count(r.export) && (r.iface === undefined || typeof r.iface === 'string'));

const optionalStrings = (v: unknown): boolean => v === undefined || strings(v);
const secrets: Check = v => record(v) && strings(v.env) && strings(v.headers) && strings(v.hosts) && optionalStrings(v.files);
const reach: Check = v => record(v) && Object.values(v).every(optionalStrings);

const fields: ReadonlyArray<[name: string, check: Check, what: string, optional?: boolean]> = [
  ['entry', string, 'a string'],
  ['entryRoot', string, 'a string'],
  ['archive', string, 'a path'],
  ['archiveSha256', hex64, 'a sha256 in hex'],
  ['archiveBytes', count, 'a byte count'],
  ['log', string, 'a path'],
  ['logSha256', hex64, 'a sha256 in hex'],
  ['logBytes', count, 'a byte count'],
  ['events', count, 'an event count'],
  ['granted', grants, 'a record of { functions, values } lists'],
  ['parent', string, 'a service name', true],
  ['references', references, 'a list of { import, service, export, iface }'],
  ['pendingTimers', count, 'a count'],
  ['buildMs', duration, 'a duration in ms'],
  ['reach', reach, 'a record of lists of strings', true],
  ['secrets', secrets, 'a record of env, headers and hosts lists', true],
  ['sealedValues', count, 'a count', true],
];

/**
 * Check every service record of a parsed manifest (`services` already known
 * to be an object). Throws SNAPSHOT_INVALID naming the service, the field
 * and what it should be.
 */
export const checkServiceRecords = (file: string, services: Record<string, unknown>): void => {
  for (const [key, service] of Object.entries(services)) {
    const bad = (why: string): never => {
      throw new SnapshotError('SNAPSHOT_INVALID', `${file}: service "${key}" ${why}; the manifest is damaged or was edited. Rebuild the snapshot.`, { details: { file, service: key } });
    };
    if (!record(service)) bad('is not a record');
    const s = service as Record<string, unknown>;
    if (s.name !== key) bad(`is named ${JSON.stringify(s.name)} inside its record`);
    for (const [name, check, what, optional] of fields) {
      if (optional && s[name] === undefined) continue;
      if (!check(s[name])) bad(`has a ${name} that is not ${what}`);
    }
  }
};
