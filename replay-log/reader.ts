/**
 * Log reader. `LogReader.open` checks the whole file up front (magic, every
 * frame's length and CRC, the header's format version, the structure of
 * every entry, the closing frame's event count; see frames.ts) so that a
 * damaged log is refused before any service code runs; a `LogCursor` then
 * walks the entries, with allocation-free readers for the fast kinds, and
 * checks each decoded entry's shape (a tuple no writer produces is
 * LOG_CORRUPT, never a value of the wrong type handed to the membrane).
 */
import { isKeptValue, tupleToEntry, tupleToSys, unpackViewing } from './codec.js';
import { SnapshotError } from './errors.js';
import { SEED_BYTES, TAG_MSG, TAG_NOW, TAG_OPNAME, TAG_PERF, TAG_REPEAT, TAG_SYS, TAG_SYS_KEPT, TAG_RANDOM, TAG_SEED } from './format.js';
import { memorySource, walkLog } from './frames.js';
import type { Entry, LogHeader, LogTrailer } from './entries.js';

/** What a cursor reads: entry bytes, and how to name a position in messages. */
export interface CursorSource {
  /** Where the log came from, for messages. */
  readonly source: string;
  /** The log's header (a LogReader's): its format version tells how some entries are read (format.ts). */
  readonly header?: { readonly version: number };
  /** Entry payloads, concatenated. */
  readonly body: Uint8Array;
  /** The file offset of a body offset. */
  fileOffset(bodyOffset: number): number;
}

export class LogReader implements CursorSource {
  /** Where the log came from, for messages. */
  readonly source: string;
  readonly header: LogHeader;
  /** `undefined` when the log has no closing frame (its build did not finish). */
  readonly trailer: LogTrailer | undefined;
  /** The entry payloads of every frame, in order, until `body` joins them. */
  #payloads: readonly Uint8Array[];
  #body: Uint8Array | undefined;
  /** Join the payloads inside the file's buffer (see `open`). */
  readonly #reuse: Uint8Array | undefined;
  /** File offset where the entries of each frame start, and where they start in `body`. */
  readonly #frameStarts: Array<[bodyOffset: number, fileOffset: number]>;
  /** File offset just past the last whole frame. */
  readonly validBytes: number;

  private constructor(
    source: string,
    header: LogHeader,
    trailer: LogTrailer | undefined,
    payloads: readonly Uint8Array[],
    reuse: Uint8Array | undefined,
    frameStarts: Array<[number, number]>,
    validBytes: number,
  ) {
    this.source = source;
    this.header = header;
    this.trailer = trailer;
    this.#payloads = payloads;
    this.#reuse = reuse;
    this.#frameStarts = frameStarts;
    this.validBytes = validBytes;
  }

  /** All entry payloads, one after the other. */
  get body(): Uint8Array {
    if (this.#body === undefined) {
      const payloads = this.#payloads;
      this.#body = payloads.length === 1 ? payloads[0] : this.#reuse ? compactInPlace(this.#reuse, payloads) : Buffer.concat(payloads);
      this.#payloads = [];
    }
    return this.#body;
  }

  /**
   * Verify and open a log held in memory. With `allowUnsealed`, a log whose
   * build did not finish opens; otherwise it is refused as LOG_TRUNCATED.
   * Throws LOG_CORRUPT, LOG_TRUNCATED or LOG_VERSION_UNSUPPORTED (a
   * SnapshotError whose `details` carry `file` and `offset`).
   * With `reuseBuffer`, the entries of all frames are moved together inside
   * `bytes` instead of being copied into a new body, the first time `body`
   * (or a cursor) is asked for: a log holding a 50 MB payload then costs its
   * file's size once, not twice. `bytes` stay as they are until then (hash
   * them first), and must not be used after.
   */
  static open(bytes: Uint8Array, source: string, options: { allowUnsealed?: boolean; reuseBuffer?: boolean } = {}): LogReader {
    let header: LogHeader | undefined;
    let trailer: LogTrailer | undefined;
    const payloads: Uint8Array[] = [];
    const frameStarts: Array<[number, number]> = [];
    let bodyLength = 0;
    let validBytes = bytes.byteLength;
    for (const item of walkLog(memorySource(bytes), source, options)) {
      if (item.kind === 'header') header = item.header;
      else if (item.kind === 'entries') {
        frameStarts.push([bodyLength, item.bodyOffset]);
        payloads.push(item.payload);
        bodyLength += item.payload.byteLength;
      } else if (item.kind === 'end') trailer = item.trailer;
      else validBytes = item.offset;
    }
    return new LogReader(source, header as LogHeader, trailer, payloads, options.reuseBuffer ? bytes : undefined, frameStarts, validBytes);
  }

  /** The file offset of a body offset, for messages. */
  fileOffset(bodyOffset: number): number {
    let lo = 0;
    let hi = this.#frameStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#frameStarts[mid][0] <= bodyOffset) lo = mid;
      else hi = mid - 1;
    }
    const start = this.#frameStarts[lo];
    return start ? start[1] + (bodyOffset - start[0]) : bodyOffset;
  }

  cursor(): LogCursor {
    return new LogCursor(this);
  }

  /** Every entry with its file offset and encoded size (bytes). Throws LOG_CORRUPT on an entry that does not decode. */
  *entries(): Generator<{ index: number; offset: number; size: number; entry: Entry }> {
    yield* cursorEntries(this.cursor());
  }
}

/** Move `payloads` (views of `bytes`, in order) next to each other at the first one's place; the body they make. */
const compactInPlace = (bytes: Uint8Array, payloads: readonly Uint8Array[]): Uint8Array => {
  if (payloads.length === 0) return bytes.subarray(0, 0);
  const start = payloads[0].byteOffset - bytes.byteOffset;
  let end = start;
  for (const payload of payloads) {
    const from = payload.byteOffset - bytes.byteOffset;
    if (from !== end) bytes.copyWithin(end, from, from + payload.byteLength);
    end += payload.byteLength;
  }
  return bytes.subarray(start, end);
};

/** The entries of a cursor, each with its file offset and encoded size (bytes). */
export function* cursorEntries(cursor: LogCursor): Generator<{ index: number; offset: number; size: number; entry: Entry }> {
  while (!cursor.done) {
    const offset = cursor.reader.fileOffset(cursor.position);
    const start = cursor.position;
    const index = cursor.index;
    const entry = cursor.next();
    yield { index, offset, size: cursor.entryEnd - start, entry };
  }
}

/** A sys entry a writer may keep for repeats: one string argument, a returned primitive (format.ts). */
export const isKeepable = (entry: Entry): boolean => {
  if (entry.kind !== 'sys' || entry.args.length !== 1 || typeof entry.args[0] !== 'string' || entry.outcome.type !== 'return') return false;
  return isKeptValue(entry.outcome.value);
};

/** What the cursors over consecutive frames of one log share. */
export interface CursorShared {
  /** Op names defined so far, by index. */
  readonly ops: string[];
  /** Index of the start delivery, -1 before it is read. */
  startIndex: number;
  /** The kept sys entries a repeat may name, by event index (format.ts). */
  readonly kept: Map<number, Entry>;
}

/** A position in a log's entries. */
export class LogCursor {
  readonly reader: CursorSource;
  /** Index of the next entry. */
  index = 0;
  /** Body offset of the next entry. */
  position = 0;
  readonly #body: Buffer;
  readonly #length: number;
  readonly #view: DataView;

  /**
   * A cursor over `reader`'s entries. A reader of one frame at a time
   * (inspect) passes the state of the cursor over earlier frames in `shared`
   * (op names defined, where the start delivery was) and the index of its
   * first entry.
   */
  constructor(reader: CursorSource, options: { shared?: CursorShared; index?: number } = {}) {
    this.reader = reader;
    this.#shared = options.shared ?? { ops: [], startIndex: -1, kept: new Map() };
    this.#ops = this.#shared.ops;
    this.index = options.index ?? 0;
    const body = reader.body;
    this.#body = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    this.#length = body.byteLength;
    this.#view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    this.#skipDefs();
  }

  get done(): boolean {
    return this.position >= this.#length;
  }

  /** Tag of the next entry (0 at the end). */
  get tag(): number {
    return this.position < this.#length ? this.#view.getUint8(this.position) : 0;
  }

  /** Read a `now` or `perf` value; the caller has checked the tag. */
  takeFloat(): number {
    const value = this.#view.getFloat64(this.position + 1, true);
    this.position += 9;
    this.index += 1;
    if (this.position < this.#length && this.#view.getUint8(this.position) === TAG_OPNAME) this.#skipDefs();
    return value;
  }

  /** Read a `random` entry into `target` if its length matches; false otherwise. */
  takeRandomInto(target: Uint8Array): boolean {
    const at = this.position;
    const first = this.#view.getUint8(at + 1);
    const length = first < 0x80 ? first : this.#varuint(at + 1);
    const start = first < 0x80 ? at + 2 : this.#next;
    if (length !== target.byteLength) return false;
    this.#check(start + length <= this.#length, at);
    const body = this.#body;
    // Buffer#copy costs about 150 ns a call whatever the length (argument checks, a subarray): most draws
    // are a few bytes (getRandomValues on a 16-byte array), copied by hand.
    if (length <= 64) for (let i = 0; i < length; i += 1) target[i] = body[start + i] as number;
    else body.copy(target, 0, start, start + length);
    this.position = start + length;
    this.index += 1;
    this.#skipDefs();
    return true;
  }

  /** Decode the next entry without consuming it (the decoded entry is kept for `next`). */
  peek(): Entry {
    if (this.#peekedAt === this.position && this.#peeked) return this.#peeked;
    const at = this.position;
    const index = this.index;
    const entry = this.#decode();
    this.#peeked = entry;
    this.#peekedAt = at;
    this.#peekedEnd = this.position;
    this.#peekedEntryEnd = this.entryEnd;
    this.position = at;
    this.index = index;
    return entry;
  }

  next(): Entry {
    if (this.#peekedAt === this.position && this.#peeked) {
      const entry = this.#peeked;
      this.position = this.#peekedEnd;
      this.entryEnd = this.#peekedEntryEnd;
      this.index += 1;
      this.#peeked = undefined;
      return entry;
    }
    return this.#decode();
  }

  #peeked: Entry | undefined;
  #peekedAt = -1;
  #peekedEnd = -1;
  #peekedEntryEnd = -1;
  /** Op names defined so far, by index. */
  readonly #ops: string[];
  readonly #shared: CursorShared;
  /** Op name definitions before this position have been read. */
  #defsEnd = 0;
  /** Where the last varuint read ended. */
  #next = 0;

  /** Step over op name definitions (they are not events), learning the new names. */
  #skipDefs(): void {
    while (this.position < this.#length && this.#view.getUint8(this.position) === TAG_OPNAME) {
      const at = this.position;
      const length = this.#varuint(at + 1);
      const start = this.#next;
      this.#check(start + length <= this.#length, at);
      if (at >= this.#defsEnd) {
        this.#ops.push(this.#body.toString('utf8', start, start + length));
        this.#defsEnd = start + length;
      }
      this.position = start + length;
    }
  }

  #decode(): Entry {
    const at = this.position;
    const tag = this.#view.getUint8(at);
    let entry: Entry | undefined;
    switch (tag) {
      case TAG_NOW:
      case TAG_PERF:
        this.entryEnd = at + 9;
        return { kind: tag === TAG_NOW ? 'now' : 'perf', value: this.takeFloat() };
      case TAG_SEED:
        this.#check(at + 1 + SEED_BYTES <= this.#length, at);
        entry = { kind: 'seed', seed: Uint8Array.prototype.slice.call(this.#body, at + 1, at + 1 + SEED_BYTES) };
        this.position = at + 1 + SEED_BYTES;
        break;
      case TAG_RANDOM: {
        const length = this.#varuint(at + 1);
        const start = this.#next;
        this.#check(start + length <= this.#length, at);
        entry = { kind: 'random', bytes: Uint8Array.prototype.slice.call(this.#body, start, start + length) };
        this.position = start + length;
        break;
      }
      case TAG_MSG: {
        const length = this.#varuint(at + 1);
        const start = this.#next;
        const tuple = this.#unpack(at, start, length);
        entry = Array.isArray(tuple) ? tupleToEntry(tuple) : undefined;
        this.#check(entry !== undefined, at);
        // One start delivery (module evaluation), and no delivery before it
        // (syscalls may come first: a granted module's values are read then).
        if (entry.kind === 'start') {
          this.#check(this.#shared.startIndex === -1 || this.#shared.startIndex === this.index, at);
          this.#shared.startIndex = this.index;
        } else if (entry.kind === 'call' || entry.kind === 'settle' || entry.kind === 'timer') {
          this.#check(this.#shared.startIndex !== -1 && this.#shared.startIndex < this.index, at);
        }
        this.position = start + length;
        break;
      }
      case TAG_SYS:
      case TAG_SYS_KEPT: {
        const op = this.#ops[this.#varuint(at + 1)];
        this.#check(op !== undefined, at);
        const was = tag === TAG_SYS_KEPT ? this.#varuint(this.#next) : 0;
        const length = this.#varuint(this.#next);
        const start = this.#next;
        entry = tupleToSys(op, this.#unpack(at, start, length));
        this.#check(entry !== undefined, at);
        if (tag === TAG_SYS_KEPT) {
          // What a writer keeps (writer.ts): one string argument, a returned primitive.
          this.#check(isKeepable(entry), at);
          const kept = this.#shared.kept;
          if (!kept.has(this.index)) {
            // (Decoded again, as after a peek by another cursor, it is kept already.)
            if (was > 0) {
              // It replaces the kept entry of its own op and argument, as a writer does (format.ts).
              const replaced = kept.get(was - 1);
              this.#check(replaced !== undefined && replaced.kind === 'sys' && entry.kind === 'sys' && replaced.op === entry.op && replaced.args[0] === entry.args[0], at);
              kept.delete(was - 1);
            }
            kept.set(this.index, entry);
          }
        }
        this.position = start + length;
        break;
      }
      case TAG_REPEAT: {
        // The same entry object again: entries are never written to once decoded.
        entry = this.#shared.kept.get(this.#varuint(at + 1));
        this.#check(entry !== undefined, at);
        this.position = this.#next;
        break;
      }
      default:
        this.#check(false, at);
    }
    this.index += 1;
    this.entryEnd = this.position;
    this.#skipDefs();
    return entry as Entry;
  }

  /** Where the last decoded entry ended (before any op name definitions after it). */
  entryEnd = 0;

  #unpack(at: number, start: number, length: number): unknown {
    this.#check(start + length <= this.#length, at);
    try {
      // The log's buffer is never written once read: its typed arrays may view it (see unpackViewing).
      return unpackViewing(this.#body.subarray(start, start + length));
    } catch (cause) {
      return this.#check(false, at, cause);
    }
  }

  /** A varuint at `at`; sets `#next` to the byte after it. */
  #varuint(at: number): number {
    let value = 0;
    let shift = 0;
    let pos = at;
    for (;;) {
      this.#check(pos < this.#length && shift < 35, at);
      const byte = this.#view.getUint8(pos++);
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) break;
      shift += 7;
    }
    this.#next = pos;
    return value;
  }

  #check(ok: boolean, at: number, cause?: unknown): asserts ok {
    if (ok) return;
    this.#fail(at, cause);
  }

  #fail(at: number, cause?: unknown): never {
    const offset = this.reader.fileOffset(at);
    throw new SnapshotError('LOG_CORRUPT', `${this.reader.source}: entry ${this.index} at byte ${offset} does not decode. The file is damaged; rebuild the snapshot with \`snapshot build\`.`, {
      cause,
      details: { file: this.reader.source, offset, index: this.index },
    });
  }
}
