// After restore the service is live on this host: its clock moves on, its
// randomness is fresh, pending timers fire, IO is real. (The build ran in a
// child process; this process only restores.)
import t from 'tap';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { LogReader } from '../replay-log/index.js';
import { restoreSnapshot, type RestoredSnapshot } from '../lib/index.js';
import { fixture, moveToTarget, projectFrom, snapshot, tempDir } from './helpers.js';

const work = tempDir('live');
const out = path.join(work, 'snapshot');
const stateFile = path.join(work, 'state.json');
let restored: RestoredSnapshot;
type Fn = (...args: unknown[]) => Promise<unknown>;
const kitchen = () => restored.services.get('kitchen')?.exports as Record<string, Fn>;

t.before(async () => {
  const built = await snapshot(['build', 'build.mjs', '--out', out], {
    cwd: fixture('kitchen'),
    env: { KITCHEN_ARM_LATE: '300', KITCHEN_STATE_FILE: stateFile },
  });
  if (built.code !== 0) throw new Error(built.stderr);
  restored = await restoreSnapshot({ dir: moveToTarget(out), print: () => {} });
});

/** The Math.random stream a seed in the log would produce (sfc32, as compartments/clock.ts). */
const predictedStream = (seed: Uint8Array, count: number): number[] => {
  const s = new Uint32Array(seed.buffer.slice(seed.byteOffset, seed.byteOffset + 16));
  const next = () => {
    const [a, b, c, d] = s;
    const r = (((a + b) | 0) + d) | 0;
    s[3] = (d + 1) | 0;
    s[0] = b ^ (b >>> 9);
    s[1] = (c + (c << 3)) | 0;
    s[2] = ((c << 21) | (c >>> 11)) + r;
    return r >>> 0;
  };
  for (let i = 0; i < 12; i += 1) next();
  // 52 bits a value, from two outputs (clock.ts, log format version 3).
  return Array.from({ length: count }, () => ((next() >>> 6) * 2 ** 26 + (next() >>> 6)) / 2 ** 52);
};

t.test('the restored state is the build-time state', async t => {
  t.same(await kitchen().describe().then(s => ({ ...(s as object), lateFiredAt: undefined })), { ...JSON.parse(fs.readFileSync(stateFile, 'utf8')), lateFiredAt: undefined });
});

t.test('time moves on and randomness is fresh after going live', async t => {
  const build = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  const probe = (await kitchen().probe()) as { now: number; random: number; uuid: string; bytes: number[] };
  t.ok(probe.now > build.doneAt, 'a later Date.now() is later than anything recorded');
  t.ok(Math.abs(probe.now - Date.now()) < 5_000, 'and it is this host\'s clock');

  const reader = LogReader.open(fs.readFileSync(path.join(out, 'kitchen', 'replay.log')), 'replay.log');
  const seedEntry = [...reader.entries()].map(e => e.entry).find(e => e.kind === 'seed');
  t.ok(seedEntry && seedEntry.kind === 'seed', 'the log holds the build-time seed');
  if (!seedEntry || seedEntry.kind !== 'seed') return;
  const stream = predictedStream(seedEntry.seed, 10_000);
  t.same(build.random, stream.slice(0, 3), 'the build-time draws are the seed\'s stream (the predictor is right)');
  const liveDraws = [probe.random, ...((await Promise.all([1, 2, 3].map(() => kitchen().probe()))) as Array<{ random: number }>).map(p => p.random)];
  for (const draw of liveDraws) t.notOk(stream.includes(draw), `live Math.random() ${draw} is not predictable from the log`);
  t.not(probe.uuid, build.uuid);
});

t.test('a timer pending at the end of the build fires once live', async t => {
  const before = (await kitchen().describe()) as { lateFiredAt?: number; doneAt: number };
  t.equal(before.lateFiredAt, undefined, 'not fired during replay');
  await new Promise(resolve => setTimeout(resolve, 600));
  const after = (await kitchen().describe()) as { lateFiredAt?: number; doneAt: number };
  t.type(after.lateFiredAt, 'number', 'fired after restore');
  t.ok((after.lateFiredAt ?? 0) > after.doneAt);
});

t.test('syscalls reach the real host once live', async t => {
  const server = http.createServer((_req, res) => res.end('live answer'));
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const file = path.join(work, 'live.txt');
  fs.writeFileSync(file, 'written after the build');
  const address = server.address() as { port: number };
  t.same(await kitchen().live(`http://127.0.0.1:${address.port}/`, file), { body: 'live answer', file: 'written after the build' });
});

t.test("a live call that misses a file under the build host's directory says why", async t => {
  const project = projectFrom('build-host-path');
  const built = await snapshot(['build', 'build.mjs', '--out', path.join(project, '..', 'snap')], { cwd: project });
  t.equal(built.code, 0, built.stderr);
  const target = moveToTarget(path.join(project, '..', 'snap'));
  // This host has no such directory: the build project is gone.
  fs.renameSync(project, `${project}-gone`);
  const run = await snapshot(['restore', target, '--call', 'svc.read']);
  t.equal(run.code, 1);
  t.match(run.stderr, /svc\.read\(\.\.\.\) threw Error: ENOENT: no such file or directory/);
  t.match(run.stderr, new RegExp(`hint: \\S+/project/data\\.txt is under \\S+/project/, where service "svc" was built; this host has no such directory\\..*import\\.meta\\.url or __dirname`));
  // With the directory there (the files shipped to the same path), the same call reads them.
  fs.renameSync(`${project}-gone`, project);
  const shipped = await snapshot(['restore', target, '--call', 'svc.read']);
  t.equal(shipped.code, 0, shipped.stderr);
  t.match(shipped.stdout, /"hello from the build host"/);
  t.notMatch(shipped.stderr, /hint:/);
});
