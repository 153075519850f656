// The build caches (compartments/build-cache.ts: module analyses, evasive
// rewrites) keep their entries in pack files, many entries to a file: a
// build writes what it made as one pack, a later process reads them all;
// a damaged pack is removed and its entries made again; many packs are
// merged into one.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MAX_PACKS, decodePack, encodePack, openBuildCache } from '../compartments/build-cache.js';
import { node, repo, tempDir } from './helpers.js';

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
