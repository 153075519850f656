// buildSnapshot() called from a program (a test suite, a watch loop): the
// same build script built twice in one process runs, and imports its
// services, each time; a TypeScript script too, and one built through a
// link. A script whose services come from modules it imports (evaluated once
// per process) is refused a second build, never sealed without them.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { node, repo, tempDir } from './helpers.js';
import { misc, restoresCounter } from './build-helpers.js';

const work = tempDir('build-api');

/** A program that builds `script` once per output directory, in one process, and prints each result. */
const runner = path.join(work, 'builds.mjs');
fs.writeFileSync(
  runner,
  `import { buildSnapshot } from ${JSON.stringify(pathToFileURL(path.join(repo, 'dist', 'lib', 'index.js')).href)};
const [script, ...outs] = process.argv.slice(2);
for (const out of outs) {
  const built = await buildSnapshot({ script, out, print: () => {} });
  console.log(JSON.stringify({ out, services: Object.keys(built.manifest.services) }));
}
`,
);

for (const [kind, script] of [
  ['JavaScript', path.join(misc, 'build-counter.mjs')],
  ['TypeScript', path.join(work, 'build-counter.mts')],
] as const) {
  t.test(`a ${kind} build script built twice in one process builds twice`, async t => {
    if (kind === 'TypeScript') {
      const service = path.join(misc, 'services', 'counter.js');
      fs.writeFileSync(
        script,
        `import { importService } from 'membrane-snapshot';\nconst counter = await importService(${JSON.stringify(service)}, { name: 'counter' });\nconst times: number = 3;\nfor (let i = 0; i < times; i += 1) await counter.bump();\n`,
      );
      fs.mkdirSync(path.join(work, 'node_modules'));
      fs.symlinkSync(repo, path.join(work, 'node_modules', 'membrane-snapshot'));
    }
    const outs = [1, 2, 3].map(n => path.join(work, `${kind}-${n}`));
    const run = await node([runner, script, ...outs], { cwd: path.dirname(script), timeoutMs: 120_000 });
    t.equal(run.code, 0, run.stderr);
    t.same(
      run.stdout.trim().split('\n').map(line => JSON.parse(line) as unknown),
      outs.map(out => ({ out, services: ['counter'] })),
      'each build imported the service',
    );
    for (const out of outs) t.ok(await restoresCounter(out, 3), `${path.basename(out)} restores with the three bumps its build made`);
  });
}

t.test('a second build of a script that imported services from another module is refused before it runs, saying why', async t => {
  const dir = path.join(work, 'helper');
  fs.mkdirSync(dir);
  const service = JSON.stringify(path.join(misc, 'services', 'counter.js'));
  fs.writeFileSync(path.join(dir, 'more.mjs'), `import { importService } from 'membrane-snapshot';\nexport const extra = await importService(${service}, { name: 'extra' });\n`);
  fs.writeFileSync(path.join(dir, 'build.mjs'), `import { importService } from 'membrane-snapshot';\nimport { extra } from './more.mjs';\nconst counter = await importService(${service}, { name: 'counter' });\nawait counter.bump();\nawait extra.bump();\n`);
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(repo, path.join(dir, 'node_modules', 'membrane-snapshot'));
  const program = path.join(dir, 'twice.mjs');
  fs.writeFileSync(
    program,
    `import { buildSnapshot } from 'membrane-snapshot';
const results = [];
for (const out of ['one', 'two']) {
  try {
    const built = await buildSnapshot({ script: './build.mjs', out, print: () => {} });
    results.push(Object.keys(built.manifest.services).sort());
  } catch (error) {
    results.push({ code: error.code, message: error.message });
  }
}
console.log(JSON.stringify(results));
`,
  );
  const run = await node([program], { cwd: dir, timeoutMs: 120_000 });
  t.equal(run.code, 0, run.stderr);
  const [first, second] = JSON.parse(run.stdout.trim().split('\n').pop() as string) as [string[], { code: string; message: string }];
  t.same(first, ['counter', 'extra'], 'the first build has both services');
  t.match(second, { code: 'USAGE', message: /was built in this process already, and its services were imported from .*more\.mjs as well as from the script: Node evaluates a module once per process/ });
  t.notOk(fs.existsSync(path.join(dir, 'two', 'manifest.json')), 'no snapshot without the service');
  t.ok(await restoresCounter(path.join(dir, 'one'), 1), 'the first snapshot restores');

  // Another script that imports the helper: it is not evaluated again, and the failure says so.
  fs.writeFileSync(path.join(dir, 'build-other.mjs'), `import './more.mjs';\n`);
  const other = path.join(dir, 'other.mjs');
  fs.writeFileSync(
    other,
    `import { buildSnapshot } from 'membrane-snapshot';
await buildSnapshot({ script: './build.mjs', out: 'four', print: () => {} });
try {
  await buildSnapshot({ script: './build-other.mjs', out: 'five', print: () => {} });
} catch (error) {
  console.log(JSON.stringify({ code: error.code, message: error.message }));
}
`,
  );
  const otherRun = await node([other], { cwd: dir, timeoutMs: 120_000 });
  t.equal(otherRun.code, 0, otherRun.stderr);
  t.match(JSON.parse(otherRun.stdout.trim().split('\n').pop() as string), {
    code: 'BUILD_FAILED',
    message: /finished without importing any service.* Or it imports them from a module that an earlier build in this process evaluated already \(.*more\.mjs\)/s,
  });

  // A service used after its build ended (its handle kept by the program): a typed error.
  fs.writeFileSync(path.join(dir, 'build-export.mjs'), `import { importService } from 'membrane-snapshot';\nexport const counter = await importService(${service}, { name: 'counter' });\n`);
  const after = path.join(dir, 'after.mjs');
  fs.writeFileSync(
    after,
    `import { buildSnapshot } from 'membrane-snapshot';
await buildSnapshot({ script: './build-export.mjs', out: 'three', print: () => {} });
const { counter } = await import('./build-export.mjs');
try {
  await counter.bump();
  console.log(JSON.stringify('no error'));
} catch (error) {
  console.log(JSON.stringify({ code: error.code, message: error.message }));
}
`,
  );
  const used = await node([after], { cwd: dir, timeoutMs: 120_000 });
  t.equal(used.code, 0, used.stderr);
  t.match(JSON.parse(used.stdout.trim().split('\n').pop() as string), { code: 'USAGE', message: /service "counter" was used after its build ended \(its replay log is sealed\)/ });

  // Through a link to the script: the same module for Node (its real path), built again.
  const link = path.join(dir, 'link.mjs');
  fs.symlinkSync(path.join(misc, 'build-counter.mjs'), link);
  const linked = path.join(dir, 'linked.mjs');
  fs.writeFileSync(
    linked,
    `import { buildSnapshot } from 'membrane-snapshot';
for (const [script, out] of [[${JSON.stringify(path.join(misc, 'build-counter.mjs'))}, 'l1'], ['./link.mjs', 'l2']]) {
  const built = await buildSnapshot({ script, out, print: () => {} });
  console.log(JSON.stringify(Object.keys(built.manifest.services)));
}
`,
  );
  const viaLink = await node([linked], { cwd: dir, timeoutMs: 120_000 });
  t.equal(viaLink.code, 0, viaLink.stderr);
  t.same(viaLink.stdout.trim().split('\n').map(line => JSON.parse(line) as unknown), [['counter'], ['counter']], 'a link to a script built already builds again');
});
