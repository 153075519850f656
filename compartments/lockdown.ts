/**
 * Lockdown bootstrap. Import this module before anything else: ESM imports
 * are hoisted, and `lockdown()` must run before any module that hardens or
 * captures intrinsics is evaluated.
 *
 * Lockdown runs in its two SES phases, `repairIntrinsics()` then
 * `hardenIntrinsics()`, so that the Error constructor every compartment
 * shares has its V8 statics made inert before it is frozen (see
 * guest-errors.ts; services get their own).
 *
 * - errorTaming 'unsafe-debug': keep V8 stacks (tap's stack helper needs
 *   them, and divergence reports show the service's frames).
 * - Uncaught exceptions (errorTrapping 'none', and our own handler,
 *   guest-errors.ts): one thrown by service code (its stack has service
 *   frames) is reported and the process goes on, so a service cannot take
 *   the host and every other service down from a listener or callback whose
 *   error Node rethrows on its own tick queue (EventTarget, AbortSignal).
 *   Any other uncaught exception ends the process with code 1, as in Node
 *   (logs are flushed at the end of every turn, so nothing already recorded
 *   is lost). unhandledRejectionTrapping 'report': a service's forgotten
 *   rejected promise is reported, and does not take down the host.
 * - overrideTaming 'severe': packages such as immer assign over frozen
 *   intrinsic properties (`obj.toString = ...`); overrides.ts extends the
 *   same treatment to the methods of the other intrinsic prototypes, and
 *   inspection.ts keeps Node's util.inspect naming Maps, Sets, Promises and
 *   errors as it does without lockdown.
 * - RegExp.prototype's split and replace are the library's
 *   (regexp-methods.ts): locked down, V8's own take their generic paths
 *   (split: one `exec` per character of the text).
 * - The process runs in UTC, so that a service's local-time output is the
 *   same on the build host and on every target.
 * - localeTaming 'unsafe': `toLocaleString`, `localeCompare`,
 *   `toLocaleUpperCase`... stay V8's, so they answer as in Node
 *   (`(1234.5).toLocaleString()` is '1,234.5', not '1234.5'). Their output
 *   depends on the ICU default locale, as `Intl`'s does, and the CLI pins
 *   that (locale.cts). They hold no authority, and they stay frozen.
 */
// Before ses: it reads ArrayBuffer.prototype as Node made it, ahead of SES's immutable-ArrayBuffer shim.
import { restoreNativeArrayBuffer } from './native-array-buffer.js';
import 'ses';
import { hardenHostValue, installStackFormatter, installUncaughtHandler, neuterSharedErrorStatics } from './guest-errors.js';
import { SnapshotError } from '../replay-log/errors.js';
import { enableMoreOverrides, freezeElementPrototypes, refastenPrototypes } from './overrides.js';
import { repairInspection } from './inspection.js';
import { installRegExpMethods } from './regexp-methods.js';
import { markPhase } from './phases.cjs';

const already = Symbol.for('membrane-snapshot.lockdown');
const realm = globalThis as unknown as Record<symbol, boolean>;

if (!realm[already]) {
  markPhase('ses-evaluated');
  process.env.TZ = 'UTC';
  try {
    repairIntrinsics({
      errorTaming: 'unsafe-debug',
      errorTrapping: 'none',
      unhandledRejectionTrapping: 'report',
      overrideTaming: 'severe',
      consoleTaming: 'unsafe',
      stackFiltering: 'verbose',
      evalTaming: 'unsafe-eval',
      localeTaming: 'unsafe',
    });
    restoreNativeArrayBuffer();
    neuterSharedErrorStatics();
    installRegExpMethods();
    enableMoreOverrides();
    repairInspection();
    freezeElementPrototypes();
    refastenPrototypes();
    hardenIntrinsics();
  } catch (error) {
    // Someone locked the realm down before us: fine, as long as it is locked.
    if (!Object.isFrozen(Array.prototype)) throw error;
  }
  installStackFormatter();
  installUncaughtHandler();
  // The library's error class, which services catch (REACH_DENIED...), extends V8's own Error: onto the shared
  // one, then hardened, or error.constructor's parent held the process's stack settings (found by the
  // adversarial review: its prepareStackTrace, set from a service, formatted every stack in the process).
  hardenHostValue(SnapshotError);
  realm[already] = true;
  markPhase('lockdown');
}

/**
 * Whether local-time text is the same on every host: the ICU default
 * locale is the pinned one (locale.cts; the CLI re-executes itself under
 * LC_ALL=C.UTF-8 when it is not).
 */
export { localeIsFixed } from './locale.cjs';
