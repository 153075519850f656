// Snapshots through a JetStream object store: push, restore a host from
// nats://host:port/app alone, two apps on one server, a tampered store.
import t from 'tap';
import { connect } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import { snapshot } from './helpers.js';
import { startHost, liveApp, type LiveApp } from './hosts.js';
import { readManifest } from '../lib/index.js';

let app: LiveApp;
t.before(async () => {
  app = await liveApp(t, 'runtime-store');
});

t.test('push, then restore from the object store; two apps on one server never cross', async t => {
  const pushed = await snapshot(['push', app.out, '--nats', app.nats.url]);
  t.equal(pushed.code, 0, pushed.stderr);
  t.match(pushed.stdout, /pushed .* as app live-fixture: 5 objects stored/);
  const again = await snapshot(['push', app.out, '--nats', app.nats.url]);
  t.match(again.stdout, /1 objects stored .*, 4 already present/, 'content-addressed: unchanged files are not sent again');
  const other = await snapshot(['push', app.out, '--nats', app.nats.url, '--app', 'other-app']);
  t.equal(other.code, 0, other.stderr);

  // db runs in app live-fixture only, restored from the store (no directory on this "host").
  const db = await startHost(t, [`${app.nats.url}/live-fixture`, '--service', 'db']);
  const walk = await app.callApi('cursorWalk', [], [], `${app.nats.url}/live-fixture`);
  t.equal(walk.run.code, 0, walk.run.stderr);
  t.same(walk.value, { ids: [1, 2, 3], remaining: 0 }, 'both hosts restored from the object store');
  const isolated = await app.callApi('tryGet', [1], [], `${app.nats.url}/other-app`);
  t.match(isolated.value, { ok: false, code: 'SERVICE_UNAVAILABLE' }, 'app other-app does not reach app live-fixture\'s db');
  await db.stop();

  const missing = await snapshot(['restore', `${app.nats.url}/no-such-app`, '--service', 'db', '--replay-only']);
  t.not(missing.code, 0);
  const noApp = await snapshot(['restore', `${app.nats.url}/no-such-app`, '--service', 'db', '--call', 'db.get', '--args', '[1]']);
  t.match(noApp.stderr, /SNAPSHOT_INVALID: app "no-such-app" has no snapshot on this NATS server/);

  // A store changed behind our back is refused before anything is loaded.
  const manifest = readManifest(app.out);
  const nc = await connect({ servers: app.nats.url });
  try {
    const store = await new Objm(nc).open('msnap-other-app');
    await store.putBlob({ name: `sha256-${manifest.services.db.logSha256}` }, new TextEncoder().encode('not the log'));
  } finally {
    await nc.close();
  }
  const tampered = await snapshot(['restore', `${app.nats.url}/other-app`, '--service', 'db', '--call', 'db.get', '--args', '[1]']);
  t.equal(tampered.code, 1);
  t.match(tampered.stderr, /INTEGRITY_MISMATCH: the replay log of service "db" in msnap-other-app has sha256 [0-9a-f]{64}, the manifest says/);
});
