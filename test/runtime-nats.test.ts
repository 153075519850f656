// The live runtime over NATS, between hosts: each host its own `snapshot
// restore` process, joined through a real nats-server (JetStream on,
// temporary store) on a free loopback port, restoring from a copy of only
// the snapshot directory.
import t from 'tap';
import { lastJson, snapshot } from './helpers.js';
import { startHost, liveApp, type LiveApp } from './hosts.js';
import { readManifest } from '../lib/index.js';
import { NatsTransport } from '../lib/transport-nats.js';
import { Directory, type ExportRef } from '../membrane/index.js';

let app: LiveApp;
t.before(async () => {
  app = await liveApp(t, 'runtime-nats');
});

t.test('calls cross hosts: a cursor handed across stays a reference, callbacks come back, errors keep their type', async t => {
  const db = await startHost(t, [app.target, '--service', 'db', '--nats', app.nats.url]);
  t.match(db.output(), /ready: 1 service \(db\) restored .* joined app live-fixture over NATS/);

  const { run, value } = await app.callApi('crossChecks');
  t.equal(run.code, 0, run.stderr);
  const checks = value as Record<string, unknown>;
  t.same(checks.walk, { ids: [1, 2, 3], remaining: 0 }, 'the cursor lives on db\'s host and is called from api\'s');
  t.same(checks.visit, { count: 3, seen: ['one', 'two', 'three'] }, 'db called back an object of api\'s host');
  t.same(checks.notified, [1], 'db called the callback api gave it at build time, on api\'s host');
  t.match(checks.missing, { ok: false, name: 'RangeError', code: 'ENOROW', message: 'no row 9', range: true }, 'a thrown RangeError keeps name, code and message');

  const local = await snapshot(['restore', app.target, '--call', 'api.roundTrip']);
  t.equal(local.code, 0, local.stderr);
  t.same(checks.roundTrip, lastJson(local), 'values cross hosts with the same copy semantics as in one process');
  t.match(checks.roundTrip, { big: true, negZero: true, date: 86400000, sym: true, fresh: true, twiceSameObject: true, cycle: true, holes: true, lone: true });
  await db.stop();
});


t.test('a call with no reply within --call-timeout fails with CALL_TIMEOUT', async t => {
  const db = await startHost(t, [app.target, '--service', 'db', '--nats', app.nats.url]);
  const { run, value } = await app.callApi('timeouts', [3000, 50], ['--call-timeout', '300']);
  t.equal(run.code, 0, run.stderr);
  const { slow, quick } = value as { slow: { ok: boolean; code: string; message: string; ms: number }; quick: { value: number } };
  t.match(slow, { ok: false, code: 'CALL_TIMEOUT' });
  t.match(slow.message, /had no reply within 300 ms \(raise the limit with --call-timeout <ms>\)/);
  t.ok(slow.ms >= 290 && slow.ms < 2000, `failed after ${slow.ms.toFixed(0)} ms`);
  t.same(quick.value, 50, 'a call within the limit answers');

  // A caller host shutting down cancels the calls it is still waiting on.
  const slowRef = readManifest(app.target).services.api.references.find(r => r.service === 'db' && r.iface === 'function slow');
  t.ok(slowRef, 'api holds db.slow');
  const transport = await NatsTransport.connect({ servers: app.nats.url, app: 'live-fixture' });
  transport.attach(new Directory());
  const slowCall = (transport.connect(slowRef as ExportRef) as (ms: number) => Promise<number>)(5000);
  const outcome = slowCall.then(
    () => 'answered',
    (error: { code?: string }) => error.code,
  );
  await new Promise(resolve => setTimeout(resolve, 100));
  const closing = transport.close();
  t.equal(await outcome, 'CALL_CANCELLED', 'the waiting call is cancelled, not left hanging');
  await closing;
  await db.stop();
});
