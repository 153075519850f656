/** `snapshot restore`: rebuild services from a snapshot directory and let them go live. */
import { SnapshotError, isSnapshotError, type SealKey } from '../replay-log/index.js';
import { checkStringArgument, readCheckedOptions } from '../replay-log/errors.js';
import { Directory } from '../membrane/index.js';
import { otherNodeLine, readManifest, type Manifest } from './manifest.js';
import { loadTrustedKeys } from './signing.js';
import { loadSealer } from './seal-key.js';
import { prepareService, type PreparedService, type RestoredService } from './service.js';
import { keepWritesFromServices } from '../compartments/reach.js';
import { markPhase } from '../compartments/phases.cjs';
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
  /**
   * Files of trusted ed25519 public keys (PEM, one or more per file). When
   * given, an unsigned snapshot (SIGNATURE_MISSING) or one whose signature
   * does not verify with one of these keys (SIGNATURE_INVALID) is refused
   * before anything but its manifest is read.
   */
  readonly trust?: readonly string[];
  /** A file holding the seal key (32 bytes, base64). Default: the SNAPSHOT_SEAL_KEY environment variable. */
  readonly sealKeyFile?: string;
}

export interface RestoredSnapshot {
  readonly manifest: Manifest;
  readonly services: ReadonlyMap<string, RestoredService>;
  readonly ms: number;
}

/**
 * The seal key to replay services `names` of `manifest` with: the one in
 * `sealKeyFile`, else SNAPSHOT_SEAL_KEY (undefined when neither is set and
 * none of them holds a sealed value or a keyed fingerprint). Throws
 * SEAL_KEY_MISSING when one holds either and no key is set, SEAL_KEY_INVALID when the key is not the
 * one the snapshot was sealed with (its key id), and what loadSealer throws
 * for an unreadable or malformed key.
 */
export const checkedSealer = (manifest: Manifest, names: readonly string[], sealKeyFile: string | undefined): SealKey | undefined => {
  const sealer = loadSealer(sealKeyFile);
  const sealedIn = names.filter(name => (manifest.services[name].sealedValues ?? 0) > 0 || (manifest.services[name].keyedFingerprints ?? 0) > 0);
  if (sealedIn.length > 0) {
    if (!sealer) {
      throw new SnapshotError(
        'SEAL_KEY_MISSING',
        `the replay logs of ${sealedIn.map(n => `"${n}"`).join(', ')} hold sealed secrets (or fingerprints of crypto data keyed with the seal key); restore needs the seal key they were built with (${manifest.seal?.keyId ?? 'unknown key id'}): ` +
          'set SNAPSHOT_SEAL_KEY or pass --seal-key <file>. No service was loaded.',
        { details: { services: sealedIn, keyId: manifest.seal?.keyId } },
      );
    }
    if (manifest.seal?.keyId !== sealer.keyId) {
      throw new SnapshotError(
        'SEAL_KEY_INVALID',
        `the snapshot was sealed with key ${manifest.seal?.keyId ?? '(none recorded)'}, and the seal key given is ${sealer.keyId}: give the key it was built with. No service was loaded.`,
        { details: { expected: manifest.seal?.keyId, actual: sealer.keyId } },
      );
    }
  }
  // Only the key the snapshot was built with: another (a host's SNAPSHOT_SEAL_KEY for other snapshots) would key
  // the fingerprints a replay compares otherwise than the build did (Membrane#fingerprint).
  return sealer !== undefined && manifest.seal?.keyId === sealer.keyId ? sealer : undefined;
};

export const restoreSnapshot = async (given: RestoreSnapshotOptions): Promise<RestoredSnapshot> => {
  // process.uptime(), not performance.now(): the first read of Node's performance global loads its perf_hooks.
  const started = process.uptime();
  // Read once: what is checked is what is used (a getter could answer differently the second time).
  const options = readCheckedOptions(
    given,
    { dir: 'string', services: 'strings', print: 'function', transport: 'object', modules: 'object', trust: 'strings', sealKeyFile: 'string' },
    'restoreSnapshot()',
    ['dir'],
  );
  if (options.trust !== undefined && options.trust.length === 0) throw new SnapshotError('USAGE', 'restoreSnapshot(): trust takes one or more files of trusted keys; an empty list would check nothing.');
  const trusted = options.trust?.length ? loadTrustedKeys(options.trust) : undefined;
  const manifest = readManifest(options.dir, trusted);
  // A live service never writes into the snapshot it came from (the next restore reads it).
  keepWritesFromServices(options.dir);
  const names = options.services?.length ? options.services : Object.keys(manifest.services);
  for (const name of names) {
    if (!Object.hasOwn(manifest.services, name)) {
      throw new SnapshotError('USAGE', `the snapshot has no service "${name}"; it has: ${Object.keys(manifest.services).join(', ') || 'none'}`);
    }
  }
  // The seal key is checked before any service is loaded.
  const sealer = checkedSealer(manifest, names, options.sealKeyFile);
  markPhase('manifest');
  // Load every service first, bind the references between them, then replay
  // them all: a reference is alive the moment its holder goes live.
  const directory = new Directory();
  options.transport?.attach?.(directory);
  const local = new InProcessTransport();
  const prepared: PreparedService[] = [];
  for (const name of names) {
    const service = await prepareService({ dir: options.dir, manifest: manifest.services[name], print: options.print, directory, granted: options.modules, sealer });
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
  // A divergence of a snapshot built on another Node line says so (otherNodeLine).
  const onOtherLine = otherNodeLine(manifest);
  const restored = await Promise.all(prepared.map(service => service.replay())).catch((error: unknown) => {
    if (onOtherLine === undefined || !isSnapshotError(error) || error.code !== 'REPLAY_DIVERGED') throw error;
    throw new SnapshotError('REPLAY_DIVERGED', `${error.message}\n${onOtherLine}`, { cause: error, details: error.details });
  });
  const services = new Map<string, RestoredService>(restored.map(service => [service.name, service]));
  await options.transport?.serve?.(new Map(restored.map(service => [service.name, service.membrane])));
  return { manifest, services, ms: (process.uptime() - started) * 1000 };
};

/**
 * Call `service.method(...args)` on a restored snapshot, or
 * `service.object.method(...args)` for a method of an exported object; a
 * value that is no function is returned as it is. Throws USAGE for a
 * `target` that names no restored service's export that way, or arguments
 * of the wrong kind; otherwise what the call throws.
 */
export const callService = async (snapshot: RestoredSnapshot, target: string, args: readonly unknown[] = []): Promise<unknown> => {
  if (!(snapshot?.services instanceof Map)) throw new SnapshotError('USAGE', 'callService(): the first argument is what restoreSnapshot() resolved to.');
  checkStringArgument(target, 'callService()', 'the target (service.method)');
  if (!Array.isArray(args)) throw new SnapshotError('USAGE', `callService(): the arguments are an array, got ${typeof args}.`);
  const dot = target.indexOf('.');
  if (dot <= 0) throw new SnapshotError('USAGE', `--call takes service.method, got "${target}"`);
  const name = target.slice(0, dot);
  const method = target.slice(dot + 1);
  const service = snapshot.services.get(name);
  if (!service) throw new SnapshotError('USAGE', `no restored service "${name}" (restored: ${[...snapshot.services.keys()].join(', ')})`);
  // service.object.method: a method of an exported object (its methods are called on it, as svc.counter.inc()).
  const [exportName, member, ...deeper] = method.split('.');
  if (deeper.length > 0) throw new SnapshotError('USAGE', `--call takes service.method or service.object.method, got "${target}"`);
  // Only the service's own exports: not what every object inherits (toString, constructor, __proto__).
  const exported = Object.prototype.hasOwnProperty.call(service.exports, exportName);
  if (member !== undefined) {
    const object = exported ? service.exports[exportName] : undefined;
    if (typeof object !== 'object' || object === null || !(member in object)) {
      throw new SnapshotError('USAGE', `service "${name}" exports no object "${exportName}" with "${member}"; it exports: ${Object.keys(service.exports).join(', ')}`);
    }
    const value = (object as Record<string, unknown>)[member];
    return typeof value === 'function' ? (value as (...a: unknown[]) => Promise<unknown>)(...args) : value;
  }
  const fn = exported ? service.exports[exportName] : undefined;
  if (typeof fn !== 'function') {
    if (exported) return service.exports[exportName];
    throw new SnapshotError('USAGE', `service "${name}" exports no "${exportName}"; it exports: ${Object.keys(service.exports).join(', ')}`);
  }
  return (fn as (...a: unknown[]) => Promise<unknown>)(...args);
};
