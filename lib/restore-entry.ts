/**
 * What `snapshot restore` loads, and nothing else: the lockdown bootstrap
 * first, then restore, the manifest reader, the live host and the restore
 * command itself (cli-restore.ts, with the CLI's failure report). The build
 * path (archiving, Babel, the build session, verify, inspect) stays out of
 * a restore's process. `npm run build` also bundles this module into one
 * file (restore-entry.bundle.js, see tools/bundle-restore.mjs), which the
 * CLI prefers when it is at least as new as this module.
 */
import '../compartments/lockdown.js';

export { restoreSnapshot, callService } from './restore.js';
export { readManifest } from './manifest.js';
export { goLive } from './live.js';
export { runRestore } from './cli-restore.js';
export { fail } from './cli-report.js';
