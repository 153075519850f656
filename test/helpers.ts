/**
 * Test helpers: run the real `snapshot` CLI in child processes, so builds
 * and restores never share memory with each other or with the test.
 */
import { execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

export const repo = fileURLToPath(new URL('..', import.meta.url));
/** The CLI as users run it: the package's bin (dist/lib/cli.cjs). */
export const cliPath = path.join(repo, 'dist', 'lib', 'cli.cjs');
export const fixture = (...parts: string[]): string => path.join(repo, 'test', 'fixtures', ...parts);

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `[file, args]` that run `program args` as a user's shell would, without
 * tap's hooks: tap's process-info module adds its loader to the
 * NODE_OPTIONS of every process the tests spawn, whatever their env says
 * (`NODE_OPTIONS: ''` too; process-on-spawn), so every plain Node run, build
 * and restore ran under a module loader hook, and on Node 22 and 24 plain
 * Node's CommonJS re-exports then differed (the oracle was wrong:
 * cjs-export-shapes). env(1) drops it, then sets `nodeOptions` if given.
 */
export const withoutTapHooks = (program: string, args: readonly string[], nodeOptions?: string): [string, string[]] => [
  '/usr/bin/env',
  ['-u', 'NODE_OPTIONS', ...(nodeOptions ? [`NODE_OPTIONS=${nodeOptions}`] : []), program, ...args],
];

/** Run `node <args>` (the Node of `execPath`, default this process's) and collect its output. */
export const node = (args: string[], options: { cwd?: string; env?: Record<string, string | undefined>; timeoutMs?: number; execPath?: string } = {}): Promise<Run> =>
  new Promise((resolve, reject) => {
    const child = spawn(...withoutTapHooks(options.execPath ?? process.execPath, args, options.env?.NODE_OPTIONS), {
      cwd: options.cwd ?? repo,
      env: { ...process.env, NODE_OPTIONS: '', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', d => (stdout += d));
    child.stderr.on('data', d => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', code => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });

/** Run the `snapshot` CLI. */
export const snapshot = (args: string[], options: Parameters<typeof node>[1] = {}): Promise<Run> => node([cliPath, ...args], options);

/**
 * The other Node binaries a snapshot must build and restore on, from
 * `MEMBRANE_SNAPSHOT_OTHER_NODES` (paths separated by `:`): .ci/run fetches
 * Node 22 and 24 from the npm registry (the node-linux-<arch> packages) and
 * sets it. Each with its version (`v24.22.3`).
 */
export const otherNodes = (): Array<{ version: string; execPath: string }> =>
  (process.env.MEMBRANE_SNAPSHOT_OTHER_NODES ?? '')
    .split(':')
    .filter(Boolean)
    .map(execPath => ({ execPath, version: execFileSync(execPath, ['--version'], { encoding: 'utf8' }).trim() }));

/**
 * What a test of the other Node lines does when `MEMBRANE_SNAPSHOT_OTHER_NODES`
 * names none: under CI (`CI` set, as .ci/run runs), a failure, since CI must
 * check them; elsewhere (a developer's `npm test` without the binaries), a
 * skip that says how to run them.
 */
export const noOtherNodes = (t: { fail(message: string): unknown; skip(message: string): unknown }): void => {
  const how = 'MEMBRANE_SNAPSHOT_OTHER_NODES names no other Node binary: .ci/run fetches Node 22 and 24 from the npm registry and sets it';
  if (process.env.CI) t.fail(`CI must check the other Node lines. ${how}`);
  else t.skip(how);
};

/** The temporary directories this process made, removed by one exit listener (one each made Node warn of a leak past ten). */
const tempDirs: string[] = [];

/** A fresh temporary directory, removed when the process exits. */
export const tempDir = (prefix: string): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `msnap-${prefix}-`));
  if (tempDirs.push(dir) === 1) process.once('exit', () => tempDirs.forEach(made => fs.rmSync(made, { recursive: true, force: true })));
  return dir;
};

/** Copy a snapshot directory somewhere with no sources and no node_modules. */
export const moveToTarget = (snapshotDir: string): string => {
  const target = tempDir('target');
  const dest = path.join(target, 'snapshot');
  fs.cpSync(snapshotDir, dest, { recursive: true });
  return dest;
};

/** Parse the last line of stdout as JSON. */
export const lastJson = (run: Run): unknown => {
  const lines = run.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
};

let elsewhere: string | undefined;

/**
 * The library installed at another path, as a user's project would have it
 * (`<dir>/node_modules/membrane-snapshot`, a copy of package.json and dist/,
 * its dependencies beside it): restores run from there prove that nothing
 * recorded depends on where the library was installed at build time.
 * Returns the path of that copy's CLI and index.
 */
export const installElsewhere = (): { cli: string; index: string; root: string } => {
  if (!elsewhere) {
    const dir = tempDir('elsewhere');
    const modules = path.join(dir, 'node_modules');
    const copy = path.join(modules, 'membrane-snapshot');
    fs.mkdirSync(copy, { recursive: true });
    fs.cpSync(path.join(repo, 'dist'), path.join(copy, 'dist'), { recursive: true });
    fs.copyFileSync(path.join(repo, 'package.json'), path.join(copy, 'package.json'));
    for (const entry of fs.readdirSync(path.join(repo, 'node_modules'))) {
      if (entry === 'membrane-snapshot' || entry === '.bin' || entry.startsWith('.')) continue;
      fs.symlinkSync(path.join(repo, 'node_modules', entry), path.join(modules, entry));
    }
    elsewhere = copy;
  }
  return { cli: path.join(elsewhere, 'dist', 'lib', 'cli.cjs'), index: path.join(elsewhere, 'dist', 'lib', 'index.js'), root: elsewhere };
};

/**
 * A copy of a fixture project in a temporary directory, with its `deps/`
 * folder as its node_modules (fixture packages are not committed under a
 * node_modules folder) and this library linked in for its build script.
 */
export const projectFrom = (fixtureName: string): string => {
  const dir = path.join(tempDir(fixtureName), 'project');
  fs.cpSync(fixture(fixtureName), dir, { recursive: true });
  const modules = path.join(dir, 'node_modules');
  if (fs.existsSync(path.join(dir, 'deps'))) fs.renameSync(path.join(dir, 'deps'), modules);
  fs.mkdirSync(modules, { recursive: true });
  fs.symlinkSync(repo, path.join(modules, 'membrane-snapshot'));
  return dir;
};

/** Recompute the CRC of every frame of a replay log (replay-log/format.ts), as an attacker editing it would. */
export const repairLogFrames = (log: Uint8Array): Buffer => {
  const out = Buffer.from(log);
  for (let pos = 8; pos + 9 <= out.length; ) {
    const length = out.readUInt32LE(pos + 1);
    out.writeUInt32LE(zlib.crc32(out.subarray(pos + 9, pos + 9 + length), zlib.crc32(out.subarray(pos, pos + 1))), pos + 5);
    pos += 9 + length;
  }
  return out;
};
/** Run a command (npm, npx, bash, ...) in `cwd` without tap's NODE_OPTIONS or npm's audit and fund chatter, `env` added; resolves whatever its exit code. */
export const command = (name: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> =>
  new Promise((resolve, reject) => {
    const child = spawn(...withoutTapHooks(name, args, env.NODE_OPTIONS), { cwd, env: { ...process.env, NODE_OPTIONS: '', npm_config_audit: 'false', npm_config_fund: 'false', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', d => (stdout += d));
    child.stderr.on('data', d => (stderr += d));
    child.on('error', reject);
    child.on('close', code => resolve({ code, stdout, stderr }));
  });
const run = async (name: string, args: string[], cwd: string): Promise<Run> => {
  const ran = await command(name, args, cwd);
  if (ran.code !== 0) throw new Error(`${name} ${args.join(' ')} exited ${ran.code}:\n${ran.stderr}`);
  return ran;
};

/** An ed25519 key pair written into `dir` as `<name>.pem` (private, mode 600) and `<name>.pub.pem`; their paths. */
export const keyPair = (dir: string, name: string): { priv: string; pub: string } => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const priv = path.join(dir, `${name}.pem`);
  const pub = path.join(dir, `${name}.pub.pem`);
  fs.writeFileSync(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  fs.writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }));
  return { priv, pub };
};

/** Pack this repository as npm would publish it (dist/ must be built); the tarball's path. */
export const packTarball = async (): Promise<string> => {
  const dir = tempDir('pack');
  await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], repo);
  const [file] = fs.readdirSync(dir).filter(f => f.endsWith('.tgz'));
  return path.join(dir, file);
};

/**
 * A fresh ESM project with the packed library installed as a dependency,
 * as a user gets it from `npm i membrane-snapshot`; `files` are written
 * into it (relative paths). Returns the project directory.
 */
export const freshProject = async (prefix: string, tarball: string, files: Record<string, string> = {}): Promise<string> => {
  const dir = tempDir(prefix);
  await run('npm', ['init', '-y'], dir);
  await run('npm', ['pkg', 'set', 'type=module'], dir);
  // --engine-strict: npm refuses a package (ours or a dependency) whose "engines" exclude this Node.
  await run('npm', ['install', '--prefer-offline', '--engine-strict', tarball], dir);
  for (const [file, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  }
  return dir;
};

/** Run the installed `snapshot` CLI of a project made by freshProject. */
export const projectSnapshot = (project: string, args: string[], options: Parameters<typeof node>[1] = {}): Promise<Run> =>
  node([path.join(project, 'node_modules', 'membrane-snapshot', 'dist', 'lib', 'cli.cjs'), ...args], { cwd: project, ...options });
