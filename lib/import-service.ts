/**
 * `importService(specifier, options)`: load a module as a service, recorded
 * into the snapshot being built. Relative specifiers resolve against the
 * calling module, as `import()` would.
 */
import { SnapshotError } from '../replay-log/index.js';
import { currentSession } from './session.js';
import { resolveSpecifier } from './resolve.js';
import type { Remote, UntypedService } from './remote.js';

export interface ImportServiceOptions {
  /** Unique within the app; names the service's directory in the snapshot. Default: the file's base name. */
  readonly name?: string;
  /** Resolve the specifier against this URL or path instead of the caller's module. */
  readonly base?: string;
  /** Host modules granted to the service beyond the builtins; their calls are recorded. */
  readonly modules?: Readonly<Record<string, Record<string, unknown>>>;
}

/**
 * Record the module at `specifier` as a service of the snapshot being built
 * and return its exports, seen through the membrane. Give the service's type
 * to check calls against it: `importService<typeof import('./svc.js')>('./svc.js')`
 * (or an interface); every function then returns a promise of its result
 * (see `Remote`). Without a type argument every export is callable and
 * returns `Promise<unknown>`.
 *
 * Throws SnapshotError `USAGE` outside `snapshot build` / `buildSnapshot()`
 * or for a bad or duplicate name; `SERVICE_LOAD_FAILED`,
 * `MODULE_NOT_INSTALLED`, `MODULE_NOT_GRANTED` when the service does not
 * load.
 */
export const importService = async <T extends object = UntypedService>(specifier: string, options: ImportServiceOptions = {}): Promise<Remote<T>> => {
  const session = currentSession();
  if (!session) {
    throw new SnapshotError('USAGE', 'importService() records into a snapshot: run your build script with `snapshot build <script>` (or call buildSnapshot()).');
  }
  return (await session.record(resolveSpecifier(specifier, options.base), { name: options.name, modules: options.modules })) as Remote<T>;
};
