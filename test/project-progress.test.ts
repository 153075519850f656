// Progress and machine-readable output, in a user's project: a line per
// service and step on stderr, the build script's stdout left alone, a live
// status line only on a terminal, nothing with --quiet, --json for tools.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { freshProject, packTarball, projectSnapshot, withoutTapHooks, type Run } from './helpers.js';

const files: Record<string, string> = {
  'build.mjs': `import { importService } from 'membrane-snapshot';
const a = await importService('./services/a.js');
const b = await importService('./services/b.js');
await a.add(2);
await b.add(3);
console.log('the build script speaks');
`,
  'services/a.js': 'let n = 0;\nexport const add = k => (n += k);\n',
  'services/b.js': "let n = 0;\nexport const add = k => (n += k);\nconsole.log('b is up');\n",
  // A service still busy after the build script ends: its fetch is answered
  // only when the test sends SIGUSR2, after seeing the "waiting" line.
  'build-busy.mjs': `import http from 'node:http';
import { importService } from 'membrane-snapshot';
let release;
const held = new Promise(resolve => (release = resolve));
process.once('SIGUSR2', () => release());
const server = http.createServer(async (req, res) => { await held; res.end('late'); server.close(); });
await new Promise(resolve => server.listen(0, '127.0.0.1', resolve));
const busy = await importService('./services/busy.js');
busy.fetchLater('http://127.0.0.1:' + server.address().port + '/');
`,
  'services/busy.js': 'let got;\nexport const fetchLater = async url => { got = await (await fetch(url)).text(); return got; };\nexport const result = () => got;\n',
};

let project: string;
t.before(async () => {
  project = await freshProject('progress', await packTarball(), files);
});

const manifestOf = (dir: string) => JSON.parse(fs.readFileSync(path.join(project, dir, 'manifest.json'), 'utf8'));

t.test('build: a line per service archived and recorded, the summary on stderr, the script owns stdout', async t => {
  const run = await projectSnapshot(project, ['build', 'build.mjs', '--out', 'snap']);
  t.equal(run.code, 0, run.stderr);
  t.equal(run.stdout, 'the build script speaks\n', 'stdout is only the build script');
  const { services } = manifestOf('snap');
  for (const name of ['a', 'b']) {
    t.match(run.stderr, new RegExp(`^  archived  ${name}: [\\d.]+ (B|KiB) in \\d+ ms$`, 'm'));
    t.match(run.stderr, new RegExp(`^  recorded  ${name}: ${services[name].events} events, log ${services[name].logBytes} B$`, 'm'));
  }
  t.ok(run.stderr.indexOf('archived  a') < run.stderr.indexOf('archived  b'), 'in the order of the build');
  t.match(run.stderr, /^built \S+snap \(2 services, \d+ events, logs [\d.]+ (B|KiB), archives [\d.]+ KiB\) in \d+ ms$/m);
  t.notMatch(run.stderr, /\r|\x1b\[/, 'no status line when stderr is not a terminal');
});

t.test('--quiet prints nothing of ours; --json adds one summary line for tools', async t => {
  const quiet = await projectSnapshot(project, ['build', 'build.mjs', '--out', 'snap', '--quiet']);
  t.equal(quiet.code, 0, quiet.stderr);
  t.equal(quiet.stdout, 'the build script speaks\n');
  t.equal(quiet.stderr, '[b] b is up\n', 'only the service console');
  const json = await projectSnapshot(project, ['build', 'build.mjs', '--out', 'snap', '--json', '--quiet']);
  const lines = json.stdout.trim().split('\n');
  t.equal(lines[0], 'the build script speaks');
  const summary = JSON.parse(lines[1]);
  const { services } = manifestOf('snap');
  t.match(summary, { ok: true, dir: path.join(fs.realpathSync(project), 'snap') });
  t.same(
    summary.services,
    ['a', 'b'].map(name => ({ name, events: services[name].events, logBytes: services[name].logBytes, archiveBytes: services[name].archiveBytes })),
  );
});

t.test('restore reports each service replayed; verify and inspect speak JSON', async t => {
  const { services } = manifestOf('snap');
  const restored = await projectSnapshot(project, ['restore', 'snap', '--call', 'a.add', '--args', '[1]']);
  t.equal(restored.code, 0, restored.stderr);
  t.equal(restored.stdout, '3\n');
  for (const name of ['a', 'b']) t.match(restored.stderr, new RegExp(`^  replayed  ${name}: ${services[name].events} events in \\d+ ms$`, 'm'));
  const quiet = await projectSnapshot(project, ['restore', 'snap', '--call', 'a.add', '--args', '[1]', '--quiet']);
  t.equal(quiet.stderr, '');

  const verified = await projectSnapshot(project, ['verify', 'snap']);
  t.equal(verified.code, 0, verified.stderr);
  t.match(verified.stdout, new RegExp(`^ok    a: ${services.a.events} events replayed \\(\\d+ ms, fresh process\\)\\nok    b: ${services.b.events} events replayed`));
  const json = await projectSnapshot(project, ['verify', 'snap', '--json']);
  const report = JSON.parse(json.stdout);
  t.match(report, { ok: true, services: [{ service: 'a', ok: true, events: services.a.events }, { service: 'b', ok: true, events: services.b.events }] });
  t.equal(json.stderr, '', 'nothing but the JSON');

  const log = JSON.parse((await projectSnapshot(project, ['inspect', path.join('snap', 'a', 'replay.log'), '--json'])).stdout);
  t.match(log, { type: 'log', service: 'a', sealed: true, events: services.a.events });
  t.equal(log.entries.length, services.a.events);
  t.match(log.entries[0], { index: 0, kind: 'start', delivery: true, text: 'deliver start (module evaluation)' });
  t.equal(Object.values(log.totals as Record<string, { entries: number }>).reduce((n, k) => n + k.entries, 0), log.entries.length);
  const dir = JSON.parse((await projectSnapshot(project, ['inspect', 'snap', '--json'])).stdout);
  t.same(dir.manifest, manifestOf('snap'));
});

/** Run the installed CLI under a pseudo-terminal (util-linux `script`); its output as the terminal got it. */
const onTerminal = (args: string[]): Promise<Run> =>
  new Promise((resolve, reject) => {
    const cli = path.join(project, 'node_modules', 'membrane-snapshot', 'dist', 'lib', 'cli.cjs');
    const command = [process.execPath, cli, ...args].map(a => `'${a}'`).join(' ');
    const child = spawn(...withoutTapHooks('script', ['-qfec', command, '/dev/null']), { cwd: project, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', d => (stdout += d));
    child.on('error', reject);
    child.on('close', code => resolve({ code, stdout, stderr: '' }));
  });

t.test('on a terminal, a live status line is drawn and erased around the lines', async t => {
  const built = await onTerminal(['build', 'build.mjs', '--out', 'snap-tty']);
  t.equal(built.code, 0, built.stdout);
  t.match(built.stdout, /[|/\\-] building: \d+ services?, \d+ events? recorded/);
  t.match(built.stdout, /\r\x1b\[2K {2}recorded {2}b: /, 'the status line is erased before a line');
  t.match(built.stdout, /\r\x1b\[2Kthe build script speaks/, 'and before the script writes');
  const verified = await onTerminal(['verify', 'snap-tty']);
  t.equal(verified.code, 0, verified.stdout);
  t.match(verified.stdout, /verifying \[#{24}\] 2\/2 services/);
  t.match(verified.stdout, /verifying \[\.{24}\] 0\/2 services/);
  const restored = await onTerminal(['restore', 'snap-tty', '--call', 'a.add', '--args', '[1]']);
  t.match(restored.stdout, /replaying \[#{24}\] 2\/2 services/);
  const quiet = await onTerminal(['restore', 'snap-tty', '--call', 'a.add', '--args', '[1]', '--quiet']);
  t.notMatch(quiet.stdout, /replay|\x1b\[/, '--quiet draws nothing');
  t.match(quiet.stdout, /^3\r?$/m, 'only the result');
});

t.test('a build that waits on a busy service says on what', async t => {
  // Run without the locale re-exec so that the signal reaches the build script's process.
  const cli = path.join(project, 'node_modules', 'membrane-snapshot', 'dist', 'lib', 'cli.cjs');
  const child = spawn(...withoutTapHooks(process.execPath, [cli, 'build', 'build-busy.mjs', '--out', 'snap-busy']), {
    cwd: project,
    env: { ...process.env, NODE_OPTIONS: '', LC_ALL: 'C.UTF-8', TZ: 'UTC', MEMBRANE_SNAPSHOT_PINNED: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let released = false;
  child.stderr.on('data', d => {
    stderr += d;
    // Once: a second SIGUSR2, after the script's once-listener is gone, would kill the build.
    if (!released && /waiting {3}busy:/.test(stderr)) {
      released = true;
      child.kill('SIGUSR2');
    }
  });
  const code = await new Promise(resolve => child.on('close', resolve));
  t.equal(code, 0, stderr);
  t.match(stderr, /^ {2}waiting {3}busy: still busy, waiting on promise #\d+: fetch\(.*http:\/\/127\.0\.0\.1:\d+\//m);
  t.ok(stderr.indexOf('waiting   busy') < stderr.indexOf('recorded  busy'), 'then it is recorded');
  const restored = await projectSnapshot(project, ['restore', 'snap-busy', '--call', 'busy.result', '--quiet']);
  t.equal(restored.stdout, '"late"\n');
});
