/**
 * The `snapshot restore` command, once its options are checked
 * (cli-start.cts): replay, then report (--replay-only), call (--call) or
 * serve until SIGINT or SIGTERM. Loaded after lockdown, through
 * restore-entry.ts: from the restore bundle, or as modules when there is
 * none (and for NATS, which the bundle does not carry).
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { markPhase } from '../compartments/phases.cjs';
import { SnapshotError, isSnapshotError } from '../replay-log/errors.js';
import { restoreSnapshot, callService } from './restore.js';
import { otherNodeLine, readManifest, type Manifest } from './manifest.js';
import { checkPorts, goLive, openSource } from './live.js';
import { startProgressView } from './progress-view.js';
import { block, describeThrown, fail, resultJson, settleToJSON } from './cli-report.js';
import { settledBeforeExit } from './before-exit.js';
import type { RestoreInputs } from './cli-start.cjs';

/**
 * Refuse, before any replay, a --call or --port naming a service the
 * snapshot (or the --service selection) does not restore, or --port for a
 * service that declared no HTTP (USAGE). Whether the called method exists is
 * known only once the service has run.
 */
const checkNamedServices = (manifest: Manifest, selected: readonly string[] | undefined, call: string | undefined, ports: Readonly<Record<string, number>>): void => {
  const restored = selected ?? Object.keys(manifest.services);
  if (call !== undefined) {
    const dot = call.indexOf('.');
    if (dot <= 0) throw new SnapshotError('USAGE', `--call takes service.method, got "${call}" (services: ${restored.join(', ') || 'none'}; --call ${restored[0] ?? 'service'}.${call.replace(/^\.+/, '') || 'method'})`);
    const name = call.slice(0, dot);
    if (!restored.includes(name) || !Object.hasOwn(manifest.services, name)) {
      throw new SnapshotError('USAGE', `--call ${call}: no service "${name}" is restored here (restored: ${restored.join(', ') || 'none'})`);
    }
  }
  checkPorts(manifest, restored, ports);
};

/**
 * A hint for a live call that failed to find a file (ENOENT, ENOTDIR) at a
 * path under the directory the called service was built in (its manifest's
 * `entryRoot`), which this host does not have: such a path was made from
 * `import.meta.url` or `__dirname`, which still name the build host's
 * directory. An empty string otherwise. Reads only the thrown value's
 * `code` and `path`, as Node's fs errors carry them.
 */
const buildHostPathHint = (manifest: Manifest | undefined, call: string, error: unknown): string => {
  const service = manifest?.services[call.slice(0, call.indexOf('.'))];
  if (!service?.entryRoot?.startsWith('file:') || typeof error !== 'object' || error === null) return '';
  const { code, path: missing } = error as { code?: unknown; path?: unknown };
  if ((code !== 'ENOENT' && code !== 'ENOTDIR') || typeof missing !== 'string') return '';
  let root: string;
  try {
    root = fileURLToPath(service.entryRoot);
  } catch {
    return '';
  }
  if (!missing.startsWith(root) || fs.existsSync(root)) return '';
  return `hint: ${missing} is under ${root}, where service "${service.name}" was built; this host has no such directory. A live service reads this host's files at the paths it names, and a path made from import.meta.url or __dirname names the build host's: ship the file to that path, or give the service its location (an environment variable).\n`;
};

/**
 * Write `text` to stdout, then exit with `code` once it is written: process.exit does not wait for a pipe
 * to take what was written, so a result of --call over 64 KiB was cut off, with exit code 0.
 */
const writeThenExit = (text: string, code: number): void => {
  process.stdout.write(text, () => process.exit(code));
};

/**
 * `answer`, or NOT_QUIESCENT when the process runs out of work first: the call (or a toJSON it answers)
 * returned a promise nothing is left to settle. Node would exit with code 13 (an unsettled top-level await);
 * the CLI printed nothing and exited 0 (found by the adversarial review).
 */
const untilSettled = <T>(call: string, answer: Promise<T>): Promise<T> =>
  settledBeforeExit(
    answer,
    () =>
      new SnapshotError(
        'NOT_QUIESCENT',
        `--call ${call}: its result never settled: the call (or a toJSON() of its result) answered with a promise that nothing is left to settle (no timer, request or call is pending). Call a function whose promise settles.`,
        { details: { call } },
      ),
  );

/**
 * The JSON --call prints for `result`, or NOT_PASSABLE when JSON cannot write it: a result that holds
 * itself (JSON.stringify's TypeError said only "Converting circular structure to JSON", as an unexpected
 * error of the CLI's).
 */
const printable = (call: string, result: unknown): string => {
  try {
    return resultJson(result);
  } catch (error) {
    if (!(error instanceof TypeError) || !/circular/i.test(error.message)) throw error;
    // V8's path round the cycle, one step a line ("    |     property 'children' -> object ..."), on one line.
    const where = error.message.split('\n').slice(1).map(line => line.replace(/^[\s|>-]+/, '').trim()).filter(Boolean).join(', ');
    throw new SnapshotError(
      'NOT_PASSABLE',
      `the result of ${call} cannot be printed as JSON: it is cyclic (an object in it holds itself${where ? `: ${where}` : ''}). ` +
        'The value itself is fine (the service returns it whole, as at build time; code that calls it through restoreSnapshot and callService gets it); ' +
        'only --call must print it as JSON. To print it, call a function that returns something JSON can write (the fields you need, without the back-references).',
      { cause: error },
    );
  }
};

/** Say on stderr, unless `quiet`, that `manifest` was built on another Node line (otherNodeLine). */
const noteOtherLine = (manifest: Manifest, quiet: unknown): void => {
  const note = otherNodeLine(manifest);
  if (note && !quiet) process.stderr.write(`snapshot: ${note}\n`);
};

/**
 * Run `snapshot restore` with checked inputs. `saveCache` is called once
 * the restore has run (the restore bundle writes its code cache then).
 * Resolves when the command is done or serving; exits the process itself
 * after --replay-only and --call. Throws what restore throws (SnapshotError
 * codes: SNAPSHOT_INVALID, INTEGRITY_MISMATCH, REPLAY_DIVERGED, ...).
 */
export const runRestore = async (inputs: RestoreInputs, saveCache: () => void = () => {}): Promise<void> => {
  const { target, values, args, callTimeoutMs, ports } = inputs;
  const selected = values.service;
  if (values['replay-only']) {
    try {
      // A nats://host:port/app source is pulled (and checked) into a temporary directory first.
      const source = await openSource(target, { services: selected, trust: values.trust });
      const sourceManifest = readManifest(source.dir);
      noteOtherLine(sourceManifest, values.quiet || values.json);
      const total = selected?.length ?? Object.keys(sourceManifest.services).length;
      const view = startProgressView({ quiet: values.quiet, activity: 'replaying', total });
      const restored = await restoreSnapshot({ dir: source.dir, services: selected, trust: values.trust, sealKeyFile: values['seal-key'] }).finally(() => {
        view.stop();
        source.done();
      });
      const events = [...restored.services.values()].reduce((n, s) => n + s.events, 0);
      if (values.json) process.stdout.write(`${JSON.stringify({ ok: true, events, ms: restored.ms })}\n`);
      else process.stdout.write(`ok: replayed ${events} events in ${restored.ms.toFixed(1)} ms\n`);
      saveCache();
      process.exit(0);
    } catch (error) {
      if (values.json && isSnapshotError(error)) {
        process.stdout.write(`${JSON.stringify({ ok: false, error: { code: error.code, message: error.message } })}\n`);
        process.exit(1);
      }
      throw error;
    }
  }
  const local = !/^(nats|tls):\/\//.test(target);
  const manifest = local ? readManifest(target) : undefined;
  // What names services is checked against the manifest before anything is replayed.
  if (manifest) checkNamedServices(manifest, selected, values.call, ports);
  if (manifest) noteOtherLine(manifest, values.quiet);
  const view = startProgressView({
    quiet: values.quiet,
    activity: 'replaying',
    total: selected?.length ?? (manifest ? Object.keys(manifest.services).length : undefined),
  });
  const live = await goLive({
    source: target,
    services: selected,
    nats: values.nats,
    app: values.app,
    callTimeoutMs,
    http: values.call === undefined,
    ports,
    httpHost: values['http-host'],
    trust: values.trust,
    sealKeyFile: values['seal-key'],
  }).finally(() => view.stop());
  const restored = live.restored;
  if (values.call !== undefined) {
    let result: unknown;
    try {
      // Its toJSON methods answered while the services are live (JSON.stringify would get promises of them).
      result = await untilSettled(values.call, callService(restored, values.call, args).then(settleToJSON));
      markPhase('called');
    } catch (error) {
      await live.stop();
      if (isSnapshotError(error)) throw error;
      process.stderr.write(`snapshot: ${values.call}(...) threw ${block(describeThrown(error))}\n${buildHostPathHint(manifest, values.call, error)}`);
      process.exit(1);
    }
    await live.stop();
    const text = printable(values.call, result);
    saveCache();
    markPhase('exit');
    writeThenExit(`${text}\n`, 0);
    return;
  }
  const keepAlive = setInterval(() => {}, 1 << 30);
  const { shutdownMs } = inputs;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      // A second signal: the operator does not want to wait.
      process.stderr.write(`snapshot: ${signal} again: exiting now, requests and calls still in flight are cut off\n`);
      process.exit(1);
    }
    stopping = true;
    process.stdout.write(`${signal}: stopping (finishing requests and calls in flight, for at most ${shutdownMs} ms)\n`);
    clearInterval(keepAlive);
    // A handler that never settles, or a client that never reads its streamed response, must not keep the host up.
    setTimeout(() => {
      process.stderr.write(`snapshot: requests or calls were still in flight ${shutdownMs} ms after ${signal}: exiting anyway (raise --shutdown-timeout to wait longer)\n`);
      process.exit(1);
    }, shutdownMs);
    live.stop().then(
      () => process.exit(0),
      error => fail(error),
    );
  };
  // Before "ready:": an orchestrator may stop the host as soon as it reads that line (it was killed by the
  // signal, not stopped, when one came within the few ms after it; found by the new-user review).
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  const names = [...restored.services.keys()];
  for (const server of live.http) process.stdout.write(`http: ${server.service} listening on ${server.url}\n`);
  const over = values.nats !== undefined || live.app !== undefined ? `, joined app ${live.app} over NATS` : '';
  process.stdout.write(`ready: ${names.length} service${names.length === 1 ? '' : 's'} (${names.join(', ')}) restored in ${restored.ms.toFixed(1)} ms, live${over}\n`);
  markPhase('live');
  saveCache();
};
