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
// it nor its prototype may be changed by anyone.
Object.freeze(SnapshotError.prototype);
Object.freeze(SnapshotError);

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
