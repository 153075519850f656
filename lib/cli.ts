#!/usr/bin/env node
/**
 * The `snapshot` command line: build, restore, inspect, verify.
 * Every failure prints `snapshot: CODE: message` and exits non-zero
 * (1 for a failed operation, 2 for a usage error).
 */
// Only what every start needs is imported here: --help, --version and usage
// errors run without SES, compartment-mapper or msgpackr (nor node:child_process
// and node:net, which only a re-executed start needs). A command loads
// its own modules (and locks the realm down first) when it runs.
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { localeIsFixed } from '../compartments/locale.js';
import { SnapshotError, isSnapshotError } from '../replay-log/errors.js';
import { libraryVersion } from './version.js';
import { withNats } from './nats-modules.js';
import { formatBytes, startProgressView } from './progress-view.js';

/**
 * Lock the realm down, then load the library. `lockdown()` must run before
 * any module that hardens or captures intrinsics is evaluated, and dynamic
 * imports evaluate in order, so this is the only way the CLI loads it.
 */
const library = async () => {
  await import('../compartments/lockdown.js');
  return import('./index.js');
};

const help: Record<string, string> = {
  main: `snapshot ${libraryVersion}: record Node services at build time, replay them on another host.

Usage:
  snapshot build <script> [--out dir] [--timeout ms] [--sign key.pem] [--seal-key file] [--json] [--quiet]
  snapshot restore <dir | nats://host:port/app> [--service name...] [--nats url] [--call service.method [--args json-array]] [--trust pub.pem] [--seal-key file] [--quiet]
  snapshot inspect <log-file | snapshot-dir> [--json | --html out.html [--mark event]]
  snapshot verify <dir | nats://host:port/app> [--sources dir] [--trust pub.pem] [--seal-key file] [--json] [--quiet]
  snapshot plan <dir> [--out dir] [--app name]
  snapshot push <dir> --nats url [--app name]

Progress goes to stderr, one line per service and step (a live status line
on a terminal); --quiet prints none of it. Run \`snapshot <command> --help\`
for the options of each command.`,
  build: `snapshot build <script> [--out dir] [--timeout ms] [--sign key.pem] [--seal-key file] [--json] [--quiet]

Runs the build script (.js, .mjs, .ts, .mts). Every importService() it makes
is recorded. When the script has finished and every service is quiescent,
writes <dir>/manifest.json and, per service, <dir>/<name>/archive.zip and
<dir>/<name>/replay.log.

  --out dir       the snapshot directory (default: snapshot); replaced if it
                  holds an older snapshot, refused if it holds anything else
  --timeout ms    how long to wait for services to finish pending work
                  after the script ends (default: 30000)
  --sign key.pem  sign the manifest with this ed25519 private key (PEM, as
                  \`openssl genpkey -algorithm ed25519\` writes it): writes
                  <dir>/manifest.sig
  --seal-key file the seal key (32 random bytes in base64, as
                  \`openssl rand -base64 32\` prints): secrets the services
                  read are sealed in the logs with it (AES-256-GCM). Default:
                  the SNAPSHOT_SEAL_KEY environment variable. A build that
                  meets a secret without a key fails (SEAL_KEY_MISSING).
  --json          print a summary as one JSON line on stdout (after the
                  build script's own output)
  --quiet         no progress and no summary on stderr

Stdout is the build script's own; progress (a line per service as it is
archived and recorded) and the summary go to stderr.`,
  restore: `snapshot restore <dir | nats://host:port/app> [--service name...] [--nats url] [--call service.method [--args json-array]] [--trust pub.pem] [--seal-key file] [--quiet]

Rebuilds each service from its archive by replaying its log (no network, no
sources, no node_modules needed), then lets it go live on this host.

  --service name  restore only this service (repeatable)
  --call s.m      once live, call method m of service s, print the result as
                  JSON on stdout and exit
  --args json     the arguments of --call, as a JSON array (default: [])
  --replay-only   replay, report, and exit before going live
  --json          with --replay-only: print the report as JSON
  --trust file    trusted ed25519 public keys (PEM, one or more per file;
                  repeatable): refuse a snapshot that is not signed by one
                  of them, before any service code runs
  --seal-key file the seal key the snapshot was built with (default: the
                  SNAPSHOT_SEAL_KEY environment variable); needed when its
                  logs hold sealed secrets

  --nats url      join the app's other hosts over NATS: services restored
                  here answer calls from them (replicas share a queue group),
                  and references to services not restored here travel as
                  NATS requests
  --app name      the app's subject namespace (default: the manifest's app,
                  from the build project's package name)
  --call-timeout ms  limit on one call to another host (default: 30000)
  --shutdown-timeout ms  after SIGINT/SIGTERM, how long requests and calls in
                     flight may take before the host exits anyway, with code 1
                     (default: 30000); a second signal exits at once
  --port s=port   serve service s's HTTP handler on this port instead of the
                  declared one (0: a free port); repeatable
  --http-host h   address HTTP services bind (default: 127.0.0.1)
  --quiet         no progress lines (one per service replayed) on stderr

A nats://host:port/app source fetches the snapshot pushed by \`snapshot push\`
(only the files of the services asked for) and implies --nats.

Without --call the services stay up until SIGINT or SIGTERM, serving the
HTTP handlers they declared; one line per HTTP service gives its URL, one
line reports the restore time. On SIGTERM the host stops taking requests
and calls, finishes those in flight, and exits 0; what is still in flight
after --shutdown-timeout (30 s) is cut off, and the host exits 1.`,
  plan: `snapshot plan <dir> [--out dir] [--app name]

Turns the runtime declarations of the snapshot's services
(runtime.declare({ http: { port }, replicas })) into deploy files:
<out>/compose.yaml (a NATS server with JetStream, one container per service
replica restoring from the object store, declared ports published) and
<out>/plan.txt (the same in words, with the commands to run it). Prints the
summary. Default --out: <dir>/deploy.`,
  push: `snapshot push <dir> --nats url [--app name]

Stores the snapshot's manifest, archives and logs in the JetStream object
store msnap-<app> on the server (content-addressed: files already there are
not sent again; hashes are checked first). Target hosts then restore with
\`snapshot restore nats://host:port/<app> --service name\`.`,
  inspect: `snapshot inspect <log-file | snapshot-dir> [--json | --html out.html [--mark event]]

For a replay log: a readable timeline, one line per entry with its offset
and size, and totals by kind. For a snapshot directory: its services, their
archive and log sizes and hashes, each file checked as restore checks it
(ok, MISSING, DAMAGED or REFUSED); exits 1 with SNAPSHOT_INVALID or
INTEGRITY_MISMATCH if one is not ok.

  --json          one JSON document: for a log its header, entries (index,
                  offset, size, kind, text) and totals; for a directory its
                  manifest, ok, and files (service, kind, path, status,
                  error)
  --html file     for a log: write a self-contained HTML page with its
                  timeline (turns, syscalls by kind, sizes, timers, calls to
                  other services) to file
  --mark event    with --html: mark this event index in red (the event a
                  REPLAY_DIVERGED error names)`,
  verify: `snapshot verify <dir | nats://host:port/app> [--sources dir] [--trust pub.pem] [--seal-key file] [--json] [--quiet]

Checks every file the manifest names, then replays every service of the
snapshot, each in a fresh process, and reports ok or the first divergence
or damage found, one line per service as it is verified. Exits 1 if any
service fails, or if the manifest lists none (nothing to verify). A
nats://host:port/app source is the snapshot \`snapshot push\` stored,
fetched and checked as restore does.

  --sources dir   replay each recorded log through the code as it is now:
                  rebuild each service's archive from the package in dir
                  (its entry module at the same path as at build time) and
                  report compatible (ok) or the first divergence
  --json          print { ok, services: [{ service, ok, events, ms, error }] }
                  as one JSON document instead of the lines
  --quiet         no live status line
  --trust file    check the signature first, as restore --trust does
  --seal-key file the seal key, as for restore`,
};

/**
 * Text that may carry a service's words (its error messages, names quoted in
 * ours), as one block: continuation lines indented, carriage returns and
 * escape sequences made visible, so that no line of it can pass for a line
 * of ours (`snapshot: CODE: ...`) or rewrite the terminal.
 */
const block = (text: string): string => text.replace(/\r/g, '\\r').replace(/\x1b/g, '\\x1b').split('\n').join('\n  ');

const fail = (error: unknown): never => {
  if (isSnapshotError(error)) {
    process.stderr.write(`snapshot: ${error.code}: ${block(error.message)}\n`);
    process.exit(error.code === 'USAGE' ? 2 : 1);
  }
  process.stderr.write(`snapshot: unexpected error: ${block(error instanceof Error ? (error.stack ?? error.message) : String(error))}\n`);
  process.exit(1);
};

const usage = (message: string): never => fail(new SnapshotError('USAGE', `${message}\n\n${help.main}`));

/** An error a service threw: its message and the service's own frames, not ours. */
const describeThrown = (error: unknown): string => {
  if (!(error instanceof Error)) return String(error);
  const frames = (error.stack ?? '')
    .split('\n')
    .slice(1)
    .filter(line => /^\s+at /.test(line) && !/\/dist\/(membrane|compartments|lib|replay-log)\/|node:internal/.test(line));
  return [`${error.name}: ${error.message}`, ...frames].join('\n');
};

const jsonReplacer = (_key: string, value: unknown): unknown => (typeof value === 'bigint' ? value.toString() : value);

const main = async (argv: string[]): Promise<void> => {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${help.main}\n`);
    return;
  }
  if (command === '--version') {
    process.stdout.write(`${libraryVersion}\n`);
    return;
  }
  if (!(command in help) || command === 'main') usage(`unknown command "${command}"`);
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
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
      },
    });
  } catch (error) {
    return usage(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${help[command]}\n`);
    return;
  }
  const target = positionals[0];
  if (!target || positionals.length > 1) usage(`${command} takes exactly one path\n\n${help[command]}`);
  // Commands that run services run in the pinned locale (inspect only reads files).
  if (command !== 'inspect' && process.env[PINNED] !== '1' && !localeIsFixed()) return reexecPinned();

  switch (command) {
    case 'build': {
      const timeoutMs = values.timeout === undefined ? undefined : Number(values.timeout);
      if (timeoutMs !== undefined && !(timeoutMs > 0)) usage('--timeout takes a positive number of milliseconds');
      const { buildSnapshot } = await library();
      const { currentSession } = await import('./session.js');
      const view = startProgressView({
        quiet: values.quiet as boolean | undefined,
        activity: 'building',
        sample: () => {
          const services = [...(currentSession()?.services.values() ?? [])].map(s => s.progress());
          return { services: services.length, events: services.reduce((n, p) => n + p.events, 0), bytes: services.reduce((n, p) => n + p.bytes, 0) };
        },
      });
      let result: Awaited<ReturnType<typeof buildSnapshot>>;
      try {
        result = await buildSnapshot({ script: target, out: values.out as string | undefined, timeoutMs, sign: values.sign as string | undefined, sealKeyFile: values['seal-key'] as string | undefined, awaitScript: true });
      } finally {
        view.stop();
      }
      const services = Object.values(result.manifest.services);
      const sum = (f: (s: (typeof services)[number]) => number) => services.reduce((n, s) => n + f(s), 0);
      if (values.json) {
        const summary = {
          ok: true,
          dir: result.dir,
          ms: Math.round(result.ms),
          services: services.map(s => ({ name: s.name, events: s.events, logBytes: s.logBytes, archiveBytes: s.archiveBytes, ...(s.parent ? { parent: s.parent } : {}) })),
        };
        process.stdout.write(`${JSON.stringify(summary)}\n`);
      }
      if (!values.quiet) {
        process.stderr.write(
          `built ${result.dir} (${services.length} service${services.length === 1 ? '' : 's'}, ${sum(s => s.events)} events, ` +
            `logs ${formatBytes(sum(s => s.logBytes))}, archives ${formatBytes(sum(s => s.archiveBytes))}) in ${result.ms.toFixed(0)} ms\n`,
        );
      }
      return;
    }
    case 'restore': {
      let args: unknown[] = [];
      if (values.args !== undefined) {
        try {
          args = JSON.parse(values.args as string) as unknown[];
        } catch {
          usage('--args takes a JSON array');
        }
        if (!Array.isArray(args)) usage('--args takes a JSON array');
      }
      // Restore loads only what restore needs (restore-entry.ts), bundled when `npm run build` made
      // the bundle; a restore that joins NATS loads the modules (the bundle does not carry the client).
      const nats = values.nats !== undefined || /^(nats|tls):\/\//.test(target);
      const bundle = nats ? undefined : (await import('./restore-bundle.js')).loadRestoreBundle();
      const { restoreSnapshot, callService, readManifest: readManifestOf, goLive } = bundle?.library ?? (await import('./restore-entry.js'));
      const saveCache = () => bundle?.saveCache();
      const selected = values.service as string[] | undefined;
      const restoring = async () => {
        // A nats://host:port/app source is pulled (and checked) into a temporary directory first.
        const { openSource } = await import('./live.js');
        const source = await openSource(target, { services: selected, trust: values.trust as string[] | undefined });
        const total = selected?.length ?? Object.keys(readManifestOf(source.dir).services).length;
        const view = startProgressView({ quiet: values.quiet as boolean | undefined, activity: 'replaying', total });
        return restoreSnapshot({ dir: source.dir, services: selected, trust: values.trust as string[] | undefined, sealKeyFile: values['seal-key'] as string | undefined }).finally(() => {
          view.stop();
          source.done();
        });
      };
      if (values['replay-only']) {
        try {
          const restored = await restoring();
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
      const callTimeoutMs = values['call-timeout'] === undefined ? undefined : Number(values['call-timeout']);
      if (callTimeoutMs !== undefined && !(callTimeoutMs > 0)) usage('--call-timeout takes a positive number of milliseconds');
      const shutdownMs = values['shutdown-timeout'] === undefined ? 30_000 : Number(values['shutdown-timeout']);
      if (!(shutdownMs > 0)) usage('--shutdown-timeout takes a positive number of milliseconds');
      const ports: Record<string, number> = {};
      for (const spec of (values.port as string[] | undefined) ?? []) {
        const match = /^([^=]+)=(\d+)$/.exec(spec);
        if (!match || Number(match[2]) > 65535) usage(`--port takes service=port (0 to 65535), got "${spec}"`);
        else ports[match[1]] = Number(match[2]);
      }
      const local = !/^(nats|tls):\/\//.test(target);
      const view = startProgressView({
        quiet: values.quiet as boolean | undefined,
        activity: 'replaying',
        total: selected?.length ?? (local ? Object.keys(readManifestOf(target).services).length : undefined),
      });
      const live = await goLive({
        source: target,
        services: values.service as string[] | undefined,
        nats: values.nats as string | undefined,
        app: values.app as string | undefined,
        callTimeoutMs,
        http: values.call === undefined,
        ports,
        httpHost: values['http-host'] as string | undefined,
        trust: values.trust as string[] | undefined,
        sealKeyFile: values['seal-key'] as string | undefined,
      }).finally(() => view.stop());
      const restored = live.restored;
      if (values.call !== undefined) {
        let result: unknown;
        try {
          result = await callService(restored, values.call as string, args);
        } catch (error) {
          await live.stop();
          if (isSnapshotError(error)) throw error;
          process.stderr.write(`snapshot: ${values.call as string}(...) threw ${block(describeThrown(error))}\n`);
          process.exit(1);
        }
        await live.stop();
        process.stdout.write(`${JSON.stringify(result, jsonReplacer) ?? 'null'}\n`);
        saveCache();
        process.exit(0);
      }
      const names = [...restored.services.keys()];
      for (const server of live.http) process.stdout.write(`http: ${server.service} listening on ${server.url}\n`);
      const over = values.nats !== undefined || live.app !== undefined ? `, joined app ${live.app} over NATS` : '';
      process.stdout.write(`ready: ${names.length} service${names.length === 1 ? '' : 's'} (${names.join(', ')}) restored in ${restored.ms.toFixed(1)} ms, live${over}\n`);
      saveCache();
      const keepAlive = setInterval(() => {}, 1 << 30);
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
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
      return;
    }
    case 'inspect': {
      if (values.html !== undefined || values.json) await library(); // the streamed text dump needs no lockdown
      if (values.html !== undefined) {
        const mark = values.mark === undefined ? undefined : Number(values.mark);
        if (mark !== undefined && !(Number.isInteger(mark) && mark >= 0)) usage('--mark takes an event index (0, 1, ...)');
        const fs = await import('node:fs');
        if (!fs.statSync(target).isFile()) usage(`--html draws one replay log: give a log file (<dir>/<service>/replay.log), not ${target}`);
        const { logToHtml } = await import('./inspect-html.js');
        fs.writeFileSync(values.html as string, logToHtml(target, { mark }));
        if (!values.quiet) process.stderr.write(`wrote ${values.html as string}\n`);
      } else if (values.json) {
        const { inspectJson } = await import('./inspect-json.js');
        const inspected = inspectJson(target);
        process.stdout.write(`${JSON.stringify(inspected)}\n`);
        if (inspected.type === 'snapshot' && !inspected.ok) {
          const { filesError } = await import('./snapshot-files.js');
          throw filesError(inspected.files);
        }
      } else {
        // Streamed, each chunk written before the next is made: memory stays bounded.
        const { inspectTo, writeFully } = await import('./inspect.js');
        try {
          inspectTo(target, text => writeFully(text));
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'EPIPE') process.exit(0); // `snapshot inspect log | head`
          throw error;
        }
      }
      return;
    }
    case 'plan': {
      await library(); // lockdown first: plan's modules reach compartment-mapper
      const { makePlan, writePlan } = await import('./plan.js');
      const { readManifest } = await import('./manifest.js');
      const { checkAppName } = await import('./runtime.js');
      const manifest = readManifest(target);
      const app = checkAppName((values.app as string | undefined) ?? manifest.app ?? 'app');
      const plan = makePlan(manifest, app, libraryVersion);
      const written = writePlan(plan, (values.out as string | undefined) ?? path.join(target, 'deploy'));
      process.stdout.write(`${plan.summary}\nwrote ${written.compose} and ${written.summary}\n`);
      return;
    }
    case 'push': {
      if (values.nats === undefined) usage('push takes --nats <url>');
      await library();
      const { pushSnapshot } = await withNats(() => import('./push.js'));
      const { NatsTransport } = await withNats(() => import('./transport-nats.js'));
      const { readManifest } = await import('./manifest.js');
      const { checkAppName } = await import('./runtime.js');
      const manifest = readManifest(target);
      const app = checkAppName((values.app as string | undefined) ?? manifest.app ?? 'app');
      const transport = await NatsTransport.connect({ servers: values.nats as string, app, name: 'snapshot push' });
      try {
        const pushed = await pushSnapshot(transport.connection, target, app);
        process.stdout.write(`pushed ${target} as app ${app}: ${pushed.stored} objects stored (${pushed.bytes} bytes), ${pushed.present} already present\n`);
      } finally {
        await transport.close();
      }
      return;
    }
    case 'verify': {
      const { verifySnapshot } = await library();
      const { readManifest } = await import('./manifest.js');
      const { openSource } = await import('./live.js');
      const source = await openSource(target, { trust: values.trust as string[] | undefined });
      process.once('exit', () => source.done());
      const dir = source.dir;
      const total = Object.keys(readManifest(dir).services).length;
      const view = startProgressView({ quiet: (values.quiet as boolean | undefined) || (values.json as boolean | undefined), activity: 'verifying', total });
      const { onProgress } = await import('./progress.js');
      const stopLines = values.json
        ? () => {}
        : onProgress(e => {
            if (e.phase !== 'verified') return;
            view.line(e.ok ? `ok    ${e.service}: ${e.events} events replayed (${(e.ms ?? 0).toFixed(0)} ms, ${values.sources === undefined ? "fresh process" : "through the current sources"})` : `FAIL  ${e.service}: ${e.error?.code}: ${e.error?.message}`);
          });
      let reports: Awaited<ReturnType<typeof verifySnapshot>>;
      try {
        if (values.sources !== undefined) {
          const { verifySources } = await import('./verify-sources.js');
          reports = await verifySources(dir, values.sources as string);
        } else reports = await verifySnapshot(dir, { trust: values.trust as string[] | undefined, sealKeyFile: values['seal-key'] as string | undefined });
      } finally {
        stopLines();
        view.stop();
      }
      const bad = reports.filter(r => !r.ok).length;
      if (values.json) process.stdout.write(`${JSON.stringify({ ok: bad === 0, services: reports.map(r => ({ ...r, ms: Math.round(r.ms) })) })}\n`);
      // With --sources the replayed services went live in this process: stop them.
      if (bad || values.sources !== undefined) process.exit(bad ? 1 : 0);
      return;
    }
    default:
      usage(`unknown command "${command}"`);
  }
};

const PINNED = 'MEMBRANE_SNAPSHOT_PINNED';
const WATCH_FD = 'MEMBRANE_SNAPSHOT_PARENT_FD';

/**
 * Run this command again in a child under LC_ALL=C.UTF-8 and TZ=UTC (a
 * service sees the locale through Intl and Date#toString, and the ICU
 * default locale cannot change once a process runs: compartments/locale.ts),
 * and mirror its exit. Only when the locale is not already en-US, and only
 * for the commands that run services: --help, --version, usage errors and
 * inspect never start a second process.
 *
 * The child holds the read end of a pipe (fd 3) whose write end only this
 * process holds: when this process dies, even by SIGKILL, the child sees
 * the pipe close and stops (watchParent), so no orphan goes on building or
 * serving.
 */
const reexecPinned = async (): Promise<void> => {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    env: { ...process.env, LC_ALL: 'C.UTF-8', TZ: 'UTC', [PINNED]: '1', [WATCH_FD]: '3' },
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
};

/** In a re-executed child: stop when the parent's end of the watch pipe closes. */
const watchParent = async (): Promise<void> => {
  if (process.env[WATCH_FD] === undefined) return;
  const fd = Number(process.env[WATCH_FD]);
  delete process.env[WATCH_FD]; // not for services, build scripts or verify's children
  if (!Number.isInteger(fd) || fd < 3) return;
  const { default: net } = await import('node:net');
  let pipe: import('node:net').Socket;
  try {
    pipe = new net.Socket({ fd, readable: true, writable: false });
  } catch {
    return;
  }
  const orphaned = () => {
    process.stderr.write('snapshot: the parent process ended; stopping\n');
    process.exit(1);
  };
  pipe.on('end', orphaned);
  pipe.on('error', orphaned);
  pipe.resume();
  pipe.unref(); // watching must not keep the process alive
};

watchParent().then(() => main(process.argv.slice(2))).catch(fail);
