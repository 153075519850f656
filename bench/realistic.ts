/**
 * Figure (d): the realistic service of issue 10, whole processes, cold.
 *
 * The service (fixtures/records/svc.js) fetches 2,000 JSON records (about
 * 2 MB) in 20 pages of 100 from an API with 5 ms latency per page, reads a
 * config file, and builds a Map plus a sorted array (fixtures/records/
 * state.js). Every variant below prints the same summary line; the run
 * fails if one differs.
 *
 * | variant        | command                                                     |
 * | -------------- | ----------------------------------------------------------- |
 * | restore        | `node dist/lib/cli.cjs restore <dir> --call svc.count`      |
 * | floor          | `node floor.mjs records.json`: plain Node, no library, the  |
 * |                | records read from a local JSON file                         |
 * | plain + API    | `node plain-api.mjs <base>`: plain Node, no library, the    |
 * |                | same module fetching from the live API (served by this     |
 * |                | process, 5 ms per page)                                     |
 * | V8 snapshot    | `node --snapshot-blob <blob>`: a V8 startup snapshot taken  |
 * |                | with the state built (`--build-snapshot`)                   |
 * | node -e 0      | an empty Node start                                         |
 * | --version      | `node dist/lib/cli.cjs --version`                           |
 *
 * Runs are interleaved (one of each per round, the order rotating every
 * round) and the figures are medians. Wall time is measured by this process
 * from spawn to exit; peak RSS by GNU time (`/usr/bin/time -f %M`) when it
 * is installed.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { benchDir, cliPath, goal, median, ms, ratio, repo, runNodeOk, table, tempDir } from './util.js';

const fixtureDir = path.join(benchDir, 'fixtures', 'records');
const GNU_TIME = '/usr/bin/time';
let rssDir: string | undefined;

export interface Sample {
  readonly ms: number;
  /** Peak resident set, KiB (undefined without GNU time). */
  readonly maxRssKiB: number | undefined;
  /** CPU time, user + system, ms (undefined without GNU time): less moved by other load than wall time. */
  readonly cpuMs: number | undefined;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Run `node <args>` cold, timing it from spawn to exit and reading its peak RSS; `unset` names variables
 * taken out of its environment, `set` adds some.
 */
export const timeNode = (args: readonly string[], unset: readonly string[] = [], set: Record<string, string> = {}): Promise<Sample> =>
  new Promise((resolve, reject) => {
    const haveTime = fs.existsSync(GNU_TIME);
    const rssFile = haveTime ? path.join((rssDir ??= tempDir('rss')), 'rss') : '';
    const command = haveTime ? GNU_TIME : process.execPath;
    const argv = haveTime ? ['-q', '-f', '%M %U %S', '-o', rssFile, process.execPath, ...args] : [...args];
    const started = performance.now();
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '', ...set };
    for (const name of unset) delete env[name];
    const child = spawn(command, argv, { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', code => {
      const elapsed = performance.now() - started;
      if (code !== 0) {
        reject(new Error(`node ${args.join(' ')} exited ${String(code)}\n${stdout}\n${stderr}`));
        return;
      }
      const [rss, user, system] = haveTime ? (fs.readFileSync(rssFile, 'utf8').trim().split('\n').pop() ?? '').split(' ').map(Number) : [];
      const cpu = (user ?? Number.NaN) * 1000 + (system ?? Number.NaN) * 1000;
      resolve({ ms: elapsed, maxRssKiB: Number.isFinite(rss) ? rss : undefined, cpuMs: Number.isFinite(cpu) ? cpu : undefined, stdout: stdout.trim(), stderr });
    });
  });

/** Bundle the V8 snapshot entry into one CommonJS file (--build-snapshot takes a single script). */
const bundleSnapshotEntry = async (outDir: string): Promise<string> => {
  const { build } = await import('esbuild');
  const outfile = path.join(outDir, 'v8-entry.cjs');
  await build({ entryPoints: [path.join(fixtureDir, 'v8-entry.mjs')], outfile, bundle: true, format: 'cjs', platform: 'node', target: 'node20', logLevel: 'error' });
  return outfile;
};

/** What each phase a restore marks (MEMBRANE_SNAPSHOT_PHASES=1, compartments/phases.cts) covers, in order. */
const PHASES: Record<string, string> = {
  node: "Node's own start, as `node -e 0` (the CA file included)",
  'bundle-read': "the CLI's option checks; the restore bundle and its code cache read and checked",
  'bundle-compiled': 'V8 compiles the bundle from its code cache',
  'ses-evaluated': 'SES and the lockdown helpers evaluated',
  lockdown: 'lockdown: the intrinsics repaired and frozen, their override accessors',
  'modules-evaluated': "the rest of the bundle's modules; Node's crypto, zlib, inspector loaded",
  manifest: 'the manifest read and checked; the archive and log start being read, on the thread pool',
  'node-errors-hardened': "Node's internal error classes found (inspector protocol) and frozen",
  'host-modules-hardened': 'pure host modules frozen',
  'web-classes-hardened': "web classes frozen, and what Blob, URL, the encoders and events share with the host (the streams' internals wait for a service that reaches a stream)",
  'late-internals-hardened': "Node's pipeTo internals frozen (one event-loop turn)",
  'files-verified': "archive and log read (what the hardening did not hide), SHA-256 checked, the log's frames checked",
  'archive-loaded': 'the archive parsed, the compartments laid out',
  endowments: "the service's globals and modules: clock, console, timers, crypto, fs, process, web classes",
  replayed: "the service evaluated and its log replayed: its own work (records parsed, the state built)",
  called: 'the --call answered',
  exit: 'the answer printed, the code cache checked',
};

/** Run `args` (a restore) with its phases marked, `rounds` times, and print the median time of each phase. */
const printPhases = async (args: string[], rounds: number, out: (text?: string) => void): Promise<void> => {
  const runs: Array<Map<string, number>> = [];
  for (let i = 0; i <= rounds; i += 1) {
    const sample = await timeNode(args, [], { MEMBRANE_SNAPSHOT_PHASES: '1' });
    const phases = new Map<string, number>();
    for (const [, name, , since] of sample.stderr.matchAll(/^membrane-snapshot phase (\S+) ([\d.]+) \+([\d.]+)$/gm)) phases.set(name, Number(since));
    if (!phases.has('exit')) throw new Error(`the restore marked no exit phase:\n${sample.stderr}`);
    if (i > 0) runs.push(phases); // the first run warms the page cache
  }
  const names = [...runs[0].keys()];
  const rows: string[][] = [['phase (MEMBRANE_SNAPSHOT_PHASES=1)', 'ms (median)', 'what it covers']];
  let total = 0;
  for (const name of names) {
    const value = median(runs.map(r => r.get(name) ?? Number.NaN));
    total += value;
    rows.push([name, ms(value), PHASES[name] ?? '']);
  }
  rows.push(['total, process start to exit', ms(total), '']);
  out(`    where the restore's time goes, ${rounds} runs after 1 warm-up (process.uptime() at each phase's end; the process's own exit is not in it):`);
  out(table(rows));
};

export interface RealisticOptions {
  readonly rounds: number;
  readonly out: (text?: string) => void;
}

/**
 * Measure figure (d) and print it; resolves to the snapshot directory built
 * (for the log-size figure). Throws if a variant cannot be measured or
 * prints something else than the others.
 */
export const measureRealistic = async ({ rounds, out }: RealisticOptions): Promise<string> => {
  const work = tempDir('records');
  const snapshotDir = path.join(work, 'snapshot');

  // Build the snapshot (its build script serves the API itself), time it too.
  const build = await timeNode([cliPath, 'build', path.join(fixtureDir, 'build.mjs'), '--out', snapshotDir]);

  // The floor's local data: the very records the API serves.
  const api = (await import(path.join(fixtureDir, 'api.mjs'))) as typeof import('./fixtures/records/api.mjs');
  const recordsFile = path.join(work, 'records.json');
  fs.writeFileSync(recordsFile, JSON.stringify(api.makeRecords()));

  // The V8 startup snapshot of the same state.
  const blob = path.join(work, 'state.blob');
  const entry = await bundleSnapshotEntry(work);
  await runNodeOk(['--snapshot-blob', blob, '--build-snapshot', entry, recordsFile]);

  // The API for "plain Node with the API up", served from this process.
  const { server, base } = await api.serve();
  try {
    const variants: Array<[name: string, args: string[], checked: boolean, unset?: string[]]> = [
      ['restore', [cliPath, 'restore', snapshotDir, '--call', 'svc.count'], true],
      ['floor', [path.join(fixtureDir, 'floor.mjs'), recordsFile], true],
      ['plain + API', [path.join(fixtureDir, 'plain-api.mjs'), base], true],
      ['V8 snapshot', ['--snapshot-blob', blob], true],
      ['node -e 0', ['-e', '0'], false],
      ['--version', [cliPath, '--version'], false],
    ];
    // Node reads NODE_EXTRA_CA_CERTS as it starts (it parses every certificate in the file), before any
    // of the code measured: where it is set, the same processes are also timed without it.
    const extraCa = process.env.NODE_EXTRA_CA_CERTS ? ['NODE_EXTRA_CA_CERTS'] : undefined;
    if (extraCa) {
      variants.push(
        ['restore, no extra CA', [cliPath, 'restore', snapshotDir, '--call', 'svc.count'], true, extraCa],
        ['floor, no extra CA', [path.join(fixtureDir, 'floor.mjs'), recordsFile], true, extraCa],
        ['node -e 0, no extra CA', ['-e', '0'], false, extraCa],
      );
    }
    const samples = new Map<string, Sample[]>(variants.map(([name]) => [name, []]));
    for (let round = 0; round <= rounds; round += 1) {
      for (let k = 0; k < variants.length; k += 1) {
        const [name, args, , unset] = variants[(k + round) % variants.length];
        const sample = await timeNode(args, unset);
        if (round > 0) samples.get(name)?.push(sample); // round 0 warms the page cache
      }
    }
    const expected = samples.get('floor')?.[0]?.stdout;
    for (const [name, , checked] of variants) {
      for (const s of samples.get(name) ?? []) {
        if (checked && s.stdout !== expected) throw new Error(`${name} printed ${s.stdout}, the floor printed ${expected}`);
      }
    }
    const wall = (name: string): number => median((samples.get(name) ?? []).map(s => s.ms));
    const rss = (name: string): string => {
      const values = (samples.get(name) ?? []).map(s => s.maxRssKiB).filter((v): v is number => v !== undefined);
      return values.length ? `${(median(values) / 1024).toFixed(0)} MiB` : '-';
    };
    const restore = wall('restore');
    const floor = wall('floor');
    const plain = wall('plain + API');
    const cpu = (name: string): number => median((samples.get(name) ?? []).map(s => s.cpuMs ?? Number.NaN));
    const rows: string[][] = [['whole process', 'wall (median)', 'peak RSS', 'restore / this', 'CPU (median)', 'restore / this', 'wall runs (ms, sorted)']];
    const sorted = (name: string) => (samples.get(name) ?? []).map(s => s.ms).sort((a, b) => a - b).map(v => v.toFixed(0)).join(' ');
    const labels: Record<string, string> = {
      restore: 'snapshot restore --call svc.count',
      floor: 'floor: plain Node, data from a local JSON file',
      'plain + API': 'plain Node, API up (5 ms per page)',
      'V8 snapshot': 'V8 startup snapshot of the state',
      'node -e 0': 'node -e 0',
      '--version': 'snapshot --version',
      'restore, no extra CA': 'the same restore, without NODE_EXTRA_CA_CERTS',
      'floor, no extra CA': 'the floor, without NODE_EXTRA_CA_CERTS',
      'node -e 0, no extra CA': 'node -e 0, without NODE_EXTRA_CA_CERTS',
    };
    for (const [name] of variants) {
      const other = name === 'restore' || name === 'restore, no extra CA';
      // Each row against the restore run in the same environment.
      const base = name.endsWith('no extra CA') ? 'restore, no extra CA' : 'restore';
      rows.push([labels[name], ms(wall(name)), rss(name), other ? '' : ratio(wall(base) / wall(name)), ms(cpu(name)), other ? '' : ratio(cpu(base) / cpu(name)), sorted(name)]);
    }
    rows.push([`snapshot build (1 run, for reference)`, ms(build.ms), build.maxRssKiB ? `${(build.maxRssKiB / 1024).toFixed(0)} MiB` : '-', ratio(restore / build.ms), build.cpuMs === undefined ? '-' : ms(build.cpuMs), '', '']);
    out(table(rows));
    out(`    every variant printed ${JSON.stringify(expected)}; ${rounds} interleaved rounds after 1 warm-up round, order rotating each round;`);
    out('    CPU is user + system time (GNU time): on a loaded machine it moves less than wall time, but it also counts work on other threads.');
    if (extraCa) {
      const bare = wall('restore, no extra CA') / wall('floor, no extra CA');
      out(`    NODE_EXTRA_CA_CERTS is set here (${process.env.NODE_EXTRA_CA_CERTS}): every Node process parses its certificates as it starts,`);
      out(`    ${ms(wall('node -e 0') - wall('node -e 0, no extra CA'))} of each start above. Without it: restore ${ms(wall('restore, no extra CA'))}, floor ${ms(wall('floor, no extra CA'))}, restore / floor ${ratio(bare)}`);
      out('    (the goals below are read on the runs with it, as the environment is).');
    }
    const version = wall('--version') / wall('node -e 0');
    out(
      table([
        ['goal', 'figure', ''],
        ['restore / floor <= 1.5x (stretch 1.2x), wall', ratio(restore / floor), goal(restore <= 1.5 * floor)],
        ['restore / plain Node with the API up <= 0.5x, wall', ratio(restore / plain), goal(restore <= 0.5 * plain)],
        ['snapshot --version / node -e 0 <= 1.5x, wall', ratio(version), goal(version <= 1.5)],
        ['(the same three in CPU time)', `${ratio(cpu('restore') / cpu('floor'))}, ${ratio(cpu('restore') / cpu('plain + API'))}, ${ratio(cpu('--version') / cpu('node -e 0'))}`, ''],
      ]),
    );
    await printPhases([cliPath, 'restore', snapshotDir, '--call', 'svc.count'], rounds, out);
  } finally {
    server.close();
  }
  return snapshotDir;
};
