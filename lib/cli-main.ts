/**
 * The `snapshot` command line: build, restore, inspect, verify, plan, push
 * (cli.cts starts it, after trying its restore fast path). Every failure
 * prints `snapshot: CODE: message` and exits non-zero (1 for a failed
 * operation, 2 for a usage error).
 */
// Only what every start needs is imported here: --help, --version and usage
// errors run without SES, compartment-mapper or msgpackr (nor node:child_process
// and node:net, which only a re-executed start needs). A command loads
// its own modules (and locks the realm down first) when it runs.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { SnapshotError, block, closestWord, escapeControls, isSnapshotError } from '../replay-log/errors.js';
import { libraryVersion } from './version.js';
import { withNats } from './nats-modules.js';
import { formatBytes, startProgressView } from './progress-view.js';
import { fail } from './cli-report.js';
import { recoverInterrupted } from './interrupted.js';
import type { CommandLine } from './cli-start.cjs';

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
  snapshot restore <dir | nats://host:port/app> [--service name...] [--nats url [--app name]] [--call service.method [--args json-array]] [--replay-only [--json]] [--port service=port] [--http-host h] [--call-timeout ms] [--shutdown-timeout ms] [--trust pub.pem] [--seal-key file] [--quiet]
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
  restore: `snapshot restore <dir | nats://host:port/app> [--service name...] [--nats url [--app name]] [--call service.method [--args json-array]] [--replay-only [--json]] [--port service=port] [--http-host h] [--call-timeout ms] [--shutdown-timeout ms] [--trust pub.pem] [--seal-key file] [--quiet]

Rebuilds each service from its archive by replaying its log (no network, no
sources, no node_modules needed), then lets it go live on this host.

  --service name  restore only this service (repeatable)
  --call s.m      once live, call method m of service s (s.o.m: method m of
                  the object o that s exports; a data export is read), print
                  the result as JSON on stdout and exit
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

/** The real path of the package directory (its package.json named membrane-snapshot) holding `file`, or undefined. */
const packageDirOf = (file: string): string | undefined => {
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown };
      if (pkg.name === 'membrane-snapshot') return fs.realpathSync(dir);
    } catch {
      // no package.json here, or not one we can read: look further up
    }
    if (path.dirname(dir) === dir) return undefined;
  }
};

/**
 * The CLI of the copy of this library that the build script `script`
 * imports, when it is another copy than the one running (`entry`, this
 * CLI): a CLI installed globally or by npx, the library installed in the
 * project. Two copies cannot share one process (each locks the realm down
 * and hardens what it finds), so the script's own copy runs the build, as
 * eslint and jest hand a command over to the project's own copy.
 * Undefined when the script resolves this copy, or none (Node's own
 * ERR_MODULE_NOT_FOUND then says so when the script imports it).
 */
const scriptCopyCli = (script: string, entry: string): { cli: string; dir: string; version: string } | undefined => {
  let resolved: string;
  try {
    resolved = createRequire(path.resolve(script)).resolve('membrane-snapshot');
  } catch {
    return undefined;
  }
  const theirs = packageDirOf(resolved);
  const ours = packageDirOf(fs.realpathSync(entry));
  if (theirs === undefined || theirs === ours) return undefined;
  const pkg = JSON.parse(fs.readFileSync(path.join(theirs, 'package.json'), 'utf8')) as { version?: unknown; bin?: unknown };
  const bin = typeof pkg.bin === 'object' && pkg.bin !== null ? (pkg.bin as Record<string, unknown>).snapshot : undefined;
  if (typeof bin !== 'string') return undefined;
  return { cli: path.join(theirs, bin), dir: theirs, version: String(pkg.version) };
};

/** How long a build has after SIGINT or SIGTERM to stop by itself before the CLI kills it, in ms. */
const BUILD_STOP_MS = 3000;

/** A usage error: the message, then the help of `command` (that command's options) or, without one, the usage of all commands. */
const usage = (message: string, command?: string): never => fail(new SnapshotError('USAGE', `${message}\n\n${help[command !== undefined && command in help ? command : 'main']}`));

/** A usage error about one option's value: the message, and where the options are told (the help would bury it). */
const badValue = (message: string, command: string): never => fail(new SnapshotError('USAGE', `${message} (\`snapshot ${command} --help\` lists the options)`));

/**
 * Run the command line `argv` (process.argv without node and the script).
 * `entry` is the file Node started (cli.js), run again when the locale must
 * be pinned. Resolves when the command is done (or serving); a failure
 * rejects with a SnapshotError, or exits through fail() for usage errors.
 */
export const main = async (argv: string[], entry: string): Promise<void> => {
  const [command, ...rest] = argv;
  if (!command) {
    // No command: the usage on stderr and exit 2, as any usage error (git and npm say so too; it exited 0).
    process.stderr.write(`${help.main}\n`);
    process.exitCode = 2;
    return;
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${help.main}\n`);
    return;
  }
  if (command === '--version') {
    process.stdout.write(`${libraryVersion}\n`);
    return;
  }
  if (!(command in help) || command === 'main') {
    const near = closestWord(command, Object.keys(help).filter(name => name !== 'main'));
    usage(`unknown command "${command}"${near ? `; did you mean "${near}"?` : ''}`);
  }
  const { needsPinnedLocale, needsWatchedChild, parseCommandLine, reexecPinned, restoreInputs, isNatsRestore, watchParent } = await import('./cli-start.cjs');
  watchParent(); // in a re-executed child (a no-op when cli.cts already watches)
  let parsed: CommandLine;
  try {
    parsed = parseCommandLine(rest);
  } catch (error) {
    // An unknown option: name it, suggest the option of this command it is closest to, show this command's help.
    const unknown = (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'(-{1,2}[^']+)'/.exec((error as Error).message)?.[1] : undefined;
    if (unknown) {
      const known = [...help[command as keyof typeof help].matchAll(/^\s+(--[a-z][a-z-]*)/gm)].map(m => m[1]);
      const near = closestWord(unknown.split('=')[0], known);
      return fail(new SnapshotError('USAGE', `${command} has no option ${unknown}${near ? `; did you mean ${near}?` : ''}\n\n${help[command as keyof typeof help]}`));
    }
    // An option without its value: said as the other usage errors say it (parseArgs: "Option '-o, --out <value>' argument missing").
    const bare = /^Option '(?:-\w, )?(--[a-z-]+) <value>' argument missing/.exec(error instanceof Error ? error.message : '');
    if (bare) return badValue(`${bare[1]} takes a value: ${bare[1]} <value>`, command);
    return usage(error instanceof Error ? error.message : String(error), command);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${help[command]}\n`);
    return;
  }
  const target = positionals[0];
  if (!target || positionals.length > 1) usage(`${command} takes exactly one path`, command);
  if (command === 'build') {
    const theirs = scriptCopyCli(target, entry);
    if (theirs !== undefined) {
      if (!values.quiet && !values.json) process.stderr.write(`snapshot: ${target} imports membrane-snapshot ${theirs.version} from ${theirs.dir}; that copy runs the build (this CLI is ${libraryVersion}).\n`);
      // Nothing of this copy has locked the realm down or hardened anything yet: the other copy's CLI starts as if Node had started it.
      createRequire(import.meta.url)(theirs.cli);
      return;
    }
  }
  // Commands that run services run in the pinned locale (inspect only reads files).
  if (command === 'build' && (needsPinnedLocale(command) || needsWatchedChild(command))) {
    const out = path.resolve((values.out as string | undefined) ?? 'snapshot');
    return reexecPinned(entry, {
      graceMs: BUILD_STOP_MS,
      killed: signal => {
        recoverInterrupted(out);
        process.stderr.write(
          `snapshot: the build did not stop within ${BUILD_STOP_MS / 1000} s of ${signal}, so it was killed: a service was still running without returning to the event loop (an endless loop?). Nothing was written (${out} is as it was).\n`,
        );
      },
    });
  }
  if (needsPinnedLocale(command)) return reexecPinned(entry);

  switch (command) {
    case 'build': {
      const timeoutMs = values.timeout === undefined ? undefined : Number(values.timeout);
      if (timeoutMs !== undefined && !(timeoutMs > 0)) badValue('--timeout takes a positive number of milliseconds', command);
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
      // Interrupted (Ctrl-C, a stopped container): the work directory goes, the last snapshot stays as it was.
      const interrupted = (signal: 'SIGINT' | 'SIGTERM') => {
        view.stop();
        const session = currentSession();
        if (session) fs.rmSync(session.workDir, { recursive: true, force: true });
        process.stderr.write(`snapshot: the build was interrupted (${signal}); nothing was written${session ? ` (${session.outDir} is as it was)` : ''}.\n`);
        process.exit(signal === 'SIGINT' ? 130 : 143);
      };
      // `on`, not `once`: a second signal (a terminal's Ctrl-C reaches the parent's process group too, which
      // passes it on) must not find Node's default, which would kill the build halfway through tidying.
      process.on('SIGINT', interrupted);
      process.on('SIGTERM', interrupted);
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
        // After the build, not before: a build that fails at once (a bad key) says only why.
        const line = Number(/^v(\d+)\./.exec(process.version)?.[1]);
        if (line !== 20 && !values.json) {
          const { libraryDoc } = await import('../compartments/docs.js');
          process.stderr.write(`snapshot: on Node ${process.version}, some builtins inside a service still behave as Node 20's (fetch's error messages, web stream adapters...); Node 20 is the line checked against plain Node: ${libraryDoc('docs/environment.md')}, Node versions.\n`);
        }
      }
      return;
    }
    case 'restore': {
      const inputs = restoreInputs(target, values);
      if ('usage' in inputs) return badValue(inputs.usage, command);
      // Restore loads only what restore needs (restore-entry.ts), bundled when `npm run build` made
      // the bundle; a restore that joins NATS loads the modules (the bundle does not carry the client).
      const bundle = isNatsRestore(target, values) ? undefined : (await import('./restore-bundle.cjs')).loadRestoreBundle();
      const { runRestore } = bundle?.library ?? (await import('./restore-entry.js'));
      return runRestore(inputs, () => bundle?.saveCache());
    }
    case 'inspect': {
      if (values.html !== undefined || values.json) await library(); // the streamed text dump needs no lockdown
      if (values.html !== undefined) {
        const mark = values.mark === undefined ? undefined : Number(values.mark);
        if (mark !== undefined && !(Number.isInteger(mark) && mark >= 0)) badValue('--mark takes an event index (0, 1, ...)', command);
        const fs = await import('node:fs');
        if (!fs.statSync(target).isFile()) usage(`--html draws one replay log: give a log file (<dir>/<service>/replay.log), not ${target}`, command);
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
          // What a log holds is the service's (keys, RegExp sources, error names): its control characters shown escaped.
          inspectTo(target, text => writeFully(escapeControls(text)));
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
      if (values.nats === undefined) usage('push takes --nats <url>', command);
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
            view.line(e.ok ? `ok    ${e.service}: ${e.events} events replayed (${(e.ms ?? 0).toFixed(0)} ms, ${values.sources === undefined ? "fresh process" : "through the current sources"})` : `FAIL  ${e.service}: ${e.error?.code}: ${block(e.error?.message ?? '')}`);
          });
      let reports: Awaited<ReturnType<typeof verifySnapshot>>;
      try {
        if (values.sources !== undefined) {
          const { verifySources } = await import('./verify-sources.js');
          reports = await verifySources(dir, values.sources as string, { sealKeyFile: values['seal-key'] as string | undefined });
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
