/**
 * Where a CLI process's time goes. With `MEMBRANE_SNAPSHOT_PHASES=1` in its
 * environment, each phase the CLI and a restore finish is written to stderr
 * as it ends, one line each:
 *
 *     membrane-snapshot phase <name> <ms> +<ms>
 *
 * the time since the process started (`process.uptime()`, so Node's own
 * start is in the first figure), then the time since the phase before.
 * `npm run bench -- d` prints the median of each over several restores.
 * Off by default: a mark is then one boolean test.
 *
 * CommonJS, as the CLI's entry is (cli.cts); the restore bundle holds its
 * own copy of this module, so the time of the last mark is kept on the
 * host's global object. Written with fs.writeSync(2): the first use of
 * process.stderr loads Node's stream and tty modules, which would be timed
 * as part of a phase.
 */
import fs from 'node:fs';

const enabled = process.env.MEMBRANE_SNAPSHOT_PHASES === '1';
const LAST = Symbol.for('membrane-snapshot.phases.last');
const host = globalThis as unknown as Record<symbol, number | undefined>;

/** Record that phase `name` (one word, kebab-case) ended now. */
export const markPhase = (name: string): void => {
  if (!enabled) return;
  const now = process.uptime() * 1000;
  const since = now - (host[LAST] ?? 0);
  host[LAST] = now;
  try {
    fs.writeSync(2, `membrane-snapshot phase ${name} ${now.toFixed(2)} +${since.toFixed(2)}\n`);
  } catch {
    // stderr closed: nothing to report to
  }
};
