// CommonJS loading against plain Node, the oracle: each module of
// test/fixtures/cjs-loading runs (1) in plain Node, (2) as a service at build
// time, (3) restored from a copy of only the snapshot directory, where its
// call runs live. The build's call must return what Node's first call
// returns, the restored service's call what Node's second returns.
import t from 'tap';
import path from 'node:path';
import { lastJson, moveToTarget, node, projectFrom, snapshot } from './helpers.js';

type Results = Record<string, unknown>;

const project = projectFrom('cjs-loading');
/** Per module, what its first and second calls of run() return in plain Node. */
let plain: Record<string, { first: Results; second: Results }>;
/** Per service, what its call of run() returned at build time. */
let built: Record<string, Results>;
/** Per service, what `snapshot restore <copy> --call <service>.run` printed. */
const restored: Record<string, Results> = {};

t.before(async () => {
  const ran = await node(['plain.mjs'], { cwd: project });
  if (ran.code !== 0) throw new Error(`plain Node run failed:\n${ran.stderr}`);
  plain = lastJson(ran) as typeof plain;
  const build = await snapshot(['build', 'build.mjs', '--out', 'snapshot'], { cwd: project, timeoutMs: 120_000 });
  if (build.code !== 0) throw new Error(`build failed:\n${build.stderr}`);
  built = lastJson(build) as typeof built;
  // Restored elsewhere: no sources and no node_modules beside the snapshot.
  const target = moveToTarget(path.join(project, 'snapshot'));
  for (const service of Object.keys(plain)) {
    const restore = await snapshot(['restore', target, '--call', `${service}.run`], { cwd: path.dirname(target), timeoutMs: 120_000 });
    if (restore.code !== 0) throw new Error(`restore of ${service} failed:\n${restore.stderr}`);
    restored[service] = lastJson(restore) as Results;
  }
});

t.test('a module that throws while it loads runs again at its next require, as in Node', async t => {
  t.same(plain.reruns.first.attempts, ['run 1 failed', 'run 2 failed', 'run 3', 'run 3'], 'plain Node runs it again until it loads');
  t.same(built.reruns, plain.reruns.first, 'at build time');
  t.same(restored.reruns, plain.reruns.second, 'after restore');
});

/**
 * Requires whose name is computed at run time: after Node's message (its
 * first line and require stack), the service's adds a line saying that a
 * service reaches only the modules its archive holds.
 */
const COMPUTED = new Set(['computed']);

type Failure = { code?: unknown; message?: string; requireStack?: unknown };

t.test('a require of a missing module fails as in Node, in every form: code, message, require stack', async t => {
  for (const [where, results, oracle] of [
    ['at build time', built.missing, plain.missing.first],
    ['after restore', restored.missing, plain.missing.second],
  ] as const) {
    t.ok(Object.keys(oracle).length >= 15, `plain Node ran every case (${where})`);
    for (const [name, expected] of Object.entries(oracle)) {
      const actual = results[name];
      if (!COMPUTED.has(name)) {
        t.same(actual, expected, `${name}, ${where}`);
        continue;
      }
      const { message, ...rest } = actual as Failure;
      const { message: nodeMessage, ...nodeRest } = expected as Failure;
      t.same(rest, nodeRest, `${name}, ${where}: code and require stack`);
      t.ok(message?.startsWith(`${nodeMessage}\n(inside a service`), `${name}, ${where}: Node's message, then why: ${message}`);
    }
  }
  // The require stack names the files as __filename does: the build-time paths, which are Node's there.
  t.equal((built.missing.relative as Failure).code, 'MODULE_NOT_FOUND');
  t.match((built.missing.relative as Failure).message, /^Cannot find module '\.\/local-config'\nRequire stack:\n- \/.*\/missing\/index\.cjs$/);
  t.same(built.missing.optionalConfig, { fallback: true }, 'the optional-dependency pattern takes its fallback');
});

t.test('a CommonJS file with a hashbang line loads as in Node, its own and a package bin file required as a library', async t => {
  t.same(plain.hashbang.first, { line: 13, tool: [42, false, 4], cli: [{ name: 'x', verbose: true }, false, 13] }, 'plain Node');
  t.same(built.hashbang, plain.hashbang.first, 'at build time, line numbers those of the file');
  t.same(restored.hashbang, plain.hashbang.second, 'after restore');
});

t.test("a CommonJS module's wrapper gets Node's arguments, in Node's order", async t => {
  t.same(plain.wrapper.first, { length: 5, order: [true, true, true, true, true], thisIsExports: true }, 'plain Node');
  t.same(built.wrapper, plain.wrapper.first, 'at build time');
  t.same(restored.wrapper, plain.wrapper.second, 'after restore');
});

t.test("a package whose exports answer require and import with different files: require gets Node's require target", async t => {
  t.same(
    plain.dual.first,
    {
      required: ['{"flavor":"cjs","instance":{},"selfFeature":"feature cjs"}', '"feature cjs"', '"node require"', '{"__esModule":true,"default":"module-sync"}'],
      imported: ['{"flavor":"esm default"}', 'esm', 'feature esm', 'node default', 'module-sync'],
      twoInstances: true,
    },
    'plain Node: require and import conditions, nested under node, module-sync for both',
  );
  t.same(built.dual, plain.dual.first, 'at build time');
  t.same(restored.dual, plain.dual.second, 'after restore');
});

t.test("a directory required by path resolves through its package.json as in Node: its main, or index.js when that main is missing", async t => {
  t.same(
    plain.folders.first,
    { main: 'dir-main entry', mainSlash: 'dir-main entry', badMain: 'dir-bad-main index', resolved: ['/folders/dir-main/lib/entry.js', '/folders/dir-bad-main/index.js'] },
    'plain Node',
  );
  t.same(built.folders, plain.folders.first, 'at build time');
  t.same(restored.folders, plain.folders.second, 'after restore');
});
