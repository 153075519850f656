// Package resolution where Node finds a package by walking node_modules
// folders (compartments/node-resolution.ts, makeImportLinker): a package
// that vendors its own copy of an undeclared dependency below one of its
// directories, and a node_modules entry that is a symlink loop. The service
// must never load another module than plain Node loads; where one
// compartment cannot say what Node says, it fails as a missing module.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { lastJson, moveToTarget, node, snapshot, tempDir } from './helpers.js';

const repo = path.resolve(import.meta.dirname, '..');

/** Write `files` (path -> text) under `dir`. */
const write = (dir: string, files: Record<string, string>): void => {
  for (const [file, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  }
};

t.test('an undeclared package Node finds in a folder of the requiring module, and a symlink loop, load nothing else than in Node', async t => {
  const project = path.join(tempDir('resolution'), 'project');
  const pkg = (name: string, extra: object = {}) => JSON.stringify({ name, version: '1.0.0', main: 'index.js', ...extra });
  write(project, {
    'package.json': JSON.stringify({ name: 'resolution', version: '1.0.0', type: 'module', dependencies: { a: '1.0.0', donor: '1.0.0' } }),
    'svc.js': "import a from 'a';\nexport const run = () => ({ root: a.rootY(), nested: a.nestedY(), loop: a.loop() });\n",
    'node_modules/a/package.json': pkg('a'),
    // lib/m.js finds y in lib/node_modules (vendored); index.js, at the package root, finds the hoisted one.
    'node_modules/a/index.js': "const m = require('./lib/m.js');\nexports.rootY = () => { try { return require('y').name; } catch (error) { return error.code; } };\nexports.nestedY = m.nestedY;\nexports.loop = m.loop;\n",
    'node_modules/a/lib/m.js':
      "exports.nestedY = () => { try { return require('y').name; } catch (error) { return error.code; } };\n" +
      "exports.loop = () => { try { require('loop2'); return 'loaded'; } catch (error) { return error.code; } };\n",
    'node_modules/a/lib/node_modules/y/package.json': pkg('y'),
    'node_modules/a/lib/node_modules/y/index.js': "exports.name = 'y vendored in a/lib';\n",
    'node_modules/y/package.json': pkg('y'),
    'node_modules/y/index.js': "exports.name = 'y hoisted';\n",
    'node_modules/donor/package.json': pkg('donor', { dependencies: { y: '1.0.0' } }),
    'node_modules/donor/index.js': "module.exports = require('y');\n",
    'build.mjs': "import { importService } from 'membrane-snapshot';\nconst svc = await importService('./svc.js');\nconsole.log(JSON.stringify(await svc.run()));\n",
  });
  fs.symlinkSync('loop2', path.join(project, 'node_modules', 'loop2'));
  fs.symlinkSync(repo, path.join(project, 'node_modules', 'membrane-snapshot'));

  const plain = await node(['--input-type=module', '-e', "import('./svc.js').then(async m => console.log(JSON.stringify(m.run())))"], { cwd: project });
  t.equal(plain.code, 0, plain.stderr);
  t.same(lastJson(plain), { root: 'y hoisted', nested: 'y vendored in a/lib', loop: 'MODULE_NOT_FOUND' }, 'plain Node');

  const built = await snapshot(['build', 'build.mjs', '--out', 'snap'], { cwd: project });
  t.equal(built.code, 0, `a symlink loop in node_modules fails no build (ELOOP was thrown): ${built.stderr}`);
  const atBuild = lastJson(built) as Record<string, string>;
  // The package's two modules find two copies of y: the compartment links neither (both fail as a missing module),
  // where the first version linked the hoisted one for both (lib/m.js got another module than in Node, silently).
  t.same(atBuild, { root: 'MODULE_NOT_FOUND', nested: 'MODULE_NOT_FOUND', loop: 'MODULE_NOT_FOUND' }, 'no module of a is given a y Node would not give it; the loop is a missing module, as in Node');
  const restored = await snapshot(['restore', moveToTarget(path.join(project, 'snap')), '--call', 'svc.run']);
  t.equal(restored.code, 0, restored.stderr);
  t.same(lastJson(restored), atBuild, 'the restore holds what the build held');
});

t.test("exports and imports Node refuses: a guarded require throws Node's error, a static import fails the build saying what Node says", async t => {
  const project = path.join(tempDir('refusals'), 'project');
  const exportsField = { '.': './index.js', './public/*': './lib/*.js', './public/secret': null, './internal/*': null };
  write(project, {
    'package.json': JSON.stringify({ name: 'refusals', version: '1.0.0', type: 'module', dependencies: { gated: '1.0.0' } }),
    // Only null targets (no invalid one, which failed every build before: the differential test's gated-exports).
    'node_modules/gated/package.json': JSON.stringify({ name: 'gated', version: '1.0.0', exports: exportsField, imports: { '#hidden/*': null } }),
    'node_modules/gated/index.js': "exports.hidden = () => { try { return require('#hidden/x'); } catch (error) { return [error.name, error.code]; } };\n",
    'node_modules/gated/lib/a.js': "exports.kind = 'a';\n",
    'node_modules/gated/lib/secret.js': "exports.kind = 'secret';\n",
    'node_modules/gated/internal/x.js': "exports.kind = 'internal';\n",
    'guarded.cjs':
      "const code = load => { try { return load().kind; } catch (error) { return [error.name, error.code, String(error).split(':')[0]]; } };\n" +
      "exports.run = () => ({ a: code(() => require('gated/public/a')), secret: code(() => require('gated/public/secret')), internal: code(() => require('gated/internal/x')), hidden: require('gated').hidden() });\n",
    'secret.js': "import s from 'gated/public/secret';\nexport const run = () => s.kind;\n",
    'internal.js': "import x from 'gated/internal/x';\nexport const run = () => x.kind;\n",
    'plain.mjs': "const { createRequire } = await import('node:module');\nconsole.log(JSON.stringify(createRequire(import.meta.url)('./guarded.cjs').run()));\n",
    'build.mjs':
      "import { importService } from 'membrane-snapshot';\nconst svc = await importService('./guarded.cjs', { name: 'guarded' });\nconst out = { guarded: await svc.run() };\n" +
      "for (const name of ['secret', 'internal']) { try { await importService(`./${name}.js`, { name }); out[name] = 'loaded'; } catch (error) { out[name] = { code: error.code, message: error.message }; } }\nconsole.log(JSON.stringify(out));\n",
  });
  fs.symlinkSync(repo, path.join(project, 'node_modules', 'membrane-snapshot'));
  const plain = await node(['plain.mjs'], { cwd: project });
  const oracle = lastJson(plain) as Record<string, unknown>;
  t.same(oracle, {
    a: 'a',
    secret: ['Error', 'ERR_PACKAGE_PATH_NOT_EXPORTED', 'Error [ERR_PACKAGE_PATH_NOT_EXPORTED]'],
    internal: ['Error', 'ERR_PACKAGE_PATH_NOT_EXPORTED', 'Error [ERR_PACKAGE_PATH_NOT_EXPORTED]'],
    hidden: ['TypeError', 'ERR_PACKAGE_IMPORT_NOT_DEFINED'],
  }, 'plain Node');
  const build = await snapshot(['build', 'build.mjs', '--out', 'snapshot'], { cwd: project, timeoutMs: 120_000 });
  t.equal(build.code, 0, build.stderr);
  const built = lastJson(build) as { guarded: unknown; secret: { code: string; message: string }; internal: { code: string; message: string } };
  t.same(built.guarded, oracle, 'the service at build time throws what Node throws, caught');
  for (const name of ['secret', 'internal'] as const) {
    t.equal(built[name].code, 'SERVICE_LOAD_FAILED', `a static import of an excluded subpath (${name}) fails the build, as Node fails to load it`);
    t.match(built[name].message, /does not export "\.\/(public\/secret|internal\/x)".*Node says: Error \[ERR_PACKAGE_PATH_NOT_EXPORTED\]: Package subpath/, `${name}: the build error quotes Node's`);
  }
  const restore = await snapshot(['restore', moveToTarget(path.join(project, 'snapshot')), '--call', 'guarded.run'], { timeoutMs: 120_000 });
  t.same(lastJson(restore), oracle, 'restored from a copy of only the snapshot, the call throws what Node throws');
});

t.test('exportsExclude and withValidExportTargets read "exports" as Node does', async t => {
  const { exportsExclude, withValidExportTargets } = await import('../compartments/node-resolution.js');
  const exports = { '.': './i.js', './public/*': './lib/*.js', './public/secret': null, './internal/*': null, './internal/open': './o.js' };
  t.equal(exportsExclude(exports, './public/secret'), true, 'an exact null wins over a pattern');
  t.equal(exportsExclude(exports, './public/a'), false, 'the pattern maps it');
  t.equal(exportsExclude(exports, './internal/x'), true, 'a null pattern');
  t.equal(exportsExclude(exports, './internal/open'), false, 'an exact key wins over a null pattern');
  t.equal(exportsExclude(exports, './nothing'), false, 'a subpath the exports do not name is not counted');
  t.equal(exportsExclude('./i.js', './x'), false, 'a string exports');
  t.same(withValidExportTargets({ '.': './i.js', './a': '../a.js', './b': 'b.js', './c': { node: './node_modules/x.js', default: './c.js' }, './d': ['../x.js', './d.js'], './e': './lib/./e.js', './f': './lib//f.js' }), {
    '.': './i.js',
    './a': null,
    './b': null,
    './c': { node: null, default: './c.js' },
    './d': ['./d.js'],
    './e': null,
    // Node resolves an empty segment, with a deprecation warning (DEP0166).
    './f': './lib//f.js',
  });
  const same = { '.': { import: './i.mjs', require: './i.cjs' } };
  t.equal(withValidExportTargets(same), same, 'valid exports are returned as they are');
});
