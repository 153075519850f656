/** Readable renderings of entries: for divergence messages and `snapshot inspect`. */
import { describeWire } from './wire.js';
import type { Entry, Outcome } from './entries.js';
import type { LogReader } from './reader.js';

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
      return `Date.now() -> ${entry.value} (${new Date(entry.value).toISOString()})`;
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

/** A readable timeline of a whole log, one line an entry, with offsets and sizes. */
export const dumpLog = (reader: LogReader): string => {
  const lines: string[] = [];
  const h = reader.header;
  lines.push(`log ${reader.source}`);
  lines.push(`  service ${h.service}, format v${h.version}, written by membrane-snapshot ${h.libraryVersion}`);
  lines.push(`  archive sha256 ${h.archiveSha256}`);
  lines.push(
    reader.trailer
      ? `  sealed, ${reader.trailer.events} events, ${reader.validBytes} bytes`
      : `  NOT SEALED: the build did not finish; ${reader.validBytes} bytes are readable`,
  );
  const counts = new Map<string, { n: number; bytes: number }>();
  for (const { index, offset, size, entry } of reader.entries()) {
    const kindCount = counts.get(entry.kind) ?? { n: 0, bytes: 0 };
    kindCount.n += 1;
    kindCount.bytes += size;
    counts.set(entry.kind, kindCount);
    const turnMark = entry.kind === 'start' || entry.kind === 'call' || entry.kind === 'settle' || entry.kind === 'timer' ? '▶' : ' ';
    lines.push(`${String(index).padStart(7)} @${String(offset).padStart(8)} ${String(size).padStart(5)}B ${turnMark} ${describeEntry(entry)}`);
  }
  lines.push('  totals by kind:');
  for (const [kind, { n, bytes }] of counts) lines.push(`    ${kind.padEnd(7)} ${String(n).padStart(8)} entries ${String(bytes).padStart(10)} bytes`);
  return lines.join('\n');
};
