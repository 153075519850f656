/**
 * The live runtime's view of a snapshot: what each service declared with
 * `runtime.declare()` at build time, checked across the whole app, and the
 * `runtime` export of the library for code outside a service.
 */
import { SnapshotError } from '../replay-log/index.js';
import { validateDeclaration, type RuntimeDeclaration } from '../compartments/index.js';
import fs from 'node:fs';
import path from 'node:path';
import type { ServiceManifest } from './manifest.js';
import { APP_NAME } from './manifest-shape.js';
import { currentSession } from './session.js';

/** An app name usable in subjects and bucket names: letters, digits, `-`, `_`. Throws USAGE. */
export const checkAppName = (app: string): string => {
  if (!APP_NAME.test(app)) {
    throw new SnapshotError('USAGE', `${JSON.stringify(app)} is not a valid app name: use 1 to 64 letters, digits, "-" and "_" (--app name).`);
  }
  return app;
};

/** The app name a package name gives: `@scope/my.app` becomes `scope-my-app`. */
export const appNameFromPackage = (name: string): string => name.replace(/^@/, '').replace(/[^A-Za-z0-9_-]+/g, '-').slice(0, 64) || 'app';

/** The app name of a build script: the `name` of the nearest package.json above it, made subject-safe; undefined if none. */
export const appNameOf = (script: string): string | undefined => {
  for (let dir = path.dirname(script); ; dir = path.dirname(dir)) {
    try {
      const name = (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown }).name;
      if (typeof name === 'string' && name) return appNameFromPackage(name);
    } catch {
      // no (readable) package.json here: keep looking
    }
    if (path.dirname(dir) === dir) return undefined;
  }
};

/**
 * `runtime` as code outside a service sees it: the same type as the one
 * services import. A declaration only means something inside a service (it
 * is recorded there), so outside one it is checked and has no effect: a
 * service module still runs in plain Node (its tests, a local run). Throws
 * DECLARATION_INVALID for a bad declaration, and USAGE when a build is
 * running in this process (the build script itself declaring: a mistake,
 * the declaration belongs in the service).
 */
export const runtime = Object.freeze({
  declare(declaration: RuntimeDeclaration): void {
    validateDeclaration(declaration);
    if (currentSession()) {
      throw new SnapshotError('USAGE', 'runtime.declare() describes a service: call it inside a module loaded with importService(), at its top level, while `snapshot build` records it.');
    }
  },
});
// `membrane-snapshot/runtime` (runtime-entry.ts) hands its calls here when the library is loaded in this process.
// Fixed once set: other code in the process cannot put its own declare() in its place. A second
// copy of the library in the process (another install path, or the restore bundle beside the
// modules) leaves the first one's.
const runtimeHook = Symbol.for('membrane-snapshot.runtime');
if (!Object.hasOwn(globalThis, runtimeHook)) Object.defineProperty(globalThis, runtimeHook, { value: runtime, writable: false, enumerable: false, configurable: false });

/**
 * Check the declarations of an app's services together, at build time:
 * a service that declares `http` must export a fetch handler (`fetch`, or a
 * default export with a `fetch` method), and no two services may declare
 * the same port. `exportsOf(name)` gives a service's exports as the host
 * sees them. Throws DECLARATION_INVALID.
 */
export const checkDeclarations = (services: readonly ServiceManifest[], exportsOf: (name: string) => Record<string, unknown>): void => {
  const ports = new Map<number, string>();
  for (const service of services) {
    const port = service.runtime?.http?.port;
    if (port === undefined) continue;
    const exports = exportsOf(service.name);
    const handler = typeof exports.fetch === 'function' || (typeof exports.default === 'object' && exports.default !== null) || typeof exports.default === 'function';
    if (!handler) {
      throw new SnapshotError(
        'DECLARATION_INVALID',
        `service "${service.name}" declares http on port ${port} but exports no fetch handler: add \`export async function fetch(request) { return new Response('...') }\` (or \`export default { fetch }\`), or drop http from runtime.declare().`,
        { details: { service: service.name, port } },
      );
    }
    const other = ports.get(port);
    if (other !== undefined) {
      throw new SnapshotError('DECLARATION_INVALID', `services "${other}" and "${service.name}" both declare http port ${port}; give each its own port.`, {
        details: { services: [other, service.name], port },
      });
    }
    ports.set(port, service.name);
  }
};
