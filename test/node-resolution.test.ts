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
