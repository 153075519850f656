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
 * No public API lists those classes, so the heap is asked, once, through
 * the inspector protocol (`Runtime.queryObjects`, in process, no port
 * opened): every object whose prototype chain holds `Error.prototype` and
 * that is not itself an error is a prototype of some error class, and is
 * hardened. Costs one heap walk (about 50 ms), made when the first service
 * of the process is assembled.
 */
import inspector from 'node:inspector';
import { hardenHostValue } from './guest-errors.js';

let done = false;

/**
 * Harden every prototype of an error class that exists in this process.
 * Idempotent; returns how many objects were hardened now (0 after the first
 * call). A Node built without the inspector cannot be asked: a warning is
 * printed once and nothing is hardened.
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
  try {
    const post = <T>(method: string, params: object): T => {
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
    const { result: prototype } = post<{ result: { objectId: string } }>('Runtime.evaluate', { expression: 'Error.prototype' });
    const { objects } = post<{ objects: { objectId: string } }>('Runtime.queryObjects', { prototypeObjectId: prototype.objectId });
    // The objects come back to this code through a global slot, filled and emptied at once.
    const slot = '__membraneSnapshotErrorPrototypes';
    post('Runtime.callFunctionOn', {
      objectId: objects.objectId,
      functionDeclaration: `function () {
        const toString = Object.prototype.toString;
        globalThis.${slot} = Array.prototype.filter.call(this, object => !Object.isFrozen(object) && toString.call(object) !== '[object Error]');
      }`,
    });
    post('Runtime.releaseObjectGroup', { objectGroup: 'console' });
    const found = ((globalThis as Record<string, unknown>)[slot] ?? []) as object[];
    delete (globalThis as Record<string, unknown>)[slot];
    // hardenHostValue re-parents classes that extend V8's own Error first (its statics are the host's).
    for (const object of found) hardenHostValue(object);
    return found.length;
  } finally {
    session.disconnect();
  }
};
