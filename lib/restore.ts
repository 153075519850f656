/** `snapshot restore`: rebuild services from a snapshot directory and let them go live. */
import { SnapshotError } from '../replay-log/index.js';
import { readManifest, type Manifest } from './manifest.js';
import { restoreService, type RestoredService } from './service.js';

export interface RestoreSnapshotOptions {
  readonly dir: string;
  /** Restore only these services (default: all). */
  readonly services?: readonly string[];
  readonly print?: (text: string) => void;
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
  const services = new Map<string, RestoredService>();
  for (const name of names) {
    services.set(name, await restoreService({ dir: options.dir, manifest: manifest.services[name], print: options.print }));
  }
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
