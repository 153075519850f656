// A build never destroys the last good snapshot: a failed, interrupted or
// disk-starved build leaves it exactly as it was, with a typed error.
import t from 'tap';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { cliPath, command, snapshot, tempDir, withoutTapHooks } from './helpers.js';
import { build, fingerprint, goodKeep, leftovers, misc, restoresCounter } from './build-helpers.js';

const work = tempDir('build-safety');

t.test('a failed build leaves the previous snapshot exactly as it was', async t => {
  const { out, before } = await goodKeep(work, 'keep');
  const typo = await build(out, 'typo');
  t.equal(typo.code, 1);
  t.match(typo.stderr, /^snapshot: BUILD_FAILED: the build script .*build-modes\.mjs failed; no snapshot was sealed\. .*keep is unchanged\./m);
  t.notMatch(typo.stderr, /unexpected error/);
  t.same(fingerprint(out), before, 'same directory, same files, same bytes, modes and times');
  t.same(leftovers(out), [], 'no work directory left beside it');
  t.ok(await restoresCounter(out), 'the previous snapshot still restores');

  // A good build replaces it whole: a new directory, no stale files (here, a service an older build had).
  fs.mkdirSync(path.join(out, 'stale'));
  fs.writeFileSync(path.join(out, 'stale', 'replay.log'), 'from an older build');
  const again = await build(out, 'good');
  t.equal(again.code, 0, again.stderr);
  t.notOk(fs.existsSync(path.join(out, 'stale')), 'the old directory was replaced, not written over');
  t.notOk(fs.existsSync(`${out}.partial`), 'the typo build kept no partial recording (it recorded nothing)');
  t.same(leftovers(out), []);
});

t.test('a service of a failed rebuild cannot write into, delete or move the last good snapshot', async t => {
  const { out, before } = await goodKeep(work, 'vandalised');
  const run = await snapshot(['build', 'build-modes.mjs', '--out', out], { cwd: misc, env: { MISC_MODE: 'vandal', MISC_OUT: out } });
  t.equal(run.code, 1, run.stderr);
  t.match(run.stderr, /BUILD_FAILED: .*vandalised is unchanged\./);
  t.same(JSON.parse(run.stdout.trim().split('\n')[0]), {
    fchmodSwapped: 'REACH_DENIED',
    futimesSwapped: 'REACH_DENIED',
    fchmodDirect: 'REACH_DENIED',
    handleChmod: 'REACH_DENIED',
    handleUtimes: 'REACH_DENIED',
    handleChmodDir: 'REACH_DENIED',
    handleChmodSwapped: 'REACH_DENIED',
    append: 'REACH_DENIED',
    viaLink: 'REACH_DENIED',
    remove: 'REACH_DENIED',
    removeParent: 'REACH_DENIED',
    renameParent: 'REACH_DENIED',
    partial: 'REACH_DENIED',
    dotDotWrite: 'REACH_DENIED',
    dotDotMkdir: 'REACH_DENIED',
    dotDotRemove: 'REACH_DENIED',
    rootLinkWrite: 'REACH_DENIED',
    urlLikeWrite: 'REACH_DENIED',
    urlLikeRemove: 'REACH_DENIED',
    notUtf8Link: ['REACH_DENIED', 'REACH_DENIED'],
    iterableSwapped: 'REACH_DENIED',
    abortedSignalRm: 'removed in the checked turn',
    extraSignalSwapped: ['done', true],
    chmodParent: 'REACH_DENIED',
    plantOld: 'REACH_DENIED',
    plantBuilding: 'REACH_DENIED',
    besideDir: 'done',
    beside: 'done',
    read: 'done',
    hardLinkWrite: 'REACH_DENIED',
  });
  t.same(fingerprint(out), before, 'same directory, same files, same bytes');
  t.ok(await restoresCounter(out), 'the previous snapshot still restores');
});

for (const { where, mode, kib } of [
  { where: 'the archive', mode: 'good', kib: 1 }, // the archive is about 1.7 KiB
  { where: 'the log, mid-turn', mode: 'many', kib: 2 }, // the archive fits, the log (tens of KiB) does not
]) {
  t.test(`a file-size limit hit while writing ${where} is BUILD_FAILED with the reason, and the previous snapshot survives`, async t => {
    const { out, before } = await goodKeep(work, `efbig-${mode}`);
    // ulimit -f counts 1024-byte blocks.
    const run = await command('bash', ['-c', `ulimit -f ${kib}; exec "${process.execPath}" "${cliPath}" build build-modes.mjs --out "${out}"`], misc, { MISC_MODE: mode });
    t.equal(run.code, 1, `exit code 1; stderr: ${run.stderr}`);
    t.match(run.stderr, /^snapshot: BUILD_FAILED: .*\n\s*EFBIG: a file grew past the file-size limit \(ulimit -f\) while writing the snapshot/m);
    t.notMatch(run.stderr, /unexpected error|SES_UNCAUGHT/);
    t.same(fingerprint(out), before);
    t.same(leftovers(out), [], 'the work directory is removed to give the space back');
    t.notOk(fs.existsSync(`${out}.partial`));
  });
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  t.test(`a build stopped by ${signal} removes its work directory, says so, and leaves the previous snapshot as it was`, async t => {
    const { out, before } = await goodKeep(work, `stopped-${signal}`);
    // build-hang.mjs records a service that waits for an answer that never comes: the build waits on it.
    const child = spawn(...withoutTapHooks(process.execPath, [cliPath, 'build', 'build-hang.mjs', '--out', out, '--timeout', '60000']), { cwd: misc, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', d => (stderr += d));
    const exited = new Promise<number | null>(resolve => child.on('close', resolve));
    for (let i = 0; i < 200 && !/archived\s+hang/.test(stderr); i += 1) await new Promise(resolve => setTimeout(resolve, 50));
    t.ok(leftovers(out).some(name => name.includes('.building-')), 'the build was writing its work directory');
    child.kill(signal);
    t.equal(await exited, signal === 'SIGINT' ? 130 : 143);
    t.match(stderr, new RegExp(`snapshot: the build was interrupted \\(${signal}\\); nothing was written \\(.*${path.basename(out)} is as it was\\)\\.`));
    t.same(leftovers(out), [], 'no work directory left beside it');
    t.notOk(fs.existsSync(`${out}.partial`), 'no partial recording kept');
    t.same(fingerprint(out), before, 'the previous snapshot is as it was');
  });
}

t.test('a build whose service never returns to the event loop is killed 3 s after SIGINT, and the previous snapshot stays', async t => {
  const { out, before } = await goodKeep(work, 'spun');
  const child = spawn(...withoutTapHooks(process.execPath, [cliPath, 'build', 'build-modes.mjs', '--out', out]), { cwd: misc, env: { ...process.env, MISC_MODE: 'spin' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', d => (stdout += d));
  child.stderr.on('data', d => (stderr += d));
  const exited = new Promise<number | null>(resolve => child.on('close', resolve));
  for (let i = 0; i < 400 && !stdout.includes('spinning'); i += 1) await new Promise(resolve => setTimeout(resolve, 50));
  await new Promise(resolve => setTimeout(resolve, 300));
  t.ok(leftovers(out).some(name => name.includes('.building-')), 'the build was writing its work directory');
  const sent = Date.now();
  child.kill('SIGINT');
  t.equal(await exited, 130, stderr);
  t.ok(Date.now() - sent < 10_000, 'it stopped in seconds');
  t.match(stderr, /snapshot: the build did not stop within 3 s of SIGINT, so it was killed: a service was still running without returning to the event loop \(an endless loop\?\)\. Nothing was written \(.*spun is as it was\)\./);
  t.same(leftovers(out), [], 'no work directory left beside it');
  t.same(fingerprint(out), before, 'the previous snapshot is as it was');
});

t.test('a build writes where --out led when it began, though a service moved a linked directory above it', async t => {
  const real = path.join(work, 'relink-real');
  const link = path.join(work, 'relink-link');
  fs.mkdirSync(real);
  fs.symlinkSync(real, link);
  const run = await snapshot(['build', 'build-modes.mjs', '--out', path.join(link, 'snap')], { cwd: misc, env: { MISC_MODE: 'relink', MISC_LINK: link } });
  t.equal(run.code, 0, run.stderr);
  t.equal(run.stdout, 'relinked\n');
  t.match(run.stderr, new RegExp(`built ${path.join(real, 'snap').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(1 service`));
  t.ok(JSON.parse(fs.readFileSync(path.join(real, 'snap', 'manifest.json'), 'utf8')).services.relinker, 'the snapshot is where --out led');
  t.same(JSON.parse(fs.readFileSync(path.join(link, 'snap', 'manifest.json'), 'utf8')), { forged: true }, "the service's directory is its own, not the build's");
});

t.test('a build killed between its two renames: the next build puts the old snapshot back first', async t => {
  const { out, before } = await goodKeep(work, 'interrupted');
  // What a kill -9 after "rename the old one aside" leaves: no <out>, <out>.old-<dead pid>,
  // and the dead build's work directory.
  const dead = 2 ** 22 + 12345; // above Linux's largest pid_max (4194304): never a running process
  fs.renameSync(out, `${out}.old-${dead}`);
  fs.mkdirSync(`${out}.building-${dead}`);
  const typo = await build(out, 'typo');
  t.equal(typo.code, 1);
  t.same(fingerprint(out).files, before.files, 'the previous snapshot is back in place, unchanged');
  t.same(leftovers(out), [], 'and the dead build left nothing behind');
});

t.test('usage errors: a missing build script, a manifest path given for a directory', async t => {
  const missing = await snapshot(['build', 'no-such-build.mjs', '--out', path.join(work, 'never')], { cwd: misc });
  t.equal(missing.code, 2);
  t.match(missing.stderr, /^snapshot: USAGE: the build script .*no-such-build\.mjs does not exist\. Give the path of a \.js, \.mjs, \.ts or \.mts file/m);
  t.notMatch(missing.stderr, /node:internal|ERR_MODULE_NOT_FOUND/);
  t.notOk(fs.existsSync(path.join(work, 'never')));

  const { out } = await goodKeep(work, 'advice');
  const manifestPath = path.join(out, 'manifest.json');
  const restore = await snapshot(['restore', manifestPath]);
  t.equal(restore.code, 1);
  t.match(restore.stderr, /SNAPSHOT_INVALID: .*manifest\.json is a file of the snapshot .*advice; give that directory\./);
  t.notMatch(restore.stderr, /--out .*manifest\.json/, 'no advice to build into manifest.json');
  const nowhere = await snapshot(['restore', path.join(work, 'nowhere')]);
  t.match(nowhere.stderr, /SNAPSHOT_INVALID: .*nowhere does not exist\./);
});

t.test('an --out directory that holds anything a build did not write is refused, and kept as it was', async t => {
  const cases: Array<[string, (dir: string) => void]> = [
    ['a web app folder with its own manifest.json', dir => {
      fs.writeFileSync(path.join(dir, 'manifest.json'), '{"name":"My PWA"}');
      fs.writeFileSync(path.join(dir, 'index.html'), '<html>');
    }],
    ['a copied snapshot with notes and photos beside it', dir => {
      fs.cpSync(path.join(work, 'copied-source'), dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine');
      fs.mkdirSync(path.join(dir, 'photos'));
    }],
    ['a service directory with a file of its own', dir => {
      fs.cpSync(path.join(work, 'copied-source'), dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'counter', 'keep.me'), 'mine');
    }],
  ];
  const made = await build(path.join(work, 'copied-source'), 'good');
  t.equal(made.code, 0, made.stderr);
  for (const [label, fill] of cases) {
    const dir = path.join(work, `foreign-${cases.findIndex(c => c[0] === label)}`);
    fs.mkdirSync(dir);
    fill(dir);
    const before = fingerprint(dir);
    const run = await build(dir, 'good');
    t.equal(run.code, 2, `${label}: usage error`);
    t.match(run.stderr, /USAGE: .* exists and is not a snapshot directory \(it holds .*\); choose another --out/, label);
    t.same(fingerprint(dir), before, `${label}: nothing changed`);
  }
});
