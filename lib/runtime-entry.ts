/**
 * `membrane-snapshot/runtime`: the `runtime` a service module imports,
 * without the rest of the library.
 *
 * Importing it has no side effect. The main entry (`membrane-snapshot`)
 * locks the whole process down when it is imported (SES's lockdown, and
 * TZ=UTC), so a service module that imported `runtime` from there changed
 * how it ran in plain Node (its tests, a local run): this one does not.
 * Inside a service the same specifier is the service's recording runtime
 * (compartments/endowments.ts). Here `declare()` checks the declaration
 * (DECLARATION_INVALID) and does nothing else; when the library itself is
 * loaded in this process, it is the library's `runtime.declare`
 * (lib/runtime.ts), which also refuses a declaration made by a build
 * script (USAGE).
 */
import { checkDeclaration, type RuntimeDeclaration } from '../compartments/runtime-limits.js';

export type { RuntimeDeclaration } from '../compartments/runtime-limits.js';

/** Where the library's own `runtime` is, once lib/runtime.ts is loaded in this process. */
const LIBRARY_RUNTIME = Symbol.for('membrane-snapshot.runtime');

/** `runtime` as code outside a service sees it, with no lockdown: `declare(declaration)` checks and does nothing. */
export const runtime = Object.freeze({
  declare(declaration: RuntimeDeclaration): void {
    const library = (globalThis as Record<symbol, { declare(declaration: RuntimeDeclaration): void } | undefined>)[LIBRARY_RUNTIME];
    if (library) {
      library.declare(declaration);
      return;
    }
    checkDeclaration(declaration);
  },
});
