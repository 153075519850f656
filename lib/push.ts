/**
 * Snapshots in a JetStream object store, so a target host needs only the
 * library and a NATS URL.
 *
 * Bucket `msnap-<app>` holds:
 *
 * | object              | what                                                  |
 * | ------------------- | ----------------------------------------------------- |
 * | `sha256-<hex>`      | an archive or a replay log, named by its content hash |
 * | `manifest.json`     | the manifest of the last push, its very bytes         |
 * | `manifest.sig`      | its signature (signing.ts), when the snapshot is signed |
 *
 * The manifest is stored byte for byte as the build wrote it, so its
 * signature still verifies; the app is the bucket's name, not a field.
 *
 * `pushSnapshot` stores what is not there yet; `pullSnapshot` treats the
 * store as untrusted input, as restore treats a directory: with trusted
 * keys the manifest's signature is checked on the bytes fetched before
 * they are parsed (SIGNATURE_MISSING, SIGNATURE_INVALID), then only the
 * files of the services asked for are fetched and each hash is checked
 * (INTEGRITY_MISMATCH). No object is read past its bound (the manifest's
 * and signature's limits, each file's size as the manifest gives it), and
 * links to other objects are refused, so a store cannot make a host hold
 * more than the snapshot it names. It writes an ordinary snapshot
 * directory that restore reads (and checks again).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { SnapshotError } from '../replay-log/index.js';
import { DIR_MODE, FILE_MODE, readInsideSnapshot, readManifest, readVerified, sha256, type Manifest } from './manifest.js';
import { MAX_SIGNATURE_BYTES, SIGNATURE_FILE, verifyManifestSignature, type TrustedKey } from './signing.js';
import { MAX_MANIFEST_BYTES } from './manifest-shape.js';
import { checkAppName } from './runtime.js';

/** Object store bucket of an app. */
export const bucketOf = (app: string): string => `msnap-${app}`;

const openStore = async (nc: NatsConnection, app: string, create: boolean): Promise<ObjectStore> => {
  const objm = new Objm(nc);
  try {
    return create ? await objm.create(bucketOf(app), { description: `membrane-snapshot app ${app}` }) : await objm.open(bucketOf(app));
  } catch (cause) {
    const message = (cause as Error).message;
    throw new SnapshotError(
      create ? 'TRANSPORT_FAILED' : 'SNAPSHOT_INVALID',
      create
        ? `cannot create the object store ${bucketOf(app)}: ${message}. Is JetStream enabled on the server (nats-server -js)?`
        : `app "${app}" has no snapshot on this NATS server (object store ${bucketOf(app)}: ${message}). Push one: snapshot push <dir> --nats <url> --app ${app}.`,
      { cause },
    );
  }
};

export interface PushResult {
  readonly app: string;
  /** Objects written by this push, and objects already present (same content). */
  readonly stored: number;
  readonly present: number;
  readonly bytes: number;
}

/** Store a snapshot directory's manifest, archives and logs (hashes checked before anything is sent). */
export const pushSnapshot = async (nc: NatsConnection, dir: string, app: string): Promise<PushResult> => {
  const manifest = readManifest(dir);
  const manifestBytes = readInsideSnapshot(dir, path.join(dir, 'manifest.json'), 'the manifest');
  const sigFile = path.join(dir, SIGNATURE_FILE);
  const signature = fs.existsSync(sigFile) ? readInsideSnapshot(dir, sigFile, 'the signature') : undefined;
  const files: Array<{ sha: string; bytes: Uint8Array }> = [];
  for (const s of Object.values(manifest.services)) {
    files.push({ sha: s.archiveSha256, bytes: readVerified(dir, s.archive, s.archiveSha256, `the archive of service "${s.name}"`, s.archiveBytes) });
    files.push({ sha: s.logSha256, bytes: readVerified(dir, s.log, s.logSha256, `the replay log of service "${s.name}"`, s.logBytes) });
  }
  const store = await openStore(nc, app, true);
  let stored = 0;
  let present = 0;
  let bytes = 0;
  for (const file of files) {
    const name = `sha256-${file.sha}`;
    const info = await store.info(name);
    if (info && !info.deleted && info.size === file.bytes.byteLength) {
      present += 1;
      continue;
    }
    await store.putBlob({ name }, file.bytes);
    stored += 1;
    bytes += file.bytes.byteLength;
  }
  // The signature goes first and a stale one is removed: a host pulling in
  // between sees a manifest and signature that do not match, and refuses it.
  if (signature) {
    await store.putBlob({ name: SIGNATURE_FILE }, signature);
    bytes += signature.byteLength;
  } else if ((await store.info(SIGNATURE_FILE))?.deleted === false) {
    await store.delete(SIGNATURE_FILE);
  }
  await store.putBlob({ name: 'manifest.json' }, manifestBytes);
  return { app, stored: stored + 1 + (signature ? 1 : 0), present, bytes: bytes + manifestBytes.byteLength };
};

/** `nats://host:port/app` split into a server URL and an app name; undefined for anything else. */
export const parseNatsSource = (source: string): { server: string; app: string } | undefined => {
  const match = /^(nats|tls):\/\/([^/]+)\/([^/]+)\/?$/.exec(source);
  return match ? { server: `${match[1]}://${match[2]}`, app: checkAppName(match[3]) } : undefined;
};

export interface PullOptions {
  /** Services whose files are fetched (default: all). */
  readonly services?: readonly string[];
  /**
   * Trusted ed25519 public keys (signing.ts `loadTrustedKeys`): when given,
   * the manifest must be signed by one of them, checked before it is parsed
   * and before any other object is fetched.
   */
  readonly trusted?: readonly TrustedKey[];
  /** How messages name the source (default `nats:<bucket>`), e.g. `nats://host:port/app`. */
  readonly source?: string;
  /**
   * How long (ms) an object may make no progress (its lookup, then each
   * chunk) before the pull gives up with SNAPSHOT_INVALID (default 30,000):
   * a store whose metadata names chunks that never come must not hang the host.
   */
  readonly idleMs?: number;
}

/**
 * Fetch the manifest and the files of the services asked for into a fresh
 * temporary directory and return it. Throws SNAPSHOT_INVALID when the app
 * or a file is missing, INTEGRITY_MISMATCH when a hash differs, and with
 * trusted keys SIGNATURE_MISSING or SIGNATURE_INVALID, as restore of a
 * directory does. Nothing is left on disk when it throws.
 */
export const pullSnapshot = async (nc: NatsConnection, app: string, options: PullOptions = {}): Promise<{ dir: string; manifest: Manifest }> => {
  const source = options.source ?? `nats:${bucketOf(app)}`;
  const store = await openStore(nc, app, false);
  const idleMs = options.idleMs ?? 30_000;
  const manifestBytes = await readObject(store, app, 'manifest.json', 'the manifest', { maxBytes: MAX_MANIFEST_BYTES }, idleMs);
  if (!manifestBytes) throw new SnapshotError('SNAPSHOT_INVALID', `app "${app}" has no manifest in ${bucketOf(app)}; push the snapshot again.`);
  const signature = await readObject(store, app, SIGNATURE_FILE, 'the signature', { maxBytes: MAX_SIGNATURE_BYTES }, idleMs);
  if (options.trusted) verifyManifestSignature(manifestBytes, signature ? Buffer.from(signature).toString('utf8') : undefined, options.trusted, source);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `msnap-pull-${app}-`));
  try {
    return await pullInto(store, dir, app, manifestBytes, signature, options.services ?? [], idleMs);
  } catch (error) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw error;
  }
};

const pullInto = async (
  store: ObjectStore,
  dir: string,
  app: string,
  manifestBytes: Uint8Array,
  signature: Uint8Array | null,
  services: readonly string[],
  idleMs: number,
): Promise<{ dir: string; manifest: Manifest }> => {
  fs.writeFileSync(path.join(dir, 'manifest.json'), manifestBytes, { mode: FILE_MODE });
  if (signature) fs.writeFileSync(path.join(dir, SIGNATURE_FILE), signature, { mode: FILE_MODE });
  const manifest = readManifest(dir);
  const names = services.length ? services : Object.keys(manifest.services);
  for (const name of names) {
    const s = Object.hasOwn(manifest.services, name) ? manifest.services[name] : undefined;
    if (!s) throw new SnapshotError('USAGE', `app "${app}" has no service "${name}"; it has: ${Object.keys(manifest.services).join(', ')}`);
    for (const [relative, sha, size, what] of [
      [s.archive, s.archiveSha256, s.archiveBytes, `the archive of service "${name}"`],
      [s.log, s.logSha256, s.logBytes, `the replay log of service "${name}"`],
    ] as const) {
      const file = path.resolve(dir, relative);
      if (!file.startsWith(dir + path.sep) || !/^[0-9a-f]{64}$/.test(sha)) throw new SnapshotError('SNAPSHOT_INVALID', `the manifest in ${bucketOf(app)} names ${relative} with hash ${sha}: refused`);
      const bytes = await readObject(store, app, `sha256-${sha}`, what, { size }, idleMs);
      if (!bytes) throw new SnapshotError('SNAPSHOT_INVALID', `${what} (sha256-${sha}) is missing from ${bucketOf(app)}; push the snapshot again.`);
      const actual = sha256(bytes);
      if (actual !== sha) {
        throw new SnapshotError('INTEGRITY_MISMATCH', `${what} in ${bucketOf(app)} has sha256 ${actual}, the manifest says ${sha}: the store was changed; push the snapshot again.`, {
          details: { expected: sha, actual },
        });
      }
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: DIR_MODE });
      fs.writeFileSync(file, bytes, { mode: FILE_MODE });
    }
  }
  return { dir, manifest };
};

/**
 * `promise`, or a rejection with `onTimeout()` when it has not settled
 * within `ms`. The timer never keeps the process alive.
 */
const within = <T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
    timer.unref();
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
};

/**
 * One object of the store, read no further than its bound: `maxBytes`, or
 * exactly `size` bytes as the manifest gives it. Null when the object is
 * absent or deleted. Throws SNAPSHOT_INVALID for a link (a link may name
 * another bucket, or itself, and the store's getter follows links without
 * end), for an object whose metadata gives another size or that the store
 * cannot describe, for one whose chunks run past the bound (the metadata
 * can lie) or stop coming for `idleMs`; INTEGRITY_MISMATCH when the store's
 * own digest of the chunks fails. The read stops there.
 */
const readObject = async (
  store: ObjectStore,
  app: string,
  name: string,
  what: string,
  bound: { maxBytes: number } | { size: number },
  idleMs: number,
): Promise<Uint8Array | null> => {
  const refused = (why: string, code: 'SNAPSHOT_INVALID' | 'INTEGRITY_MISMATCH' = 'SNAPSHOT_INVALID', cause?: unknown) =>
    new SnapshotError(code, `${what} (${name}) in ${bucketOf(app)} ${why}: refused, nothing was restored. Push the snapshot again.`, { cause, details: { object: name, ...bound } });
  const stalled = () => refused(`made no progress for ${idleMs} ms`);
  const limit = 'size' in bound ? bound.size : bound.maxBytes;
  let info: Awaited<ReturnType<ObjectStore['info']>>;
  let result: Awaited<ReturnType<ObjectStore['get']>>;
  try {
    info = await within(store.info(name), idleMs, stalled);
    if (!info || info.deleted) return null;
    if (info.options?.link) throw refused('is a link to another object');
    if ('size' in bound ? info.size !== bound.size : info.size > bound.maxBytes) throw refused(`has ${info.size} bytes where ${'size' in bound ? `the manifest gives ${bound.size}` : `at most ${bound.maxBytes} are read`}`);
    // The lookup again (the store's getter reads the metadata anew, and would follow a link swapped in meanwhile): bounded too.
    result = await within(store.get(name), idleMs, stalled);
  } catch (error) {
    throw error instanceof SnapshotError ? error : refused(`cannot be read (${(error as Error).message})`, 'SNAPSHOT_INVALID', error);
  }
  if (!result) return null;
  const reader = result.data.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await within(reader.read(), idleMs, stalled);
      if (done) break;
      total += value.byteLength;
      if (total > limit) throw refused(`runs past ${limit} bytes`);
      chunks.push(value);
    }
    const failure = await within(result.error, idleMs, stalled);
    if (failure) throw failure;
  } catch (error) {
    void reader.cancel().catch(() => {});
    if (error instanceof SnapshotError) throw error;
    const message = (error as Error).message;
    throw /digests do not match|corrupt/i.test(message) ? refused(`does not match its digest (${message.split('\n')[0]})`, 'INTEGRITY_MISMATCH', error) : refused(`cannot be read (${message})`, 'SNAPSHOT_INVALID', error);
  }
  if (total !== info.size) throw refused(`has ${total} bytes where its metadata gives ${info.size}`);
  return Buffer.concat(chunks, total);
};
