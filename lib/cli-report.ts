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
export const jsonReplacer = (_key: string, value: unknown): unknown => {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Map) return [...value.keys()].every(key => typeof key === 'string') ? Object.fromEntries(value) : [...value.entries()];
  if (value instanceof Set) return [...value];
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Array.from(value as unknown as ArrayLike<number | bigint>);
  if (value instanceof RegExp) return String(value);
  return value;
};

/**
 * A `--call` result as one line of JSON on stdout (jsonReplacer), its DEL and
 * C1 controls written as \u escapes, which JSON.stringify leaves raw (a \u009b
 * is a terminal's CSI; found by the adversarial review): still the same JSON.
 * Give it what `settleToJSON` resolved to.
 */
export const resultJson = (value: unknown): string =>
  (JSON.stringify(value, jsonReplacer) ?? 'null').replace(/[\u007f-\u009f]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/**
 * `value` with the `toJSON` calls JSON.stringify would make already made and
 * awaited, so that JSON.stringify then writes what it writes in plain Node.
 * Another service's object (a URL, a class instance with a toJSON) is held by
 * reference, and its methods answer with promises: JSON.stringify alone
 * called its toJSON, got a promise and wrote `{}` (found by the new-user
 * trial). As JSON.stringify does (ECMA-262 SerializeJSONProperty): each
 * value's toJSON, own or inherited, is called once with its key, and the
 * properties of what it returns are then walked, not the value returned
 * itself again. Arrays, plain objects, Maps and Sets are copied with their
 * values settled; anything else is left as it is (a cycle too, which
 * JSON.stringify then refuses as in Node). Resolves to the settled value;
 * rejects with what a toJSON throws.
 */
export const settleToJSON = async (value: unknown, key = '', path: Set<object> = new Set()): Promise<unknown> => {
  if (typeof value !== 'object' || value === null) return value;
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') value = await Reflect.apply(toJSON, value, [key]);
  if (typeof value !== 'object' || value === null || path.has(value)) return value;
  path.add(value);
  try {
    if (Array.isArray(value)) {
      const out: unknown[] = [];
      for (let i = 0; i < value.length; i += 1) out.push(await settleToJSON(value[i], String(i), path));
      return out;
    }
    if (value instanceof Map) {
      // As jsonReplacer writes it: an object (each value under its key), or [key, value] pairs.
      const named = [...value.keys()].every(k => typeof k === 'string');
      const out = new Map<unknown, unknown>();
      for (const [k, v] of value) out.set(named ? k : await settleToJSON(k, '0', path), await settleToJSON(v, named ? (k as string) : '1', path));
      return out;
    }
    if (value instanceof Set) {
      const out = new Set<unknown>();
      for (const v of value) out.add(await settleToJSON(v, String(out.size), path));
      return out;
    }
    const proto = Object.getPrototypeOf(value) as object | null;
    if (proto !== Object.prototype && proto !== null) return value;
    const out: Record<string, unknown> = {};
    // Defined, not assigned: a key named __proto__ is a key, as JSON.stringify writes it (found by the adversarial review).
    for (const k of Object.keys(value)) Object.defineProperty(out, k, { value: await settleToJSON((value as Record<string, unknown>)[k], k, path), enumerable: true, writable: true, configurable: true });
    return out;
  } finally {
    path.delete(value);
  }
};
