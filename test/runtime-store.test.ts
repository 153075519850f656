// Snapshots through a JetStream object store: push, restore a host from
// nats://host:port/app alone, two apps on one server, a tampered store.
import t from 'tap';
import { connect } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { fixture, keyPair, lastJson, snapshot, tempDir } from './helpers.js';
import { startHost, liveApp, type LiveApp } from './hosts.js';
import { readManifest } from '../lib/index.js';
import { pullSnapshot } from '../lib/push.js';

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
  t.equal(missing.code, 1);
  t.match(missing.stderr, /SNAPSHOT_INVALID: app "no-such-app" has no snapshot on this NATS server/);
  const replayed = await snapshot(['restore', `${app.nats.url}/live-fixture`, '--service', 'db', '--replay-only']);
  t.equal(replayed.code, 0, replayed.stderr);
  t.match(replayed.stdout, /^ok: replayed 19 events in/, '--replay-only restores from the store too');
  const noApp = await snapshot(['restore', `${app.nats.url}/no-such-app`, '--service', 'db', '--call', 'db.get', '--args', '[1]']);
  t.match(noApp.stderr, /SNAPSHOT_INVALID: app "no-such-app" has no snapshot on this NATS server/);

  // A name that is no service of the app (Object.prototype's own included) is a usage error.
  for (const name of ['__proto__', 'toString', 'nope']) {
    const wrong = await snapshot(['restore', `${app.nats.url}/other-app`, '--service', name, '--replay-only']);
    t.equal(wrong.code, 2, 'a usage error');
    t.match(wrong.stderr, new RegExp(`^snapshot: USAGE: app "other-app" has no service "${name}"; it has: `), `--service ${name}`);
  }

  // A store changed behind our back is refused before anything is loaded.
  const manifest = readManifest(app.out);
  const logName = `sha256-${manifest.services.db.logSha256}`;
  const restoreDb = () => snapshot(['restore', `${app.nats.url}/other-app`, '--service', 'db', '--call', 'db.get', '--args', '[1]']);
  const nc = await connect({ servers: app.nats.url });
  t.teardown(() => nc.close());
  const store = await new Objm(nc).open('msnap-other-app');
  const log = (await store.getBlob(logName))!;
  const flipped = Uint8Array.from(log);
  flipped[flipped.length - 1] ^= 1;
  await store.putBlob({ name: logName }, flipped);
  const tampered = await restoreDb();
  t.equal(tampered.code, 1);
  t.match(tampered.stderr, /INTEGRITY_MISMATCH: the replay log of service "db" in msnap-other-app has sha256 [0-9a-f]{64}, the manifest says/);

  // An object larger than the manifest says is refused from its metadata, before its bytes are fetched.
  await store.putBlob({ name: logName }, new Uint8Array(log.byteLength + 4 * 1024 * 1024));
  const larger = await restoreDb();
  t.equal(larger.code, 1);
  t.match(larger.stderr, new RegExp(`^snapshot: SNAPSHOT_INVALID: the replay log of service "db" \\(${logName}\\) in msnap-other-app has ${log.byteLength + 4 * 1024 * 1024} bytes where the manifest gives ${log.byteLength}: refused`));

  // A link is refused (the store's reader follows links to other buckets, and round a loop forever).
  await store.delete(logName);
  const archiveName = `sha256-${manifest.services.db.archiveSha256}`;
  await store.link(logName, (await store.info(archiveName))!);
  const linked = await restoreDb();
  t.equal(linked.code, 1);
  t.match(linked.stderr, new RegExp(`^snapshot: SNAPSHOT_INVALID: the replay log of service "db" \\(${logName}\\) in msnap-other-app is a link to another object: refused`));

  // Metadata the store cannot follow (an unknown digest), chunks that do not match the digest, and
  // chunks that never come: typed errors, and no hang.
  const metaOf = async () => {
    const raw = (await (store as unknown as { rawInfo(n: string): Promise<Record<string, unknown>> }).rawInfo(logName)) as Record<string, unknown>;
    delete raw.revision;
    return raw;
  };
  const publishMeta = (raw: Record<string, unknown>) =>
    (store as unknown as { js: { publish(subject: string, data: string | Uint8Array): Promise<unknown> }; _metaSubject(n: string): string }).js.publish(
      (store as unknown as { _metaSubject(n: string): string })._metaSubject(logName),
      JSON.stringify(raw),
    );
  await store.delete(logName);
  await store.putBlob({ name: logName }, log);
  const good = await metaOf();
  await publishMeta({ ...good, digest: 'MD5=abc' });
  const unknownDigest = await restoreDb();
  t.equal(unknownDigest.code, 1);
  t.match(unknownDigest.stderr, /^snapshot: SNAPSHOT_INVALID: the replay log of service "db" \(sha256-[0-9a-f]+\) in msnap-other-app cannot be read \(unknown digest type/);
  const js = (store as unknown as { js: { publish(subject: string, data: Uint8Array): Promise<unknown> } }).js;
  await js.publish(`$O.msnap-other-app.C.WRONGCHUNKS00000000000`, new Uint8Array(log.byteLength).fill(0x20));
  await publishMeta({ ...good, nuid: 'WRONGCHUNKS00000000000' });
  const wrongChunks = await restoreDb();
  t.equal(wrongChunks.code, 1);
  t.match(wrongChunks.stderr, /^snapshot: INTEGRITY_MISMATCH: the replay log of service "db" \(sha256-[0-9a-f]+\) in msnap-other-app does not match its digest/);
  await publishMeta({ ...good, nuid: 'NOCHUNKSEVER0000000000' });
  const started = Date.now();
  const stalled = await pullSnapshot(nc, 'other-app', { services: ['db'], idleMs: 1500 }).then(
    () => undefined,
    (error: unknown) => error,
  );
  t.match(stalled, { code: 'SNAPSHOT_INVALID', message: /the replay log of service "db" .* made no progress for 1500 ms: refused/ }, 'chunks that never come: refused after idleMs');
  t.ok(Date.now() - started < 20_000, 'without waiting for the store');

  // Put right again, it restores.
  await store.delete(logName);
  await store.putBlob({ name: logName }, log);
  const mended = await restoreDb();
  t.equal(mended.code, 0, mended.stderr);
});

// The object store is untrusted input, as a copied directory is: with
// --trust, restore from nats://host:port/app checks the manifest's
// signature on the bytes fetched, then every hash, with the same typed
// errors as `restore <dir> --trust`.
t.test('a signed snapshot from the object store is checked as a signed directory is', async t => {
  const work = tempDir('store-signing');
  const signer = keyPair(work, 'signer');
  const stranger = keyPair(work, 'stranger');
  const signed = path.join(work, 'snapshot');
  const built = await snapshot(['build', fixture('live', 'build.mjs'), '--out', signed, '--sign', signer.priv]);
  t.equal(built.code, 0, built.stderr);
  const pushed = await snapshot(['push', signed, '--nats', app.nats.url, '--app', 'signed-app']);
  t.equal(pushed.code, 0, pushed.stderr);
  t.match(pushed.stdout, /pushed .* as app signed-app: 6 objects stored/, 'the manifest and its signature are stored');

  const source = `${app.nats.url}/signed-app`;
  const getOne = (...extra: string[]) => snapshot(['restore', source, '--service', 'db', ...extra, '--call', 'db.get', '--args', '[1]']);
  const trusted = await getOne('--trust', signer.pub);
  t.equal(trusted.code, 0, trusted.stderr);
  t.same(lastJson(trusted), { id: 1, title: 'one' }, 'a signed snapshot restores from the store with the signer\'s key');

  const verified = await snapshot(['verify', source, '--trust', signer.pub]);
  t.equal(verified.code, 0, verified.stdout + verified.stderr);
  t.match(verified.stdout, /^ok {4}db: \d+ events replayed/m, 'verify reads the store, signature checked');
  const strangeReplay = await snapshot(['restore', source, '--replay-only', '--trust', stranger.pub]);
  t.equal(strangeReplay.code, 1);
  t.match(strangeReplay.stderr, /SIGNATURE_INVALID: the signature of nats:\/\/.* is by key/, '--replay-only checks the signature as restore does');

  const strange = await getOne('--trust', stranger.pub);
  t.equal(strange.code, 1);
  t.match(strange.stderr, new RegExp(`^snapshot: SIGNATURE_INVALID: the signature of ${source} is by key sha256:[0-9a-f]{64}, which is not among the trusted keys`));

  const nc = await connect({ servers: app.nats.url });
  const store = await new Objm(nc).open('msnap-signed-app');
  t.teardown(() => nc.close());
  const original = (await store.getBlob('manifest.json'))!;
  const manifest = JSON.parse(new TextDecoder().decode(original));

  // A log object changed behind the manifest's back: the signature holds, the hash does not.
  const log = (await store.getBlob(`sha256-${manifest.services.db.logSha256}`))!;
  const changed = Uint8Array.from(log);
  changed[0] ^= 1;
  await store.putBlob({ name: `sha256-${manifest.services.db.logSha256}` }, changed);
  const changedLog = await getOne('--trust', signer.pub);
  t.equal(changedLog.code, 1);
  t.match(changedLog.stderr, /^snapshot: INTEGRITY_MISMATCH: the replay log of service "db" in msnap-signed-app has sha256 [0-9a-f]{64}, the manifest says/);
  await store.putBlob({ name: `sha256-${manifest.services.db.logSha256}` }, log);

  // An attacker stores another log and rewrites the manifest's hash to match: the signature no longer does.
  const forged = new TextEncoder().encode('a log of the attacker');
  const forgedSha = createHash('sha256').update(forged).digest('hex');
  await store.putBlob({ name: `sha256-${forgedSha}` }, forged);
  manifest.services.db.logSha256 = forgedSha;
  manifest.services.db.logBytes = forged.byteLength;
  await store.putBlob({ name: 'manifest.json' }, new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`));
  const rewritten = await getOne('--trust', signer.pub);
  t.equal(rewritten.code, 1);
  t.match(rewritten.stderr, new RegExp(`^snapshot: SIGNATURE_INVALID: the signature of ${source} does not match its manifest: manifest.json \\(or manifest.sig\\) was changed after signing; nothing was loaded`));
  t.notMatch(rewritten.stderr, /LOG_CORRUPT|INTEGRITY/, 'refused before the forged log is fetched');

  // An unsigned push over a signed one leaves no stale signature behind.
  await store.putBlob({ name: 'manifest.json' }, original);
  t.equal((await getOne('--trust', signer.pub)).code, 0, 'the original manifest verifies again');
  const unsigned = await snapshot(['push', app.out, '--nats', app.nats.url, '--app', 'signed-app']);
  t.equal(unsigned.code, 0, unsigned.stderr);
  const missing = await getOne('--trust', signer.pub);
  t.equal(missing.code, 1);
  t.match(missing.stderr, new RegExp(`^snapshot: SIGNATURE_MISSING: ${source} is not signed \\(no manifest.sig\\), and trusted keys were given: refusing to restore it`));
  const untrusting = await getOne();
  t.equal(untrusting.code, 0, 'without --trust an unsigned snapshot restores, as a directory does');
});
