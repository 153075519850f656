/**
 * In-process assembly of one service, the way lib/service.ts does it
 * (archive -> compartments -> membrane -> journal -> endowments), in three
 * modes:
 *
 * - live:     a Journal with no writer and no log (the unrecorded baseline);
 * - record:   a Journal with a LogWriter on a file sink (what a build does);
 * - replay:   a Journal with a cursor on a recorded log (what a restore does).
 *
 * Importing this module locks the realm down (../dist/lib/index.js first).
 * It drives the compiled library in dist/, the code the CLI runs.
 */
import '../dist/lib/index.js';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';
import { libraryVersion } from '../dist/lib/index.js';
import { Journal, Membrane } from '../dist/membrane/index.js';
import { archiveService, loadService, makeEndowments, packageRootOf, type Endowments } from '../dist/compartments/index.js';
import { FORMAT_NAME, FORMAT_VERSION, LogReader, LogWriter, fileSink } from '../dist/replay-log/index.js';

/** A service archived once, loaded into fresh compartments for every run. */
export interface Fixture {
  readonly name: string;
  readonly archive: Uint8Array;
  readonly archiveSha256: string;
  readonly entryRoot: string;
}

export const archiveFixture = async (name: string, entryFile: string): Promise<Fixture> => {
  const entry = pathToFileURL(entryFile).href;
  const archive = await archiveService(name, entry);
  return { name, archive, archiveSha256: createHash('sha256').update(archive).digest('hex'), entryRoot: packageRootOf(entry) };
};

type HostFunction = (...args: unknown[]) => Promise<unknown>;

const quiet = (): void => {};

interface Assembled {
  readonly membrane: Membrane;
  readonly endowments: Endowments;
  /** When module evaluation finished (performance.now()), 0 before. */
  readonly evaluatedAt: () => number;
}

const assemble = async (fixture: Fixture, journal: Journal): Promise<Assembled> => {
  const loaded = await loadService({ service: fixture.name, archive: fixture.archive, entryRoot: fixture.entryRoot });
  let endowments: Endowments | undefined;
  let evaluatedAt = 0;
  const membrane = new Membrane({
    name: fixture.name,
    journal,
    start: async () => {
      const ready = endowments as Endowments;
      const namespace = await loaded.evaluate(ready.globals, ready.modules);
      evaluatedAt = performance.now();
      return namespace;
    },
  });
  endowments = makeEndowments(membrane, { print: quiet });
  return { membrane, endowments, evaluatedAt: () => evaluatedAt };
};

export interface LiveService {
  /** Call an export and time it, from the host's call to its answer (one delivery). */
  call(method: string, args: readonly unknown[]): Promise<{ ms: number; result: unknown }>;
  /** Wait for quiescence; when recording, seal the log (as a build does). */
  finish(): Promise<{ events: number; bytes: number } | undefined>;
}

/** Start a service live; with `logFile`, record everything into it. */
export const startLive = async (fixture: Fixture, logFile?: string): Promise<LiveService> => {
  const writer = logFile
    ? new LogWriter(fileSink(logFile), { format: FORMAT_NAME, version: FORMAT_VERSION, service: fixture.name, archiveSha256: fixture.archiveSha256, libraryVersion })
    : undefined;
  const journal = new Journal({ service: fixture.name, record: writer });
  const { membrane, endowments } = await assemble(fixture, journal);
  const exports = await membrane.startService();
  return {
    async call(method, args) {
      const fn = exports[method] as HostFunction;
      const started = performance.now();
      const result = await fn(...args);
      return { ms: performance.now() - started, result };
    },
    async finish() {
      await membrane.turns.whenIdle();
      if (membrane.failure) throw membrane.failure;
      endowments.timers.disarmAll();
      membrane.detachHost();
      if (!writer) return undefined;
      const sealed = writer.seal();
      return { events: sealed.events, bytes: sealed.bytes };
    },
  };
};

export interface ReplayTiming {
  /** Reading the file and verifying it (magic, every frame's CRC). */
  readonly openMs: number;
  /** From module evaluation finished to live: replaying the deliveries after `start`. */
  readonly replayMs: number;
  /** Everything: open, load compartments, evaluate, replay. */
  readonly totalMs: number;
  /** The log's own count (its trailer). */
  readonly events: number;
}

/** Replay a recorded log into a fresh instance of the fixture until it goes live. */
export const replayLog = async (fixture: Fixture, logFile: string): Promise<ReplayTiming> => {
  const started = performance.now();
  const reader = LogReader.open(fs.readFileSync(logFile), logFile);
  const opened = performance.now();
  const journal = new Journal({ service: fixture.name, replay: reader.cursor() });
  const { membrane, evaluatedAt } = await assemble(fixture, journal);
  const live = new Promise<number>((resolve, reject) => {
    journal.onLive(() => resolve(performance.now()));
    membrane.onFailure(reject);
  });
  membrane.startService().catch(quiet); // a failure surfaces through `live`
  membrane.turns.replay();
  const liveAt = await live;
  return { openMs: opened - started, replayMs: liveAt - evaluatedAt(), totalMs: liveAt - started, events: reader.trailer?.events ?? 0 };
};
