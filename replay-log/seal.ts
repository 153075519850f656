/**
 * Sealed values: secrets kept encrypted in a replay log.
 *
 * The host marks a value with `secret(value)` (the build script, or an
 * endowment for an env variable or a header it knows to be secret). When a
 * secret crosses the membrane, the wire walk writes it as
 * `Tagged('sealed', bytes)` instead of the value, and the other side gets the
 * value itself back. The bytes are:
 *
 * | bytes  | what                                                        |
 * | ------ | ----------------------------------------------------------- |
 * | 1      | 0x02, the version of this layout                           |
 * | 12     | iv = HMAC-SHA256(ivKey, context, plain)[0..12]              |
 * | 16     | the AES-256-GCM authentication tag                          |
 * | rest   | AES-256-GCM(encKey, iv, plain), aad `membrane-snapshot/sealed/v2` + context |
 *
 * where `plain` is the msgpack encoding of the value's wire form, `context`
 * names the service the value belongs to (a value sealed for one service
 * does not open in another: a blob spliced from one service's log into
 * another's is refused), and encKey and ivKey are derived from the 32-byte
 * seal key with HKDF-SHA256. Version 1 (no context) is refused.
 * The iv is synthetic (derived from the plaintext), so one value always
 * seals to the same bytes under one key: replay compares sealed syscall
 * arguments without opening them. What this reveals is which sealed values
 * of a snapshot are equal to each other; nothing about the values.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { SnapshotError } from './errors.js';

const VERSION = 2;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEAD = 1 + IV_BYTES + TAG_BYTES;
const AAD_PREFIX = 'membrane-snapshot/sealed/v2\n';
/** The context as the iv's HMAC takes it: its UTF-8 bytes after their length, so no context is a prefix of another. */
const contextBytes = (context: string): Buffer => {
  const text = Buffer.from(context, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(text.byteLength);
  return Buffer.concat([length, text]);
};
/** Seal keys are 32 bytes (AES-256). */
export const SEAL_KEY_BYTES = 32;

/** Encrypts and opens sealed values under one seal key, each for a context (a service). */
export interface SealKey {
  /** Names the key without revealing it: `hmac-sha256:<32 hex>`. Recorded in the manifest. */
  readonly keyId: string;
  /** Deterministic authenticated encryption of `plain` for `context` (the service's name; layout above). */
  seal(plain: Uint8Array, context: string): Uint8Array;
  /** The plaintext of `sealed`; throws SEAL_KEY_INVALID when it was sealed under another key, for another context, or altered. */
  open(sealed: Uint8Array, context: string): Uint8Array;
  /**
   * A keyed fingerprint of `bytes` for `context`: HMAC-SHA256 (hex, 64
   * characters) under a key derived from the seal key (HKDF-SHA256, info
   * `membrane-snapshot fingerprint`). What the log records in place of data a
   * service may hold secret (its crypto calls' data and keys): equal bytes
   * give equal fingerprints, which a replay compares, and without the key a
   * weak secret cannot be tested against it, as it could against a plain
   * sha256 (found by the adversarial review).
   */
  fingerprint(bytes: Uint8Array, context: string): string;
}

/** A seal key bound to one service: what its membrane seals and opens with. */
export interface Sealer {
  readonly keyId: string;
  seal(plain: Uint8Array): Uint8Array;
  open(sealed: Uint8Array): Uint8Array;
  fingerprint(bytes: Uint8Array): string;
}

/** `key` bound to the service `service`: values it seals open for that service only. */
export const bindSealer = (key: SealKey, service: string): Sealer =>
  Object.freeze({
    keyId: key.keyId,
    seal: (plain: Uint8Array) => key.seal(plain, service),
    open: (sealed: Uint8Array) => key.open(sealed, service),
    fingerprint: (bytes: Uint8Array) => key.fingerprint(bytes, service),
  });

/** The key id of a seal key, as `makeSealer(key).keyId` gives it. */
export const sealKeyId = (key: Uint8Array): string =>
  `hmac-sha256:${createHmac('sha256', key).update('membrane-snapshot seal key id').digest('hex').slice(0, 32)}`;

/** A sealer for a 32-byte key (bind it to a service with bindSealer). Throws SEAL_KEY_INVALID for a key of another length. */
export const makeSealer = (key: Uint8Array): SealKey => {
  if (key.byteLength !== SEAL_KEY_BYTES) {
    throw new SnapshotError('SEAL_KEY_INVALID', `a seal key is ${SEAL_KEY_BYTES} bytes, this one is ${key.byteLength}: make one with \`openssl rand -base64 32\`.`);
  }
  const encKey = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'membrane-snapshot seal enc', 32));
  const ivKey = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'membrane-snapshot seal iv', 32));
  const fingerprintKey = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'membrane-snapshot fingerprint', 32));
  const keyId = sealKeyId(key);
  const invalid = (why: string) =>
    new SnapshotError('SEAL_KEY_INVALID', `a sealed value does not open with seal key ${keyId}: ${why}. Restore with the key the snapshot was built with, or rebuild.`, {
      details: { keyId },
    });
  return Object.freeze({
    keyId,
    seal(plain: Uint8Array, context: string): Uint8Array {
      const iv = createHmac('sha256', ivKey).update(contextBytes(context)).update(plain).digest().subarray(0, IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', encKey, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(AAD_PREFIX + context, 'utf8'));
      const body = Buffer.concat([cipher.update(plain), cipher.final()]);
      return Buffer.concat([Buffer.of(VERSION), iv, cipher.getAuthTag(), body]);
    },
    open(sealed: Uint8Array, context: string): Uint8Array {
      if (!(sealed instanceof Uint8Array) || sealed.byteLength < HEAD || sealed[0] !== VERSION) throw invalid('it is not a sealed value of this version (a snapshot built before version 2 of sealed values: rebuild it)');
      const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
      const iv = bytes.subarray(1, 1 + IV_BYTES);
      const decipher = createDecipheriv('aes-256-gcm', encKey, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(AAD_PREFIX + context, 'utf8'));
      decipher.setAuthTag(bytes.subarray(1 + IV_BYTES, HEAD));
      let plain: Buffer;
      try {
        plain = Buffer.concat([decipher.update(bytes.subarray(HEAD)), decipher.final()]);
      } catch {
        throw invalid(`its authentication tag does not match (another key, a value sealed for another service than "${context}", or the bytes were altered)`);
      }
      const expected = createHmac('sha256', ivKey).update(contextBytes(context)).update(plain).digest().subarray(0, IV_BYTES);
      if (!timingSafeEqual(expected, iv)) throw invalid('its iv does not derive from its content');
      return plain;
    },
    fingerprint(bytes: Uint8Array, context: string): string {
      return createHmac('sha256', fingerprintKey).update(contextBytes(context)).update(bytes).digest('hex');
    },
  });
};

/**
 * A seal key from its text form: 32 bytes in base64 (what
 * `openssl rand -base64 32` prints), surrounding white space ignored.
 * `where` names the source for messages. Throws SEAL_KEY_INVALID.
 */
export const parseSealKey = (text: string, where: string): Uint8Array => {
  const trimmed = text.trim();
  const key = Buffer.from(trimmed, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) || key.byteLength !== SEAL_KEY_BYTES) {
    throw new SnapshotError('SEAL_KEY_INVALID', `${where} is not a seal key: a seal key is ${SEAL_KEY_BYTES} random bytes in base64 (make one with \`openssl rand -base64 32\`).`, {
      details: { where },
    });
  }
  return key;
};

// ---- secret values ----------------------------------------------------------

/** A value marked secret by the host: sealed when it crosses the membrane into a log. */
export class Secret<T = unknown> {
  readonly #value: T;
  /** What the value is, for messages (`environment variable API_TOKEN`); never the value. */
  readonly label: string;
  constructor(value: T, label = 'a secret value') {
    this.#value = value;
    this.label = label;
    secrets.add(this);
    Object.freeze(this);
  }
  /** The value itself. */
  reveal(): T {
    return this.#value;
  }
  toString(): string {
    return '[secret]';
  }
  toJSON(): string {
    return '[secret]';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Secret(${this.label})`;
  }
}
Object.freeze(Secret.prototype);
Object.freeze(Secret);

// One registry per process, so a secret made by another copy of this package
// (a build script's own dependency) is still recognised. A WeakSet: checking
// a guest object never runs guest code.
const registryKey = Symbol.for('membrane-snapshot.secrets');
const realm = globalThis as unknown as Record<symbol, WeakSet<object> | undefined>;
const secrets: WeakSet<object> = (realm[registryKey] ??= new WeakSet<object>());

/**
 * Mark `value` secret: passed to a service (an argument of a call), it
 * reaches the service as `value` itself, and the replay log keeps it sealed
 * with the build's seal key (AES-256-GCM). Without a seal key the build
 * fails with SEAL_KEY_MISSING rather than writing it in plain text.
 */
export const secret = <T>(value: T, label?: string): Secret<T> => new Secret(value, label);

/** Is `value` a `Secret` (made by any copy of this package in this process)? */
export const isSecret = (value: unknown): value is Secret => typeof value === 'object' && value !== null && secrets.has(value);

/** The value of a secret made by any copy of this package. */
export const revealSecret = (value: Secret): unknown => value.reveal();
