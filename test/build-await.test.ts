// A build waits for the work its script started, and fails (keeping the last good
// snapshot) when the script leaves work it cannot wait for or a rejection unhandled.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { snapshot, tempDir } from './helpers.js';
import { build, fingerprint, goodKeep, leftovers, misc, restoresCounter } from './build-helpers.js';

const work = tempDir('build-await');

t.test('a build script that does not await its work', async t => {
  await t.test('main(); without await: the build waits for the importService it started', async t => {
    const out = path.join(work, 'no-await');
    const run = await build(out, 'no-await');
    t.equal(run.code, 0, run.stderr);
    t.match(run.stderr, /^built .*no-await \(1 service, \d+ events/m);
    t.ok(await restoresCounter(out, 2), 'both bumps were recorded before sealing');
  });

  await t.test('an importService only after a delay: nothing to seal is a failure that says to await', async t => {
    const { out, before } = await goodKeep(work, 'late-only');
    const run = await build(out, 'late-only');
    t.equal(run.code, 1);
    t.match(run.stderr, /^snapshot: BUILD_FAILED: the build script finished without importing any service, .*await that work at its top level \(for example `await main\(\);` instead of `main\(\);`\)/m);
    t.same(fingerprint(out), before);
  });

  await t.test('an importService after sealing fails the build, and the previous snapshot survives', async t => {
    const { out, before } = await goodKeep(work, 'late-second');
    const run = await build(out, 'late-second');
    t.equal(run.code, 1);
    t.match(run.stderr, /^snapshot: BUILD_FAILED: .*\n\s*USAGE: importService\(".*counter\.js"\) came after the build had sealed the snapshot .*Await every importService from the top level/m);
    t.notMatch(run.stderr, /^built /m, 'no "built" line');
    t.same(fingerprint(out), before);
    t.same(leftovers(out), []);
  });

  await t.test('an unhandled rejection in the build script fails the build', async t => {
    const { out, before } = await goodKeep(work, 'rejection');
    const run = await build(out, 'rejection');
    t.equal(run.code, 1);
    t.match(run.stderr, /^snapshot: BUILD_FAILED: the build script .* failed; no snapshot was sealed\..*\n\s*Error: a promise the build script forgot/m);
    t.equal(run.stderr.match(/a promise the build script forgot/g)?.length, 1, 'said once (SES did not report it again at exit)');
    t.same(fingerprint(out), before);
  });

  await t.test("a service call's rejection the script never handles fails the build too (it was reported as the service's, and the build sealed)", async t => {
    const { out, before } = await goodKeep(work, 'call-rejection');
    const run = await build(out, 'call-rejection');
    t.equal(run.code, 1);
    t.match(run.stderr, /^snapshot: BUILD_FAILED: the build script .* failed; no snapshot was sealed\..*\n\s*USAGE: refuser\.refuse\(\) failed, and the build script did not await it: await every call of a service \(await svc\.method\(\)\), or catch its error\. It failed with Error: the service refused/m, 'it names the call that nothing awaited');
    t.notMatch(run.stderr, /a service left a promise rejection unhandled/);
    t.notMatch(run.stderr, /^built /m, 'no "built" line');
    t.same(fingerprint(out), before);
    // The logs were sealed before the failure: the partial recording holds them, and no manifest a command takes for
    // a snapshot's (restore, verify and the wrong-path advice took it for one; found by the new-user trial).
    t.ok(fs.existsSync(path.join(`${out}.partial`, 'manifest.json.failed-build')), 'the failed build\'s manifest is kept, renamed');
    for (const command of ['restore', 'verify']) {
      const refused = await snapshot([command, `${out}.partial`]);
      t.equal(refused.code, 1, `${command} refuses the partial recording`);
      t.match(refused.stderr, /^snapshot: SNAPSHOT_INVALID: \S+call-rejection\.partial is not a snapshot: it is what a failed build to \S+call-rejection recorded \(sealed, but the build failed after\), kept to be read, not restored: read a service's log with `snapshot inspect \S+replay\.log`/m, 'saying what it is and what to do');
    }
    const nearby = await snapshot(['restore', path.join(work, 'no-such-snapshot')]);
    t.notMatch(nearby.stderr, /call-rejection\.partial/, 'the wrong-path advice names no failed build as a snapshot');
  });

  await t.test("a service's own unhandled rejection is reported once, and the build goes on", async t => {
    const out = path.join(work, 'service-rejection');
    const run = await build(out, 'service-rejection');
    t.equal(run.code, 0, run.stderr);
    t.equal(run.stdout, 'left\n');
    t.equal(run.stderr.match(/a rejection the service forgot/g)?.length, 1, run.stderr);
    t.match(run.stderr, /^snapshot: a service left a promise rejection unhandled: Error: a rejection the service forgot\n\s+at leak /m);
    t.notMatch(run.stderr, /SES_UNHANDLED_REJECTION/);
  });

  await t.test('a method called on an importService promise that was not awaited: the failure says to await it', async t => {
    const { out, before } = await goodKeep(work, 'import-not-awaited');
    const run = await build(out, 'import-not-awaited');
    t.equal(run.code, 1);
    t.match(run.stderr, /TypeError: counter\.bump is not a function/);
    t.match(run.stderr, /importService\(\) returns a promise, and the build script did not await the one for "\.\/services\/counter\.js": write `const svc = await importService\(\.\.\.\)`/);
    t.same(fingerprint(out), before);
  });

  await t.test('an importService of a specifier that is no string rejects with USAGE, and a script that handles it builds', async t => {
    const out = path.join(work, 'bad-specifier');
    const run = await build(out, 'bad-specifier');
    t.equal(run.code, 0, run.stderr);
    t.match(run.stdout, /^bad specifier: USAGE$/m);
    t.ok(await restoresCounter(out, 1));
  });

  await t.test('a top-level await that nothing settles fails the build (it exited 0, writing nothing)', async t => {
    const { out, before } = await goodKeep(work, 'stuck');
    const run = await build(out, 'stuck');
    t.equal(run.code, 1);
    t.match(run.stderr, /^snapshot: BUILD_FAILED: the build script .*build-modes\.mjs never finished: its top-level await waits for a promise that nothing is left to settle/m);
    t.notMatch(run.stderr, /^built /m, 'no "built" line');
    t.same(fingerprint(out), before);
    t.same(leftovers(out), []);
  });

  await t.test('a script that keeps the process busy after sealing (an interval never cleared) fails, naming what is active', async t => {
    const { out, before } = await goodKeep(work, 'busy');
    const run = await snapshot(['build', 'build-modes.mjs', '--out', out, '--timeout', '1500'], { cwd: misc, env: { MISC_MODE: 'busy' } });
    t.equal(run.code, 1);
    t.match(run.stderr, /^snapshot: BUILD_FAILED: the build script still kept the process busy 1500 ms after every service was idle and sealed \(1 timer \(setTimeout or setInterval\)\).*close the servers and intervals it opens/m);
    t.same(fingerprint(out), before);
    t.same(leftovers(out), []);
  });

  await t.test('a server the script never closes is named with its address (not as Node handle names)', async t => {
    const { out, before } = await goodKeep(work, 'server');
    const run = await snapshot(['build', 'build-modes.mjs', '--out', out, '--timeout', '1500'], { cwd: misc, env: { MISC_MODE: 'server' } });
    t.equal(run.code, 1);
    t.match(run.stderr, /^snapshot: BUILD_FAILED: the build script still kept the process busy 1500 ms after every service was idle and sealed \(a server listening on 127\.0\.0\.1:\d+\).*server\.close\(\)/m);
    t.notMatch(run.stderr, /PipeWrap|TCPServerWrap/);
    t.same(fingerprint(out), before);
    t.same(leftovers(out), []);
  });
});
