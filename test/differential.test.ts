// Plain Node is the oracle. Each case of test/fixtures/differential runs
// (1) in plain Node, (2) as a service at build time, (3) restored in another
// process from a copy of only the snapshot directory, with the library
// installed at another path. All three must agree: the values the calls
// return to the caller, and the state the module holds (described inside
// the module itself, with canon.cjs).
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { installElsewhere, moveToTarget, node, projectFrom, snapshot } from './helpers.js';
import { scenarios } from './fixtures/differential/scenarios.mjs';

type Outcome = { result?: string; state?: string; error?: string };

/**
 * Differences from plain Node that remain, each with its reason. The test
 * asserts they still differ: when one is fixed it fails, and the entry goes.
 */
const KNOWN: Record<string, string> = {
  'direct-eval-locals': "a direct eval runs as an indirect one (SES cannot run direct eval: compartments/evasion.ts), so it does not see the caller's local variables",
  'eval-var-declarations':
    "SES evaluates every text in strict mode, so the top-level `var` and function declarations of an indirect eval's text stay that evaluation's own, where Node's sloppy script code makes them globals (`typeof globalThis.declaredByEval` is 'undefined')",
  'date-prototype-chain':
    "a service's Date.prototype is its own (so that `date.constructor === Date` holds with the service's virtual-clock Date) and inherits from the shared Date.prototype (so that the shared Date's instanceof, which the membrane and Node's code use, holds for the service's dates): a date's prototype chain has one link more than Node's, and Object.getPrototypeOf(Date.prototype) is not Object.prototype",
  'export-becomes-function':
    "a data export that later holds a function (or an object with methods) cannot be handed out by a read outside the service's turns: the build script's read throws a TypeError saying so (Node gives the function), never the old value",
  'fixed-global-bindings':
    "ECMAScript's core global bindings (Object, Array, Math, Date, JSON, the typed arrays... compartments/fixed-globals.ts) are non-writable and non-configurable in a service, so that SES resolves them once per module instead of through its `with` scopes on every read (0.4 µs each): assigning one (even the value it holds), redefining or deleting it throws TypeError, and Reflect.set answers false, where Node replaces it; the bindings polyfills write (Promise, Symbol, Map, Reflect...) and Node's stay replaceable",
  'global-members':
    "SES's lockdown adds ArrayBuffer.prototype.transfer, transferToFixedLength and detached (Node 21's) and transferToImmutable, sliceToImmutable and immutable (a proposal) to the intrinsics every service and the host share, and a service has no Performance, Crypto, SubtleCrypto or performance timeline classes (docs/environment.md, Absent)",
  'intrinsic-constructors':
    "a service's Error, TypeError... are its own (proxies of the shared constructors, for their own stackTraceLimit and prepareStackTrace: compartments/guest-errors.ts), and a proxy cannot be its target, so `new Error().constructor === Error` and `Object.getPrototypeOf(TypeError) === Error` are false; the shared Function, AsyncFunction, GeneratorFunction and AsyncGeneratorFunction constructors (`(async () => {}).constructor`) are SES's inert ones, which throw 'Function.prototype.constructor is not a valid constructor.' (they would evaluate code outside every compartment)",
  'legacy-intrinsics':
    "SES's lockdown removes RegExp's legacy static match state (RegExp.$1, lastMatch, input: one RegExp is shared by every service, so it would carry one service's matches to another) and RegExp.prototype.compile; code reading RegExp.$1 after a match gets undefined",
  'namespace-descriptors':
    "SES's module namespaces report their exports as accessors (Node: writable data properties) and the namespace as frozen; the values and keys are Node's",
  'sloppy-arguments':
    "SES runs CommonJS modules in strict mode, where a function's `arguments` is not aliased to its parameters (in Node's sloppy mode, `callback = options` also changes `arguments[1]`); emulating the aliasing would mean rewriting every sloppy function that uses `arguments`",
  'v8-messages':
    "V8's own error messages name an object `#<Foo>` (or `#<Object>`) only when the `toString` it inherits is Object.prototype's as a data property (Object::NoSideEffectsToString); lockdown makes it an accessor so that `obj.toString = f` keeps working (the override mistake), so such messages read `[object Object]`: \"Cannot assign to read only property 'a' of object '[object Object]'\"",
  'star-export-cycle-order':
    "inside an import cycle, a name imported through `export *` is imported from the module that declares it (SES wires `export *` names only after a barrel's imports have run: compartments/esm-archive.ts), so that module runs before the importer, where Node runs it after",
};

const project = projectFrom('differential');
let plain: Record<string, Outcome>;
let built: Record<string, Outcome>;
let restored: Record<string, Outcome>;

t.before(async () => {
  const plainFile = path.join(project, 'plain.json');
  // Two variables in an order that is not alphabetical (the env-order case enumerates them).
  const envOrder = { DIFFERENTIAL_ENV_B: 'b', DIFFERENTIAL_ENV_A: 'a' };
  const ran = await node(['plain.mjs', plainFile], { cwd: project, env: envOrder });
  if (ran.code !== 0) throw new Error(`plain Node run failed:\n${ran.stderr}`);
  plain = JSON.parse(fs.readFileSync(plainFile, 'utf8'));

  const buildFile = path.join(project, 'built.json');
  const build = await snapshot(['build', 'build.mjs', '--out', 'snapshot'], { cwd: project, env: { ...envOrder, DIFFERENTIAL_OUT: buildFile }, timeoutMs: 120_000 });
  if (build.code !== 0) throw new Error(`build failed:\n${build.stderr}`);
  built = JSON.parse(fs.readFileSync(buildFile, 'utf8'));

  const target = moveToTarget(path.join(project, 'snapshot'));
  const runner = path.join(path.dirname(target), 'restore.mjs');
  fs.copyFileSync(path.join(project, 'restore.mjs'), runner);
  const { index } = installElsewhere();
  const restore = await node([runner, index, target], { cwd: path.dirname(target), timeoutMs: 120_000 });
  if (restore.code !== 0) throw new Error(`restore failed:\n${restore.stderr}`);
  restored = JSON.parse(restore.stdout.trim().split('\n').pop() as string);
});

t.test('the library restores from another install path', async t => {
  const { root } = installElsewhere();
  t.notOk(root.startsWith(path.resolve('.')), 'the restoring copy is not the building one');
});

for (const { name } of scenarios) {
  t.test(name, async t => {
    const oracle = plain[name];
    t.ok(oracle && !oracle.error, `plain Node runs the case: ${oracle?.error ?? ''}`);
    const atBuild = built[name];
    const afterRestore = restored[name];
    if (name in KNOWN) {
      t.not(JSON.stringify(atBuild), JSON.stringify(oracle), `known difference (remove it from KNOWN once fixed): ${KNOWN[name]}`);
      return;
    }
    t.same(atBuild, oracle, 'the service at build time computes what plain Node computes');
    t.same(afterRestore, { state: oracle.state }, 'the restored service holds what plain Node holds');
  });
}
