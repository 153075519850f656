/** Readable renderings of entries: for divergence messages and `snapshot inspect`. */
import { describeWire } from './wire.js';
import type { Entry, Outcome } from './entries.js';
import { LogCursor, cursorEntries, type LogReader } from './reader.js';
import { readLogFile } from './frames.js';
import { isSnapshotError } from './errors.js';
import { MAX_TIME_MS } from './format.js';
import type { LogHeader } from './entries.js';

const isoTime = (ms: number): string => (Number.isFinite(ms) && Math.abs(ms) <= MAX_TIME_MS ? new Date(ms).toISOString() : 'not a valid time');

/**
 * One line for an entry. `wide` renders values whole (divergence reports,
 * where the difference may lie anywhere); otherwise values are abridged.
 */
export const describeEntry = (entry: Entry, wide = false): string => {
  const budget = wide ? 1_000_000 : 80;
  const value = (v: unknown) => describeWire(v, budget, wide);
  const args = (values: readonly unknown[]): string => values.map(v => describeWire(v, wide ? budget : 60, wide)).join(', ');
  const outcome = (o: Outcome): string => {
    if (o.type === 'async') return ` -> promise #${o.promise}`;
    if (o.type === 'throw') return ` -> throws ${value(o.value)}`;
    return o.value === undefined ? '' : ` -> ${value(o.value)}`;
  };
  switch (entry.kind) {
    case 'start':
      return 'deliver start (module evaluation)';
    case 'call':
      return `deliver call #${entry.target}${entry.method === null ? '' : `.${entry.method}`}(${args(entry.args)}) answer #${entry.answer}`;
    case 'settle':
      return `deliver settle promise #${entry.promise} ${entry.ok ? 'fulfilled' : 'rejected'} ${value(entry.value)}`;
    case 'timer':
      return `deliver timer #${entry.timer} fired`;
    case 'now':
      return `Date.now() -> ${entry.value} (${isoTime(entry.value)})`;
    case 'perf':
      return `performance.now() -> ${entry.value}`;
    case 'seed':
      return 'Math.random() seeded';
    case 'random':
      return `crypto random ${entry.bytes.byteLength} bytes`;
    case 'sys':
      return `${entry.op}(${args(entry.args)})${outcome(entry.outcome)}`;
    case 'send':
      return `${describeWire(entry.target)}${entry.method === null ? '' : `.${entry.method}`}(${args(entry.args)})${outcome(entry.outcome)}`;
    case 'ret':
      return `answer #${entry.answer} ${entry.ok ? 'returns' : 'throws'} ${value(entry.value)}`;
    default:
      return 'unknown entry';
  }
};

/** Builds the timeline text of `dumpLog` and `dumpLogFile`, one line an entry. */
class Timeline {
  readonly #counts = new Map<string, { n: number; bytes: number }>();
  readonly #write: (line: string) => void;

  constructor(write: (line: string) => void) {
    this.#write = write;
  }

  header(source: string, h: LogHeader): void {
    this.#write(`log ${source}`);
    this.#write(`  service ${h.service}, format v${h.version}, written by membrane-snapshot ${h.libraryVersion}`);
    this.#write(`  archive sha256 ${h.archiveSha256}`);
  }

  entry(index: number, offset: number, size: number, entry: Entry): void {
    const kindCount = this.#counts.get(entry.kind) ?? { n: 0, bytes: 0 };
    kindCount.n += 1;
    kindCount.bytes += size;
    this.#counts.set(entry.kind, kindCount);
    const turnMark = entry.kind === 'start' || entry.kind === 'call' || entry.kind === 'settle' || entry.kind === 'timer' ? '▶' : ' ';
    // A repeat (format.ts) decodes as the very entry it repeats: say which.
    let repeats = '';
    if (entry.kind === 'sys') {
      const first = this.#firstIndex.get(entry);
      if (first === undefined) this.#firstIndex.set(entry, index);
      else repeats = ` (repeats ${first})`;
    }
    this.#write(`${String(index).padStart(7)} @${String(offset).padStart(8)} ${String(size).padStart(5)}B ${turnMark} ${describeEntry(entry)}${repeats}`);
  }

  /** The index each sys entry was first met at (the cursor gives a repeat the kept entry's object). */
  readonly #firstIndex = new WeakMap<Entry, number>();

  totals(): void {
    this.#write('  totals by kind:');
    for (const [kind, { n, bytes }] of this.#counts) this.#write(`    ${kind.padEnd(7)} ${String(n).padStart(8)} entries ${String(bytes).padStart(10)} bytes`);
  }
}

const sealedLine = (events: number, bytes: number): string => `  sealed, ${events} events, ${bytes} bytes`;
const unsealedLine = (bytes: number): string => `  NOT SEALED: the build did not finish; ${bytes} bytes are readable`;

/** A readable timeline of a whole log in memory, one line an entry, with offsets and sizes. */
export const dumpLog = (reader: LogReader): string => {
  const lines: string[] = [];
  const timeline = new Timeline(line => lines.push(line));
  timeline.header(reader.source, reader.header);
  lines.push(reader.trailer ? sealedLine(reader.trailer.events, reader.validBytes) : unsealedLine(reader.validBytes));
  for (const { index, offset, size, entry } of reader.entries()) timeline.entry(index, offset, size, entry);
  timeline.totals();
  return lines.join('\n');
};

/**
 * Stream the timeline of a log file to `write` (called with chunks of about
 * 64 KiB of text), reading one frame at a time: memory stays bounded by the
 * largest frame whatever the log's length. The status (sealed, or not) and
 * the totals come last. A log that is damaged or cut short mid-frame shows
 * every whole frame before the damage, then a line saying where and why it
 * stops; then the error is thrown (LOG_CORRUPT, LOG_TRUNCATED,
 * LOG_VERSION_UNSUPPORTED, or SNAPSHOT_INVALID for an unreadable file).
 */
export const dumpLogFile = (file: string, write: (text: string) => void): void => {
  let chunk: string[] = [];
  let chunkLength = 0;
  const line = (text: string): void => {
    chunk.push(text);
    chunkLength += text.length + 1;
    if (chunkLength >= 64 * 1024) flush();
  };
  const flush = (): void => {
    if (chunk.length) write(`${chunk.join('\n')}\n`);
    chunk = [];
    chunkLength = 0;
  };
  const timeline = new Timeline(line);
  const shared = { ops: [] as string[], startIndex: -1, kept: new Map() };
  let index = 0;
  try {
    for (const item of readLogFile(file, { allowUnsealed: true })) {
      if (item.kind === 'header') timeline.header(file, item.header);
      else if (item.kind === 'entries') {
        const { payload, bodyOffset } = item;
        const cursor = new LogCursor({ source: file, body: payload, fileOffset: at => bodyOffset + at }, { shared, index });
        for (const e of cursorEntries(cursor)) timeline.entry(e.index, e.offset, e.size, e.entry);
        index = cursor.index;
      } else if (item.kind === 'end') line(sealedLine(item.trailer.events, item.bytes));
      else line(unsealedLine(item.offset));
    }
  } catch (error) {
    if (isSnapshotError(error)) {
      const at = typeof error.details.offset === 'number' ? ` at byte ${error.details.offset}` : '';
      line(`  STOPS${at} after ${index} whole events: ${error.code}`);
    }
    timeline.totals();
    flush();
    throw error;
  }
  timeline.totals();
  flush();
};
