#!/usr/bin/env node
/**
 * The `snapshot` command line (cli-main.ts has the commands and their help).
 * Every failure prints `snapshot: CODE: message` and exits non-zero (1 for a
 * failed operation, 2 for a usage error).
 *
 * A plain `snapshot restore <dir>` whose options are all in order (no
 * --help, no NATS, the locale already pinned) goes straight to the restore
 * bundle (restore-bundle.cts), which carries the command itself
 * (cli-restore.ts). This entry, the option checks (cli-start.cts) and the
 * bundle's loader are CommonJS so that such a restore never starts Node's
 * ESM loader (about 4 ms of every restore). Anything else,
 * and a restore without a usable bundle, imports the full CLI (ES modules),
 * which checks the command line again and reports what is wrong with it.
 */
import { markPhase } from '../compartments/phases.cjs';
import { isNatsRestore, parseCommandLine, needsPinnedLocale, restoreInputs, watchParent } from './cli-start.cjs';

// Node's own start ends where this module begins (MEMBRANE_SNAPSHOT_PHASES=1 prints when).
markPhase('node');

// A write past the file-size limit (ulimit -f) must fail with EFBIG, which a build reports and
// recovers from: by default SIGXFSZ kills the process first (unless its parent ignored the signal).
process.on('SIGXFSZ', () => {});

const argv = process.argv.slice(2);
const entry = __filename;

/** Restore from the bundle; false when the full CLI must take the command line (nothing was done then). */
const restoreFromBundle = async (): Promise<boolean> => {
  if (argv[0] !== 'restore') return false;
  watchParent();
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine(argv.slice(1));
  } catch {
    return false; // a usage error
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length !== 1 || isNatsRestore(positionals[0], values) || needsPinnedLocale('restore')) return false;
  const inputs = restoreInputs(positionals[0], values);
  if ('usage' in inputs) return false;
  const bundle = (require('./restore-bundle.cjs') as typeof import('./restore-bundle.cjs')).loadRestoreBundle();
  if (!bundle) return false;
  const { runRestore, fail } = bundle.library;
  await runRestore(inputs, bundle.saveCache).catch(fail);
  return true;
};

restoreFromBundle()
  .then(async handled => {
    if (!handled) await (await import('./cli-main.js')).main(argv, entry);
  })
  .catch(async (error: unknown) => (await import('./cli-report.js')).fail(error));
