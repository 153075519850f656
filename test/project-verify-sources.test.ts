// `snapshot verify <dir> --sources <dir>`: replay recorded logs through the
// code as it is now, before deploying it, in a user's project.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { freshProject, packTarball, projectSnapshot } from './helpers.js';

const original = `let calls = [];
export function stamp(label) {
  calls.push({ label, at: Date.now() });
  return calls.length;
}
`;

let project: string;
t.before(async () => {
  project = await freshProject('sources', await packTarball(), {
    'services/clock.js': original,
    'build.mjs': "import { importService } from 'membrane-snapshot';\nconst clock = await importService('./services/clock.js');\nawait clock.stamp('a');\nawait clock.stamp('b');\n",
  });
  const built = await projectSnapshot(project, ['build', 'build.mjs', '--out', 'snap', '--quiet']);
  if (built.code !== 0) throw new Error(built.stderr);
});

const setSource = (text: string) => fs.writeFileSync(path.join(project, 'services', 'clock.js'), text);
const events = () => JSON.parse(fs.readFileSync(path.join(project, 'snap', 'manifest.json'), 'utf8')).services.clock.events as number;

t.test('unchanged and compatibly changed code is reported compatible', async t => {
  const same = await projectSnapshot(project, ['verify', 'snap', '--sources', '.']);
  t.equal(same.code, 0, same.stderr);
  t.match(same.stdout, new RegExp(`^ok {4}clock: ${events()} events replayed \\(\\d+ ms, through the current sources\\)$`, 'm'));
  // A refactoring that makes the same calls in the same order.
  setSource(`// stamps, counted
const calls = [];
export function stamp(label) {
  const entry = { label, at: Date.now() };
  calls.push(entry);
  return calls.length;
}
`);
  const refactored = await projectSnapshot(project, ['verify', 'snap', '--sources', '.', '--json']);
  t.equal(refactored.code, 0, refactored.stderr);
  t.match(JSON.parse(refactored.stdout), { ok: true, services: [{ service: 'clock', ok: true, events: events() }] });
});

t.test('a change the log does not allow fails with the first divergence', async t => {
  setSource(original.replace('at: Date.now() }', 'at: Date.now(), took: performance.now() }'));
  const run = await projectSnapshot(project, ['verify', 'snap', '--sources', '.']);
  t.equal(run.code, 1);
  t.match(run.stdout, /^FAIL {2}clock: REPLAY_DIVERGED: service "clock" diverged from its replay log at event \d+:\n\s+expected: .*\n\s+actual: {3}performance\.now\(\)/m);
  const json = JSON.parse((await projectSnapshot(project, ['verify', 'snap', '--sources', '.', '--json'])).stdout);
  t.match(json, { ok: false, services: [{ service: 'clock', ok: false, error: { code: 'REPLAY_DIVERGED' } }] });
  // The snapshot itself is untouched, and still verifies as built.
  const plain = await projectSnapshot(project, ['verify', 'snap', '--quiet']);
  t.equal(plain.code, 0, plain.stdout);
});

t.test('sources that do not hold the service say so', async t => {
  const run = await projectSnapshot(project, ['verify', 'snap', '--sources', path.join(project, 'node_modules')]);
  t.equal(run.code, 1);
  t.match(run.stdout, /^FAIL {2}clock: USAGE: its entry module services\/clock\.js is not in \S+node_modules \(give the directory of the package that holds it\)/m);
});

t.test('a service whose log holds sealed secrets verifies with the seal key, given as restore takes it', async t => {
  fs.mkdirSync(path.join(project, 'sealed', 'services'), { recursive: true });
  fs.writeFileSync(path.join(project, 'sealed', 'package.json'), JSON.stringify({ name: 'sealed', type: 'module', private: true }));
  fs.writeFileSync(path.join(project, 'sealed', 'services', 'vault.js'), 'export const tokenLength = () => (process.env.API_TOKEN ?? "").length;\n');
  fs.writeFileSync(
    path.join(project, 'sealed', 'build.mjs'),
    "import { importService } from 'membrane-snapshot';\nconst vault = await importService('./services/vault.js');\nawait vault.tokenLength();\n",
  );
  fs.symlinkSync(path.join(project, 'node_modules'), path.join(project, 'sealed', 'node_modules'));
  const key = randomBytes(32).toString('base64');
  const keyFile = path.join(project, 'seal.key');
  fs.writeFileSync(keyFile, key);
  const env = { API_TOKEN: 'a-token-to-seal' };
  const cli = (args: string[], extra: Record<string, string> = {}) => projectSnapshot(project, args, { cwd: path.join(project, 'sealed'), env: { ...env, ...extra } });
  const built = await cli(['build', 'build.mjs', '--out', 'snap', '--quiet', '--seal-key', keyFile]);
  t.equal(built.code, 0, built.stderr);
  // verify --sources passed no key to the replay: every service that had read a secret failed SEAL_KEY_MISSING (found by the new-user trial).
  const withFile = await cli(['verify', 'snap', '--sources', '.', '--seal-key', keyFile]);
  t.equal(withFile.code, 0, withFile.stdout + withFile.stderr);
  t.match(withFile.stdout, /^ok {4}vault: \d+ events replayed \(\d+ ms, through the current sources\)$/m);
  const withEnv = await cli(['verify', 'snap', '--sources', '.'], { SNAPSHOT_SEAL_KEY: key });
  t.equal(withEnv.code, 0, withEnv.stdout + withEnv.stderr);
  const without = await cli(['verify', 'snap', '--sources', '.']);
  t.equal(without.code, 1);
  t.match(without.stderr + without.stdout, /SEAL_KEY_MISSING: .*set SNAPSHOT_SEAL_KEY or pass --seal-key <file>/);
});
