/**
 * The frame walk shared by every log reader: `LogReader.open` (a whole log in
 * memory, for replay) and `readLogFile` (a log read from disk one frame at a
 * time, for `snapshot inspect`, in memory bounded by the largest frame).
 *
 * Every check that needs no msgpack decoding happens here, frame by frame:
 * the magic number, each frame's type, length and CRC, the header first and
 * once, no empty entries frame, the structure of every entry (tags, varuint
 * lengths that stay inside their frame, op names defined before use, clock
 * values that are real times), and the closing frame's event count against
 * the entries actually read. What fails is a typed SnapshotError:
 * LOG_TRUNCATED when the file stops inside something that would otherwise be
 * whole, LOG_CORRUPT for anything no writer produces.
 */
import fs from 'node:fs';
import { packr, isId } from './codec.js';
import { frameCrc } from './crc.js';
import { SnapshotError } from './errors.js';
import {
  FORMAT_NAME,
  FORMAT_VERSION,
  KEPT_MAX_BYTES,
  MAX_KEPT,
  READ_VERSIONS,
  FRAME_END,
  FRAME_ENTRIES,
  FRAME_HEADER,
  FRAME_OVERHEAD,
  MAGIC,
  MAX_FRAME_BYTES,
  MAX_TIME_MS,
  SEED_BYTES,
  TAG_MSG,
  TAG_NOW,
  TAG_OPNAME,
  TAG_PERF,
  TAG_RANDOM,
  TAG_SEED,
  TAG_REPEAT,
  TAG_SYS,
  TAG_SYS_KEPT,
} from './format.js';
import type { LogHeader, LogTrailer } from './entries.js';

/** Bytes of a log, read by offset: a buffer in memory or an open file. */
export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** `length` bytes from `offset`; the caller keeps inside `size`. */
  read(offset: number, length: number): Uint8Array;
}

/** What the walk meets, in file order. */
export type LogItem =
  | { readonly kind: 'header'; readonly header: LogHeader; readonly offset: number }
  /** One entries frame: `payload` starts at file offset `bodyOffset`; `events` entries in it. */
  | { readonly kind: 'entries'; readonly payload: Uint8Array; readonly bodyOffset: number; readonly events: number }
  /** The closing frame at `offset`; the log's `bytes` end with it. */
  | { readonly kind: 'end'; readonly trailer: LogTrailer; readonly offset: number; readonly bytes: number }
  /** The log ends after whole frames but has no closing frame (only with `allowUnsealed`). */
  | { readonly kind: 'unsealed'; readonly offset: number };

type Code = 'LOG_CORRUPT' | 'LOG_TRUNCATED';

/** The error for a log that stops making sense at `offset` (a file offset). */
export const logError = (code: Code, source: string, offset: number, why: string, cause?: unknown): SnapshotError =>
  new SnapshotError(
    code,
    `${source}: ${why} at byte ${offset}. ${code === 'LOG_TRUNCATED' ? 'The file is cut short' : 'The file is damaged'}; rebuild the snapshot with \`snapshot build\`.`,
    { cause, details: { file: source, offset } },
  );

/**
 * Walk a log's frames, checking each before it is yielded. With
 * `allowUnsealed`, a log that ends after whole frames without a closing
 * frame ends the walk with an `unsealed` item instead of LOG_TRUNCATED.
 * Throws LOG_CORRUPT, LOG_TRUNCATED or LOG_VERSION_UNSUPPORTED.
 */
export function* walkLog(src: ByteSource, source: string, options: { allowUnsealed?: boolean } = {}): Generator<LogItem, void, undefined> {
  const fail = (code: Code, offset: number, why: string, cause?: unknown): never => {
    throw logError(code, source, offset, why, cause);
  };
  const size = src.size;
  const magic = src.read(0, Math.min(size, MAGIC.byteLength));
  for (let i = 0; i < magic.byteLength; i += 1) {
    if (magic[i] !== MAGIC[i]) fail('LOG_CORRUPT', 0, 'not a membrane-snapshot replay log (bad magic number)');
  }
  if (size < MAGIC.byteLength) fail('LOG_TRUNCATED', size, 'the log ends inside its magic number');
  let pos = MAGIC.byteLength;
  let header = false;
  let sealed = false;
  const state: ScanState = { ops: 0, events: 0, kept: new Set(), version: FORMAT_VERSION };
  while (pos < size) {
    if (sealed) fail('LOG_CORRUPT', pos, 'data after the closing frame');
    if (pos + FRAME_OVERHEAD > size) fail('LOG_TRUNCATED', pos, 'the log ends inside a frame header');
    const head = src.read(pos, FRAME_OVERHEAD);
    const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
    const type = head[0];
    const length = view.getUint32(1, true);
    const crc = view.getUint32(5, true);
    if (type !== FRAME_HEADER && type !== FRAME_ENTRIES && type !== FRAME_END) fail('LOG_CORRUPT', pos, `unknown frame type ${type}`);
    if (length > MAX_FRAME_BYTES) fail('LOG_CORRUPT', pos, `a frame length of ${length} bytes (more than any writer writes)`);
    if (pos + FRAME_OVERHEAD + length > size) {
      fail('LOG_TRUNCATED', pos, `a frame of ${length} bytes runs past the end of the file (${size} bytes)`);
    }
    const payload = src.read(pos + FRAME_OVERHEAD, length);
    if (frameCrc(type, payload) >>> 0 !== crc) fail('LOG_CORRUPT', pos, 'checksum mismatch in a frame');
    if (type === FRAME_HEADER) {
      if (header) fail('LOG_CORRUPT', pos, 'a second header frame');
      header = true;
      const decoded = decodeHeader(payload, source, pos);
      state.version = decoded.version;
      yield { kind: 'header', header: decoded, offset: pos };
    } else if (!header) {
      fail('LOG_CORRUPT', pos, `${type === FRAME_END ? 'a closing frame' : 'entries'} before the header frame`);
    } else if (type === FRAME_ENTRIES) {
      if (length === 0) fail('LOG_CORRUPT', pos, 'an empty entries frame');
      const before = state.events;
      scanEntries(payload, pos + FRAME_OVERHEAD, state, source);
      yield { kind: 'entries', payload, bodyOffset: pos + FRAME_OVERHEAD, events: state.events - before };
    } else {
      const trailer = decodeTrailer(payload, source, pos);
      if (trailer.events !== state.events) {
        fail('LOG_CORRUPT', pos, `the closing frame counts ${trailer.events} events but the log holds ${state.events} (frames removed, repeated or reordered)`);
      }
      sealed = true;
      yield { kind: 'end', trailer, offset: pos, bytes: pos + FRAME_OVERHEAD + length };
    }
    pos += FRAME_OVERHEAD + length;
  }
  if (!header) fail('LOG_TRUNCATED', pos, 'the log has no header frame');
  if (!sealed) {
    if (!options.allowUnsealed) fail('LOG_TRUNCATED', pos, 'the log has no closing frame (its build did not finish)');
    yield { kind: 'unsealed', offset: pos };
  }
}

/** A log in memory. */
export const memorySource = (bytes: Uint8Array): ByteSource => ({
  size: bytes.byteLength,
  read: (offset, length) => bytes.subarray(offset, offset + length),
});

/**
 * Walk a log file from disk one frame at a time (memory bounded by the
 * largest frame). Throws what `walkLog` throws, and SNAPSHOT_INVALID when
 * the file cannot be read.
 */
export function* readLogFile(file: string, options: { allowUnsealed?: boolean } = {}): Generator<LogItem, void, undefined> {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (cause) {
    throw new SnapshotError('SNAPSHOT_INVALID', `${file} cannot be read: ${(cause as Error).message}`, { cause, details: { file } });
  }
  try {
    const size = fs.fstatSync(fd).size;
    const src: ByteSource = {
      size,
      read: (offset, length) => {
        const out = Buffer.allocUnsafe(length);
        let done = 0;
        while (done < length) {
          const n = fs.readSync(fd, out, done, length - done, offset + done);
          if (n === 0) throw logError('LOG_TRUNCATED', file, offset + done, 'the file shrank while it was read');
          done += n;
        }
        return out;
      },
    };
    yield* walkLog(src, file, options);
  } finally {
    fs.closeSync(fd);
  }
}

const decodeHeader = (payload: Uint8Array, source: string, offset: number): LogHeader => {
  let header: unknown;
  try {
    header = packr.unpack(payload);
  } catch (cause) {
    throw logError('LOG_CORRUPT', source, offset, 'the header frame does not decode', cause);
  }
  const h = (typeof header === 'object' && header !== null ? header : {}) as Partial<Record<keyof LogHeader, unknown>>;
  if (h.format !== FORMAT_NAME) throw logError('LOG_CORRUPT', source, offset, `the header does not name the ${FORMAT_NAME} format`);
  if (typeof h.version !== 'number' || !READ_VERSIONS.includes(h.version)) {
    throw new SnapshotError(
      'LOG_VERSION_UNSUPPORTED',
      `${source}: replay log format version ${String(h.version)} is not supported by this membrane-snapshot (it reads versions ${READ_VERSIONS.slice(0, -1).join(', ')} and ${String(READ_VERSIONS.at(-1))}; the log was written by membrane-snapshot ${String(h.libraryVersion)}). Restore it with that version, or rebuild the snapshot.`,
      { details: { file: source, version: h.version, supported: READ_VERSIONS } },
    );
  }
  if (typeof h.service !== 'string' || typeof h.archiveSha256 !== 'string' || typeof h.libraryVersion !== 'string') {
    throw logError('LOG_CORRUPT', source, offset, 'the header lacks its service name, archive hash or library version');
  }
  return { format: FORMAT_NAME, version: h.version, service: h.service, archiveSha256: h.archiveSha256, libraryVersion: h.libraryVersion };
};

const decodeTrailer = (payload: Uint8Array, source: string, offset: number): LogTrailer => {
  let trailer: unknown;
  try {
    trailer = packr.unpack(payload);
  } catch (cause) {
    throw logError('LOG_CORRUPT', source, offset, 'the closing frame does not decode', cause);
  }
  const events = (trailer as { events?: unknown } | null)?.events;
  if (typeof trailer !== 'object' || trailer === null || Array.isArray(trailer) || Object.keys(trailer).length !== 1 || !isId(events)) {
    throw logError('LOG_CORRUPT', source, offset, 'the closing frame is not { events: <count> }');
  }
  return { events };
};

interface ScanState {
  /** Op names defined so far. */
  ops: number;
  /** Events (entries other than op name definitions) so far. */
  events: number;
  /** Indexes of the kept sys events a repeat may name (see format.ts). */
  kept: Set<number>;
  /** The header's format version. */
  version: number;
}

/**
 * Check the structure of one frame's entries without decoding msgpack:
 * every entry's tag, length and bounds, op names defined before use, clock
 * values. `at` is the file offset of the payload. Throws LOG_CORRUPT.
 */
const scanEntries = (payload: Uint8Array, at: number, state: ScanState, source: string): void => {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const end = payload.byteLength;
  let pos = 0;
  let entry = 0;
  const bad = (why: string): never => {
    throw logError('LOG_CORRUPT', source, at + entry, `event ${state.events} is malformed (${why})`);
  };
  const varuint = (): number => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      if (pos >= end) bad('a length runs past the end of its frame');
      if (shift > 28) bad('a length of more than 5 bytes');
      const byte = view.getUint8(pos++);
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
  };
  const skip = (n: number): void => {
    if (n > end - pos) bad(`${n} bytes announced, ${end - pos} left in the frame`);
    pos += n;
  };
  while (pos < end) {
    entry = pos;
    const tag = view.getUint8(pos++);
    switch (tag) {
      case TAG_NOW:
      case TAG_PERF: {
        if (end - pos < 8) bad('a clock value runs past the end of its frame');
        const value = view.getFloat64(pos, true);
        if (!Number.isFinite(value) || (tag === TAG_NOW && Math.abs(value) > MAX_TIME_MS)) bad(`${tag === TAG_NOW ? 'Date.now()' : 'performance.now()'} of ${value}`);
        pos += 8;
        break;
      }
      case TAG_SEED:
        skip(SEED_BYTES);
        break;
      case TAG_RANDOM:
        skip(varuint());
        break;
      case TAG_MSG: {
        const n = varuint();
        if (n === 0) bad('an empty entry');
        skip(n);
        break;
      }
      case TAG_SYS: {
        const op = varuint();
        if (op >= state.ops) bad(`op name #${op} used before it is defined`);
        const n = varuint();
        if (n === 0) bad('an empty entry');
        skip(n);
        break;
      }
      case TAG_SYS_KEPT: {
        if (state.version < 2) bad('a kept entry in a version 1 log');
        const op = varuint();
        if (op >= state.ops) bad(`op name #${op} used before it is defined`);
        const was = varuint();
        if (was > 0) {
          if (!state.kept.delete(was - 1)) bad(`it replaces event ${was - 1}, which is not a kept entry`);
        }
        const n = varuint();
        if (n === 0) bad('an empty entry');
        if (n > KEPT_MAX_BYTES) bad(`a kept entry of ${n} bytes (at most ${KEPT_MAX_BYTES})`);
        skip(n);
        state.kept.add(state.events);
        if (state.kept.size > MAX_KEPT) bad(`more than ${MAX_KEPT} kept entries at once`);
        break;
      }
      case TAG_REPEAT: {
        if (state.version < 2) bad('a repeat entry in a version 1 log');
        const of = varuint();
        if (!state.kept.has(of)) bad(`it repeats event ${of}, which is not a kept entry`);
        break;
      }
      case TAG_OPNAME:
        skip(varuint());
        state.ops += 1;
        continue; // a definition, not an event
      default:
        bad(`unknown entry tag 0x${tag.toString(16)}`);
    }
    state.events += 1;
  }
};
