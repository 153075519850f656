/**
 * The files a manifest names, checked as restore would check them, without
 * loading anything: each service's archive and log is a regular file inside
 * the snapshot directory, its size (checked before it is read) and sha256
 * are the manifest's,
 * and the log was recorded for this service and this archive. `inspect`
 * shows the result of each file; `verify` replays no service whose files
 * fail.
 */
import { LogReader, SnapshotError, isSnapshotError, type SnapshotErrorCode } from '../replay-log/index.js';
import { checkLogBelongs, readSnapshotFile, verifyHash, type Manifest, type ServiceManifest } from './manifest.js';

/** ok; missing (absent); damaged (other bytes than the manifest's); refused (a link out of the directory, not a regular file...). */
export type FileStatus = 'ok' | 'missing' | 'damaged' | 'refused';

export interface CheckedFile {
  readonly service: string;
  readonly kind: 'archive' | 'log';
  /** As the manifest names it, relative to the snapshot directory. */
  readonly path: string;
  readonly status: FileStatus;
  /** Why, when not ok: the error restore would raise. */
  readonly error?: SnapshotError;
}

const statusOf = (error: SnapshotError): FileStatus => {
  if (error.code === 'INTEGRITY_MISMATCH') return 'damaged';
  const cause = (error as { cause?: { code?: unknown } }).cause;
  return error.code === 'SNAPSHOT_INVALID' && cause?.code === 'ENOENT' ? 'missing' : 'refused';
};

const checkOne = (service: string, kind: CheckedFile['kind'], path: string, check: () => void): CheckedFile => {
  try {
    check();
    return { service, kind, path, status: 'ok' };
  } catch (error) {
    if (!isSnapshotError(error)) throw error;
    return { service, kind, path, status: statusOf(error), error };
  }
};

/** Check one service's archive and log. Never throws for a bad file: its entry says why. */
export const checkServiceFiles = (dir: string, service: ServiceManifest): CheckedFile[] => {
  const { name } = service;
  const archive = checkOne(name, 'archive', service.archive, () => {
    const what = `the archive of service "${name}"`;
    const { file, bytes } = readSnapshotFile(dir, service.archive, what, service.archiveBytes);
    verifyHash(file, bytes, service.archiveSha256, what);
  });
  const log = checkOne(name, 'log', service.log, () => {
    const what = `the replay log of service "${name}"`;
    const { file, bytes } = readSnapshotFile(dir, service.log, what, service.logBytes);
    verifyHash(file, bytes, service.logSha256, what);
    const { header, trailer } = LogReader.open(bytes, file, { allowUnsealed: true });
    checkLogBelongs(file, header, trailer?.events, service);
  });
  return [archive, log];
};

/** Check every file the manifest names, in its order. */
export const checkSnapshotFiles = (dir: string, manifest: Manifest): CheckedFile[] => Object.values(manifest.services).flatMap(service => checkServiceFiles(dir, service));

/** What filesError needs of a checked file (a CheckedFile, or inspect --json's rendering of one). */
interface FileOutcome {
  readonly service: string;
  readonly kind: string;
  readonly path: string;
  readonly status: FileStatus;
  readonly error?: { readonly code: SnapshotErrorCode; readonly message: string };
}

/**
 * One error for every file that is not ok (undefined when all are): the
 * first file's code (SNAPSHOT_INVALID for a missing or refused file,
 * INTEGRITY_MISMATCH for a damaged one) and message, then the others.
 */
export const filesError = (files: readonly FileOutcome[]): SnapshotError | undefined => {
  const bad = files.filter(f => f.error);
  const [first] = bad;
  if (!first?.error) return undefined;
  const others = bad.slice(1).map(f => `${f.path} is ${f.status}`);
  return new SnapshotError(first.error.code, `${first.error.message}${others.length ? ` Also: ${others.join('; ')}.` : ''}`, {
    cause: first.error,
    details: { files: bad.map(f => ({ service: f.service, kind: f.kind, path: f.path, status: f.status, code: f.error?.code })) },
  });
};
