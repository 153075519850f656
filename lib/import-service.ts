/**
 * `importService(specifier, options)`: load a module as a service, recorded
 * into the snapshot being built. Relative specifiers resolve against the
 * calling module, as `import()` would.
 */
import { SnapshotError } from '../replay-log/index.js';
import { currentSession } from './session.js';
import { resolveSpecifier } from './resolve.js';
import type { ServiceExports } from './service.js';

export interface ImportServiceOptions {
  /** Unique within the app; names the service's directory in the snapshot. Default: the file's base name. */
  readonly name?: string;
  /** Resolve the specifier against this URL or path instead of the caller's module. */
  readonly base?: string;
  /** Host modules granted to the service beyond the builtins; their calls are recorded. */
  readonly modules?: Readonly<Record<string, Record<string, unknown>>>;
}

export const importService = async <T extends ServiceExports = ServiceExports>(specifier: string, options: ImportServiceOptions = {}): Promise<T> => {
  const session = currentSession();
  if (!session) {
    throw new SnapshotError('USAGE', 'importService() records into a snapshot: run your build script with `snapshot build <script>` (or call buildSnapshot()).');
  }
  return (await session.record(resolveSpecifier(specifier, options.base), { name: options.name, modules: options.modules })) as T;
};
