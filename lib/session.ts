/**
 * The build session: the services recorded by one run of a build script.
 * Kept on the realm under a registered symbol, so that every copy of this
 * package loaded in the process (the CLI's, the build script's, a
 * service's own dependency later on) records into the same snapshot.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SnapshotError } from '../replay-log/index.js';
import { fileURLToPath } from 'node:url';
import { Directory } from '../membrane/index.js';
import { RecordedService, type ServiceExports } from './service.js';
import { resolveSpecifier } from './resolve.js';
import { writeManifest, MANIFEST_FORMAT, MANIFEST_VERSION, type Manifest, type ServiceManifest } from './manifest.js';
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

  constructor(outDir: string, print?: (text: string) => void) {
    this.outDir = path.resolve(outDir);
    this.print = print;
  }

  /** Record a service; `parent` when a service imports it (nested services). */
  async record(entry: string, options: RecordServiceOptions = {}): Promise<ServiceExports> {
    const name = options.name ?? path.basename(fileURLToPath(entry)).replace(/\.[cm]?[jt]s$/, '');
    this.reserve(name);
    const service = await RecordedService.record({
      name,
      entry,
      outDir: this.outDir,
      granted: options.modules,
      print: this.print,
      directory: this.directory,
      parent: options.parent,
      importChild: (specifier, childOptions) => {
        const { name: childName } = (childOptions ?? {}) as { name?: unknown };
        return this.record(resolveSpecifier(specifier, entry), { name: typeof childName === 'string' ? childName : undefined, parent: name });
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
    const manifest: Manifest = { format: MANIFEST_FORMAT, version: MANIFEST_VERSION, libraryVersion, createdAt: new Date().toISOString(), ...(app ? { app } : {}), services };
    writeManifest(this.outDir, manifest);
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
}

type Realm = Record<symbol, BuildSession | undefined>;

export const currentSession = (): BuildSession | undefined => (globalThis as unknown as Realm)[key];

export const beginSession = (outDir: string, print?: (text: string) => void): BuildSession => {
  if (currentSession()) throw new SnapshotError('USAGE', 'a snapshot build is already running in this process');
  const resolved = path.resolve(outDir);
  if (fs.existsSync(resolved)) {
    const entries = fs.readdirSync(resolved);
    if (entries.length > 0 && !entries.includes('manifest.json') && !entries.includes(MARKER)) {
      throw new SnapshotError('USAGE', `${resolved} exists and is not a snapshot directory; choose another --out (nothing was written).`);
    }
    fs.rmSync(resolved, { recursive: true, force: true });
  }
  fs.mkdirSync(resolved, { recursive: true });
  fs.writeFileSync(path.join(resolved, MARKER), 'This directory is written by `snapshot build`; it may be replaced by the next build.\n');
  const session = new BuildSession(resolved, print);
  (globalThis as unknown as Realm)[key] = session;
  return session;
};

export const endSession = (session: BuildSession): void => {
  if (currentSession() === session) (globalThis as unknown as Realm)[key] = undefined;
};
