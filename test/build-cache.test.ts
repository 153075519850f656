// The build caches (compartments/build-cache.ts: module analyses, evasive
// rewrites) keep their entries in pack files, many entries to a file: a
// build writes what it made as one pack, a later process reads them all;
// a damaged pack is removed and its entries made again; many packs are
// merged into one. What a later build archives comes from there: a cache
// that is not this user's alone is not used, and no service writes to one.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MAX_PACKS, MAX_PACK_BYTES, decodePack, encodePack, openBuildCache } from '../compartments/build-cache.js';
import { fixture, lastJson, node, repo, snapshot, tempDir } from './helpers.js';

const packs = (dir: string): string[] => fs.readdirSync(dir).filter(file => file.endsWith('.pack')).sort();
const entriesOf = (dir: string): Map<string, string> => {
  const all = new Map<string, string>();
  for (const file of packs(dir)) for (const [key, bytes] of decodePack(fs.readFileSync(path.join(dir, file))) ?? []) all.set(key, bytes.toString('utf8'));
  return all;
};

t.test('a build writes its entries as one pack, owner-only, that the next process reads', async t => {
  const dir = path.join(tempDir('build-cache'), 'cache');
  const cache = openBuildCache(dir);
  t.equal(cache.read('a'), undefined, 'an empty cache has nothing (and no directory yet)');
  for (let i = 0; i < 500; i += 1) cache.write(`k${i}`, `entry ${i}`);
  cache.write('bytes', Uint8Array.of(1, 2, 3));
  t.equal(cache.read('k7')?.toString(), 'entry 7', 'an entry is read back at once, before it is written');
  await cache.flushed();
  t.equal(packs(dir).length, 1, '501 entries, one file');
  t.equal((fs.statSync(path.join(dir, packs(dir)[0] as string)).mode & 0o777).toString(8), '600');
  t.equal((fs.statSync(dir).mode & 0o777).toString(8), '700');
  t.same(fs.readdirSync(dir).filter(file => file.endsWith('.tmp')), [], 'no temporary file left');

  const next = openBuildCache(dir);
  t.equal(next.read('k499')?.toString(), 'entry 499');
  t.same([...(next.read('bytes') ?? [])], [1, 2, 3]);
  t.equal(next.read('missing'), undefined);
});

t.test('entries made just before the process exits are written as it exits', async t => {
  const dir = path.join(tempDir('build-cache-exit'), 'cache');
  const module = pathToFileURL(path.join(repo, 'dist', 'compartments', 'build-cache.js')).href;
  const run = await node(['--input-type=module', '-e', `const { openBuildCache } = await import(${JSON.stringify(module)}); const c = openBuildCache(${JSON.stringify(dir)}); c.write('late', 'kept'); process.exit(0);`]);
  t.equal(run.code, 0, run.stderr);
  t.equal(entriesOf(dir).get('late'), 'kept');
  t.same(fs.readdirSync(dir).filter(file => file.endsWith('.tmp')), []);
});

t.test('a damaged pack is removed and its entries are missing; the others stay', async t => {
  const dir = path.join(tempDir('build-cache-damaged'), 'cache');
  fs.mkdirSync(dir);
  const good = encodePack([['good', Buffer.from('kept')]]);
  const whole = encodePack([['cut', Buffer.from('x'.repeat(100))]]);
  const flipped = encodePack([['flipped', Buffer.from('y'.repeat(100))]]);
  flipped[40] ^= 1;
  fs.writeFileSync(path.join(dir, '1-good.pack'), good);
  fs.writeFileSync(path.join(dir, '2-cut.pack'), whole.subarray(0, whole.length - 10));
  fs.writeFileSync(path.join(dir, '3-flipped.pack'), flipped);
  fs.writeFileSync(path.join(dir, '4-empty.pack'), '');
  const cache = openBuildCache(dir);
  t.equal(cache.read('good')?.toString(), 'kept');
  t.equal(cache.read('cut'), undefined, 'a pack cut short is not read');
  t.equal(cache.read('flipped'), undefined, 'a pack with a changed byte is not read');
  t.same(packs(dir), ['1-good.pack'], 'the damaged packs are removed');
  t.equal(decodePack(Buffer.from('MSBCACHE1\n')), undefined, 'bytes too short for a pack');
});

t.test('more than MAX_PACKS packs are merged into one, a later entry winning', async t => {
  const dir = path.join(tempDir('build-cache-merge'), 'cache');
  fs.mkdirSync(dir);
  for (let i = 0; i <= MAX_PACKS; i += 1) {
    const name = `${String(i).padStart(4, '0')}.pack`;
    fs.writeFileSync(path.join(dir, name), encodePack([[`own${i}`, Buffer.from(`v${i}`)], ['shared', Buffer.from(`from ${i}`)]]));
  }
  const cache = openBuildCache(dir);
  t.equal(cache.read('shared')?.toString(), `from ${MAX_PACKS}`, 'the last pack in name (time) order wins');
  await cache.flushed();
  t.equal(packs(dir).length, 1, `${MAX_PACKS + 1} packs merged into one`);
  const merged = entriesOf(dir);
  t.equal(merged.size, MAX_PACKS + 2);
  t.equal(merged.get('own0'), 'v0');
  t.equal(merged.get('shared'), `from ${MAX_PACKS}`);
});

t.test('clear() removes the entries, those still to be written included', async t => {
  const dir = path.join(tempDir('build-cache-clear'), 'cache');
  const cache = openBuildCache(dir);
  cache.write('a', 'one');
  await cache.flushed();
  cache.write('b', 'two');
  await cache.clear();
  t.notOk(fs.existsSync(dir));
  t.equal(cache.read('a'), undefined);
  await cache.flushed();
  t.notOk(fs.existsSync(dir), 'nothing written after clear()');
});

t.test("a cache directory this user does not own alone is neither read nor written; odd files in it are skipped", async t => {
  const pack = encodePack([['k', Buffer.from('v')]]);
  const make = (name: string): string => {
    const dir = path.join(tempDir(`build-cache-${name}`), 'cache');
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.writeFileSync(path.join(dir, '1.pack'), pack, { mode: 0o600 });
    return dir;
  };
  const groupWritable = make('group');
  fs.chmodSync(groupWritable, 0o770);
  t.equal(openBuildCache(groupWritable).read('k'), undefined, 'a directory others may write: not read');
  const parentOpen = make('parent');
  fs.chmodSync(path.dirname(parentOpen), 0o777);
  t.equal(openBuildCache(parentOpen).read('k'), undefined, 'a directory above it others may write: not read');
  const unwritten = openBuildCache(groupWritable);
  unwritten.write('new', 'entry');
  await unwritten.flushed();
  t.same(packs(groupWritable), ['1.pack'], 'nor written');
  if (typeof process.getuid === 'function' && process.getuid() === 0) {
    const foreign = make('foreign');
    fs.chownSync(foreign, 65534, 65534);
    t.equal(openBuildCache(foreign).read('k'), undefined, "another user's directory: not read");
  }

  const dir = make('odd');
  fs.writeFileSync(path.join(dir, '2.pack'), encodePack([['shared', Buffer.from('theirs')]]));
  fs.chmodSync(path.join(dir, '2.pack'), 0o666);
  fs.symlinkSync(path.join(dir, '1.pack'), path.join(dir, '3.pack'));
  execFileSync('mkfifo', [path.join(dir, '4.pack')]);
  fs.writeFileSync(path.join(dir, '5.pack'), '');
  fs.truncateSync(path.join(dir, '5.pack'), MAX_PACK_BYTES + 1);
  fs.writeFileSync(path.join(dir, 'old.pack.tmp'), 'left by a killed build', { mode: 0o600 });
  fs.utimesSync(path.join(dir, 'old.pack.tmp'), new Date(Date.now() - 2 * 3600_000), new Date(Date.now() - 2 * 3600_000));
  fs.writeFileSync(path.join(dir, 'new.pack.tmp'), 'being written', { mode: 0o600 });
  const cache = openBuildCache(dir);
  t.equal(cache.read('k')?.toString(), 'v', 'its own pack is read (a FIFO did not stop it, a pack over MAX_PACK_BYTES was not read)');
  t.equal(cache.read('shared'), undefined, 'a pack others may write is not read');
  t.ok(fs.existsSync(path.join(dir, '5.pack')), 'the large file is left alone');
  t.notOk(fs.existsSync(path.join(dir, 'old.pack.tmp')), 'a temporary file over an hour old is removed');
  t.ok(fs.existsSync(path.join(dir, 'new.pack.tmp')), 'a recent one is left to its build');
});

t.test('a cache reached through a link (node_modules/.cache replaced by a link elsewhere) is not used', async t => {
  const project = tempDir('build-cache-link');
  const elsewhere = path.join(tempDir('build-cache-elsewhere'), 'shared');
  const packs = path.join(elsewhere, 'membrane-snapshot', 'name-1-1-pack1');
  fs.mkdirSync(packs, { recursive: true, mode: 0o700 });
  fs.chmodSync(path.join(elsewhere, 'membrane-snapshot'), 0o700);
  fs.writeFileSync(path.join(packs, '1.pack'), encodePack([['k', Buffer.from('planted')]]), { mode: 0o600 });
  fs.mkdirSync(path.join(project, 'node_modules'));
  fs.symlinkSync(elsewhere, path.join(project, 'node_modules', '.cache'));
  const cache = openBuildCache(path.join(project, 'node_modules', '.cache', 'membrane-snapshot', 'name-1-1-pack1'));
  t.equal(cache.read('k'), undefined, 'not read through the link');
  cache.write('new', 'entry');
  await cache.flushed();
  t.same(fs.readdirSync(packs), ['1.pack'], 'nor written');
  const direct = openBuildCache(packs);
  t.equal(direct.read('k')?.toString(), 'planted', 'the same directory, not through a link, is used');
});

t.test('a build whose cache cannot be written exits as it would without one', async t => {
  // The cache's directory cannot be made (a file where a directory should be): entries made just before exit.
  const parent = tempDir('build-cache-blocked');
  fs.writeFileSync(path.join(parent, 'file'), '');
  const dir = path.join(parent, 'file', 'cache');
  const module = pathToFileURL(path.join(repo, 'dist', 'compartments', 'build-cache.js')).href;
  const run = await node(['--input-type=module', '-e', `const { openBuildCache } = await import(${JSON.stringify(module)}); const c = openBuildCache(${JSON.stringify(dir)}); c.write('late', 'lost'); console.log('done');`]);
  t.equal(run.code, 0, run.stderr);
  t.equal(run.stderr, '');
  t.equal(run.stdout.trim(), 'done');
});

t.test('no service writes into a build cache, whatever its policy', async t => {
  const dot = path.join(repo, 'node_modules', '.cache');
  const root = path.join(dot, 'membrane-snapshot');
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(root, 'before.txt'), 'made by the user');
  t.teardown(() => {
    fs.rmSync(path.join(root, 'before.txt'), { force: true });
    fs.rmSync(path.join(dot, 'other-tool.txt'), { force: true });
  });
  const out = path.join(tempDir('build-cache-reach'), 'snapshot');
  const run = await snapshot(['build', 'build-cache-reach.mjs', '--out', out], { cwd: fixture('trust'), env: { CACHE_DOT: dot, CACHE_ROOT: root } });
  t.equal(run.code, 0, run.stderr);
  const results = lastJson(run) as Record<string, { ok?: unknown; code?: string; message?: string }>;
  t.same(results.besideCache, {}, 'the policy is in force: beside the cache, a write is allowed');
  t.equal(fs.readFileSync(path.join(dot, 'other-tool.txt'), 'utf8'), 'fine');
  for (const key of ['plantPack', 'plantDeeper', 'hardLinkOut', 'renameAbove', 'renameCache', 'copyIntoAbove', 'removeAbove', 'unlimitedPlant']) {
    t.match(results[key], { code: 'REACH_DENIED', message: /a build cache of membrane-snapshot \(what later builds archive\), which no service writes to, whatever its policy/ }, key);
  }
  t.same(results.readCache, { ok: 'made by the user' }, 'reading it stays as the policy says');
  t.notOk(fs.existsSync(path.join(root, 'module-source-0.0.0-1-pack1', 'zzzzzzzzz-planted.pack')), 'nothing was copied into it');
  t.ok(fs.existsSync(root), 'the cache is where it was');
  // Another project's node_modules, which holds no cache of this build's: a tree staged with .cache/membrane-snapshot
  // in it, copied (each of fs.cp's forms) or moved there, would be a cache a later build there reads.
  for (const key of ['copyIntoOtherProject', 'copyIntoOtherProjectAsync', 'copyIntoOtherProjectCallback', 'renameIntoOtherProject']) {
    t.match(results[key], { code: 'REACH_DENIED', message: /is inside .*node_modules[/]\.cache[/]membrane-snapshot, a build cache of membrane-snapshot/ }, key);
  }
  const [other, bare] = results.otherProjects as unknown as [string, string];
  t.notOk(fs.existsSync(path.join(other, 'node_modules', '.cache')), 'nothing was copied there');
  t.notOk(fs.existsSync(path.join(bare, 'node_modules')), 'nor moved there');
  fs.rmSync(other, { recursive: true, force: true });
  fs.rmSync(bare, { recursive: true, force: true });
});
