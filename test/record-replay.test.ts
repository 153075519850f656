// Record a service that uses every recorded builtin, restore it elsewhere in
// another process, and get exactly the build-time state back.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { LogReader } from '../replay-log/index.js';
import { fixture, lastJson, moveToTarget, snapshot, tempDir } from './helpers.js';

const work = tempDir('kitchen');
const out = path.join(work, 'snapshot');
const stateFile = path.join(work, 'build-state.json');
// KITCHEN_SECRET is a secret by the default patterns (*_SECRET*): the build
// seals it, and every restore and verify below needs the seal key.
process.env.SNAPSHOT_SEAL_KEY = randomBytes(32).toString('base64');

t.before(async () => {
  const built = await snapshot(['build', 'build.mjs', '--out', out], {
    cwd: fixture('kitchen'),
    env: { KITCHEN_SECRET: 's3cret', KITCHEN_STATE_FILE: stateFile, TZ: 'America/New_York', LANG: 'en_US.UTF-8' },
  });
  if (built.code !== 0) throw new Error(`build failed: ${built.stderr}`);
});

t.test('build writes the snapshot layout and prints the service console', async t => {
  t.ok(fs.existsSync(path.join(out, 'manifest.json')));
  t.ok(fs.existsSync(path.join(out, 'kitchen', 'archive.zip')));
  t.ok(fs.existsSync(path.join(out, 'kitchen', 'replay.log')));
  const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
  t.equal(manifest.format, 'membrane-snapshot');
  t.equal(manifest.version, 1);
  t.match(manifest.services.kitchen, { name: 'kitchen', archive: 'kitchen/archive.zip', log: 'kitchen/replay.log', archiveSha256: /^[0-9a-f]{64}$/, logSha256: /^[0-9a-f]{64}$/ });
  t.ok(manifest.services.kitchen.events > 40, 'many events recorded');
});

t.test('restore in a directory with no sources, no node_modules and no network returns the build-time state', async t => {
  const target = moveToTarget(out);
  const cwd = path.dirname(target);
  t.same(fs.readdirSync(cwd), ['snapshot'], 'only the snapshot travelled');
  // Another time zone and locale on the target: local-time output must not change.
  const restored = await snapshot(['restore', 'snapshot', '--call', 'kitchen.describe'], { cwd, env: { TZ: 'Asia/Tokyo', LANG: 'de_DE.UTF-8' } });
  t.equal(restored.code, 0, restored.stderr);
  const buildState = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  const state = lastJson(restored) as Record<string, unknown>;
  t.same(state, buildState, 'exactly the build-time state');
  // Spot checks that each builtin really was exercised at build time.
  t.match(state, {
    secret: 's3cret',
    localIsUtc: true,
    dateString: /GMT\+0000 \(Coordinated Universal Time\)$/,
    forecast: { summary: 'sunny', temp: 21 },
    status: 200,
    header: 'yes',
    echo: 'echo:POST:1:ping',
    fileSync: 'hello from a file\n',
    fileCallback: 'hello from a file\n',
    filePromise: 'hello from a file\n',
    isFile: true,
    exists: [true, false],
    missing: 'ENOENT',
    fdRead: 'hello',
    ticks: 3,
    joined: 'a/c',
    web: { url: 'http://x.test/a?b=1', search: '2', encoded: 3, decoded: 'hi', b64: 'aGk=', unb64: 'hi', clone: { a: [1, 2] }, abort: 'boolean', buffer: 'YnVm' },
    weakRef: [true, true, false],
  });
  t.notOk('cancelledFired' in state, 'a cleared timer never fired');
  t.notOk('cleanedUp' in state, "a FinalizationRegistry's cleanup never runs");
  t.match(state.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.same((state.events as string[]).slice(0, 3), ['ping:1', 'microtask', 'nextTick']);
  t.same([...(state.events as string[]).slice(3)].sort(), ['fast', 'file', 'slow:slow1', 'timer'], 'concurrent settlements replayed in build order');
  t.notMatch(restored.stderr, /kitchen ready/, 'console is silent on replay');
});

t.test('replay is silent, and the build printed the service console', async t => {
  const rebuilt = await snapshot(['build', 'build.mjs', '--out', path.join(work, 'again')], { cwd: fixture('kitchen') });
  t.equal(rebuilt.code, 0, rebuilt.stderr);
  t.match(rebuilt.stderr, /\[kitchen\] kitchen ready: sunny/);
  // As plain Node prints console.assert(false, 'kitchen %s at %d', 'checked', 2).
  t.match(rebuilt.stderr, /\[kitchen\] warn: Assertion failed: kitchen checked at 2\n/, "printed as a warning, as Node prints it");
});

t.test('the log holds every kind of entry the service produced', async t => {
  const reader = LogReader.open(fs.readFileSync(path.join(out, 'kitchen', 'replay.log')), 'replay.log');
  const kinds = new Set<string>();
  const ops = new Set<string>();
  for (const { entry } of reader.entries()) {
    kinds.add(entry.kind);
    if (entry.kind === 'sys') ops.add(entry.op);
  }
  t.same([...kinds].sort(), ['call', 'now', 'perf', 'random', 'ret', 'seed', 'settle', 'start', 'sys', 'timer']);
  for (const op of ['fetch', 'fs.readFileSync', 'fs.promises.readFile', 'fs.statSync', 'fs.existsSync', 'fs.openSync', 'fs.readSync', 'fs.closeSync', 'env.get', 'timer.set', 'timer.clear', 'console.log', 'os.hostname', 'process.platform']) {
    t.ok(ops.has(op), `recorded ${op}`);
  }
});

t.test('golden log shape: a small service records exactly this sequence', async t => {
  const dir = path.join(work, 'counter');
  const built = await snapshot(['build', 'build-counter.mjs', '--out', dir], { cwd: fixture('misc') });
  t.equal(built.code, 0, built.stderr);
  const reader = LogReader.open(fs.readFileSync(path.join(dir, 'counter', 'replay.log')), 'replay.log');
  const shape = [...reader.entries()].map(({ entry }) => (entry.kind === 'sys' ? `sys:${entry.op}` : entry.kind === 'call' ? `call:${String(entry.method)}` : entry.kind));
  t.same(shape, [
    'start', 'now', 'ret',
    'call:null', 'sys:console.log', 'seed', 'now', 'ret',
    'call:null', 'sys:console.log', 'now', 'ret',
    'call:null', 'sys:console.log', 'now', 'ret',
  ]);
  const restored = await snapshot(['restore', moveToTarget(dir), '--call', 'counter.bump']);
  t.equal(restored.code, 0, restored.stderr);
  t.match(lastJson(restored), { count: 4 }, 'the restored service continues from the build-time state');
});

t.test('inspect and verify', async t => {
  const inspected = await snapshot(['inspect', path.join(out, 'kitchen', 'replay.log')]);
  t.equal(inspected.code, 0);
  t.match(inspected.stdout, /service kitchen, format v3/);
  t.match(inspected.stdout, /deliver start \(module evaluation\)/);
  t.match(inspected.stdout, /fetch\(\{url: "http:\/\/127\.0\.0\.1:\d+\/forecast"/);
  t.match(inspected.stdout, /totals by kind:/);
  const dir = await snapshot(['inspect', out]);
  t.match(dir.stdout, /kitchen\n\s+entry\s+file:\/\/.*kitchen\.js/);
  t.match(dir.stdout, /archive\s+kitchen\/archive\.zip\s+[\d.]+ KiB/);
  const verified = await snapshot(['verify', moveToTarget(out)]);
  t.equal(verified.code, 0, verified.stdout + verified.stderr);
  t.match(verified.stdout, /^ok\s+kitchen: \d+ events replayed/m);
});
