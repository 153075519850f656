/**
 * Node's own error classes, frozen before any service runs.
 *
 * A host function a service may call (`path.join(1)`, `Buffer.alloc(-1)`,
 * a web stream used on the wrong object) throws one of Node's internal
 * errors (lib/internal/errors.js: `class NodeError extends Base` per code,
 * made when Node starts). Their prototypes are shared by every service and
 * the host, and SES's lockdown does not reach them (no intrinsic points to
 * them): a service could write `Object.getPrototypeOf(error).toString`, or
 * a `Symbol.for('nodejs.util.inspect.custom')` hook, and have its code run
 * when the host or another service printed such an error, with the host's
 * error (its stack) in hand.
 *
 * No public API lists those classes. They are found through the inspector
 * protocol, in process (no port is opened):
 *
 * 1. Fast path (about 1 ms, then the hardening): the `constructor` getter
 *    of a NodeError's prototype is a closure of lib/internal/errors.js; its
 *    `[[Scopes]]` hold that module's `codes` table (every NodeError class,
 *    with the variants attached to each) and its other classes, fetched in
 *    one protocol call. Each is hardened.
 * 2. If Node's layout is not the one expected, or a probe error is still
 *    not frozen after step 1: the heap is asked (`Runtime.queryObjects` on
 *    `Error.prototype`, 30 to 80 ms), and every object in it that is not an
 *    error itself (so, a prototype of some error class) is hardened.
 *
 * Classes that extend V8's own Error are re-parented onto the shared one
 * first (hardenHostValues): the host's stack settings live on V8's Error.
 */
import inspector from 'node:inspector';
import path from 'node:path';
import { hardenHostValues } from './guest-errors.js';

let done = false;

type Post = <T>(method: string, params: object) => T;
interface RemoteObject {
  objectId?: string;
  type?: string;
}
interface PropertyDescriptor {
  name: string;
  value?: RemoteObject;
}

/** The error `path.join(1)` throws (ERR_INVALID_ARG_TYPE): a probe of Node's internal error classes. */
const probeError = (): Error => {
  try {
    path.join(1 as unknown as string);
  } catch (error) {
    return error as Error;
  }
  throw new Error('path.join(1) did not throw');
};

const probeIsFrozen = (): boolean => {
  let proto = Object.getPrototypeOf(probeError()) as object | null;
  while (proto !== null && proto !== Error.prototype) {
    if (!Object.isFrozen(proto)) return false;
    proto = Object.getPrototypeOf(proto) as object | null;
  }
  return true;
};

/**
 * Hand remote objects back to this code, in order, in one protocol call (their ids become the
 * arguments of a function run in this realm, which leaves them in a global slot, emptied at once).
 */
const fetchObjects = (post: Post, objectIds: readonly string[]): unknown[] => {
  if (objectIds.length === 0) return [];
  const slot = '__membraneSnapshotFetched';
  post('Runtime.callFunctionOn', {
    objectId: objectIds[0],
    functionDeclaration: `function (...values) { globalThis.${slot} = values; }`,
    arguments: objectIds.map(objectId => ({ objectId })),
  });
  const values = (globalThis as Record<string, unknown>)[slot];
  delete (globalThis as Record<string, unknown>)[slot];
  if (!Array.isArray(values) || values.length !== objectIds.length) throw new Error('inspector: Runtime.callFunctionOn did not hand the objects back');
  return values;
};

/** Step 1: Node's `codes` table and the other classes of lib/internal/errors.js, through a closure's scopes. */
const hardenFromErrorsModule = (post: Post): number => {
  let proto = Object.getPrototypeOf(probeError()) as object | null;
  let getter: unknown;
  while (proto !== null && getter === undefined) {
    getter = Object.getOwnPropertyDescriptor(proto, 'constructor')?.get;
    proto = Object.getPrototypeOf(proto) as object | null;
  }
  if (typeof getter !== 'function') return 0;
  const slot = '__membraneSnapshotGetter';
  (globalThis as Record<string, unknown>)[slot] = getter;
  let getterId: string | undefined;
  try {
    getterId = post<{ result: RemoteObject }>('Runtime.evaluate', { expression: `globalThis.${slot}` }).result.objectId;
  } finally {
    delete (globalThis as Record<string, unknown>)[slot];
  }
  if (!getterId) return 0;
  const { internalProperties = [] } = post<{ internalProperties?: PropertyDescriptor[] }>('Runtime.getProperties', { objectId: getterId, ownProperties: true });
  const scopes = internalProperties.find(p => p.name === '[[Scopes]]')?.value?.objectId;
  if (!scopes) return 0;
  const { result: scopeList } = post<{ result: PropertyDescriptor[] }>('Runtime.getProperties', { objectId: scopes, ownProperties: true });
  let hardened = 0;
  for (const scope of scopeList) {
    if (!scope.value?.objectId) continue;
    const { result: variables } = post<{ result: PropertyDescriptor[] }>('Runtime.getProperties', { objectId: scope.value.objectId, ownProperties: true });
    if (!variables.some(v => v.name === 'codes')) continue; // not lib/internal/errors.js's module scope
    const wanted = variables.filter(v => v.value?.objectId && (v.value.type === 'function' || v.name === 'codes'));
    const values = fetchObjects(post, wanted.map(v => v.value?.objectId as string));
    const classes: unknown[] = [];
    wanted.forEach((variable, i) => {
      const value = values[i];
      if (variable.name === 'codes') {
        // The table itself stays as Node keeps it; every class in it is hardened.
        for (const klass of Object.values(value as Record<string, unknown>)) if (typeof klass === 'function') classes.push(klass);
      } else if (typeof value === 'function' && (value as { prototype?: unknown }).prototype instanceof Error) {
        classes.push(value);
      }
    });
    hardenHostValues(classes);
    hardened += classes.length;
    // The scopes beyond the module's (the global one) hold none of its classes, and listing the
    // global scope costs more than all the rest.
    break;
  }
  return hardened;
};

/** Step 2: every prototype of an error class on the heap. */
const hardenFromHeap = (post: Post): number => {
  const { result: prototype } = post<{ result: RemoteObject }>('Runtime.evaluate', { expression: 'Error.prototype' });
  const { objects } = post<{ objects: RemoteObject }>('Runtime.queryObjects', { prototypeObjectId: prototype.objectId });
  const slot = '__membraneSnapshotErrorPrototypes';
  post('Runtime.callFunctionOn', {
    objectId: objects.objectId,
    functionDeclaration: `function () {
      const toString = Object.prototype.toString;
      globalThis.${slot} = Array.prototype.filter.call(this, object => !Object.isFrozen(object) && toString.call(object) !== '[object Error]');
    }`,
  });
  const found = ((globalThis as Record<string, unknown>)[slot] ?? []) as object[];
  delete (globalThis as Record<string, unknown>)[slot];
  hardenHostValues(found);
  return found.length;
};

/**
 * Harden Node's internal error classes (their prototypes and statics).
 * Idempotent; returns how many classes or prototypes were hardened now (0
 * after the first call). A Node built without the inspector cannot be
 * asked: a warning is emitted once and nothing is hardened.
 */
export const hardenNodeErrorPrototypes = (): number => {
  if (done) return 0;
  done = true;
  let session: inspector.Session;
  try {
    session = new inspector.Session();
    session.connect();
  } catch (error) {
    process.emitWarning(`membrane-snapshot: this Node has no inspector (${error instanceof Error ? error.message : String(error)}): the prototypes of Node's internal errors stay unfrozen, and services share them`);
    return 0;
  }
  const post: Post = <T>(method: string, params: object): T => {
    let result: T | undefined;
    let failure: unknown;
    session.post(method, params, (error: Error | null, value: unknown) => {
      failure = error;
      result = value as T;
    });
    if (failure) throw failure;
    if (result === undefined) throw new Error(`inspector: ${method} did not answer synchronously`);
    return result;
  };
  try {
    let hardened = 0;
    try {
      hardened = hardenFromErrorsModule(post);
    } catch {
      hardened = 0; // another Node layout: the heap is asked instead
    }
    if (hardened === 0 || !probeIsFrozen()) hardened += hardenFromHeap(post);
    return hardened;
  } finally {
    post('Runtime.releaseObjectGroup', { objectGroup: 'console' });
    session.disconnect();
  }
};
