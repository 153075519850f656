// buildSnapshot() called from a program (a test suite, a watch loop): the
// same build script built twice in one process runs, and imports its
// services, each time; a TypeScript script too.
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
