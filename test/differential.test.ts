// Plain Node is the oracle. Each case of test/fixtures/differential runs
// (1) in plain Node, (2) as a service at build time, (3) restored in another
// process from a copy of only the snapshot directory, with the library
// installed at another path, once by its modules (what the API imports) and
// once by its restore bundle (what `snapshot restore` runs). All must agree:
// the values the calls return to the caller, and the state the module holds
// (described inside the module itself, with canon.cjs).
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { installElsewhere, moveToTarget, node, noOtherNodes, otherNodes, projectFrom, snapshot } from './helpers.js';
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
  'resolution-errors-dynamic':
    "a dynamic import() reaches only the modules the archive holds (docs/environment.md, Source text SES rejects), so one that Node refuses rejects with compartment-mapper's `Cannot find external module \"...\" in package ... in archive ...`, an Error without a code, where Node's error has ERR_PACKAGE_PATH_NOT_EXPORTED, ERR_MODULE_NOT_FOUND, ERR_UNSUPPORTED_DIR_IMPORT or ERR_PACKAGE_IMPORT_NOT_DEFINED (a TypeError); a require of the same names throws Node's errors (resolution-errors)",
  'export-var-list':
    "@endo/module-source compiles an exported `var { left = 1, right = left } = {}` into a pattern of `$c͏_left` and `$c͏_right` and assigns `left` after the statement, so the default reads `left` before it is assigned: `right` is undefined where Node gives 1 (a list of declarators is split at build: esm-archive.ts splitExportedVarLists; a pattern is not)",
  'star-export-cycle-order':
    "inside an import cycle, a name imported through `export *` is imported from the module that declares it (SES wires `export *` names only after a barrel's imports have run: compartments/esm-archive.ts), so that module runs before the importer, where Node runs it after",
};

/**
 * The cases where the services of another Node line do not yet compute
 * what plain Node of that line computes, by major version, each with the
 * difference seen: the library's builtins follow Node 20's behaviour
 * where later lines changed it. The test asserts they still differ, so
 * that each fix removes its entry. docs/environment.md (Node versions).
 */
const KNOWN_ON_NODE: Record<number, Record<string, string>> = {
  22: {},
  24: {
    'stream-web': 'a destroyed web stream adapter rejects with an AbortError',
    'crypto-streams': 'a write to a finalized Hash stream reports its error otherwise',
    'web-classes': "Node's own undici words its WebIDL errors otherwise",
    'fetch-body': "Node's own undici words its WebIDL errors otherwise",
    'fetch-signals': "Node's own undici words its errors otherwise",
    'fetch-init': "Node's own undici words its WebIDL errors otherwise",
    'form-data': "Node's own undici words FormData's WebIDL errors otherwise",
    'zlib-chunks': "the case's own zlib call throws in plain Node 24 (the kind argument)",
  },
};

/** The known differences of Node `version` ('v24.22.3'); none for Node 20. */
const knownOn = (version: string): Record<string, string> => KNOWN_ON_NODE[Number(/^v(\d+)/.exec(version)?.[1])] ?? {};

interface Runs {
  plain: Record<string, Outcome>;
  built: Record<string, Outcome>;
  restored: Record<string, Outcome>;
  /** The same restore by the restore bundle (dist/lib/restore-bundle.cjs), as `snapshot restore` runs it. */
  restoredFromBundle: Record<string, Outcome>;
  /** The snapshot directory, as the build left it. */
  snapshotDir: string;
  /** What the build printed on stderr. */
  buildStderr: string;
}

/**
 * Restore `snapshotDir` with Node `execPath`, from a copy of only that directory, the library installed at another
 * path: by its modules, or by its restore bundle (`from`).
 */
const restoreElsewhere = async (project: string, snapshotDir: string, execPath?: string, from: 'modules' | 'bundle' = 'modules'): Promise<Record<string, Outcome>> => {
  const target = moveToTarget(snapshotDir);
  const runner = path.join(path.dirname(target), 'restore.mjs');
  fs.copyFileSync(path.join(project, 'restore.mjs'), runner);
  const { index } = installElsewhere();
  const restore = await node([runner, index, target, from], { cwd: path.dirname(target), timeoutMs: 120_000, execPath });
  if (restore.code !== 0) throw new Error(`restore failed:\n${restore.stderr}`);
  return JSON.parse(restore.stdout.trim().split('\n').pop() as string) as Record<string, Outcome>;
};

/** Every case in plain Node, as a service at build time, and restored elsewhere, all three with Node `execPath` (default this process's). */
const runAll = async (execPath?: string): Promise<Runs> => {
  const project = projectFrom('differential');
  const plainFile = path.join(project, 'plain.json');
  // Two variables in an order that is not alphabetical (the env-order case enumerates them).
  const envOrder = { DIFFERENTIAL_ENV_B: 'b', DIFFERENTIAL_ENV_A: 'a' };
  const ran = await node(['plain.mjs', plainFile], { cwd: project, env: envOrder, execPath });
  if (ran.code !== 0) throw new Error(`plain Node run failed:\n${ran.stderr}`);
  const plain = JSON.parse(fs.readFileSync(plainFile, 'utf8')) as Record<string, Outcome>;

  const buildFile = path.join(project, 'built.json');
  const build = await snapshot(['build', 'build.mjs', '--out', 'snapshot'], { cwd: project, env: { ...envOrder, DIFFERENTIAL_OUT: buildFile }, timeoutMs: 120_000, execPath });
  if (build.code !== 0) throw new Error(`build failed:\n${build.stderr}`);
  const built = JSON.parse(fs.readFileSync(buildFile, 'utf8')) as Record<string, Outcome>;
  const snapshotDir = path.join(project, 'snapshot');
  const restored = await restoreElsewhere(project, snapshotDir, execPath);
  const restoredFromBundle = await restoreElsewhere(project, snapshotDir, execPath, 'bundle');
  return { plain, built, restored, restoredFromBundle, snapshotDir, buildStderr: build.stderr };
};

/** Each case's three outcomes agree (or, for a KNOWN case, still differ) on Node `version`. */
const compare = (t: Test, { plain, built, restored, restoredFromBundle }: Runs, version = process.version): void => {
  const onThisLine = knownOn(version);
  for (const { name } of scenarios) {
    t.test(name, async t => {
      const oracle = plain[name];
      const atBuild = built[name];
      const afterRestore = restored[name];
      if (name in onThisLine) {
        t.not(JSON.stringify([atBuild, afterRestore]), JSON.stringify([oracle, { state: oracle?.state }]), `known difference on Node ${version} (remove it from KNOWN_ON_NODE once fixed): ${onThisLine[name]}`);
        return;
      }
      t.ok(oracle && !oracle.error, `plain Node runs the case: ${oracle?.error ?? ''}`);
      if (name in KNOWN) {
        t.not(JSON.stringify(atBuild), JSON.stringify(oracle), `known difference (remove it from KNOWN once fixed): ${KNOWN[name]}`);
        return;
      }
      t.same(atBuild, oracle, 'the service at build time computes what plain Node computes');
      t.same(afterRestore, { state: oracle.state }, 'the restored service holds what plain Node holds');
      t.same(restoredFromBundle[name], { state: oracle.state }, 'restored by the restore bundle (snapshot restore), it holds what plain Node holds');
    });
  }
};

let runs: Runs;

t.before(async () => {
  runs = await runAll();
});

t.test('the library restores from another install path', async t => {
  const { root } = installElsewhere();
  t.notOk(root.startsWith(path.resolve('.')), 'the restoring copy is not the building one');
});

t.test(`on this Node (${process.version})`, async t => compare(t, runs));

const NODE_LINE_NOTICE = /^snapshot: on Node v\d+\.\d+\.\d+, some builtins inside a service still behave as Node 20's .*Node versions\.$/m;

/** The notice about the Node line is printed exactly when the build ran on a line other than 20. */
const checkNotice = (t: Test, buildStderr: string, version: string): void => {
  if (version.startsWith('v20.')) t.notMatch(buildStderr, NODE_LINE_NOTICE, `Node ${version}: no notice about the Node line`);
  else t.match(buildStderr, NODE_LINE_NOTICE, `Node ${version}: the build says which builtins still behave as Node 20's, and where the list is`);
};

t.test('the build speaks of the Node line only off Node 20', async t => checkNotice(t, runs.buildStderr, process.version));

/*
 * The other Node lines the package supports (engines: >= 20.15), when
 * MEMBRANE_SNAPSHOT_OTHER_NODES names their binaries (.ci/run fetches
 * Node 22 and 24): every case again, plain Node, build and restore all on
 * that Node; then the snapshot built on this Node, restored on that one,
 * where plain Node computes the same on both.
 */
const others = otherNodes();
if (others.length === 0) t.test('on the other supported Node lines', async t => noOtherNodes(t));
for (const other of others) {
  let there: Promise<Runs> | undefined;
  const onThatNode = (): Promise<Runs> => (there ??= runAll(other.execPath));
  t.test(`on Node ${other.version}`, async t => {
    const there = await onThatNode();
    checkNotice(t, there.buildStderr, other.version);
    compare(t, there, other.version);
  });
  t.test(`built on ${process.version}, restored on Node ${other.version}`, async t => {
    const notice = await snapshot(['restore', moveToTarget(runs.snapshotDir), '--service', 'timers', '--replay-only'], { execPath: other.execPath });
    if (!process.version.startsWith(`${other.version.split('.')[0]}.`)) {
      t.match(notice.stderr, /^snapshot: The snapshot was built on Node v\d+\.\d+\.\d+ and is restored on Node v\d+\.\d+\.\d+: .*REPLAY_DIVERGED.*Restore it on Node \d+, or rebuild it on this line\.$/m, 'snapshot restore says the snapshot was built on another line');
    }
    const { plain } = await onThatNode();
    const restored = await restoreElsewhere(projectFrom('differential'), runs.snapshotDir, other.execPath);
    const restoredFromBundle = await restoreElsewhere(projectFrom('differential'), runs.snapshotDir, other.execPath, 'bundle');
    const onThatLine = knownOn(other.version);
    for (const { name } of scenarios) {
      // A replay that meets a builtin the two lines differ on stops, and says the snapshot was built on another line.
      for (const outcome of [restored[name], restoredFromBundle[name]].map(o => JSON.stringify(o ?? null))) {
        if (outcome.includes('REPLAY_DIVERGED')) t.match(outcome, /The snapshot was built on Node v20\.\d+\.\d+ and is restored on Node v\d+\.\d+\.\d+/, `${name}: its divergence says the snapshot was built on another line`);
      }
      if (name in KNOWN || name in onThatLine) continue;
      // Where plain Node itself computes another state on that Node (its globals, V8's messages), so may the restore.
      if (JSON.stringify(plain[name]) !== JSON.stringify(runs.plain[name])) continue;
      t.same(restored[name], { state: runs.plain[name]?.state }, `${name}: the restored service holds what plain Node holds`);
      t.same(restoredFromBundle[name], { state: runs.plain[name]?.state }, `${name}: restored by the restore bundle, it holds what plain Node holds`);
    }
  });
}
