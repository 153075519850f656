/**
 * How the `snapshot` command line reports what went wrong: every failure
 * prints `snapshot: CODE: message` and exits non-zero (1 for a failed
 * operation, 2 for a usage error). Shared by the CLI's modules and the
 * restore bundle (which carries its own copy of this module).
 */
import { inspect } from 'node:util';
import { block, causeLines, describeError, isSnapshotError } from '../replay-log/errors.js';

export { block };

/** Print `error` as the CLI's failure and exit: 2 for a USAGE error, 1 for any other. */
export const fail = (error: unknown): never => {
  if (isSnapshotError(error)) {
    process.stderr.write(`snapshot: ${error.code}: ${block(error.message)}\n`);
    process.exit(error.code === 'USAGE' ? 2 : 1);
  }
  process.stderr.write(`snapshot: unexpected error: ${block(error instanceof Error ? (error.stack ?? error.message) : String(error))}\n`);
  process.exit(1);
};

/** An error a service threw: its message and the service's own frames, not ours. */
export const describeThrown = (error: unknown): string => {
  // A thrown object that is no Error prints as Node prints it uncaught (`{ code: 'E_CUSTOM', detail: 42 }`), not `[object Object]`.
  if (!(error instanceof Error)) return typeof error === 'object' && error !== null ? inspected(error) : describeError(error);
  let stack: string;
  try {
    stack = error.stack ?? '';
  } catch {
    return describeError(error);
  }
  const frames = stack
    .split('\n')
    .slice(1)
    .filter(line => /^\s+at /.test(line) && !/\/dist\/(membrane|compartments|lib|replay-log)\/|node:internal/.test(line));
  // Its own fields (`code: 'ENOENT'`, a validation error's `field`), as Node prints them after the stack.
  const fields: Record<string, unknown> = {};
  try {
    for (const key of Object.keys(error)) if (key !== 'stack' && key !== 'message' && key !== 'cause') fields[key] = (error as unknown as Record<string, unknown>)[key];
  } catch {
    // a field that cannot be read: left out
  }
  const extra = Object.keys(fields).length > 0 ? [`    ${inspected(fields)}`] : [];
  return [describeError(error), ...frames, ...extra, ...causeLines(error)].join('\n');
};

/** `value` as util.inspect prints it on one line, without running its own inspect hook; never throws. */
const inspected = (value: unknown): string => {
  try {
    return inspect(value, { depth: 4, breakLength: Infinity, customInspect: false });
  } catch {
    return describeError(value);
  }
};

/**
 * JSON.stringify's replacer for results printed by the CLI: bigints as
 * their decimal text; a Map as an object when every key is a string, else
 * as [key, value] pairs (number keys keep their type and order); a Set as
 * a list; a typed array as a list of its numbers (a Buffer keeps its own
 * toJSON); a RegExp as
 * its text (`/a+/g`) (JSON.stringify writes these as {} or an object of
 * indices, found by the new-user trials). An error stays as JSON writes it
 * (its own enumerable fields), as a build script's JSON.stringify of the
 * same value does.
 */
/**
 * A `--call` result as one line of JSON on stdout (jsonReplacer), its DEL and
 * C1 controls written as \u escapes, which JSON.stringify leaves raw (a \u009b
 * is a terminal's CSI; found by the adversarial review): still the same JSON.
 */
export const resultJson = (value: unknown): string =>
  (JSON.stringify(value, jsonReplacer) ?? 'null').replace(/[\u007f-\u009f]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

export const jsonReplacer = (_key: string, value: unknown): unknown => {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Map) return [...value.keys()].every(key => typeof key === 'string') ? Object.fromEntries(value) : [...value.entries()];
  if (value instanceof Set) return [...value];
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Array.from(value as unknown as ArrayLike<number | bigint>);
  if (value instanceof RegExp) return String(value);
  return value;
};
