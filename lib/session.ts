/**
 * The build session: the services recorded by one run of a build script.
 * Kept on the realm under a registered symbol, so that every copy of this
 * package loaded in the process (the CLI's, the build script's, a
 * service's own dependency later on) records into the same snapshot.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SnapshotError, type Sealer } from '../replay-log/index.js';
import { fileURLToPath } from 'node:url';
import { Directory } from '../membrane/index.js';
import { RecordedService, type ServiceExports } from './service.js';
import { resolveSpecifier } from './resolve.js';
import { writeManifest, MANIFEST_FORMAT, MANIFEST_VERSION, DIR_MODE, FILE_MODE, type Manifest, type ServiceManifest } from './manifest.js';
import { reachPolicy, secretsPolicy, type ReachPolicy, type SecretsOptions, type SecretsPolicy } from '../compartments/index.js';
import type { SigningKey } from './signing.js';
import { libraryVersion } from './version.js';
import { checkDeclarations } from './runtime.js';

const key = Symbol.for('membrane-snapshot.build-session');
/** Marks a directory as a snapshot (finished or not), so a rebuild may replace it. */
const MARKER = '.membrane-snapshot';

export class BuildSession {
  readonly outDir: string;
  readonly services = new Map<string, RecordedService>();
  readonly #reserved = new Set<string>();
  readonly print: ((text: string) => void) | undefined;
  /** Recognises every service's exported objects, wherever they travel. */
  readonly directory = new Directory();
  readonly #trust: SessionTrust;

  constructor(outDir: string, print?: (text: string) => void, trust: SessionTrust = {}) {
    this.outDir = path.resolve(outDir);
    this.print = print;
    this.#trust = trust;
  }

  /**
   * Record a service; `parent` when a service imports it (nested services).
   * A nested service gets its parent's reach and secrets policies: a
   * service cannot widen what it may reach by importing another.
   * Throws USAGE for a malformed reach or secrets option.
   */
  async record(entry: string, options: RecordServiceOptions = {}): Promise<ServiceExports> {
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
      outDir: this.outDir,
      granted: options.modules,
      print: this.print,
      directory: this.directory,
      parent: options.parent,
      importChild: (specifier, childOptions) => {
        const { name: childName } = (childOptions ?? {}) as { name?: unknown };
        return this.record(resolveSpecifier(specifier, entry), { name: typeof childName === 'string' ? childName : undefined, parent: name, inherited: { reach, secrets } });
      },
    });
    this.services.set(name, service);
    return service.exports;
  }

  reserve(name: string): void {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
      throw new SnapshotError('USAGE', `"${name}" is not a valid service name: use letters, digits, ".", "_" and "-" (it names a directory of the snapshot).`);
    }
    if (this.#reserved.has(name)) {
      throw new SnapshotError('USAGE', `a service named "${name}" was already imported in this build; give each service a unique { name }.`);
    }
    this.#reserved.add(name);
  }

  /** Wait for every service to be quiescent, seal the logs, write the manifest. */
  async seal(timeoutMs: number, app?: string): Promise<Manifest> {
    // Services call each other: one becoming idle can wake another. Repeat
    // until a whole pass finds every service idle with no new delivery.
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const before = this.#deliveries();
      for (const service of this.services.values()) await service.quiesce(Math.max(1, deadline - performance.now()), timeoutMs);
      if (this.#deliveries() === before) break;
    }
    const services: Record<string, ServiceManifest> = {};
    for (const service of this.services.values()) services[service.name] = service.seal().manifest;
    checkDeclarations(Object.values(services), name => this.services.get(name)?.exports ?? {});
    const seal = this.#trust.sealer ? { seal: { cipher: 'aes-256-gcm-siv-hmac' as const, keyId: this.#trust.sealer.keyId } } : {};
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      version: MANIFEST_VERSION,
      libraryVersion,
      createdAt: new Date().toISOString(),
      ...(app ? { app } : {}),
      services,
      ...seal,
    };
    writeManifest(this.outDir, manifest, this.#trust.signer);
    return manifest;
  }

  #deliveries(): number {
    let n = 0;
    for (const service of this.services.values()) n += service.membrane.turns.delivered;
    return n;
  }

  /** The build failed: keep every log as far as it got, and say how far. */
  abandon(): string[] {
    const lines: string[] = [];
    for (const service of this.services.values()) {
      service.abandon();
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
  readonly sealer?: Sealer;
  /** Signs the manifest (manifest.sig). */
  readonly signer?: SigningKey;
}

type Realm = Record<symbol, BuildSession | undefined>;

export const currentSession = (): BuildSession | undefined => (globalThis as unknown as Realm)[key];

export const beginSession = (outDir: string, print?: (text: string) => void, trust: SessionTrust = {}): BuildSession => {
  if (currentSession()) throw new SnapshotError('USAGE', 'a snapshot build is already running in this process');
  const resolved = path.resolve(outDir);
  if (fs.existsSync(resolved)) {
    const entries = fs.readdirSync(resolved);
    if (entries.length > 0 && !entries.includes('manifest.json') && !entries.includes(MARKER)) {
      throw new SnapshotError('USAGE', `${resolved} exists and is not a snapshot directory; choose another --out (nothing was written).`);
    }
    fs.rmSync(resolved, { recursive: true, force: true });
  }
  fs.mkdirSync(resolved, { recursive: true, mode: DIR_MODE });
  fs.chmodSync(resolved, DIR_MODE);
  fs.writeFileSync(path.join(resolved, MARKER), 'This directory is written by `snapshot build`; it may be replaced by the next build.\n', { mode: FILE_MODE });
  const session = new BuildSession(resolved, print, trust);
  (globalThis as unknown as Realm)[key] = session;
  return session;
};

export const endSession = (session: BuildSession): void => {
  if (currentSession() === session) (globalThis as unknown as Realm)[key] = undefined;
};
