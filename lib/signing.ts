/**
 * Signed snapshots. `snapshot build --sign key.pem` signs the bytes of
 * `manifest.json` with an ed25519 private key and writes the signature
 * beside it, in `manifest.sig`:
 *
 *     { "format": "membrane-snapshot/signature", "version": 1,
 *       "algorithm": "ed25519", "keyId": "sha256:<hex>", "signature": "<base64>" }
 *
 * The signed message is `membrane-snapshot/manifest/v1\n` followed by the
 * manifest's bytes. The manifest names the sha256 of every file restore
 * reads (archives, logs) and holds everything restore acts on (grants,
 * references, reach and secrets policies, the seal key id), so a valid
 * signature covers the whole snapshot. `keyId` is the sha256 of the public
 * key in DER (SubjectPublicKeyInfo) form.
 *
 * Keys are PEM files, as `openssl genpkey -algorithm ed25519` (private) and
 * `openssl pkey -in key.pem -pubout` (public) write them. A trusted-keys
 * file is one or more public keys, PEM blocks one after another.
 */
import fs from 'node:fs';
import { KeyObject, createHash, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { SnapshotError } from '../replay-log/index.js';
import { checkStringArgument } from '../replay-log/errors.js';
import { keepFromServices } from '../compartments/reach.js';

export const SIGNATURE_FILE = 'manifest.sig';
/** Upper bound of `manifest.sig` (bytes): the record is about 250; anything larger is refused unread. */
export const MAX_SIGNATURE_BYTES = 64 * 1024;
const SIGNATURE_FORMAT = 'membrane-snapshot/signature';
const DOMAIN = Buffer.from('membrane-snapshot/manifest/v1\n');

/** The content of `manifest.sig`. */
export interface SignatureRecord {
  readonly format: typeof SIGNATURE_FORMAT;
  readonly version: 1;
  readonly algorithm: 'ed25519';
  /** `sha256:<hex>` of the signer's public key (DER). */
  readonly keyId: string;
  /** base64 of the 64-byte ed25519 signature. */
  readonly signature: string;
}

/** A private key ready to sign manifests. */
export interface SigningKey {
  readonly keyId: string;
  readonly key: KeyObject;
}

/** A public key trusted to sign snapshots. */
export interface TrustedKey {
  readonly keyId: string;
  readonly key: KeyObject;
  /** The file it came from, for messages. */
  readonly source: string;
}

/**
 * A key's id as the manifest's signature names it: `sha256:` and the hex
 * sha256 of its public half in SPKI DER. Throws USAGE for anything but a
 * public or private KeyObject.
 */
export const publicKeyId = (key: KeyObject): string => {
  if (!(key instanceof KeyObject) || key.type === 'secret') throw new SnapshotError('USAGE', 'publicKeyId() takes a public or private KeyObject (node:crypto).');
  const publicKey = key.type === 'public' ? key : createPublicKey(key);
  return `sha256:${createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex')}`;
};

const readKeyFile = (file: string, what: string): string => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (cause) {
    throw new SnapshotError('KEY_INVALID', `the ${what} ${file} cannot be read: ${(cause as Error).message}.`, { cause, details: { file } });
  }
};

/** Load an ed25519 private key (PEM). Throws KEY_INVALID for a missing file or another kind of key, USAGE for a `file` that is not a non-empty string (a number is never read as a descriptor). */
export const loadSigningKey = (file: string): SigningKey => {
  checkStringArgument(file, 'loadSigningKey()', 'the key file');
  const text = readKeyFile(file, 'signing key');
  keepFromServices(file);
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch (cause) {
    const encrypted = /passphrase/i.test((cause as Error).message) || /ENCRYPTED/.test(text);
    throw new SnapshotError(
      'KEY_INVALID',
      encrypted
        ? `${file} is an encrypted private key; snapshot signs with an unencrypted PEM key (keep it readable by its owner only): \`openssl pkey -in ${file} -out plain.pem\`.`
        : `${file} is not a PEM private key: make one with \`openssl genpkey -algorithm ed25519 -out ${file}\`.`,
      { cause, details: { file } },
    );
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new SnapshotError('KEY_INVALID', `${file} is a ${String(key.asymmetricKeyType)} key; snapshots are signed with ed25519 keys (\`openssl genpkey -algorithm ed25519\`).`, { details: { file } });
  }
  return { keyId: publicKeyId(createPublicKey(key)), key };
};

/**
 * Load trusted public keys: each file holds one or more PEM public keys
 * (a private key is accepted too, and only its public half is used).
 * Throws KEY_INVALID when a file holds no ed25519 key, USAGE for `files`
 * that are not an array of one or more non-empty strings.
 */
export const loadTrustedKeys = (files: readonly string[]): TrustedKey[] => {
  if (!Array.isArray(files) || files.length === 0) throw new SnapshotError('USAGE', 'loadTrustedKeys() takes an array of one or more key files.');
  for (const file of files) checkStringArgument(file, 'loadTrustedKeys()', 'each key file');
  const keys: TrustedKey[] = [];
  for (const file of files) {
    const text = readKeyFile(file, 'trusted key file');
    const blocks = text.match(/-----BEGIN ([A-Z ]+)-----[\s\S]+?-----END \1-----/g) ?? [];
    let found = 0;
    for (const block of blocks) {
      let key: KeyObject;
      try {
        key = /PRIVATE KEY/.test(block) ? createPublicKey(createPrivateKey(block)) : createPublicKey(block);
      } catch (cause) {
        throw new SnapshotError('KEY_INVALID', `${file} holds a PEM block that is not a key: ${(cause as Error).message}.`, { cause, details: { file } });
      }
      if (key.asymmetricKeyType !== 'ed25519') {
        throw new SnapshotError('KEY_INVALID', `${file} holds a ${String(key.asymmetricKeyType)} key; snapshots are signed with ed25519 keys.`, { details: { file } });
      }
      keys.push({ keyId: publicKeyId(key), key, source: file });
      found += 1;
    }
    if (found === 0) {
      throw new SnapshotError('KEY_INVALID', `${file} holds no PEM public key: export one with \`openssl pkey -in key.pem -pubout -out pub.pem\`.`, { details: { file } });
    }
  }
  return keys;
};

/** The signature record of `manifestBytes` (what `manifest.sig` holds). */
export const signManifest = (manifestBytes: Uint8Array, signer: SigningKey): SignatureRecord => ({
  format: SIGNATURE_FORMAT,
  version: 1,
  algorithm: 'ed25519',
  keyId: signer.keyId,
  signature: sign(null, Buffer.concat([DOMAIN, manifestBytes]), signer.key).toString('base64'),
});

/**
 * Check that `signatureText` (the content of manifest.sig, or undefined when
 * the file is absent) is a valid signature of `manifestBytes` by one of
 * `trusted`. Returns the key that signed. Throws SIGNATURE_MISSING or
 * SIGNATURE_INVALID (malformed, altered, or signed by a key not trusted).
 */
export const verifyManifestSignature = (manifestBytes: Uint8Array, signatureText: string | undefined, trusted: readonly TrustedKey[], dir: string): TrustedKey => {
  if (signatureText === undefined) {
    throw new SnapshotError('SIGNATURE_MISSING', `${dir} is not signed (no ${SIGNATURE_FILE}), and trusted keys were given: refusing to restore it. Build it with \`snapshot build --sign <key.pem>\`.`, {
      details: { dir },
    });
  }
  const invalid = (why: string, details: Record<string, unknown> = {}) =>
    new SnapshotError('SIGNATURE_INVALID', `the signature of ${dir} ${why}; nothing was loaded. Rebuild and sign the snapshot, or copy it again from its source.`, { details: { dir, ...details } });
  let record: Partial<SignatureRecord>;
  try {
    record = JSON.parse(signatureText) as Partial<SignatureRecord>;
  } catch {
    throw invalid(`(${SIGNATURE_FILE}) is not valid JSON`);
  }
  if (record?.format !== SIGNATURE_FORMAT || record.version !== 1 || record.algorithm !== 'ed25519' || typeof record.signature !== 'string' || typeof record.keyId !== 'string') {
    throw invalid(`(${SIGNATURE_FILE}) is not a membrane-snapshot ed25519 signature`);
  }
  const signature = Buffer.from(record.signature, 'base64');
  const message = Buffer.concat([DOMAIN, manifestBytes]);
  for (const key of trusted) {
    if (signature.byteLength === 64 && verify(null, message, key.key, signature)) return key;
  }
  const known = trusted.some(k => k.keyId === record.keyId);
  throw invalid(
    known
      ? `does not match its manifest: manifest.json (or ${SIGNATURE_FILE}) was changed after signing`
      : `is by key ${record.keyId}, which is not among the trusted keys (${trusted.map(k => k.keyId).join(', ')})`,
    { keyId: record.keyId },
  );
};
