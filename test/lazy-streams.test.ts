// A service's web streams are readied (Node's stream internals it shares
// with the host frozen) on its first contact with them, not before every
// service runs: each route to a stream, taken first in a fresh process,
// must find those internals frozen already (compartments/readable-stream.ts,
// readyStreams). The stream globals have Node's lazy shape.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { installElsewhere, lastJson, moveToTarget, node, projectFrom, snapshot } from './helpers.js';

const routes = [
  'global ReadableStream',
  'global WritableStream',
  'global TransformStream',
  'global TextDecoderStream',
  'global ByteLengthQueuingStrategy',
  'globalThis descriptor',
  'stream/web',
  'Blob#stream',
  'buffer.File#stream',
  'Response#body',
  'Readable.toWeb',
];

const project = projectFrom('streams');

/** Build with `route` taken first inside the service, in a process of its own; what the service saw. */
const firstContact = async (route: string): Promise<Record<string, unknown>> => {
  const out = path.join(project, `seen-${routes.indexOf(route)}.json`);
  const built = await snapshot(['build', 'build.mjs', '--out', `snapshot-${routes.indexOf(route)}`, '-q'], { cwd: project, env: { ROUTE: route, STREAMS_OUT: out }, timeoutMs: 120_000 });
  if (built.code !== 0) throw new Error(`build (${route}) failed:\n${built.stderr}`);
  return JSON.parse(fs.readFileSync(out, 'utf8')) as Record<string, unknown>;
};

const expected = {
  // Before the first read: Node's own shape for its lazy web globals.
  shape: { get: 'function', enumerable: false, configurable: true },
  // After it: a data property, still hidden from enumeration, as Node leaves it.
  after: { value: 'function', writable: true, enumerable: false, configurable: true },
  readRequest: 'frozen',
  iterator: 'frozen',
};

t.test('every route to a stream, taken first, finds the internals it shares with the host frozen', async t => {
  // Two builds at a time (two cores).
  const seen = new Map<string, Record<string, unknown>>();
  const queue = [...routes];
  await Promise.all(
    [0, 1].map(async () => {
      for (let route = queue.shift(); route !== undefined; route = queue.shift()) seen.set(route, await firstContact(route));
    }),
  );
  for (const route of routes) t.same(seen.get(route), expected, route);
});

t.test('after a restore elsewhere, a live call is the first contact and finds them frozen too', async t => {
  const built = await snapshot(['build', 'build.mjs', '--out', 'snapshot', '-q'], { cwd: project, timeoutMs: 120_000 });
  t.equal(built.code, 0, built.stderr);
  const target = moveToTarget(path.join(project, 'snapshot'));
  const { cli } = installElsewhere();
  for (const route of ['Response#body', 'Blob#stream']) {
    const restored = await node([cli, 'restore', target, '--call', 'svc.first', '--args', JSON.stringify([route])], { cwd: path.dirname(target), timeoutMs: 120_000 });
    t.equal(restored.code, 0, restored.stderr);
    t.same(lastJson(restored), expected, route);
  }
});
