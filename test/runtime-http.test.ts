// Runtime declarations, `snapshot plan`, and HTTP serving of a restored
// fetch handler in one process (no NATS): the README's first command.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { readManifest } from '../lib/index.js';
import { fixture, moveToTarget, snapshot, tempDir } from './helpers.js';
import { startHost } from './hosts.js';

const work = tempDir('runtime-http');
const out = path.join(work, 'snapshot');

t.before(async () => {
  const built = await snapshot(['build', fixture('live', 'build.mjs'), '--out', out]);
  if (built.code !== 0) throw new Error(built.stderr);
});

t.test('declarations land in the manifest, with the app name of the build project', async t => {
  const manifest = readManifest(out);
  t.equal(manifest.app, 'live-fixture');
  t.same(manifest.services.db.runtime, { replicas: 2 });
  t.match(manifest.services.api.runtime, { http: { port: 18080 } });
  t.type(manifest.services.api.runtime?.httpAdapter, 'number');
});

t.test('snapshot plan writes a compose file: NATS with JetStream, one container per replica, declared ports', async t => {
  const deploy = path.join(work, 'deploy');
  const run = await snapshot(['plan', out, '--out', deploy]);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, /db: 2 replicas/);
  t.match(run.stdout, /api: 1 replica, HTTP on port 18080/);
  const compose = fs.readFileSync(path.join(deploy, 'compose.yaml'), 'utf8');
  t.match(compose, /command: \["-js", "-sd", "\/data"\]/);
  for (const container of ['db-1', 'db-2', 'api-1']) t.match(compose, new RegExp(`^  ${container}:$`, 'm'), `container ${container}`);
  t.notMatch(compose, /^  db-3:$/m);
  t.match(compose, /"restore", "nats:\/\/nats:4222\/live-fixture", "--service", "api"/);
  t.match(compose, /ports: \["18080:18080"\]/);
  t.equal(fs.readFileSync(path.join(deploy, 'plan.txt'), 'utf8'), run.stdout.slice(0, run.stdout.indexOf('\nwrote ')));
});

t.test('bad declarations fail the build with DECLARATION_INVALID saying what to fix', async t => {
  const cases: Array<[string, RegExp]> = [
    ['replicas.mjs', /DECLARATION_INVALID: runtime\.declare\(\): replicas takes an integer from 1 to 64 \(got 0\)/],
    ['unknown-field.mjs', /DECLARATION_INVALID: runtime\.declare\(\): unknown field "cpu"; known fields: http, replicas/],
    ['no-handler.mjs', /DECLARATION_INVALID: service "no-handler-service" declares http on port 8080 but exports no fetch handler/],
  ];
  for (const [script, message] of cases) {
    const dir = path.join(work, `bad-${script}`);
    const run = await snapshot(['build', fixture('live', 'bad', script), '--out', dir]);
    t.equal(run.code, 1, `${script} fails`);
    t.match(run.stderr, message, script);
    t.notOk(fs.existsSync(path.join(dir, 'manifest.json')), `${script}: no manifest sealed`);
  }
});

t.test('a restored fetch handler serves HTTP; SIGTERM lets the request in flight finish and exits 0', async t => {
  const target = moveToTarget(out);
  const host = await startHost(t, [target, '--port', 'api=0']);
  t.ok(host.httpUrl, host.output());
  const url = host.httpUrl as string;

  const row = await fetch(`${url}/rows?id=2`);
  t.equal(row.status, 200);
  t.same(await row.json(), { id: 2, title: 'two' }, 'the handler read db through its build-time reference');

  const missing = await fetch(`${url}/rows?id=9`);
  t.equal(missing.status, 404);
  t.same(await missing.json(), { error: 'RangeError', code: 'ENOROW' });

  const echo = await fetch(`${url}/echo`, { method: 'POST', body: 'hello body', headers: { 'x-in': 'header value' } });
  t.equal(echo.status, 201);
  t.equal(echo.headers.get('x-echo'), 'header value');
  t.equal(await echo.text(), 'POST hello body');

  const notFound = await fetch(`${url}/nowhere`);
  t.equal(notFound.status, 404);
  t.equal(await notFound.text(), 'not found\n');

  // A slow request is in flight when SIGTERM arrives: it still gets its answer.
  const slow = fetch(`${url}/slow?ms=400`).then(async r => ({ status: r.status, body: await r.json() }));
  await new Promise(resolve => setTimeout(resolve, 100));
  const code = host.stop('SIGTERM');
  t.same(await slow, { status: 200, body: { slept: 400 } }, 'the request in flight finished');
  t.equal(await code, 0, 'exit 0 after SIGTERM');
  await t.rejects(fetch(`${url}/rows?id=1`), 'no longer accepting');
});
