/**
 * One service on this host: its membrane, journal, endowments and log,
 * assembled for recording (build time) or for replay (restore).
 */
import fs from 'node:fs';
import path from 'node:path';
import { isBuiltin } from 'node:module';
import { LogReader, LogWriter, FORMAT_NAME, FORMAT_VERSION, SnapshotError, bindSealer, fileSink, type SealKey } from '../replay-log/index.js';
import { Directory, Journal, Membrane } from '../membrane/index.js';
import {
  archiveServiceWithRoots,
  grantShape,
  hardenHost,
  loadService,
  makeEndowments,
  packageRootOf,
  type Endowments,
  type EndowmentOptions,
  type Grant,
  type GrantShape,
  type LoadOptions,
  type RuntimeDeclaration,
  type ReachPolicy,
  type SecretsPolicy,
} from '../compartments/index.js';
import { libraryVersion } from './version.js';
import { reportProgress } from './progress.js';
import { markPhase } from '../compartments/phases.cjs';
import { checkLogBelongs, readSnapshotFileAsync, sha256, verifyHash, DIR_MODE, FILE_MODE, type ServiceManifest, type ServiceRuntime } from './manifest.js';

/**
 * A sealer that counts what it seals and the keyed fingerprints it makes
 * (the manifest says whether restore needs the key: both need it to be read
 * or compared).
 */
const countingSealer = (sealer: SealKey | undefined): { sealer: SealKey | undefined; count: () => number; fingerprints: () => number } => {
  if (!sealer) return { sealer, count: () => 0, fingerprints: () => 0 };
  let sealed = 0;
  let fingerprinted = 0;
  return {
    sealer: {
      keyId: sealer.keyId,
      open: (bytes, context) => sealer.open(bytes, context),
      seal: (bytes, context) => ((sealed += 1), sealer.seal(bytes, context)),
      fingerprint: (bytes, context) => ((fingerprinted += 1), sealer.fingerprint(bytes, context)),
    },
    count: () => sealed,
    fingerprints: () => fingerprinted,
  };
};

export type ServiceExports = Record<string, unknown>;

/** Load a service's archive and wire its membrane, journal and endowments together. */
const assemble = async (
  load: LoadOptions,
  journal: Journal,
  directory: Directory | undefined,
  endowmentOptions: EndowmentOptions,
  sealer?: SealKey,
): Promise<{ membrane: Membrane; endowments: Endowments }> => {
  // What every service shares with the host is frozen before the first is loaded (at once after that).
  await hardenHost();
  const loaded = await loadService(load);
  markPhase('archive-loaded');
  let endowments: Endowments | undefined;
  const membrane = new Membrane({
    name: load.service,
    journal,
    directory,
    // Bound to the service: a value sealed for it opens for it only (replay-log/seal.ts).
    sealer: sealer && bindSealer(sealer, load.service),
    start: () => loaded.evaluate((endowments as Endowments).globals, (endowments as Endowments).modules),
  });
  endowments = makeEndowments(membrane, endowmentOptions);
  markPhase('endowments');
  return { membrane, endowments };
};

export interface RecordOptions {
  readonly name: string;
  /** File URL of the entry module. */
  readonly entry: string;
  /** The snapshot directory being written. */
  readonly outDir: string;
  readonly granted?: Readonly<Record<string, Record<string, unknown>>>;
  readonly print?: (text: string) => void;
  /** Shared by the services of the build, so references between them are recognised. */
  readonly directory?: Directory;
  /** The service that imported this one (nested services). */
  readonly parent?: string;
  /** What `importService` inside this service does (records a child service). */
  readonly importChild?: (specifier: string, options: unknown) => Promise<unknown>;
  /** What fetch and fs may reach (absent: everything). */
  readonly reach?: ReachPolicy;
  /** Which env names, headers and hosts are secrets. */
  readonly secrets?: SecretsPolicy;
  /** Seals secrets in the log; without one, a secret fails the build (SEAL_KEY_MISSING). */
  readonly sealer?: SealKey;
}

export interface SealResult {
  readonly manifest: ServiceManifest;
}

export class RecordedService {
  readonly name: string;
  readonly membrane: Membrane;
  readonly exports: ServiceExports;
  readonly #writer: LogWriter;
  readonly #endowments: Endowments;
  readonly #entry: string;
  readonly #entryRoot: string;
  readonly #packageRoots: Record<string, string>;
  readonly #archive: { file: string; sha256: string; bytes: number };
  readonly #logFile: string;
  readonly #granted: Record<string, GrantShape>;
  readonly #started: number;
  readonly #parent: string | undefined;
  readonly #runtime: { value?: ServiceRuntime };
  readonly #reach: ReachPolicy | undefined;
  readonly #secrets: SecretsPolicy | undefined;
  readonly #sealedValues: () => number;
  readonly #keyedFingerprints: () => number;

  private constructor(init: {
    reach: ReachPolicy | undefined;
    secrets: SecretsPolicy | undefined;
    sealedValues: () => number;
    keyedFingerprints: () => number;
    name: string;
    membrane: Membrane;
    exports: ServiceExports;
    writer: LogWriter;
    endowments: Endowments;
    entry: string;
    entryRoot: string;
    packageRoots: Record<string, string>;
    archive: { file: string; sha256: string; bytes: number };
    logFile: string;
    granted: Record<string, GrantShape>;
    started: number;
    parent: string | undefined;
    runtime: { value?: ServiceRuntime };
  }) {
    this.name = init.name;
    this.membrane = init.membrane;
    this.exports = init.exports;
    this.#writer = init.writer;
    this.#endowments = init.endowments;
    this.#entry = init.entry;
    this.#entryRoot = init.entryRoot;
    this.#packageRoots = init.packageRoots;
    this.#archive = init.archive;
    this.#logFile = init.logFile;
    this.#granted = init.granted;
    this.#started = init.started;
    this.#parent = init.parent;
    this.#runtime = init.runtime;
    this.#reach = init.reach;
    this.#secrets = init.secrets;
    this.#sealedValues = init.sealedValues;
    this.#keyedFingerprints = init.keyedFingerprints;
  }

  static async record(options: RecordOptions): Promise<RecordedService> {
    const started = performance.now();
    const { name, entry, outDir } = options;
    const grants: Record<string, Grant> = {};
    for (const [moduleName, host] of Object.entries(options.granted ?? {})) {
      // A grant is the host module itself: a number or null would be granted as an empty module.
      if (typeof host !== 'object' || host === null) {
        throw new SnapshotError('USAGE', `importService(${JSON.stringify(name)}): modules[${JSON.stringify(moduleName)}] takes the host module (an object, e.g. await import(${JSON.stringify(moduleName)})), got ${host === null ? 'null' : typeof host}.`);
      }
      grants[moduleName] = { ...grantShape(host), host };
    }
    const { archive, packageRoots } = await archiveServiceWithRoots(name, entry, Object.keys(grants));
    reportProgress({ phase: 'archived', service: name, bytes: archive.byteLength, ms: performance.now() - started });
    const dir = path.join(outDir, name);
    fs.mkdirSync(dir, { recursive: true, mode: DIR_MODE });
    const archiveFile = path.join(dir, 'archive.zip');
    fs.writeFileSync(archiveFile, archive, { mode: FILE_MODE });
    const archiveSha256 = sha256(archive);
    const logFile = path.join(dir, 'replay.log');
    const writer = new LogWriter(fileSink(logFile), { format: FORMAT_NAME, version: FORMAT_VERSION, service: name, archiveSha256, libraryVersion });
    const entryRoot = packageRootOf(entry);
    const journal = new Journal({ service: name, record: writer });
    const runtime: { value?: ServiceRuntime } = {};
    const declare = (declaration: RuntimeDeclaration, adapter: unknown) => {
      if (runtime.value) throw new SnapshotError('DECLARATION_INVALID', `service "${name}" called runtime.declare() twice; declare everything in one call`);
      const httpAdapter = declaration.http ? options.directory?.originOf(adapter)?.export : undefined;
      runtime.value = { ...declaration, ...(httpAdapter !== undefined ? { httpAdapter } : {}) };
    };
    const sealing = countingSealer(options.sealer);
    const { membrane, endowments } = await assemble(
      { service: name, archive, entryRoot, packageRoots, granted: Object.keys(grants) },
      journal,
      options.directory,
      { granted: grants, print: options.print, importService: options.importChild, declare, reach: options.reach, secrets: options.secrets },
      sealing.sealer,
    );
    let exports: ServiceExports;
    try {
      exports = await membrane.startService();
    } catch (error) {
      writer.abandon();
      throw error;
    }
    return new RecordedService({
      reach: options.reach,
      secrets: options.secrets,
      sealedValues: sealing.count,
      keyedFingerprints: sealing.fingerprints,
      name,
      membrane,
      exports,
      writer,
      endowments,
      entry,
      entryRoot,
      packageRoots,
      archive: { file: archiveFile, sha256: archiveSha256, bytes: archive.byteLength },
      logFile,
      granted: Object.fromEntries(Object.entries(grants).map(([moduleName, { functions, values }]) => [moduleName, { functions, values }])),
      started,
      parent: options.parent,
      runtime,
    });
  }

  /** Events recorded so far, and the bytes safely on disk. */
  progress(): { events: number; bytes: number; file: string } {
    return { events: this.#writer.events, bytes: this.#writer.bytesWritten, file: this.#logFile };
  }

  /** Wait until nothing is queued and no syscall is pending, or fail with NOT_QUIESCENT. */
  async quiesce(timeoutMs: number, reportedTimeoutMs = timeoutMs): Promise<void> {
    const begun = performance.now();
    const deadline = begun + timeoutMs;
    const membrane = this.membrane;
    let announced = false;
    for (;;) {
      if (membrane.failure) throw membrane.failure;
      await membrane.turns.whenIdle();
      if (membrane.failure) throw membrane.failure;
      if (membrane.turns.idle && membrane.pendingSyscalls().length === 0) return;
      if (!announced && performance.now() - begun > 1000) {
        // Busy for a second: say on what, once (the build would otherwise look stuck).
        announced = true;
        reportProgress({ phase: 'waiting', service: this.name, waitingOn: [...membrane.pendingSyscalls(), ...(membrane.turns.queued ? [`${membrane.turns.queued} deliveries queued`] : [])] });
      }
      if (performance.now() > deadline) {
        const waiting = [...membrane.pendingSyscalls(), ...(membrane.turns.queued ? [`${membrane.turns.queued} deliveries queued`] : [])];
        throw new SnapshotError(
          'NOT_QUIESCENT',
          `service "${this.name}" was still busy ${reportedTimeoutMs} ms after the build script finished; it waits on:\n${waiting.map(w => `  - ${w}`).join('\n')}\n` +
            'Await that work in the build script (or give it more time with --timeout). Pending timers do not count: they are re-armed when the service goes live.',
          { details: { service: this.name, waiting } },
        );
      }
      await new Promise(resolve => setTimeout(resolve, 2));
    }
  }

  /** Stop host-side activity and seal the log. */
  seal(): SealResult {
    this.#endowments.timers.disarmAll();
    this.membrane.detachHost();
    const sealed = this.#writer.seal();
    reportProgress({ phase: 'recorded', service: this.name, events: sealed.events, bytes: sealed.bytes, ms: performance.now() - this.#started });
    return {
      manifest: {
        name: this.name,
        entry: this.#entry,
        entryRoot: this.#entryRoot,
        ...(Object.keys(this.#packageRoots).length > 0 ? { packageRoots: this.#packageRoots } : {}),
        archive: `${this.name}/archive.zip`,
        archiveSha256: this.#archive.sha256,
        archiveBytes: this.#archive.bytes,
        log: `${this.name}/replay.log`,
        logSha256: sealed.sha256,
        logBytes: sealed.bytes,
        events: sealed.events,
        granted: this.#granted,
        ...(this.#parent ? { parent: this.#parent } : {}),
        references: this.membrane.references(),
        pendingTimers: this.#endowments.timers.pending(),
        buildMs: Math.round(performance.now() - this.#started),
        ...(this.#runtime.value ? { runtime: this.#runtime.value } : {}),
        ...(this.#reach ? { reach: this.#reach } : {}),
        ...(this.#secrets ? { secrets: this.#secrets } : {}),
        sealedValues: this.#sealedValues(),
        ...(this.#keyedFingerprints() > 0 ? { keyedFingerprints: this.#keyedFingerprints() } : {}),
      },
    };
  }

  /** The build failed: keep what was recorded, stop timers. */
  abandon(): void {
    this.#endowments.timers.disarmAll();
    this.membrane.detachHost();
    this.#writer.abandon();
  }
}

export interface RestoreOptions {
  readonly dir: string;
  readonly manifest: ServiceManifest;
  readonly print?: (text: string) => void;
  /** Host modules to bind granted modules to (default: Node builtins by name). */
  readonly granted?: Readonly<Record<string, Record<string, unknown>>>;
  /** Shared by the services restored in this process. */
  readonly directory?: Directory;
  /** Opens the log's sealed values (and seals secrets the replay checks). */
  readonly sealer?: SealKey;
  /**
   * Replay against this archive instead of the snapshot's (`verify --sources`:
   * the service rebuilt from changed code); the log is still checked.
   */
  readonly archive?: Uint8Array;
}

export interface RestoredService {
  readonly name: string;
  readonly exports: ServiceExports;
  readonly membrane: Membrane;
  readonly events: number;
  readonly restoreMs: number;
}

/** A service loaded from its snapshot files, not replayed yet. */
export interface PreparedService {
  readonly name: string;
  readonly membrane: Membrane;
  readonly manifest: ServiceManifest;
  /** Replay the log, then go live. */
  replay(): Promise<RestoredService>;
}

/**
 * Check a service's files (framing, hashes), load its archive and build its
 * membrane. References to other services are bound between this and
 * `replay()`, so they are alive the moment the service goes live.
 */
export const prepareService = async (options: RestoreOptions): Promise<PreparedService> => {
  // process.uptime(), not performance.now(): the first read of Node's performance global loads its perf_hooks.
  const started = process.uptime();
  const { dir, manifest } = options;
  const name = manifest.name;
  const archiveWhat = `the archive of service "${name}"`;
  const logWhat = `the replay log of service "${name}"`;
  // The files are read on Node's thread pool while this thread freezes what services share with the host
  // (hardenHost: about 15 ms of the first restore of a process, and as long as a 2 MB log takes to read).
  const reads = Promise.all([
    options.archive ? undefined : readSnapshotFileAsync(dir, manifest.archive, archiveWhat, manifest.archiveBytes),
    readSnapshotFileAsync(dir, manifest.log, logWhat, manifest.logBytes),
  ]);
  reads.catch(() => {}); // awaited below, after hardenHost: not an unhandled rejection meanwhile
  await hardenHost();
  const [archiveRead, { file: logFile, bytes: logBytes }] = await reads;
  // The hashes first: nothing from a file is parsed before it is known to be the one the manifest names.
  if (archiveRead) verifyHash(archiveRead.file, archiveRead.bytes, manifest.archiveSha256, archiveWhat);
  const archive = options.archive ?? (archiveRead as { bytes: Uint8Array }).bytes;
  verifyHash(logFile, logBytes, manifest.logSha256, logWhat);
  // The file's bytes become the log's body when the cursor is made (no second copy of a large payload).
  const reader = LogReader.open(logBytes, logFile, { reuseBuffer: true });
  const events = reader.trailer?.events ?? 0;
  checkLogBelongs(logFile, reader.header, reader.trailer?.events, manifest);
  markPhase('files-verified');
  // Granted modules are bound again by name: given by the caller, or Node's own builtin.
  const grants: Record<string, Grant> = {};
  for (const [moduleName, shape] of Object.entries(manifest.granted)) {
    const host = options.granted?.[moduleName] ?? (isBuiltin(moduleName) ? ((await import(moduleName)) as Record<string, unknown>) : undefined);
    grants[moduleName] = { ...shape, host };
  }
  const journal = new Journal({ service: name, replay: reader.cursor() });
  const { membrane } = await assemble(
    { service: name, archive, entryRoot: manifest.entryRoot, packageRoots: manifest.packageRoots, granted: Object.keys(grants) },
    journal,
    options.directory,
    { granted: grants, print: options.print, reach: manifest.reach, secrets: manifest.secrets ?? { env: [], headers: [], hosts: [] } },
    options.sealer,
  );
  return {
    name,
    membrane,
    manifest,
    replay: async () => {
      const live = new Promise<void>((resolve, reject) => {
        journal.onLive(resolve);
        membrane.onFailure(reject);
      });
      const exports = membrane.startService();
      exports.catch(() => {}); // a failure surfaces through `live`
      membrane.turns.replay();
      await live;
      markPhase('replayed');
      // `events`, not `reader`: the closure must not keep the log's body alive once live.
      const restored = { name, exports: await exports, membrane, events, restoreMs: (process.uptime() - started) * 1000 };
      reportProgress({ phase: 'replayed', service: name, events: restored.events, ms: restored.restoreMs });
      return restored;
    },
  };
};

/** Rebuild one service from its archive and log, replay it, and let it go live. */
export const restoreService = async (options: RestoreOptions): Promise<RestoredService> => (await prepareService(options)).replay();
