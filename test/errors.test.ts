// Bad input gets a clear, typed error from the CLI, and a non-zero exit.
import t from 'tap';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { LogReader, LogWriter, fileSink } from '../replay-log/index.js';
import { sha256 } from '../lib/manifest.js';
import { fixture, moveToTarget, repo, snapshot, tempDir } from './helpers.js';

const work = tempDir('errors');

/** A copy of the misc fixture we may edit, with node_modules reachable. */
const editableMisc = (): string => {
  const dir = path.join(tempDir('misc'), 'app');
  fs.cpSync(fixture('misc'), dir, { recursive: true });
  fs.symlinkSync(path.join(repo, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
};

const buildCounter = async (cwd: string, out: string): Promise<void> => {
  const built = await snapshot(['build', 'build-counter.mjs', '--out', out], { cwd });
  if (built.code !== 0) throw new Error(built.stderr);
};

const readManifest = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
const writeManifest = (dir: string, manifest: unknown) => fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));

/**
 * A copy of the snapshot `logFrom` (moved elsewhere) with the archive of `codeFrom`: the log's header rewritten
 * for the new archive and the manifest's hashes with it, as a rebuild of the archive alone would.
 */
const withCodeOf = (logFrom: string, codeFrom: string): string => {
  const target = moveToTarget(logFrom);
  const manifest = readManifest(target);
  const newArchive = fs.readFileSync(path.join(codeFrom, 'counter', 'archive.zip'));
  fs.writeFileSync(path.join(target, 'counter', 'archive.zip'), newArchive);
  const logFile = path.join(target, 'counter', 'replay.log');
  const old = LogReader.open(fs.readFileSync(logFile), logFile);
  const writer = new LogWriter(fileSink(logFile), { ...old.header, archiveSha256: sha256(newArchive) });
  for (const { entry } of old.entries()) writer.entry(entry);
  const sealed = writer.seal();
  manifest.services.counter.archiveSha256 = sha256(newArchive);
  manifest.services.counter.logSha256 = sealed.sha256;
  manifest.services.counter.archiveBytes = newArchive.byteLength;
  manifest.services.counter.logBytes = sealed.bytes;
  writeManifest(target, manifest);
  return target;
};

t.test('a service whose code changed diverges from its log, with the event, both syscalls and its stack', async t => {
  const app = editableMisc();
  const v1 = path.join(work, 'v1');
  const v2 = path.join(work, 'v2');
  await buildCounter(app, v1);
  const source = path.join(app, 'services', 'counter.js');
  fs.writeFileSync(source, fs.readFileSync(source, 'utf8').replace("console.log('count is', count);", "console.log('the count is now', count);"));
  await buildCounter(app, v2);

  const target = withCodeOf(v1, v2);

  const restored = await snapshot(['restore', target, '--call', 'counter.bump']);
  t.equal(restored.code, 1);
  t.match(restored.stderr, /^snapshot: REPLAY_DIVERGED: service "counter" diverged from its replay log at event 4:/m);
  t.match(restored.stderr, /expected: console\.log\("count is 1"\)/);
  t.match(restored.stderr, /actual: {3}console\.log\("the count is now 1"\)/);
  t.match(restored.stderr, /last delivery: deliver call #\d+\(\) answer #1/);
  t.match(restored.stderr, /service stack:\n\s+at bump \(.*counter\.js:\d+:\d+\)/);
  t.notMatch(restored.stderr, /node:internal/, 'no raw stack trace from inside the library');

  const verified = await snapshot(['verify', target]);
  t.equal(verified.code, 1);
  t.match(verified.stdout, /FAIL\s+counter: REPLAY_DIVERGED/);
});

t.test("what a service or its log says reaches the terminal escaped: verify's FAIL line and inspect's timeline", async t => {
  const app = editableMisc();
  const v1 = path.join(work, 'escape-v1');
  const v2 = path.join(work, 'escape-v2');
  const source = path.join(app, 'services', 'counter.js');
  const original = fs.readFileSync(source, 'utf8');
  // An answer whose key has control characters (describeWire prints keys as they are, strings JSON-escaped).
  const answer = 'return { count, random: Math.random(), elapsed: Date.now() - started };';
  fs.writeFileSync(source, original.replace(answer, "return { ['\\x1b[1A\\x1b[2K\\rok\\x9b']: count, random: Math.random() };"));
  await buildCounter(app, v1);
  const inspected = await snapshot(['inspect', path.join(v1, 'counter', 'replay.log')]);
  t.equal(inspected.code, 0, inspected.stderr);
  t.notMatch(inspected.stdout, /[\x1b\r\x9b]/, "inspect writes none of the log's control characters");
  t.match(inspected.stdout, /returns \{\\x1b\[1A\\x1b\[2K\\rok\\x9b: 1/, 'they are shown escaped');
  fs.writeFileSync(source, original);
  await buildCounter(app, v2);
  // The log of the spoofing code, the code of the plain one: the divergence message quotes the log.
  const verified = await snapshot(['verify', withCodeOf(v1, v2)]);
  t.equal(verified.code, 1);
  t.match(verified.stdout, /FAIL\s+counter: REPLAY_DIVERGED/);
  t.notMatch(verified.stdout + verified.stderr, /[\x1b\r\x9b]/, "verify's FAIL line writes none of them");
});

t.test('links out of the snapshot and files that are not regular are refused, never followed or read forever', async t => {
  const base = path.join(work, 'links-base');
  await buildCounter(fixture('misc'), base);
  const outside = path.join(work, 'outside.txt');
  fs.writeFileSync(outside, 'a file of the restoring host');
  const cases: Array<[string, (dir: string) => void]> = [
    ['a log linked to a host file', dir => {
      fs.rmSync(path.join(dir, 'counter', 'replay.log'));
      fs.symlinkSync(outside, path.join(dir, 'counter', 'replay.log'));
    }],
    ['a manifest linked to a host file', dir => {
      fs.rmSync(path.join(dir, 'manifest.json'));
      fs.symlinkSync(outside, path.join(dir, 'manifest.json'));
    }],
    ['a service directory linked outside', dir => {
      const moved = path.join(path.dirname(dir), 'moved-away');
      fs.renameSync(path.join(dir, 'counter'), moved);
      fs.symlinkSync(moved, path.join(dir, 'counter'));
    }],
    ['a log that is /dev/zero', dir => {
      fs.rmSync(path.join(dir, 'counter', 'replay.log'));
      fs.symlinkSync('/dev/zero', path.join(dir, 'counter', 'replay.log'));
    }],
  ];
  for (const [what, damage] of cases) {
    const dir = moveToTarget(base);
    damage(dir);
    for (const command of [['restore', dir, '--call', 'counter.bump'], ['verify', dir]]) {
      const run = await snapshot(command, { timeoutMs: 60_000 });
      t.equal(run.code, 1, `${what}: ${command[0]} fails`);
      t.match(`${run.stdout}${run.stderr}`, /SNAPSHOT_INVALID: .*(outside the snapshot directory|not a regular file)/, `${what}: ${command[0]} says why`);
      t.notMatch(`${run.stdout}${run.stderr}`, /sha256 is/, `${what}: no hash of a host file is printed`);
    }
  }
  const fifo = moveToTarget(base);
  fs.rmSync(path.join(fifo, 'counter', 'replay.log'));
  const { execFileSync } = await import('node:child_process');
  execFileSync('mkfifo', [path.join(fifo, 'counter', 'replay.log')]);
  const run = await snapshot(['restore', fifo, '--call', 'counter.bump'], { timeoutMs: 60_000 });
  t.equal(run.code, 1, 'a FIFO in place of a log: fails at once instead of hanging');
  t.match(run.stderr, /SNAPSHOT_INVALID: .*not a regular file/);
});

t.test('damaged snapshots are refused with their own codes', async t => {
  const base = path.join(work, 'base');
  await buildCounter(fixture('misc'), base);

  // A damaged log is caught by its hash before it is parsed (with the hash recomputed,
  // the reader's own checks: test/damaged-logs.test.ts).
  const flipped = moveToTarget(base);
  const log = path.join(flipped, 'counter', 'replay.log');
  const bytes = fs.readFileSync(log);
  bytes[bytes.length - 30] ^= 0xff;
  fs.writeFileSync(log, bytes);
  let run = await snapshot(['restore', flipped, '--call', 'counter.bump']);
  t.equal(run.code, 1);
  t.match(run.stderr, /^snapshot: INTEGRITY_MISMATCH: the replay log of service "counter" .*replay\.log does not match the manifest/m);

  const truncated = moveToTarget(base);
  const tlog = path.join(truncated, 'counter', 'replay.log');
  fs.truncateSync(tlog, fs.statSync(tlog).size - 7);
  run = await snapshot(['restore', truncated, '--call', 'counter.bump']);
  t.equal(run.code, 1);
  t.match(run.stderr, /^snapshot: INTEGRITY_MISMATCH: the replay log of service "counter"/m);

  const tampered = moveToTarget(base);
  const zip = path.join(tampered, 'counter', 'archive.zip');
  const zipBytes = fs.readFileSync(zip);
  zipBytes[100] ^= 0x01;
  fs.writeFileSync(zip, zipBytes);
  run = await snapshot(['restore', tampered, '--call', 'counter.bump']);
  t.equal(run.code, 1);
  t.match(run.stderr, /^snapshot: INTEGRITY_MISMATCH: the archive of service "counter" .*archive\.zip does not match the manifest: its sha256 is [0-9a-f]{64}, the manifest says [0-9a-f]{64}/m);

  // A log rewritten with valid checksums is caught by its content hash.
  const rewritten = moveToTarget(base);
  const rlog = path.join(rewritten, 'counter', 'replay.log');
  const reader = LogReader.open(fs.readFileSync(rlog), rlog);
  const writer = new LogWriter(fileSink(rlog), reader.header);
  for (const { entry } of reader.entries()) writer.entry(entry.kind === 'now' ? { kind: 'now', value: entry.value + 1 } : entry);
  writer.seal();
  run = await snapshot(['restore', rewritten, '--call', 'counter.bump']);
  t.equal(run.code, 1);
  t.match(run.stderr, /^snapshot: INTEGRITY_MISMATCH: the replay log of service "counter"/m);

  // A manifest whose event count, or archive, disagrees with the log (each file matching its own hash).
  const recounted = moveToTarget(base);
  const recountedManifest = readManifest(recounted);
  const counter = recountedManifest.services.counter as { events: number };
  counter.events -= 1;
  writeManifest(recounted, recountedManifest);
  run = await snapshot(['restore', recounted, '--call', 'counter.bump']);
  t.equal(run.code, 1);
  t.match(run.stderr, /^snapshot: INTEGRITY_MISMATCH: \S+replay\.log holds (\d+) events, and the manifest says service "counter" recorded \d+\. One of them was changed after the build, or they come from different builds: rebuild the snapshot, or copy it again\./m);
  const verified = await snapshot(['verify', recounted]);
  t.equal(verified.code, 1, 'verify finds it too');
  t.match(verified.stderr + verified.stdout, /INTEGRITY_MISMATCH: \S+replay\.log holds \d+ events/);

  const rearchived = moveToTarget(base);
  const zipFile = path.join(rearchived, 'counter', 'archive.zip');
  const other = fs.readFileSync(zipFile);
  other[100] ^= 0x01;
  fs.writeFileSync(zipFile, other);
  const rearchivedManifest = readManifest(rearchived);
  (rearchivedManifest.services.counter as { archiveSha256: string }).archiveSha256 = sha256(other);
  writeManifest(rearchived, rearchivedManifest);
  run = await snapshot(['restore', rearchived, '--call', 'counter.bump']);
  t.equal(run.code, 1);
  t.match(run.stderr, /^snapshot: INTEGRITY_MISMATCH: \S+replay\.log and the manifest disagree about service "counter"'s archive: the log was recorded with archive [0-9a-f]{64}, the manifest names [0-9a-f]{64}\. One of them was changed after the build/m);

  const future = moveToTarget(base);
  const manifest = readManifest(future);
  manifest.version = 7;
  writeManifest(future, manifest);
  run = await snapshot(['restore', future]);
  t.equal(run.code, 1);
  t.match(run.stderr, /LOG_VERSION_UNSUPPORTED: .*manifest version 7; this membrane-snapshot reads version 1/);

  run = await snapshot(['restore', path.join(work, 'nowhere')]);
  t.equal(run.code, 1);
  t.match(run.stderr, /SNAPSHOT_INVALID: .* is not a snapshot/);
  // A typo names the snapshot beside it; a directory no build wrote is not offered as --out (a build there is refused).
  run = await snapshot(['restore', path.join(work, 'bsae')]);
  t.match(run.stderr, /bsae does not exist\. [^\n]*Snapshots next to it: [^\n,]*base[,.]/, 'a typo: the snapshot next to it is named first');
  const plain = path.join(work, 'plain-dir');
  fs.mkdirSync(plain, { recursive: true });
  fs.writeFileSync(path.join(plain, 'notes.txt'), 'x');
  run = await snapshot(['restore', plain]);
  t.match(run.stderr, /manifest\.json is missing: no `snapshot build` wrote this directory\. .*--out <dir>/, 'a directory of something else');
  t.notMatch(run.stderr, /--out .*plain-dir/, 'not offered as the --out of a build');
  // A FIFO named manifest.json beside a wrong path: the advice does not wait on it.
  const fifoSnap = path.join(work, 'fifo-snap');
  fs.mkdirSync(fifoSnap, { recursive: true });
  execFileSync('mkfifo', [path.join(fifoSnap, 'manifest.json')]);
  run = await snapshot(['restore', path.join(work, 'fifo-snao')], { timeoutMs: 30_000 });
  t.equal(run.code, 1, 'the advice was given, not waited for');
  run = await snapshot(['inspect', path.join(fifoSnap, 'sub')], { timeoutMs: 30_000 });
  t.equal(run.code, 1, 'nor the enclosing snapshot waited for');
  fs.rmSync(fifoSnap, { recursive: true, force: true });
  // Given as `.`, its neighbours are named from where the command runs: ../base, a path that leads there.
  run = await snapshot(['restore', '.'], { cwd: plain });
  t.match(run.stderr, /Snapshots next to it: [^\n]*\.\.\/base[,.]/, 'the snapshot beside the current directory, as ../base');
  // A path inside a snapshot (a service's log, its directory) names the snapshot; a project holding one names it.
  const service = fs.readdirSync(base).find(name => fs.existsSync(path.join(base, name, 'replay.log'))) as string;
  run = await snapshot(['restore', path.join(base, service, 'replay.log')]);
  t.equal(run.code, 1);
  t.ok(run.stderr.includes(`replay.log is a file of the snapshot ${base}; give that directory. To read this replay log, run \`snapshot inspect `), `a log names its snapshot, and inspect: ${run.stderr}`);
  run = await snapshot(['restore', path.join(base, service)]);
  t.match(run.stderr, /is inside the snapshot [^\n]*; give that directory\./, "a service's directory names its snapshot");
  run = await snapshot(['restore', work]);
  t.match(run.stderr, /Snapshots in it: [^\n]*base/, 'a directory holding snapshots names them');
  // A manifest.json no build wrote (a web app's, a package's) makes no snapshot of its directory.
  const webApp = path.join(work, 'web-app');
  fs.mkdirSync(path.join(webApp, 'icons'), { recursive: true });
  fs.writeFileSync(path.join(webApp, 'manifest.json'), JSON.stringify({ name: 'An app', icons: [] }));
  run = await snapshot(['restore', path.join(webApp, 'icons')]);
  t.notMatch(run.stderr, /inside the snapshot/, 'a web app manifest above it is not named as its snapshot');
  run = await snapshot(['restore', work]);
  t.notMatch(run.stderr, /Snapshots in it: [^\n]*web-app/, 'nor listed as a snapshot');
});

t.test('a build that ends while a service still waits is refused with NOT_QUIESCENT, naming what it waits on', async t => {
  const run = await snapshot(['build', 'build-hang.mjs', '--out', path.join(work, 'hang'), '--timeout', '300'], { cwd: fixture('misc') });
  t.equal(run.code, 1);
  t.match(run.stderr, /^snapshot: NOT_QUIESCENT: service "hang" was still busy 300 ms after the build script finished; it waits on:\n\s+- promise #1: fetch\(\{url: "http:\/\/127\.0\.0\.1:\d+\/never"/m);
  t.notOk(fs.existsSync(path.join(work, 'hang', 'manifest.json')), 'no manifest for an unsealed build');
});

t.test('a service that imports a module it was not given is told how to grant it', async t => {
  const run = await snapshot(['build', 'build-greedy.mjs', '--out', path.join(work, 'greedy')], { cwd: fixture('misc') });
  t.equal(run.code, 1);
  t.match(run.stderr, /MODULE_NOT_GRANTED: service "greedy" imports "node:child_process" \(in package misc-fixture\),/, 'the package by its name (no version: none in its package.json)');
  t.match(run.stderr, /Grant it with importService\(specifier, \{ modules: \{ 'node:child_process': await import\('node:child_process'\) \} \}\)/);
});

t.test('a build script that crashes keeps what was recorded beside the output and says how far it got', async t => {
  const out = path.join(work, 'crash');
  const run = await snapshot(['build', 'build-crash.mjs', '--out', out], { cwd: fixture('misc') });
  t.equal(run.code, 1);
  t.match(run.stderr, /BUILD_FAILED: the build script .*build-crash\.mjs failed; no snapshot was sealed\.\n\s*Error: the build script fell over/);
  t.match(run.stderr, /service "counter": \d+ events recorded, \d+ bytes kept in .*crash\.partial\/counter\/replay\.log/);
  t.notOk(fs.existsSync(out), 'nothing is written to --out by a failed build');
  const inspected = await snapshot(['inspect', `${out}.partial/counter/replay.log`]);
  t.equal(inspected.code, 0);
  t.match(inspected.stdout, /NOT SEALED: the build did not finish/);
  t.match(inspected.stdout, /answer #2 returns \{count: 2/, 'both calls made before the crash are in the log');
  const restored = await snapshot(['restore', out]);
  t.equal(restored.code, 1);
  t.match(restored.stderr, /SNAPSHOT_INVALID: .*crash is not a snapshot: .*the last build to .*crash failed \(its partial recording is in .*crash\.partial\)/);
});

t.test('the CLI explains itself', async t => {
  for (const command of ['build', 'restore', 'inspect', 'verify']) {
    const help = await snapshot([command, '--help']);
    t.equal(help.code, 0);
    t.match(help.stdout, new RegExp(`^snapshot ${command} `));
  }
  const unknown = await snapshot(['frobnicate']);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /USAGE: unknown command "frobnicate"\n/, 'nothing near it: no guess');
  const mistyped = await snapshot(['restor', 'snap']);
  t.equal(mistyped.code, 2);
  t.match(mistyped.stderr, /USAGE: unknown command "restor"; did you mean "restore"\?/, 'a mistyped command names the nearest one');
  const missing = await snapshot(['restore']);
  t.equal(missing.code, 2);
  const longWait = await snapshot(['restore', 'snap', '--shutdown-timeout', '3000000000']);
  t.equal(longWait.code, 2);
  t.match(longWait.stderr, /USAGE: --shutdown-timeout takes a number of milliseconds from 1 to 2147483647/, 'a timeout no timer can hold is refused');
  // An option's bad value is one line, pointing at --help, not buried under the help (found by the new-user trial).
  const badArgs = await snapshot(['restore', 'snap', '--call', 'svc.f', '--args', 'x']);
  t.equal(badArgs.code, 2);
  t.match(badArgs.stderr, /^snapshot: USAGE: --args takes a JSON array, and "x" is not JSON \(.*\) \(`snapshot restore --help` lists the options\)\n$/, 'one line');
  const argsAlone = await snapshot(['restore', 'snap', '--args', '[1]']);
  t.equal(argsAlone.code, 2);
  t.match(argsAlone.stderr, /^snapshot: USAGE: --args gives the arguments of --call: add --call service\.method/, '--args without --call is refused, not dropped (found by the new-user trial)');
  // --replay-only stops before anything goes live: a --call with it was never made, and said nothing (new-user trial).
  const replayCall = await snapshot(['restore', 'snap', '--replay-only', '--call', 'svc.f']);
  t.equal(replayCall.code, 2);
  t.match(replayCall.stderr, /^snapshot: USAGE: --call needs the services live, and --replay-only stops before: use one or the other/);
  const jsonAlone = await snapshot(['restore', 'snap', '--json']);
  t.equal(jsonAlone.code, 2);
  t.match(jsonAlone.stderr, /^snapshot: USAGE: --json formats the report of --replay-only/);
  const bareOut = await snapshot(['build', 'build.mjs', '--out']);
  t.equal(bareOut.code, 2);
  t.match(bareOut.stderr, /^snapshot: USAGE: --out takes a value: --out <value> \(`snapshot build --help` lists the options\)\n$/, "an option without its value, said as other usage errors are (it was parseArgs' \"Option '-o, --out <value>' argument missing\")");
  const typo = await snapshot(['build', 'build.mjs', '--ouy', 'snap']);
  t.equal(typo.code, 2);
  t.match(typo.stderr, /^snapshot: USAGE: build has no option --ouy; did you mean --out\?\n[\s\S]*snapshot build <script>/, 'a mistyped option is named, with the nearest one and the command\'s own help');
});

t.test("a failed fetch says why (its cause), at build time and from a call after restore", async t => {
  const closed = await new Promise<string>(resolve => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(`http://127.0.0.1:${port}/`));
    });
  });
  const failed = await snapshot(['build', 'build-modes.mjs', '--out', path.join(work, 'fetch-down')], { cwd: fixture('misc'), env: { MISC_MODE: 'fetch-down', MISC_URL: closed } });
  t.equal(failed.code, 1);
  t.match(failed.stderr, /^\s+TypeError: fetch failed\n\s+\[cause\]: Error: connect ECONNREFUSED 127\.0\.0\.1:\d+/m);
  const out = path.join(work, 'fetcher');
  const built = await snapshot(['build', 'build-modes.mjs', '--out', out], { cwd: fixture('misc'), env: { MISC_MODE: 'fetch-down' } });
  t.equal(built.code, 0, built.stderr);
  const called = await snapshot(['restore', moveToTarget(out), '--call', 'fetcher.get', '--args', JSON.stringify([closed])]);
  t.equal(called.code, 1);
  t.match(called.stderr, /^snapshot: fetcher\.get\(\.\.\.\) threw TypeError: fetch failed\n(?:.*\n)*?\s+\[cause\]: Error: connect ECONNREFUSED 127\.0\.0\.1:\d+/m);
  // What a service's own code throws prints as Node prints it: a plain object whole, an error's own fields after it.
  const object = await snapshot(['restore', moveToTarget(out), '--call', 'fetcher.rejectsObject']);
  t.equal(object.code, 1);
  t.match(object.stderr, /^snapshot: fetcher\.rejectsObject\(\.\.\.\) threw \{ code: 'E_CUSTOM', detail: 42 \}$/m);
  const coded = await snapshot(['restore', moveToTarget(out), '--call', 'fetcher.rejectsCoded']);
  t.equal(coded.code, 1);
  t.match(coded.stderr, /^snapshot: fetcher\.rejectsCoded\(\.\.\.\) threw RangeError: email is not valid\n(?:.*\n)*?\s+\{ code: 'E_INVALID', field: 'email' \}$/m);
  const controls = await snapshot(['restore', moveToTarget(out), '--call', 'fetcher.controls']);
  t.equal(controls.code, 0, controls.stderr);
  t.equal(controls.stdout.trim().split('\n').pop(), '"a\\u009b2Kb\\u007f"', 'a result on stdout is JSON with its DEL and C1 controls escaped');
  t.equal(JSON.parse(controls.stdout.trim().split('\n').pop() as string), 'a\u009b2Kb\u007f', 'and still the same JSON');
  // What a toJSON answers, the service's own or its URL's, as JSON.stringify writes it in plain Node (found by the
  // new-user trial: a URL printed {}). The same module run in plain Node is the oracle.
  const { home, priced, protoKey } = (await import(pathToFileURL(fixture('misc', 'services', 'fetcher.js')).href)) as Record<string, () => unknown>;
  const plainJson = (value: unknown) => JSON.stringify(value, (_key, v: unknown) => (v instanceof Map ? Object.fromEntries(v) : v));
  for (const [name, fn] of [['home', home], ['priced', priced], ['protoKey', protoKey]] as const) {
    const result = await snapshot(['restore', moveToTarget(out), '--call', `fetcher.${name}`]);
    t.equal(result.code, 0, result.stderr);
    t.equal(result.stdout.trim().split('\n').pop(), plainJson(fn()), `--call fetcher.${name}: what JSON.stringify writes in plain Node`);
  }
  const cycle = await snapshot(['restore', moveToTarget(out), '--call', 'fetcher.rejectsCycle']);
  t.equal(cycle.code, 1);
  const spoofing = await snapshot(['restore', moveToTarget(out), '--call', 'fetcher.rejectsSpoofing']);
  t.equal(spoofing.code, 1);
  t.notMatch(spoofing.stderr, /[\x08\x85\x9b]/, 'no backspace, CSI or other C1 control of the message reaches the terminal');
  t.match(spoofing.stderr, /^snapshot: fetcher\.rejectsSpoofing\(\.\.\.\) threw Error: bad input\n {2}\\x08\\x08\\x08snapshot: all checks passed\n {2}\\x9b2Kok\\x85$/m, 'every line of it indented, its controls escaped');
  t.match(cycle.stderr, /^snapshot: fetcher\.rejectsCycle\(\.\.\.\) threw Error: outer\n(?:\s+at .*\n)*\s+\[cause\]: Error: inner\n\s+\[cause\]: \[Circular\]$/m, 'a cause cycle ends at the first cause met again');
  // A result that holds itself is the service's to return; only JSON cannot print it: a typed error that says so and what to do.
  const cyclic = await snapshot(['restore', moveToTarget(out), '--call', 'fetcher.cyclic']);
  t.equal(cyclic.code, 1);
  t.notMatch(cyclic.stderr, /unexpected error/, 'not an unexpected error of the CLI');
  t.match(cyclic.stderr, /^snapshot: NOT_PASSABLE: the result of fetcher\.cyclic cannot be printed as JSON: it is cyclic \(.*'parent'.*\)\. The value itself is fine .* call a function that returns something JSON can write/m);
  // A result larger than a pipe takes at once is printed whole before the process exits (it was cut at 64 KiB, exit 0).
  const large = await snapshot(['restore', moveToTarget(out), '--call', 'fetcher.large']);
  t.equal(large.code, 0, large.stderr);
  t.same(JSON.parse(large.stdout.trim().split('\n').pop() as string), { text: 'x'.repeat(1 << 20), end: true }, 'all of it on stdout');
  // A result that never settles, once nothing is left to run, fails (it exited 0 with nothing printed).
  for (const call of ['fetcher.never', 'fetcher.neverJSON']) {
    const run = await snapshot(['restore', moveToTarget(out), '--call', call]);
    t.equal(run.code, 1, `${call}: exit code 1`);
    t.equal(run.stdout.trim(), '', `${call}: nothing printed`);
    t.match(run.stderr, new RegExp(`^snapshot: NOT_QUIESCENT: --call ${call.replace('.', '\\.')}: its result never settled`, 'm'), call);
  }
});

t.test("a service's output cannot pass for the library's own lines: control characters are shown escaped, every line prefixed", async t => {
  const run = await snapshot(['build', 'build-modes.mjs', '--out', path.join(work, 'spoof')], { cwd: fixture('misc'), env: { MISC_MODE: 'spoof' } });
  t.equal(run.code, 0, run.stderr);
  t.equal(run.stdout, 'spoke\n');
  t.notMatch(run.stderr, /[\x08\x9b]/, 'no backspace or CSI reaches the terminal');
  t.match(run.stderr, /^\[spoofer\] (\\x08){12}built \/elsewhere/m);
  t.match(run.stderr, /^\[spoofer\] \\x9b2Ksnapshot: spoofed$/m);
  t.match(run.stderr, /^\[spoofer\] through a Console of its own$/m, 'a Console over the service\'s process.stdout writes there');
});

t.test('a service that cannot load says where and why', async t => {
  const browserish = await snapshot(['build', 'build-load.mjs', '--out', path.join(work, 'browserish')], { cwd: fixture('misc'), env: { MISC_SERVICE: 'browserish' } });
  t.equal(browserish.code, 1);
  t.match(browserish.stderr, /Recorded so far:\n\s+the logs as far as they got are kept in \S+browserish\.partial$/m, 'the partial recording is named, though no service finished loading');
  t.ok(fs.existsSync(path.join(`${path.join(work, 'browserish')}.partial`, 'browserish', 'replay.log')), 'and it is there');
  t.match(browserish.stderr, /SERVICE_LOAD_FAILED: service "browserish": \S*\/services\/browserish\.js threw while its modules were evaluated: TypeError: Cannot read properties of undefined \(reading 'location'\)\n\s+at .*browserish\.js:2:\d+\)?\n\s*"window" is a global services do not get/);
  const awaits = await snapshot(['build', 'build-load.mjs', '--out', path.join(work, 'awaits')], { cwd: fixture('misc'), env: { MISC_SERVICE: 'awaits' } });
  t.equal(awaits.code, 1);
  t.match(awaits.stderr, /SERVICE_LOAD_FAILED: service "awaits" does not load: \S*\/services\/awaits\.js:2: a top-level await \(const config = await Promise\.resolve.*\)\. Top-level await is not supported inside a service .*move the awaited work into an exported async function/s);
  t.notOk(fs.existsSync(path.join(work, 'awaits', 'manifest.json')), 'nothing was sealed');
  // Inside a call's arguments V8 says only "missing ) after argument list": the file, the line and the cause.
  const inside = await snapshot(['build', 'build-load.mjs', '--out', path.join(work, 'awaits-inside')], { cwd: fixture('misc'), env: { MISC_SERVICE: 'awaits-inside' } });
  t.equal(inside.code, 1);
  t.match(inside.stderr, /SERVICE_LOAD_FAILED: service "awaits-inside" does not load: \S*\/services\/awaits-inside\.js:4: a top-level await \(const config = JSON\.parse\(await readFile.*Top-level await is not supported inside a service/s);
});

t.test('a direct eval loads and runs as an indirect eval: it does not see the local variables of its caller', async t => {
  const evil = await snapshot(['build', 'build-evil.mjs', '--out', path.join(work, 'evil')], { cwd: fixture('misc') });
  t.equal(evil.code, 0, evil.stderr);
  // Node gives 1 (the local x). Under SES, an undeclared global reads as undefined (no ReferenceError).
  t.match(evil.stdout, /^value: undefined$/m);
});

t.test('an answer that cannot cross whole is a typed error or crosses without its cause, and the snapshot restores without divergence', async t => {
  const out = path.join(work, 'answers');
  const built = await snapshot(['build', 'build-answers.mjs', '--out', out], { cwd: fixture('misc') });
  t.equal(built.code, 0, built.stderr);
  const got = JSON.parse(built.stdout.trim().split('\n').pop() as string) as unknown[][];
  t.match(got[0], ['promiseInside', 'threw', 'NOT_PASSABLE', /^service "answers": result of promiseInside\(\): a promise cannot be passed inside a value/], 'the message names the call, not an internal id');
  t.same(got.slice(1), [
    ['promiseCause', ['p', false, null]],
    ['getterCause', ['g', false, null]],
    ['plainCause', ['c', true, { at: 1 }]],
    ['blobLikeBody', 'x/y'],
    ['getterFunction', 'threw', 'NOT_PASSABLE', 'service "answers": result of getterFunction(): the getter of its property "handler" returned a function, which cannot be copied (structuredClone refuses it too); make it a method or a data property'],
    ['sharedBuffer', 'threw', 'NOT_PASSABLE', 'service "answers": result of sharedBuffer(): a SharedArrayBuffer cannot be copied: services and the host share no memory. Copy its bytes first (new Uint8Array(shared).slice(), whose buffer is an ArrayBuffer)'],
    ['sharedView', 'threw', 'NOT_PASSABLE', 'service "answers": result of sharedView(): a Uint8Array over a SharedArrayBuffer cannot be copied: services and the host share no memory. Copy its bytes first (new Uint8Array(shared).slice(), whose buffer is an ArrayBuffer)'],
    ['sharedCopied', ['ArrayBuffer', 3, 3, 3, 3]],
  ]);
  const log = fs.readFileSync(path.join(out, 'answers', 'replay.log'));
  t.notOk(log.includes(Buffer.from(repo)), "no path of this library's install is in the log");
  const restored = await snapshot(['restore', moveToTarget(out), '--replay-only']);
  t.equal(restored.code, 0, `the snapshot restores (it diverged on the NOT_PASSABLE answer's stack): ${restored.stderr}`);
});
