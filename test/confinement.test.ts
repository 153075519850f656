// A hostile service tries every route out of its membrane that we know of
// (test/fixtures/confinement/attacks.js, and the hostile service's other
// exports), at build time and again live after a restore in another
// process. Each attempt must fail to reach the host or another service:
// the host and a second service look for what the attacker planted, and
// the attacker marks every object it can reach, which nobody else may find.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { installElsewhere, moveToTarget, node, noOtherNodes, otherNodes, projectFrom, snapshot } from './helpers.js';
import { attacks } from './fixtures/confinement/attacks.js';

type Report = Record<string, any>;

/** The whole check, its build and restore on Node `execPath` (default this process's). */
const confinement = (t: Test, execPath?: string): void => {
  const project = projectFrom('confinement');
  let report: Report;
  let afterRestore: Report;
  let buildStderr = '';

  t.before(async () => {
    const out = path.join(project, 'report.json');
    const build = await snapshot(['build', 'build.mjs', '--out', 'snapshot'], { cwd: project, env: { CONFINEMENT_OUT: out }, timeoutMs: 120_000, execPath });
    buildStderr = build.stderr;
    if (build.code !== 0) throw new Error(`build failed:\n${build.stderr}`);
    report = JSON.parse(fs.readFileSync(out, 'utf8'));
    const target = moveToTarget(path.join(project, 'snapshot'));
    const here = path.dirname(target);
    for (const file of ['restore-check.mjs', 'attacks.js', 'env.js', 'walk.js', 'package.json']) fs.copyFileSync(path.join(project, file), path.join(here, file));
    const restore = await node(['restore-check.mjs', installElsewhere().index, target], { cwd: here, timeoutMs: 120_000, execPath });
    if (restore.code !== 0) throw new Error(`restore failed:\n${restore.stderr}`);
    afterRestore = JSON.parse(restore.stdout.trim().split('\n').pop() as string);
  });

  t.test(`${attacks.length} planted changes reach neither the host nor another service`, async t => {
    t.ok(attacks.length >= 60, 'at least 60 named attempts');
    t.same(report.before, { host: [], victim: [] }, 'nothing planted before the attack');
    t.ok(report.local.some(([, local]: [string, string]) => local === 'applied'), 'the attacker did change its own objects');
    for (const [name] of attacks) {
      t.notOk(report.after.host.includes(name), `host unaffected: ${name}`);
      t.notOk(report.after.victim.includes(name), `other service unaffected: ${name}`);
    }
    t.same(report.hostWorks, { heard: 1, inspect: '{ a: { b: 1 } }', hash: '2d711642' }, "the host's emitters, inspect and hashing still work");
    t.same(report.victimWorks, ['heard'], "the other service's own EventEmitter still works");
  });

  t.test('no object the attacker could reach and mark is reachable by the host or another service', async t => {
    t.ok(report.marked > 100, `the attacker marked its own objects (${report.marked})`);
    t.same(report.marks.host.found, [], 'the host finds no mark');
    t.same(report.marks.victim.found, [], 'the other service finds no mark');
    t.ok(report.marks.host.visited > 500 && report.marks.victim.visited > 500, 'both looked through their whole reach');
  });

  t.test('a host object held by reference cannot be changed through its reference', async t => {
    for (const [route, outcome] of Object.entries(report.hostReference)) t.match(outcome, /^threw: /, `${route} is refused`);
    t.same(report.targetAfter, { n: 1, x: 'absent', proto: true, covert: false }, 'the host object is as it was');
  });

  t.test('values whose own methods lie cross as what they hold', async t => {
    t.same(report.received, { bytes: 'AAAA', map: ['real'], date: 1000, set: ['real'] });
  });

  t.test("a service cannot pass its errors off as the library's", async t => {
    for (const kind of ['object', 'error', 'constructed']) t.equal(report.forged[kind].library, false, `${kind}: reported as the service's error`);
    for (const kind of ['rewritten', 'prototype']) {
      t.equal(report.forged[kind].library, true, `${kind}: a genuine library error stays one`);
      t.equal(report.forged[kind].code, 'DETERMINISM_VIOLATION', `${kind}: its code cannot be changed`);
      t.match(report.forged[kind].message, /^process\.chdir is not available inside a service/, `${kind}: its message cannot be changed`);
      t.equal(report.forged[kind].toString, 'intact', `${kind}: its class cannot be changed`);
    }
    t.equal(report.forged.genuine.library, true, 'a library error passed through unchanged keeps its type');
  });

  t.test("the host reads a service object's data without running its code, also when a Proxy is in a value's prototype chain", async t => {
    t.same(
      report.proxyChain,
      { plain: 1, x: 'function', deep: 'function', json: '{"plain":1}', hostIn: false, hostMissing: 'function', classGetters: ['function', 'function'], victimIn: [false, false], trapRuns: 0 },
      "no trap ran, for the host's reads and `in` or another service's `in`; what is not plain data is reached by a call",
    );
  });

  t.test("a service's prepareStackTrace sees no host object", async t => {
    t.ok(report.callSites.seen.length > 0, 'it was called');
    for (const site of report.callSites.seen) t.match(site, /^undefined\/undefined\//, 'getThis() and getFunction() give nothing');
    t.ok(report.callSites.seen.some((s: string) => s.endsWith('attacker.js')), 'its own frames keep their file');
    t.ok(report.callSites.seen.every((s: string) => !s.includes('/dist/') && !s.includes('node:internal')), 'host frames name no host path');
    t.equal(report.callSites.captured, 'prepared');
    t.equal(report.callSites.made, 'prepared');
  });

  t.test('no route leads to the host process or its modules', async t => {
    for (const [route, outcome] of Object.entries(report.escapes as Record<string, string>)) {
      t.match(outcome, /^(applied: undefined|threw: )/, `${route}: ${outcome}`);
    }
  });

  t.test('callbacks that throw do not take the host process down', async t => {
    t.equal(report.alive, true);
    for (const from of ['an EventTarget listener', 'an abort listener', 'onabort', 'a callbackify callback']) {
      t.match(buildStderr, new RegExp(`Error: from ${from}`), `${from}: reported`);
    }
    for (const value of ['42', '"a string"', 'null', '\\[object Object\\]']) {
      t.match(buildStderr, new RegExp(`uncaught non-Error value thrown .*: ${value}`), `a thrown ${value} from a listener: reported`);
    }
    t.match(buildStderr, /uncaught exception in process\.nextTick callback: Error: from nextTick/);
    t.match(buildStderr, /uncaught exception in queueMicrotask callback: Error: from queueMicrotask/);
    t.match(buildStderr, /uncaught exception in fs\.readFile callback: Error: from an fs callback/);
    t.match(buildStderr, /uncaught exception in fs\.open callback: Error: from a descriptor callback/);
    t.notMatch(buildStderr, /unhandled.*from an fs callback|SES_UNHANDLED_REJECTION: Error: from an fs callback/, 'not reported as a rejection');
  });

  t.test("no Buffer a service makes is a view of Node's shared pool or of memory it did not write", async t => {
    t.same(report.bufferPools, { call: 1, from: 1, copyBytesFrom: 1, concat: 1, unescapeBuffer: 1, zlibSync: 0, zlibCallback: 0 });
  });

  t.test('after a restore elsewhere, the replayed and the live attacker reach nothing either', async t => {
    t.same(afterRestore.host, [], 'the restoring host is unaffected');
    t.same(afterRestore.victim, [], 'the restored victim is unaffected');
    t.same(afterRestore.marks, { host: [], victim: [] }, 'no mark reachable');
  });
};

confinement(t);

// The other Node lines the package supports, when MEMBRANE_SNAPSHOT_OTHER_NODES names them (.ci/run sets it).
const others = otherNodes();
if (others.length === 0) t.test('on the other supported Node lines', async t => noOtherNodes(t));
for (const other of others) t.test(`on Node ${other.version}`, async t => confinement(t, other.execPath));
