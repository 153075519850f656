// After lockdown (and our override accessors), the shared intrinsic
// prototypes must keep V8's fast properties: a prototype left in dictionary
// mode makes every method call on its values a dictionary lookup, in every
// service and in the host (String.prototype and Number.prototype were so:
// recording 100,000 `process.env` reads took a quarter longer). Asked of V8
// itself (%HasFastProperties) in a child process run with natives syntax.
import t from 'tap';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { node, repo } from './helpers.js';

const probe = `
await import(${JSON.stringify(pathToFileURL(path.join(repo, 'dist', 'compartments', 'lockdown.js')).href)});
const fast = new Function('o', 'return %HasFastProperties(o)');
const { getPrototypeOf } = Object;
const prototypes = {
  'String.prototype': String.prototype,
  'Number.prototype': Number.prototype,
  'Boolean.prototype': Boolean.prototype,
  'Symbol.prototype': Symbol.prototype,
  'BigInt.prototype': BigInt.prototype,
  'Date.prototype': Date.prototype,
  'RegExp.prototype': RegExp.prototype,
  'Promise.prototype': Promise.prototype,
  'Array.prototype': Array.prototype,
  'Map.prototype': Map.prototype,
  'Set.prototype': Set.prototype,
  'WeakMap.prototype': WeakMap.prototype,
  'WeakSet.prototype': WeakSet.prototype,
  'ArrayBuffer.prototype': ArrayBuffer.prototype,
  'DataView.prototype': DataView.prototype,
  'TypedArray.prototype': getPrototypeOf(Uint8Array.prototype),
  'Function.prototype': Function.prototype,
  'Object.prototype': Object.prototype,
  'Error.prototype': Error.prototype,
  'TypeError.prototype': TypeError.prototype,
  'RangeError.prototype': RangeError.prototype,
  '%GeneratorFunction.prototype%': getPrototypeOf(function* () {}),
};
const slow = Object.entries(prototypes).filter(([, proto]) => !fast(proto)).map(([name]) => name);
process.stdout.write(JSON.stringify({ frozen: Object.isFrozen(String.prototype), slow }));
`;

t.test('the intrinsic prototypes keep fast properties after lockdown', async t => {
  const run = await node(['--allow-natives-syntax', '--input-type=module', '-e', probe]);
  t.equal(run.code, 0, run.stderr);
  const { frozen, slow } = JSON.parse(run.stdout) as { frozen: boolean; slow: string[] };
  t.ok(frozen, 'the realm is locked down');
  t.same(slow, [], 'no intrinsic prototype is a V8 dictionary');
});

t.test('an ES5-style subclass still overrides an inherited method (the accessors are kept)', async t => {
  const run = await node([
    '--input-type=module',
    '-e',
    `await import(${JSON.stringify(pathToFileURL(path.join(repo, 'dist', 'compartments', 'lockdown.js')).href)});
     function S(v) { this.v = v; }
     S.prototype = Object.create(String.prototype);
     S.prototype.valueOf = function () { return this.v; };
     S.prototype.toString = function () { return 'S:' + this.v; };
     const s = new S('x');
     process.stdout.write(JSON.stringify([s.valueOf(), String(s), 'abc'.charCodeAt(1), (1234.5).toFixed(1)]));`,
  ]);
  t.equal(run.code, 0, run.stderr);
  t.same(JSON.parse(run.stdout), ['x', 'S:x', 98, '1234.5']);
});
