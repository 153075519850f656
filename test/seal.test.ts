// Sealed secrets: what a service sees that is secret (env values by name or
// by spreading the environment, values passed with secret(), secret request
// and response headers, the traffic of a secret host, WebCrypto key material
// imported from them: only its sha256 is recorded) is encrypted in its
// replay log. No file of the snapshot holds a secret in any encoding a
// `strings` or base64 search would find; restore with the key gives the
// build's state; restore without it fails before any service is loaded.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { cliPath, fixture, lastJson, moveToTarget, repairLogFrames, repo, snapshot, tempDir } from './helpers.js';
import { bindSealer, makeSealer } from '../replay-log/index.js';

const work = tempDir('seal');
const out = path.join(work, 'snapshot');
const stateFile = path.join(work, 'build-state.json');
const sealKey = randomBytes(32).toString('base64');
const unique = (what: string) => `${what}-${randomBytes(12).toString('hex')}`;

const secrets = {
  VAULT_TOKEN: unique('token'),
  // A value of name=value pairs (glibc's getenv('PAIRED_KEY=id') answered the rest).
  PAIRED_KEY: `id=${unique('paired')}`,
  DB_PASSWORD: unique('password'),
  MY_CONFIDENTIAL: unique('confidential'),
  AWS_SECRET_ACCESS_KEY: unique('aws'),
  PASSED_SECRET: unique('passed'),
  COOKIE_SECRET: unique('cookie'),
  BODY_SECRET: unique('body'),
  FILE_SECRET: unique('file'),
  DOTENV_SECRET: unique('dotenv'),
  JWT_SECRET: unique('jwt'),
  JWK_SECRET: unique('jwk'),
  DIGEST_SECRET: unique('digest'),
  ENCRYPT_SECRET: unique('encrypt'),
  SIGN_SECRET: unique('sign'),
  AAD_SECRET: unique('aad'),
  PEPPER_SECRET: unique('pepper'),
  NODE_ENCRYPT_SECRET: unique('node-encrypt'),
  NODE_LABEL_SECRET: unique('node-label'),
  NODE_SIGN_SECRET: unique('node-sign'),
};
const plain = unique('plain');
const unread = unique('unread');
const secretDir = path.join(work, 'secret-files');
// A dotenv file outside every secret directory: sealed by its name alone.
const dotenvFile = path.join(work, 'app', '.env');
const buildEnv = {
  ...secrets,
  VAULT_PLAIN: plain,
  VAULT_UNREAD: unread,
  VAULT_STATE_FILE: stateFile,
  VAULT_SECRET_DIR: secretDir,
  VAULT_DOTENV: dotenvFile,
  // The library's other configuration, which services must not see either.
  SNAPSHOT_APP_KEY: randomBytes(32).toString('base64'),
  NATS_CREDS: path.join(work, 'app.creds'),
};

/** Every form of `secret` a `strings` or base64/hex search of the files would find. */
const encodings = (secret: string): string[] => {
  const bytes = Buffer.from(secret);
  const forms = [secret, bytes.toString('hex'), bytes.toString('hex').toUpperCase(), Buffer.from(secret, 'utf16le').toString('latin1'), encodeURIComponent(secret)];
  // base64 at each of the three alignments, without the partial characters at either end.
  for (let shift = 0; shift < 3; shift += 1) {
    const b64 = Buffer.concat([Buffer.alloc(shift), bytes]).toString('base64');
    const from = Math.ceil((shift * 4) / 3) + 1;
    const to = Math.floor(((shift + bytes.length) * 4) / 3) - 1;
    forms.push(b64.slice(from, to), b64.slice(from, to).replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return forms;
};

const filesOf = (dir: string): string[] =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap(e => (e.isDirectory() ? filesOf(path.join(dir, e.name)) : [path.join(dir, e.name)]));

t.before(async () => {
  fs.mkdirSync(secretDir);
  fs.writeFileSync(path.join(secretDir, 'credentials'), secrets.FILE_SECRET);
  fs.mkdirSync(path.dirname(dotenvFile));
  fs.writeFileSync(dotenvFile, `DOTENV_SECRET=${secrets.DOTENV_SECRET}\n`);
  const built = await snapshot(['build', 'build-vault.mjs', '--out', out], { cwd: fixture('trust'), env: { ...buildEnv, SNAPSHOT_SEAL_KEY: sealKey } });
  if (built.code !== 0) throw new Error(`build failed: ${built.stderr}`);
});

t.test('no file of the snapshot holds a secret, in plain text, base64 or hex', async t => {
  const files = filesOf(out);
  t.ok(files.length >= 4, 'manifest, marker, archive and log were scanned');
  let scanned = 0;
  for (const file of files) {
    const text = fs.readFileSync(file).toString('latin1');
    for (const [name, value] of Object.entries(secrets)) {
      for (const form of encodings(value)) {
        scanned += 1;
        if (text.includes(form)) t.fail(`${path.relative(out, file)} holds ${name} as ${form}`);
      }
    }
  }
  for (const file of files) {
    const text = fs.readFileSync(file).toString('latin1');
    for (const form of encodings(sealKey)) if (text.includes(form)) t.fail(`${path.relative(out, file)} holds the seal key as ${form}`);
  }
  t.ok(scanned > 100, `${scanned} searches`);
  // Nor its sha256: the fingerprints of the data and keys of crypto calls are keyed with the seal key, or anyone
  // with the log could test guesses of a weak secret against them (found by the adversarial review).
  for (const file of files) {
    const text = fs.readFileSync(file).toString('latin1');
    for (const [name, value] of Object.entries(secrets)) {
      // What digest returns is recorded as it is (docs/trust.md): DIGEST_SECRET's sha256 is that result.
      if (name === 'DIGEST_SECRET') continue;
      const sha256 = createHash('sha256').update(value).digest('hex');
      if (text.includes(sha256) || text.includes(Buffer.from(sha256, 'hex').toString('latin1'))) t.fail(`${path.relative(out, file)} holds the sha256 of ${name}`);
    }
  }
  // The search itself finds what is there: a value that is not secret is in the log as it is.
  t.ok(fs.readFileSync(path.join(out, 'vault', 'replay.log')).toString('latin1').includes(plain), 'a plain env value is found by the same search');
  const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
  t.match(manifest.seal, { cipher: 'aes-256-gcm-siv-hmac', keyId: /^hmac-sha256:[0-9a-f]{32}$/ });
  t.ok(manifest.services.vault.sealedValues >= 9, `${manifest.services.vault.sealedValues} values sealed`);
  t.ok(manifest.services.vault.keyedFingerprints >= 10, `${manifest.services.vault.keyedFingerprints} keyed fingerprints`);
  t.ok(manifest.services.vault.secrets.env.includes('MY_CONFIDENTIAL'), 'the policy is in the manifest');
  t.same(manifest.services.vault.secrets.hosts, ['localhost', 'other.example'], 'an origin names its host, any port, as reach.fetch takes it');
});

t.test('enumerating the environment records names; values only as they are read', async t => {
  const state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  t.same(
    state.enumerated,
    {
      names: ['VAULT_DOTENV', 'VAULT_PLAIN', 'VAULT_SECRET_DIR', 'VAULT_STATE_FILE', 'VAULT_TOKEN', 'VAULT_UNREAD'],
      has: [true, false, false, false],
      sealKey: null,
      appKey: null,
      listsSealKey: false,
      listsAppKey: false,
      nul: { sealKey: null, appKey: null, has: false, token: 'string', paired: null, pairedHas: false },
    },
    "neither the seal key nor the app's bus key (nor its NATS credentials file) is visible to services, however its name is written",
  );
  const names = fs.readFileSync(path.join(out, 'names', 'replay.log')).toString('latin1');
  t.ok(names.includes('VAULT_UNREAD'), 'the name is recorded');
  t.notOk(names.includes(unread), 'the value of an enumerated, unread variable is not');
  const inspected = await snapshot(['inspect', path.join(out, 'vault', 'replay.log')]);
  t.equal(inspected.code, 0, inspected.stderr);
  t.match(inspected.stdout, /env\.keys\(\)/);
  t.match(inspected.stdout, /env\.has\("VAULT_TOKEN"\) -> true/);
  t.match(inspected.stdout, /env\.get\("VAULT_TOKEN"\) -> sealed\(/);
  t.match(inspected.stdout, /env\.get\("AWS_SECRET_ACCESS_KEY"\) -> sealed\(/, 'a secret read by spreading process.env is sealed');
  t.match(inspected.stdout, new RegExp(`env\\.get\\("VAULT_PLAIN"\\) -> "${plain}"`));
  t.notMatch(inspected.stdout, /SNAPSHOT_SEAL_KEY/, 'the spread did not read the seal key');
});

t.test('restore with the key gives the build\'s state', async t => {
  const target = moveToTarget(out);
  const restored = await snapshot(['restore', target, '--call', 'vault.describe'], { env: { SNAPSHOT_SEAL_KEY: sealKey } });
  t.equal(restored.code, 0, restored.stderr);
  const state = lastJson(restored) as Record<string, unknown>;
  const { enumerated, ...buildState } = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  t.ok(enumerated);
  t.same(state, buildState, 'the same state');
  t.match(state, { login: 'welcome back', httpLogin: 'welcome back', hasToken: true, plain, names: ['VAULT_DOTENV', 'VAULT_PLAIN', 'VAULT_SECRET_DIR', 'VAULT_STATE_FILE', 'VAULT_TOKEN', 'VAULT_UNREAD'] });
  t.same(state.cloned, [true, true, true], 'structuredClone(process.env) copies the environment, as Node does');
  t.equal(state.token, `${secrets.VAULT_TOKEN.length}:${djb(secrets.VAULT_TOKEN)}`, 'the service saw the real value');
  t.equal(state.aws, `${secrets.AWS_SECRET_ACCESS_KEY.length}:${djb(secrets.AWS_SECRET_ACCESS_KEY)}`);
  t.equal(state.passed, `${secrets.PASSED_SECRET.length}:${djb(secrets.PASSED_SECRET)}`, 'a secret() argument arrives as its value');
  t.equal(state.file, `${secrets.FILE_SECRET.length}:${djb(secrets.FILE_SECRET)}`, 'a secret file read whole');
  t.equal(state.fileBytes, state.file, 'and through a descriptor');
  const dotenvText = `DOTENV_SECRET=${secrets.DOTENV_SECRET}\n`;
  t.equal(state.dotenv, `${dotenvText.length}:${djb(dotenvText)}`, 'a .env file read whole');
  t.same([state.dotenvCopy, state.dotenvRenamed, state.dotenvLinked], [state.dotenv, state.dotenv, state.dotenv], 'and through a copy, a new name and a link');
  t.same(state.dotenvMoved, [state.dotenv, state.dotenv], 'and a copy named by a Buffer, and one in a directory renamed since');
  t.equal(state.dotenvOpen, true, 'fs.promises.open on it is refused');
  t.equal(state.httpCookie, state.cookie, 'node:http saw the secret set-cookie fetch saw');
  t.equal(state.httpVault, state.vault, "and the secret host's body");
  const mac = (key: string) => createHmac('sha256', key).update('payload').digest('hex');
  t.same(state.macs, [mac(secrets.JWT_SECRET), mac(secrets.JWK_SECRET)].map(hex => `${hex.length}:${djb(hex)}`), 'WebCrypto keys imported from secrets sign as those secrets');
  const keyFile = path.join(work, 'seal.key');
  fs.writeFileSync(keyFile, `${sealKey}\n`, { mode: 0o600 });
  const fromFile = await snapshot(['restore', target, '--seal-key', keyFile, '--call', 'vault.describe'], { env: { SNAPSHOT_SEAL_KEY: '' } });
  t.equal(fromFile.code, 0, fromFile.stderr);
  t.same(lastJson(fromFile), buildState, 'the key from --seal-key');
  const verified = await snapshot(['verify', target, '--seal-key', keyFile], { env: { SNAPSHOT_SEAL_KEY: '' } });
  t.equal(verified.code, 0, verified.stdout);
});

t.test('restore without the key, or with another, fails before any service is loaded', async t => {
  const target = moveToTarget(out);
  const without = await snapshot(['restore', target, '--call', 'vault.describe'], { env: { SNAPSHOT_SEAL_KEY: '' } });
  t.equal(without.code, 1);
  t.match(without.stderr, /^snapshot: SEAL_KEY_MISSING: the replay logs of "vault", "names" hold sealed secrets \(or fingerprints of crypto data keyed with the seal key\); restore needs the seal key they were built with \(hmac-sha256:[0-9a-f]+\): set SNAPSHOT_SEAL_KEY or pass --seal-key <file>\. No service was loaded\./);
  const other = await snapshot(['restore', target, '--call', 'vault.describe'], { env: { SNAPSHOT_SEAL_KEY: randomBytes(32).toString('base64') } });
  t.equal(other.code, 1);
  t.match(other.stderr, /^snapshot: SEAL_KEY_INVALID: the snapshot was sealed with key hmac-sha256:/);
  const short = await snapshot(['restore', target, '--call', 'vault.describe'], { env: { SNAPSHOT_SEAL_KEY: randomBytes(16).toString('base64') } });
  t.equal(short.code, 1);
  t.match(short.stderr, /^snapshot: SEAL_KEY_INVALID: the SNAPSHOT_SEAL_KEY environment variable is not a seal key: a seal key is 32 random bytes in base64/);
  const missingFile = await snapshot(['restore', target, '--seal-key', path.join(work, 'nope.key')]);
  t.match(missingFile.stderr, /^snapshot: SEAL_KEY_MISSING: the seal key file .*nope\.key cannot be read/);
});

t.test('a sealed value altered in the log does not open', async t => {
  // Flip one byte inside a sealed value, fix the manifest's hash: the cipher's tag refuses it.
  const target = moveToTarget(out);
  const logFile = path.join(target, 'vault', 'replay.log');
  const log = fs.readFileSync(logFile);
  // Sealed values start with version byte 2 after a msgpack bin header (0xc4, length).
  let at = -1;
  for (let i = 0; i < log.length - 2; i += 1) if (log[i] === 0xc4 && log[i + 2] === 0x02 && log[i + 1] > 29) at = i + 2 + 20;
  t.ok(at > 0, 'found a sealed value');
  log[at] ^= 0xff;
  // The frame's CRC must stay right, or the reader reports the damage first: recompute it.
  const repaired = repairLogFrames(log);
  fs.writeFileSync(logFile, repaired);
  const manifestFile = path.join(target, 'manifest.json');
  const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
  manifest.services.vault.logSha256 = createHash('sha256').update(repaired).digest('hex');
  fs.writeFileSync(manifestFile, JSON.stringify(manifest));
  const restored = await snapshot(['restore', target, '--call', 'vault.describe'], { env: { SNAPSHOT_SEAL_KEY: sealKey } });
  t.equal(restored.code, 1);
  t.match(restored.stderr, /SEAL_KEY_INVALID: a sealed value does not open with seal key hmac-sha256:[0-9a-f]+: its authentication tag does not match/);
});

t.test('a build that meets a secret without a seal key fails and writes no snapshot', async t => {
  const dir = path.join(tempDir('seal-nokey'), 'snapshot');
  const built = await snapshot(['build', 'build-vault.mjs', '--out', dir], { cwd: fixture('trust'), env: { ...buildEnv, VAULT_STATE_FILE: '', SNAPSHOT_SEAL_KEY: '' } });
  t.equal(built.code, 1);
  t.match(built.stderr, /BUILD_FAILED: .*\n\s*SEAL_KEY_MISSING: service "vault": environment variable VAULT_TOKEN is a secret, and no seal key is set to seal it in the replay log \(nothing of it was written\)\. Set SNAPSHOT_SEAL_KEY/);
  t.notOk(fs.existsSync(path.join(dir, 'manifest.json')), 'no manifest');
  const log = fs.readFileSync(path.join(`${dir}.partial`, 'vault', 'replay.log')).toString('latin1');
  for (const value of Object.values(secrets)) t.notOk(log.includes(value), 'the partial log holds no secret');
});

t.test('snapshot files are readable by their owner only', async t => {
  const check = (p: string) => {
    const stat = fs.statSync(p);
    t.equal(stat.mode & 0o777, stat.isDirectory() ? 0o700 : 0o600, `${path.relative(work, p) || '.'} is ${(stat.mode & 0o777).toString(8)}`);
    if (stat.isDirectory()) for (const name of fs.readdirSync(p)) check(path.join(p, name));
  };
  check(out);
});

/** Can any user reach and read `file` (every directory above it searchable by others, the file readable)? */
const readableByOthers = (file: string): boolean => {
  for (let at = file; ; at = path.dirname(at)) {
    const mode = fs.statSync(at).mode;
    if (!(mode & (at === file ? 0o004 : 0o001))) return false;
    if (path.dirname(at) === at) return true;
  }
};
/**
 * The CLI as another user can run it: this checkout's, or (a checkout in a private directory, as
 * CI's) a copy of dist/ and package.json in a directory anyone may read. A restore needs nothing
 * else: it runs from the restore bundle, which requires only Node's builtins.
 */
const cliForOthers = (): string | undefined => {
  if (readableByOthers(cliPath)) return cliPath;
  const dir = tempDir('cli-for-others');
  fs.chmodSync(dir, 0o755);
  fs.cpSync(path.join(repo, 'dist'), path.join(dir, 'dist'), { recursive: true });
  fs.copyFileSync(path.join(repo, 'package.json'), path.join(dir, 'package.json'));
  const copied = path.join(dir, 'dist', 'lib', 'cli.cjs');
  return readableByOthers(copied) ? copied : undefined;
};
const asAnotherUser = process.getuid?.() === 0 && fs.existsSync('/usr/bin/setpriv');

t.test('another user restoring is told the files are not readable, not that they are missing', { skip: asAnotherUser ? false : 'needs root and setpriv to run as another user' }, async t => {
  // As a container's non-root USER restoring files a root build wrote (0600, 0700).
  const cli = cliForOthers();
  if (!cli) throw new Error('no copy of the CLI that another user can read');
  const { spawnSync } = await import('node:child_process');
  // `env -u NODE_OPTIONS`: tap adds its own loader to what its children run, which that user cannot read.
  const run = spawnSync('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'env', '-u', 'NODE_OPTIONS', process.execPath, cli, 'restore', out, '--call', 'vault.describe'], {
    encoding: 'utf8',
    cwd: '/',
  });
  t.equal(run.status, 1, run.stderr);
  t.match(run.stderr, /SNAPSHOT_INVALID: \S+manifest\.json cannot be read by this user \(uid 65534\): permission denied\. Snapshot files are readable by their owner only; restore as that user, or give this one the files/);
  t.notMatch(run.stderr, /missing/);
});

const djb = (text: string): string => {
  let h = 5381;
  for (const c of text) h = ((h * 33) ^ (c.codePointAt(0) as number)) >>> 0;
  return h.toString(16);
};

t.test('a value sealed for one service does not open in another (a blob spliced between logs is refused)', async t => {
  const key = makeSealer(randomBytes(32));
  const peer = bindSealer(key, 'peer');
  const thief = bindSealer(key, 'thief');
  const sealed = peer.seal(Buffer.from('s3cr3t'));
  t.equal(Buffer.from(peer.open(sealed)).toString(), 's3cr3t', 'it opens for its own service');
  t.throws(() => thief.open(sealed), { code: 'SEAL_KEY_INVALID', message: /sealed for another service than "thief"/ }, 'not for another');
  t.notSame(Buffer.from(thief.seal(Buffer.from('s3cr3t'))), Buffer.from(sealed), 'equal values seal differently for different services');
  const older = Buffer.from(sealed);
  older[0] = 1;
  t.throws(() => peer.open(older), { code: 'SEAL_KEY_INVALID', message: /before version 2 of sealed values: rebuild it/ }, 'version 1 (no service bound) is refused');
});
