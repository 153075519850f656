/**
 * `snapshot inspect --json`: what `inspect` shows, as one JSON document for
 * tools. Entry values are rendered as text (the same one-line rendering as
 * the timeline), never decoded into the output, so any log prints as JSON.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LogReader, describeEntry, type SnapshotErrorCode } from '../replay-log/index.js';
import { readManifest, type Manifest } from './manifest.js';
import { checkSnapshotFiles, type FileStatus } from './snapshot-files.js';

/** One entry of a log: index, byte offset in the file and size in bytes, kind, whether it starts a delivery, text. */
export interface InspectedEntry {
  readonly index: number;
  readonly offset: number;
  readonly size: number;
  readonly kind: string;
  readonly delivery: boolean;
  readonly text: string;
}

/** A log as `inspect --json` prints it. `events` and `sealed` come from its trailer (absent when the build did not finish). */
export interface InspectedLog {
  readonly type: 'log';
  readonly file: string;
  readonly service: string;
  readonly formatVersion: number;
  readonly libraryVersion: string;
  readonly archiveSha256: string;
  readonly sealed: boolean;
  readonly events?: number;
  readonly validBytes: number;
  readonly entries: readonly InspectedEntry[];
  readonly totals: Readonly<Record<string, { entries: number; bytes: number }>>;
}

/** A file the manifest names, as checked (snapshot-files.ts); `error` says why when not ok. */
export interface InspectedFile {
  readonly service: string;
  readonly kind: 'archive' | 'log';
  readonly path: string;
  readonly status: FileStatus;
  readonly error?: { readonly code: SnapshotErrorCode; readonly message: string };
}

/** A snapshot directory as `inspect --json` prints it: its path, manifest, and each file it names, checked. */
export interface InspectedSnapshot {
  readonly type: 'snapshot';
  readonly dir: string;
  readonly manifest: Manifest;
  readonly ok: boolean;
  readonly files: readonly InspectedFile[];
}

const deliveries = new Set(['start', 'call', 'settle', 'timer']);

/**
 * Inspect a log file or a snapshot directory. Throws what `LogReader.open`
 * and `readManifest` throw (`LOG_CORRUPT`, `SNAPSHOT_INVALID`, ...).
 */
export const inspectJson = (target: string): InspectedLog | InspectedSnapshot => {
  if (!fs.statSync(target).isFile()) {
    const manifest = readManifest(target);
    const files = checkSnapshotFiles(target, manifest).map(({ service, kind, path: file, status, error }) => ({
      service,
      kind,
      path: file,
      status,
      ...(error ? { error: { code: error.code, message: error.message } } : {}),
    }));
    return { type: 'snapshot', dir: path.resolve(target), manifest, ok: files.every(f => f.status === 'ok'), files };
  }
  const reader = LogReader.open(fs.readFileSync(target), target, { allowUnsealed: true });
  const entries: InspectedEntry[] = [];
  const totals: Record<string, { entries: number; bytes: number }> = {};
  for (const { index, offset, size, entry } of reader.entries()) {
    entries.push({ index, offset, size, kind: entry.kind, delivery: deliveries.has(entry.kind), text: describeEntry(entry) });
    const total = (totals[entry.kind] ??= { entries: 0, bytes: 0 });
    total.entries += 1;
    total.bytes += size;
  }
  const { header, trailer } = reader;
  return {
    type: 'log',
    file: path.resolve(target),
    service: header.service,
    formatVersion: header.version,
    libraryVersion: header.libraryVersion,
    archiveSha256: header.archiveSha256,
    sealed: trailer !== undefined,
    ...(trailer ? { events: trailer.events } : {}),
    validBytes: reader.validBytes,
    entries,
    totals,
  };
};
