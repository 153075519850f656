/**
 * What every `snapshot` start needs before it knows which code to load: the
 * command line's options, the checks of `restore`'s own options, and the
 * process arrangements (the pinned locale, the watch on the parent). No
 * SES, no library module. CommonJS, as the CLI's entry (cli.cts) is: the
 * restore fast path runs this, then the restore bundle, without Node's ESM
 * loader.
 */
import { parseArgs } from 'node:util';
import { localeIsFixed } from '../compartments/locale.cjs';

const options = {
  help: { type: 'boolean', short: 'h' },
  out: { type: 'string', short: 'o' },
  timeout: { type: 'string' },
  service: { type: 'string', multiple: true },
  call: { type: 'string' },
  args: { type: 'string' },
  'replay-only': { type: 'boolean' },
  json: { type: 'boolean' },
  nats: { type: 'string' },
  app: { type: 'string' },
  'call-timeout': { type: 'string' },
  'shutdown-timeout': { type: 'string' },
  port: { type: 'string', multiple: true },
  'http-host': { type: 'string' },
  sign: { type: 'string' },
  trust: { type: 'string', multiple: true },
  'seal-key': { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  sources: { type: 'string' },
  html: { type: 'string' },
  mark: { type: 'string' },
} as const;

export type CommandLine = ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: true; options: typeof options }>>;
export type OptionValues = CommandLine['values'];

/** The options and positionals after a command. Throws parseArgs' TypeError (a usage error) on an unknown or malformed option. */
export const parseCommandLine = (rest: string[]): CommandLine => parseArgs({ args: rest, allowPositionals: true, options });

/** A restore from a NATS server (nats:// or tls:// source) or one that joins NATS: never from the bundle. */
export const isNatsRestore = (target: string, values: OptionValues): boolean => values.nats !== undefined || /^(nats|tls):\/\//.test(target);

/** `restore`'s own options, checked. */
export interface RestoreInputs {
  readonly target: string;
  readonly values: OptionValues;
  /** --args, parsed (default []). */
  readonly args: unknown[];
  /** --call-timeout, ms. */
  readonly callTimeoutMs: number | undefined;
  /** --port service=port, repeatable. */
  readonly ports: Record<string, number>;
  /** --shutdown-timeout, ms (default 30000): how long SIGTERM waits for what is in flight. */
  readonly shutdownMs: number;
}

/** Check `restore`'s options: the inputs, or the message of the usage error to report. */
export const restoreInputs = (target: string, values: OptionValues): RestoreInputs | { usage: string } => {
  let args: unknown[] = [];
  // Without --call nothing would take them: the services would go live and the arguments be dropped unsaid.
  if (values.args !== undefined && values.call === undefined) return { usage: '--args gives the arguments of --call: add --call service.method' };
  // Likewise --replay-only stops before anything goes live (a --call was never made, and said nothing), and --json
  // is --replay-only's report.
  if (values['replay-only'] && values.call !== undefined) return { usage: '--call needs the services live, and --replay-only stops before: use one or the other' };
  if (values.json && !values['replay-only']) return { usage: '--json formats the report of --replay-only: add --replay-only, or leave --json out (--call prints JSON)' };
  if (values.args !== undefined) {
    try {
      args = JSON.parse(values.args) as unknown[];
    } catch (error) {
      return { usage: `--args takes a JSON array, and ${JSON.stringify(values.args)} is not JSON (${(error as Error).message})` };
    }
    if (!Array.isArray(args)) return { usage: `--args takes a JSON array of the call's arguments, got ${JSON.stringify(values.args)}: write '[${values.args}]'` };
  }
  // --replay-only never goes live: what only going live reads is not looked at.
  if (values['replay-only']) return { target, values, args, callTimeoutMs: undefined, ports: {}, shutdownMs: 30_000 };
  const callTimeoutMs = values['call-timeout'] === undefined ? undefined : Number(values['call-timeout']);
  if (callTimeoutMs !== undefined && !(callTimeoutMs > 0)) return { usage: '--call-timeout takes a positive number of milliseconds' };
  const shutdownMs = values['shutdown-timeout'] === undefined ? 30_000 : Number(values['shutdown-timeout']);
  // A timer takes at most 2^31-1 ms (a longer one fires after 1 ms).
  if (!(shutdownMs > 0 && shutdownMs <= 2 ** 31 - 1)) return { usage: '--shutdown-timeout takes a number of milliseconds from 1 to 2147483647' };
  // No prototype: --port __proto__=8080 is an entry (refused later as no such service), not the object's prototype.
  const ports: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const spec of values.port ?? []) {
    const match = /^([^=]+)=(\d+)$/.exec(spec);
    if (!match || Number(match[2]) > 65535) return { usage: `--port takes service=port (0 to 65535), got "${spec}"` };
    ports[match[1]] = Number(match[2]);
  }
  return { target, values, args, callTimeoutMs, ports, shutdownMs };
};

const PINNED = 'MEMBRANE_SNAPSHOT_PINNED';
const WATCH_FD = 'MEMBRANE_SNAPSHOT_PARENT_FD';

/**
 * Whether `command` must first run again in the pinned locale: the commands
 * that run services do (inspect only reads files), unless the ICU default
 * locale is already en-US or this is the re-executed child.
 */
export const needsPinnedLocale = (command: string): boolean => command !== 'inspect' && process.env[PINNED] !== '1' && !localeIsFixed();

/**
 * Run the CLI (`entry`, the file Node started) again in a child under
 * LC_ALL=C.UTF-8 and TZ=UTC (a service sees the locale through Intl and
 * Date#toString, and the ICU default locale cannot change once a process
 * runs: compartments/locale.cts), and mirror its exit. Only when the locale
 * is not already en-US, and only for the commands that run services:
 * --help, --version, usage errors and inspect never start a second process.
 *
 * The child holds the read end of a pipe (fd 3) whose write end only this
 * process holds: when this process dies, even by SIGKILL, the child sees
 * the pipe close and stops (watchParent), so no orphan goes on building or
 * serving.
 */
export const reexecPinned = (entry: string, stop?: ChildStop): void => {
  const { spawn } = require('node:child_process') as typeof import('node:child_process');
  const child = spawn(process.execPath, [...process.execArgv, entry, ...process.argv.slice(2)], {
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    env: { ...process.env, LC_ALL: 'C.UTF-8', TZ: 'UTC', [PINNED]: '1', [WATCH_FD]: '3' },
  });
  let deadline: NodeJS.Timeout | undefined;
  let killedAfter: 'SIGINT' | 'SIGTERM' | undefined;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      child.kill(signal);
      if (stop && deadline === undefined) {
        deadline = setTimeout(() => {
          killedAfter = signal;
          child.kill('SIGKILL');
        }, stop.graceMs);
      }
    });
  }
  child.on('exit', (code, signal) => {
    if (deadline !== undefined) clearTimeout(deadline);
    if (stop && killedAfter !== undefined) {
      stop.killed(killedAfter);
      process.exit(killedAfter === 'SIGINT' ? 130 : 143);
    }
    process.exit(code ?? (signal ? 1 : 0));
  });
};

/**
 * What the parent does when its child does not stop after SIGINT or
 * SIGTERM: JavaScript that never returns to the event loop (a service's
 * endless loop) runs no signal handler, so the child is killed (SIGKILL)
 * after `graceMs`, and `killed` tidies up after it and says so.
 */
export interface ChildStop {
  /** How long the child has to stop by itself, in ms. */
  readonly graceMs: number;
  /** Called once the child was killed, with the signal the parent got; the parent then exits 130 (SIGINT) or 143. */
  readonly killed: (signal: 'SIGINT' | 'SIGTERM') => void;
}

/**
 * Whether `command` runs in a child of this process whatever the locale:
 * a build, which runs services that may never return to the event loop,
 * where no signal handler of the build's own runs (reexecPinned's `stop`
 * stops it). Never in the child itself.
 */
export const needsWatchedChild = (command: string): boolean => command === 'build' && process.env[PINNED] !== '1';

/** How long a child whose parent died has to stop by itself before its watcher kills it, in ms. */
const ORPHAN_STOP_MS = 3000;

/**
 * The watcher of a re-executed child, in a thread of its own: the main
 * thread may be running a service that never returns to the event loop
 * (found by the adversarial review: a build's child, its parent killed,
 * spun on for ever). When the parent's end of the pipe closes it tells the
 * main thread, which stops as it does for a signal, and kills the process
 * ORPHAN_STOP_MS later if it is still there.
 */
const watcherSource = `
const { workerData, parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const net = require('node:net');
let pipe;
try {
  pipe = new net.Socket({ fd: workerData.fd, readable: true, writable: false });
} catch {
  return;
}
let orphaned = false;
const gone = () => {
  if (orphaned) return;
  orphaned = true;
  parentPort.postMessage('orphaned');
  setTimeout(() => {
    try {
      fs.writeSync(2, 'snapshot: the parent process ended, and this one did not stop (a service still running?): killed\\n');
    } catch {}
    process.kill(process.pid, 'SIGKILL');
  }, workerData.graceMs);
};
pipe.on('end', gone);
pipe.on('error', gone);
pipe.resume();
`;

/** In a re-executed child: stop when the parent's end of the watch pipe closes (watcherSource). */
export const watchParent = (): void => {
  if (process.env[WATCH_FD] === undefined) return;
  const fd = Number(process.env[WATCH_FD]);
  delete process.env[WATCH_FD]; // not for services, build scripts or verify's children
  if (!Number.isInteger(fd) || fd < 3) return;
  const { Worker } = require('node:worker_threads') as typeof import('node:worker_threads');
  const watcher = new Worker(`(() => {${watcherSource}})()`, { eval: true, workerData: { fd, graceMs: ORPHAN_STOP_MS }, stdout: false, stderr: false });
  watcher.on('message', () => {
    process.stderr.write('snapshot: the parent process ended; stopping\n');
    process.exit(1);
  });
  watcher.on('error', () => {});
  watcher.unref(); // watching must not keep the process alive
};