/**
 * Crypto inside a service: randomness is recorded byte for byte (and drawn
 * from the host's entropy again once live); hashing and the other pure
 * functions of `node:crypto` are offered as they are; every `crypto.subtle`
 * operation is an async syscall, since WebCrypto settles on the host's
 * thread pool.
 */
import hostCrypto from 'node:crypto';
import { types } from 'node:util';
import type { Membrane } from '../membrane/index.js';
import { determinismViolation } from './errors.js';
import { hardenSharedInternals } from './host-internals.js';
import { likeHostAll } from './host-shape.js';

const hostFill = (target: Uint8Array): void => {
  hostCrypto.randomFillSync(target);
};

/** Node's largest `randomFillSync` offset and size, and `randomBytes` size, in bytes (kMaxPossibleLength). */
const MAX_FILL = 2 ** 31 - 1;
/** Node's largest `randomInt` range (its RAND_MAX: six bytes). */
const RAND_MAX = 2 ** 48 - 1;

/**
 * The bytes `crypto.randomFillSync(target, offset, size)` fills, as Node
 * picks them: `offset` and `size` count elements of a typed array (bytes of
 * anything else), an ArrayBuffer is filled as a whole, `size` defaults to
 * the rest. Undefined for what Node refuses (a target that is neither, an
 * offset or size that is not a number, a range outside the target).
 */
const fillRegion = (target: unknown, offset: unknown, size: unknown): Uint8Array | undefined => {
  const isView = ArrayBuffer.isView(target);
  if (!isView && !(target instanceof ArrayBuffer)) return undefined;
  const length = (target as ArrayBufferView | ArrayBuffer).byteLength;
  const element = (isView ? (target as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT : undefined) || 1;
  if (typeof offset !== 'number') return undefined;
  const start = offset * element;
  if (Number.isNaN(start) || start > Math.min(length, MAX_FILL) || start < 0) return undefined;
  let count: number;
  if (size === undefined) count = length - (start >>> 0);
  else {
    if (typeof size !== 'number') return undefined;
    const bytes = size * element;
    if (Number.isNaN(bytes) || bytes > MAX_FILL || bytes < 0 || bytes + start > length) return undefined;
    count = bytes >>> 0;
  }
  const whole = isView ? byteView(target as ArrayBufferView) : new Uint8Array(target as ArrayBuffer);
  return whole.subarray(start >>> 0, (start >>> 0) + count);
};

/** The bytes of a view: a Uint8Array as it is (no new view per call), others wrapped. */
const byteView = (value: ArrayBufferView): Uint8Array => (value instanceof Uint8Array ? value : new Uint8Array(value.buffer, value.byteOffset, value.byteLength));

/**
 * A copy of the bytes Node's one-shot crypto functions (`sign`, `publicEncrypt`) read from `data`, as Node's
 * getArrayBufferOrView takes it: a string in `encoding` (utf8 by default), a view, or an ArrayBuffer or
 * SharedArrayBuffer as a whole. Undefined for anything else, which the host refuses with Node's own error.
 * (A string or an ArrayBuffer was read as a view before: no bytes, so `crypto.sign` signed the empty message,
 * and `publicEncrypt` recorded an ArrayBuffer's plaintext in the log; found by the adversarial review.)
 */
const dataBytes = (data: unknown, encoding?: unknown): Buffer | undefined => {
  if (typeof data === 'string') return Buffer.from(data, typeof encoding === 'string' && Buffer.isEncoding(encoding) ? encoding : 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(byteView(data));
  if (isAnyArrayBuffer(data)) return Buffer.from(new Uint8Array(data as ArrayBuffer));
  return undefined;
};

/** An object's JSON text (a JWK), or undefined for what is not an object or has none (a cycle: the host refuses it). */
const jsonText = (value: unknown): string | undefined => {
  if (typeof value !== 'object' || value === null) return undefined;
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
};

const hex = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export interface GuestCrypto {
  readonly webcrypto: Record<string, unknown>;
  readonly nodeCrypto: Record<string, unknown>;
}

/**
 * The service's stream Transform and Writable (its own `stream` module,
 * loaded when a Hash or a Cipher is first used as a stream, or a Sign or
 * Verify made), or undefined where there is none (the facades then have no
 * stream methods).
 */
export type StreamLoader = () => { Transform: new (options?: object) => object; Writable: new (options?: object) => object } | undefined;

export const makeCrypto = (membrane: Membrane, loadStream: StreamLoader = () => undefined): GuestCrypto => {
  const facades = makeFacades(() => loadStream()?.Transform);
  const fill = (target: Uint8Array): Uint8Array => {
    membrane.randomFill(target, hostFill);
    return target;
  };

  const getRandomValues = <T extends ArrayBufferView | null>(array: T): T => {
    if (!ArrayBuffer.isView(array) || array instanceof Float32Array || array instanceof Float64Array || array instanceof DataView) {
      // Node's errors (WebCrypto: DOMExceptions with these names and texts).
      throw new DOMException('The data argument must be an integer-type TypedArray', 'TypeMismatchError');
    }
    if (array.byteLength > 65536) throw new DOMException('The requested length exceeds 65,536 bytes', 'QuotaExceededError');
    fill(byteView(array));
    return array;
  };

  const randomUUID = (): string => {
    const b = fill(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    return `${hex[b[0]]}${hex[b[1]]}${hex[b[2]]}${hex[b[3]]}-${hex[b[4]]}${hex[b[5]]}-${hex[b[6]]}${hex[b[7]]}-${hex[b[8]]}${hex[b[9]]}-${hex[b[10]]}${hex[b[11]]}${hex[b[12]]}${hex[b[13]]}${hex[b[14]]}${hex[b[15]]}`;
  };

    const later = <A extends unknown[]>(callback: (...args: A) => void, ...args: A) => queueMicrotask(() => callback(...args));

  const randomBytes = (size: unknown, callback?: unknown): Buffer | undefined => {
    // Node's checks (assertSize, then the callback's type), with Node's own errors: the host throws them before it draws anything.
    if (typeof size !== 'number' || Number.isNaN(size) || size < 0 || size > MAX_FILL || (callback !== undefined && typeof callback !== 'function')) {
      apply(hostCrypto.randomBytes, hostCrypto, [size, callback]);
      throw new RangeError('randomBytes: bad arguments');
    }
    const buf = Buffer.alloc(size >>> 0); // a fraction is cut off, as in Node
    fill(buf);
    if (typeof callback === 'function') {
      later(callback as (err: Error | null, buf: Buffer) => void, null, buf);
      return undefined;
    }
    return buf;
  };

  const randomFillSync = <T extends ArrayBufferView | ArrayBuffer>(target: T, offset: unknown = 0, size?: unknown): T => {
    const region = fillRegion(target, offset, size);
    if (region === undefined) {
      // Node's own error (its checks come before it fills anything; fillRegion refuses exactly what they refuse).
      apply(hostCrypto.randomFillSync, hostCrypto, [target, offset, size]);
      throw new RangeError('randomFillSync: bad arguments');
    }
    if (region.byteLength > 0) fill(region);
    return target;
  };

  const randomFill = (target: ArrayBufferView, ...rest: unknown[]): void => {
    const callback = rest.pop() as (err: Error | null, buf: ArrayBufferView) => void;
    randomFillSync(target, ...(rest as [number?, number?]));
    later(callback, null, target);
  };

  const randomInt = (...args: unknown[]): number | undefined => {
    // Node's reading of (min, max, callback) and its checks, with Node's own errors (the host throws them before it draws).
    let [min, max, callback] = args;
    if (max === undefined || typeof max === 'function') [min, max, callback] = [0, min, max];
    if (
      (callback !== undefined && typeof callback !== 'function') ||
      !Number.isSafeInteger(min) ||
      !Number.isSafeInteger(max) ||
      (max as number) <= (min as number) ||
      (max as number) - (min as number) > RAND_MAX
    ) {
      apply(hostCrypto.randomInt, hostCrypto, args);
      throw new RangeError('randomInt: bad range');
    }
    const range = (max as number) - (min as number);
    const limit = 2 ** 48 - (2 ** 48 % range);
    const b = new Uint8Array(6);
    let x: number;
    do {
      fill(b);
      x = b[0] * 2 ** 40 + b[1] * 2 ** 32 + b[2] * 2 ** 24 + b[3] * 2 ** 16 + b[4] * 2 ** 8 + b[5];
    } while (x >= limit);
    const n = (min as number) + (x % range);
    if (callback) {
      later(callback as (err: Error | null, n: number) => void, null, n);
      return undefined;
    }
    return n;
  };

  // Web Crypto: every operation settles on the host's thread pool, so each is an async syscall,
  // recorded with its result. CryptoKeys stay the host's and cross by reference (read as data
  // through the membrane: key.algorithm, key.usages); keys made at build time are build-time
  // handles after a restore. Random results (generateKey, encrypt with a fresh IV made by the
  // caller) are recorded like any other result.
  const hostSubtle = hostCrypto.webcrypto.subtle as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const subtle: Record<string, unknown> = {};
  for (const op of ['digest', 'encrypt', 'decrypt', 'sign', 'verify', 'importKey', 'exportKey', 'generateKey', 'deriveKey', 'deriveBits', 'wrapKey', 'unwrapKey'] as const) {
    subtle[op] = (...args: unknown[]) => {
      // The data an operation reads (a token hashed for a fingerprint, a secret encrypted or signed) never enters the
      // log either: its fingerprint does (Membrane#fingerprint: keyed with the seal key when there is one), which
      // replay compares; the host reads the service's own copy of it (found by
      // the new-user trial: a sealed env value given to digest was in the log as written).
      // So do the BufferSource members of its algorithm parameters (a PBKDF2 or HKDF salt, HKDF info, an AES-GCM
      // iv or additionalData, an RSA-OAEP label) and verify's signature, unwrapKey's wrapped key.
      const replaced = new Map<number, unknown>();
      const recorded = [...args];
      for (const at of DATA_ARGUMENTS[op] ?? []) {
        if (args.length <= at) continue;
        const data = bufferSource(args[at]);
        recorded[at] = fingerprintOf(data);
        replaced.set(at, data.data);
      }
      for (const at of ALGORITHM_ARGUMENTS[op] ?? []) {
        const algorithm = args[at];
        if (algorithm === null || typeof algorithm !== 'object' || ArrayBuffer.isView(algorithm) || algorithm instanceof ArrayBuffer) continue;
        const forLog: Record<string, unknown> = { ...(algorithm as Record<string, unknown>) };
        const forHost: Record<string, unknown> = { ...(algorithm as Record<string, unknown>) };
        for (const [name, value] of Object.entries(forLog)) {
          if (!ArrayBuffer.isView(value) && !(value instanceof ArrayBuffer)) continue;
          const data = bufferSource(value);
          forLog[name] = fingerprintOf(data);
          forHost[name] = data.data;
        }
        recorded[at] = forLog;
        replaced.set(at, forHost);
      }
      if (replaced.size > 0 && op !== 'importKey') {
        return membrane.syscall(`crypto.subtle.${op}`, recorded, (...hostArgs) => {
          for (const [at, value] of replaced) hostArgs[at] = value;
          return apply(hostSubtle[op], hostSubtle, hostArgs);
        });
      }
      if (op === 'importKey' && args.length > 1) {
        // The key material (a JWT secret from a sealed env value...) never enters the log: its fingerprint does,
        // as crypto.sign records its key's; the host imports the service's own copy of it.
        const material = keyMaterial(args[1]);
        return membrane.syscall(`crypto.subtle.${op}`, [args[0], fingerprintOf(material), ...args.slice(2)], (format, _fingerprint, ...rest) =>
          apply(hostSubtle[op], hostSubtle, [format, material.data, ...rest]),
        );
      }
      return membrane.syscall(`crypto.subtle.${op}`, args, (...hostArgs) => apply(hostSubtle[op], hostSubtle, hostArgs));
    };
  }
  // randomUUID of its own: Node's web one takes no options (length 0), the module's does (length 1).
  const webcrypto = { getRandomValues, randomUUID: () => randomUUID(), subtle };

  // Signatures may be randomised (ECDSA, RSA-PSS): a recorded syscall. The
  // key itself never enters the log, only its fingerprint (replay checks that
  // the same key signs).
  type KeyArg = Parameters<typeof hostCrypto.sign>[2];
  const keyFingerprint = (key: KeyArg): object => {
    // A key given as `{ key, passphrase, ... }` is its `key`: a KeyObject there was String()ed, "[object KeyObject]"
    // for every key, which a replay could not tell from another (found by the adversarial review).
    const inner = typeof key === 'object' && key !== null && !(key instanceof hostCrypto.KeyObject) && !ArrayBuffer.isView(key) && 'key' in key ? (key as { key: unknown }).key : key;
    // Likewise a CryptoKey (by its material), an ArrayBuffer (its bytes) and a JWK (its JSON text), each of which
    // String() gave one text for every key (found by the second review).
    const keyObject = inner instanceof hostCrypto.KeyObject ? inner : types.isCryptoKey(inner) ? hostCrypto.KeyObject.from(inner as never) : undefined;
    let material: string | Uint8Array;
    if (keyObject) material = keyObject.type === 'secret' ? keyObject.export() : keyObject.export({ format: 'pem', type: keyObject.type === 'private' ? 'pkcs8' : 'spki' });
    else material = dataBytes(inner) ?? jsonText(inner) ?? String(inner);
    return membrane.fingerprint(typeof material === 'string' ? Buffer.from(material) : material);
  };
  /** What the log records for a copied BufferSource or key: the bytes' fingerprint (Membrane#fingerprint), or the type of what is not bytes. */
  const fingerprintOf = ({ data, bytes }: { data: unknown; bytes?: Uint8Array }): object => (bytes ? membrane.fingerprint(bytes) : { type: typeof data });
  // The data signed (a token with a secret in it) never enters the log either, as Web Crypto's sign's does not: its
  // fingerprint does, which replay compares; the host signs the service's own copy of it.
  const signNow = (algorithm: string | null | undefined, data: unknown, key: KeyArg): Buffer => {
    const bytes = dataBytes(data);
    // Not data Node signs: the host throws its error (ERR_INVALID_ARG_TYPE) before it signs anything.
    if (bytes === undefined) {
      hostCrypto.sign(algorithm as string | null, data as Buffer, key);
      throw new TypeError('The "data" argument must be of type string or an instance of ArrayBuffer, Buffer, TypedArray, or DataView.'); // not reached: the host threw
    }
    return membrane.syscall('crypto.sign', [algorithm ?? null, membrane.fingerprint(bytes), keyFingerprint(key)], alg => hostCrypto.sign(alg as string | null, bytes, key)) as Buffer;
  };
  /** `crypto.sign(algorithm, data, key[, callback])`: with a callback, signed now and called back in a microtask (see withCallback). */
  const sign = (...args: unknown[]): Buffer | undefined =>
    withCallback(args, 3, rest => signNow(...(rest as Parameters<typeof signNow>)), invalid => apply(hostCrypto.sign, hostCrypto, invalid));
  /** `crypto.verify(algorithm, data, key, signature[, callback])`, the host's, its callback form as sign's. */
  const verify = (...args: unknown[]): boolean | undefined =>
    withCallback(
      args,
      4,
      rest => apply(hostCrypto.verify, hostCrypto, rest) as boolean,
      invalid => apply(hostCrypto.verify, hostCrypto, invalid),
    );
  /**
   * Node's Sign and Verify (lib/internal/crypto/sig.js): Writables of the service's own stream module, whose
   * writes are updates (`pipeline(file, createSign('sha256'))`, `sign.write(a); sign.end(b)`; found by the
   * fidelity review: a Sign had no stream side). A Sign keeps what it is given and signs it with the recorded
   * signNow; a Verify updates the host's.
   */
  const signing = new WeakMap<object, { algorithm: string; chunks: Buffer[] }>();
  const verifying = new WeakMap<object, { update: (...a: unknown[]) => unknown; verify: (...a: unknown[]) => unknown; host: object }>();
  let signClasses: { Sign: (this: object, options?: unknown) => void; Verify: (this: object, options?: unknown) => void } | undefined;
  const signClassesOf = () => {
    if (signClasses) return signClasses;
    const Writable = loadStream()?.Writable as unknown as ((this: object, options?: unknown) => void) & { prototype: object } | undefined;
    const Sign = function Sign(this: object, options?: unknown) {
      if (Writable) apply(Writable, this, [options]);
    };
    const Verify = function Verify(this: object, options?: unknown) {
      if (Writable) apply(Writable, this, [options]);
    };
    for (const Class of [Sign, Verify]) {
      if (Writable) {
        Object.setPrototypeOf(Class.prototype, Writable.prototype);
        Object.setPrototypeOf(Class, Writable);
      }
      Object.defineProperty(Class.prototype, '_write', {
        value: function _write(this: { update(chunk: unknown, encoding: unknown): unknown }, chunk: unknown, encoding: unknown, callback: () => void) {
          this.update(chunk, encoding);
          callback();
        },
        writable: true,
        configurable: true,
      });
    }
    const method = (proto: object, name: string, fn: (...args: never[]) => unknown) => Object.defineProperty(proto, name, { value: fn, writable: true, configurable: true });
    method(Sign.prototype, 'update', function update(this: object, data: string | ArrayBufferView, encoding?: BufferEncoding) {
      const state = signing.get(this);
      if (!state) throw new TypeError('Value of "this" must be of type Sign');
      // Node's Sign#update takes a string or a view (not an ArrayBuffer): anything else gets the host's error.
      if (typeof data !== 'string' && !ArrayBuffer.isView(data)) {
        hostCrypto.createSign(state.algorithm).update(data as never);
        throw new TypeError('The "data" argument must be of type string or an instance of Buffer, TypedArray, or DataView.'); // not reached: the host threw
      }
      state.chunks.push(typeof data === 'string' ? Buffer.from(data, encoding) : Buffer.from(byteView(data)));
      return this;
    });
    method(Sign.prototype, 'sign', function sign(this: object, key: KeyArg, outputEncoding?: BufferEncoding) {
      const state = signing.get(this);
      if (!state) throw new TypeError('Value of "this" must be of type Sign');
      const signature = signNow(state.algorithm, Buffer.concat(state.chunks), key);
      return outputEncoding ? signature.toString(outputEncoding) : signature;
    });
    method(Verify.prototype, 'update', function update(this: object, ...args: unknown[]) {
      const state = verifying.get(this);
      if (!state) throw new TypeError('Value of "this" must be of type Verify');
      apply(state.update, state.host, args);
      return this;
    });
    method(Verify.prototype, 'verify', function verify(this: object, ...args: unknown[]) {
      const state = verifying.get(this);
      if (!state) throw new TypeError('Value of "this" must be of type Verify');
      return apply(state.verify, state.host, args);
    });
    signClasses = { Sign, Verify };
    return signClasses;
  };
  const createSign = function createSign(algorithm: string, options?: unknown): object {
    // The host's checks of the algorithm (its errors), its signer left unused: signNow signs, recorded.
    hostCrypto.createSign(algorithm);
    const { Sign } = signClassesOf();
    const signer = Reflect.construct(Sign, [options]) as object;
    signing.set(signer, { algorithm, chunks: [] });
    return signer;
  };
  const createVerify = function createVerify(algorithm: string, options?: unknown): object {
    const host = hostCrypto.createVerify(algorithm) as unknown as Record<string, (...a: unknown[]) => unknown>;
    const { Verify } = signClassesOf();
    const verifier = Reflect.construct(Verify, [options]) as object;
    verifying.set(verifier, { update: host.update, verify: host.verify, host });
    return verifier;
  };

  /**
   * `crypto.publicEncrypt(key, data)`: its padding is random (OAEP, PKCS#1 v1.5), so the ciphertext is
   * recorded (syscall `crypto.publicEncrypt`: the padding options, fingerprints of the data and of the key, as sign's).
   */
  const publicEncrypt = (key: Parameters<typeof hostCrypto.publicEncrypt>[0], data: string | ArrayBufferView): Buffer => {
    const options = typeof key === 'object' && key !== null && 'key' in key ? (key as { padding?: unknown; oaepHash?: unknown; oaepLabel?: unknown; encoding?: unknown }) : {};
    const bytes = dataBytes(data, options.encoding) ?? data;
    // The plaintext (a password sent encrypted to a server's key) and the OAEP label never enter the log: their
    // fingerprint does, as for Web Crypto's encrypt; the host encrypts the service's own copy. What is not bytes goes as
    // it is, for the host to refuse as Node does.
    const label = dataBytes(options.oaepLabel, options.encoding);
    const shown = { padding: options.padding ?? null, oaepHash: options.oaepHash ?? null, oaepLabel: label ? membrane.fingerprint(label) : null };
    const recorded = Buffer.isBuffer(bytes) ? membrane.fingerprint(bytes) : bytes;
    return membrane.syscall('crypto.publicEncrypt', [shown, recorded, keyFingerprint(key as KeyArg)], () => hostCrypto.publicEncrypt(key, bytes as Buffer)) as Buffer;
  };

  const refusedKeygen = (name: string) => () => {
    throw determinismViolation(`crypto.${name}`, 'key generation draws entropy the replay log cannot hold safely', 'Generate keys outside the service and pass them in, or derive them from recorded randomness (crypto.randomBytes).');
  };

  const nodeCrypto: Record<string, unknown> = {
    randomBytes,
    randomFillSync,
    randomFill,
    randomInt,
    randomUUID,
    getRandomValues,
    webcrypto,
    subtle,
    pseudoRandomBytes: randomBytes,
    createHash: (...args: unknown[]) => facades.make('Hash', apply(hostCrypto.createHash, undefined, args) as object),
    createHmac: (...args: unknown[]) => facades.make('Hmac', apply(hostCrypto.createHmac, undefined, args) as object),
    createCipheriv: (...args: unknown[]) => facades.make('Cipheriv', apply(hostCrypto.createCipheriv, undefined, args) as object),
    createDecipheriv: (...args: unknown[]) => facades.make('Decipheriv', apply(hostCrypto.createDecipheriv, undefined, args) as object),
    createSign,
    sign,
    verify,
    createVerify,
    createPublicKey: keyMaker('createPublicKey'),
    createPrivateKey: keyMaker('createPrivateKey'),
    createSecretKey: keyMaker('createSecretKey'),
    pbkdf2Sync: hostCrypto.pbkdf2Sync,
    scryptSync: hostCrypto.scryptSync,
    hkdfSync: hostCrypto.hkdfSync,
    // pbkdf2(password, salt, iterations, keylen, digest, callback); Node takes a function in digest's place as the callback.
    pbkdf2: namedDerivation(hostCrypto.pbkdf2 as never, hostCrypto.pbkdf2Sync as never, args => (typeof args[4] === 'function' ? 4 : 5)),
    // scrypt(password, salt, keylen[, options], callback)
    scrypt: namedDerivation(hostCrypto.scrypt as never, hostCrypto.scryptSync as never, args => (typeof args[3] === 'function' ? 3 : 4)),
    // hkdf(digest, ikm, salt, info, keylen, callback)
    hkdf: namedDerivation(hostCrypto.hkdf as never, hostCrypto.hkdfSync as never, () => 5),
    timingSafeEqual: hostCrypto.timingSafeEqual,
    publicEncrypt,
    // Deterministic, given the key: the host's.
    privateDecrypt: hostCrypto.privateDecrypt,
    privateEncrypt: hostCrypto.privateEncrypt,
    publicDecrypt: hostCrypto.publicDecrypt,
    getCurves: hostCrypto.getCurves,
    getHashes: hostCrypto.getHashes,
    getCiphers: hostCrypto.getCiphers,
    hash: (hostCrypto as unknown as { hash?: unknown }).hash,
    constants: cryptoConstants(),
    KeyObject: hostCrypto.KeyObject,
    generateKeyPairSync: refusedKeygen('generateKeyPairSync'),
    generateKeyPair: refusedKeygen('generateKeyPair'),
    generateKeySync: refusedKeygen('generateKeySync'),
  };

  likeHostAll(webcrypto, hostCrypto.webcrypto);
  likeHostAll(subtle, hostCrypto.webcrypto.subtle);
  likeHostAll(nodeCrypto, hostCrypto);
  return { webcrypto: harden(webcrypto), nodeCrypto: harden(nodeCrypto) };
};

const { apply } = Reflect;
const { isAnyArrayBuffer } = types;

/** Where each Web Crypto operation takes the data it reads: recorded as its fingerprint (bufferSource). */
const DATA_ARGUMENTS: Partial<Record<string, number[]>> = { digest: [1], encrypt: [2], decrypt: [2], sign: [2], verify: [2, 3], unwrapKey: [1] };
/** Where each takes algorithm parameters, whose BufferSource members are recorded as their fingerprints too. */
const ALGORITHM_ARGUMENTS: Partial<Record<string, number[]>> = { encrypt: [0], decrypt: [0], sign: [0], verify: [0], deriveBits: [0], deriveKey: [0, 2], wrapKey: [3], unwrapKey: [3, 4] };

/**
 * A BufferSource a Web Crypto operation reads, copied (its bytes, not a
 * view of a larger buffer), with the bytes whose fingerprint the log records in its place;
 * anything else is passed on as it is, for the host to refuse as Node does
 * (the log then records its type).
 */
const bufferSource = (data: unknown): { data: unknown; bytes?: Uint8Array } => {
  const bytes = ArrayBuffer.isView(data) ? new Uint8Array(byteView(data)) : data instanceof ArrayBuffer ? new Uint8Array(data.slice(0)) : undefined;
  return bytes ? { data: bytes, bytes } : { data };
};

/**
 * The key data of `crypto.subtle.importKey`, copied (bytes, or a JWK as
 * JSON has it), with the bytes whose fingerprint the log records in its place: of the
 * bytes, or of the JWK's JSON text. Anything else is passed on as it is,
 * for the host to refuse as Node does.
 */
const keyMaterial = (data: unknown): { data: unknown; bytes?: Uint8Array } => {
  let copy: unknown = data;
  let bytes: Uint8Array | undefined;
  if (ArrayBuffer.isView(data)) bytes = copy = new Uint8Array(byteView(data));
  else if (data instanceof ArrayBuffer) bytes = copy = new Uint8Array(data.slice(0));
  else if (typeof data === 'object' && data !== null) {
    const text = JSON.stringify(data);
    copy = JSON.parse(text);
    bytes = Buffer.from(text);
  }
  return bytes ? { data: copy, bytes } : { data: copy };
};

/**
 * The callback form of a one-shot crypto function (`sign`, `verify`):
 * Node runs it on its thread pool and calls back whenever that finishes,
 * which no log entry places (a restore diverged; the recorded `sign`
 * ignored its callback, which never came). Here the work is done at once,
 * `run(args)`, and the callback called in a microtask with
 * `(null, result)`, as the random functions do. Errors are thrown at once,
 * as Node throws its validation errors (an error Node would pass to the
 * callback, from OpenSSL, is thrown too). A callback that is not a
 * function goes to `host` as it is, which throws Node's own
 * ERR_INVALID_ARG_TYPE before it starts anything. `at` is the callback's
 * position.
 */
const withCallback = <R>(args: unknown[], at: number, run: (args: unknown[]) => R, host: (args: unknown[]) => unknown): R | undefined => {
  if (args.length <= at || args[at] === undefined) return run(args.slice(0, at));
  const callback = args[at];
  if (typeof callback !== 'function') {
    host(args);
    throw new TypeError('The "callback" argument must be of type function'); // not reached: the host threw
  }
  const result = run(args.slice(0, at));
  queueMicrotask(() => (callback as (error: null, value: R) => void)(null, result));
  return undefined;
};

/**
 * An asynchronous one-shot key derivation (`pbkdf2`, `scrypt`, `hkdf`): Node
 * runs it on its thread pool and calls back later (withCallback says why
 * that cannot be placed). Here `sync`, the host's synchronous twin, derives
 * the key at once with Node's own checks and errors, and the callback, at
 * position `callbackAt(args)`, is called in a microtask with `(null, key)`
 * (a Buffer; an ArrayBuffer from hkdf, as Node's). Without a function
 * there, the host's own `async` call throws Node's error before it starts
 * anything. Pure: nothing is recorded.
 */
const derivation =
  (async: (...args: unknown[]) => unknown, sync: (...args: unknown[]) => unknown, callbackAt: (args: unknown[]) => number) =>
  (...args: unknown[]): void => {
    const at = callbackAt(args);
    const callback = args[at];
    if (typeof callback !== 'function') {
      apply(async, hostCrypto, args);
      throw new TypeError('The "callback" argument must be of type function'); // not reached: the host threw
    }
    const key = apply(sync, hostCrypto, args.slice(0, at));
    queueMicrotask(() => (callback as (error: null, value: unknown) => void)(null, key));
  };

/** derivation(...), named and as long as Node's function (`crypto.pbkdf2.length` is 6). */
const namedDerivation = (async: (...args: unknown[]) => unknown, sync: (...args: unknown[]) => unknown, callbackAt: (args: unknown[]) => number): ((...args: unknown[]) => void) => {
  const fn = derivation(async, sync, callbackAt);
  Object.defineProperty(fn, 'name', { value: async.name, configurable: true });
  Object.defineProperty(fn, 'length', { value: async.length, configurable: true });
  return fn;
};

const HASH_METHODS = ['update', 'digest', 'copy'] as const;
const CIPHER_METHODS = ['update', 'final', 'setAutoPadding', 'setAAD', 'getAuthTag', 'setAuthTag'] as const;
type FacadeKind = 'Hash' | 'Hmac' | 'Cipheriv' | 'Decipheriv';

/**
 * A service's view of a host Hash, Hmac, Cipheriv or Decipheriv: an object
 * of its own whose methods call the host object's. The host object is
 * never handed over: its prototype chain (LazyTransform, the host's stream
 * classes, EventEmitter) is the host's own, and a service that could reach
 * it could change hashing, or every stream and emitter, for the host.
 * Methods that return the host object return the facade (chaining works);
 * `copy()` returns a new facade.
 *
 * As Node's, each is a lazy Transform stream (lib/internal/streams/lazy_transform.js):
 * of the service's own `stream` module, set up only when a stream property is
 * first used, so that createHash(...).update(x).digest() costs no stream. A
 * Hash written to pushes its digest when it ends (pipeline(file, hash),
 * hash.end(); hash.read()); a Cipher pushes what update() and final() give.
 */
const makeFacades = (loadTransform: () => (new (options?: object) => object) | undefined) => {
  const hosts = new WeakMap<object, object>();
  /** The raw digest of a Hash or Hmac whose digest() was called. */
  const digests = new WeakMap<object, Buffer>();
  /** The raw digest a Hash's stream side pushed when it ended (its digest() not called yet). */
  const flushed = new WeakMap<object, Buffer>();
  const hostOf = (facade: object, what: string): Record<string, (...a: unknown[]) => unknown> => {
    const host = hosts.get(facade);
    if (!host) throw new TypeError(`${what} called on an object that is not a Hash or Cipher of this service`);
    return host as Record<string, (...a: unknown[]) => unknown>;
  };
  const prototypes = new Map<FacadeKind, object>();
  const prototypeOf = (kind: FacadeKind): object => {
    let proto = prototypes.get(kind);
    if (proto) return proto;
    const Transform = loadTransform() as unknown as ((this: object, options?: object) => void) & { prototype: object } | undefined;
    // LazyTransform: the stream state is made on its first read (Node's own getters and setters).
    const lazy: object = Object.create(Transform ? Transform.prototype : Object.prototype);
    if (Transform) {
      for (const name of ['_readableState', '_writableState', '_transformState']) {
        Object.defineProperty(lazy, name, {
          get(this: Record<string, unknown>) {
            apply(Transform, this, [this._options]);
            (this._writableState as { decodeStrings: boolean }).decodeStrings = false;
            return this[name];
          },
          set(this: object, value: unknown) {
            Object.defineProperty(this, name, { value, enumerable: true, configurable: true, writable: true });
          },
          enumerable: true,
          configurable: true,
        });
      }
    }
    proto = Object.create(lazy) as object;
    const methods: Record<string, unknown> = {};
    for (const method of kind === 'Hash' || kind === 'Hmac' ? HASH_METHODS : CIPHER_METHODS) {
      methods[method] = function (this: object, ...args: unknown[]) {
        const host = hostOf(this, `${kind}.${method}()`);
        if (method === 'digest') {
          // A Hash whose stream ended (_flush) gives the digest its native handle gave the stream, once: Node's
          // _flush asks the handle, not digest(), so digest() still works after pipeline(source, hash) (found by
          // the fidelity review). An Hmac's handle gives nothing the second time, as the host's does.
          const streamed = kind === 'Hash' && !digests.has(this) ? flushed.get(this) : undefined;
          const raw = streamed ?? (apply(host.digest, host, []) as Buffer);
          digests.set(this, raw);
          // As Node's digest(encoding): a falsy one or one Buffer does not know ('buffer') gives the bytes.
          const encoding = args[0] ? String(args[0]) : '';
          return encoding && encoding !== 'buffer' && Buffer.isEncoding(encoding) ? raw.toString(encoding) : raw;
        }
        const result = apply(host[method], host, args);
        if (result === host) return this;
        if (method === 'copy' && typeof result === 'object' && result !== null) return make(kind, result);
        return result;
      };
    }
    if (Transform) {
      // As Node's Hash and Cipher (lib/internal/crypto/hash.js, cipher.js).
      if (kind === 'Hash' || kind === 'Hmac') {
        methods._transform = function (this: object, chunk: unknown, encoding: unknown, callback: (error?: unknown) => void) {
          const host = hostOf(this, `${kind}.write()`);
          try {
            apply(host.update, host, [chunk, encoding]);
          } catch (error) {
            // Node's _transform updates the native handle, which takes a write after digest() without a word.
            if ((error as { code?: unknown }).code !== 'ERR_CRYPTO_HASH_FINALIZED') throw error;
          }
          callback();
        };
        methods._flush = function (this: { push(chunk: unknown): boolean }, callback: (error?: unknown) => void) {
          const host = hostOf(this, `${kind}.end()`);
          let raw = digests.get(this);
          if (raw === undefined) {
            raw = apply(host.digest, host, []) as Buffer;
            flushed.set(this, raw);
          }
          this.push(raw);
          callback();
        };
      } else {
        methods._transform = function (this: { push(chunk: unknown): boolean }, chunk: unknown, encoding: unknown, callback: (error?: unknown) => void) {
          const host = hostOf(this, `${kind}.write()`);
          this.push(apply(host.update, host, [chunk, encoding]));
          callback();
        };
        methods._flush = function (this: { push(chunk: unknown): boolean }, callback: (error?: unknown) => void) {
          const host = hostOf(this, `${kind}.end()`);
          try {
            this.push(apply(host.final, host, []));
          } catch (error) {
            callback(error);
            return;
          }
          callback();
        };
      }
    }
    for (const [name, fn] of Object.entries(methods)) Object.defineProperty(proto, name, { value: fn, writable: true, enumerable: false, configurable: true });
    prototypes.set(kind, proto);
    return proto;
  };
  const make = (kind: FacadeKind, host: object): object => {
    const facade = Object.create(prototypeOf(kind)) as Record<string, unknown>;
    // LazyTransform's own options (Object.keys(hash) is ['_options'] in Node): the stream is made with them.
    facade._options = undefined;
    hosts.set(facade, host);
    return facade;
  };
  return { make };
};

let constantsCopy: Readonly<Record<string, unknown>> | undefined;

/**
 * `crypto.constants` as services see it: a frozen copy of Node's, every
 * value read once. Not Node's object itself: its `defaultCipherList` is an
 * accessor that redefines itself when first read, which throws ('Cannot
 * redefine property') once the object is frozen, for services and for the
 * host alike.
 */
export const cryptoConstants = (): Readonly<Record<string, unknown>> => {
  if (!constantsCopy) {
    const host = hostCrypto.constants as unknown as Record<string, unknown>;
    const copy: Record<string, unknown> = {};
    for (const key of Object.keys(host)) copy[key] = host[key];
    constantsCopy = Object.freeze(copy);
  }
  return constantsCopy;
};

let keyClassesHardened = false;

/**
 * KeyObject and its subclasses reach services (createPublicKey and the
 * like return them): their prototypes are frozen once, so a service cannot
 * change keys for the host. Sample keys made here, on the host, only serve
 * to reach the subclasses' prototypes. Done when a service first makes a
 * key (keyMaker): nothing else hands a service a KeyObject (CryptoKeys of
 * crypto.subtle cross by reference, key generation is refused), and most
 * services never make one (1 to 2 ms of a restore).
 */
const hardenKeyClasses = (): void => {
  if (keyClassesHardened) return;
  keyClassesHardened = true;
  // The classes' prototypes and what their instances share: the native KeyObjectHandle's prototype
  // (its init() sees every key the host makes) among them (host-internals.ts).
  hardenSharedInternals([() => hostCrypto.createSecretKey(Buffer.alloc(16)), () => hostCrypto.generateKeyPairSync('ed25519')]);
};

/** Node's createPublicKey, createPrivateKey or createSecretKey (its name and length), the key classes hardened first. */
const keyMaker = (name: 'createPublicKey' | 'createPrivateKey' | 'createSecretKey'): ((...args: unknown[]) => unknown) => {
  const host = hostCrypto[name] as (...args: unknown[]) => unknown;
  const maker = {
    [name](...args: unknown[]): unknown {
      hardenKeyClasses();
      return apply(host, hostCrypto, args);
    },
  }[name];
  Object.defineProperty(maker, 'length', { value: host.length });
  return maker;
};
