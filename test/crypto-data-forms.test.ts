// node:crypto's one-shot sign and publicEncrypt inside a service take their
// data in every form Node takes it (getArrayBufferOrView: a string, a view,
// an ArrayBuffer): a string or an ArrayBuffer signed the empty message (a
// valid signature over '' returned in place of one over the data), and an
// ArrayBuffer given to publicEncrypt was recorded in the replay log in plain
// text (a sealed env secret among them). Found by the adversarial review.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { repo, snapshot, tempDir } from './helpers.js';

const SECRET = 'AB-SECRET-8d1f07c2e4';

const service = `
import crypto from 'node:crypto';
const tried = f => { try { return f(); } catch (error) { return 'threw ' + error.code; } };
export const run = (edPem, rsaPem, jwks) => {
  const secret = process.env.AB_SECRET;
  const buffer = new TextEncoder().encode(secret).buffer;
  return {
    string: crypto.sign(null, 'hello world', edPem).toString('base64'),
    arrayBuffer: crypto.sign(null, new TextEncoder().encode('array buffer').buffer, edPem).toString('base64'),
    signUpdateArrayBuffer: tried(() => crypto.createSign('sha256').update(new ArrayBuffer(2))),
    signNumber: tried(() => crypto.sign(null, 42, edPem)),
    encrypted: crypto.publicEncrypt(rsaPem, buffer).toString('base64'),
    // Two keys as JWKs: each is recorded by its own fingerprint (String() made them one).
    jwks: jwks.map(jwk => crypto.sign(null, Buffer.from('same data'), { key: jwk, format: 'jwk' }).toString('base64')),
  };
};
`;

const build = `
import crypto from 'node:crypto';
import fs from 'node:fs';
import { importService } from 'membrane-snapshot';
const ed = crypto.generateKeyPairSync('ed25519');
const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 });
const svc = await importService('./services/svc.js');
const jwks = [crypto.generateKeyPairSync('ed25519'), crypto.generateKeyPairSync('ed25519')];
const r = await svc.run(ed.privateKey.export({ type: 'pkcs8', format: 'pem' }), rsa.publicKey.export({ type: 'spki', format: 'pem' }), jwks.map(pair => pair.privateKey.export({ format: 'jwk' })));
const verifies = (sig, text) => crypto.verify(null, Buffer.from(text), ed.publicKey, Buffer.from(sig, 'base64'));
fs.writeFileSync(process.env.REPORT, JSON.stringify({
  string: verifies(r.string, 'hello world'),
  stringOverEmpty: verifies(r.string, ''),
  arrayBuffer: verifies(r.arrayBuffer, 'array buffer'),
  signUpdateArrayBuffer: r.signUpdateArrayBuffer,
  signNumber: r.signNumber,
  decrypted: crypto.privateDecrypt(rsa.privateKey, Buffer.from(r.encrypted, 'base64')).toString(),
  jwks: r.jwks.map((sig, i) => crypto.verify(null, Buffer.from('same data'), jwks[i].publicKey, Buffer.from(sig, 'base64'))),
}));
`;

t.test('crypto.sign and publicEncrypt take strings and ArrayBuffers as Node does, and keep them out of the log', async t => {
  const dir = path.join(tempDir('crypto-data-forms'), 'project');
  fs.mkdirSync(path.join(dir, 'services'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(repo, path.join(dir, 'node_modules', 'membrane-snapshot'));
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'crypto-data-forms', type: 'module' }));
  fs.writeFileSync(path.join(dir, 'services', 'svc.js'), service);
  fs.writeFileSync(path.join(dir, 'build.mjs'), build);
  const report = path.join(dir, 'report.json');
  const sealKey = randomBytes(32).toString('base64');
  const built = await snapshot(['build', 'build.mjs', '--out', 'snap'], { cwd: dir, env: { REPORT: report, AB_SECRET: SECRET, SNAPSHOT_SEAL_KEY: sealKey }, timeoutMs: 120_000 });
  t.equal(built.code, 0, built.stderr);
  const r = JSON.parse(fs.readFileSync(report, 'utf8'));
  t.equal(r.string, true, 'a string is signed as its UTF-8 bytes');
  t.equal(r.stringOverEmpty, false, 'not as the empty message');
  t.equal(r.arrayBuffer, true, 'an ArrayBuffer is signed as its bytes');
  t.equal(r.signUpdateArrayBuffer, 'threw ERR_INVALID_ARG_TYPE', "Sign#update refuses an ArrayBuffer, as Node's");
  t.equal(r.signNumber, 'threw ERR_INVALID_ARG_TYPE', "crypto.sign refuses a number with Node's error");
  t.equal(r.decrypted, SECRET, 'publicEncrypt encrypted the ArrayBuffer');
  const log = fs.readFileSync(path.join(dir, 'snap', 'svc', 'replay.log')).toString('latin1');
  t.notOk(log.includes(SECRET), 'the secret given to publicEncrypt as an ArrayBuffer is not in the log');
  t.same(r.jwks, [true, true], 'each JWK signs');
  const inspected = await snapshot(['inspect', path.join(dir, 'snap', 'svc', 'replay.log')], { env: { SNAPSHOT_SEAL_KEY: sealKey } });
  // Each line: crypto.sign(null, {hmac: "<data>…, {hmac: "<key>…) (inspect shortens long values).
  const keys = [...inspected.stdout.matchAll(/crypto\.sign\(null, \{hmac: "[0-9a-f]+[^,]*, \{hmac: "([0-9a-f]+)/g)].map(m => m[1]);
  t.equal(keys.length, 4, `four signatures recorded:\n${inspected.stdout}`);
  t.not(keys[2], keys[3], 'the two JWKs are recorded by different fingerprints');
  const restored = await snapshot(['restore', path.join(dir, 'snap'), '--replay-only'], { env: { SNAPSHOT_SEAL_KEY: sealKey }, timeoutMs: 120_000 });
  t.equal(restored.code, 0, restored.stderr);
});
