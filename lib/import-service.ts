/**
 * `importService(specifier, options)`: load a module as a service, recorded
 * into the snapshot being built. Relative specifiers resolve against the
 * calling module, as `import()` would.
 */
import { SnapshotError } from '../replay-log/index.js';
import { readCheckedOptions } from '../replay-log/errors.js';
import { currentSession } from './session.js';
import { callerUrl, resolveSpecifier } from './resolve.js';
import type { ServiceExports } from './service.js';
import type { ReachPolicy, SecretsOptions } from '../compartments/index.js';
import type { Remote, UntypedService } from './remote.js';

export interface ImportServiceOptions {
  /** Unique within the app; names the service's directory in the snapshot. Default: the file's base name. */
  readonly name?: string;
  /**
   * Resolve the specifier against this instead of the caller's module: a
   * path (relative to the working directory) or a file: URL, of a module or
   * of a directory (`./svc.js` is then found inside it). Another URL
   * (`http://...`) is USAGE: services load from files.
   */
  readonly base?: string;
  /** Host modules granted to the service beyond the builtins; their calls are recorded. */
  readonly modules?: Readonly<Record<string, Record<string, unknown>>>;
  /**
   * What the service may reach, at build time and when live; recorded in the
   * manifest. `fetch`: hosts (`api.example.com`, `api.example.com:8443`,
   * `*.example.com`, `https://host`); `read` / `write`: files or directories
   * (relative to the working directory), links resolved. A capability left
   * out stays open; one listed is limited to the list. Anything else is
   * refused with REACH_DENIED. Nested services get the same policy.
   */
  readonly reach?: ReachPolicy;
  /**
   * What the service sees that is secret, sealed in its log with the seal
   * key (AES-256-GCM): env names (glob patterns, ignoring case), header
   * names, fetch hosts (all of their headers and bodies). Added to the
   * defaults (`*_SECRET*`, `*_TOKEN*`, `*_KEY`, `*PASSWORD*`...,
   * `authorization`, `cookie`, `set-cookie`, `proxy-authorization`...)
   * unless `defaults: false`. Values passed in calls are marked with
   * `secret(value)`.
   */
  readonly secrets?: SecretsOptions;
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
 * or for a bad or duplicate name, an unknown option (at any level: a
 * misspelt `reach` or `secrets` field is refused, never read as "no limit"); `SERVICE_LOAD_FAILED`,
 * `MODULE_NOT_INSTALLED`, `MODULE_NOT_GRANTED` when the service does not
 * load.
 */
export const importService = <T extends object = UntypedService>(specifier: string, options: ImportServiceOptions = {}): Promise<Remote<T>> => {
  const session = currentSession();
  const imported = importInto(session, specifier, options) as Promise<Remote<T>>;
  // No build, or a specifier that is no string: the promise rejects with USAGE, as it is.
  if (!session || typeof specifier !== 'string') return imported;
  // Until the script awaits it, a failing build may be one that forgot to (x.init is not a function).
  const promise = ServicePromise.resolve(imported) as ServicePromise<Remote<T>>;
  session.unawaited.set(promise, specifier);
  awaitedBy.set(promise, () => session.unawaited.delete(promise));
  return promise;
};

/** What marks an importService promise awaited, by promise (ServicePromise.then runs it). */
const awaitedBy = new WeakMap<object, () => void>();

/**
 * The promise importService returns: a Promise whose `then` (which `await`,
 * `catch` and `finally` call) notes that the script took its result.
 * Promises made from it (then, catch, finally) are plain ones.
 */
class ServicePromise<T> extends Promise<T> {
  static get [Symbol.species](): PromiseConstructor {
    return Promise;
  }
  then<A = T, B = never>(onFulfilled?: ((value: T) => A | PromiseLike<A>) | null, onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    awaitedBy.get(this)?.();
    return super.then(onFulfilled, onRejected);
  }
}

const importInto = async <T extends object>(session: ReturnType<typeof currentSession>, specifier: string, options: ImportServiceOptions): Promise<Remote<T>> => {
  if (!session) {
    throw new SnapshotError('USAGE', 'importService() records into a snapshot: run your build script with `snapshot build <script>` (or call buildSnapshot()).');
  }
  if (typeof specifier !== 'string') throw new SnapshotError('USAGE', `importService() takes a module specifier (a string), got ${specifier === null ? 'null' : typeof specifier}.`);
  const given = readCheckedOptions(options, { name: 'string', base: 'string', modules: 'object', reach: 'object', secrets: 'object' }, `importService("${specifier}")`);
  const caller = callerUrl();
  if (caller !== undefined) session.callers.add(caller.replace(/[?#].*$/, ''));
  return (await session.record(resolveSpecifier(specifier, given.base), { name: given.name, modules: given.modules, reach: given.reach, secrets: given.secrets })) as Remote<T>;
};
