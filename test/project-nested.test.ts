// Nested services in an ordinary project: the library installed from its
// packed tarball as a dependency (what `npm i membrane-snapshot` does), and a
// service that imports `importService` from it. An exit module (the library,
// a builtin, a granted module) wins over an installed package of the same
// name, as builtins do in Node; other packages still load from node_modules.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { freshProject, lastJson, moveToTarget, packTarball, projectSnapshot, snapshot } from './helpers.js';

const files: Record<string, string> = {
  'build.mjs': `import fs from 'node:fs';
import { importService } from 'membrane-snapshot';
const parent = await importService('./services/parent.js', { modules: { shout: { shout: s => 'granted ' + s } } });
await parent.wire();
fs.writeFileSync('state.json', JSON.stringify(await parent.describe()));
`,
  'services/parent.js': `import { importService } from 'membrane-snapshot';
import { EventEmitter } from 'events';
import { marker } from 'events/marker.js';
import { greet } from 'greet';
import { shout } from 'shout';
let child;
let shouted;
export async function wire() {
  child = await importService('./child.js', { name: 'child' });
  await child.add(2);
  shouted = shout('hi');
}
export const describe = async () => ({
  total: await child.add(0),
  greeting: greet('world'),
  shouted,
  nodeEvents: new EventEmitter().getMaxListeners(),
  subpath: marker,
});
`,
  'services/child.js': `let total = 0;
export const add = n => (total += n);
`,
  // An installed polyfill with a builtin's name, a plain dependency, and an
  // installed package that the build script grants as a host module instead.
  'node_modules/events/package.json': JSON.stringify({ name: 'events', version: '3.3.0', main: 'index.js' }),
  'node_modules/events/index.js': 'exports.EventEmitter = function EventEmitter() {};\n',
  'node_modules/events/marker.js': "exports.marker = 'from the installed events package';\n",
  'node_modules/greet/package.json': JSON.stringify({ name: 'greet', version: '1.0.0', type: 'module', exports: './index.js' }),
  'node_modules/greet/index.js': "export const greet = name => 'hello ' + name;\n",
  'node_modules/shout/package.json': JSON.stringify({ name: 'shout', version: '1.0.0', type: 'module', exports: './index.js' }),
  'node_modules/shout/index.js': "export const shout = s => 'installed ' + s;\n",
};

let project: string;

t.before(async () => {
  project = await freshProject('nested', await packTarball(), files);
  const pkgFile = path.join(project, 'package.json');
  const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8'));
  pkg.dependencies = { ...pkg.dependencies, events: '3.3.0', greet: '1.0.0', shout: '1.0.0' };
  fs.writeFileSync(pkgFile, JSON.stringify(pkg, null, 2));
});

const expected = { total: 2, greeting: 'hello world', shouted: 'granted hi', nodeEvents: 10, subpath: 'from the installed events package' };

t.test('a service that imports importService from the installed library builds and restores elsewhere', async t => {
  const built = await projectSnapshot(project, ['build', 'build.mjs', '--out', 'snap']);
  t.equal(built.code, 0, built.stderr);
  t.same(JSON.parse(fs.readFileSync(path.join(project, 'state.json'), 'utf8')), expected, 'the exit modules won; other packages loaded');
  const manifest = JSON.parse(fs.readFileSync(path.join(project, 'snap', 'manifest.json'), 'utf8'));
  t.same(Object.keys(manifest.services).sort(), ['child', 'parent']);
  t.equal(manifest.services.child.parent, 'parent');
  const zip = fs.readFileSync(path.join(project, 'snap', 'parent', 'archive.zip')).toString('latin1');
  t.notMatch(zip, /dist\/lib\/index\.js|compartment-mapper/, 'the library is not archived into the service');
  t.match(zip, /marker\.js/, 'a subpath of a shadowed package is archived');

  const target = moveToTarget(path.join(project, 'snap'));
  const restored = await snapshot(['restore', target, '--call', 'parent.describe']);
  t.equal(restored.code, 0, restored.stderr);
  t.same(lastJson(restored), expected);
  const child = await snapshot(['restore', target, '--service', 'child', '--call', 'child.add', '--args', '[1]']);
  t.same(lastJson(child), 3);
});
