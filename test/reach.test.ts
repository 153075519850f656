// Reach policy: a build declares what a service may fetch, read and write;
// everything else is refused with REACH_DENIED, at build time and when the
// restored service is live. Each attempt stands for a route out: another
// host, a redirect, a name alias, a nested service, `..`, links to files and
// directories, descriptors, writes through open flags, rename and copy.
import t from 'tap';
import fs from 'node:fs';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { fixture, lastJson, moveToTarget, snapshot, tempDir } from './helpers.js';

const work = tempDir('reach');
const root = path.join(work, 'root');
const out = path.join(work, 'snapshot');
const resultsFile = path.join(work, 'results.json');

const serve = async (handler: http.RequestListener): Promise<{ url: string; hits: string[]; close: () => void }> => {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    handler(req, res);
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits, close: () => server.close() };
};

let allowed: Awaited<ReturnType<typeof serve>>;
let other: Awaited<ReturnType<typeof serve>>;
let results: Record<string, { ok?: unknown; code?: string; message?: string }>;

t.before(async () => {
  other = await serve((_req, res) => res.end('other'));
  allowed = await serve((req, res) => {
    if (req.url === '/redirect-home') {
      res.statusCode = 302;
      res.setHeader('location', '/hello');
      return res.end();
    }
    if (req.url === '/redirect' || req.url === '/http-redirect') {
      res.statusCode = 302;
      res.setHeader('location', `${other.url}/hello`);
      return res.end();
    }
    res.end('allowed');
  });
  for (const dir of ['data', 'out', 'outside']) fs.mkdirSync(path.join(root, dir), { recursive: true });
  fs.writeFileSync(path.join(root, 'data', 'ok.txt'), 'ok');
  fs.writeFileSync(path.join(root, 'outside', 'secret.txt'), 'outside secret');
  fs.symlinkSync(path.join(root, 'outside', 'secret.txt'), path.join(root, 'data', 'file-link'));
  fs.symlinkSync(path.join(root, 'outside'), path.join(root, 'data', 'dir-link'));
  fs.symlinkSync(path.join(root, 'outside'), path.join(root, 'out', 'out-link'));
  // Trees to copy with fs.cp following links: one holds a link out of data/, the other a directory named as out/'s link.
  fs.mkdirSync(path.join(root, 'data', 'tree'));
  fs.writeFileSync(path.join(root, 'data', 'tree', 'ok.txt'), 'ok');
  fs.symlinkSync(path.join(root, 'outside'), path.join(root, 'data', 'tree', 'inner-link'));
  // A link outside the policy into out/, and one in out/ to outside/: the service may remove the second, not the first.
  fs.writeFileSync(path.join(root, 'out', 'victim.txt'), 'victim');
  fs.symlinkSync(path.join(root, 'out', 'victim.txt'), path.join(root, 'outside', 'link-in'));
  fs.symlinkSync(path.join(root, 'outside'), path.join(root, 'out', 'doomed-link'));
  fs.mkdirSync(path.join(root, 'data', 'planting', 'out-link'), { recursive: true });
  // A link deep down to the root of the layout: what is relative to it climbs from there, not from where it is.
  fs.mkdirSync(path.join(root, 'a', 'b', 'c'), { recursive: true });
  fs.symlinkSync(root, path.join(root, 'a', 'b', 'c', 'up-link'));
  fs.writeFileSync(path.join(root, 'data', 'planting', 'out-link', 'planted.txt'), 'escaped');
  // The seal key file, in a directory the policy opens: services reach it neither way.
  const sealKeyFile = path.join(root, 'data', 'seal.key');
  fs.writeFileSync(sealKeyFile, randomBytes(32).toString('base64'), { mode: 0o600 });
  const built = await snapshot(['build', 'build-reach.mjs', '--out', out, '--seal-key', sealKeyFile], {
    cwd: fixture('trust'),
    env: { REACH_ALLOWED: allowed.url, REACH_OTHER: other.url, REACH_ROOT: root, REACH_RESULTS: resultsFile, REACH_SEAL_KEY_FILE: sealKeyFile },
  });
  if (built.code !== 0) throw new Error(`build failed: ${built.stderr}`);
  results = JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as typeof results;
});

t.teardown(() => {
  allowed.close();
  other.close();
});

t.test('what the policy names is reached', async t => {
  t.same(results.fetchAllowed, { ok: 'allowed' });
  t.same(results.fetchRedirectHome, { ok: 'allowed' }, 'a redirect within the policy is followed');
  t.same(results.httpAllowed, { ok: 'allowed' }, 'node:http within the policy');
  t.same(results.readAllowed, { ok: 'ok' });
  t.same(results.writeAllowed, {});
  t.equal(fs.readFileSync(path.join(root, 'out', 'new.txt'), 'utf8'), 'written');
  t.same(results.openReadOnly, { ok: 'r' });
  t.same(results.readOpened, { ok: 'ok' }, 'a descriptor it opened within the policy');
  t.same(results.unlimitedRead, { ok: 'outside secret' }, 'without a policy, fs stays open');
});

t.test('a service never reaches the host\'s own descriptors, policy or not', async t => {
  t.match(results.readDescriptor, { code: 'EBADF' });
  t.match(results.unlimitedStdin, { code: 'EBADF' });
  t.match(results.unlimitedStderr, { code: 'EBADF' });
});

t.test("no policy opens the host process's own environment, memory or descriptors under /proc", { skip: process.platform !== 'linux' && 'Linux only' }, async t => {
  for (const route of ['unlimitedEnviron', 'unlimitedPidEnviron', 'unlimitedParentEnviron', 'unlimitedFdList', 'unlimitedDevStdout', 'unlimitedDevFd', 'unlimitedProcSelfFd']) {
    t.match(results[route], { code: 'REACH_DENIED', message: /the host process's own/ }, route);
  }
  for (const route of ['unlimitedRootLinkEnviron', 'unlimitedRootLinkParentEnviron', 'unlimitedRootLinkStderr', 'unlimitedRootLinkFd']) {
    t.match(results[route], { code: 'REACH_DENIED', message: /the host process's own/ }, `${route}: through a link to the root, checked where it leads`);
  }
  t.match(results.unlimitedLinkClimbing, { code: 'REACH_DENIED', message: /links into \/proc or \/dev/ }, 'a relative link target climbs from the real directory');
  t.match(results.unlimitedListDev, { code: 'REACH_DENIED', message: /the host process's own/ }, "a recursive listing of /dev goes into /dev/fd, the host's descriptors");
  for (const route of ['unlimitedLinkEnviron', 'unlimitedLinkProc', 'unlimitedLinkRelative', 'unlimitedCopyDev']) {
    t.match(results[route], { code: 'REACH_DENIED', message: /never within a service's reach, whatever its policy/ }, `${route}: nor through a link or a copy it makes`);
  }
  t.type(results.unlimitedCgroup.ok, 'string', 'the rest of /proc stays open without a policy');
});

t.test("the library's own key files are out of reach, policy or not", async t => {
  t.match(results.sealKeyFile, { code: 'REACH_DENIED', message: /a key of the library's own/ }, 'in a directory the policy opens');
  t.match(results.unlimitedSealKeyFile, { code: 'REACH_DENIED', message: /a key of the library's own/ }, 'without a policy');
  t.match(results.unlimitedLinkSealKey, { code: 'REACH_DENIED', message: /key files/ }, 'nor through a link it makes');
  t.match(results.unlimitedCopyKeyDir, { code: 'REACH_DENIED', message: /holds .*seal\.key, a key of the library's own/ }, 'nor by copying the directory that holds it');
  t.match(results.unlimitedRenameKeyDir, { code: 'REACH_DENIED', message: /holds .*seal\.key/ }, 'nor by moving it');
});

t.test('fetch beyond the policy is refused before any request leaves', async t => {
  t.match(results.fetchOther, { code: 'REACH_DENIED' }, 'a loopback server the build never named');
  t.match(results.fetchRedirect, { code: 'REACH_DENIED' }, 'an allowed host redirecting elsewhere');
  t.match(results.fetchLocalhostAlias, { code: 'REACH_DENIED' }, 'another name for an allowed address');
  t.match(results.fetchViaChild, { code: 'REACH_DENIED' }, 'a nested service gets its parent\'s reach');
  t.match(results.httpOther, { code: 'REACH_DENIED' }, 'node:http to a server the build never named');
  t.match(results.httpRedirect, { code: 'REACH_DENIED' }, "node:http: the redirect's target, requested by the service, is checked as a request of its own");
  t.match(results.httpHostOther, { code: 'REACH_DENIED', message: /evil\.example/ }, 'node:http: a Host header naming a site the policy does not');
  t.same(results.httpHostSame, { ok: 'allowed' }, 'the Host the URL names');
  t.same(results.httpHostNoPort, { ok: 'allowed' }, "the Host without a port: the request's");
  t.same(other.hits, [], 'the other server never saw a request');
  t.same(results.fetchRedirectManual, { ok: `302 to ${other.url}/hello` }, "redirect: 'manual': the redirect is the answer, its target is not fetched (so not refused)");
  t.same(results.fetchRedirectError, { code: 'TypeError', message: 'fetch failed' }, "redirect: 'error': Node's TypeError, not a refusal");
  t.same(allowed.hits.filter(h => h === '/redirect').length, 3, 'the redirect itself was fetched (three times), its target never');
});

t.test('files beyond the policy are refused, however they are named', async t => {
  for (const key of ['readOutside', 'readAsyncOutside', 'readDotDot', 'readFileLink', 'readDirLink', 'readDirLinkDotDot', 'copyIn', 'hardLinkIn', 'hardLinkInAsync', 'hardLinkInCallback', 'hardLinkOut']) {
    t.match(results[key], { code: 'REACH_DENIED' }, key);
  }
  for (const key of ['writeOutside', 'writeReadOnly', 'writeThroughLink', 'openForWrite', 'renameOut']) {
    t.match(results[key], { code: 'REACH_DENIED' }, key);
  }
  for (const name of ['hard-sync', 'hard-promises', 'hard-callback']) t.notOk(fs.existsSync(path.join(root, 'out', name)), `${name}: no hard link made`);
  t.notOk(fs.existsSync(path.join(root, 'outside', 'hard-out')), 'no hard link made outside');
  for (const [key, copy] of [['copyFollowingOut', 'tree-sync'], ['copyFollowingOutAsync', 'tree-promises'], ['copyFollowingOutCallback', 'tree-callback']]) {
    t.match(results[key], { code: 'REACH_DENIED', message: /inner-link/ }, `${key}: fs.cp following a link in the tree it reads`);
    t.notOk(fs.existsSync(path.join(root, 'out', copy)), `${key}: nothing copied`);
  }
  t.match(results.copyFollowingInto, { code: 'REACH_DENIED', message: /out-link/ }, 'fs.cp following a link in the tree it writes into');
  t.same(results.copyFollowingWithin, {}, 'fs.cp following links within the policy copies');
  t.equal(fs.readFileSync(path.join(root, 'out', 'planted', 'out-link', 'planted.txt'), 'utf8'), 'escaped');
  t.match(results.unlinkOutsideLink, { code: 'REACH_DENIED', message: /outside\/link-in/ }, 'a link outside the policy is not removed, whatever it leads to');
  t.match(results.renameOverOutsideLink, { code: 'REACH_DENIED', message: /outside\/link-in/ }, 'nor renamed over');
  t.same(results.unlinkOwnLink, {}, 'a link within the policy is removed, wherever it leads');
  t.notOk(fs.existsSync(path.join(root, 'out', 'doomed-link')));
  t.same(results.lstatLinkOut, { ok: true }, "lstat reads the link within the policy, not its target's");
  t.match(results.listThroughLink, { code: 'REACH_DENIED', message: /dir-link|file-link/ }, 'a recursive listing does not go through a link out of the policy');
  t.same(results.listWithin, { ok: 2 }, 'one within it lists');
  t.ok(fs.lstatSync(path.join(root, 'outside', 'link-in')).isSymbolicLink(), 'the outside link is still there');
  t.same(fs.readdirSync(path.join(root, 'outside')).sort(), ['link-in', 'secret.txt'], 'nothing was written outside');
  t.notOk(fs.existsSync(path.join(root, 'data', 'new.txt')), 'nothing was written in the read-only directory');
  t.notOk(fs.existsSync(path.join(root, 'out', 'copied.txt')), 'nothing was copied in');
});

t.test('the manifest records the policy, with absolute paths', async t => {
  const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
  t.same(manifest.services.reacher.reach, {
    fetch: [new URL(allowed.url).host],
    read: [path.join(root, 'data'), path.join(root, 'out')],
    write: [path.join(root, 'out')],
  });
  t.same(manifest.services.child.reach, manifest.services.reacher.reach, 'the nested service inherited it');
});

t.test('the error says which service, what it tried and how to allow it', async t => {
  const restored = await snapshot(['restore', moveToTarget(out), '--service', 'reacher', '--call', 'reacher.fetchUrl', '--args', JSON.stringify([`${other.url}/live`])]);
  t.equal(restored.code, 0, restored.stderr);
  t.match(lastJson(restored), { code: 'REACH_DENIED', message: /^service "reacher" tried to fetch http:\/\/127\.0\.0\.1:\d+\/live, outside its reach policy \(fetch: 127\.0\.0\.1:\d+\)\. If it should, add '127\.0\.0\.1:\d+' to importService\(spec, \{ reach: \{ fetch: \[\.\.\.\] \} \}\)/ }, 'enforced when live after restore');
  t.same(other.hits, [], 'the live call did not reach the server either');
  const dir = moveToTarget(out);
  const message = await snapshot(['restore', dir, '--service', 'reacher', '--call', 'reacher.read', '--args', JSON.stringify([path.join(root, 'outside', 'secret.txt')])]);
  t.match(lastJson(message), { code: 'REACH_DENIED', message: /tried to read \(fs\.readFile\) .*secret\.txt, outside its reach policy \(read: / }, 'file reads are enforced when live too');
  // A relative path is named with where it leads (process.loadEnvFile() reads '.env' of the working directory).
  const relative = await snapshot(['restore', dir, '--service', 'reacher', '--call', 'reacher.read', '--args', JSON.stringify(['.env'])], { cwd: path.dirname(dir) });
  t.match(lastJson(relative), { code: 'REACH_DENIED', message: new RegExp(`tried to read \\(fs\\.readFile\\) \\.env \\(${path.join(fs.realpathSync(path.dirname(dir)), '.env').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\), outside its reach policy`) }, 'a relative path is shown resolved');
  const allowedLive = await snapshot(['restore', dir, '--service', 'reacher', '--call', 'reacher.fetchUrl', '--args', JSON.stringify([`${allowed.url}/live`])]);
  t.same(lastJson(allowedLive), { ok: 'allowed' }, 'what the policy names is reached when live');
});

t.test('a misspelt option, at any level, is a usage error naming it (not a policy that limits nothing)', async t => {
  for (const [which, message] of [
    ['top', /USAGE: importService\("\.\/services\/child\.js"\) has no option "nmae"; did you mean "name"\? \(it takes name, base, modules, reach, secrets\)/],
    ['reach', /USAGE: importService\("child"\): reach has no option "host" \(it takes fetch, read, write\)/],
    ['secrets', /USAGE: importService\("child"\): secrets has no option "header"; did you mean "headers"\?/],
    ['reserved', /USAGE: "manifest\.json" cannot name a service: the snapshot's own manifest\.json is there/],
    ['kinds', /USAGE: importService\("\.\/services\/child\.js"\): base takes a string, got number/],
    ['grant', /USAGE: importService\("child"\): modules\["node:fs"\] takes the host module \(an object, e\.g\. await import\("node:fs"\)\), got number/],
    ['remoteBase', /USAGE: importService\(\): base "https:\/\/example\.com\/lib\/" is a https: URL; services load from files/],
    ['emptyBase', /USAGE: importService\(\): base is an empty string; give a file path or a file: URL/],
  ] as const) {
    const dir = tempDir(`options-${which}`);
    const built = await snapshot(['build', 'build-options-typo.mjs', '--out', path.join(dir, 'snap')], { cwd: fixture('trust'), env: { OPTIONS_CASE: which } });
    t.equal(built.code, 1, `${which}: the build fails`);
    t.match(built.stderr, message, which);
    t.notOk(fs.existsSync(path.join(dir, 'snap', 'manifest.json')), `${which}: nothing sealed`);
  }
  const { restoreSnapshot, buildSnapshot } = await import('../lib/index.js');
  await t.rejects(restoreSnapshot({ dir: tempDir('options-restore'), trusted: ['key.pem'] } as never), { code: 'USAGE', message: /restoreSnapshot\(\) has no option "trusted"; did you mean "trust"\?/ }, 'restoreSnapshot: a misspelt trust is refused, not skipped');
  await t.rejects(buildSnapshot({ script: 'x.mjs', sealkeyFile: 'k' } as never), { code: 'USAGE', message: /buildSnapshot\(\) has no option "sealkeyFile"; did you mean "sealKeyFile"\?/ });
  // A value of the wrong kind is refused too, not read as "none": trust as a Set skipped the signature check.
  await t.rejects(restoreSnapshot({ dir: tempDir('options-trust-set'), trust: new Set(['key.pem']) } as never), { code: 'USAGE', message: /restoreSnapshot\(\): trust takes an array of non-empty strings, got an instance of Set/ });
  await t.rejects(buildSnapshot({ script: 'x.mjs', sign: 5 } as never), { code: 'USAGE', message: /buildSnapshot\(\): sign takes a string, got number/ });
  const { verifySnapshot } = await import('../lib/index.js');
  await t.rejects(verifySnapshot(tempDir('verify-trust-set'), { trust: new Set(['key.pem']) } as never), { code: 'USAGE', message: /verifySnapshot\(\): trust takes an array of non-empty strings, got an instance of Set/ }, 'verifySnapshot: trust as a Set is refused, not read as no check');
  await t.rejects(verifySnapshot(tempDir('verify-trust-empty'), { trust: [] }), { code: 'USAGE', message: /verifySnapshot\(\): trust takes one or more files/ });
  // Inherited options are options: a trust from a prototype or a class getter was dropped, and the signature went unchecked.
  class TrustOptions {
    get trust(): string[] {
      return [];
    }
  }
  await t.rejects(verifySnapshot(tempDir('verify-trust-inherited'), Object.create({ trust: [] }) as never), { code: 'USAGE', message: /verifySnapshot\(\): trust takes one or more files/ }, 'an inherited trust is read');
  await t.rejects(verifySnapshot(tempDir('verify-trust-getter'), new TrustOptions()), { code: 'USAGE', message: /verifySnapshot\(\): trust takes one or more files/ }, "a class's getter is read");
  await t.rejects(restoreSnapshot(Object.create({ trust: new Set(['k.pem']) }, { dir: { value: tempDir('restore-trust-inherited'), enumerable: true } }) as never), { code: 'USAGE', message: /trust takes an array of non-empty strings, got an instance of Set/ });
  await t.rejects(restoreSnapshot(Object.create({ trusted: ['k.pem'] }, { dir: { value: tempDir('restore-trusted-inherited'), enumerable: true } }) as never), { code: 'USAGE', message: /has no option "trusted"; did you mean "trust"/ });
  // A list is read once: a Proxy whose length turns 0 after the check does not skip the signature.
  let reads = 0;
  const flipping = new Proxy(['k.pem'], { get: (target, key, receiver) => (key === 'length' && ++reads > 2 ? 0 : Reflect.get(target, key, receiver)) });
  await t.rejects(verifySnapshot(tempDir('verify-trust-proxy'), { trust: flipping }), { code: 'KEY_INVALID' }, 'the key file is loaded from the copy that was checked');
  await t.rejects(verifySnapshot(5 as never), { code: 'USAGE', message: /verifySnapshot\(\) takes the snapshot directory \(a string\), got number/ });
  // A duration no timer can hold is refused, not waited 1 ms (Node's TimeoutOverflowWarning) or never.
  for (const timeoutMs of [-1, 0, Number.NaN, 2 ** 31]) {
    await t.rejects(buildSnapshot({ script: 'x.mjs', timeoutMs }), { code: 'USAGE', message: /buildSnapshot\(\): timeoutMs takes a number of milliseconds over 0, at most 2147483647, got/ }, `timeoutMs ${timeoutMs}`);
  }
  const { goLive } = await import('../lib/live.js');
  await t.rejects(goLive({ source: tempDir('options-live'), callTimeoutMs: -5 }), { code: 'USAGE', message: /callTimeoutMs takes a number of milliseconds over 0, at most 2147483647, got -5/ });
  await t.rejects(restoreSnapshot({ dir: tempDir('options-trust-empty'), trust: [] }), { code: 'USAGE', message: /trust takes one or more files of trusted keys; an empty list would check nothing/ }, 'an empty trust list is refused, not read as no check');
  await t.rejects(restoreSnapshot({ dir: tempDir('options-trust-sparse'), trust: [, 'k.pem'] as string[] }), { code: 'USAGE', message: /trust takes an array of non-empty strings/ }, 'a sparse list too');
});

t.test("importService's base may name a directory, by path or file: URL, or a module", async t => {
  const dir = tempDir('base');
  const built = await snapshot(['build', 'build-base.mjs', '--out', path.join(dir, 'snap')], { cwd: fixture('trust') });
  t.equal(built.code, 0, built.stderr);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'snap', 'manifest.json'), 'utf8')) as { services: Record<string, unknown> };
  t.same(Object.keys(manifest.services).sort(), ['from-module', 'from-path', 'from-url'], 'each found services/child.js');
});

t.test('every public function given arguments of the wrong kind throws USAGE saying which, before it reads or opens anything', async t => {
  const lib = await import('../lib/index.js');
  const { goLive } = await import('../lib/live.js');
  // Never a descriptor read (loadSigningKey(5) read fd 5), the current directory (readManifest()) or a raw TypeError.
  const calls: Array<[string, () => unknown, RegExp]> = [
    ['buildSnapshot({})', () => lib.buildSnapshot({} as never), /buildSnapshot\(\): the option script is required/],
    ['restoreSnapshot({})', () => lib.restoreSnapshot({} as never), /restoreSnapshot\(\): the option dir is required/],
    ['goLive({})', () => goLive({} as never), /goLive\(\): the option source is required/],
    ['readManifest(5)', () => lib.readManifest(5 as never), /readManifest\(\): the snapshot directory must be a non-empty string, got number/],
    ['readManifest()', () => (lib.readManifest as () => unknown)(), /got undefined/],
    ["readManifest('')", () => lib.readManifest(''), /got an empty string/],
    ['readManifest(dir, {})', () => lib.readManifest(tempDir('usage-manifest'), {} as never), /readManifest\(\): trusted keys are an array/],
    ['inspectPath({})', () => lib.inspectPath({} as never), /inspectPath\(\): the snapshot directory or log file must be a non-empty string, got an instance of Object/],
    ['verifySources(5, dir)', () => lib.verifySources(5 as never, 'x'), /verifySources\(\): the snapshot directory must be/],
    ['verifySources(dir)', () => (lib.verifySources as (d: string) => unknown)('x'), /verifySources\(\): the sources directory must be/],
    ['loadSigningKey(5)', () => lib.loadSigningKey(5 as never), /loadSigningKey\(\): the key file must be a non-empty string, got number/],
    ["loadTrustedKeys('k.pem')", () => lib.loadTrustedKeys('k.pem' as never), /loadTrustedKeys\(\) takes an array of one or more key files/],
    ['loadTrustedKeys([5])', () => lib.loadTrustedKeys([5] as never), /loadTrustedKeys\(\): each key file must be a non-empty string, got number/],
    ["publicKeyId('key')", () => lib.publicKeyId('key' as never), /publicKeyId\(\) takes a public or private KeyObject/],
    ['callService(5, ...)', () => lib.callService(5 as never, 'svc.f', []), /callService\(\): the first argument is what restoreSnapshot\(\) resolved to/],
    ['onProgress(5)', () => lib.onProgress(5 as never), /onProgress\(\) takes a listener function, got number/],
  ];
  for (const [what, call, message] of calls) {
    await t.rejects(async () => call(), { code: 'USAGE', message }, what);
  }
  // What they do take still works: a key's id from its private or its public half.
  const { generateKeyPairSync } = await import('node:crypto');
  const pair = generateKeyPairSync('ed25519');
  t.equal(lib.publicKeyId(pair.privateKey), lib.publicKeyId(pair.publicKey), 'publicKeyId: the same id from either half');
});

t.test('a nested service takes only a name: a policy, a grant or a misspelt option given to it is refused, not dropped', async t => {
  const dir = tempDir('nest-options');
  const built = await snapshot(['build', 'build-nest-options.mjs', '--out', path.join(dir, 'snap')], { cwd: fixture('trust') });
  t.equal(built.code, 0, built.stderr);
  const results = JSON.parse(built.stdout.trim().split('\n').pop() as string) as Array<{ code?: string; message?: string } | string>;
  t.match(results[0], { code: 'USAGE', message: /inside service "nester": a nested service has its parent's reach, so it takes no "reach" option; set it on "nester" in the build script/ });
  t.match(results[1], { code: 'USAGE', message: /takes no "secrets" option/ });
  t.match(results[2], { code: 'USAGE', message: /has no option "nmae"; did you mean "name"\?/ });
  t.match(results[3], { code: 'USAGE', message: /name takes a string, got number/ });
  t.equal(results[4], 'imported', 'a name alone is fine');
});

t.test('a build script with a malformed policy gets a usage error', async t => {
  const dir = tempDir('reach-bad');
  const built = await snapshot(['build', 'build-reach-bad.mjs', '--out', path.join(dir, 'snap')], { cwd: fixture('trust') });
  t.equal(built.code, 1);
  t.match(built.stderr, /USAGE: importService\("child"\): reach\.fetch takes an array/);
});
