/**
 * The build session: the services recorded by one run of a build script.
 * Kept on the realm under a registered symbol, so that every copy of this
 * package loaded in the process (the CLI's, the build script's, a
 * service's own dependency later on) records into the same snapshot.
 */
import fs from 'node:fs';
import path from 'node:path';
import { refuseUnknownOptions } from '../replay-log/errors.js';
import { SnapshotError, type SealKey } from '../replay-log/index.js';
import { fileURLToPath } from 'node:url';
import { Directory } from '../membrane/index.js';
import { RecordedService, type ServiceExports } from './service.js';
import { resolveSpecifier } from './resolve.js';
import { isServiceName } from './manifest-shape.js';
import { writeManifest, FAILED_SUFFIX, MANIFEST_FORMAT, MANIFEST_VERSION, DIR_MODE, FILE_MODE, type Manifest, type ServiceManifest } from './manifest.js';
import { realPath, reachPolicy, secretsPolicy, type ReachPolicy, type SecretsOptions, type SecretsPolicy } from '../compartments/index.js';
import { SIGNATURE_FILE, type SigningKey } from './signing.js';
import { libraryVersion } from './version.js';
import { checkDeclarations } from './runtime.js';
import { keepWritesFromServices } from '../compartments/reach.js';
import { recoverInterrupted } from './interrupted.js';

const key = Symbol.for('membrane-snapshot.build-session');
/** Marks a directory as a snapshot (finished or not), so a rebuild may replace it. */
const MARKER = '.membrane-snapshot';

/**
 * A build writes into a work directory beside its output (`<out>.building-<pid>`)
 * and replaces `<out>` only once everything is sealed (see `replace`), so a
 * failed or interrupted build never touches the last good snapshot.
 */
export class BuildSession {
  /** The snapshot directory the build will replace once sealed. */
  readonly outDir: string;
  /** Where this build writes until it is sealed. */
  readonly workDir: string;
  readonly services = new Map<string, RecordedService>();
  readonly #reserved = new Set<string>();
  readonly print: ((text: string) => void) | undefined;
  /** Recognises every service's exported objects, wherever they travel. */
  readonly directory = new Directory();
  readonly #trust: SessionTrust;
  /** importService calls started and not settled yet. */
  #inflight = 0;
  #inflightWaiters: Array<() => void> = [];
  #sealed = false;
  /** importService calls that came after sealing (the build script did not await them). */
  readonly late: string[] = [];
  /** The modules importService was called from (their URLs without query), for a later build of the same script (build.ts). */
  readonly callers = new Set<string>();
  /** importService promises the build script has not awaited (nor called then or catch on), with their specifiers: a hint when the build fails. */
  readonly unawaited = new Map<object, string>();

  constructor(outDir: string, workDir: string, print?: (text: string) => void, trust: SessionTrust = {}) {
    this.outDir = path.resolve(outDir);
    this.workDir = path.resolve(workDir);
    // The last good snapshot, this build's work directory and a failed build's partial one: no service writes there.
    for (const dir of [this.outDir, this.workDir, `${this.outDir}.partial`]) keepWritesFromServices(dir);
    this.print = print;
    this.#trust = trust;
  }

  /** True once `seal` has begun: no service may join the snapshot any more. */
  get sealed(): boolean {
    return this.#sealed;
  }

  /**
   * Record a service; `parent` when a service imports it (nested services).
   * A nested service gets its parent's reach and secrets policies: a
   * service cannot widen what it may reach by importing another.
   * Throws USAGE for a malformed reach or secrets option, and after the snapshot was sealed (an importService the build
   * script did not await).
   */
  async record(entry: string, options: RecordServiceOptions = {}): Promise<ServiceExports> {
    if (this.#sealed) {
      this.late.push(entry);
      throw new SnapshotError(
        'USAGE',
        `importService(${JSON.stringify(entry)}) came after the build had sealed the snapshot (the build script's top level had finished and every service was idle), so it cannot be part of it. ` +
          'Await every importService from the top level of the build script (for example `await main();` instead of `main();`).',
        { details: { entry } },
      );
    }
    this.#inflight += 1;
    try {
      return await this.#record(entry, options);
    } finally {
      this.#inflight -= 1;
      if (this.#inflight === 0) for (const wake of this.#inflightWaiters.splice(0)) wake();
    }
  }

  async #record(entry: string, options: RecordServiceOptions): Promise<ServiceExports> {
    const name = options.name ?? path.basename(fileURLToPath(entry)).replace(/\.[cm]?[jt]s$/, '');
    let reach: ReachPolicy | undefined;
    let secrets: SecretsPolicy;
    try {
      reach = options.inherited ? options.inherited.reach : reachPolicy(options.reach, process.cwd());
      secrets = options.inherited ? options.inherited.secrets : secretsPolicy(options.secrets);
    } catch (error) {
      throw new SnapshotError('USAGE', `importService("${name}"): ${(error as Error).message}.`, { cause: error });
    }
    this.reserve(name);
    const service = await RecordedService.record({
      reach,
      secrets,
      sealer: this.#trust.sealer,
      name,
      entry,
      outDir: this.workDir,
      granted: options.modules,
      print: this.print,
      directory: this.directory,
      parent: options.parent,
      importChild: (specifier, childOptions) => {
        if (typeof specifier !== 'string') throw new SnapshotError('USAGE', `importService() inside service "${name}" takes a module specifier (a string), got ${specifier === null ? 'null' : typeof specifier}.`);
        // A nested service runs under its parent's reach and secrets: it takes a name, and nothing
        // else (a policy or a grant given here was silently dropped, and read as "no limit").
        const given = (childOptions ?? {}) as Record<string, unknown>;
        if (typeof given !== 'object' || given === null) throw new SnapshotError('USAGE', `importService("${specifier}") inside service "${name}" takes { name }, got ${given === null ? 'null' : typeof given}.`);
        const inheritedOptions = ['reach', 'secrets', 'modules'].filter(key => Object.hasOwn(given, key));
        if (inheritedOptions.length) {
          throw new SnapshotError(
            'USAGE',
            `importService("${specifier}") inside service "${name}": a nested service has its parent's ${inheritedOptions.join(' and ')}, so it takes no ${inheritedOptions.map(k => `"${k}"`).join(' or ')} option; set it on "${name}" in the build script.`,
          );
        }
        refuseUnknownOptions(given, ['name'], `importService("${specifier}") inside service "${name}"`);
        if (given.name !== undefined && typeof given.name !== 'string') throw new SnapshotError('USAGE', `importService("${specifier}") inside service "${name}": name takes a string, got ${typeof given.name}.`);
        return this.record(resolveSpecifier(specifier, entry), { name: given.name as string | undefined, parent: name, inherited: { reach, secrets } });
      },
    });
    this.services.set(name, service);
    return service.exports;
  }

  reserve(name: string): void {
    if (name === 'manifest.json' || name === 'manifest.sig') {
      throw new SnapshotError('USAGE', `"${name}" cannot name a service: the snapshot's own ${name} is there. Give the service another { name }.`);
    }
    if (!isServiceName(name)) {
      throw new SnapshotError('USAGE', `${JSON.stringify(name)} is not a valid service name: use 1 to 128 letters, digits, ".", "_" and "-", starting with a letter or digit (it names a directory of the snapshot).`);
    }
    if (this.#reserved.has(name)) {
      throw new SnapshotError('USAGE', `a service named "${name}" was already imported in this build; give each service a unique { name }.`);
    }
    this.#reserved.add(name);
  }

  /**
   * Wait until every importService started has settled and every service is
   * quiescent, then seal the logs and write the manifest into the work
   * directory. Throws NOT_QUIESCENT after `timeoutMs` (ms), BUILD_FAILED
   * when no service was imported at all (a build script that does not
   * await its work).
   */
  async seal(timeoutMs: number, app?: string, noServiceHint = ''): Promise<Manifest> {
    // Services call each other and may import services: one becoming idle
    // can wake another. Repeat until a whole pass finds no import in flight
    // and every service idle with no new delivery.
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const before = this.#deliveries();
      const servicesBefore = this.services.size;
      if (this.#inflight > 0) await new Promise<void>(resolve => this.#inflightWaiters.push(resolve));
      for (const service of this.services.values()) await service.quiesce(Math.max(1, deadline - performance.now()), timeoutMs);
      if (this.#deliveries() === before && this.services.size === servicesBefore && this.#inflight === 0) break;
    }
    if (this.services.size === 0) {
      throw new SnapshotError(
        'BUILD_FAILED',
        'the build script finished without importing any service, so there is nothing to seal. If it imports them from an async function or a callback, await that work at its top level (for example `await main();` instead of `main();`).' +
          noServiceHint,
      );
    }
    this.#sealed = true;
    const services: Record<string, ServiceManifest> = {};
    for (const service of this.services.values()) services[service.name] = service.seal().manifest;
    checkDeclarations(Object.values(services), name => this.services.get(name)?.exports ?? {});
    const seal = this.#trust.sealer ? { seal: { cipher: 'aes-256-gcm-siv-hmac' as const, keyId: this.#trust.sealer.keyId } } : {};
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      version: MANIFEST_VERSION,
      libraryVersion,
      createdAt: new Date().toISOString(),
      node: process.version,
      ...(app ? { app } : {}),
      services,
      ...seal,
    };
    writeManifest(this.workDir, manifest, this.#trust.signer);
    return manifest;
  }

  /**
   * Put the sealed snapshot in place: the old `outDir` is renamed aside, the
   * work directory renamed in, then the old one deleted. A manifest never
   * outlives its logs, and if the second rename fails the old snapshot is
   * put back. Throws BUILD_FAILED when the directories cannot be renamed.
   */
  replace(): void {
    const aside = `${this.outDir}.old-${process.pid}`;
    let movedAside = false;
    try {
      if (fs.existsSync(this.outDir)) {
        fs.rmSync(aside, { recursive: true, force: true });
        fs.renameSync(this.outDir, aside);
        movedAside = true;
      }
      fs.renameSync(this.workDir, this.outDir);
    } catch (cause) {
      if (movedAside && !fs.existsSync(this.outDir)) fs.renameSync(aside, this.outDir);
      throw new SnapshotError('BUILD_FAILED', `the sealed snapshot in ${this.workDir} could not replace ${this.outDir}: ${(cause as Error).message}. The previous snapshot is unchanged.`, {
        cause,
        details: { workDir: this.workDir, outDir: this.outDir },
      });
    }
    if (movedAside) fs.rmSync(aside, { recursive: true, force: true });
  }

  /**
   * The build failed: stop every service and close its log. The work
   * directory is kept as `<out>.partial` for inspection when a service wrote
   * anything (deleted with `keep: false`, when the disk is full, or when
   * there is nothing to see); `outDir` is never touched.
   * Returns one line per service saying how far it got, and never throws.
   */
  discard(options: { keep: boolean }): string[] {
    const lines = this.abandon();
    const partial = `${this.outDir}.partial`;
    try {
      fs.rmSync(partial, { recursive: true, force: true });
      const recorded = fs.existsSync(this.workDir) && fs.readdirSync(this.workDir).some(name => name !== MARKER);
      if (options.keep && recorded) {
        fs.renameSync(this.workDir, partial);
        // A build that failed after its logs were sealed (a rejection the script never handled, found by the
        // new-user trial) left a whole manifest: restore, verify and the wrong-path advice took the failed build for
        // a snapshot. Kept for reading under a name no command takes for a snapshot's.
        for (const name of ['manifest.json', SIGNATURE_FILE]) {
          if (fs.existsSync(path.join(partial, name))) fs.renameSync(path.join(partial, name), path.join(partial, `${name}${FAILED_SUFFIX}`));
        }
        // A service that failed while it loaded is no service of the session, but its log is kept too: say where
        // (the message named the partial recording only when a service had loaded; found by the new-user trial).
        return lines.length > 0 ? lines.map(line => line.split(this.workDir).join(partial)) : [`the logs as far as they got are kept in ${partial}`];
      }
      fs.rmSync(this.workDir, { recursive: true, force: true });
    } catch {
      // Best effort: the work directory stays where it is, named in the lines.
    }
    return options.keep ? lines : [];
  }

  /** After a successful build: a partial recording of an earlier failed one is stale. */
  clearPartial(): void {
    fs.rmSync(`${this.outDir}.partial`, { recursive: true, force: true });
  }

  #deliveries(): number {
    let n = 0;
    for (const service of this.services.values()) n += service.membrane.turns.delivered;
    return n;
  }

  /** The build failed: keep every log as far as it got (closing each as it can), and say how far. Never throws. */
  abandon(): string[] {
    this.#sealed = true;
    const lines: string[] = [];
    for (const service of this.services.values()) {
      try {
        service.abandon();
      } catch {
        // A full disk can refuse the last flush: what was written stays.
      }
      const { events, bytes, file } = service.progress();
      lines.push(`service "${service.name}": ${events} events recorded, ${bytes} bytes kept in ${file}`);
    }
    return lines;
  }
}

export interface RecordServiceOptions {
  readonly name?: string;
  readonly modules?: Readonly<Record<string, Record<string, unknown>>>;
  readonly parent?: string;
  /** What fetch and fs may reach (relative paths against the working directory). */
  readonly reach?: ReachPolicy;
  /** What is secret, beyond (or instead of) the defaults. */
  readonly secrets?: SecretsOptions;
  /** A nested service's policies, taken from its parent as they are. */
  readonly inherited?: { readonly reach: ReachPolicy | undefined; readonly secrets: SecretsPolicy };
}

/** How a build protects what it writes. */
export interface SessionTrust {
  /** Seals secrets in the logs; without it a build that meets a secret fails with SEAL_KEY_MISSING. */
  readonly sealer?: SealKey;
  /** Signs the manifest (manifest.sig). */
  readonly signer?: SigningKey;
}

type Realm = Record<symbol, BuildSession | undefined>;

export const currentSession = (): BuildSession | undefined => (globalThis as unknown as Realm)[key];

/**
 * What in an existing `--out` directory shows it is not a snapshot (which
 * a build would replace whole), or undefined when it is one or is empty:
 * a snapshot holds only the build's marker or a manifest of ours,
 * `manifest.sig`, `snapshot plan`'s `deploy/`, and per service a directory
 * of `archive.zip` and `replay.log`.
 */
const foreignEntry = (dir: string): string | undefined => {
  const entries = fs.readdirSync(dir, { withFileTypes: true });
  if (entries.length === 0) return undefined;
  const names = new Set(entries.map(e => e.name));
  let ours = names.has(MARKER);
  if (!ours && names.has('manifest.json')) {
    try {
      ours = (JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { format?: unknown }).format === MANIFEST_FORMAT;
    } catch {
      ours = false;
    }
  }
  if (!ours) return names.has('manifest.json') ? 'a manifest.json that is not a snapshot manifest' : `"${entries[0].name}"`;
  for (const entry of entries) {
    if (entry.isFile() && (entry.name === MARKER || entry.name === 'manifest.json' || entry.name === 'manifest.sig')) continue;
    if (!entry.isDirectory()) return `"${entry.name}"`;
    if (entry.name === 'deploy') continue;
    const inside = fs.readdirSync(path.join(dir, entry.name), { withFileTypes: true }).find(e => !e.isFile() || (e.name !== 'archive.zip' && e.name !== 'replay.log'));
    if (inside) return `"${entry.name}/${inside.name}"`;
  }
  return undefined;
};

/**
 * Start a build that will replace `outDir` once sealed. Refuses (USAGE) an
 * `outDir` that exists and is not a snapshot directory; writes nothing there.
 */
export const beginSession = (outDir: string, print?: (text: string) => void, trust: SessionTrust = {}): BuildSession => {
  if (currentSession()) throw new SnapshotError('USAGE', 'a snapshot build is already running in this process');
  // Its real path, once: a service that renamed a linked directory above it must not redirect the build's own
  // later renames (found by the adversarial review: --out link/snap, then link moved and made again).
  const resolved = realPath(path.resolve(outDir));
  if (fs.existsSync(resolved)) {
    if (!fs.statSync(resolved).isDirectory()) {
      throw new SnapshotError('USAGE', `${resolved} exists and is not a directory; choose another --out (nothing was written).`);
    }
    const foreign = foreignEntry(resolved);
    if (foreign !== undefined) {
      throw new SnapshotError('USAGE', `${resolved} exists and is not a snapshot directory (it holds ${foreign}, which no build wrote); choose another --out (nothing was written).`);
    }
  }
  recoverInterrupted(resolved);
  const workDir = `${resolved}.building-${process.pid}`;
  fs.rmSync(workDir, { recursive: true, force: true });
  fs.mkdirSync(workDir, { recursive: true, mode: DIR_MODE });
  fs.chmodSync(workDir, DIR_MODE);
  fs.writeFileSync(path.join(workDir, MARKER), 'This directory is written by `snapshot build`; it may be replaced by the next build.\n', { mode: FILE_MODE });
  const session = new BuildSession(resolved, workDir, print, trust);
  (globalThis as unknown as Realm)[key] = session;
  return session;
};

export const endSession = (session: BuildSession): void => {
  if (currentSession() === session) (globalThis as unknown as Realm)[key] = undefined;
};
