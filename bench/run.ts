/**
 * membrane-snapshot benchmark: `npm run bench` (node --import tsx bench/run.ts).
 *
 * Every figure is printed beside a baseline measured in the same run, with
 * "goal met" / "goal MISSED" beside each goal. Missed goals do not fail the
 * run (this is not a test); the exit code is non-zero only if a measurement
 * could not be taken at all. Times are medians of several runs; the
 * in-process figures drive the compiled library (dist/, rebuilt first if
 * stale) through the same assembly lib/service.ts uses (harness.ts).
 *
 * (a) Replay throughput of cheap nondeterminism. The workload service
 *     (fixtures/workload/workload.js) runs burn(1,000,000): a million calls
 *     rotating Date.now(), Math.random() and crypto.getRandomValues(new
 *     Uint8Array(16)). Math.random draws from a generator seeded once, so it
 *     costs one log event in all: the log holds about 667k events for the
 *     million calls, counted from the log itself (the entries of the call's
 *     turn: the call, its syscalls, its answer). Replay time runs from the
 *     end of module evaluation to the moment the journal goes live, in a
 *     fresh instance replaying the recorded log. Reported as calls/s and log
 *     events/s. Goal: >= 2,000,000 log events/s.
 *     Baseline: the same call on the same service, live and unrecorded (a
 *     journal with no writer and no log). Reference: the same loop as plain
 *     host code, without any membrane.
 *
 * (b) Replay throughput of small checked syscalls: 100,000 `process.env`
 *     reads (env.get) of 3 keys, 100,000 `fs.existsSync` calls on 3 paths,
 *     and 100,000 `fs.existsSync` calls on 100,000 different paths, made by
 *     the service, each taken from the log and compared with the recorded
 *     one. A read that repeats an earlier one with the same answer is logged
 *     as a back-reference (replay-log/format.ts); the last workload is the
 *     case where none does.
 *     Goal: >= 500,000 events/s. Baseline: the same calls live, unrecorded;
 *     reference: the same calls in host code.
 *
 * (c) Recording overhead: the workloads of (a) and (b) recorded into a log
 *     file (as a build does) vs the same call live and unrecorded.
 *     Goal: <= 10% more time.
 *
 * (d) Restore of the realistic service of issue 10, whole cold processes
 *     (realistic.ts): `snapshot restore --call svc.count` against plain
 *     Node without the library reading the same data from a local JSON file
 *     (the floor), plain Node fetching it from the API (5 ms per page), a V8
 *     startup snapshot of the same state and `node -e 0`; and `snapshot
 *     --version` against `node -e 0`. Interleaved rounds, medians. Where
 *     NODE_EXTRA_CA_CERTS is set (Node parses that file as every process
 *     starts), restore, the floor and `node -e 0` are also run without it.
 *     Goals: restore <= 1.5x floor, <= 0.5x plain Node with the API up;
 *     --version <= 1.5x `node -e 0`. Then where the restore's time goes:
 *     the median of each phase it marks (MEMBRANE_SNAPSHOT_PHASES=1,
 *     compartments/phases.cts) over as many more restores.
 *
 * (e) Log size: bytes of each log file (framing, header and trailer
 *     included) per event, against the raw payload of its entries (the
 *     recorded values: 8 bytes per number, the length of strings and
 *     buffers; accounting.ts says exactly what counts) and against the same
 *     entries as JSON lines. Goal: log <= 1.15x raw payload.
 *
 * (g) Archive writing (archive.ts): archiveService on generated packages of
 *     100 to 800 modules of 4 KB, as a first build (the module analysis
 *     cache emptied) and as a rebuild (cached), and the zip write alone,
 *     ours against @endo/zip's own writer. Goal: 800 modules <= 0.5 s on a
 *     first build, linear.
 *
 * (j) Restore of a large service (many-modules.ts): the 800-module package
 *     of (g) built once, `snapshot restore --call` against plain Node
 *     importing the same modules and `node -e 0`, cold processes,
 *     interleaved. No goal: where a restore's per-module cost stands.
 *
 * (k) The live runtime over NATS (nats.ts): a cross-host call against bare
 *     request/reply, and calls/s with one and two replicas.
 *
 * (h) Memory (memory.ts): peak RSS of restore and build of a service that
 *     fetches a 50 MiB body, minus the same with 1 KiB, per payload byte;
 *     plain Node reading the bytes from a file beside it. Goal: restore
 *     <= 2x the payload.
 *
 * (i) What lockdown costs V8 (bench/fixtures/lockdown-ops.mjs): a few
 *     everyday operations timed in plain Node and in a process locked down
 *     as every build and restore is, both cold children. No goal: it says
 *     where service code runs slower under SES for reasons outside this
 *     library (frozen intrinsics leave V8's fast paths), and so where a
 *     service's own time goes.
 *
 * (f) Multi-service apps. A live call from the host into one service that
 *     calls another (fixtures/pair: front.ping -> back.echo, both restored
 *     in this process) against a direct async function call; and the
 *     restore time of the three-service example (examples/app, four logs
 *     replayed in one cold process) against its build time.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchDir, cliPath, ensureFreshDist, goal, int, lastJson, loadAverage, median, ms, pct, rate, ratio, repo, runNodeOk, table, tempDir } from './util.js';

// dist/ must be current before anything imports it (the harness locks the realm down).
const distStatus = await ensureFreshDist();
const { archiveFixture, startLive, replayLog } = await import('./harness.js');
const { accountLog, callTurn } = await import('./accounting.js');
const { measureRealistic } = await import('./realistic.js');
const { measureMemory } = await import('./memory.js');
const { measureArchive } = await import('./archive.js'); // before anything archives: it keeps @endo/zip's own writer as the baseline
const { archiveService } = await import('../dist/compartments/index.js');
const { isNativeAccelerationEnabled } = await import('msgpackr');
type Fixture = Awaited<ReturnType<typeof archiveFixture>>;
type LogAccount = ReturnType<typeof accountLog>;

const REPS = 5; // measured runs per in-process figure, after one warm-up
const CHILD_REPS = 5; // cold processes per restore figure, and interleaved rounds of (d)
const BUILD_REPS = 3; // `snapshot build` runs of the example app
const BURN_CALLS = 1_000_000;
const SYSCALLS = 100_000;

const out = (text = ''): void => {
  process.stdout.write(`${text}\n`);
};

const started = performance.now();
let failures = 0;
// `npm run bench -- d f` runs only sections (d) and (f); no argument runs them all.
const only = new Set(process.argv.slice(2).map(a => a.toLowerCase()));
/** Run one section; a section that cannot measure says so and the others still run. */
const section = async (title: string, body: () => Promise<void>): Promise<void> => {
  const letter = /^\((\w)\)/.exec(title)?.[1] ?? '';
  if (only.size > 0 && !only.has(letter)) return;
  out();
  out(title);
  try {
    await body();
  } catch (error) {
    failures += 1;
    out(`    FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  }
};

// ---- environment ----------------------------------------------------------------

const cpus = os.cpus();
out('membrane-snapshot benchmark');
out(
  `environment: node ${process.version}, ${process.platform} ${process.arch}, CPU ${cpus[0]?.model.trim() ?? 'unknown'} x ${cpus.length} cores ` +
    `(available parallelism ${os.availableParallelism()}), msgpackr native accelerator ${isNativeAccelerationEnabled ? 'present' : 'ABSENT (pure JS)'}, SES lockdown on`,
);
out(`load average at start: ${loadAverage()} (1, 5, 15 min; this machine has ${cpus.length} cores)`);
out(`library: ${distStatus}; in-process figures: median of ${REPS} runs after 1 warm-up; cold-process figures: median of ${CHILD_REPS}`);

// ---- in-process workloads (a), (b), (c) ----------------------------------------------

interface WorkloadFigures {
  readonly live: number;
  readonly recorded: number;
  readonly replay: number;
  readonly replayOpen: number;
  readonly host: number;
  /** Entries in the call's turn, and by kind. */
  readonly turnEvents: number;
  readonly turnKinds: ReadonlyMap<string, number>;
  readonly trailerEvents: number;
  readonly logFile: string;
  /** Every measured run, for the spread. */
  readonly runs: { readonly live: readonly number[]; readonly recorded: readonly number[]; readonly replay: readonly number[] };
}

const logDir = tempDir('logs');

/**
 * Time `method(...args)` on the workload service live, recorded and
 * replayed, `REPS` times after a warm-up, alternating the order of live and
 * recorded runs; and the host-code reference.
 */
const measureWorkload = async (fixture: Fixture, label: string, method: string, args: readonly unknown[], host: () => unknown): Promise<WorkloadFigures> => {
  const logFile = path.join(logDir, `${label}.log`);
  const live: number[] = [];
  const recorded: number[] = [];
  const replay: number[] = [];
  const replayOpen: number[] = [];
  const hostTimes: number[] = [];
  const runLive = async (): Promise<number> => {
    const service = await startLive(fixture);
    const { ms: t } = await service.call(method, args);
    await service.finish();
    return t;
  };
  const runRecorded = async (): Promise<number> => {
    const service = await startLive(fixture, logFile);
    const { ms: t } = await service.call(method, args);
    await service.finish();
    return t;
  };
  for (let rep = 0; rep <= REPS; rep += 1) {
    const warm = rep === 0;
    let liveMs: number;
    let recordedMs: number;
    if (rep % 2 === 0) {
      liveMs = await runLive();
      recordedMs = await runRecorded();
    } else {
      recordedMs = await runRecorded();
      liveMs = await runLive();
    }
    const replayed = await replayLog(fixture, logFile);
    const t0 = performance.now();
    host();
    const hostMs = performance.now() - t0;
    if (warm) continue;
    live.push(liveMs);
    recorded.push(recordedMs);
    replay.push(replayed.replayMs);
    replayOpen.push(replayed.openMs);
    hostTimes.push(hostMs);
  }
  const bytes = fs.readFileSync(logFile);
  const turn = callTurn(bytes, logFile);
  return {
    live: median(live),
    recorded: median(recorded),
    replay: median(replay),
    replayOpen: median(replayOpen),
    host: median(hostTimes),
    turnEvents: turn.events,
    turnKinds: turn.byKind,
    trailerEvents: turn.logEvents,
    logFile,
    runs: { live, recorded, replay },
  };
};

/** Every run of a figure, sorted, in ms: how much the machine's load moved it. */
const spread = (values: readonly number[]): string => [...values].sort((a, b) => a - b).map(v => v.toFixed(0)).join(' ');

const kinds = (byKind: ReadonlyMap<string, number>): string => [...byKind].map(([kind, n]) => `${int(n)} ${kind}`).join(', ');

const workloads = new Map<string, WorkloadFigures>();
let workloadFixture: Fixture | undefined;

await section(`(a) replay throughput: burn(${int(BURN_CALLS)}), Date.now() / Math.random() / crypto.getRandomValues(16 bytes) in rotation`, async () => {
  workloadFixture = await archiveFixture('workload', path.join(benchDir, 'fixtures', 'workload', 'workload.js'));
  const hostBurn = (): number => {
    let sum = 0;
    for (let i = 0; i < BURN_CALLS; i += 1) {
      if (i % 3 === 0) sum = (sum + Date.now()) % 1e9;
      else if (i % 3 === 1) sum = (sum + Math.random() * 1e6) % 1e9;
      else {
        const bytes = crypto.getRandomValues(new Uint8Array(16));
        sum = (sum + bytes[0] + bytes[15]) % 1e9;
      }
    }
    return sum;
  };
  const f = await measureWorkload(workloadFixture, 'burn', 'burn', [BURN_CALLS], hostBurn);
  workloads.set('burn', f);
  out(`    log: ${int(f.turnEvents)} events in the call's turn (${kinds(f.turnKinds)}); ${int(f.trailerEvents)} in the whole log (trailer)`);
  const eventsPerS = f.turnEvents / (f.replay / 1000);
  out(
    table([
      ['', 'time', 'calls/s', 'log events/s', ''],
      ['replay (from the log)', ms(f.replay), rate(BURN_CALLS / (f.replay / 1000)), rate(eventsPerS), `goal >= 2,000,000 log events/s: ${goal(eventsPerS >= 2_000_000)}`],
      ['baseline: live, unrecorded', ms(f.live), rate(BURN_CALLS / (f.live / 1000)), '-', `replay takes ${ratio(f.replay / f.live)} the live time`],
      ['reference: plain host loop', ms(f.host), rate(BURN_CALLS / (f.host / 1000)), '-', ''],
    ]),
  );
  out(`    runs (ms, sorted): replay ${spread(f.runs.replay)}; live ${spread(f.runs.live)}`);
  out(`    (reading and verifying the ${int(fs.statSync(f.logFile).size)}-byte log before replay: ${ms(f.replayOpen)}, not included above)`);
});

await section(`(b) replay throughput of small checked syscalls: ${int(SYSCALLS)} calls each`, async () => {
  const fixture = workloadFixture ?? (await archiveFixture('workload', path.join(benchDir, 'fixtures', 'workload', 'workload.js')));
  workloadFixture = fixture;
  process.env.BENCH_ENV_A = 'alpha-value-1234';
  process.env.BENCH_ENV_B = 'https://api.example.test/v1/items?limit=50';
  const keys = ['BENCH_ENV_A', 'BENCH_ENV_B', 'BENCH_ENV_UNSET'];
  const paths = [path.join(repo, 'package.json'), path.join(repo, 'no-such-file.txt'), path.join(repo, 'bench')];
  const hostEnv = (): number => {
    let n = 0;
    for (let i = 0; i < SYSCALLS; i += 1) n += (process.env[keys[i % keys.length]] ?? '').length;
    return n;
  };
  const hostExists = (): number => {
    let n = 0;
    for (let i = 0; i < SYSCALLS; i += 1) if (fs.existsSync(paths[i % paths.length])) n += 1;
    return n;
  };
  const prefix = path.join(repo, 'bench', 'no-such-dir', 'file-');
  const hostExistsEach = (): number => {
    let n = 0;
    for (let i = 0; i < SYSCALLS; i += 1) if (fs.existsSync(`${prefix}${i}`)) n += 1;
    return n;
  };
  const env = await measureWorkload(fixture, 'env', 'envReads', [SYSCALLS, keys], hostEnv);
  const exists = await measureWorkload(fixture, 'exists', 'exists', [SYSCALLS, paths], hostExists);
  const existsEach = await measureWorkload(fixture, 'exists-each', 'existsEach', [SYSCALLS, prefix], hostExistsEach);
  workloads.set('env', env);
  workloads.set('exists', exists);
  workloads.set('exists, each path once', existsEach);
  const rows: string[][] = [['', 'log events', 'replay', 'events/s', 'live, unrecorded', 'calls/s', 'host code', '']];
  for (const [name, f] of [
    ['process.env reads (3 keys)', env],
    ['fs.existsSync (3 paths)', exists],
    ['fs.existsSync, each path once', existsEach],
  ] as const) {
    const eventsPerS = f.turnEvents / (f.replay / 1000);
    rows.push([
      name,
      int(f.turnEvents),
      ms(f.replay),
      rate(eventsPerS),
      ms(f.live),
      rate(SYSCALLS / (f.live / 1000)),
      ms(f.host),
      `goal >= 500,000 events/s: ${goal(eventsPerS >= 500_000)}; replay takes ${ratio(f.replay / f.live)} the live time`,
    ]);
  }
  out(table(rows));
  out(`    runs (ms, sorted): env replay ${spread(env.runs.replay)}, live ${spread(env.runs.live)}; exists replay ${spread(exists.runs.replay)}, live ${spread(exists.runs.live)}`);
  out('    A read repeated with the same answer is logged as a 2-4 byte back-reference to the entry it repeats (replay-log/format.ts);');
  out('    "each path once" is the case where no read repeats: every entry is encoded whole.');
});

await section('(c) recording overhead: the same call recorded into a log file vs live and unrecorded', async () => {
  if (workloads.size === 0) throw new Error('no workload was measured');
  const rows: string[][] = [['workload', 'live, unrecorded', 'recorded', 'overhead', '', '']];
  for (const [name, f] of workloads) {
    const overhead = f.recorded / f.live - 1;
    rows.push([name, ms(f.live), ms(f.recorded), pct(overhead), `goal <= +10%: ${goal(overhead <= 0.1)}`, `recorded runs: ${spread(f.runs.recorded)}`]);
  }
  out(table(rows));
});

const snapshots = new Map<string, string>();

const buildTimes = async (script: string, dir: string): Promise<number[]> => {
  const times: number[] = [];
  for (let i = 0; i < BUILD_REPS; i += 1) {
    const result = await runNodeOk([cliPath, 'build', script, '--out', dir]);
    const match = /built .* in (\d+) ms/.exec(result.stderr);
    if (!match) throw new Error(`cannot read the build time from:\n${result.stderr}`);
    times.push(Number(match[1]));
  }
  return times;
};

// ---- (d) the realistic service, whole cold processes -------------------------------

await section('(d) restore of the realistic service (2,000 records fetched in 20 pages, config file, Map + sorted array): whole cold processes', async () => {
  snapshots.set('svc', await measureRealistic({ rounds: CHILD_REPS, out }));
});

// ---- (g) archive writing ------------------------------------------------------------

await section('(g) archive writing: N generated modules of 4 KB, our zip writer vs @endo/zip 1.1.0', async () => {
  const { moduleSourceCacheDir, moduleSourceCacheFlushed, rereadModuleSourceCache, emptyModuleSourceCache } = await import('../dist/compartments/module-source-cache.js');
  await measureArchive({
    out,
    archiveService,
    reps: 3,
    cacheDir: moduleSourceCacheDir,
    cacheFlushed: moduleSourceCacheFlushed,
    rereadCache: rereadModuleSourceCache,
    emptyCache: emptyModuleSourceCache,
  });
});

// ---- (j) restore of a large service ----------------------------------------------------------

await section('(j) restore of a large service: 800 generated ES modules, whole cold processes', async () => {
  const { measureManyModules } = await import('./many-modules.js');
  await measureManyModules({ out, rounds: CHILD_REPS });
});

// ---- (h) memory with a large payload ----------------------------------------------------

await section('(h) memory: a service that fetches a 50 MiB body and keeps it, peak RSS of whole processes', async () => {
  await measureMemory({ out, rounds: 3 });
});

// ---- (f) multi-service: live calls between services, restore of a whole app ------------

const CROSS_CALLS = 20_000;

await section('(f) multi-service apps: a live call across two membranes, and restoring the three-service example', async () => {
  // A live call from the host into `front`, which calls `back` and returns its answer:
  // host -> front (a delivery) -> back (a syscall of front, a delivery of back) -> back to the host.
  const pairDir = path.join(tempDir('pair'), 'snapshot');
  await runNodeOk([cliPath, 'build', path.join(benchDir, 'fixtures', 'pair', 'build.mjs'), '--out', pairDir]);
  const { restoreSnapshot } = (await import(path.join(repo, 'dist', 'lib', 'index.js'))) as typeof import('../lib/index.js');
  const restored = await restoreSnapshot({ dir: pairDir, print: () => {} });
  const ping = restored.services.get('front')?.exports.ping as (v: number) => Promise<number>;
  const direct = async (v: number): Promise<number> => v;
  const timeCalls = async (fn: (v: number) => Promise<number>): Promise<number> => {
    const t0 = performance.now();
    let sum = 0;
    for (let i = 0; i < CROSS_CALLS; i += 1) sum += await fn(i);
    if (sum !== (CROSS_CALLS * (CROSS_CALLS - 1)) / 2) throw new Error('wrong answers');
    return performance.now() - t0;
  };
  await timeCalls(ping);
  const crossed: number[] = [];
  const directs: number[] = [];
  for (let i = 0; i < REPS; i += 1) {
    crossed.push(await timeCalls(ping));
    directs.push(await timeCalls(direct));
  }
  const perCross = (median(crossed) * 1000) / CROSS_CALLS;
  const perDirect = (median(directs) * 1000) / CROSS_CALLS;
  out(
    table([
      ['call', 'per call', 'calls/s'],
      ['front.ping(i) -> back.echo(i), live, in process', `${perCross.toFixed(2)} us`, rate(1e6 / perCross)],
      ['baseline: a direct async function call', `${perDirect.toFixed(3)} us`, rate(1e6 / perDirect)],
    ]),
  );
  out(`    ${ratio(perCross / perDirect)} a direct call; each crossing is a turn of the service it enters (membrane/turns.ts). ${int(CROSS_CALLS)} calls, median of ${REPS}.`);
  out(table([['goal', 'figure', ''], ['live call across two membranes, in process <= 5 us', `${perCross.toFixed(2)} us`, goal(perCross <= 5)]]));

  const appDir = path.join(tempDir('app'), 'snapshot');
  const builds = await buildTimes(path.join(repo, 'examples', 'app', 'build.mjs'), appDir);
  const restores: number[] = [];
  let events = 0;
  for (let i = 0; i < CHILD_REPS; i += 1) {
    const run = lastJson<{ ok: boolean; events: number; ms: number }>(await runNodeOk([cliPath, 'restore', appDir, '--replay-only', '--json']));
    restores.push(run.ms);
    events = run.events;
  }
  out(
    table([
      ['app', 'services', 'events', 'build', 'restore (all, one process)', 'restore/build'],
      ['examples/app', '4', int(events), ms(median(builds)), ms(median(restores)), ratio(median(restores) / median(builds))],
    ]),
  );
  out(`    runs (ms, sorted): restore ${spread(restores)}, build ${spread(builds)}`);
});

// ---- (i) what lockdown costs ------------------------------------------------------

await section('(i) what lockdown costs V8: everyday operations in plain Node and under the library\'s lockdown (ns per operation, best of 5)', async () => {
  const script = path.join(benchDir, 'fixtures', 'lockdown-ops.mjs');
  const plain = lastJson<{ result: Record<string, number> }>(await runNodeOk([script])).result;
  const locked = lastJson<{ result: Record<string, number> }>(await runNodeOk([script, 'lockdown'])).result;
  const rows: string[][] = [['operation', 'plain Node', 'locked down', 'ratio']];
  for (const name of Object.keys(plain)) rows.push([name, `${plain[name].toFixed(0)} ns`, `${locked[name].toFixed(0)} ns`, ratio(locked[name] / plain[name])]);
  out(table(rows));
  out('    V8 leaves its fast paths for intrinsics that lockdown freezes or reconfigures: any change to RegExp.prototype (replace, split:');
  out('    the library splits and replaces in JavaScript instead, compartments/regexp-methods.ts, where V8 went through every position');
  out('    of the text), Array.prototype[Symbol.iterator] made an override accessor (spreads), a non-extensible Array.prototype (arrays');
  out('    grown by index). Typed arrays, Buffers, nextTick and string spreads keep theirs: their prototypes are frozen in place, and');
  out('    String.prototype[Symbol.iterator] stays a data property (compartments/overrides.ts).');
  out("    A service's code reads a global through SES's scope, a `with` over its compartment's globalThis: SES binds once the globals");
  out('    that can never change (the ECMAScript core bindings, Math, JSON, Date..., which the library fixes: compartments/fixed-globals.ts);');
  out("    any other (Symbol, Promise, Buffer, process), writable as Node's are, is looked up at every read.");
});

// ---- (e) log size ------------------------------------------------------------------

await section('(e) log size: the log file against the raw payload of its entries and against JSON lines', async () => {
  const logs = new Map<string, string>();
  for (const [name, f] of workloads) logs.set(name, f.logFile);
  for (const [name, dir] of snapshots) logs.set(name, path.join(dir, name, 'replay.log'));
  if (logs.size === 0) throw new Error('no log was recorded');
  const rows: string[][] = [['log', 'events', 'file bytes', 'B/event', 'raw payload', 'log/payload', 'JSON lines', 'log/JSON', '']];
  const kindTotals = new Map<string, { entries: number; logBytes: number; payloadBytes: number; jsonBytes: number }>();
  for (const [name, file] of logs) {
    const account: LogAccount = accountLog(fs.readFileSync(file), file);
    for (const [kind, t] of account.byKind) {
      const k = kindTotals.get(kind) ?? { entries: 0, logBytes: 0, payloadBytes: 0, jsonBytes: 0 };
      k.entries += t.entries;
      k.logBytes += t.logBytes;
      k.payloadBytes += t.payloadBytes;
      k.jsonBytes += t.jsonBytes;
      kindTotals.set(kind, k);
    }
    const overPayload = account.fileBytes / account.payloadBytes;
    rows.push([
      name,
      int(account.events),
      int(account.fileBytes),
      (account.fileBytes / account.events).toFixed(2),
      int(account.payloadBytes),
      ratio(overPayload),
      int(account.jsonBytes),
      ratio(account.fileBytes / account.jsonBytes),
      `goal <= 1.15x payload: ${goal(overPayload <= 1.15)}`,
    ]);
  }
  out(table(rows));
  out('    by entry kind, all logs above (entry bytes only, without frames, header and trailer):');
  const kindRows: string[][] = [['kind', 'entries', 'entry bytes', 'B/entry', 'raw payload', 'entry/payload', 'JSON lines', 'entry/JSON']];
  for (const [kind, t] of [...kindTotals].sort((a, b) => b[1].logBytes - a[1].logBytes)) {
    kindRows.push([
      kind,
      int(t.entries),
      int(t.logBytes),
      (t.logBytes / t.entries).toFixed(2),
      int(t.payloadBytes),
      t.payloadBytes ? ratio(t.logBytes / t.payloadBytes) : '-',
      int(t.jsonBytes),
      ratio(t.logBytes / t.jsonBytes),
    ]);
  }
  out(table(kindRows, '      '));
});

await section('(k) the live runtime over NATS: a cross-host call vs bare request/reply; calls/s with one and two replicas', async () => (await import('./nats.js')).benchNats(out));

out();
out(`done in ${((performance.now() - started) / 1000).toFixed(1)} s, load average at the end: ${loadAverage()}${failures ? `; ${failures} section(s) FAILED to measure` : ''}`);
process.exit(failures ? 1 : 0);
