/**
 * The snapshot manifest: `<dir>/manifest.json`. It names every service, the
 * sha256 of its archive and log (restore refuses a file whose hash differs),
 * and what the service needs from its host.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { SnapshotError } from '../replay-log/index.js';
import type { ServiceReference } from '../membrane/index.js';
import type { GrantShape, RuntimeDeclaration } from '../compartments/index.js';

export const MANIFEST_FORMAT = 'membrane-snapshot';
export const MANIFEST_VERSION = 1;

export interface ServiceManifest {
  readonly name: string;
  /** The entry module at build time (for messages; restore does not read it). */
  readonly entry: string;
  /** Where `import.meta.url` of the entry package pointed at build time. */
  readonly entryRoot: string;
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
}

/** A service's runtime declaration as the manifest keeps it. */
export interface ServiceRuntime extends RuntimeDeclaration {
  /**
   * The export id of the service's HTTP adapter (set with `http`): the
   * object the HTTP runtime delivers requests to, with the fetch handler.
   */
  readonly httpAdapter?: number;
}

export interface Manifest {
  readonly format: typeof MANIFEST_FORMAT;
  readonly version: number;
  readonly libraryVersion: string;
  readonly createdAt: string;
  /** The app's name (subjects and object store bucket): the build project's package name, or --app. */
  readonly app?: string;
  readonly services: Readonly<Record<string, ServiceManifest>>;
}

export const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

export const writeManifest = (dir: string, manifest: Manifest): void => {
  const file = path.join(dir, 'manifest.json');
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`);
  fs.renameSync(`${file}.tmp`, file);
};

export const readManifest = (dir: string): Manifest => {
  const file = path.join(dir, 'manifest.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (cause) {
    throw new SnapshotError('SNAPSHOT_INVALID', `${dir} is not a snapshot: ${file} cannot be read. Build one with \`snapshot build <script> --out ${dir}\`.`, { cause, details: { file } });
  }
  let manifest: Manifest;
  try {
    manifest = JSON.parse(text) as Manifest;
  } catch (cause) {
    throw new SnapshotError('SNAPSHOT_INVALID', `${file} is not valid JSON; rebuild the snapshot.`, { cause, details: { file } });
  }
  if (manifest?.format !== MANIFEST_FORMAT || typeof manifest.services !== 'object' || manifest.services === null) {
    throw new SnapshotError('SNAPSHOT_INVALID', `${file} is not a membrane-snapshot manifest.`, { details: { file } });
  }
  if (manifest.version !== MANIFEST_VERSION) {
    throw new SnapshotError('LOG_VERSION_UNSUPPORTED', `${file} has manifest version ${String(manifest.version)}; this membrane-snapshot reads version ${MANIFEST_VERSION}. Restore with membrane-snapshot ${manifest.libraryVersion}, or rebuild.`, {
      details: { file, version: manifest.version },
    });
  }
  return manifest;
};

/** Read a file named by the manifest and check its hash. */
export const readVerified = (dir: string, relative: string, expected: string, what: string): Uint8Array => {
  const { file, bytes } = readSnapshotFile(dir, relative, what);
  verifyHash(file, bytes, expected, what);
  return bytes;
};

/** Read a file named by the manifest (no hash check yet). */
export const readSnapshotFile = (dir: string, relative: string, what: string): { file: string; bytes: Uint8Array } => {
  const file = path.resolve(dir, relative);
  if (!file.startsWith(path.resolve(dir) + path.sep)) {
    throw new SnapshotError('SNAPSHOT_INVALID', `the manifest names ${relative}, outside the snapshot directory`, { details: { file: relative } });
  }
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (cause) {
    throw new SnapshotError('SNAPSHOT_INVALID', `${what} ${file} is missing: copy the whole snapshot directory.`, { cause, details: { file } });
  }
  return { file, bytes };
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
