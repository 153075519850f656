/**
 * The build session: the services recorded by one run of a build script.
 * Kept on the realm under a registered symbol, so that every copy of this
 * package loaded in the process (the CLI's, the build script's, a
 * service's own dependency later on) records into the same snapshot.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SnapshotError } from '../replay-log/index.js';
import { RecordedService } from './service.js';
import { writeManifest, MANIFEST_FORMAT, MANIFEST_VERSION, type Manifest, type ServiceManifest } from './manifest.js';
import { libraryVersion } from './version.js';

const key = Symbol.for('membrane-snapshot.build-session');
/** Marks a directory as a snapshot (finished or not), so a rebuild may replace it. */
const MARKER = '.membrane-snapshot';

export class BuildSession {
  readonly outDir: string;
  readonly services = new Map<string, RecordedService>();
  readonly #reserved = new Set<string>();
  readonly print: ((text: string) => void) | undefined;

  constructor(outDir: string, print?: (text: string) => void) {
    this.outDir = path.resolve(outDir);
    this.print = print;
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
  async seal(timeoutMs: number): Promise<Manifest> {
    for (const service of this.services.values()) await service.quiesce(timeoutMs);
    const services: Record<string, ServiceManifest> = {};
    for (const service of this.services.values()) services[service.name] = service.seal().manifest;
    const manifest: Manifest = { format: MANIFEST_FORMAT, version: MANIFEST_VERSION, libraryVersion, createdAt: new Date().toISOString(), services };
    writeManifest(this.outDir, manifest);
    return manifest;
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
