/**
 * The snapshot manifest: `<dir>/manifest.json`. It names every service, the
 * sha256 of its archive and log (restore refuses a file whose hash differs),
 * and what the service needs from its host.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { SnapshotError } from '../replay-log/index.js';
import { checkStringArgument, editDistance } from '../replay-log/errors.js';
import type { ServiceReference } from '../membrane/index.js';
import type { GrantShape, ReachPolicy, RuntimeDeclaration, SecretsPolicy } from '../compartments/index.js';
import { MAX_SIGNATURE_BYTES, SIGNATURE_FILE, signManifest, verifyManifestSignature, type SigningKey, type TrustedKey } from './signing.js';
import { MAX_MANIFEST_BYTES, checkManifest, isLibraryVersion, kind, shown } from './manifest-shape.js';

/** The most one read of a snapshot file asks for, in bytes (1 GiB): Node refuses a read length past 2^31 - 1. */
const READ_CHUNK_BYTES = 2 ** 30;

export const MANIFEST_FORMAT = 'membrane-snapshot';
export const MANIFEST_VERSION = 1;

export interface ServiceManifest {
  readonly name: string;
  /** The entry module at build time (for messages; restore does not read it). */
  readonly entry: string;
  /** Where `import.meta.url` of the entry package pointed at build time. */
  readonly entryRoot: string;
  /**
   * Where each dependency's package was at build time (file URLs, by archive
   * compartment name): its `import.meta.url`, `__filename` and `__dirname`.
   * Absent in snapshots made before it was recorded.
   */
  readonly packageRoots?: Readonly<Record<string, string>>;
  readonly archive: string;
  readonly archiveSha256: string;
  readonly archiveBytes: number;
  readonly log: string;
  readonly logSha256: string;
  readonly logBytes: number;
  readonly events: number;
  /** Modules granted beyond the builtins, with their exports (re-bound by name on restore). */
  readonly granted: Readonly<Record<string, GrantShape>>;
  /** The service that imported this one at build time (nested services); absent for the build script's. */
  readonly parent?: string;
  /** This service's references to other services' exports (re-bound on restore). */
  readonly references: readonly ServiceReference[];
  /** Timers still pending when the build sealed (re-armed when live). */
  readonly pendingTimers: number;
  readonly buildMs: number;
  /** What the service declared with `runtime.declare()` at build time; absent if it declared nothing. */
  readonly runtime?: ServiceRuntime;
  /** What fetch and fs may reach, live (absent: everything). Paths are absolute. */
  readonly reach?: ReachPolicy;
  /** Which env names, headers and fetch hosts are secrets (defaults expanded); replay marks the same values. */
  readonly secrets?: SecretsPolicy;
  /** How many values were sealed in this service's log; restore needs the seal key when this is not 0. */
  readonly sealedValues?: number;
  /**
   * How many keyed fingerprints (seal.ts `fingerprint`: the data and keys of
   * crypto calls) this service's log holds; restore needs the seal key to
   * compare them when this is not 0. Absent: none.
   */
  readonly keyedFingerprints?: number;
}

/** A service's runtime declaration as the manifest keeps it. */
export interface ServiceRuntime extends RuntimeDeclaration {
  /**
   * The export id of the service's HTTP adapter (set with `http`): the
   * object the HTTP runtime delivers requests to, with the fetch handler.
   */
  readonly httpAdapter?: number;
}

/** The seal key the logs' sealed values were sealed with (never the key itself). */
export interface ManifestSeal {
  readonly cipher: 'aes-256-gcm-siv-hmac';
  /** `hmac-sha256:<hex>`, as replay-log's `sealKeyId(key)` computes it. */
  readonly keyId: string;
}

export interface Manifest {
  readonly format: typeof MANIFEST_FORMAT;
  readonly version: number;
  readonly libraryVersion: string;
  readonly createdAt: string;
  /** The Node version the build ran on (`process.version`, "v20.20.2"); absent in snapshots of earlier versions. */
  readonly node?: string;
  /** The app's name (subjects and object store bucket): the build project's package name, or --app. */
  readonly app?: string;
  readonly services: Readonly<Record<string, ServiceManifest>>;
  /** Present when the build had a seal key. */
  readonly seal?: ManifestSeal;
}

/** The sha256 of `bytes`, hex. */
export const sha256 = (bytes: Uint8Array): string => {
  const hash = createHash('sha256');
  // By chunks: Hash#update refuses more than 2 GiB at once ("data is too long"), which a manifest allows.
  for (let at = 0; at < bytes.byteLength; at += READ_CHUNK_BYTES) hash.update(bytes.subarray(at, at + READ_CHUNK_BYTES));
  return hash.digest('hex');
};

/** Snapshot files are readable by their owner only; directories are 0700. */
export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

/**
 * Write `<dir>/manifest.json` (mode 0600), and with `signer` its signature
 * `<dir>/manifest.sig` (signing.ts), each through a rename so that a reader
 * never sees half a file.
 */
export const writeManifest = (dir: string, manifest: Manifest, signer?: SigningKey): void => {
  const file = path.join(dir, 'manifest.json');
  const bytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  const sigFile = path.join(dir, SIGNATURE_FILE);
  if (signer) {
    fs.writeFileSync(`${sigFile}.tmp`, `${JSON.stringify(signManifest(bytes, signer), null, 2)}\n`, { mode: FILE_MODE });
    fs.renameSync(`${sigFile}.tmp`, sigFile);
  } else {
    fs.rmSync(sigFile, { force: true });
  }
  fs.writeFileSync(`${file}.tmp`, bytes, { mode: FILE_MODE });
  fs.renameSync(`${file}.tmp`, file);
};

/**
 * What a failed build's manifest (and signature) are renamed with in its
 * `<out>.partial` directory (session.ts: discard), when it failed after
 * sealing its logs: `manifest.json.failed-build`.
 */
export const FAILED_SUFFIX = '.failed-build';

/** Why `<dir>/manifest.json` cannot be read, and what to give instead. */
const missingManifestAdvice = (dir: string, file: string): string => {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(dir);
  } catch {
    stat = undefined;
  }
  // A file or a service's directory inside a snapshot (its replay.log, its archive.zip): the snapshot that holds it.
  const enclosing = enclosingSnapshot(dir);
  if (stat?.isFile()) {
    const inspect = /\.log$/.test(dir) ? ` To read this replay log, run \`snapshot inspect ${dir}\`.` : '';
    return enclosing === undefined
      ? `${dir} is a file; give the snapshot directory that holds manifest.json (${path.dirname(dir)}, if this is one of its files).${inspect}`
      : `${dir} is a file of the snapshot ${asGiven(dir, enclosing)}; give that directory.${inspect}`;
  }
  if (stat?.isDirectory() && /\.partial$/.test(path.resolve(dir))) {
    const base = path.resolve(dir).slice(0, -'.partial'.length);
    return `it is what a failed build to ${asGiven(dir, base)} recorded (${fs.existsSync(`${file}${FAILED_SUFFIX}`) ? 'sealed, but the build failed after' : 'as far as it got'}), kept to be read, not restored: read a service's log with \`snapshot inspect ${path.join(dir, '<service>', 'replay.log')}\`, fix the build script and run \`snapshot build <script> --out ${asGiven(dir, base)}\` again.`;
  }
  if (fs.existsSync(`${path.resolve(dir)}.partial`)) {
    return `the last build to ${dir} failed (its partial recording is in ${path.resolve(dir)}.partial). Fix the build script and run \`snapshot build <script> --out ${dir}\` again.`;
  }
  if (stat && enclosing !== undefined) return `${dir} is inside the snapshot ${asGiven(dir, enclosing)}; give that directory.`;
  const inside = stat ? snapshotsIn(dir) : [];
  const near = nearbySnapshots(dir);
  const meant = (inside.length > 0 ? ` Snapshots in it: ${inside.join(', ')}.` : '') + (near.length > 0 ? ` Snapshots next to it: ${near.join(', ')}.` : '');
  if (!stat) return `${dir} does not exist. Give the directory \`snapshot build\` wrote (build one with \`snapshot build <script> --out ${dir}\`).${meant}`;
  // An existing directory that no build wrote: building into it would be refused (session.ts), so that is not the advice.
  return `${file} is missing: no \`snapshot build\` wrote this directory. Give the directory it wrote, or build one into a new directory (\`snapshot build <script> --out <dir>\`).${meant}`;
};

/** `target` (absolute) as the user would write it next to `given`: relative when `given` was. */
const asGiven = (given: string, target: string): string => (path.isAbsolute(given) ? target : path.relative(process.cwd(), target) || '.');

/**
 * Whether `dir` holds a manifest.json that `snapshot build` wrote (it starts
 * with `"format": "membrane-snapshot"`): a package's own manifest.json, a web
 * app manifest or a Chrome extension's is no snapshot. Reads at most 512
 * bytes; never throws.
 */
const holdsSnapshot = (dir: string): boolean => {
  let fd: number | undefined;
  try {
    // Non-blocking, and a regular file only: a FIFO named manifest.json beside a wrong path hung the advice forever
    // (found by the adversarial review).
    fd = fs.openSync(path.join(dir, 'manifest.json'), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    if (!fs.fstatSync(fd).isFile()) return false;
    const head = Buffer.alloc(512);
    const read = fs.readSync(fd, head, 0, head.length, 0);
    return /^\s*\{\s*"format"\s*:\s*"membrane-snapshot"/.test(head.subarray(0, read).toString('utf8'));
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
};

/** The nearest directory above `dir` (at most four levels) that holds a snapshot's manifest.json: the snapshot `dir` is part of. */
const enclosingSnapshot = (dir: string): string | undefined => {
  let current = path.resolve(dir);
  for (let level = 0; level < 4; level += 1) {
    const parent = path.dirname(current);
    if (parent === current) return undefined;
    current = parent;
    if (holdsSnapshot(current)) return current;
  }
  return undefined;
};

/** Snapshot directories directly inside `dir` (a project whose build wrote `--out snap`): at most three, from its first 200 entries (holdsSnapshot). */
const snapshotsIn = (dir: string): string[] => {
  let names: string[];
  try {
    names = fs.readdirSync(dir).slice(0, 200);
  } catch {
    return [];
  }
  return names
    .filter(name => holdsSnapshot(path.join(dir, name)))
    .sort()
    .slice(0, 3)
    .map(name => path.join(dir, name));
};

/**
 * Snapshot directories (holdsSnapshot) beside `dir`, the names
 * closest to its first (a typo: `snapshto` for `snapshot`); at most three,
 * from the first 200 entries of its parent. Empty when there is none or the
 * parent cannot be read.
 */
const nearbySnapshots = (dir: string): string[] => {
  const parent = path.dirname(path.resolve(dir));
  const wanted = path.basename(path.resolve(dir));
  let names: string[];
  try {
    names = fs.readdirSync(parent).slice(0, 200);
  } catch {
    return [];
  }
  const found = names.filter(name => name !== wanted && holdsSnapshot(path.join(parent, name)));
  // Relative to where the command runs when `dir` was given relative: `.` names the current directory, whose
  // neighbours are ../name (they were shown as name, a path that leads nowhere: found by the new-user trial).
  return found
    .sort((a, b) => editDistance(a, wanted) - editDistance(b, wanted) || a.localeCompare(b))
    .slice(0, 3)
    .map(name => asGiven(dir, path.join(parent, name)));
};

/**
 * Read and parse `<dir>/manifest.json`. With `trusted` keys, its signature
 * is checked on the very bytes that are then parsed, before anything else
 * is read; then the whole manifest is checked (manifest-shape.ts). Throws
 * SNAPSHOT_INVALID naming the field, LOG_VERSION_UNSUPPORTED, and with
 * trusted keys SIGNATURE_MISSING or SIGNATURE_INVALID; USAGE for a `dir`
 * that is not a non-empty string, or `trusted` that is not an array.
 */
export const readManifest = (dir: string, trusted?: readonly TrustedKey[]): Manifest => {
  checkStringArgument(dir, 'readManifest()', 'the snapshot directory');
  if (trusted !== undefined && !Array.isArray(trusted)) throw new SnapshotError('USAGE', 'readManifest(): trusted keys are an array (loadTrustedKeys()).');
  const file = path.join(dir, 'manifest.json');
  let bytes: Buffer;
  try {
    bytes = readInsideSnapshot(dir, file, 'the manifest', { maxBytes: MAX_MANIFEST_BYTES });
  } catch (cause) {
    rethrowOurs(cause, file);
    throw new SnapshotError('SNAPSHOT_INVALID', `${dir} is not a snapshot: ${missingManifestAdvice(dir, file)}`, { cause, details: { file } });
  }
  if (trusted) {
    let signature: string | undefined;
    try {
      signature = readInsideSnapshot(dir, path.join(dir, SIGNATURE_FILE), 'the signature', { maxBytes: MAX_SIGNATURE_BYTES }).toString('utf8');
    } catch (error) {
      rethrowOurs(error);
      signature = undefined;
    }
    verifyManifestSignature(bytes, signature, trusted, dir);
  }
  const text = bytes.toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new SnapshotError('SNAPSHOT_INVALID', `${file} is not valid JSON; rebuild the snapshot.`, { cause, details: { file } });
  }
  const manifest = parsed as Record<string, unknown>;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || manifest.format !== MANIFEST_FORMAT) {
    const format = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? manifest.format : undefined;
    throw new SnapshotError(
      'SNAPSHOT_INVALID',
      `${file} is not a membrane-snapshot manifest (${format === undefined ? 'it has no "format"' : `its "format" is ${shown(format)}`}, not "${MANIFEST_FORMAT}").`,
      { details: { file } },
    );
  }
  checkVersion(file, manifest);
  checkManifest(file, manifest);
  return parsed as Manifest;
};

/**
 * A manifest's `version`: a whole number (SNAPSHOT_INVALID otherwise), and
 * the one this library reads (LOG_VERSION_UNSUPPORTED otherwise, naming
 * the membrane-snapshot that wrote it when the manifest says so plainly).
 */
const checkVersion = (file: string, manifest: Record<string, unknown>): void => {
  const { version, libraryVersion } = manifest;
  if (version === MANIFEST_VERSION) return;
  if (version === undefined) {
    throw new SnapshotError('SNAPSHOT_INVALID', `${file} has no "version"; this membrane-snapshot reads manifest version ${MANIFEST_VERSION}. The manifest was damaged or edited: copy the snapshot again, or rebuild it.`, {
      details: { file, field: 'version' },
    });
  }
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) {
    throw new SnapshotError(
      'SNAPSHOT_INVALID',
      `${file}: "version" is ${shown(version)} (${kind(version)}), not a whole number; this membrane-snapshot reads manifest version ${MANIFEST_VERSION}. The manifest was damaged or edited: copy the snapshot again, or rebuild it.`,
      { details: { file, field: 'version' } },
    );
  }
  const writer = isLibraryVersion(libraryVersion) ? `membrane-snapshot ${libraryVersion}` : 'the membrane-snapshot that built it';
  throw new SnapshotError('LOG_VERSION_UNSUPPORTED', `${file} has manifest version ${version}; this membrane-snapshot reads version ${MANIFEST_VERSION}. Restore with ${writer}, or rebuild.`, {
    details: { file, version },
  });
};

/** Read a file named by the manifest and check its size (when given, before reading) and hash. */
export const readVerified = (dir: string, relative: string, expected: string, what: string, size?: number): Uint8Array => {
  const { file, bytes } = readSnapshotFile(dir, relative, what, size);
  verifyHash(file, bytes, expected, what);
  return bytes;
};

/**
 * Read a file of a snapshot directory as an untrusted input: it must be a
 * regular file inside the directory once links are resolved (a link to
 * /etc/passwd would have its hash printed; /dev/zero or a FIFO would never
 * end). Opened non-blocking, so a FIFO cannot hang the read. With `maxBytes`
 * a larger file is refused, with `size` a file of another size (the
 * manifest's), before a byte is read. Throws SNAPSHOT_INVALID for a link out
 * of the directory, a file that is not regular or larger than `maxBytes`,
 * INTEGRITY_MISMATCH for a file of another `size`; a missing file throws
 * Node's ENOENT error, for the caller to say what is missing.
 */
export const readInsideSnapshot = (dir: string, file: string, what: string, limits: { maxBytes?: number; size?: number } = {}): Buffer => {
  const { fd, size } = openInsideSnapshot(dir, file, what, limits);
  try {
    // readFileSync refuses a file past 2 GiB (ERR_FS_FILE_TOO_LARGE), which the manifest allows: read by chunks.
    if (size <= READ_CHUNK_BYTES) return fs.readFileSync(fd);
    const bytes = Buffer.allocUnsafe(size);
    for (let filled = 0; filled < size; ) {
      const read = fs.readSync(fd, bytes, filled, Math.min(size - filled, READ_CHUNK_BYTES), filled);
      if (read === 0) throw new SnapshotError('INTEGRITY_MISMATCH', `${what} ${file} shrank while it was read (${size} bytes when opened, ${filled} there): copy the snapshot again, and restore when nothing writes to it.`, { details: { file, bytes: size, read: filled } });
      filled += read;
    }
    return bytes;
  } finally {
    fs.closeSync(fd);
  }
};

/**
 * `readInsideSnapshot`, the bytes read on Node's thread pool: the checks
 * (links, file kind, size) are made at once, synchronously, and the read
 * goes on while the caller works. The bytes are the file's size when it
 * was opened. Rejects with what `readInsideSnapshot` throws, and
 * INTEGRITY_MISMATCH for a file that shrank while it was read.
 */
export const readInsideSnapshotAsync = (dir: string, file: string, what: string, limits: { maxBytes?: number; size?: number } = {}): Promise<Buffer> => {
  let opened: { fd: number; size: number };
  try {
    opened = openInsideSnapshot(dir, file, what, limits);
  } catch (error) {
    return Promise.reject(error);
  }
  const { fd, size } = opened;
  const bytes = Buffer.allocUnsafe(size);
  return new Promise<Buffer>((resolve, reject) => {
    let filled = 0;
    const done = (error: unknown): void => fs.close(fd, () => (error ? reject(error) : resolve(bytes)));
    const step = (): void => {
      if (filled === size) return done(undefined);
      // At most READ_CHUNK_BYTES a read: Node takes a read's length as a 32-bit int (a 3 GiB log failed with
      // ERR_OUT_OF_RANGE, reported as missing; one of 4 GiB read 0 bytes, reported as shrunk: helper-95).
      fs.read(fd, bytes, filled, Math.min(size - filled, READ_CHUNK_BYTES), filled, (error, read) => {
        if (error) return done(error);
        if (read === 0) {
          return done(
            new SnapshotError('INTEGRITY_MISMATCH', `${what} ${file} shrank while it was read (${size} bytes when opened, ${filled} there): copy the snapshot again, and restore when nothing writes to it.`, {
              details: { file, bytes: size, read: filled },
            }),
          );
        }
        filled += read;
        step();
      });
    };
    step();
  });
};

/** The checks of `readInsideSnapshot`: an open, read-only descriptor of a regular file inside `dir` (for the caller to close), and its size. */
const openInsideSnapshot = (dir: string, file: string, what: string, limits: { maxBytes?: number; size?: number }): { fd: number; size: number } => {
  const { maxBytes, size } = limits;
  const real = fs.realpathSync(file);
  const root = fs.realpathSync(dir);
  if (!real.startsWith(root + path.sep)) {
    throw new SnapshotError('SNAPSHOT_INVALID', `${what} ${file} leads outside the snapshot directory (a symbolic link): copy the snapshot without links.`, { details: { file } });
  }
  const fd = fs.openSync(real, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW);
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) {
      throw new SnapshotError('SNAPSHOT_INVALID', `${what} ${file} is not a regular file: copy the snapshot again.`, { details: { file } });
    }
    if (maxBytes !== undefined && stat.size > maxBytes) {
      const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;
      throw new SnapshotError('SNAPSHOT_INVALID', `${file} is ${mib(stat.size)}; ${what} is at most ${mib(maxBytes)}, so it was not read. Copy the snapshot again, or rebuild it.`, {
        details: { file, bytes: stat.size },
      });
    }
    if (size !== undefined && stat.size !== size) {
      throw new SnapshotError(
        'INTEGRITY_MISMATCH',
        `${what} ${file} does not match the manifest: it is ${stat.size} bytes, the manifest says ${size}. The file was changed or damaged after the build; rebuild the snapshot or copy it again.`,
        { details: { file, expectedBytes: size, actualBytes: stat.size } },
      );
    }
    return { fd, size: stat.size };
  } catch (error) {
    fs.closeSync(fd);
    throw error;
  }
};

/**
 * Rethrow our own errors as they are, and a file this user may not read as
 * what it is (it was reported missing): snapshot files are the owner's only
 * (FILE_MODE), and a restore as another user (a container's non-root USER)
 * cannot read them.
 */
const rethrowOurs = (error: unknown, file?: string): void => {
  if (error instanceof SnapshotError) throw error;
  const code = (error as { code?: unknown } | null)?.code;
  if (file !== undefined && (code === 'EACCES' || code === 'EPERM')) {
    const user = typeof process.getuid === 'function' ? ` (uid ${process.getuid()})` : '';
    throw new SnapshotError(
      'SNAPSHOT_INVALID',
      `${file} cannot be read by this user${user}: permission denied. Snapshot files are readable by their owner only; restore as that user, or give this one the files (chown -R, or chmod -R u+rwX,go+rX for a snapshot that holds no secrets).`,
      { cause: error, details: { file, code } },
    );
  }
};

/** Read a file named by the manifest (no hash check yet; with `size`, a file of another size is refused unread). */
export const readSnapshotFile = (dir: string, relative: string, what: string, size?: number): { file: string; bytes: Uint8Array } => {
  const file = namedFile(dir, relative);
  try {
    return { file, bytes: readInsideSnapshot(dir, file, what, { size }) };
  } catch (cause) {
    return unreadFile(cause, file, what);
  }
};

/** `readSnapshotFile`, the bytes read on Node's thread pool (readInsideSnapshotAsync); rejects with what it throws. */
export const readSnapshotFileAsync = async (dir: string, relative: string, what: string, size?: number): Promise<{ file: string; bytes: Uint8Array }> => {
  const file = namedFile(dir, relative);
  try {
    return { file, bytes: await readInsideSnapshotAsync(dir, file, what, { size }) };
  } catch (cause) {
    return unreadFile(cause, file, what);
  }
};

/** The file the manifest names `relative`, inside `dir` (SNAPSHOT_INVALID when its name leads outside). */
const namedFile = (dir: string, relative: string): string => {
  const file = path.resolve(dir, relative);
  if (!file.startsWith(path.resolve(dir) + path.sep)) {
    throw new SnapshotError('SNAPSHOT_INVALID', `the manifest names ${relative}, outside the snapshot directory`, { details: { file: relative } });
  }
  return file;
};

/** What a failed read of a snapshot file throws: our own errors as they are, anything else as the file missing. */
const unreadFile = (cause: unknown, file: string, what: string): never => {
  rethrowOurs(cause, file);
  throw new SnapshotError('SNAPSHOT_INVALID', `${what} ${file} is missing: copy the whole snapshot directory.`, { cause, details: { file } });
};

export const verifyHash = (file: string, bytes: Uint8Array, expected: string, what: string): void => {
  const actual = sha256(bytes);
  if (actual !== expected) {
    throw new SnapshotError(
      'INTEGRITY_MISMATCH',
      `${what} ${file} does not match the manifest: its sha256 is ${actual}, the manifest says ${expected}. The file was changed or damaged after the build; rebuild the snapshot or copy it again.`,
      { details: { file, expected, actual } },
    );
  }
};

/**
 * Check that a replay log belongs where the manifest puts it: recorded for
 * this service, with the archive the manifest names, and (when its trailer
 * is known) holding as many events as the manifest says. Throws
 * INTEGRITY_MISMATCH saying which of them disagree: the log or the
 * manifest was changed after the build, or they come from two builds.
 */
export const checkLogBelongs = (file: string, header: { readonly service: string; readonly archiveSha256: string }, events: number | undefined, service: ServiceManifest): void => {
  const fix = 'One of them was changed after the build, or they come from different builds: rebuild the snapshot, or copy it again.';
  if (header.service !== service.name) {
    throw new SnapshotError('INTEGRITY_MISMATCH', `${file} is the replay log of service "${header.service}", and the manifest has it as service "${service.name}"'s. ${fix}`, {
      details: { file, logService: header.service, service: service.name },
    });
  }
  if (header.archiveSha256 !== service.archiveSha256) {
    throw new SnapshotError(
      'INTEGRITY_MISMATCH',
      `${file} and the manifest disagree about service "${service.name}"'s archive: the log was recorded with archive ${header.archiveSha256}, the manifest names ${service.archiveSha256}. ${fix}`,
      { details: { file, logArchive: header.archiveSha256, manifestArchive: service.archiveSha256 } },
    );
  }
  if (events !== undefined && events !== service.events) {
    throw new SnapshotError('INTEGRITY_MISMATCH', `${file} holds ${events} events, and the manifest says service "${service.name}" recorded ${service.events}. ${fix}`, {
      details: { file, logEvents: events, manifestEvents: service.events },
    });
  }
};

/**
 * When `manifest` was built on another Node line (major version) than this
 * process runs: one sentence saying so and what it means for a replay,
 * else undefined. A service's builtins behave as the line it runs on
 * (docs/environment.md, Node versions), so a service whose code met one
 * that changed between the two lines (a Stats's own properties, a message,
 * structuredClone of a URL) replays otherwise than it was built, and the
 * restore stops at the first difference (REPLAY_DIVERGED).
 */
export const otherNodeLine = (manifest: Manifest): string | undefined => {
  const major = (version: string | undefined): number | undefined => (version === undefined ? undefined : Number(/^v(\d+)\./.exec(version)?.[1]));
  const built = major(manifest.node);
  if (built === undefined || built === major(process.version)) return undefined;
  return (
    `The snapshot was built on Node ${manifest.node} and is restored on Node ${process.version}: a service whose code met a builtin that ` +
    `behaves otherwise on the two lines (docs/environment.md, Node versions) replays otherwise than it was built, and stops at the first ` +
    `difference (REPLAY_DIVERGED). Restore it on Node ${built}, or rebuild it on this line.`
  );
};
