// Build-time handles die with the build; granted modules come back by name.
import t from 'tap';
import path from 'node:path';
import v8 from 'node:v8';
import { fixture, lastJson, moveToTarget, snapshot, tempDir } from './helpers.js';

const work = tempDir('handles');

t.test('a build-script function, a FileHandle and a file descriptor are dead after restore, each saying where it came from', async t => {
  const out = path.join(work, 'handles');
  const built = await snapshot(['build', 'build-handles.mjs', '--out', out], { cwd: fixture('misc') });
  t.equal(built.code, 0, built.stderr);
  const target = moveToTarget(out);
  const state = await snapshot(['restore', target, '--call', 'handles.describe']);
  t.equal(state.code, 0, state.stderr);
  t.same(lastJson(state), { logged: ['logged 1'], firstLine: '{ "name": "misc-fixture", "private": true, "type": "module" }' }, 'what the handles gave at build time is replayed');

  const logger = await snapshot(['restore', target, '--call', 'handles.useLogger']);
  t.equal(logger.code, 1);
  t.match(logger.stderr, /^snapshot: STALE_HANDLE: service "handles" used function anonymous \(argument of hold\(\)\)\(\), but that object only existed at build time\./m);
  const handle = await snapshot(['restore', target, '--call', 'handles.useFileHandle']);
  t.equal(handle.code, 1);
  t.match(handle.stderr, /STALE_HANDLE: service "handles" used FileHandle \(result of fs\.promises\.open\)\.stat, but that object only existed at build time/);
  const fd = await snapshot(['restore', target, '--call', 'handles.useFd']);
  t.equal(fd.code, 1);
  t.match(fd.stderr, /STALE_HANDLE: service "handles" used file descriptor 1000, which is not open here/);
});

t.test('a granted module is recorded at build time and bound again by name on restore', async t => {
  const out = path.join(work, 'granted');
  const built = await snapshot(['build', 'build-granted.mjs', '--out', out], { cwd: fixture('misc') });
  t.equal(built.code, 0, built.stderr);
  t.match(built.stdout, /"granted\\n"/);
  const inspected = await snapshot(['inspect', path.join(out, 'greedy', 'replay.log')]);
  t.match(inspected.stdout, /module:node:child_process\.execSync\("echo granted"\)/);
  const live = await snapshot(['restore', moveToTarget(out), '--call', 'greedy.run']);
  t.equal(live.code, 0, live.stderr);
  t.same(lastJson(live), 'granted\n', 'live after restore: the real child_process of this host');
});

t.test("a granted builtin with data and objects of methods (node:v8, the README's example) is granted, and works after restore", async t => {
  const out = path.join(work, 'granted-v8');
  const built = await snapshot(['build', 'build-granted-v8.mjs', '--out', out], { cwd: fixture('misc') });
  t.equal(built.code, 0, built.stderr);
  // Plain Node, the oracle: the same value through this process's own v8.
  const roundTrip = { bytes: v8.serialize({ a: 1, list: [1, 2], map: new Map([[1, 'x']]) }).length, back: [1, [1, 2], true, 'x'] };
  t.same(JSON.parse(built.stdout), {
    roundTrip,
    describe: { heap: 'number', hooks: 'function', frozen: false, annotated: 'the service may add to its module object, as in Node' },
  });
  const live = await snapshot(['restore', moveToTarget(out), '--call', 'serializer.roundTrip']);
  t.equal(live.code, 0, live.stderr);
  t.same(lastJson(live), roundTrip, "live after restore: this host's node:v8, bound again by name");
  const again = await snapshot(['restore', moveToTarget(out), '--call', 'serializer.describe']);
  t.equal(again.code, 1);
  t.match(again.stderr, /STALE_HANDLE: service "serializer" used object \(result of module:node:v8\.promiseHooks\)\.onInit, but that object only existed at build time/, 'an object of methods is a build-time handle');
  const classes = await snapshot(['restore', moveToTarget(out), '--call', 'serializer.classes']);
  t.equal(classes.code, 0, classes.stderr);
  t.match(lastJson(classes), /^TypeError: node:v8\.Serializer cannot be constructed or extended inside service "serializer": the functions of a granted module are recorded calls/, "a granted module's class loads in extends, and making one says why it cannot");
});

t.test('--call prints a Map, a Set and a bigint in its JSON, not as {}, and calls a method of an exported object', async t => {
  const out = path.join(work, 'collections');
  const built = await snapshot(['build', 'build-collections.mjs', '--out', out], { cwd: fixture('misc') });
  t.equal(built.code, 0, built.stderr);
  const called = await snapshot(['restore', moveToTarget(out), '--call', 'collections.state']);
  t.equal(called.code, 0, called.stderr);
  t.same(lastJson(called), {
    byName: { apples: 3, pears: 5, plums: 7 },
    byId: [
      [1, 'one'],
      [true, 'yes'],
    ],
    tags: ['fresh', 'local'],
    total: '100000000000000000000',
  });
  // A Map with number keys keeps them, and their order; a RegExp and bytes print as what they hold; an error as JSON writes it.
  const odd = await snapshot(['restore', moveToTarget(out), '--call', 'collections.odd']);
  t.equal(odd.code, 0, odd.stderr);
  t.same(lastJson(odd), {
    numbered: [
      [2, 'b'],
      [1, 'a'],
    ],
    failure: { code: 'E_STOCK' },
    pattern: '/a+/g',
    bytes: [1, 2, 3],
  });
  const nested = await snapshot(['restore', moveToTarget(out), '--call', 'collections.shelf.count']);
  t.equal(nested.code, 0, nested.stderr);
  t.same(lastJson(nested), 3, 'a method of an exported object');
  const missing = await snapshot(['restore', moveToTarget(out), '--call', 'collections.shelf.weigh']);
  t.equal(missing.code, 2, 'a usage error');
  t.match(missing.stderr, /USAGE: service "collections" exports no object "shelf" with "weigh"; it exports: /);
});

t.test('host state the membrane once missed is recorded: cwd, Event timestamps, AbortSignal.timeout, File and DateTimeFormat clocks, signatures', async t => {
  const out = path.join(work, 'holes');
  const built = await snapshot(['build', 'build-holes.mjs', '--out', out], { cwd: fixture('misc') });
  t.equal(built.code, 0, built.stderr);
  const { state, hostJoin } = JSON.parse(built.stdout.split('\n')[0]) as { state: Record<string, unknown>; hostJoin: string };
  t.equal(hostJoin, 'a/b', 'a service cannot change path.join for the host');
  t.equal(state.mutation, 'TypeError');
  t.equal(state.keygen, 'DETERMINISM_VIOLATION', 'key generation is refused');
  t.same(state.utc, ['UTC', 0], 'TZ may be set to UTC');
  t.same(state.tokyo, ['DETERMINISM_VIOLATION', 'UTC', 0], 'TZ set to another zone is refused, not silently ignored');
  t.match(state.printedEvent, /^Event \{\n  type: 'printed',[\s\S]*timeStamp: [\d.]+\n\}$/, "an Event prints as Node's (restored below: the same text)");
  t.match(state.resolved, /fixtures\/misc\/rel$/);
  t.equal(state.isFormat, true, 'Intl.DateTimeFormat() is callable without new, and its instances are instances of it');
  t.match(state.formatted, /^\d{1,2}:\d{2}:\d{2}\.\d{3} [AP]M$/);
  const target = moveToTarget(out);
  // Another working directory, another process: the replay must not notice.
  const verified = await snapshot(['verify', target], { cwd: tempDir('elsewhere') });
  t.equal(verified.code, 0, verified.stdout + verified.stderr);
  const restored = await snapshot(['restore', target, '--call', 'holes.describe'], { cwd: tempDir('elsewhere') });
  t.same(lastJson(restored), state, 'same state, ECDSA signature included');
  const live = await snapshot(['restore', target, '--call', 'holes.greetAgain']);
  t.equal(live.code, 1);
  t.match(live.stderr, /module "greeter" was granted to service "holes" at build time but is not available on this host: pass it to restoreSnapshot\(\{ modules/);
});
