/**
 * Streaming log writer. Entries go to an in-memory buffer and leave as one
 * checksummed frame per `flush()` (the membrane flushes at the end of every
 * turn); the sink sees whole frames only. A running sha256 gives the content
 * hash at `seal()` without reading the file back.
 */
import fs from 'node:fs';
import { createHash, type Hash } from 'node:crypto';
import { isKeptValue, packr, entryToTuple, outcomeCodeOf, outcomePayload } from './codec.js';
import { EXTERNAL_BYTES, MsgWriter, type EncodedParts } from './msg-writer.js';
import { crc32, frameCrc } from './crc.js';
import { SnapshotError } from './errors.js';
import {
  FRAME_END,
  FRAME_ENTRIES,
  FRAME_HEADER,
  FRAME_OVERHEAD,
  MAGIC,
  MAX_FRAME_BYTES,
  SEED_BYTES,
  TAG_MSG,
  TAG_NOW,
  TAG_OPNAME,
  TAG_PERF,
  TAG_REPEAT,
  TAG_SYS,
  TAG_SYS_KEPT,
  KEPT_MAX_BYTES,
  KEPT_MAX_CHARS,
  MAX_KEPT,
  TAG_RANDOM,
  TAG_SEED,
} from './format.js';
import type { Entry, LogHeader, Outcome } from './entries.js';

/** Where frames go. `write` must have written the bytes when it returns. */
export interface LogSink {
  write(bytes: Uint8Array): void;
  close(): void;
}

/** A sink that appends to a file with synchronous writes. */
export const fileSink = (path: string): LogSink => {
  const fd = fs.openSync(path, 'w', 0o600); // only the owner: a log holds what the service saw
  let open = true;
  return {
    write(bytes) {
      let done = 0;
      while (done < bytes.byteLength) done += fs.writeSync(fd, bytes, done, bytes.byteLength - done);
    },
    close() {
      if (!open) return;
      open = false;
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    },
  };
};

/** A sink that keeps the frames in memory (tests, benchmarks, transports). */
export const memorySink = (): LogSink & { bytes(): Uint8Array } => {
  const chunks: Uint8Array[] = [];
  return {
    write(bytes) {
      chunks.push(Buffer.from(bytes)); // a copy: the writer reuses its buffer
    },
    close() {},
    bytes: () => Buffer.concat(chunks),
  };
};

const FLUSH_AT = 64 * 1024;

/** Reads in a row that miss, with MAX_KEPT kept, before lookups pause; and how many reads they pause for. */
const KEPT_MISS_RUN = 4096;
const KEPT_SKIP = 65536;

/** A kept sys entry: the event that recorded it, and the primitive it returned. */
interface Kept {
  readonly event: number;
  readonly value: unknown;
}

/** A value a kept entry may return (isKeptValue), a string of at most KEPT_MAX_CHARS. */
const isShortPrimitive = (value: unknown): boolean => isKeptValue(value) && (typeof value !== 'string' || value.length <= KEPT_MAX_CHARS);

/** Bytes of `value` as a varuint. */
const varuintBytes = (value: number): number => {
  let n = 1;
  for (let v = value; v >= 0x80; v = Math.floor(v / 128)) n += 1;
  return n;
};

export class LogWriter {
  #sink: LogSink;
  // A Buffer (not a plain Uint8Array) for its native utf8 `write`. Single
  // bytes go through the DataView: under SES lockdown, indexed stores into
  // typed arrays are many times slower on Node 20.
  #buf: Buffer = Buffer.allocUnsafe(FLUSH_AT + 1024);
  #view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
  /** `#buf.byteLength`, kept as a number: the typed-array getter is slow under lockdown. */
  #capacity = this.#buf.byteLength;
  #pos = FRAME_OVERHEAD;
  #scratch = new MsgWriter();
  #ops = new Map<string, number>();
  /** Kept sys entries (format.ts), per op index: argument -> the event and what it returned. */
  #kept: Array<Map<string, Kept> | undefined> = [];
  #keptCount = 0;
  /** Lookups in a row that found nothing with no room left to keep it (see #keepLookups). */
  #keptMisses = 0;
  /** Kept and repeat entries exist from format version 2. */
  #keeps: boolean;
  /** The service whose log this is, for messages. */
  #service: string;
  #events = 0;
  #bytes = 0;
  #hash: Hash = createHash('sha256');
  #sealed = false;

  constructor(sink: LogSink, header: LogHeader) {
    this.#sink = sink;
    this.#keeps = header.version >= 2;
    this.#service = header.service;
    this.#emit(MAGIC);
    this.#frame(FRAME_HEADER, packr.pack(header));
  }

  /** Entries written so far. */
  get events(): number {
    return this.#events;
  }

  /** Bytes handed to the sink so far (what survives a crash). */
  get bytesWritten(): number {
    return this.#bytes;
  }

  get sealed(): boolean {
    return this.#sealed;
  }

  now(value: number): void {
    this.clock(TAG_NOW, value);
  }

  perf(value: number): void {
    this.clock(TAG_PERF, value);
  }

  /** A clock read: `now` or `perf`, by tag. */
  clock(tag: typeof TAG_NOW | typeof TAG_PERF, value: number): void {
    this.#reserve(9);
    this.#view.setUint8(this.#pos, tag);
    this.#view.setFloat64(this.#pos + 1, value, true);
    this.#pos += 9;
    this.#counted();
  }

  seed(seed: Uint8Array): void {
    if (seed.byteLength !== SEED_BYTES) throw new RangeError(`a seed is ${SEED_BYTES} bytes`);
    this.#reserve(1 + SEED_BYTES);
    this.#view.setUint8(this.#pos, TAG_SEED);
    this.#buf.set(seed, this.#pos + 1);
    this.#pos += 1 + SEED_BYTES;
    this.#counted();
  }

  random(bytes: Uint8Array): void {
    this.#blob(TAG_RANDOM, bytes);
    this.#counted();
  }

  entry(entry: Entry): void {
    switch (entry.kind) {
      case 'now':
        return this.now(entry.value);
      case 'perf':
        return this.perf(entry.value);
      case 'seed':
        return this.seed(entry.seed);
      case 'random':
        return this.random(entry.bytes);
      case 'sys':
        return this.sys(entry.op, entry.args, entry.outcome);
      default:
        this.#blob(TAG_MSG, this.#scratch.encodeParts(entryToTuple(entry)));
        return this.#counted();
    }
  }

  /**
   * A syscall by stable name: the name is written once per log, then referred
   * to by index. A read with one string argument that returns a short
   * primitive is kept: the same read answered the same later is written as a
   * repeat of it (2 to 4 bytes), so a hot `process.env.NODE_ENV` or
   * `existsSync` costs no encoding (format.ts).
   */
  sys(op: string, args: readonly unknown[], outcome: Outcome): void {
    let index = this.#ops.get(op);
    if (index === undefined) {
      index = this.#ops.size;
      this.#ops.set(op, index);
      this.#blob(TAG_OPNAME, Buffer.from(op, 'utf8')); // a definition, not an event
    }
    if (args.length === 1 && outcome.type === 'return' && this.#keeps) {
      const key = args[0];
      const value = outcome.value;
      if (typeof key === 'string' && key.length <= KEPT_MAX_CHARS && isShortPrimitive(value) && this.#keepLookups()) {
        let byKey = this.#kept[index];
        const kept = byKey?.get(key);
        if (kept === undefined && this.#keptCount >= MAX_KEPT) this.#keptMisses += 1;
        // Object.is, spelt out: a -0 never gets here (it crosses as a Tagged), and NaN is itself.
        if (kept !== undefined && (kept.value === value || (value !== value && kept.value !== kept.value))) {
          this.#reserve(1 + 5);
          this.#keptMisses = 0;
          this.#view.setUint8(this.#pos++, TAG_REPEAT);
          this.#varuint(kept.event);
          this.#counted();
          return;
        }
        if (kept !== undefined || this.#keptCount < MAX_KEPT) {
          const event = this.#events;
          if (this.#sysEntry(TAG_SYS_KEPT, index, kept === undefined ? 0 : kept.event + 1, args, outcome)) {
            if (byKey === undefined) this.#kept[index] = byKey = new Map();
            if (kept === undefined) this.#keptCount += 1;
            byKey.set(key, { event, value });
            return;
          }
        }
      }
    }
    this.#sysEntry(TAG_SYS, index, -1, args, outcome);
  }

  /**
   * Whether to look the read up among the kept ones. Once MAX_KEPT are kept,
   * a run of reads that are all new (a service walking many paths) stops
   * the lookups for a while: each costs hashing the argument and could only
   * miss. Skipping one only writes the entry whole.
   */
  #keepLookups(): boolean {
    if (this.#keptMisses < KEPT_MISS_RUN) return true;
    if (++this.#keptMisses < KEPT_MISS_RUN + KEPT_SKIP) return false;
    this.#keptMisses = 0;
    return true;
  }

  /**
   * tag op [was] length tuple, encoded straight into the frame. A kept entry
   * (`was` >= 0) is written only if it encodes in place within
   * KEPT_MAX_BYTES: false, and nothing written, otherwise.
   */
  #sysEntry(tag: number, index: number, was: number, args: readonly unknown[], outcome: Outcome): boolean {
    // The tuple codec.ts's sysTuple makes, encoded without making it, straight
    // into the frame: tag, op, a length byte guessed short, then the tuple.
    const start = this.#pos;
    this.#reserve(1 + 5 + 5 + 1);
    this.#view.setUint8(this.#pos++, tag);
    this.#varuint(index);
    if (was >= 0) this.#varuint(was);
    const body = this.#pos + 1;
    const scratch = this.#scratch;
    const end = scratch.encodeTripleInto(this.#buf, this.#view, this.#capacity, body, args, outcomeCodeOf(outcome), outcomePayload(outcome));
    if (scratch.directBuffer !== this.#buf) this.#adopt(scratch.directBuffer, scratch.directView);
    if (end < 0 || (was >= 0 && end - body > KEPT_MAX_BYTES)) {
      this.#pos = start;
      if (was >= 0) return false;
      // A large entry: encoded in parts, maybe as a frame of its own (see #blob).
      this.#blob(TAG_SYS, scratch.encodeTripleParts(args, outcomeCodeOf(outcome), outcomePayload(outcome)), index);
      this.#counted();
      return true;
    }
    const length = end - body;
    if (length < 0x80) {
      this.#view.setUint8(body - 1, length);
      this.#pos = end;
    } else {
      // The length takes more than the byte left for it: move the tuple up.
      const more = varuintBytes(length) - 1;
      this.#pos = end;
      this.#reserve(more);
      this.#buf.copyWithin(body + more, body, end);
      this.#pos = body - 1;
      this.#varuint(length);
      this.#pos = end + more;
    }
    this.#counted();
    return true;
  }

  /** Take over a frame buffer the encoder grew (it holds this one's bytes). */
  #adopt(buf: Buffer, view: DataView): void {
    this.#buf = buf;
    this.#view = view;
    this.#capacity = buf.byteLength;
  }

  /** Write buffered entries as one frame. Cheap when nothing is buffered. */
  flush(): void {
    if (this.#pos === FRAME_OVERHEAD || this.#sealed) return;
    const payloadLength = this.#pos - FRAME_OVERHEAD;
    const payload = this.#buf.subarray(FRAME_OVERHEAD, this.#pos);
    this.#view.setUint8(0, FRAME_ENTRIES);
    this.#view.setUint32(1, payloadLength, true);
    this.#view.setUint32(5, frameCrc(FRAME_ENTRIES, payload), true);
    this.#emit(this.#buf.subarray(0, this.#pos));
    this.#pos = FRAME_OVERHEAD;
  }

  /** Flush, write the closing frame, close the sink; returns the sha256 of the file. */
  seal(): { sha256: string; bytes: number; events: number } {
    this.flush();
    this.#frame(FRAME_END, packr.pack({ events: this.#events }));
    this.#sealed = true;
    this.#sink.close();
    return { sha256: this.#hash.digest('hex'), bytes: this.#bytes, events: this.#events };
  }

  /** Flush and close without sealing (the build failed): the log stays readable up to its last whole frame. */
  abandon(): void {
    if (this.#sealed) return;
    try {
      if (this.#broken === undefined) this.flush();
    } finally {
      this.#sealed = true;
      this.#sink.close();
    }
  }

  #counted(): void {
    this.#events += 1;
    if (this.#pos >= FLUSH_AT) this.flush();
  }

  /**
   * tag [prefix:varuint] length:varuint bytes. A large entry (a part of
   * `EXTERNAL_BYTES` or more: a big fetch body, a file) is written as a frame
   * of its own straight to the sink, its parts never copied into the buffer.
   */
  #blob(tag: number, encoded: Uint8Array | EncodedParts, prefix?: number): void {
    const byteLength = encoded.byteLength;
    if (byteLength > MAX_FRAME_BYTES - 64) {
      throw new SnapshotError('NOT_PASSABLE', `one recorded value is ${byteLength} bytes; a replay log entry holds at most ${MAX_FRAME_BYTES - 64} bytes (1 GiB).`, {
        details: { bytes: byteLength },
      });
    }
    if (byteLength >= EXTERNAL_BYTES) return this.#largeEntry(tag, encoded instanceof Uint8Array ? [encoded] : encoded.parts, byteLength, prefix);
    this.#reserve(1 + 10 + byteLength);
    this.#view.setUint8(this.#pos++, tag);
    if (prefix !== undefined) this.#varuint(prefix);
    this.#varuint(byteLength);
    if (encoded instanceof Uint8Array) {
      this.#buf.set(encoded, this.#pos);
      this.#pos += byteLength;
      return;
    }
    for (const part of encoded.parts) {
      this.#buf.set(part, this.#pos);
      this.#pos += part.byteLength;
    }
  }

  /** One entry as one frame, written part by part (the CRC runs over the parts in turn). */
  #largeEntry(tag: number, parts: readonly Uint8Array[], byteLength: number, prefix: number | undefined): void {
    this.flush();
    this.#reserve(1 + 10);
    this.#view.setUint8(this.#pos++, tag);
    if (prefix !== undefined) this.#varuint(prefix);
    this.#varuint(byteLength);
    const head = this.#buf.subarray(FRAME_OVERHEAD, this.#pos);
    let crc = frameCrc(FRAME_ENTRIES, head);
    for (const part of parts) crc = crc32(part, crc);
    this.#view.setUint8(0, FRAME_ENTRIES);
    this.#view.setUint32(1, head.byteLength + byteLength, true);
    this.#view.setUint32(5, crc, true);
    this.#emit(this.#buf.subarray(0, this.#pos));
    for (const part of parts) this.#emit(part);
    this.#pos = FRAME_OVERHEAD;
  }

  #varuint(value: number): void {
    let n = value;
    while (n >= 0x80) {
      this.#view.setUint8(this.#pos++, (n & 0x7f) | 0x80);
      n >>>= 7;
    }
    this.#view.setUint8(this.#pos++, n);
  }

  #reserve(n: number): void {
    if (this.#sealed) {
      throw new SnapshotError(
        'USAGE',
        `service "${this.#service}" was used after its build ended (its replay log is sealed): what it did now would not be in the snapshot. Use a service only while its build script runs.`,
        { details: { service: this.#service } },
      );
    }
    if (this.#pos + n <= this.#capacity) return;
    const next = Buffer.allocUnsafe(Math.max(this.#capacity * 2, this.#pos + n));
    this.#buf.copy(next, 0, 0, this.#pos);
    this.#buf = next;
    this.#view = new DataView(next.buffer, next.byteOffset, next.byteLength);
    this.#capacity = next.byteLength;
  }

  #frame(type: number, payload: Uint8Array): void {
    const head = new Uint8Array(FRAME_OVERHEAD);
    const view = new DataView(head.buffer);
    view.setUint8(0, type);
    view.setUint32(1, payload.byteLength, true);
    view.setUint32(5, frameCrc(type, payload), true);
    this.#emit(Buffer.concat([head, payload]));
  }

  /**
   * Hand bytes to the sink. A sink that fails (a full disk, a file-size
   * limit) may have written part of them, so the file no longer ends on a
   * frame: the failure is latched, and every later write, flush or seal
   * throws it again, so a damaged log is never sealed as a good one.
   */
  #emit(bytes: Uint8Array): void {
    if (this.#broken !== undefined) throw this.#broken;
    try {
      this.#sink.write(bytes);
    } catch (error) {
      this.#broken = error;
      throw error;
    }
    this.#hash.update(bytes);
    this.#bytes += bytes.byteLength;
  }

  #broken: unknown;
}
