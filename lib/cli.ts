#!/usr/bin/env node
/**
 * The `snapshot` command line: build, restore, inspect, verify.
 * Every failure prints `snapshot: CODE: message` and exits non-zero
 * (1 for a failed operation, 2 for a usage error).
 */
import './index.js';
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { localeIsFixed } from '../compartments/lockdown.js';
import { SnapshotError, isSnapshotError } from '../replay-log/index.js';
import { buildSnapshot } from './build.js';
import { restoreSnapshot, callService } from './restore.js';
import { inspectPath } from './inspect.js';
import { verifySnapshot } from './verify.js';
import { libraryVersion } from './version.js';
import { readManifest } from './manifest.js';
import { formatBytes, startProgressView } from './progress-view.js';

const help: Record<string, string> = {
  main: `snapshot ${libraryVersion}: record Node services at build time, replay them on another host.

Usage:
  snapshot build <script> [--out dir] [--timeout ms] [--json] [--quiet]
  snapshot restore <dir> [--service name...] [--call service.method [--args json-array]] [--quiet]
  snapshot inspect <log-file | snapshot-dir> [--json | --html out.html [--mark event]]
  snapshot verify <dir> [--sources dir] [--json] [--quiet]

Progress goes to stderr, one line per service and step (a live status line
on a terminal); --quiet prints none of it. Run \`snapshot <command> --help\`
for the options of each command.`,
  build: `snapshot build <script> [--out dir] [--timeout ms] [--json] [--quiet]

Runs the build script (.js, .mjs, .ts, .mts). Every importService() it makes
is recorded. When the script has finished and every service is quiescent,
writes <dir>/manifest.json and, per service, <dir>/<name>/archive.zip and
<dir>/<name>/replay.log.

  --out dir       the snapshot directory (default: snapshot); replaced if it
                  holds an older snapshot, refused if it holds anything else
  --timeout ms    how long to wait for services to finish pending work
                  after the script ends (default: 30000)
  --json          print a summary as one JSON line on stdout (after the
                  build script's own output)
  --quiet         no progress and no summary on stderr

Stdout is the build script's own; progress (a line per service as it is
archived and recorded) and the summary go to stderr.`,
  restore: `snapshot restore <dir> [--service name...] [--call service.method [--args json-array]] [--quiet]

Rebuilds each service from its archive by replaying its log (no network, no
sources, no node_modules needed), then lets it go live on this host.

  --service name  restore only this service (repeatable)
  --call s.m      once live, call method m of service s, print the result as
                  JSON on stdout and exit
  --args json     the arguments of --call, as a JSON array (default: [])
  --replay-only   replay, report, and exit before going live
  --json          with --replay-only: print the report as JSON
  --quiet         no progress lines (one per service replayed) on stderr

Without --call the services stay up until the process is interrupted; one
line reports the restore time.`,
  inspect: `snapshot inspect <log-file | snapshot-dir> [--json | --html out.html [--mark event]]

For a replay log: a readable timeline, one line per entry with its offset
and size, and totals by kind. For a snapshot directory: its services, their
archive and log sizes and hashes.

  --json          one JSON document: for a log its header, entries (index,
                  offset, size, kind, text) and totals; for a directory its
                  manifest
  --html file     for a log: write a self-contained HTML page with its
                  timeline (turns, syscalls by kind, sizes, timers, calls to
                  other services) to file
  --mark event    with --html: mark this event index in red (the event a
                  REPLAY_DIVERGED error names)`,
  verify: `snapshot verify <dir> [--sources dir] [--json] [--quiet]

Replays every service of the snapshot, each in a fresh process, and reports
ok or the first divergence or damage found, one line per service as it is
verified. Exits 1 if any service fails.

  --sources dir   replay each recorded log through the code as it is now:
                  rebuild each service's archive from the package in dir
                  (its entry module at the same path as at build time) and
                  report compatible (ok) or the first divergence
  --json          print { ok, services: [{ service, ok, events, ms, error }] }
                  as one JSON document instead of the lines
  --quiet         no live status line`,
};

const fail = (error: unknown): never => {
  if (isSnapshotError(error)) {
    process.stderr.write(`snapshot: ${error.code}: ${error.message}\n`);
    process.exit(error.code === 'USAGE' ? 2 : 1);
  }
  process.stderr.write(`snapshot: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
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

  switch (command) {
    case 'build': {
      const timeoutMs = values.timeout === undefined ? undefined : Number(values.timeout);
      if (timeoutMs !== undefined && !(timeoutMs > 0)) usage('--timeout takes a positive number of milliseconds');
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
        result = await buildSnapshot({ script: target, out: values.out as string | undefined, timeoutMs });
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
      const selected = values.service as string[] | undefined;
      const restoring = () => {
        const total = selected?.length ?? Object.keys(readManifest(target).services).length;
        const view = startProgressView({ quiet: values.quiet as boolean | undefined, activity: 'replaying', total });
        return restoreSnapshot({ dir: target, services: selected }).finally(() => view.stop());
      };
      if (values['replay-only']) {
        try {
          const restored = await restoring();
          const events = [...restored.services.values()].reduce((n, s) => n + s.events, 0);
          if (values.json) process.stdout.write(`${JSON.stringify({ ok: true, events, ms: restored.ms })}\n`);
          else process.stdout.write(`ok: replayed ${events} events in ${restored.ms.toFixed(1)} ms\n`);
          process.exit(0);
        } catch (error) {
          if (values.json && isSnapshotError(error)) {
            process.stdout.write(`${JSON.stringify({ ok: false, error: { code: error.code, message: error.message } })}\n`);
            process.exit(1);
          }
          throw error;
        }
      }
      const restored = await restoring();
      if (values.call !== undefined) {
        let result: unknown;
        try {
          result = await callService(restored, values.call as string, args);
        } catch (error) {
          if (isSnapshotError(error)) throw error;
          process.stderr.write(`snapshot: ${values.call as string}(...) threw ${describeThrown(error)}\n`);
          process.exit(1);
        }
        process.stdout.write(`${JSON.stringify(result, jsonReplacer) ?? 'null'}\n`);
        process.exit(0);
      }
      const names = [...restored.services.keys()];
      process.stdout.write(`ready: ${names.length} service${names.length === 1 ? '' : 's'} (${names.join(', ')}) restored in ${restored.ms.toFixed(1)} ms, live\n`);
      const keepAlive = setInterval(() => {}, 1 << 30);
      const stop = () => {
        clearInterval(keepAlive);
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      return;
    }
    case 'inspect':
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
        process.stdout.write(`${JSON.stringify(inspectJson(target))}\n`);
      } else process.stdout.write(`${inspectPath(target)}\n`);
      return;
    case 'verify': {
      const total = Object.keys(readManifest(target).services).length;
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
          reports = await verifySources(target, values.sources as string);
        } else reports = await verifySnapshot(target);
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

/**
 * V8 names time zones in the process's locale ("Koordinierte Weltzeit"), and
 * a service can see that through Date#toString. The CLI therefore runs in
 * one fixed locale (C.UTF-8) and in UTC, re-executing itself if started
 * otherwise, so build and restore hosts agree whatever their settings.
 */
const reexecInFixedLocale = (): boolean => {
  if (process.env.MEMBRANE_SNAPSHOT_PINNED === '1' || localeIsFixed()) return false;
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, LC_ALL: 'C.UTF-8', TZ: 'UTC', MEMBRANE_SNAPSHOT_PINNED: '1' },
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  return true;
};

if (!reexecInFixedLocale()) main(process.argv.slice(2)).catch(fail);
