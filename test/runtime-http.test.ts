// Runtime declarations, `snapshot plan`, and HTTP serving of a restored
// fetch handler in one process (no NATS): the README's first command.
import t from 'tap';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { readManifest } from '../lib/index.js';
import { pathToFileURL } from 'node:url';
import { cliPath, fixture, moveToTarget, node, snapshot, tempDir } from './helpers.js';
import { startHost } from './hosts.js';

const work = tempDir('runtime-http');
const out = path.join(work, 'snapshot');

t.before(async () => {
  const built = await snapshot(['build', fixture('live', 'build.mjs'), '--out', out]);
  if (built.code !== 0) throw new Error(built.stderr);
});

t.test('declarations land in the manifest, with the app name of the build project', async t => {
  const manifest = readManifest(out);
  t.equal(manifest.app, 'live-fixture');
  t.same(manifest.services.db.runtime, { replicas: 2 });
  t.match(manifest.services.api.runtime, { http: { port: 18080 } });
  t.type(manifest.services.api.runtime?.httpAdapter, 'number');
});

t.test('snapshot plan writes a compose file: NATS with JetStream, one container per replica, declared ports', async t => {
  const deploy = path.join(work, 'deploy');
  const run = await snapshot(['plan', out, '--out', deploy]);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, /db: 2 replicas/);
  t.match(run.stdout, /api: 1 replica, HTTP on port 18080/);
  const compose = fs.readFileSync(path.join(deploy, 'compose.yaml'), 'utf8');
  t.match(compose, /command: \["-js", "-sd", "\/data"\]/);
  for (const container of ['db-1', 'db-2', 'api-1']) t.match(compose, new RegExp(`^  ${container}:$`, 'm'), `container ${container}`);
  t.notMatch(compose, /^  db-3:$/m);
  t.match(compose, /"restore", "nats:\/\/nats:4222\/live-fixture", "--service", "api"/);
  t.match(compose, /ports: \["18080:18080"\]/);
  t.equal(fs.readFileSync(path.join(deploy, 'plan.txt'), 'utf8'), run.stdout.slice(0, run.stdout.indexOf('\nwrote ')));
});

t.test('snapshot plan needs no NATS client (npm leaves it out on Node 20); push says what to install', async t => {
  // A loader hook makes @nats-io/* missing, as on a host where npm skipped the optional packages.
  const hooks = path.join(work, 'no-nats-hooks.mjs');
  fs.writeFileSync(hooks, "export async function resolve(s, c, next) { if (s.startsWith('@nats-io/')) throw Object.assign(new Error(`Cannot find package '${s}'`), { code: 'ERR_MODULE_NOT_FOUND' }); return next(s, c); }\n");
  const register = path.join(work, 'no-nats.mjs');
  fs.writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  const deploy = path.join(work, 'deploy-no-nats');
  const plan = await node(['--import', pathToFileURL(register).href, cliPath, 'plan', out, '--out', deploy]);
  t.equal(plan.code, 0, plan.stderr);
  t.ok(fs.existsSync(path.join(deploy, 'compose.yaml')), 'the plan is written');
  const push = await node(['--import', pathToFileURL(register).href, cliPath, 'push', out, '--nats', 'nats://127.0.0.1:1']);
  t.equal(push.code, 2);
  t.match(push.stderr, /USAGE: NATS needs the optional packages @nats-io\/transport-node and @nats-io\/obj, which are not installed here .* npm install @nats-io\/transport-node @nats-io\/obj/);
});

t.test('a service module that declares its runtime still runs in plain Node (the declaration does nothing there)', async t => {
  // db.js imports runtime from 'membrane-snapshot/runtime', which has no side effect: no lockdown, no TZ.
  const run = await node(
    [
      '--input-type=module',
      '-e',
      "const db = await import('./services/db.js'); await db.load([{ id: 1, title: 'one' }]); console.log(JSON.stringify({ row: await db.get(1), lockedDown: Object.isFrozen(Array.prototype), tz: process.env.TZ ?? null }))",
    ],
    { cwd: fixture('live'), env: { TZ: undefined } },
  );
  t.equal(run.code, 0, run.stderr);
  t.same(JSON.parse(run.stdout), { row: { id: 1, title: 'one' }, lockedDown: false, tz: null });
});

t.test('bad declarations fail the build with DECLARATION_INVALID saying what to fix', async t => {
  const cases: Array<[string, RegExp]> = [
    ['replicas.mjs', /DECLARATION_INVALID: runtime\.declare\(\): replicas takes an integer from 1 to 64 \(got 0\)/],
    ['unknown-field.mjs', /DECLARATION_INVALID: runtime\.declare\(\): unknown field "cpu"; known fields: http, replicas/],
    ['no-handler.mjs', /DECLARATION_INVALID: service "no-handler-service" declares http on port 8080 but exports no fetch handler/],
    ['declare-in-build.mjs', /USAGE: runtime\.declare\(\) describes a service: call it inside a module loaded with importService\(\)/],
    ['port-zero.mjs', /DECLARATION_INVALID: runtime\.declare\(\): http\.port takes an integer TCP port from 1 to 65535; for any free port, declare one and restore with --port <service>=0 \(got 0\)/],
  ];
  for (const [script, message] of cases) {
    const dir = path.join(work, `bad-${script}`);
    const run = await snapshot(['build', fixture('live', 'bad', script), '--out', dir]);
    t.equal(run.code, 1, `${script} fails`);
    t.match(run.stderr, message, script);
    t.notOk(fs.existsSync(path.join(dir, 'manifest.json')), `${script}: no manifest sealed`);
  }
});

t.test('--port or --call naming no restored service, and --port for one without HTTP, are usage errors before any replay', async t => {
  const target = moveToTarget(out);
  for (const [port, message] of [
    ['apj=0', /USAGE: --port apj=0: no service "apj" is restored here \(restored: .*api/],
    ['db=8081', /USAGE: --port db=8081: service "db" serves no HTTP/],
    ['__proto__=8082', /USAGE: --port __proto__=8082: no service "__proto__" is restored here/],
  ] as const) {
    const run = await snapshot(['restore', target, '--port', port, '--port', 'api=0']);
    t.equal(run.code, 2, `--port ${port}: exit 2`);
    t.match(run.stderr, message, `--port ${port}`);
    t.notMatch(run.stdout, /listening/, 'nothing served');
    t.notMatch(run.stderr, /replayed/, 'refused before any replay');
  }
  const call = await snapshot(['restore', target, '--call', 'apj.fetch']);
  t.equal(call.code, 2, '--call naming no restored service: exit 2');
  t.match(call.stderr, /USAGE: --call apj\.fetch: no service "apj" is restored here \(restored: .*api/);
  t.notMatch(call.stderr, /replayed/, 'refused before any replay');
  const bare = await snapshot(['restore', target, '--call', 'fetch']);
  t.equal(bare.code, 2, '--call without a service: exit 2');
  t.match(bare.stderr, /USAGE: --call takes service\.method, got "fetch" \(services: .*api.*; --call \w+\.fetch\)/, 'names the services and the form');
  t.notMatch(bare.stderr, /replayed/, 'refused before any replay');
  const dotted = await snapshot(['restore', target, '--call', '.fetch']);
  t.match(dotted.stderr, /got "\.fetch" \(services: .*; --call \w+\.fetch\)/, 'the form to write has one dot');
});

t.test('a restored fetch handler serves HTTP; SIGTERM lets the request in flight finish and exits 0', async t => {
  const target = moveToTarget(out);
  const host = await startHost(t, [target, '--port', 'api=0']);
  t.ok(host.httpUrl, host.output());
  const url = host.httpUrl as string;

  const row = await fetch(`${url}/rows?id=2`);
  t.equal(row.status, 200);
  t.same(await row.json(), { id: 2, title: 'two' }, 'the handler read db through its build-time reference');

  const missing = await fetch(`${url}/rows?id=9`);
  t.equal(missing.status, 404);
  t.same(await missing.json(), { error: 'RangeError', code: 'ENOROW' });

  const echo = await fetch(`${url}/echo`, { method: 'POST', body: 'hello body', headers: { 'x-in': 'header value' } });
  t.equal(echo.status, 201);
  t.equal(echo.headers.get('x-echo'), 'header value');
  t.equal(await echo.text(), 'POST hello body');

  // The request a handler gets has what Node's new Request(url, { method, headers }) has.
  const plainRequest = new Request(`${url}/request`, { method: 'GET', headers: { accept: '*/*' } }) as unknown as Record<string, unknown>;
  const fields = ['cache', 'credentials', 'destination', 'integrity', 'keepalive', 'mode', 'redirect', 'referrer', 'referrerPolicy', 'duplex'];
  const described = await fetch(`${url}/request`);
  t.same(
    await described.json(),
    { signal: true, aborted: false, ...Object.fromEntries(fields.map(f => [f, plainRequest[f]])), isRequest: true, clone: true },
    "a handler's request is the service's Request, with a signal and Node's fields",
  );
  // Its body methods are Node's: blob() typed by the Content-Type header, clone() a copy.
  const init = { method: 'POST', body: 'hello blob', headers: { 'content-type': 'Text/Plain; Charset=UTF-8' } };
  const plainBlob = await new Request(`${url}/blob`, init).blob();
  const blobbed = await fetch(`${url}/blob`, init);
  t.same(await blobbed.json(), { type: plainBlob.type, size: plainBlob.size, text: await plainBlob.text(), isBlob: true, copy: 'hello blob', used: true }, "request.blob() and clone() answer what Node's do");

  // A form posted to it (multipart, with a file; urlencoded) reads as Node's request.formData() reads it.
  const form = new FormData();
  form.append('field', 'value');
  form.append('upload', new Blob(['file body'], { type: 'text/x-thing' }), 'u.txt');
  const posted = await (await fetch(`${url}/form`, { method: 'POST', body: form })).json();
  t.same(
    posted.entries,
    [['field', 'value'], ['upload', { file: true, name: 'u.txt', type: 'text/x-thing', text: 'file body', lastModified: 'number' }]],
    "request.formData() of a multipart form: the service's FormData and File",
  );
  t.equal(posted.isForm, true);
  t.match(posted.own, /^TypeError: formData\(\) inside a service reads a fetched response, a request the service serves, or a body made of the service's FormData/);
  const urlencoded = await (await fetch(`${url}/form`, { method: 'POST', body: new URLSearchParams('a=1&b=two+words') })).json();
  t.same(urlencoded.entries, [['a', '1'], ['b', 'two words']], 'request.formData() of a urlencoded form');

  // A client that goes away aborts the handler's request.signal, as a handler served by @hono/node-server in
  // plain Node sees it (the oracle, served from this process).
  const leave = async (base: string): Promise<string> => {
    const leaving = new AbortController();
    const left = fetch(`${base}/wait-abort`, { signal: leaving.signal }).then(
      () => 'answered',
      (error: Error) => error.name,
    );
    await new Promise(resolve => setTimeout(resolve, 200));
    leaving.abort();
    return left;
  };
  let plainSeen: unknown;
  const { getRequestListener } = await import('@hono/node-server');
  const plainServer = http.createServer(
    getRequestListener(async request => {
      plainSeen = { before: request.signal.aborted };
      const reason = await new Promise(resolve => request.signal.addEventListener('abort', () => resolve(request.signal.reason), { once: true }));
      plainSeen = { ...(plainSeen as object), aborted: request.signal.aborted, reason };
      return new Response('nobody reads this');
    }, { overrideGlobalObjects: false }),
  );
  await new Promise<void>(resolve => plainServer.listen(0, '127.0.0.1', resolve));
  t.equal(await leave(`http://127.0.0.1:${(plainServer.address() as { port: number }).port}`), 'AbortError');
  t.equal(await leave(url), 'AbortError');
  let seen: unknown;
  for (let i = 0; i < 100; i += 1) {
    seen = await (await fetch(`${url}/last-abort`)).json();
    if ((seen as { aborted?: boolean } | null)?.aborted && (plainSeen as { aborted?: boolean } | undefined)?.aborted) break;
    await new Promise(resolve => setTimeout(resolve, 50));
  }
  plainServer.close();
  t.match(plainSeen, { before: false, aborted: true }, 'plain Node: the signal aborts');
  t.same(seen, plainSeen, "the handler's request.signal aborted when its client went away, with the reason plain Node gives");

  // A response with no body (204, 304) and a HEAD request, as @hono/node-server answers them in plain Node.
  const nullBodies = http.createServer(
    getRequestListener(request => {
      const path = new URL(request.url).pathname;
      if (path === '/no-content') return new Response(null, { status: 204 });
      if (path === '/not-modified') return new Response(null, { status: 304, headers: { etag: '"v1"' } });
      return new Response('eighteen bytes!!!!');
    }, { overrideGlobalObjects: false }), // Node's own Response (undici), as the service's Request and Response follow
  );
  await new Promise<void>(resolve => nullBodies.listen(0, '127.0.0.1', resolve));
  const plainUrl = `http://127.0.0.1:${(nullBodies.address() as { port: number }).port}`;
  const answer = (base: string, path: string, method = 'GET') =>
    new Promise<unknown>((resolve, reject) => {
      const req = http.request(`${base}${path}`, { method }, res => {
        let body = '';
        res.on('data', chunk => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode, length: res.headers['content-length'], type: res.headers['content-type'], etag: res.headers.etag, body }));
      });
      req.on('error', reject);
      req.end();
    });
  for (const [path, method] of [['/no-content', 'GET'], ['/not-modified', 'GET'], ['/sized', 'HEAD'], ['/sized', 'GET']] as const) {
    t.same(await answer(url, path, method), await answer(plainUrl, path, method), `${method} ${path} answered as plain Node answers it`);
  }
  nullBodies.close();

  const notFound = await fetch(`${url}/nowhere`);
  t.equal(notFound.status, 404);
  t.equal(await notFound.text(), 'not found\n');

  const impossible = await fetch(`${url}/no-content-with-body`, { signal: AbortSignal.timeout(10_000) });
  t.equal(impossible.status, 500, 'a response HTTP cannot carry is answered 500, not left hanging');
  t.equal(await impossible.text(), 'internal error\n');

  const unprintable = await fetch(`${url}/throw-unprintable`, { signal: AbortSignal.timeout(10_000) });
  t.equal(unprintable.status, 500, 'a thrown value the host cannot print is answered 500, not left hanging');
  const failsFirst = await fetch(`${url}/stream-fails-first`, { signal: AbortSignal.timeout(10_000) });
  const failedText = await failsFirst.text().catch((error: Error) => `cut short: ${error.message}`);
  t.notMatch(failedText, /hunter2|postgres/, "a streamed response that fails early does not send the service's error to the client");

  // A slow request is in flight when SIGTERM arrives: it still gets its answer.
  const slow = fetch(`${url}/slow?ms=400`).then(async r => ({ status: r.status, body: await r.json() }));
  await new Promise(resolve => setTimeout(resolve, 100));
  const code = host.stop('SIGTERM');
  t.same(await slow, { status: 200, body: { slept: 400 } }, 'the request in flight finished');
  t.equal(await code, 0, 'exit 0 after SIGTERM');
  await t.rejects(fetch(`${url}/rows?id=1`), 'no longer accepting');
});

/** A response's bytes as they arrive, and a way to wait for a given text among them. */
const collect = (res: http.IncomingMessage) => {
  let text = '';
  const waiters: Array<() => void> = [];
  res.setEncoding('utf8');
  res.on('data', chunk => {
    text += chunk;
    for (const wake of waiters.splice(0)) wake();
  });
  const ended = new Promise<string>((resolve, reject) => {
    res.on('end', () => resolve(text));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error(`response cut short after ${JSON.stringify(text)}`)));
  });
  const waitFor = async (expected: string): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (!text.includes(expected)) {
      if (Date.now() > deadline) throw new Error(`waited 10 s for ${JSON.stringify(expected)}; got ${JSON.stringify(text)}`);
      await new Promise<void>(resolve => {
        waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  };
  return { waitFor, ended, text: () => text };
};

t.test('a SIGTERM that comes as "ready:" is printed stops the host gracefully (exit 0)', async t => {
  // The host signals itself in the very write of its "ready:" line (a preloaded hook on stdout): an orchestrator that
  // stops it as soon as it reads that line. Before, the handlers came after the line, and the signal killed the process.
  const hook = path.join(work, 'signal-on-ready.cjs');
  fs.writeFileSync(
    hook,
    `const write = process.stdout.write.bind(process.stdout);
process.stdout.write = (chunk, ...rest) => {
  const written = write(chunk, ...rest);
  if (String(chunk).startsWith('ready: ')) process.kill(process.pid, 'SIGTERM');
  return written;
};
`,
  );
  const target = moveToTarget(out);
  // Through env(1), without NODE_OPTIONS: tap's process-info hook, which it adds to every node child, brings a
  // SIGTERM listener of its own (signal-exit), with which a signal no longer ends the process at once.
  const child = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, '--require', hook, cliPath, 'restore', target, '--port', 'api=0'], {
    env: { ...process.env, NODE_OPTIONS: '', LC_ALL: 'C.UTF-8', TZ: 'UTC', MEMBRANE_SNAPSHOT_PINNED: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => void child.kill('SIGKILL'));
  let output = '';
  child.stdout.on('data', chunk => (output += chunk));
  child.stderr.on('data', chunk => (output += chunk));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(resolve => child.on('exit', (c, s) => resolve([c, s])));
  t.equal(signal, null, `not killed by the signal: ${output}`);
  t.equal(code, 0, 'exit 0');
  t.match(output, /^ready: [^]*^SIGTERM: stopping/m, 'ready, then the graceful stop');
});

t.test('request and response bodies stream: each chunk reaches the handler as it arrives, each chunk it produces is sent at once', async t => {
  const target = moveToTarget(out);
  const host = await startHost(t, [target, '--port', 'api=0']);
  const url = new URL(host.httpUrl as string);

  // Duplex over HTTP/1.1: the client sends the next chunk only after the
  // handler's answer to the previous one came back. Buffering on either side
  // would deadlock here.
  const req = http.request({ host: url.hostname, port: url.port, path: '/stream-echo', method: 'POST', headers: { 'content-type': 'text/plain' } });
  req.flushHeaders();
  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  req.write('first');
  const res = await response;
  t.equal(res.statusCode, 200);
  t.equal(res.headers['transfer-encoding'], 'chunked', 'the response is sent chunked, as produced');
  const body = collect(res);
  await body.waitFor('got first\n');
  req.write('second chunk');
  await body.waitFor('got second chunk\n');
  req.write('3');
  await body.waitFor('got 3\n');
  req.end();
  t.equal(await body.ended, 'got first\ngot second chunk\ngot 3\nend 3 chunks 18 bytes\n', 'every chunk answered as it came, then the total');

  // A buffered request body is still a stream for the handler, and text() still works.
  const echo = await fetch(`${url.href}echo`, { method: 'POST', body: 'x'.repeat(100_000) });
  t.equal((await echo.text()).length, 'POST '.length + 100_000, 'a 100 kB body, read whole with text()');

  // A response produced over time; SIGTERM arrives after its first chunk: it still ends whole, then exit 0.
  const ticks = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(`${url.href}ticks?n=5&ms=200`, resolve).once('error', reject));
  const tickBody = collect(ticks);
  await tickBody.waitFor('tick 1\n');
  const firstAt = Date.now();
  const code = host.stop('SIGTERM');
  t.equal(await tickBody.ended, 'tick 1\ntick 2\ntick 3\ntick 4\ntick 5\n', 'the streamed response in flight finished');
  // The four later ticks are 200 ms apart: sent as produced, the last comes at least 800 ms after the first.
  const restAfter = Date.now() - firstAt;
  t.ok(restAfter >= 750, `the first chunk came before the others were produced (the rest took ${restAfter} ms more)`);
  t.equal(await code, 0, 'exit 0 after SIGTERM');
});

t.test('a request body over the limit gets 413 while streaming; the service sees BODY_TOO_LARGE', async t => {
  const target = moveToTarget(out);
  const host = await startHost(t, [target, '--port', 'api=0']);
  const url = new URL(host.httpUrl as string);
  // No content-length: the limit is found while the body streams in (16 MiB + 1 byte, in 1 MiB chunks).
  const req = http.request({ host: url.hostname, port: url.port, path: '/echo', method: 'POST' });
  const chunk = Buffer.alloc(1024 * 1024, 0x61);
  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  for (let i = 0; i < 16; i += 1) req.write(chunk);
  req.end('!');
  const res = await response;
  t.equal(res.statusCode, 413);
  t.equal(await collect(res).ended, 'request body over 16777216 bytes\n');
  await host.stop('SIGTERM');
  t.match(host.output(), /snapshot: api: POST \/echo failed: BODY_TOO_LARGE: the request body is over 16777216 bytes/);
});

t.test('SIGTERM waits at most --shutdown-timeout for what is in flight, then exits 1 saying so', async t => {
  const target = moveToTarget(out);
  const host = await startHost(t, [target, '--port', 'api=0', '--shutdown-timeout', '500']);
  const url = host.httpUrl as string;
  const stuck = fetch(`${url}/slow?ms=20000`).then(
    r => r.status,
    () => 'cut off',
  );
  await new Promise(resolve => setTimeout(resolve, 200));
  const started = Date.now();
  const code = await host.stop('SIGTERM');
  t.equal(code, 1, 'exit 1: something was cut off');
  t.ok(Date.now() - started < 10_000, `exited within the timeout (${Date.now() - started} ms)`);
  t.match(host.output(), /requests or calls were still in flight 500 ms after SIGTERM: exiting anyway/);
  t.equal(await stuck, 'cut off', 'the request in flight was cut off');
});
