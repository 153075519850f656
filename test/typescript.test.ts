// TypeScript services and build scripts, with no build step, archived as JavaScript.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { fixture, lastJson, moveToTarget, snapshot, tempDir } from './helpers.js';

const work = tempDir('typed');
const out = path.join(work, 'snapshot');
const stateFile = path.join(work, 'state.json');

t.before(async () => {
  const built = await snapshot(['build', 'build.ts', '--out', out], { cwd: fixture('typed'), env: { TYPED_STATE_FILE: stateFile } });
  if (built.code !== 0) throw new Error(built.stderr);
});

t.test('.ts, .mts and .cts services build and restore elsewhere to the build-time state', async t => {
  const build = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  t.match(build, { inventory: { labels: ['40 x bolts', '2 x nuts'] }, joined: 'a/b' });
  const target = moveToTarget(out);
  const inventory = await snapshot(['restore', target, '--call', 'inventory.describe']);
  t.equal(inventory.code, 0, inventory.stderr);
  t.same(lastJson(inventory), build.inventory);
  const mixed = await snapshot(['restore', target, '--call', 'mixed.joined']);
  t.same(lastJson(mixed), 'a/b');
});

t.test('the archive holds JavaScript: no TypeScript is needed to restore', async t => {
  const zip = fs.readFileSync(path.join(out, 'inventory', 'archive.zip')).toString('latin1');
  t.ok(zip.includes('inventory.ts'), 'modules keep their names');
  t.notMatch(zip, /interface Stock/, 'type syntax is gone');
});

t.test('errors point at TypeScript lines', async t => {
  const run = await snapshot(['restore', moveToTarget(out), '--call', 'inventory.fail', '--args', '["out of bolts"]']);
  t.equal(run.code, 1);
  t.match(run.stderr, /inventory\.fail\(\.\.\.\) threw Error: inventory failed: out of bolts\n\s+at fail \(.*inventory\.ts:25:9\)/);
  t.notMatch(run.stderr, /dist\/membrane/, 'no frames from inside the library');
});
