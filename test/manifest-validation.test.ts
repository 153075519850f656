// A snapshot directory is untrusted input: its whole manifest is checked on
// read, and every command that reads one (restore, verify, inspect, plan)
// refuses a hostile or damaged one with a typed error naming the field.
// inspect and verify also check the files the manifest names.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { readManifest } from '../lib/manifest.js';
import { isSnapshotError } from '../replay-log/index.js';
import { fixture, moveToTarget, snapshot, tempDir } from './helpers.js';

const work = tempDir('manifest');
const base = path.join(work, 'base');

t.before(async () => {
  const built = await snapshot(['build', 'build-counter.mjs', '--out', base], { cwd: fixture('misc') });
  if (built.code !== 0) throw new Error(built.stderr);
});

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A copy of the base snapshot whose manifest `edit` changed. */
const edited = (edit: (manifest: Json) => void): string => {
  const dir = moveToTarget(base);
  const file = path.join(dir, 'manifest.json');
  const manifest = JSON.parse(fs.readFileSync(file, 'utf8')) as Json;
  edit(manifest);
  fs.writeFileSync(file, JSON.stringify(manifest));
  return dir;
};

const refusal = (dir: string): { code: string; message: string } | undefined => {
  try {
    readManifest(dir);
    return undefined;
  } catch (error) {
    if (!isSnapshotError(error)) throw error;
    return { code: error.code, message: error.message };
  }
};

const controlCharacters = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

t.test('hostile and damaged manifest fields are refused, each naming its field', async t => {
  const counter = (edit: (service: Json) => void) => (m: Json) => edit(m.services.counter);
  const cases: Array<[what: string, edit: (m: Json) => void, field: RegExp]> = [
    ['app with a path', m => (m.app = '../other'), /"app"/],
    ['app with an escape sequence', m => (m.app = 'app\u001b[2J'), /"app"/],
    ['app that is a number', m => (m.app = 5), /"app"/],
    ['libraryVersion that is an object', m => (m.libraryVersion = { v: 1 }), /"libraryVersion"/],
    ['libraryVersion with a newline', m => (m.libraryVersion = '1.0\nsnapshot: ok'), /"libraryVersion"/],
    ['createdAt that is no date', m => (m.createdAt = 'yesterday'), /"createdAt"/],
    ['node that is no Node version', m => (m.node = 'v20\u001b[2J'), /"node"/],
    ['services that is a list', m => (m.services = []), /"services"/],
    ['seal with an unknown cipher', m => (m.seal = { cipher: 'rot13', keyId: 'x' }), /"seal"/],
    ['keyed fingerprints without a seal record', m => (delete m.seal, (m.services.counter.keyedFingerprints = 5)), /"seal"/],
    ['sealed values without a seal record', m => (delete m.seal, (m.services.counter.sealedValues = 1)), /"seal"/],
    ['a service named with ../', m => ((m.services['../evil'] = { ...m.services.counter, name: '../evil' }), delete m.services.counter), /service name/],
    ['a service named with a control character', m => ((m.services['a\u0007b'] = { ...m.services.counter, name: 'a\u0007b' }), delete m.services.counter), /service name/],
    ['a service named at absurd length', m => ((m.services['x'.repeat(300)] = { ...m.services.counter, name: 'x'.repeat(300) }), delete m.services.counter), /service name/],
    ['a service named for YAML injection', m => ((m.services['x"\n  evil:'] = { ...m.services.counter, name: 'x"\n  evil:' }), delete m.services.counter), /service name/],
    ['an archive outside its service directory', counter(s => (s.archive = '../../etc/passwd')), /"archive"/],
    ['an archive in another service directory', counter(s => (s.archive = 'other/archive.zip')), /"archive"/],
    ['a log path with ..', counter(s => (s.log = 'counter/../counter/replay.log')), /"log"/],
    ['an entry with an escape sequence', counter(s => (s.entry = 'file:///app/\u001b[31mred.js')), /"entry"/],
    ['an entryRoot that is not a file URL', counter(s => (s.entryRoot = 'https://example.com/')), /"entryRoot"/],
    ['a package root that is not a file URL', counter(s => (s.packageRoots = { 'dep-v1.0.0': 'https://example.com/dep/' })), /"packageRoots"/],
    ['package roots that are not a record', counter(s => (s.packageRoots = ['file:///dep/'])), /"packageRoots"/],
    ['a package root with a control character in its name', counter(s => (s.packageRoots = { 'dep\u001b[2J': 'file:///dep/' })), /"packageRoots"/],
    ['a negative archive size', counter(s => (s.archiveBytes = -1)), /"archiveBytes"/],
    ['an absurd log size', counter(s => (s.logBytes = 2 ** 50)), /"logBytes"/],
    ['a size that is a string', counter(s => (s.archiveBytes = '5')), /"archiveBytes"/],
    ['more events than log bytes', counter(s => (s.events = 1e9)), /"events"/],
    ['more pending timers than events', counter(s => (s.pendingTimers = 1e6)), /"pendingTimers"/],
    ['port 0', counter(s => (s.runtime = { http: { port: 0 } })), /"runtime\.http\.port"/],
    ['port 70000', counter(s => (s.runtime = { http: { port: 70000 } })), /"runtime\.http\.port"/],
    ['port "80"', counter(s => (s.runtime = { http: { port: '80' } })), /"runtime\.http\.port"/],
    ['replicas -1', counter(s => (s.runtime = { replicas: -1 })), /"runtime\.replicas"/],
    ['replicas 1e9', counter(s => (s.runtime = { replicas: 1e9 })), /"runtime\.replicas"/],
    ['an unknown runtime field', counter(s => (s.runtime = { replicas: 2, cpus: 4 })), /"runtime\.cpus"/],
    ['an httpAdapter that is no export id', counter(s => (s.runtime = { http: { port: 8080 }, httpAdapter: -3 })), /"runtime\.httpAdapter"/],
    ['a reference to a service the manifest lacks', counter(s => (s.references = [{ import: 1, service: 'ghost', export: 1 }])), /"references"/],
    ['a parent the manifest lacks', counter(s => (s.parent = 'ghost')), /"parent"/],
    ['a reach with a relative path', counter(s => (s.reach = { read: ['data/file.txt'] })), /"reach"/],
    ['a reach with an unknown field', counter(s => (s.reach = { exec: ['/bin/sh'] })), /"reach"/],
    ['secret files with a relative path', counter(s => (s.secrets = { ...s.secrets, files: ['keys/id'] })), /"secrets"/],
    ['a granted module with a control character', counter(s => (s.granted = { 'fs\u001b': { functions: [], values: [] } })), /"granted"/],
    [
      'two services on one port',
      m => {
        m.services.counter.runtime = { http: { port: 8080 }, httpAdapter: 1 };
        m.services.twin = { ...m.services.counter, name: 'twin', archive: 'twin/archive.zip', log: 'twin/replay.log' };
      },
      /port 8080/,
    ],
  ];
  for (const [what, edit, field] of cases) {
    const refused = refusal(edited(edit));
    t.equal(refused?.code, 'SNAPSHOT_INVALID', what);
    t.match(refused?.message, field, `${what}: the message names the field`);
    t.notMatch(refused?.message ?? '', controlCharacters, `${what}: the message carries no control characters`);
  }
  t.equal(refusal(base), undefined, 'the unedited manifest is read');
});

t.test('a manifest with no services is refused: there is nothing to restore, verify or inspect', async t => {
  const empty = edited(m => (m.services = {}));
  t.match(refusal(empty), { code: 'SNAPSHOT_INVALID', message: /lists no services/ });
  const verify = await snapshot(['verify', empty]);
  t.equal(verify.code, 1, 'verify fails');
  t.match(verify.stderr, /^snapshot: SNAPSHOT_INVALID: .*lists no services: there is nothing to restore, verify or inspect/m);
  t.notMatch(verify.stdout + verify.stderr, /^ok/m);
  const json = await snapshot(['verify', empty, '--json']);
  t.equal(json.code, 1);
  t.notMatch(json.stdout, /"ok":true/);
});

t.test('a version that is not a whole number says so; an unknown one names the version and who wrote it', async t => {
  for (const version of ['1', null, 1.5, { major: 1 }, true]) {
    const refused = refusal(edited(m => (m.version = version)));
    t.equal(refused?.code, 'SNAPSHOT_INVALID', `version ${JSON.stringify(version)}`);
    t.match(refused?.message, /"version" is .* this membrane-snapshot reads manifest version 1/);
  }
  const missing = refusal(edited(m => delete m.version));
  t.match(missing, { code: 'SNAPSHOT_INVALID', message: /has no "version"/ });
  const future = refusal(edited(m => (m.version = 2)));
  t.match(future, { code: 'LOG_VERSION_UNSUPPORTED', message: /manifest version 2; this membrane-snapshot reads version 1\. Restore with membrane-snapshot 0\.1\.0/ });
  const oddWriter = refusal(edited(m => ((m.version = 2), (m.libraryVersion = { v: 1 }))));
  t.equal(oddWriter?.code, 'LOG_VERSION_UNSUPPORTED');
  t.notMatch(oddWriter?.message, /\[object Object\]|undefined/, 'no [object Object] for a writer that is not named');
  const run = await snapshot(['restore', edited(m => (m.version = '1'))]);
  t.equal(run.code, 1);
  t.match(run.stderr, /^snapshot: SNAPSHOT_INVALID: .*"version" is "1" \(a string\)/m);
});

t.test('an absurdly large manifest is refused before it is parsed', async t => {
  const dir = moveToTarget(base);
  fs.writeFileSync(path.join(dir, 'manifest.json'), `{"format":"membrane-snapshot","pad":"${'x'.repeat(20 * 1024 * 1024)}"}`);
  t.match(refusal(dir), { code: 'SNAPSHOT_INVALID', message: /manifest\.json is 20\.0 MiB/ });
});

t.test('every command that reads a manifest refuses a hostile one, and plan writes nothing', async t => {
  const hostile = edited(m => ((m.services['x"\n  evil:'] = { ...m.services.counter, name: 'x"\n  evil:' }), delete m.services.counter));
  for (const args of [['restore', hostile], ['verify', hostile], ['inspect', hostile], ['inspect', hostile, '--json'], ['plan', hostile]]) {
    const run = await snapshot(args);
    t.equal(run.code, 1, args.join(' '));
    t.match(run.stderr, /^snapshot: SNAPSHOT_INVALID: .*service name/m, args.join(' '));
  }
  t.notOk(fs.existsSync(path.join(hostile, 'deploy', 'compose.yaml')), 'no compose.yaml');
  const port = edited(m => (m.services.counter.runtime = { http: { port: 70000 } }));
  const plan = await snapshot(['plan', port]);
  t.equal(plan.code, 1);
  t.match(plan.stderr, /SNAPSHOT_INVALID: .*"runtime\.http\.port"/);
  const app = edited(m => (m.app = 'app\n  evil: {}'));
  const appPlan = await snapshot(['plan', app]);
  t.equal(appPlan.code, 1);
  t.match(appPlan.stderr, /SNAPSHOT_INVALID: .*"app"/);
});

t.test('inspect checks the files it describes: missing and damaged ones are named, with a typed error', async t => {
  const good = await snapshot(['inspect', base]);
  t.equal(good.code, 0, good.stderr);
  t.match(good.stdout, /archive\s+counter\/archive\.zip .* ok/);
  t.match(good.stdout, /log\s+counter\/replay\.log .* ok/);

  const missing = moveToTarget(base);
  fs.rmSync(path.join(missing, 'counter', 'replay.log'));
  let run = await snapshot(['inspect', missing]);
  t.equal(run.code, 1);
  t.match(run.stdout, /log\s+counter\/replay\.log .* MISSING/);
  t.match(run.stderr, /^snapshot: SNAPSHOT_INVALID: .*the replay log of service "counter" .*replay\.log is missing/m);

  const damaged = moveToTarget(base);
  const archive = path.join(damaged, 'counter', 'archive.zip');
  const bytes = fs.readFileSync(archive);
  bytes[50] ^= 0xff;
  fs.writeFileSync(archive, bytes);
  run = await snapshot(['inspect', damaged]);
  t.equal(run.code, 1);
  t.match(run.stdout, /archive\s+counter\/archive\.zip .* DAMAGED/);
  t.match(run.stderr, /^snapshot: INTEGRITY_MISMATCH: the archive of service "counter" .*does not match the manifest/m);

  const json = await snapshot(['inspect', damaged, '--json']);
  t.equal(json.code, 1);
  const report = JSON.parse(json.stdout) as { files: Array<{ service: string; kind: string; status: string; error?: { code: string } }> };
  t.match(report.files, [
    { service: 'counter', kind: 'archive', status: 'damaged', error: { code: 'INTEGRITY_MISMATCH' } },
    { service: 'counter', kind: 'log', status: 'ok' },
  ]);
});

t.test('verify checks every file the manifest names before it replays', async t => {
  const dir = moveToTarget(base);
  fs.rmSync(path.join(dir, 'counter', 'archive.zip'));
  const run = await snapshot(['verify', dir]);
  t.equal(run.code, 1);
  t.match(run.stdout, /FAIL\s+counter: SNAPSHOT_INVALID: the archive of service "counter" .*archive\.zip is missing/);
  const ok = await snapshot(['verify', base]);
  t.equal(ok.code, 0, ok.stderr);
});

t.test('a file whose size differs from the manifest is refused before it is read', async t => {
  const dir = moveToTarget(base);
  fs.appendFileSync(path.join(dir, 'counter', 'archive.zip'), Buffer.alloc(1024 * 1024));
  const run = await snapshot(['restore', dir, '--call', 'counter.bump']);
  t.equal(run.code, 1);
  t.match(run.stderr, /^snapshot: INTEGRITY_MISMATCH: the archive of service "counter" .*archive\.zip does not match the manifest: it is \d+ bytes, the manifest says \d+\./m);
});

t.test('plan gives services whose names differ only in case or punctuation their own containers', async t => {
  const dir = edited(m => {
    for (const name of ['a.b', 'a_b', 'A-b']) m.services[name] = { ...m.services.counter, name, archive: `${name}/archive.zip`, log: `${name}/replay.log` };
  });
  const run = await snapshot(['plan', dir]);
  t.equal(run.code, 0, run.stderr);
  const compose = fs.readFileSync(path.join(dir, 'deploy', 'compose.yaml'), 'utf8');
  const containers = [...compose.matchAll(/^ {2}([^\s:]+):$/gm)].map(m => m[1]);
  t.equal(new Set(containers).size, containers.length, `no container is declared twice: ${containers.join(', ')}`);
  t.equal(containers.length, 5, 'nats and four services');
  for (const name of ['counter', 'a.b', 'a_b', 'A-b']) t.match(compose, `"--service", ${JSON.stringify(name)}`);
});
