/**
 * How the CLI shows progress: one line per service and phase on stderr
 * (`archived`, `recorded`, `waiting`, `replayed`), and on a terminal a live
 * status line under them (a bar when the number of services is known, the
 * events recorded so far during a build), redrawn in place and erased at
 * the end. `quiet` shows nothing.
 */
import { onProgress, type ProgressEvent } from './progress.js';

export interface ProgressViewOptions {
  /** Print nothing at all. */
  readonly quiet?: boolean;
  /** Services expected (restore, verify), for the bar; unknown during a build. */
  readonly total?: number;
  /** What is being done, for the status line: "building", "restoring", "verifying". */
  readonly activity: string;
  /** Where lines go (default: process.stderr). */
  readonly stream?: NodeJS.WriteStream;
  /** Totals so far, sampled for the status line while a build records (events, log bytes). */
  readonly sample?: () => { services: number; events: number; bytes: number };
}

export interface ProgressView {
  /** Print a line above the status line (for results shown as they arrive). */
  line(text: string, stream?: NodeJS.WriteStream): void;
  /** Stop listening and erase the status line. */
  stop(): void;
}

/** Bytes for people: `930 B`, `12.4 KiB`, `3.1 MiB`. */
export const formatBytes = (n: number): string =>
  n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`;

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The line printed for one progress event (not for `verified`: the verify command prints its own results). */
export const describeProgress = (e: ProgressEvent): string | undefined => {
  const ms = e.ms === undefined ? '' : ` in ${e.ms.toFixed(0)} ms`;
  switch (e.phase) {
    case 'archived':
      return `  archived  ${e.service}: ${formatBytes(e.bytes ?? 0)}${ms}`;
    case 'recorded':
      return `  recorded  ${e.service}: ${plural(e.events ?? 0, 'event')}, log ${formatBytes(e.bytes ?? 0)}`;
    case 'waiting':
      return `  waiting   ${e.service}: still busy, waiting on ${(e.waitingOn ?? []).join('; ') || 'its queue'}`;
    case 'replayed':
      return `  replayed  ${e.service}: ${plural(e.events ?? 0, 'event')}${ms}`;
    default:
      return undefined;
  }
};

const BAR_WIDTH = 24;

export const startProgressView = (options: ProgressViewOptions): ProgressView => {
  const stream = options.stream ?? process.stderr;
  if (options.quiet) {
    return { line: (text, to = process.stdout) => void to.write(`${text}\n`), stop: () => {} };
  }
  const live = stream.isTTY === true;
  // On a terminal, whatever else this process writes (the build script, a
  // service's console) first erases the status line, which is drawn again
  // after it; writes go through the streams' own write functions.
  const outputs = live ? [process.stdout, process.stderr, stream].filter((s, i, all) => all.indexOf(s) === i) : [];
  const originals = new Map(outputs.map(s => [s, s.write] as const));
  const raw = (to: NodeJS.WriteStream, text: string): void => void (originals.get(to) ?? to.write).call(to, text);
  let done = 0;
  let shown = false;
  let spin = 0;
  const status = (): string => {
    const frames = '|/-\\';
    spin = (spin + 1) % frames.length;
    if (options.total) {
      const filled = Math.round((done / options.total) * BAR_WIDTH);
      return `${options.activity} [${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${done}/${options.total} services`;
    }
    const { services, events, bytes } = options.sample?.() ?? { services: done, events: 0, bytes: 0 };
    return `${frames[spin]} ${options.activity}: ${plural(services, 'service')}, ${plural(events, 'event')} recorded, ${formatBytes(bytes)} of logs`;
  };
  const erase = () => {
    if (shown) raw(stream, '\r\x1b[2K');
    shown = false;
  };
  const draw = () => {
    if (!live) return;
    erase();
    raw(stream, status().slice(0, Math.max(20, (stream.columns || 80) - 1)));
    shown = true;
  };
  const print = (text: string, to: NodeJS.WriteStream = stream) => {
    erase();
    raw(to, `${text}\n`);
    draw();
  };
  for (const [output, write] of originals) {
    output.write = ((...args: Parameters<typeof write>) => {
      erase();
      const result = write.apply(output, args);
      // Redraw only after a complete line, so partial writes stay together.
      const chunk = args[0];
      if (typeof chunk === 'string' ? chunk.endsWith('\n') : chunk instanceof Uint8Array && chunk[chunk.length - 1] === 10) draw();
      return result;
    }) as typeof write;
  }
  const unsubscribe = onProgress(event => {
    if (event.phase === 'replayed' || event.phase === 'verified' || (event.phase === 'recorded' && !options.total)) done += 1;
    const text = describeProgress(event);
    if (text) print(text);
    else draw();
  });
  const ticker = live ? setInterval(draw, 100) : undefined;
  ticker?.unref();
  draw();
  return {
    line: (text, to = process.stdout) => print(text, to),
    stop: () => {
      unsubscribe();
      if (ticker) clearInterval(ticker);
      erase();
      for (const [output, write] of originals) output.write = write;
    },
  };
};
