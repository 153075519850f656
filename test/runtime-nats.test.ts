// The live runtime over NATS, between hosts: each host its own `snapshot
// restore` process, joined through a real nats-server (JetStream on,
// temporary store) on a free loopback port, restoring from a copy of only
// the snapshot directory.
import t from 'tap';
import { lastJson, snapshot } from './helpers.js';
import { startHost, startNats, liveApp, type LiveApp } from './hosts.js';
import { readManifest } from '../lib/index.js';
import { connect, createInbox } from '@nats-io/transport-node';
import { NatsTransport, serviceSubject } from '../lib/transport-nats.js';
import { RemoteRef } from '../lib/transport-codec.js';
import { Slot, Tagged, isSnapshotError, packr } from '../replay-log/index.js';
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
  t.match(checks.roundTrip, { big: true, negZero: true, date: 86400000, sym: true, fresh: true, twiceSameObject: true, argsShared: true, cycle: true, holes: true, lone: true, loneKey: true, errorKey: true, selfError: true });
  await db.stop();
});


/** References for host values that hold none (the codec is asked for none). */
const noRefs = {
  toRef: () => {
    throw new Error('no reference expected');
  },
  isRef: () => false,
  fromRef: () => ({}),
};

t.test('a reply of host values decodes to the same graph: an error whose own property is itself, odd keys', async t => {
  const { encodeReply, decodeReply } = await import('../lib/transport-codec.js');
  const error = Object.assign(new RangeError('self'), { code: 'E_SELF', 'k\uDC00': 1 });
  (error as unknown as { me: unknown }).me = error;
  const reply = decodeReply(encodeReply(false, { error, list: [error] }, noRefs), noRefs) as { ok: boolean; value: { error: Error & { me: unknown; code: string }; list: unknown[] } };
  const back = reply.value.error;
  t.ok(back instanceof RangeError);
  t.equal(back.me, back, 'the property that was the error is the revived error');
  t.equal(reply.value.list[0], back, 'and so is a later reference to it');
  t.same([back.code, (back as unknown as Record<string, unknown>)['k\uDC00']], ['E_SELF', 1]);
});

t.test("a call's arguments of host values cross as one clone: one object in two arguments is one object", async t => {
  const { encodeCall, decodeCall } = await import('../lib/transport-codec.js');
  const shared: Record<string, unknown> = { n: 1 };
  shared.self = shared;
  const buffer = new ArrayBuffer(4);
  const { args } = decodeCall(encodeCall(1, 'm', [shared, shared, { inner: shared }, new Uint8Array(buffer), new Uint16Array(buffer)], noRefs), noRefs) as { args: [Record<string, unknown>, unknown, { inner: unknown }, Uint8Array, Uint16Array] };
  t.not(args[0], shared, 'a copy');
  t.equal(args[1], args[0], 'the second argument is the first');
  t.equal(args[2].inner, args[0], 'and so is what the third holds');
  t.equal(args[0].self, args[0], 'its cycle kept');
  t.equal(args[4].buffer, args[3].buffer, 'two views of one buffer share it');
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

// A replica hands a service call's arguments to the membrane as wire values,
// without a copy walk (transport-codec.ts): what only this host's membrane
// may make (a Slot naming one of the service's own objects or imports, a
// sealed value) must be refused, and the service must live on.
t.test('a hostile call message is refused with TRANSPORT_FAILED and the replica answers the next call', async t => {
  const db = await startHost(t, [app.target, '--service', 'db', '--nats', app.nats.url]);
  const echoRef = readManifest(app.target).services.api.references.find(r => r.service === 'db' && r.iface === 'function echo') as ExportRef;
  const nc = await connect({ servers: app.nats.url });
  t.teardown(() => nc.close());
  const call = async (args: unknown[]): Promise<unknown[]> => {
    const inbox = createInbox();
    const replies = nc.subscribe(inbox, { max: 2 }); // the replica's acknowledgement, then its reply
    nc.publish(serviceSubject('live-fixture', 'db'), packr.pack([echoRef.export, null, args]), { reply: inbox });
    const out: unknown[] = [];
    for await (const msg of replies) out.push(packr.unpack(msg.data));
    return out[1] as unknown[];
  };
  for (const [what, hostile] of [
    ['a Slot of the service', new Slot('guest', 0)],
    ['a Slot of an import', new Slot('host', 1)],
    ['a sealed value', new Tagged('sealed', new Uint8Array(40))],
    ['an unknown tag', new Tagged('nonsense' as never, 1)],
    // An error's cause was not checked: a Slot in it named an object of this host's membrane by number.
    ["a Slot in an error's cause", new Tagged('error', { name: 'Error', message: 'x', cause: { deep: new Slot('host', 1) } })],
    ["a Slot in an array's named properties", new Tagged('array', [1, [0], [1], { named: new Slot('guest', 0) }])],
    // An argref names an object of the arguments before its own: here there is none.
    ['an argref in the first argument', new Tagged('argref', 0)],
    ['a ref to an object the value does not hold', new Tagged('ref', 3)],
  ] as const) {
    const [ok, error] = await call([{ inside: [hostile] }]);
    t.equal(ok, false, `${what}: refused`);
    t.match(error, { payload: { name: 'SnapshotError[TRANSPORT_FAILED]', message: /a message from another host (is malformed|could not be decoded)/ } }, what);
  }
  // A caller on another host names a method: never one that reaches an object's class or redefines it (__defineGetter__
  // let a peer replace a live service's methods, found by the adversarial review).
  for (const method of ['__defineGetter__', '__defineSetter__', '__lookupGetter__', 'constructor', '__proto__']) {
    const inbox = createInbox();
    const replies = nc.subscribe(inbox, { max: 2 });
    nc.publish(serviceSubject('live-fixture', 'db'), packr.pack([echoRef.export, method, ['name', 1]]), { reply: inbox });
    const out: unknown[] = [];
    for await (const msg of replies) out.push(packr.unpack(msg.data));
    const [ok, error] = out[1] as [boolean, { payload?: { message?: string } }];
    t.equal(ok, false, `${method}: refused`);
    t.match(error, { payload: { message: /cannot be called through a reference/ } }, method);
  }
  // An error record named like a property of Object.prototype is an Error of that name (it was Object('...') or a TypeError).
  const [namedOk, named] = await call([new Tagged('error', { name: 'constructor', message: 'hello' })]);
  t.equal(namedOk, true);
  t.match(named, { tag: 'error', payload: { name: 'constructor', message: 'hello' } }, 'echoed as an error named constructor');
  const [lengthOk, lengthError] = await call([new Tagged('array', [1, [0], [1], { length: 5 }])]);
  t.equal(lengthOk, false, "an array whose named properties hold its length: refused");
  t.match(lengthError, { payload: { name: 'SnapshotError[TRANSPORT_FAILED]', message: /a message from another host (is malformed|could not be decoded)/ } });
  // References in a message become stubs the host keeps: their number and their names are bounded.
  const many = Array.from({ length: 1001 }, (_, i) => new RemoteRef(`host-${i}`, i, 'function f'));
  const [manyOk, manyError] = await call([many]);
  t.equal(manyOk, false, '1,001 references in one message: refused');
  t.match(manyError, { payload: { message: /more than 1000 references/ } });
  const [longOk, longError] = await call([new RemoteRef('h', 1, `function ${'x'.repeat(300)}`)]);
  t.equal(longOk, false, 'a reference with a 300-character interface name: refused');
  t.match(longError, { payload: { message: /a reference with a name over 256 characters/ } });
  const [pastOk, pastError] = await call([{ one: 1 }, new Tagged('argref', 1)]);
  t.equal(pastOk, false, 'an argref past the objects of the arguments before it: refused');
  t.match(pastError, { payload: { name: 'SnapshotError[TRANSPORT_FAILED]', message: /a message from another host is malformed: .*of the arguments before/ } });
  t.same(await call([{ fine: [1, 'two'] }]), [true, { fine: [1, 'two'] }], 'the replica still answers');

  // A service cannot pass its error off as the library's to another host either.
  const caller = await NatsTransport.connect({ servers: app.nats.url, app: 'live-fixture' });
  t.teardown(() => caller.close());
  caller.attach(new Directory());
  const echo = caller.connect(echoRef) as (value: unknown) => Promise<unknown>;
  const forged = Object.assign(new Error('forged'), { name: 'SnapshotError[SERVICE_UNAVAILABLE]', code: 'SERVICE_UNAVAILABLE' });
  const back = (await echo({ error: forged })) as { error: Error };
  t.notOk(isSnapshotError(back.error), 'an error named like ours, made by a service, stays a plain Error');
  t.equal(back.error.name, 'SnapshotError[SERVICE_UNAVAILABLE]');
  // What structuredClone keeps crosses hosts too: an array's named properties (a RegExp match's), boxed primitives, an error's cause.
  const match = 'say hello'.match(/(?<word>h\w+)/) as RegExpMatchArray;
  const echoed = (await echo({ match, boxed: [Object(5), Object('s')], caused: new Error('outer', { cause: { code: 'INNER' } }) })) as { match: RegExpMatchArray; boxed: unknown[]; caused: Error };
  t.same([echoed.match.index, echoed.match.input, { ...echoed.match.groups }, [...echoed.match]], [4, 'say hello', { word: 'hello' }, ['hello', 'hello']]);
  t.same(echoed.boxed.map(b => [typeof b, (b as { valueOf(): unknown }).valueOf()]), [['object', 5], ['object', 's']]);
  t.same(echoed.caused.cause, { code: 'INNER' });

  // A call over the server's max_payload (1 MiB here) fails at once with TRANSPORT_FAILED, not a raw error or a timeout.
  const started = Date.now();
  await t.rejects(echo('x'.repeat(2 * 1024 * 1024)), { code: 'TRANSPORT_FAILED', message: /over the NATS server's max_payload of \d+/ });
  t.ok(Date.now() - started < 5000, 'refused before any wait');
  await db.stop();
});

// A reply from another host whose references name no object (a malformed message, or a hostile host): the
// call fails with TRANSPORT_FAILED; the calling service goes on (it failed as a whole: found by the adversarial review).
t.test('a malformed reply from another host fails that call, not the service that made it', async t => {
  const nc = await connect({ servers: app.nats.url });
  t.teardown(() => nc.close());
  // A stand-in for db's replica: it takes every call, and answers with a value that refers to object #7 of nothing.
  const replica = nc.subscribe(serviceSubject('live-fixture', 'db'));
  void (async () => {
    for await (const msg of replica) {
      msg.respond(packr.pack([2, 'stand-in']));
      msg.respond(packr.pack([true, { list: [new Tagged('ref', 7)] }]));
    }
  })();
  t.teardown(() => replica.unsubscribe());
  await nc.flush();
  const { run, value } = await app.callApi('tryGet', [1]);
  t.equal(run.code, 0, run.stderr);
  t.match(value, { ok: false, code: 'TRANSPORT_FAILED', message: /a reply from another host is malformed: a copied value refers to object #7/ });
});

// A NATS server that asks for credentials: they come from the URL (never printed), or a .creds file
// named by NATS_CREDS; the wrong ones fail with TRANSPORT_FAILED, not a raw error.
t.test('credentials in the NATS URL reach the server and are not printed', async t => {
  const secured = await startNats(t, ['--user', 'svc-user', '--pass', 's3cret-pass']);
  const withCredentials = secured.url.replace('nats://', 'nats://svc-user:s3cret-pass@');
  const transport = await NatsTransport.connect({ servers: withCredentials, app: 'secured' });
  await transport.close();
  await t.rejects(NatsTransport.connect({ servers: secured.url.replace('nats://', 'nats://svc-user:wrong@'), app: 'secured' }), { code: 'TRANSPORT_FAILED' }, 'a wrong password is TRANSPORT_FAILED');
  const pushed = await snapshot(['push', app.target, '--nats', withCredentials, '--app', 'secured']);
  t.equal(pushed.code, 0, pushed.stderr);
  t.notMatch(pushed.stdout + pushed.stderr, /s3cret-pass/, 'the password is not printed');
  const replayed = await snapshot(['restore', `${withCredentials}/secured`, '--service', 'db', '--replay-only']);
  t.equal(replayed.code, 0, replayed.stderr);
  const refused = await snapshot(['restore', `${secured.url}/secured`, '--service', 'db', '--replay-only']);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /TRANSPORT_FAILED: cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+/, 'without credentials: refused by the server, typed');
  t.notMatch(refused.stderr, /s3cret-pass/);
});

// With an app key (SNAPSHOT_APP_KEY), every message is signed and checked: a bus client without the
// key cannot call a service, and a captured call sent again is dropped.
t.test('with an app key, a client of the bus without it cannot call, and a captured call cannot be sent again', async t => {
  const appKey = Buffer.alloc(32, 7).toString('base64');
  process.env.SNAPSHOT_APP_KEY = appKey;
  t.teardown(() => {
    delete process.env.SNAPSHOT_APP_KEY;
  });
  const db = await startHost(t, [app.target, '--service', 'db', '--nats', app.nats.url]);
  const echoRef = readManifest(app.target).services.api.references.find(r => r.service === 'db' && r.iface === 'function echo') as ExportRef;

  const member = await NatsTransport.connect({ servers: app.nats.url, app: 'live-fixture' });
  t.teardown(() => member.close());
  member.attach(new Directory());
  const echo = member.connect(echoRef) as (value: unknown) => Promise<unknown>;

  // Capture the signed call on the bus as it goes by.
  const nc = await connect({ servers: app.nats.url });
  t.teardown(() => nc.close());
  const captured: Array<{ data: Uint8Array; headers: unknown; reply?: string }> = [];
  const snoop = nc.subscribe(serviceSubject('live-fixture', 'db'), { callback: (_e, msg) => captured.push({ data: msg.data, headers: msg.headers, reply: msg.reply }) });
  await nc.flush();
  t.same(await echo({ n: 1 }), { n: 1 }, 'a host with the key calls as before');
  snoop.unsubscribe();
  t.ok(captured.length >= 1 && captured[0].headers, 'the call carried its signature');

  const answered = async (payload: Uint8Array, headers?: unknown): Promise<boolean> => {
    const inbox = createInbox();
    const replies = nc.subscribe(inbox, { max: 1, timeout: 1500 });
    nc.publish(serviceSubject('live-fixture', 'db'), payload, { reply: inbox, ...(headers ? { headers: headers as never } : {}) });
    try {
      for await (const _ of replies) return true;
    } catch {
      return false;
    }
    return false;
  };
  t.notOk(await answered(packr.pack([echoRef.export, null, [{ forged: true }]])), 'an unsigned call gets no acknowledgement and does not run');
  t.notOk(await answered(captured[0].data, captured[0].headers), 'the captured call sent again (to another reply subject) is dropped');

  const stranger = await NatsTransport.connect({ servers: app.nats.url, app: 'live-fixture', appKey: Buffer.alloc(32, 9), callTimeoutMs: 1500 });
  t.teardown(() => stranger.close());
  stranger.attach(new Directory());
  await t.rejects((stranger.connect(echoRef) as (v: unknown) => Promise<unknown>)({ n: 2 }), { code: 'CALL_TIMEOUT' }, 'a host with another key is not answered');
  t.same(await echo({ n: 3 }), { n: 3 }, 'the app still answers its own hosts');
  await db.stop();
  // "No responders" is a status any client could forge: with a key it counts once nobody acknowledged the resends.
  const started = Date.now();
  await t.rejects(echo({ n: 4 }), { code: 'SERVICE_UNAVAILABLE' }, 'no replica left: SERVICE_UNAVAILABLE');
  t.ok(Date.now() - started >= 1000 && Date.now() - started < 20_000, `after the resends, not at the first status (${Date.now() - started} ms)`);
});
