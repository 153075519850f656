/** `snapshot inspect`: a log's timeline, or a snapshot's services. */
import fs from 'node:fs';
import path from 'node:path';
import { SnapshotError, dumpLogFile } from '../replay-log/index.js';
import { checkStringArgument } from '../replay-log/errors.js';
import { readManifest } from './manifest.js';
import { checkSnapshotFiles, filesError, type CheckedFile } from './snapshot-files.js';

const kib = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;

/**
 * Stream a log's timeline to `write` (see dumpLogFile: bounded memory; a
 * damaged log shows what comes before the damage, then throws LOG_CORRUPT
 * or LOG_TRUNCATED), or describe a snapshot directory. Throws
 * SNAPSHOT_INVALID when `target` does not exist.
 */
export const inspectTo = (target: string, write: (text: string) => void): void => {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(target);
  } catch (cause) {
    // A path that leads nowhere is bad input, as restore and verify say (exit 1), not a usage error (exit 2).
    throw new SnapshotError('SNAPSHOT_INVALID', `${target} does not exist: give a replay log (<snapshot>/<service>/replay.log) or a snapshot directory.`, { cause });
  }
  if (stat.isFile()) return dumpLogFile(target, write);
  const { text, files } = describeSnapshot(target);
  write(`${text}\n`);
  const error = filesError(files);
  if (error) throw error;
};

/**
 * Write `text` to a file descriptor before returning (stdout by default),
 * whatever it is: a file, a terminal, or a pipe in non-blocking mode (EAGAIN
 * waits a millisecond and retries). So a streamed dump never queues output
 * in memory faster than its reader takes it.
 */
export const writeFully = (text: string, fd = 1): void => {
  const bytes = Buffer.from(text, 'utf8');
  let done = 0;
  while (done < bytes.byteLength) {
    try {
      done += fs.writeSync(fd, bytes, done, bytes.byteLength - done);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
};
const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * A snapshot directory's services, sizes and hashes, as text, each file
 * followed by what checking it found (ok, MISSING, DAMAGED, REFUSED: see
 * snapshot-files.ts); a log file's timeline. Throws what readManifest throws;
 * a bad file is shown, not thrown (`snapshot inspect` exits non-zero for it);
 * USAGE for a `target` that is not a non-empty string.
 */
export const inspectPath = (target: string): string => {
  checkStringArgument(target, 'inspectPath()', 'the snapshot directory or log file');
  if (fs.statSync(target).isFile()) {
    const chunks: string[] = [];
    dumpLogFile(target, text => chunks.push(text));
    return chunks.join('').replace(/\n$/, '');
  }
  return describeSnapshot(target).text;
};

const describeSnapshot = (target: string): { text: string; files: CheckedFile[] } => {
  const manifest = readManifest(target);
  const files = checkSnapshotFiles(target, manifest);
  const found = (service: string, kind: CheckedFile['kind']): string => {
    const status = files.find(f => f.service === service && f.kind === kind)?.status ?? 'ok';
    return status === 'ok' ? 'ok' : status.toUpperCase();
  };
  const lines = [`snapshot ${path.resolve(target)}`, `  built ${manifest.createdAt} by membrane-snapshot ${manifest.libraryVersion}`, '  services:'];
  for (const s of Object.values(manifest.services)) {
    lines.push(`    ${s.name}`);
    lines.push(`      entry    ${s.entry}`);
    lines.push(`      archive  ${s.archive}  ${kib(s.archiveBytes)}  sha256 ${s.archiveSha256.slice(0, 16)}…  ${found(s.name, 'archive')}`);
    lines.push(`      log      ${s.log}  ${kib(s.logBytes)}  ${s.events} events  sha256 ${s.logSha256.slice(0, 16)}…  ${found(s.name, 'log')}`);
    const granted = Object.keys(s.granted ?? {});
    if (granted.length) lines.push(`      granted  ${granted.join(', ')}`);
    if (s.parent) lines.push(`      parent   ${s.parent} (imported it at build time)`);
    const held = new Map<string, number>();
    for (const ref of s.references ?? []) held.set(ref.service, (held.get(ref.service) ?? 0) + 1);
    if (held.size) lines.push(`      holds    ${[...held].map(([name, n]) => `${name} (${n} reference${n === 1 ? '' : 's'})`).join(', ')}`);
    if (s.pendingTimers) lines.push(`      timers   ${s.pendingTimers} pending (re-armed when live)`);
    lines.push(`      built in ${s.buildMs} ms`);
  }
  const edges: string[] = [];
  for (const s of Object.values(manifest.services)) {
    if (s.parent) edges.push(`    ${s.parent} ─imports→ ${s.name}`);
    for (const target of new Set((s.references ?? []).map(r => r.service))) edges.push(`    ${s.name} ─calls→ ${target}`);
  }
  if (edges.length) lines.push('  graph:', ...edges);
  const bad = files.filter(f => f.status !== 'ok');
  if (bad.length) lines.push(`  ${bad.length} file${bad.length === 1 ? '' : 's'} of this snapshot ${bad.length === 1 ? 'is' : 'are'} missing or damaged: restore refuses ${bad.length === 1 ? 'it' : 'them'}.`);
  return { text: lines.join('\n'), files };
};
