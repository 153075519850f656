// Typed services: the library's types, as installed from the packed tarball,
// checked by `tsc --noEmit` (strict) in a fresh project. test/types/build.ts
// must compile (and then runs as a real build), every line of
// test/types/misuse.ts marked @ts-expect-error must fail to compile.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { freshProject, lastJson, moveToTarget, node, packTarball, projectSnapshot, repo, snapshot } from './helpers.js';

const tsc = path.join(repo, 'node_modules', 'typescript', 'lib', 'tsc.js');
const source = path.join(repo, 'test', 'types');
const files: Record<string, string> = {};
for (const file of ['build.ts', 'misuse.ts', 'services/calc.ts', 'services/shop.ts']) files[file] = fs.readFileSync(path.join(source, file), 'utf8');

const tsconfig = (include: string[]) =>
  JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: ['node'],
      typeRoots: [path.join(repo, 'node_modules', '@types')],
    },
    include,
  });

let project: string;
t.before(async () => {
  project = await freshProject('types', await packTarball(), files);
});

const check = async (name: string, include: string[]) => {
  fs.writeFileSync(path.join(project, `tsconfig.${name}.json`), tsconfig(include));
  return node([tsc, '-p', `tsconfig.${name}.json`], { cwd: project });
};

t.test('a typed build script compiles: promises of results, references stay typed, interfaces work', async t => {
  const run = await check('build', ['build.ts', 'services/*.ts']);
  t.equal(run.code, 0, run.stdout + run.stderr);
});

t.test('misuse does not compile: each @ts-expect-error line is an error', async t => {
  const run = await check('misuse', ['misuse.ts', 'services/*.ts']);
  t.equal(run.code, 0, run.stdout + run.stderr);
  t.notMatch(run.stdout, /Unused '@ts-expect-error'/);
});

t.test('the checker is really checking: the misuse without its directives fails, one error per line', async t => {
  const text = files['misuse.ts'];
  const expected = (text.match(/@ts-expect-error/g) ?? []).length;
  fs.writeFileSync(path.join(project, 'unmarked.ts'), text.replace(/\/\/ @ts-expect-error.*\n/g, ''));
  const run = await check('unmarked', ['unmarked.ts', 'services/*.ts']);
  t.not(run.code, 0);
  t.equal(run.stdout.match(/error TS\d+/g)?.length, expected, 'one error per marked line');
  t.match(run.stdout, /unmarked\.ts\(\d+,\d+\): error TS2739: Type 'Promise<\{ total: number; count: number; at: Date; \}>' is missing the following properties from type 'Totals'/);
});

t.test('the typed build runs, and restores elsewhere', async t => {
  const built = await projectSnapshot(project, ['build', 'build.ts', '--out', 'snap']);
  t.equal(built.code, 0, built.stderr);
  const state = JSON.parse(fs.readFileSync(path.join(project, 'state.json'), 'utf8'));
  t.same(state, {
    sum: 10,
    when: true,
    version: '1.2.0',
    history: [7],
    counted: 4,
    title: 'totals',
    tags: ['a'],
    next: 8,
    cents: 200,
    order: { sku: 'abc', count: 2, cents: 600 },
  });
  const restored = await snapshot(['restore', moveToTarget(path.join(project, 'snap')), '--call', 'calc.add', '--args', '[1]']);
  t.equal(restored.code, 0, restored.stderr);
  t.match(lastJson(restored), { total: 8, count: 3 });
});
