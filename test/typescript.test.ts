// TypeScript services and build scripts, with no build step, archived as JavaScript.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { fixture, lastJson, moveToTarget, node, projectFrom, repo, snapshot, tempDir } from './helpers.js';

/** tsx's command line (which runs a .cts written with export; `node --import tsx` hands it to Node's ESM parser). */
const tsx = path.join(repo, 'node_modules', 'tsx', 'dist', 'cli.mjs');

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

// TypeScript that runs as CommonJS (no "type": "module" in its package, or a .cts) written with import/export,
// extensionless relative imports and `export *`: tsx compiles it to CommonJS with esbuild (test/fixtures/typed-commonjs).
t.test('TypeScript with import/export that runs as CommonJS computes what it computes under tsx', async t => {
  const dir = fixture('typed-commonjs');
  const reference = await node([tsx, 'facts.mts'], { cwd: dir });
  t.equal(reference.code, 0, reference.stderr);
  const [first, second] = lastJson(reference) as [unknown, unknown];
  const commonjsOut = path.join(work, 'commonjs');
  const commonjsState = path.join(work, 'commonjs.json');
  const built = await snapshot(['build', 'build.mts', '--out', commonjsOut], { cwd: dir, env: { TYPED_STATE_FILE: commonjsState } });
  t.equal(built.code, 0, built.stderr);
  if (built.code !== 0) return;
  t.same(JSON.parse(fs.readFileSync(commonjsState, 'utf8')), first, 'at build time');
  const restored = await snapshot(['restore', moveToTarget(commonjsOut), '--call', 'main.facts']);
  t.equal(restored.code, 0, restored.stderr);
  t.same(lastJson(restored), second, 'after restore elsewhere: its second call');
});

/**
 * In a fresh copy of the typed-commonjs fixture: `buildScript` run by `snapshot build`, and `plainScript`
 * run by the tsx CLI; both print one JSON line, which must agree. Returns the build's.
 */
const builtAndUnderTsx = async (t: Test, buildScript: string, plainScript: string): Promise<unknown> => {
  const project = projectFrom('typed-commonjs');
  fs.writeFileSync(path.join(project, 'build-check.mts'), buildScript);
  const built = await snapshot(['build', 'build-check.mts', '--out', 'snap'], { cwd: project });
  t.equal(built.code, 0, built.stderr);
  fs.writeFileSync(path.join(project, 'plain-check.mts'), plainScript);
  const reference = await node([tsx, 'plain-check.mts'], { cwd: project });
  t.equal(reference.code, 0, reference.stderr);
  t.same(lastJson(built), lastJson(reference), 'the build prints what tsx prints');
  return lastJson(built);
};

t.test("the names such a module re-exports (export * from './more', extensionless) are its exports, as Node's lexer finds them in the compiled module", async t => {
  const built = await builtAndUnderTsx(
    t,
    "import { importService } from 'membrane-snapshot';\n" +
      "const main = await importService('./services/main.ts', { name: 'main' });\n" +
      'console.log(JSON.stringify([Object.keys(main).filter(k => k !== "default" && k !== "__esModule").sort(), await main.more, await main.answer, await main.double(4)]));\n',
    "const m = await import('./services/main.ts');\nconsole.log(JSON.stringify([Object.keys(m).filter(k => k !== 'default' && k !== '__esModule').sort(), m.more, m.answer, m.double(4)]));\n",
  );
  t.same(built, [['Counter', 'answer', 'double', 'facts', 'more'], 'more', 42, 8]);
});

t.test('a namespace import handed out by such a module is a reference, as its getters are live bindings', async t => {
  const built = await builtAndUnderTsx(
    t,
    "import { importService } from 'membrane-snapshot';\nconst ns = await importService('./services/ns.ts', { name: 'ns' });\nconst util = await ns.getUtil();\n// A reference's properties are read in the service's turns: each read is awaited.\nconst twice = await util.twice;\nconsole.log(JSON.stringify([await twice(4), (await util.Color).Blue]));\n",
    "const { getUtil } = await import('./services/ns.ts');\nconst util = getUtil();\nconsole.log(JSON.stringify([util.twice(4), util.Color.Blue]));\n",
  );
  t.same(built, [8, 2]);
});

t.test('a .cjs service written with export is refused with what to do, as Node refuses it', async t => {
  // .cjs is CommonJS whatever the package says, and JavaScript is not compiled: Node throws the same SyntaxError.
  const project = projectFrom('cache');
  fs.writeFileSync(path.join(project, 'counter.cjs'), 'export const count = n => n + 1;\n');
  fs.writeFileSync(path.join(project, 'build-cjs.mjs'), "import { importService } from 'membrane-snapshot';\nconst svc = await importService('./counter.cjs', { name: 'counter' });\nconsole.log(await svc.count(1));\n");
  const run = await snapshot(['build', 'build-cjs.mjs', '--out', path.join(project, 'out')], { cwd: project });
  t.not(run.code, 0);
  t.match(run.stderr, /SERVICE_LOAD_FAILED/);
  t.match(run.stderr, /A \.cjs file is CommonJS whatever its package\.json says.*write require\(\) and module\.exports \(exports\.x = \.\.\.\), or name the file \.mjs/s);
  t.notMatch(run.stderr, /Add "type": "module"/, 'not the hint for a package without "type": "module"');
});
