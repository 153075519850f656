// Replicas over NATS: two restores of db share its calls through a queue
// group; one killed mid-load (no call runs twice: CALL_INTERRUPTED for the
// calls it had started), one stopped with SIGTERM, then none left.
import t from 'tap';
import { startHost, liveApp, type LiveApp } from './hosts.js';

let app: LiveApp;
t.before(async () => {
  app = await liveApp(t, 'runtime-replicas');
});

t.test('replicas share calls; a replica killed mid-load; the only replica gone is SERVICE_UNAVAILABLE at once', async t => {
  const one = await startHost(t, [app.target, '--service', 'db', '--nats', app.nats.url]);
  const two = await startHost(t, [app.target, '--service', 'db', '--nats', app.nats.url]);
  const spread = await app.callApi('replicas', [24]);
  t.equal(spread.value, 2, 'both replicas of the queue group answered');

  // Load through the api's HTTP handler, eight requests at a time, each a
  // call of db.work that prints "ran <key>" on its host and takes 40 ms; one
  // replica is killed half-way, with calls running on it. A call runs at
  // most once: the calls it had not started go to the other replica, the
  // ones it had started fail with CALL_INTERRUPTED and are not run again.
  const api = await startHost(t, [app.target, '--service', 'api', '--nats', app.nats.url, '--port', 'api=0', '--call-timeout', '10000']);
  const url = api.httpUrl as string;
  const results: Array<{ key: string; i: number; status: number; ok: boolean; replica?: string; code?: string; afterKill: boolean }> = [];
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
      const key = `k${i}`;
      const response = await fetch(`${url}/work?key=${key}&ms=40`);
      const body = (await response.json()) as { ok: boolean; value?: string; code?: string };
      results.push({ key, i, status: response.status, ok: body.ok, replica: body.value, code: body.code, afterKill });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  t.equal(results.length, total);
  const runs = new Map<string, number>();
  for (const match of (one.output() + two.output()).matchAll(/\[db\] ran (k\d+)$/gm)) runs.set(match[1], (runs.get(match[1]) ?? 0) + 1);
  const twice = [...runs].filter(([, n]) => n > 1);
  t.same(twice, [], 'no call ran twice');
  const before = new Set(results.filter(r => !r.afterKill && r.replica).map(r => r.replica));
  t.equal(before.size, 2, 'both replicas took calls before the kill');
  const failed = results.filter(r => !r.ok);
  t.same(
    failed.filter(r => r.code !== 'CALL_INTERRUPTED' || r.status !== 503),
    [],
    'the only failures are calls the killed replica had taken: CALL_INTERRUPTED (503 from the HTTP handler)',
  );
  t.ok(failed.length <= 8, `at most the calls in flight at the killed replica failed (${failed.length} of ${total})`);
  t.same(
    results.filter(r => r.ok && runs.get(r.key) !== 1),
    [],
    'every answered call ran exactly once',
  );
  const lastHalf = results.sort((a, b) => a.i - b.i).slice(-60); // by the order they were sent
  t.equal(new Set(lastHalf.map(r => r.replica)).size, 1, 'later calls are all answered by the surviving replica');

  // A replica stopped with SIGTERM finishes what it took: no call lost.
  const three = await startHost(t, [app.target, '--service', 'db', '--nats', app.nats.url]);
  const slow = Promise.all(Array.from({ length: 6 }, () => fetch(`${url}/slow?ms=300`).then(r => r.status)));
  await new Promise(resolve => setTimeout(resolve, 100));
  t.equal(await two.stop('SIGTERM'), 0, 'the replica exits 0 on SIGTERM');
  t.same(await slow, [200, 200, 200, 200, 200, 200], 'calls in flight at a stopping replica are answered');
  // An object handed out by a replica lives and dies with it: calls on it then fail at once.
  t.equal((await fetch(`${url}/cursor/open`)).status, 200);
  const first = await fetch(`${url}/cursor/next`);
  t.match(await first.json(), { ok: true, value: { id: 1 } }, 'the cursor of the one replica left answers');
  await three.stop('SIGKILL');
  const orphan = await fetch(`${url}/cursor/next`);
  t.equal(orphan.status, 503);
  const failure = (await orphan.json()) as { code: string; message: string; ms: number };
  t.match(failure, { code: 'SERVICE_UNAVAILABLE', message: /the host that handed out this object is gone/ });
  t.ok(failure.ms < 1000, `a call on an object of a dead host fails in ${failure.ms.toFixed(1)} ms`);

  const gone = await app.callApi('tryGet', [1]);
  t.match(gone.value, { ok: false, code: 'SERVICE_UNAVAILABLE', name: 'SnapshotError[SERVICE_UNAVAILABLE]' });
  t.match((gone.value as { message: string }).message, /no replica of service "db" is running in app "live-fixture"/);
  t.ok((gone.value as { ms: number }).ms < 500, `SERVICE_UNAVAILABLE in ${(gone.value as { ms: number }).ms.toFixed(1)} ms, no waiting for a timeout`);
  const http = await fetch(`${url}/rows?id=1`);
  t.equal(http.status, 503, 'the HTTP handler sees it too');
  t.equal(await api.stop('SIGTERM'), 0);
});
