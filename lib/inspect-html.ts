/**
 * `snapshot inspect <log> --html out.html`: a log as one self-contained HTML
 * page (no script, no external resource: a strict Content-Security-Policy),
 * an SVG timeline along the log's order:
 *
 * - deliveries (module evaluation, calls, promise settlements, timers
 *   firing) as shaded bands, one per turn, labelled, with the wall-clock
 *   time the service read first in that turn when it read one;
 * - every entry as a mark in the lane of its kind (clock, randomness,
 *   timers, IO, console, other services, granted modules, answers), its
 *   height growing with its size in bytes, its text as a tooltip;
 * - an optional marked entry (the event a failed verify names), in red;
 * - totals by kind.
 *
 * Every text from the log is escaped: a log is untrusted input.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LogReader, describeEntry, type Entry } from '../replay-log/index.js';

/** At most this many entries are drawn; the page says when a log has more. */
export const HTML_MAX_ENTRIES = 20_000;

const escape = (text: string): string =>
  text.replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

interface Lane {
  readonly id: string;
  readonly label: string;
  readonly color: string;
}

const lanes: readonly Lane[] = [
  { id: 'delivery', label: 'deliveries', color: '#1f6feb' },
  { id: 'answer', label: 'answers', color: '#8957e5' },
  { id: 'clock', label: 'clock', color: '#d29922' },
  { id: 'random', label: 'randomness', color: '#bf8700' },
  { id: 'timer', label: 'timers', color: '#2da44e' },
  { id: 'io', label: 'IO (fetch, fs, process, os)', color: '#cf222e' },
  { id: 'console', label: 'console', color: '#57606a' },
  { id: 'service', label: 'other services', color: '#0969da' },
  { id: 'module', label: 'granted modules', color: '#bc4c00' },
  { id: 'other', label: 'other syscalls', color: '#6e7781' },
];

const laneOf = (entry: Entry): string => {
  switch (entry.kind) {
    case 'start':
    case 'call':
    case 'settle':
    case 'timer':
      return 'delivery';
    case 'ret':
      return 'answer';
    case 'now':
    case 'perf':
      return 'clock';
    case 'seed':
    case 'random':
      return 'random';
    case 'send':
      return 'service';
    case 'sys': {
      const op = entry.op;
      if (op.startsWith('timer')) return 'timer';
      if (op.startsWith('console')) return 'console';
      if (op.startsWith('service')) return 'service';
      if (op.startsWith('module:')) return 'module';
      if (/^(fetch|fs|process|os|env|crypto)/.test(op)) return 'io';
      return 'other';
    }
    default:
      return 'other';
  }
};

const deliveryLabel = (entry: Entry): string => {
  switch (entry.kind) {
    case 'start':
      return 'module evaluation';
    case 'call':
      return `call #${entry.target}${entry.method === null ? '' : `.${entry.method}`}`;
    case 'settle':
      return `promise #${entry.promise} ${entry.ok ? 'fulfilled' : 'rejected'}`;
    case 'timer':
      return `timer #${entry.timer} fired`;
    default:
      return entry.kind;
  }
};

export interface HtmlOptions {
  /** An entry to mark (the event index a REPLAY_DIVERGED error names). */
  readonly mark?: number;
}

/**
 * Render the log at `file` as an HTML page (a string). Reads unsealed logs
 * too. Throws what `LogReader.open` throws (`LOG_CORRUPT`, ...).
 */
export const logToHtml = (file: string, options: HtmlOptions = {}): string => {
  const reader = LogReader.open(fs.readFileSync(file), file, { allowUnsealed: true });
  const entries: Array<{ index: number; size: number; entry: Entry }> = [];
  const totals = new Map<string, { n: number; bytes: number }>();
  let total = 0;
  for (const { index, size, entry } of reader.entries()) {
    total += 1;
    const t = totals.get(entry.kind) ?? { n: 0, bytes: 0 };
    t.n += 1;
    t.bytes += size;
    totals.set(entry.kind, t);
    if (entries.length < HTML_MAX_ENTRIES) entries.push({ index, size, entry });
  }
  const step = Math.max(2, Math.min(14, Math.floor(1400 / Math.max(1, entries.length))));
  const left = 190;
  const top = 40;
  const laneHeight = 34;
  const width = left + entries.length * step + 40;
  const height = top + lanes.length * laneHeight + 30;
  const x = (i: number) => left + i * step;
  const laneY = new Map(lanes.map((lane, i) => [lane.id, top + i * laneHeight]));
  const parts: string[] = [];

  // Turns: from each delivery to the entry before the next one.
  const starts = entries.map((e, i) => (laneOf(e.entry) === 'delivery' ? i : -1)).filter(i => i >= 0);
  starts.forEach((start, k) => {
    const end = k + 1 < starts.length ? starts[k + 1] : entries.length;
    const firstNow = entries.slice(start, end).find(e => e.entry.kind === 'now')?.entry as { value: number } | undefined;
    const label = `${deliveryLabel(entries[start].entry)}${firstNow ? ` @ ${new Date(firstNow.value).toISOString()}` : ''}`;
    parts.push(
      `<g class="turn"><rect x="${x(start)}" y="${top - 22}" width="${(end - start) * step}" height="${lanes.length * laneHeight + 22}" fill="${k % 2 ? '#eef4ff' : '#f6f8fa'}" stroke="#d0d7de"/>` +
        `<text x="${x(start) + 3}" y="${top - 8}" font-size="10">${escape(label.slice(0, Math.max(1, Math.floor(((end - start) * step) / 6))))}</text>` +
        `<title>turn ${k + 1}: ${escape(label)} (${end - start} entries)</title></g>`,
    );
  });
  lanes.forEach(lane => {
    const y = laneY.get(lane.id) as number;
    parts.push(`<text x="8" y="${y + laneHeight / 2 + 4}" font-size="12" fill="${lane.color}">${escape(lane.label)}</text>`);
    parts.push(`<line x1="${left}" x2="${width - 30}" y1="${y + laneHeight - 2}" y2="${y + laneHeight - 2}" stroke="#d8dee4"/>`);
  });
  for (const [i, { index, size, entry }] of entries.entries()) {
    const lane = lanes.find(l => l.id === laneOf(entry)) as Lane;
    const y = laneY.get(lane.id) as number;
    const h = Math.min(laneHeight - 6, 6 + Math.log2(1 + size) * 2);
    const marked = options.mark === index;
    parts.push(
      `<rect class="entry" data-kind="${entry.kind}" x="${x(i)}" y="${y + laneHeight - 2 - h}" width="${Math.max(1, step - 1)}" height="${h}" fill="${marked ? '#ff0000' : lane.color}">` +
        `<title>#${index} ${size} B: ${escape(describeEntry(entry))}</title></rect>`,
    );
  }
  if (options.mark !== undefined && options.mark < entries.length) {
    parts.push(`<line class="mark" x1="${x(options.mark)}" x2="${x(options.mark)}" y1="${top - 22}" y2="${height - 20}" stroke="#ff0000" stroke-width="2"/>`);
  }
  const h = reader.header;
  const rows = [...totals].map(([kind, t]) => `<tr><td>${escape(kind)}</td><td>${t.n}</td><td>${t.bytes}</td></tr>`).join('');
  const markText =
    options.mark === undefined
      ? ''
      : `<p class="diverged">Marked: event #${options.mark}${entries[options.mark] ? `: ${escape(describeEntry(entries[options.mark].entry, true))}` : ' (beyond the log)'}</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>replay log of ${escape(h.service)}</title>
<style>body{font:14px system-ui,sans-serif;margin:16px;color:#1f2328;background:#fff}svg{display:block;border:1px solid #d0d7de;margin:12px 0}table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:2px 8px;text-align:right}td:first-child,th:first-child{text-align:left}.diverged{color:#cf222e;font-weight:bold}</style>
</head><body>
<h1>Service ${escape(h.service)}</h1>
<p>${escape(path.basename(file))}: ${total} entries, ${reader.validBytes} bytes, ${reader.trailer ? 'sealed' : 'NOT SEALED (the build did not finish)'}; format v${h.version}, written by membrane-snapshot ${escape(h.libraryVersion)}; ${starts.length} turns.${total > entries.length ? ` Only the first ${entries.length} entries are drawn.` : ''}</p>
${markText}
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">
${parts.join('\n')}
</svg>
<h2>Totals by kind</h2>
<table><tr><th>kind</th><th>entries</th><th>bytes</th></tr>${rows}</table>
</body></html>
`;
};
