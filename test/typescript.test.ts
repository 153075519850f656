// TypeScript services and build scripts, with no build step, archived as JavaScript.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { fixture, lastJson, moveToTarget, node, projectFrom, snapshot, tempDir } from './helpers.js';

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

// Plain Node running the same sources through tsx is the reference (test/fixtures/typed-nodenext/facts.ts).
t.test('TypeScript as tsx runs it: NodeNext import extensions, namespaces and enums', async t => {
  const dir = fixture('typed-nodenext');
  const reference = await node(['--import', 'tsx', 'facts.ts'], { cwd: dir });
  t.equal(reference.code, 0, reference.stderr);
  const expected = lastJson(reference) as Record<'main' | 'shapes', [unknown, unknown]>;
  const nodenextOut = path.join(work, 'nodenext');
  const nodenextState = path.join(work, 'nodenext.json');
  const built = await snapshot(['build', 'build.ts', '--out', nodenextOut], { cwd: dir, env: { TYPED_STATE_FILE: nodenextState } });
  t.equal(built.code, 0, built.stderr);
  if (built.code !== 0) return;
  t.same(JSON.parse(fs.readFileSync(nodenextState, 'utf8')), { main: expected.main[0], shapes: expected.shapes[0] }, 'at build time');
  const target = moveToTarget(nodenextOut);
  for (const service of ['main', 'shapes'] as const) {
    const restored = await snapshot(['restore', target, '--call', `${service}.facts`]);
    t.equal(restored.code, 0, restored.stderr);
    t.same(lastJson(restored), expected[service][1], `${service} after restore elsewhere: its second call`);
  }
});

// swc's WebAssembly memory grows for a large module; after lockdown on Node 20 its glue
// then read a detached buffer ("TypeScript does not parse: Cannot perform
// DataView.prototype.setInt32 on a detached ArrayBuffer") for that module and every later one.
t.test('a large TypeScript module, then more TypeScript, still load', async t => {
  const project = projectFrom('typed-nodenext');
  const lines = Array.from({ length: 3000 }, (_, i) => `export const v${i}: number = ${i};`);
  fs.writeFileSync(path.join(project, 'services', 'big.ts'), `${lines.join('\n')}\nexport const sum = (): number => ${lines.length * (lines.length - 1) / 2};\n`);
  fs.writeFileSync(
    path.join(project, 'build-big.ts'),
    "import { importService } from 'membrane-snapshot';\n" +
      "const big = await importService<typeof import('./services/big.js')>('./services/big.ts');\n" +
      "const main = await importService<typeof import('./services/main.js')>('./services/main.ts');\n" +
      'console.log(JSON.stringify([await big.sum(), (await main.facts()).twice]));\n',
  );
  const built = await snapshot(['build', 'build-big.ts', '--out', 'snap'], { cwd: project });
  t.equal(built.code, 0, built.stderr);
  t.same(lastJson(built), [4498500, 42]);
  const restored = await snapshot(['restore', moveToTarget(path.join(project, 'snap')), '--call', 'big.sum']);
  t.equal(restored.code, 0, restored.stderr);
  t.same(lastJson(restored), 4498500);
});

t.test('a .cts service written with export, in a "type": "module" package, is refused with what to do', async t => {
  // .cts is CommonJS whatever the package says (tsc compiles its export to exports.x; only types are stripped here).
  const project = projectFrom('cache');
  fs.writeFileSync(path.join(project, 'counter.cts'), 'export const count = (n: number): number => n + 1;\n');
  fs.writeFileSync(path.join(project, 'build-cts.mjs'), "import { importService } from 'membrane-snapshot';\nconst svc = await importService('./counter.cts', { name: 'counter' });\nconsole.log(await svc.count(1));\n");
  const run = await snapshot(['build', 'build-cts.mjs', '--out', path.join(project, 'out')], { cwd: project });
  t.not(run.code, 0);
  t.match(run.stderr, /SERVICE_LOAD_FAILED/);
  t.match(run.stderr, /A \.cts file is CommonJS whatever its package\.json says.*write require\(\) and module\.exports \(exports\.x = \.\.\.\), or name the file \.mts/s);
  t.notMatch(run.stderr, /Add "type": "module"/, 'not the hint for a package without "type": "module"');
});
