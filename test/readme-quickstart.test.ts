// The README's quick start, followed as a new user follows it: its files and
// commands are taken from README.md itself and run in a fresh project that
// installed the packed library, so a copy-paste that fails fails here first.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { command, freshProject, node, packTarball, repo, type Run } from './helpers.js';

const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8');
const section = readme.slice(readme.indexOf('## Quick start in your project'), readme.indexOf('## What it does'));
const blocks = [...section.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map(m => ({ lang: m[1], text: m[2], at: m.index ?? 0 }));

/** The first `lang` code block after `phrase` in the quick start. */
const blockAfter = (phrase: string, lang: string): string => {
  const at = section.indexOf(phrase);
  if (at < 0) throw new Error(`the quick start no longer says ${JSON.stringify(phrase)}`);
  const block = blocks.find(b => b.at > at && b.lang === lang);
  if (!block) throw new Error(`no ${lang} block after ${JSON.stringify(phrase)}`);
  return block.text;
};

/** A shell command line as words (single quotes only, `#` comments dropped). */
const words = (line: string): string[] => [...line.replace(/\s+#.*$/, '').matchAll(/'([^']*)'|(\S+)/g)].map(m => m[1] ?? m[2]);


const files = {
  'services/calc.ts': blockAfter('A service, `services/calc.ts`', 'ts'),
  'build.ts': blockAfter('A build script, `build.ts`', 'ts'),
  'tsconfig.json': blockAfter('add a `tsconfig.json`', 'json'),
};

/**
 * `npx tsc` in the project. Its bin (typescript/bin/tsc, an extensionless ES
 * module) cannot load under the CommonJS hook tap puts into every child
 * process, so this runs the module that bin imports, as the bin would.
 */
const tsc = (project: string): Promise<Run> => node([path.join(project, 'node_modules', 'typescript', 'lib', 'tsc.js')], { cwd: project });

let project: string;
t.before(async () => {
  const setup = blocks[0].text;
  // freshProject runs exactly these (npm pack of this clone, npm init -y, npm pkg set type=module, npm i <the packed library>).
  if (!setup.includes('npm install && npm pack') || !setup.includes('npm init -y && npm pkg set type=module') || !setup.includes(`/membrane-snapshot-${(JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { version: string }).version}.tgz\n`)) {
    throw new Error(`the quick start's setup changed:\n${setup}`);
  }
  project = await freshProject('quickstart', await packTarball(), files);
});

t.test('the type-checking setup it gives works: tsc passes, and rejects the misuse it names', async t => {
  const [install] = blockAfter('the compiler and Node', 'sh').trim().split('\n');
  const [npm, ...args] = words(install);
  t.equal(npm, 'npm');
  const installed = await command('npm', [...args, '--prefer-offline'], project);
  t.equal(installed.code, 0, installed.stderr);
  t.match(section, /`npx tsc` then checks/);
  const checked = await tsc(project);
  t.equal(checked.code, 0, checked.stdout + checked.stderr);

  // "calling calc.add('3'), or using calc.add(3) as a Totals without await, is a type error"
  const build = path.join(project, 'build.ts');
  fs.appendFileSync(build, "await calc.add('3');\nconst sync: import('./services/calc.js').Totals = calc.add(3);\n");
  const misuse = await tsc(project);
  t.not(misuse.code, 0);
  t.match(misuse.stdout, /build\.ts\(\d+,\d+\): error TS2345: Argument of type 'string' is not assignable to parameter of type 'number'/);
  t.match(misuse.stdout, /build\.ts\(\d+,\d+\): error TS2739: Type 'Promise<.*>' is missing the following properties from type 'Totals': total, count/);
  fs.writeFileSync(build, files['build.ts']);
});

t.test('its build and restore print what it says', async t => {
  const [buildLine, restoreLine] = blockAfter('Build the snapshot, then restore it', 'sh').trim().split('\n');
  const built = await command('npx', words(buildLine).slice(1), project);
  t.equal(built.code, 0, built.stderr);
  t.match(built.stdout, /\{ total: 3, count: 1 \}/);
  const restored = await command('npx', words(restoreLine).slice(1), project);
  t.equal(restored.code, 0, restored.stderr);
  const printed = /# prints (.*)$/.exec(restoreLine)?.[1];
  t.equal(restored.stdout.trim().split('\n').pop(), printed);
});
