/**
 * `importService(specifier, options)`: load a module as a service, recorded
 * into the snapshot being built. Relative specifiers resolve against the
 * calling module, as `import()` would.
 */
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SnapshotError } from '../replay-log/index.js';
import { currentSession } from './session.js';
import { RecordedService, type ServiceExports } from './service.js';

export interface ImportServiceOptions {
  /** Unique within the app; names the service's directory in the snapshot. Default: the file's base name. */
  readonly name?: string;
  /** Resolve the specifier against this URL or path instead of the caller's module. */
  readonly base?: string;
  /** Host modules granted to the service beyond the builtins; their calls are recorded. */
  readonly modules?: Readonly<Record<string, Record<string, unknown>>>;
}

const libDir = path.dirname(fileURLToPath(import.meta.url));
/** Our own code, compiled or (through source maps / tsx) as sources: never "the caller". */
const packageRoot = path.basename(path.dirname(libDir)) === 'dist' ? path.resolve(libDir, '..', '..') : path.resolve(libDir, '..');
const ownDirs = ['dist', 'lib', 'membrane', 'compartments', 'replay-log'].map(d => path.join(packageRoot, d) + path.sep);
const isOwnFile = (file: string): boolean => ownDirs.some(dir => file.startsWith(dir));

/** The URL of the module that called into this package (from the stack). */
const callerUrl = (): string | undefined => {
  const stack = new Error('caller').stack ?? '';
  for (const line of stack.split('\n').slice(1)) {
    const match = /\(?((?:file:\/\/)?\/[^():]+|[A-Za-z]:\\[^():]+):\d+:\d+\)?\s*$/.exec(line.trim());
    if (!match) continue;
    const file = match[1].startsWith('file://') ? fileURLToPath(match[1]) : match[1];
    if (isOwnFile(file) || file.includes(`${path.sep}node_modules${path.sep}tsx${path.sep}`)) continue;
    return pathToFileURL(file).href;
  }
  return undefined;
};

export const resolveSpecifier = (specifier: string, base: string | undefined): string => {
  const from = base === undefined ? (callerUrl() ?? pathToFileURL(`${process.cwd()}${path.sep}`).href) : base.startsWith('file:') ? base : pathToFileURL(path.resolve(base)).href;
  if (specifier.startsWith('file:')) return specifier;
  if (path.isAbsolute(specifier)) return pathToFileURL(specifier).href;
  if (specifier.startsWith('./') || specifier.startsWith('../')) return new URL(specifier, from).href;
  try {
    return pathToFileURL(createRequire(from).resolve(specifier)).href;
  } catch (cause) {
    throw new SnapshotError('SERVICE_LOAD_FAILED', `cannot resolve service "${specifier}" from ${from}`, { cause });
  }
};

export const importService = async <T extends ServiceExports = ServiceExports>(specifier: string, options: ImportServiceOptions = {}): Promise<T> => {
  const session = currentSession();
  if (!session) {
    throw new SnapshotError('USAGE', 'importService() records into a snapshot: run your build script with `snapshot build <script>` (or call buildSnapshot()).');
  }
  const entry = resolveSpecifier(specifier, options.base);
  const name = options.name ?? path.basename(fileURLToPath(entry)).replace(/\.[cm]?[jt]s$/, '');
  session.reserve(name);
  const service = await RecordedService.record({ name, entry, outDir: session.outDir, granted: options.modules, print: session.print });
  session.services.set(name, service);
  return service.exports as T;
};
