// The published package, as a user gets it: packed, installed into a fresh
// project with --engine-strict on this Node, then used there. Every pointer
// the package prints or documents must lead to a file it ships.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { freshProject, lastJson, moveToTarget, packTarball, projectSnapshot, snapshot } from './helpers.js';

const files: Record<string, string> = {
  'build.mjs': `import { importService } from 'membrane-snapshot';
const calc = await importService('./services/calc.ts');
await calc.add(3);
await calc.add(4);
`,
  'services/calc.ts': `interface Totals { total: number; count: number }
const totals: Totals = { total: 0, count: 0 };
export const add = (n: number): Totals => {
  totals.total += n;
  totals.count += 1;
  return { ...totals };
};
`,
};

let project: string;
let installed: string;

t.before(async () => {
  project = await freshProject('package', await packTarball(), files);
  installed = path.join(project, 'node_modules', 'membrane-snapshot');
});

const walk = (dir: string): string[] =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap(d => (d.isDirectory() ? walk(path.join(dir, d.name)) : [path.join(dir, d.name)]));

t.test('a TypeScript service builds in the project and restores elsewhere', async t => {
  const built = await projectSnapshot(project, ['build', 'build.mjs', '--out', 'snap']);
  t.equal(built.code, 0, built.stderr);
  const restored = await snapshot(['restore', moveToTarget(path.join(project, 'snap')), '--call', 'calc.add', '--args', '[5]']);
  t.equal(restored.code, 0, restored.stderr);
  t.same(lastJson(restored), { total: 12, count: 3 });
});

t.test("another copy's CLI (global, npx) hands a build over to the copy the build script imports", async t => {
  const built = await snapshot(['build', 'build.mjs', '--out', 'snap-other-cli'], { cwd: project });
  t.equal(built.code, 0, built.stderr);
  t.match(built.stderr, `build.mjs imports membrane-snapshot ${JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8')).version} from ${fs.realpathSync(installed)}; that copy runs the build`);
  t.notMatch(built.stderr, /Cannot redefine/);
  const restored = await snapshot(['restore', moveToTarget(path.join(project, 'snap-other-cli')), '--call', 'calc.add', '--args', '[5]']);
  t.equal(restored.code, 0, restored.stderr);
  t.same(lastJson(restored), { total: 12, count: 3 });
  const quiet = await snapshot(['build', 'build.mjs', '--out', 'snap-other-cli', '--quiet'], { cwd: project });
  t.equal(quiet.code, 0, quiet.stderr);
  t.equal(quiet.stderr, '', '--quiet says nothing of the hand-over either');
});

t.test('installing runs no script of ours, and engines hold for this Node', async t => {
  const pkg = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8'));
  for (const hook of ['preinstall', 'install', 'postinstall', 'prepare']) t.notOk(pkg.scripts?.[hook], `no ${hook} script`);
  // freshProject installed with --engine-strict on this Node, so the
  // engines of every dependency accept it too (amaro's ">=22" did not).
  t.match(pkg.engines, { node: /^>=20/ }, 'Node 20 is declared');
});

t.test('source maps point at shipped sources', async t => {
  const maps = walk(path.join(installed, 'dist')).filter(f => f.endsWith('.js.map'));
  t.ok(maps.length > 10, 'maps are shipped');
  const missing: string[] = [];
  for (const map of maps) {
    const { sources } = JSON.parse(fs.readFileSync(map, 'utf8')) as { sources: string[] };
    for (const source of sources) if (!fs.existsSync(path.resolve(path.dirname(map), source))) missing.push(`${path.relative(installed, map)} -> ${source}`);
  }
  t.same(missing, []);
});

// A pointer into the package: in the docs, a path that starts with one of its
// top-level folders; in the code, a document or a TypeScript source (the code
// also names files inside its dependencies, such as lib/stream.js of
// readable-stream, which are not pointers into this package).
const docPointer = /(?<![\w./-])((?:docs|dist|lib|compartments|membrane|replay-log|examples|test|bench)\/[\w./-]*[\w-]\.(?:md|ts|js|mjs|json|sh))\b/g;
const codePointer = /(?<![\w./-])(docs\/[\w./-]*[\w-]\.md|(?:lib|compartments|membrane|replay-log)\/[\w./-]*[\w-]\.ts)\b/g;

t.test('every file the code and the docs point to is in the package', async t => {
  const code = walk(path.join(installed, 'dist')).filter(f => f.endsWith('.js'));
  const docs = [...walk(path.join(installed, 'docs')), path.join(installed, 'README.md')];
  const pointers = new Set<string>();
  for (const file of code) for (const [, p] of fs.readFileSync(file, 'utf8').matchAll(codePointer)) pointers.add(p);
  for (const file of docs) for (const [, p] of fs.readFileSync(file, 'utf8').matchAll(docPointer)) pointers.add(p);
  t.ok(pointers.has('docs/environment.md'), 'the environment document is pointed to');
  t.same([...pointers].filter(p => !fs.existsSync(path.join(installed, p))), [], `${pointers.size} pointers, all shipped`);
});

t.test('a load failure points at the installed environment document', async t => {
  fs.writeFileSync(path.join(project, 'services', 'greedy.js'), "import { exec } from 'node:child_process';\nexport const run = () => exec;\n");
  fs.writeFileSync(path.join(project, 'build-greedy.mjs'), "import { importService } from 'membrane-snapshot';\nawait importService('./services/greedy.js');\n");
  const run = await projectSnapshot(project, ['build', 'build-greedy.mjs', '--out', 'greedy']);
  t.equal(run.code, 1);
  const doc = /listed in (\S+\.md)/.exec(run.stderr)?.[1];
  t.equal(doc, path.join(fs.realpathSync(installed), 'docs', 'environment.md'), run.stderr);
  t.ok(doc && fs.existsSync(doc));
});
