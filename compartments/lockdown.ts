/**
 * Lockdown bootstrap. Import this module before anything else: ESM imports
 * are hoisted, and `lockdown()` must run before any module that hardens or
 * captures intrinsics is evaluated.
 *
 * - errorTaming 'unsafe-debug': keep V8 stacks (tap's stack helper needs
 *   them, and divergence reports show the service's frames).
 * - errorTrapping 'platform': an uncaught error fails the process as in
 *   Node (logs are flushed at the end of every turn, so nothing already
 *   recorded is lost). unhandledRejectionTrapping 'report': a service's
 *   forgotten rejected promise is reported, and does not take down the host
 *   and every other service in it.
 * - overrideTaming 'severe': packages such as immer assign over frozen
 *   intrinsic properties (`obj.toString = ...`).
 * - The process runs in UTC, so that a service's local-time output is the
 *   same on the build host and on every target.
 */
import 'ses';

const already = Symbol.for('membrane-snapshot.lockdown');
const realm = globalThis as unknown as Record<symbol, boolean>;

if (!realm[already]) {
  process.env.TZ = 'UTC';
  try {
    lockdown({
      errorTaming: 'unsafe-debug',
      errorTrapping: 'platform',
      unhandledRejectionTrapping: 'report',
      overrideTaming: 'severe',
      consoleTaming: 'unsafe',
      stackFiltering: 'verbose',
      evalTaming: 'unsafe-eval',
    });
  } catch (error) {
    // Someone locked the realm down before us: fine, as long as it is locked.
    if (!Object.isFrozen(Array.prototype)) throw error;
  }
  realm[already] = true;
}

/**
 * Whether local-time text is the same on every host: V8 names time zones in
 * the process's ICU locale, fixed at startup (LC_ALL / LANG). The CLI
 * re-executes itself under LC_ALL=C.UTF-8 when this is false.
 */
export const localeIsFixed = (): boolean => new Date(0).toString() === 'Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)';
