/** `snapshot restore`: rebuild services from a snapshot directory and let them go live. */
import { SnapshotError } from '../replay-log/index.js';
import { Directory } from '../membrane/index.js';
import { readManifest, type Manifest } from './manifest.js';
import { prepareService, type PreparedService, type RestoredService } from './service.js';
import { InProcessTransport, type Transport } from './transport.js';

export interface RestoreSnapshotOptions {
  readonly dir: string;
  /** Restore only these services (default: all). */
  readonly services?: readonly string[];
  readonly print?: (text: string) => void;
  /**
   * How references to services not restored here are reached. Default:
   * in-process only (calls to absent services fail with SERVICE_UNAVAILABLE).
   */
  readonly transport?: Transport;
  /** Modules granted at build time that are not Node builtins, bound again by name. */
  readonly modules?: Readonly<Record<string, Record<string, unknown>>>;
}

export interface RestoredSnapshot {
  readonly manifest: Manifest;
  readonly services: ReadonlyMap<string, RestoredService>;
  readonly ms: number;
}

export const restoreSnapshot = async (options: RestoreSnapshotOptions): Promise<RestoredSnapshot> => {
  const started = performance.now();
  const manifest = readManifest(options.dir);
  const names = options.services?.length ? options.services : Object.keys(manifest.services);
  for (const name of names) {
    if (!manifest.services[name]) {
      throw new SnapshotError('USAGE', `the snapshot has no service "${name}"; it has: ${Object.keys(manifest.services).join(', ') || 'none'}`);
    }
  }
  // Load every service first, bind the references between them, then replay
  // them all: a reference is alive the moment its holder goes live.
  const directory = new Directory();
  options.transport?.attach?.(directory);
  const local = new InProcessTransport();
  const prepared: PreparedService[] = [];
  for (const name of names) {
    const service = await prepareService({ dir: options.dir, manifest: manifest.services[name], print: options.print, directory, granted: options.modules });
    local.add(name, service.membrane);
    prepared.push(service);
  }
  const restoredHere = new Set(names);
  for (const service of prepared) {
    for (const ref of service.manifest.references ?? []) {
      const transport = restoredHere.has(ref.service) || !options.transport ? local : options.transport;
      service.membrane.bindImport(ref.import, transport.connect(ref), ref);
    }
  }
  const restored = await Promise.all(prepared.map(service => service.replay()));
  const services = new Map<string, RestoredService>(restored.map(service => [service.name, service]));
  await options.transport?.serve?.(new Map(restored.map(service => [service.name, service.membrane])));
  return { manifest, services, ms: performance.now() - started };
};

/** Call `service.method(...args)` on a restored snapshot. */
export const callService = async (snapshot: RestoredSnapshot, target: string, args: readonly unknown[]): Promise<unknown> => {
  const dot = target.indexOf('.');
  if (dot <= 0) throw new SnapshotError('USAGE', `--call takes service.method, got "${target}"`);
  const name = target.slice(0, dot);
  const method = target.slice(dot + 1);
  const service = snapshot.services.get(name);
  if (!service) throw new SnapshotError('USAGE', `no restored service "${name}" (restored: ${[...snapshot.services.keys()].join(', ')})`);
  const fn = service.exports[method];
  if (typeof fn !== 'function') {
    if (method in service.exports) return service.exports[method];
    throw new SnapshotError('USAGE', `service "${name}" exports no "${method}"; it exports: ${Object.keys(service.exports).join(', ')}`);
  }
  return (fn as (...a: unknown[]) => Promise<unknown>)(...args);
};
