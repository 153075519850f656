// A build never destroys the last good snapshot, never seals work it did not wait
// for, and fails with a typed error (never a raw crash) when the disk refuses it.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { cliPath, fixture, moveToTarget, snapshot, tempDir, type Run } from './helpers.js';
import { spawn } from 'node:child_process';

const work = tempDir('build-safety');
const misc = fixture('misc');

/** Every file under `dir` with the sha256 of its content, and the directory's inode. */
const fingerprint = (dir: string): { inode: number; files: Record<string, string> } => {
  const files: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else files[path.relative(dir, full)] = createHash('sha256').update(fs.readFileSync(full)).digest('hex');
    }
  };
  walk(dir);
  return { inode: fs.statSync(dir).ino, files };
};

const build = (out: string, mode: string): Promise<Run> => snapshot(['build', 'build-modes.mjs', '--out', out], { cwd: misc, env: { MISC_MODE: mode } });

/** Siblings of `out` a build may leave behind: only `<out>.partial` is allowed. */
const leftovers = (out: string): string[] =>
  fs.readdirSync(path.dirname(out)).filter(name => name.startsWith(`${path.basename(out)}.`) && name !== `${path.basename(out)}.partial`);

const goodKeep = async (name: string): Promise<{ out: string; before: ReturnType<typeof fingerprint> }> => {
  const out = path.join(work, name);
  const good = await build(out, 'good');
  if (good.code !== 0) throw new Error(good.stderr);
  return { out, before: fingerprint(out) };
};

/** The snapshot restores, and the counter goes on from `bumps` recorded bumps. */
const restoresCounter = async (out: string, bumps = 1): Promise<boolean> => {
  const run = await snapshot(['restore', moveToTarget(out), '--call', 'counter.bump']);
  return run.code === 0 && run.stdout.includes(`"count":${bumps + 1}`);
};

t.test('a failed build leaves the previous snapshot exactly as it was', async t => {
  const { out, before } = await goodKeep('keep');
  const typo = await build(out, 'typo');
  t.equal(typo.code, 1);
  t.match(typo.stderr, /^snapshot: BUILD_FAILED: the build script .*build-modes\.mjs failed; no snapshot was sealed\. .*keep is unchanged\./m);
  t.notMatch(typo.stderr, /unexpected error/);
  t.same(fingerprint(out), before, 'same directory, same files, same bytes');
  t.same(leftovers(out), [], 'no work directory left beside it');
  t.ok(await restoresCounter(out), 'the previous snapshot still restores');

  // A good build replaces it whole: a new directory, no stale files.
  fs.writeFileSync(path.join(out, 'stale.txt'), 'from an older build');
  const again = await build(out, 'good');
  t.equal(again.code, 0, again.stderr);
  t.notOk(fs.existsSync(path.join(out, 'stale.txt')), 'the old directory was replaced, not written over');
  t.notOk(fs.existsSync(`${out}.partial`), 'the typo build kept no partial recording (it recorded nothing)');
  t.same(leftovers(out), []);
});

t.test('a build script that does not await its work', async t => {
  await t.test('main(); without await: the build waits for the importService it started', async t => {
    const out = path.join(work, 'no-await');
    const run = await build(out, 'no-await');
    t.equal(run.code, 0, run.stderr);
    t.match(run.stdout, /counter: \d+ events/);
    t.match(run.stdout, /\(1 service\)/);
    t.ok(await restoresCounter(out, 2), 'both bumps were recorded before sealing');
  });

  await t.test('an importService only after a delay: nothing to seal is a failure that says to await', async t => {
    const { out, before } = await goodKeep('late-only');
    const run = await build(out, 'late-only');
    t.equal(run.code, 1);
    t.match(run.stderr, /^snapshot: BUILD_FAILED: the build script finished without importing any service, .*await that work at its top level \(for example `await main\(\);` instead of `main\(\);`\)/m);
    t.same(fingerprint(out), before);
  });

  await t.test('an importService after sealing fails the build, and the previous snapshot survives', async t => {
    const { out, before } = await goodKeep('late-second');
    const run = await build(out, 'late-second');
    t.equal(run.code, 1);
    t.match(run.stderr, /^snapshot: BUILD_FAILED: .*\nUSAGE: importService\(".*counter\.js"\) came after the build had sealed the snapshot .*Await every importService from the top level/m);
    t.notMatch(run.stdout, /^built /m, 'no "built" line');
    t.same(fingerprint(out), before);
    t.same(leftovers(out), []);
  });

  await t.test('an unhandled rejection in the build script fails the build', async t => {
    const { out, before } = await goodKeep('rejection');
    const run = await build(out, 'rejection');
    t.equal(run.code, 1);
    t.match(run.stderr, /^snapshot: BUILD_FAILED: the build script .* failed; no snapshot was sealed\..*\nError: a promise the build script forgot/m);
    t.same(fingerprint(out), before);
  });
});

for (const { where, mode, kib } of [
  { where: 'the archive', mode: 'good', kib: 1 }, // the archive is about 1.7 KiB
  { where: 'the log, mid-turn', mode: 'many', kib: 2 }, // the archive fits, the log (tens of KiB) does not
]) {
  t.test(`a file-size limit hit while writing ${where} is BUILD_FAILED with the reason, and the previous snapshot survives`, async t => {
    const { out, before } = await goodKeep(`efbig-${mode}`);
    // ulimit -f counts 1024-byte blocks.
    const run = await new Promise<Run>((resolve, reject) => {
      const child = spawn('bash', ['-c', `ulimit -f ${kib}; exec "${process.execPath}" "${cliPath}" build build-modes.mjs --out "${out}"`], {
        cwd: misc,
        env: { ...process.env, NODE_OPTIONS: '', MISC_MODE: mode },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', d => (stdout += d));
      child.stderr.on('data', d => (stderr += d));
      child.on('error', reject);
      child.on('close', code => resolve({ code, stdout, stderr }));
    });
    t.equal(run.code, 1, `exit code 1; stderr: ${run.stderr}`);
    t.match(run.stderr, /^snapshot: BUILD_FAILED: .*\nEFBIG: a file grew past the file-size limit \(ulimit -f\) while writing the snapshot/m);
    t.notMatch(run.stderr, /unexpected error|SES_UNCAUGHT/);
    t.same(fingerprint(out), before);
    t.same(leftovers(out), [], 'the work directory is removed to give the space back');
    t.notOk(fs.existsSync(`${out}.partial`));
  });
}

t.test('a build killed between its two renames: the next build puts the old snapshot back first', async t => {
  const { out, before } = await goodKeep('interrupted');
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

  const { out } = await goodKeep('advice');
  const manifestPath = path.join(out, 'manifest.json');
  const restore = await snapshot(['restore', manifestPath]);
  t.equal(restore.code, 1);
  t.match(restore.stderr, /SNAPSHOT_INVALID: .*manifest\.json is a file; give the snapshot directory that holds manifest\.json \(.*advice, if this is one of its files\)/);
  t.notMatch(restore.stderr, /--out .*manifest\.json/, 'no advice to build into manifest.json');
  const nowhere = await snapshot(['restore', path.join(work, 'nowhere')]);
  t.match(nowhere.stderr, /SNAPSHOT_INVALID: .*nowhere does not exist\./);
});
