// What the CLI loads and how many processes it starts: --help, --version
// and usage errors load no SES; a restore loads no archiving code; the
// locale is pinned in one process when it is already English, and by a
// child that dies with its parent otherwise.
import t from 'tap';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { cliPath, fixture, lastJson, moveToTarget, node, projectFrom, snapshot, tempDir, withoutTapHooks } from './helpers.js';

const work = tempDir('startup');

// A loader hook that appends every module URL the process resolves to a file.
const hooks = path.join(work, 'trace-hooks.mjs');
fs.writeFileSync(
  hooks,
  `import fs from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  fs.appendFileSync(process.env.TRACE_FILE, result.url + '\\n');
  return result;
}
`,
);
const register = path.join(work, 'trace-register.mjs');
fs.writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);

/** Run the CLI with the module trace on; its exit code and every module URL it resolved. */
const traced = async (args: string[], env: Record<string, string> = {}) => {
  const traceFile = path.join(work, `trace-${Math.random().toString(36).slice(2)}.txt`);
  fs.writeFileSync(traceFile, '');
  const run = await node(['--import', pathToFileURL(register).href, cliPath, ...args], { env: { TRACE_FILE: traceFile, ...env } });
  return { ...run, modules: fs.readFileSync(traceFile, 'utf8').split('\n').filter(Boolean) };
};

const loaded = (modules: string[], pattern: RegExp): string[] => modules.filter(url => pattern.test(url));

const heavyForStartup = /\/node_modules\/(ses|@endo|msgpackr|@babel|amaro|tsx)\//;
const archivingOnly = /\/node_modules\/(@babel|@endo\/evasive-transform|amaro)\/|\/compartment-mapper\/(src\/)?(archive|archive-lite|archive-parsers|node-modules)\.js$|\/compartments\/(evasion|typescript)\.js$/;

const snapshotDir = path.join(work, 'snapshot');
const textsFile = path.join(work, 'texts.json');
const pidFile = path.join(work, 'pid');

t.before(async () => {
  // Built under German: the child re-executed under C.UTF-8 records English text.
  const built = await snapshot(['build', 'build.mjs', '--out', snapshotDir], {
    cwd: fixture('locale'),
    env: { LC_ALL: 'de_DE.UTF-8', LOCALE_TEXTS_FILE: textsFile, LOCALE_PID_FILE: pidFile },
  });
  if (built.code !== 0) throw new Error(`build failed: ${built.stderr}`);
});

const english = [
  'Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)',
  '00:00:00 GMT+0000 (Coordinated Universal Time)',
  '1/1/1970, 12:00:00 AM',
  '1/1/1970',
  '1,234.5',
  'en-US',
];

t.test('--help, --version and usage errors load neither SES nor compartment-mapper nor msgpackr', async t => {
  for (const [args, code] of [
    [['--version'], 0],
    [['--help'], 0],
    [[], 2],
    [['restore', '--help'], 0],
    [['frobnicate'], 2],
    [['restore'], 2],
    [['restore', '--no-such-flag', 'x'], 2],
  ] as const) {
    const run = await traced([...args], { LC_ALL: 'de_DE.UTF-8' });
    t.equal(run.code, code, `snapshot ${args.join(' ')} exits ${code}: ${run.stderr}`);
    t.ok(run.modules.some(url => url.endsWith('/dist/lib/cli.cjs')), 'the trace saw the CLI');
    t.same(loaded(run.modules, heavyForStartup), [], `snapshot ${args.join(' ')} loads no library dependency`);
  }
});

t.test('a restore loads no archiving code (no Babel, no archive writer, no node_modules crawler)', async t => {
  const target = moveToTarget(snapshotDir);
  const run = await traced(['restore', target, '--call', 'svc.texts']);
  t.equal(run.code, 0, run.stderr);
  t.same(lastJson(run), english);
  t.same(loaded(run.modules, archivingOnly), [], 'nothing only archiving needs');
  // `npm run build` bundles what restore loads (tools/bundle-restore.mjs): the trace then sees
  // the bundle's loader instead of SES's modules, and the bundle's module list is checked instead.
  const bundle = path.join(path.dirname(cliPath), 'restore-entry.bundle.cjs');
  if (!fs.existsSync(bundle)) {
    t.ok(loaded(run.modules, /\/node_modules\/ses\//).length > 0, 'the trace saw SES');
    return;
  }
  // The bundle's loader is required (CommonJS, which the trace does not see); the full CLI would be imported.
  t.same(loaded(run.modules, /\/dist\/lib\/cli-main\.js$/), [], 'the restore ran from the bundle, not through the full CLI');
  t.same(loaded(run.modules, /\/node_modules\/ses\//), [], 'SES came from the bundle, not from its modules');
  const bundled = [...fs.readFileSync(bundle, 'utf8').matchAll(/^\/\/ ((?:node_modules|dist)\/\S+\.js)$/gm)].map(m => `/${m[1]}`);
  t.ok(bundled.some(file => /\/node_modules\/ses\//.test(file)), 'the bundle holds SES');
  t.same(bundled.filter(file => archivingOnly.test(file)), [], 'the bundle holds nothing only archiving needs');
});

t.test('MEMBRANE_SNAPSHOT_PHASES=1 makes a restore say where its time goes, phase by phase; without it nothing is said', async t => {
  const target = moveToTarget(snapshotDir);
  const marked = await snapshot(['restore', target, '--call', 'svc.texts'], { env: { MEMBRANE_SNAPSHOT_PHASES: '1' } });
  t.equal(marked.code, 0, marked.stderr);
  t.same(lastJson(marked), english, 'the answer is the same');
  const phases = [...marked.stderr.matchAll(/^membrane-snapshot phase (\S+) ([\d.]+) \+([\d.]+)$/gm)].map(m => ({ name: m[1], at: Number(m[2]), since: Number(m[3]) }));
  t.same(
    phases.map(p => p.name),
    ['node', 'bundle-read', 'bundle-compiled', 'ses-evaluated', 'lockdown', 'modules-evaluated', 'manifest', 'node-errors-hardened', 'host-modules-hardened',
      'web-classes-hardened', 'late-internals-hardened', 'files-verified', 'archive-loaded', 'endowments', 'replayed', 'called', 'exit'],
    'every phase of a restore from the bundle, in order',
  );
  for (const [i, phase] of phases.entries()) {
    const before = i === 0 ? 0 : phases[i - 1].at;
    t.ok(phase.at >= before, `${phase.name} ends after the phase before it`);
    t.ok(Math.abs(phase.at - before - phase.since) < 0.02, `${phase.name}: +${phase.since} is the time since the phase before`);
  }
  const quiet = await snapshot(['restore', target, '--call', 'svc.texts']);
  t.equal(quiet.code, 0, quiet.stderr);
  t.notMatch(quiet.stderr, /membrane-snapshot phase/, 'without the variable no phase is printed');
});

t.test('a build under another locale records English Date text and en-US Intl defaults', async t => {
  t.same(JSON.parse(fs.readFileSync(textsFile, 'utf8')), english);
  for (const locale of ['ja_JP.UTF-8', 'C.UTF-8', 'en_GB.UTF-8']) {
    const run = await snapshot(['restore', moveToTarget(snapshotDir), '--call', 'svc.texts'], { env: { LC_ALL: locale } });
    t.equal(run.code, 0, run.stderr);
    t.same(lastJson(run), english, `live after a restore under ${locale}`);
  }
});

/** The process ids whose parent is `pid` (from /proc). */
const childrenOf = (pid: number): number[] =>
  fs
    .readdirSync('/proc')
    .filter(name => /^\d+$/.test(name))
    .filter(name => {
      try {
        const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);

/** Resolves once `child` has printed `text` on its stdout; rejects if it ends first. */
const printed = (child: ReturnType<typeof spawn>, text: string): Promise<void> =>
  new Promise<void>((resolve, reject) => {
    let stdout = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes(text)) resolve();
    });
    child.on('close', code => reject(new Error(`it ended (${code}) before it printed ${JSON.stringify(text)}: ${stdout}`)));
  });

/** Running (neither gone nor a zombie)? */
const running = (pid: number): boolean => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
};

t.test('a build runs in one child of the CLI whatever the locale (the CLI stops it when a service never returns to the event loop)', async t => {
  const out = path.join(work, 'one-process');
  const child = spawn(...withoutTapHooks(process.execPath, [cliPath, 'build', 'build.mjs', '--out', out]), {
    cwd: fixture('locale'),
    env: { ...process.env, NODE_OPTIONS: '', LC_ALL: 'C.UTF-8', LOCALE_PID_FILE: path.join(work, 'one-pid') },
    stdio: 'ignore',
  });
  const code = await new Promise(resolve => child.on('close', resolve));
  t.equal(code, 0);
  t.not(Number(fs.readFileSync(path.join(work, 'one-pid'), 'utf8')), child.pid, 'the build script ran in a child of the process that was started');
});

t.test('kill -9 of the CLI ends its build child, even one whose service never returns to the event loop', { skip: process.platform !== 'linux' && 'reads /proc' }, async t => {
  const out = path.join(work, 'orphan');
  const parent = spawn(...withoutTapHooks(process.execPath, [cliPath, 'build', 'build-modes.mjs', '--out', out]), {
    cwd: fixture('misc'),
    env: { ...process.env, NODE_OPTIONS: '', MISC_MODE: 'spin' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await printed(parent, 'spinning');
  const [building] = childrenOf(parent.pid as number);
  t.ok(building !== undefined && running(building), 'the build child runs');
  parent.kill('SIGKILL');
  const deadline = Date.now() + 15_000;
  while (running(building) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50));
  t.notOk(running(building), 'the child stopped when its parent was killed, though its main thread never came back');
});

t.test('kill -9 of the CLI also ends the child it re-executed to pin the locale', { skip: process.platform !== 'linux' && 'reads /proc' }, async t => {
  const parent = spawn(...withoutTapHooks(process.execPath, [cliPath, 'restore', moveToTarget(snapshotDir)]), {
    env: { ...process.env, NODE_OPTIONS: '', LC_ALL: 'de_DE.UTF-8' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await printed(parent, 'ready:');
  const children = childrenOf(parent.pid as number);
  t.equal(children.length, 1, 'the CLI re-executed itself once (German locale)');
  const [pinned] = children;
  t.ok(running(pinned), 'the child serves');
  parent.kill('SIGKILL');
  const deadline = Date.now() + 10_000;
  while (running(pinned) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50));
  t.notOk(running(pinned), 'the child stopped when its parent was killed');
});

t.test("a restore from the bundle computes what plain Node computes with the intrinsics' names, and survives a damaged code cache", async t => {
  const project = projectFrom('names');
  const plain = await node(['plain.mjs'], { cwd: project });
  t.equal(plain.code, 0, plain.stderr);
  const built = await snapshot(['build', 'build.mjs', '--out', 'snapshot'], { cwd: project });
  t.equal(built.code, 0, built.stderr);
  const builtLines = built.stdout.trim().split('\n');
  t.same(JSON.parse(builtLines[builtLines.length - 2] ?? 'null'), lastJson(plain), 'at build time');
  const target = moveToTarget(path.join(project, 'snapshot'));
  const first = await snapshot(['restore', target, '--call', 'names.names']);
  t.equal(first.code, 0, first.stderr);
  t.same(lastJson(first), lastJson(plain), 'after a restore');
  // The functions the library hands the service keep their names and lengths in the bundle.
  const hostNames = await snapshot(['restore', target, '--call', 'names.hostNames']);
  t.equal(hostNames.code, 0, hostNames.stderr);
  const builtNames = lastJson(built) as Record<string, string>;
  t.ok(Object.keys(builtNames).length > 500, `the service reached ${Object.keys(builtNames).length} functions`);
  t.same(lastJson(hostNames), builtNames, 'the same names and lengths at build time and after a restore');
  for (const inherited of ['toString', 'constructor', '__proto__']) {
    const call = await snapshot(['restore', target, '--call', `names.${inherited}`]);
    t.equal(call.code, 2, `--call names.${inherited} is a usage error`);
    t.match(call.stderr, new RegExp(`USAGE: service "names" exports no "${inherited}"; it exports: hostNames, names`));
  }
  const dir = path.dirname(cliPath);
  const caches = fs.readdirSync(dir).filter(name => name.startsWith('restore-entry.bundle.cjs.') && name.endsWith('.cache'));
  if (!fs.existsSync(path.join(dir, 'restore-entry.bundle.cjs'))) return;
  t.equal(caches.length, 1, 'the bundle has one code cache');
  const cache = path.join(dir, caches[0]);
  const original = fs.readFileSync(cache);
  try {
    const damaged = Buffer.from(original);
    for (let i = 64; i < damaged.length; i += 997) damaged[i] ^= 0xff;
    fs.writeFileSync(cache, damaged);
    const again = await snapshot(['restore', target, '--call', 'names.names']);
    t.equal(again.code, 0, again.stderr);
    t.same(lastJson(again), lastJson(plain), 'a damaged code cache is ignored (and written again)');
  } finally {
    fs.writeFileSync(cache, original);
  }
});
