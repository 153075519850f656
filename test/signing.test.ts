// Signed snapshots: `build --sign key.pem` signs the manifest, which names
// the hash of every file and holds everything restore acts on; `restore
// --trust pub.pem` (and `verify --trust`) refuse an unsigned or altered
// snapshot before any service is loaded. Each part of a snapshot is altered
// in turn, with the manifest's hashes recomputed as an attacker would.
// Keys are made here, with node:crypto, in the PEM forms openssl writes.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { ZipReader, ZipWriter } from '@endo/zip';
import { fixture, keyPair, lastJson, moveToTarget, repairLogFrames, snapshot, tempDir } from './helpers.js';

const work = tempDir('signing');
const out = path.join(work, 'snapshot');
const stateFile = path.join(work, 'state.json');

const signer = keyPair(work, 'signer');
const stranger = keyPair(work, 'stranger');
const sealKey = randomBytes(32).toString('base64');
const env = {
  SNAPSHOT_SEAL_KEY: sealKey,
  VAULT_TOKEN: 'token-for-signing',
  DB_PASSWORD: 'pw',
  MY_CONFIDENTIAL: 'c',
  AWS_SECRET_ACCESS_KEY: 'a',
  PASSED_SECRET: 'p',
  COOKIE_SECRET: 'k',
  BODY_SECRET: 'b',
  VAULT_PLAIN: 'plain',
  VAULT_SECRET_DIR: work,
};

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const readManifest = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
/** Rewrite the manifest as an attacker would: valid JSON, hashes recomputed. */
const writeManifest = (dir: string, manifest: unknown) => fs.writeFileSync(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
const restore = (dir: string, ...extra: string[]) => snapshot(['restore', dir, '--call', 'vault.describe', ...extra], { env: { SNAPSHOT_SEAL_KEY: sealKey } });

t.before(async () => {
  fs.writeFileSync(path.join(work, 'credentials'), 'file secret');
  const built = await snapshot(['build', 'build-vault.mjs', '--out', out, '--sign', signer.priv], { cwd: fixture('trust'), env: { ...env, VAULT_STATE_FILE: stateFile } });
  if (built.code !== 0) throw new Error(`build failed: ${built.stderr}`);
});

t.test('a signed snapshot restores and verifies with the signer\'s public key', async t => {
  const sig = JSON.parse(fs.readFileSync(path.join(out, 'manifest.sig'), 'utf8'));
  t.match(sig, { format: 'membrane-snapshot/signature', version: 1, algorithm: 'ed25519', keyId: /^sha256:[0-9a-f]{64}$/, signature: /^[A-Za-z0-9+/]{86}==$/ });
  t.equal(fs.statSync(path.join(out, 'manifest.sig')).mode & 0o777, 0o600);
  const target = moveToTarget(out);
  const restored = await restore(target, '--trust', signer.pub);
  t.equal(restored.code, 0, restored.stderr);
  const { enumerated, ...state } = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  t.ok(enumerated);
  t.same(lastJson(restored), state);
  // A trusted-keys file: several PEM keys, one after another.
  const keysFile = path.join(work, 'trusted.pem');
  fs.writeFileSync(keysFile, fs.readFileSync(stranger.pub, 'utf8') + fs.readFileSync(signer.pub, 'utf8'));
  const fromList = await restore(target, '--trust', keysFile);
  t.equal(fromList.code, 0, fromList.stderr);
  const verified = await snapshot(['verify', target, '--trust', signer.pub], { env: { SNAPSHOT_SEAL_KEY: sealKey } });
  t.equal(verified.code, 0, verified.stdout + verified.stderr);
  t.match(verified.stdout, /^ok {4}vault: \d+ events replayed/);
});

t.test('an unsigned snapshot is refused when keys are trusted', async t => {
  const unsigned = moveToTarget(out);
  fs.rmSync(path.join(unsigned, 'manifest.sig'));
  const restored = await restore(unsigned, '--trust', signer.pub);
  t.equal(restored.code, 1);
  t.match(restored.stderr, /^snapshot: SIGNATURE_MISSING: .* is not signed \(no manifest\.sig\), and trusted keys were given: refusing to restore it\./);
  const verified = await snapshot(['verify', unsigned, '--trust', signer.pub]);
  t.equal(verified.code, 1);
  t.match(verified.stderr, /^snapshot: SIGNATURE_MISSING/);
  const plain = await restore(unsigned);
  t.equal(plain.code, 0, 'without --trust, no signature is asked for');
});

t.test('a snapshot signed by a key that is not trusted is refused', async t => {
  const restored = await restore(moveToTarget(out), '--trust', stranger.pub);
  t.equal(restored.code, 1);
  t.match(restored.stderr, /^snapshot: SIGNATURE_INVALID: the signature of .* is by key sha256:[0-9a-f]{64}, which is not among the trusted keys \(sha256:[0-9a-f]{64}\); nothing was loaded\./);
});

t.test('each altered part of a signed snapshot is refused', async t => {
  const tamper = async (what: string, change: (dir: string) => void, codeWithoutTrust?: RegExp) => {
    const dir = moveToTarget(out);
    change(dir);
    const restored = await restore(dir, '--trust', signer.pub);
    t.equal(restored.code, 1, `${what}: refused`);
    t.match(restored.stderr, /^snapshot: SIGNATURE_INVALID: the signature of .* does not match its manifest: manifest\.json \(or manifest\.sig\) was changed after signing; nothing was loaded\./, what);
    if (codeWithoutTrust) t.match((await restore(dir)).stderr, codeWithoutTrust, `${what}: without --trust`);
  };
  await tamper('the archive, hashes recomputed', dir => {
    const file = path.join(dir, 'vault', 'archive.zip');
    const zip = new ZipReader(fs.readFileSync(file));
    const writer = new ZipWriter();
    for (const [name, entry] of zip.files) {
      const text = Buffer.from(entry.content).toString('utf8');
      writer.write(name, name.endsWith('vault.js') ? Buffer.from(text.replace("state.plain = process.env.VAULT_PLAIN;", "state.plain = 'evil!!';")) : entry.content);
    }
    const bytes = writer.snapshot();
    fs.writeFileSync(file, bytes);
    const manifest = readManifest(dir);
    // The log's header names its archive's hash too: rewrite it, and the frames' CRCs.
    const logFile = path.join(dir, 'vault', 'replay.log');
    const log = fs.readFileSync(logFile);
    log.write(sha256(bytes), log.indexOf(manifest.services.vault.archiveSha256), 'latin1');
    const repaired = repairLogFrames(log);
    fs.writeFileSync(logFile, repaired);
    manifest.services.vault.archiveSha256 = sha256(bytes);
    manifest.services.vault.archiveBytes = bytes.byteLength;
    manifest.services.vault.logSha256 = sha256(repaired);
    writeManifest(dir, manifest);
  }, /^snapshot: INTEGRITY_MISMATCH: service "vault": module services\/vault\.js of package trust-fixture-v in its archive does not match the sha512 its compartment map records/);
  await tamper('the log, hashes recomputed', dir => {
    const file = path.join(dir, 'vault', 'replay.log');
    const log = fs.readFileSync(file);
    const at = log.indexOf('plain');
    log.write('PLAIN', at, 'latin1');
    fs.writeFileSync(file, log);
    const manifest = readManifest(dir);
    manifest.services.vault.logSha256 = sha256(log);
    writeManifest(dir, manifest);
  });
  await tamper('the granted modules', dir => {
    const manifest = readManifest(dir);
    manifest.services.vault.granted = { child_process: { functions: ['execSync'], values: [] } };
    writeManifest(dir, manifest);
  });
  await tamper('the reach policy', dir => {
    const manifest = readManifest(dir);
    manifest.services.vault.reach = { fetch: ['*'] };
    writeManifest(dir, manifest);
  });
  await tamper('the signature', dir => {
    const file = path.join(dir, 'manifest.sig');
    const sig = JSON.parse(fs.readFileSync(file, 'utf8'));
    const bytes = Buffer.from(sig.signature, 'base64');
    bytes[10] ^= 1;
    sig.signature = bytes.toString('base64');
    fs.writeFileSync(file, JSON.stringify(sig));
  });

  // A signature file of 1 GiB (sparse) is refused by its size, unread.
  const dir = moveToTarget(out);
  fs.truncateSync(path.join(dir, 'manifest.sig'), 1024 ** 3);
  const huge = await restore(dir, '--trust', signer.pub);
  t.equal(huge.code, 1);
  t.match(huge.stderr, /^snapshot: SNAPSHOT_INVALID: .*manifest\.sig is 1024\.0 MiB; the signature is at most 0\.1 MiB, so it was not read/, 'a huge manifest.sig');
});

t.test('bad keys get a typed error before anything is built', async t => {
  const dir = path.join(tempDir('signing-bad'), 'snapshot');
  const missing = await snapshot(['build', 'build-vault.mjs', '--out', dir, '--sign', path.join(work, 'nope.pem')], { cwd: fixture('trust'), env });
  t.equal(missing.code, 1);
  t.match(missing.stderr, /^snapshot: KEY_INVALID: the signing key .*nope\.pem cannot be read/);
  const publicOnly = await snapshot(['build', 'build-vault.mjs', '--out', dir, '--sign', signer.pub], { cwd: fixture('trust'), env });
  t.match(publicOnly.stderr, /^snapshot: KEY_INVALID: .*signer\.pub\.pem is not a PEM private key: make one with `openssl genpkey -algorithm ed25519/);
  const rsa = path.join(work, 'rsa.pem');
  fs.writeFileSync(rsa, generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
  t.match((await snapshot(['build', 'build-vault.mjs', '--out', dir, '--sign', rsa], { cwd: fixture('trust'), env })).stderr, /^snapshot: KEY_INVALID: .*rsa\.pem is a rsa key; snapshots are signed with ed25519 keys/);
  const encrypted = path.join(work, 'encrypted.pem');
  fs.writeFileSync(encrypted, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pass' }));
  t.match((await snapshot(['build', 'build-vault.mjs', '--out', dir, '--sign', encrypted], { cwd: fixture('trust'), env })).stderr, /^snapshot: KEY_INVALID: .*encrypted\.pem is an encrypted private key/);
  t.notOk(fs.existsSync(dir), 'nothing was written');
  const notAKey = path.join(work, 'not-a-key.pem');
  fs.writeFileSync(notAKey, 'hello\n');
  const restored = await restore(moveToTarget(out), '--trust', notAKey);
  t.match(restored.stderr, /^snapshot: KEY_INVALID: .*not-a-key\.pem holds no PEM public key/);
});
