// After lockdown (and our override accessors), the shared intrinsic
// prototypes must stay as V8 keeps its fast paths for them, asked of V8
// itself in a child process run with natives syntax:
// - fast properties (%HasFastProperties): a prototype left in dictionary
//   mode makes every method call on its values a dictionary lookup, in every
//   service and in the host (String.prototype and Number.prototype were so:
//   recording 100,000 `process.env` reads took a quarter longer);
// - no frozen elements kind on the prototypes arrays, typed arrays and
//   objects inherit from (%DebugPrint): V8 then sends every store into an
//   array past its end, and every store into a typed array or Buffer, down
//   its slow path (256 byte stores: 100 ns -> 9.9 us);
// - the species protectors of arrays and promises (%ArraySpeciesProtector,
//   %PromiseSpeciesProtector), which redefining `constructor` invalidates,
//   and the string iterator's (%StringIteratorProtector: `[...str]`), which
//   an override accessor on String.prototype[Symbol.iterator] invalidates.
//   (The array, Map and Set iterators' are invalid by design: SES's
//   override accessors, overrides.ts: keptForV8.)
import t from 'tap';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { node, repo, tempDir } from './helpers.js';

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
// V8's protectors that freezing leaves alone and redefining one property would invalidate for good.
const protectors = {
  ArraySpecies: new Function('return %ArraySpeciesProtector()')(),
  PromiseSpecies: new Function('return %PromiseSpeciesProtector()')(),
  StringIterator: new Function('return %StringIteratorProtector()')(),
};
process.stdout.write(JSON.stringify({ frozen: Object.isFrozen(String.prototype), slow, protectors }));
`;

t.test('the intrinsic prototypes keep fast properties after lockdown', async t => {
  const run = await node(['--allow-natives-syntax', '--input-type=module', '-e', probe]);
  t.equal(run.code, 0, run.stderr);
  const { frozen, slow, protectors } = JSON.parse(run.stdout) as { frozen: boolean; slow: string[]; protectors: Record<string, boolean> };
  t.ok(frozen, 'the realm is locked down');
  t.same(slow, [], 'no intrinsic prototype is a V8 dictionary');
  // Array#map/filter/slice and every Promise#then look their species up when these are invalid.
  t.same(protectors, { ArraySpecies: true, PromiseSpecies: true, StringIterator: true }, 'the species and string iterator protectors hold');
});

t.test('the prototypes arrays, typed arrays, Buffers and objects inherit from are frozen without a frozen elements kind', async t => {
  // V8 prints on the process's stdout through the C library: into a file, not a pipe (a non-blocking pipe loses what does not fit).
  const outFile = path.join(tempDir('lockdown-shape'), 'debug-print.txt');
  const fd = fs.openSync(outFile, 'w');
  const child = spawnSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', `await import(${JSON.stringify(pathToFileURL(path.join(repo, 'dist', 'compartments', 'lockdown.js')).href)});
     const debugPrint = new Function('o', '%DebugPrint(o)');
     const TypedArray = Object.getPrototypeOf(Uint8Array);
     const named = { Object, Array, TypedArray, Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array, Buffer };
     const frozen = {};
     for (const [name, ctor] of Object.entries(named)) {
       frozen[name] = Object.isFrozen(ctor.prototype);
       debugPrint('@section ' + name); // V8 prints on its own stream: the sections are marked there too
       debugPrint(ctor.prototype);
     }
     process.stdout.write('@frozen ' + JSON.stringify(frozen) + '\\n');`], {
    cwd: repo,
    env: { ...process.env, NODE_OPTIONS: '' },
    stdio: ['ignore', fd, 'pipe'],
    timeout: 60_000,
  });
  fs.closeSync(fd);
  const run = { code: child.status, stdout: fs.readFileSync(outFile, 'utf8'), stderr: String(child.stderr) };
  t.equal(run.code, 0, run.stderr);
  const frozen = JSON.parse(/@frozen (\{.*\})/.exec(run.stdout)?.[1] ?? '{}') as Record<string, boolean>;
  // Each section: the marker string (and its map), then the prototype, whose `- elements:` line ends with its kind.
  const sections = run.stdout.split(/DebugPrint: \S+ \[String\][^\n]*@section /).slice(1);
  t.equal(sections.length, 15, 'every prototype was printed');
  for (const section of sections) {
    const name = /^\w+/.exec(section)?.[0] ?? '?';
    const kind = /- elements: [^\n]*\[(\w+)\]/.exec(section)?.[1];
    t.equal(frozen[name], true, `${name}.prototype is frozen`);
    t.ok(kind, `${name}.prototype: V8 printed its elements kind`);
    t.notMatch(kind ?? '', /FROZEN|SEALED/, `${name}.prototype: elements kind ${kind}`);
  }
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

// compartments/regexp-methods.ts keeps a copy of each pattern a split searches with: a service making huge
// distinct patterns must not make the host keep them (200 patterns of 1 MiB held 400 MiB of keys and copies;
// here, of 256 KiB).
// V8 keeps some of them itself (its compilation cache), as plain Node shows in the same run.
t.test('splitting by huge distinct patterns keeps no more than plain Node keeps', async t => {
  const grown = async (lockdown: boolean): Promise<number> => {
    const run = await node(['--expose-gc', '--input-type=module', '-e', `${lockdown ? `await import(${JSON.stringify(pathToFileURL(path.join(repo, 'dist', 'compartments', 'lockdown.js')).href)});` : ''}
      globalThis.gc();
      const before = process.memoryUsage().heapUsed;
      const big = 'a'.repeat(1 << 18);
      for (let i = 0; i < 200; i += 1) new RegExp('[' + big + ']' + i)[Symbol.split]('xyz');
      globalThis.gc();
      if ('a,b'.split(/,/).join() !== 'a,b') throw new Error('short patterns no longer split');
      process.stdout.write(String((process.memoryUsage().heapUsed - before) / 2 ** 20));`]);
    t.equal(run.code, 0, run.stderr);
    return Number(run.stdout);
  };
  const plain = await grown(false);
  const locked = await grown(true);
  t.ok(locked < plain + 20, `locked down the heap grew ${locked.toFixed(1)} MiB, in plain Node ${plain.toFixed(1)} MiB`);
});
