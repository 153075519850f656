// The turn discipline: a delivery starts only when the previous one's
// microtasks have all drained, however long they chain, at build time and
// on replay; and a storm of deliveries does not starve the host's event loop.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { fixture, lastJson, moveToTarget, snapshot, tempDir } from './helpers.js';

const work = tempDir('turns');
const out = path.join(work, 'snapshot');
const resultFile = path.join(work, 'result.json');

interface Result {
  trace: string[];
  immediateAfter: number;
  calls: number;
}

/** Each call's start, chained and end, in order, before the next call starts. */
const expectedTrace = (calls: number): string[] => Array.from({ length: calls }, (_, i) => [`c${i}:start`, `c${i}:chained`, `c${i}:end`]).flat();

t.test('2,000 deliveries fired at once run one turn each, in order, microtasks drained between them', async t => {
  const built = await snapshot(['build', 'build.mjs', '--out', out], { cwd: fixture('turns'), env: { TURNS_OUT: resultFile } });
  t.equal(built.code, 0, built.stderr);
  const result = JSON.parse(fs.readFileSync(resultFile, 'utf8')) as Result;
  t.equal(result.trace.length, result.calls * 3);
  t.same(result.trace, expectedTrace(result.calls), 'no call started before the previous one had drained its microtasks');
  t.ok(result.immediateAfter >= 0 && result.immediateAfter < result.calls, `a host setImmediate ran among the deliveries (after ${result.immediateAfter} of ${result.calls})`);
});

t.test('replay runs the same turns', async t => {
  const restored = await snapshot(['restore', moveToTarget(out), '--call', 'turns.getTrace']);
  t.equal(restored.code, 0, restored.stderr);
  t.same(lastJson(restored), expectedTrace(2000));
});
