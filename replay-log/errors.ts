/**
 * Typed errors shared by every layer. They live at the bottom of the stack
 * (replay-log knows nothing else of ours) so that membrane/, compartments/
 * and lib/ can all raise them.
 *
 * Each error has a stable `code`, a message a user can act on, and optional
 * structured `details` for tools. `isSnapshotError` works across realms and
 * across copies of this package (a `Symbol.for` brand, not `instanceof`).
 */

export type SnapshotErrorCode =
  | 'LOG_CORRUPT'
  | 'LOG_TRUNCATED'
  | 'LOG_VERSION_UNSUPPORTED'
  | 'INTEGRITY_MISMATCH'
  | 'REPLAY_DIVERGED'
  | 'NOT_QUIESCENT'
  | 'STALE_HANDLE'
  | 'MODULE_NOT_GRANTED'
  | 'MODULE_NOT_INSTALLED'
  | 'DETERMINISM_VIOLATION'
  | 'NOT_PASSABLE'
  | 'SERVICE_LOAD_FAILED'
  | 'SNAPSHOT_INVALID'
  | 'SERVICE_UNAVAILABLE'
  | 'CALL_TIMEOUT'
  | 'CALL_CANCELLED'
  | 'CALL_INTERRUPTED'
  | 'BODY_TOO_LARGE'
  | 'DECLARATION_INVALID'
  | 'TRANSPORT_FAILED'
  | 'BUILD_FAILED'
  | 'REACH_DENIED'
  | 'SIGNATURE_MISSING'
  | 'SIGNATURE_INVALID'
  | 'KEY_INVALID'
  | 'SEAL_KEY_MISSING'
  | 'SEAL_KEY_INVALID'
  | 'USAGE';

const brand = Symbol.for('membrane-snapshot.error');

export class SnapshotError extends Error {
  readonly code: SnapshotErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: SnapshotErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
    this.name = `SnapshotError[${code}]`;
  }

  get [brand](): true {
    return true;
  }
}

// Services are handed SnapshotErrors, and through them this class: neither
// it nor its prototype may be changed by anyone. The class itself is
// hardened by lockdown (compartments/lockdown.ts), after it is moved off
// V8's own Error, whose statics are the process's stack settings.
Object.freeze(SnapshotError.prototype);

export const isSnapshotError = (value: unknown): value is SnapshotError =>
  typeof value === 'object' && value !== null && (value as { [brand]?: unknown })[brand] === true;

/**
 * A thrown value as one line of text for a report: `CODE: message` for a
 * SnapshotError, `Name: message` for an Error, the value's text otherwise.
 * Never throws: a service's thrown value may have a toString or a message
 * getter that does, or be a proxy that cannot become a string.
 */
export const describeError = (error: unknown): string => {
  try {
    return isSnapshotError(error) ? `${error.code}: ${error.message}` : error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  } catch {
    try {
      return Object.prototype.toString.call(error);
    } catch {
      return 'a value that cannot be printed';
    }
  }
};

/**
 * The causes of `error` (its `cause`, that one's, up to 5), a line each as
 * Node prints them, `[cause]: Name: message` (a failed fetch says why in
 * its cause: `Error: connect ECONNREFUSED 127.0.0.1:8080`); a cause met
 * before (a cycle) is `[cause]: [Circular]`, the last line. None for a
 * SnapshotError: its message already says what its cause meant, in words
 * for this library's user. Never throws.
 */
export const causeLines = (error: unknown): string[] => {
  const lines: string[] = [];
  if (isSnapshotError(error)) return lines;
  try {
    const seen = new Set<unknown>([error]);
    for (let cause = (error as { cause?: unknown } | null)?.cause, depth = 0; cause !== undefined && depth < 5; cause = (cause as { cause?: unknown } | null)?.cause, depth += 1) {
      // A cause that is the error itself or one of the causes above it: said once, as util.inspect says it.
      if (typeof cause === 'object' && cause !== null && seen.has(cause)) {
        lines.push('[cause]: [Circular]');
        break;
      }
      seen.add(cause);
      const code = (cause as { code?: unknown } | null)?.code;
      const text = describeError(cause);
      lines.push(`[cause]: ${text}${typeof code === 'string' && !text.includes(code) ? ` (${code})` : ''}`);
    }
  } catch {
    // a cause that cannot be read: what was read is said
  }
  return lines;
};

/**
 * `text` with every control character but the newline and the tab shown
 * escaped (`\\r`, `\\x1b`, `\\x08`, C1 controls such as `\\x9b` too): text
 * a service wrote cannot rewrite a terminal line, erase a prefix with
 * backspaces or start an escape sequence where it is printed.
 */
export const escapeControls = (text: string): string =>
  text.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, c => (c === '\r' ? '\\r' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));

/**
 * Text that may carry a service's words (its error messages, names quoted in
 * ours), as one block: continuation lines indented, every control character
 * but newline and tab made visible (escapeControls: carriage returns, escape
 * sequences, backspaces, C1), so that no line of it can pass for a line of
 * ours (`snapshot: CODE: ...`) or rewrite the terminal.
 */
export const block = (text: string): string => escapeControls(text).split('\n').join('\n  ');

/** The Levenshtein edit distance between `a` and `b`: insertions, deletions and substitutions, one each. */
export const editDistance = (a: string, b: string): number => {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    let previous = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j += 1) {
      const saved = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = saved;
    }
  }
  return row[b.length];
};

/**
 * The candidate within edit distance 2 of `word` (the nearest; Levenshtein),
 * if any: for "did you mean" in usage errors.
 */
export const closestWord = (word: string, candidates: readonly string[]): string | undefined => {
  let best: { candidate: string; d: number } | undefined;
  for (const candidate of candidates) {
    const d = editDistance(word, candidate);
    if (d <= 2 && (!best || d < best.d)) best = { candidate, d };
  }
  return best?.candidate;
};

/**
 * The option names an options object answers: every string key, enumerable
 * or not, its own and its prototypes' below the root (a class's
 * getters, `Object.create(defaults)`), without prototypes' `constructor`.
 * Reading only own keys dropped an inherited `trust`, skipping the
 * signature check.
 */
export const optionKeys = (options: object): string[] => {
  const keys = new Set(Object.getOwnPropertyNames(options));
  // Up to the root, any realm's Object.prototype (a service's options object has its own realm's).
  for (let proto = Object.getPrototypeOf(options) as object | null; proto !== null && Object.getPrototypeOf(proto) !== null; proto = Object.getPrototypeOf(proto) as object | null) {
    for (const key of Object.getOwnPropertyNames(proto)) if (key !== 'constructor') keys.add(key);
  }
  return [...keys];
};

/**
 * Throw a TypeError naming the first own key of `options` that is not in
 * `known` (with the nearest known one, and the full list): an option
 * misspelt in a policy (`reach: { host: [...] }`) must not silently mean
 * "no limit". `what` names the option object in the message.
 */
export const checkOptionKeys = (options: object, known: readonly string[], what: string): void => {
  for (const key of optionKeys(options)) {
    if (known.includes(key)) continue;
    const near = closestWord(key, known);
    throw new TypeError(`${what} has no option "${key}"${near ? `; did you mean "${near}"?` : ''} (it takes ${known.join(', ')})`);
  }
};

/** `checkOptionKeys` for a public function's options: a SnapshotError `USAGE` instead of a TypeError. */
export const refuseUnknownOptions = (options: object, known: readonly string[], what: string): void => {
  try {
    checkOptionKeys(options, known, what);
  } catch (error) {
    throw new SnapshotError('USAGE', `${(error as Error).message}.`, { cause: error });
  }
};

/** The kinds of option value `checkOptionTypes` knows; `ms` is a duration a timer can hold, a number of milliseconds over 0 and at most 2147483647 (Node's TIMEOUT_MAX). */
export type OptionKind = 'string' | 'strings' | 'ms' | 'boolean' | 'function' | 'object';

/**
 * Throw SnapshotError `USAGE` for the first option of `options` whose value
 * is not of the kind `kinds` gives it (undefined is always allowed): a list
 * of files given as a Set, or a key file as a number, must not be read as
 * "no list" (restoreSnapshot({ trust: new Set(...) }) skipped the
 * signature check) or as a descriptor.
 */
export const checkOptionTypes = (options: Readonly<Record<string, unknown>>, kinds: Readonly<Record<string, OptionKind>>, what: string): void => {
  for (const [key, kind] of Object.entries(kinds)) {
    const value = options[key];
    if (value === undefined) continue;
    const ok =
      kind === 'strings'
        ? Array.isArray(value) && Array.from(value as unknown[]).every(v => typeof v === 'string' && v.length > 0)
        : kind === 'object'
          ? typeof value === 'object' && value !== null && !Array.isArray(value)
          : kind === 'ms'
            ? typeof value === 'number' && value > 0 && value <= 2 ** 31 - 1
            : typeof value === kind;
    if (!ok) {
      const shown = typeof value === 'number' && kind === 'ms' ? String(value) : shownKind(value);
      const wanted = { string: 'a string', strings: 'an array of non-empty strings', ms: 'a number of milliseconds over 0, at most 2147483647', boolean: 'true or false', function: 'a function', object: 'an object' }[kind];
      throw new SnapshotError('USAGE', `${what}: ${key} takes ${wanted}, got ${shown}.`);
    }
  }
};

/**
 * A plain copy of an options object's values (optionKeys: inherited ones
 * too), each read once: what is checked is then what is used, whatever
 * getters the caller's object has.
 */
export const readOptions = <T extends object>(given: T): T =>
  Object.fromEntries(optionKeys(given).map(key => [key, (given as Record<string, unknown>)[key]])) as T;

/** How a value is shown in a USAGE message: its type, or null, an array, or its class. */
const shownKind = (value: unknown): string =>
  Array.isArray(value)
    ? 'an array'
    : value === null
      ? 'null'
      : typeof value === 'object'
        ? `an instance of ${(value as object).constructor?.name ?? 'Object'}`
        : value === ''
          ? 'an empty string'
          : typeof value;

/**
 * A public function's string argument (a path, a name): returned when it is
 * a non-empty string, SnapshotError `USAGE` otherwise, saying `what` (the
 * function) and `name` (which argument, and what it is) took: a number
 * must not be read as a file descriptor, nor undefined as the current
 * directory.
 */
export const checkStringArgument = (value: unknown, what: string, name: string): string => {
  if (typeof value === 'string' && value.length > 0) return value;
  throw new SnapshotError('USAGE', `${what}: ${name} must be a non-empty string, got ${shownKind(value)}.`);
};

/**
 * A public function's options, checked and read once: SnapshotError
 * `USAGE` for something that is not an object, for a key `kinds` does not
 * name (checkOptionKeys), for a value of the wrong kind (checkOptionTypes),
 * or for a `required` one that is missing; otherwise a plain copy
 * (readOptions), which is what the function then uses.
 */
export const readCheckedOptions = <T extends object>(given: T, kinds: Readonly<Record<keyof T & string, OptionKind>>, what: string, required: ReadonlyArray<keyof T & string> = []): T => {
  if (typeof given !== 'object' || given === null) throw new SnapshotError('USAGE', `${what} takes an options object.`);
  refuseUnknownOptions(given, Object.keys(kinds), what);
  const options = readOptions(given);
  // A list is copied once: what is checked is what is used (a Proxy could answer a later read otherwise).
  for (const [key, kind] of Object.entries(kinds)) {
    const value = (options as Record<string, unknown>)[key];
    if (kind === 'strings' && Array.isArray(value)) (options as Record<string, unknown>)[key] = Array.from(value as unknown[]);
  }
  checkOptionTypes(options as Readonly<Record<string, unknown>>, kinds, what);
  for (const key of required) {
    if ((options as Record<string, unknown>)[key] === undefined) throw new SnapshotError('USAGE', `${what}: the option ${key} is required.`);
  }
  return options;
};
