// The live runtime over NATS: each host its own `snapshot restore` process,
// joined through a real nats-server (JetStream on, temporary store) on a
// free loopback port. Snapshots come from a copy of only the snapshot
// directory, or from the object store.
import t from 'tap';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import { fixture, lastJson, moveToTarget, snapshot, tempDir, type Run } from './helpers.js';
import { startHost, startNats, type NatsServer } from './hosts.js';
import { readManifest } from '../lib/index.js';
import { NatsTransport } from '../lib/transport-nats.js';
import { Directory, type ExportRef } from '../membrane/index.js';

const work = tempDir('runtime-nats');
const out = path.join(work, 'snapshot');
let target: string;
let nats: NatsServer;

t.before(async () => {
  const built = await snapshot(['build', fixture('live', 'build.mjs'), '--out', out]);
  if (built.code !== 0) throw new Error(built.stderr);
  target = moveToTarget(out);
  nats = await startNats(t);
});

/** `snapshot restore <source> --service api --nats <url> --call api.<method>`: the caller host, its answer. */
const callApi = async (method: string, args: unknown[] = [], extra: string[] = [], source = target): Promise<{ run: Run; value: unknown }> => {
  const run = await snapshot(['restore', source, '--service', 'api', '--nats', nats.url, ...extra, '--call', `api.${method}`, '--args', JSON.stringify(args)], { timeoutMs: 60_000 });
  return { run, value: run.code === 0 ? lastJson(run) : undefined };
};

t.test('calls cross hosts: a cursor handed across stays a reference, callbacks come back, errors keep their type', async t => {
  const db = await startHost(t, [target, '--service', 'db', '--nats', nats.url]);
  t.match(db.output(), /ready: 1 service \(db\) restored .* joined app live-fixture over NATS/);

  const walk = await callApi('cursorWalk');
  t.equal(walk.run.code, 0, walk.run.stderr);
  t.same(walk.value, { ids: [1, 2, 3], remaining: 0 }, 'the cursor lives on db\'s host and is called from api\'s');

  const visit = await callApi('visit');
  t.same(visit.value, { count: 3, seen: ['one', 'two', 'three'] }, 'db called back an object of api\'s host');

  const notified = await callApi('notify', ['live']);
  t.same(notified.value, [1], 'db called the callback api gave it at build time, on api\'s host');

  const missing = await callApi('tryGet', [9]);
  t.match(missing.value, { ok: false, name: 'RangeError', code: 'ENOROW', message: 'no row 9', range: true }, 'a thrown RangeError keeps name, code and message');

  const local = await snapshot(['restore', target, '--call', 'api.roundTrip']);
  t.equal(local.code, 0, local.stderr);
  const remote = await callApi('roundTrip');
  t.same(remote.value, lastJson(local), 'values cross hosts with the same copy semantics as in one process');
  t.match(remote.value, { big: true, negZero: true, date: 86400000, sym: true, fresh: true });
  await db.stop();
});

t.test('replicas share calls; a replica killed mid-load; the only replica gone is SERVICE_UNAVAILABLE at once', async t => {
  const one = await startHost(t, [target, '--service', 'db', '--nats', nats.url]);
  const two = await startHost(t, [target, '--service', 'db', '--nats', nats.url]);
  const spread = await callApi('replicas', [24]);
  t.equal(spread.value, 2, 'both replicas of the queue group answered');

  // Load through the api's HTTP handler, four requests at a time; kill one replica half-way.
  const api = await startHost(t, [target, '--service', 'api', '--nats', nats.url, '--port', 'api=0', '--call-timeout', '1500']);
  const url = api.httpUrl as string;
  const results: Array<{ i: number; status: number; replica?: string; afterKill: boolean }> = [];
  let killed = false;
  let next = 0;
  const total = 160;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      if (i === total / 2 && !killed) {
        killed = true;
        await one.stop('SIGKILL');
      }
      const afterKill = killed;
      const response = await fetch(`${url}/replica`);
      const body = response.status === 200 ? ((await response.json()) as { replica: string }) : (await response.text(), undefined);
      results.push({ i, status: response.status, replica: body?.replica, afterKill });
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  t.equal(results.length, total);
  const before = new Set(results.filter(r => !r.afterKill && r.replica).map(r => r.replica));
  t.equal(before.size, 2, 'both replicas took calls before the kill');
  const failed = results.filter(r => r.status !== 200);
  t.ok(failed.length <= 4, `only calls already taken by the killed replica can fail (failed: ${failed.length})`);
  t.ok(failed.every(r => r.status === 503), 'a lost call is a typed 503 (CALL_TIMEOUT), not a hang');
  const lastHalf = results.sort((a, b) => a.i - b.i).slice(-60); // by the order they were sent
  t.ok(lastHalf.every(r => r.status === 200), 'every later call is answered by the surviving replica');
  t.equal(new Set(lastHalf.map(r => r.replica)).size, 1, 'by one replica');

  // A replica stopped with SIGTERM finishes what it took: no call lost.
  const three = await startHost(t, [target, '--service', 'db', '--nats', nats.url]);
  const slow = Promise.all(Array.from({ length: 6 }, () => fetch(`${url}/slow?ms=300`).then(r => r.status)));
  await new Promise(resolve => setTimeout(resolve, 100));
  t.equal(await two.stop('SIGTERM'), 0, 'the replica exits 0 on SIGTERM');
  t.same(await slow, [200, 200, 200, 200, 200, 200], 'calls in flight at a stopping replica are answered');
  await three.stop('SIGTERM');

  const gone = await callApi('tryGet', [1]);
  t.match(gone.value, { ok: false, code: 'SERVICE_UNAVAILABLE', name: 'SnapshotError[SERVICE_UNAVAILABLE]' });
  t.match((gone.value as { message: string }).message, /no replica of service "db" is running in app "live-fixture"/);
  t.ok((gone.value as { ms: number }).ms < 500, `SERVICE_UNAVAILABLE in ${(gone.value as { ms: number }).ms.toFixed(1)} ms, no waiting for a timeout`);
  const http = await fetch(`${url}/rows?id=1`);
  t.equal(http.status, 503, 'the HTTP handler sees it too');
  t.equal(await api.stop('SIGTERM'), 0);
});

t.test('a call with no reply within --call-timeout fails with CALL_TIMEOUT', async t => {
  const db = await startHost(t, [target, '--service', 'db', '--nats', nats.url]);
  const slow = await callApi('trySlow', [3000], ['--call-timeout', '300']);
  t.match(slow.value, { ok: false, code: 'CALL_TIMEOUT' });
  t.match((slow.value as { message: string }).message, /had no reply within 300 ms \(raise the limit with --call-timeout <ms>\)/);
  const ms = (slow.value as { ms: number }).ms;
  t.ok(ms >= 290 && ms < 2000, `failed after ${ms.toFixed(0)} ms`);
  const quick = await callApi('trySlow', [50], ['--call-timeout', '2000']);
  t.same((quick.value as { value: number }).value, 50, 'a call within the limit answers');

  // A caller host shutting down cancels the calls it is still waiting on.
  const slowRef = readManifest(target).services.api.references.find(r => r.service === 'db' && r.iface === 'function slow');
  t.ok(slowRef, 'api holds db.slow');
  const transport = await NatsTransport.connect({ servers: nats.url, app: 'live-fixture' });
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

t.test('push, then restore from the object store; two apps on one server never cross', async t => {
  const pushed = await snapshot(['push', out, '--nats', nats.url]);
  t.equal(pushed.code, 0, pushed.stderr);
  t.match(pushed.stdout, /pushed .* as app live-fixture: 5 objects stored/);
  const again = await snapshot(['push', out, '--nats', nats.url]);
  t.match(again.stdout, /1 objects stored .*, 4 already present/, 'content-addressed: unchanged files are not sent again');
  const other = await snapshot(['push', out, '--nats', nats.url, '--app', 'other-app']);
  t.equal(other.code, 0, other.stderr);

  // db runs in app live-fixture only, restored from the store (no directory on this "host").
  const db = await startHost(t, [`${nats.url}/live-fixture`, '--service', 'db']);
  const walk = await callApi('cursorWalk', [], [], `${nats.url}/live-fixture`);
  t.equal(walk.run.code, 0, walk.run.stderr);
  t.same(walk.value, { ids: [1, 2, 3], remaining: 0 }, 'both hosts restored from the object store');
  const isolated = await callApi('tryGet', [1], [], `${nats.url}/other-app`);
  t.match(isolated.value, { ok: false, code: 'SERVICE_UNAVAILABLE' }, 'app other-app does not reach app live-fixture\'s db');
  await db.stop();

  const missing = await snapshot(['restore', `${nats.url}/no-such-app`, '--service', 'db', '--replay-only']);
  t.not(missing.code, 0);
  const noApp = await snapshot(['restore', `${nats.url}/no-such-app`, '--service', 'db', '--call', 'db.get', '--args', '[1]']);
  t.match(noApp.stderr, /SNAPSHOT_INVALID: app "no-such-app" has no snapshot on this NATS server/);

  // A store changed behind our back is refused before anything is loaded.
  const manifest = readManifest(out);
  const nc = await connect({ servers: nats.url });
  try {
    const store = await new Objm(nc).open('msnap-other-app');
    await store.putBlob({ name: `sha256-${manifest.services.db.logSha256}` }, new TextEncoder().encode('not the log'));
  } finally {
    await nc.close();
  }
  const tampered = await snapshot(['restore', `${nats.url}/other-app`, '--service', 'db', '--call', 'db.get', '--args', '[1]']);
  t.equal(tampered.code, 1);
  t.match(tampered.stderr, /INTEGRITY_MISMATCH: the replay log of service "db" in msnap-other-app has sha256 [0-9a-f]{64}, the manifest says/);
});
