// Popular npm packages inside services: archived with the service, loaded
// into its compartments, used in ways that read the clock, randomness and
// timers, recorded at build time, and replayed to the very same results in
// another process, from a directory with no sources and no node_modules.
// uuid is archived from its Node build (the exports condition "node", as Node resolves it).
// Only packages that work today are here; each new one gets a probe in
// test/fixtures/packages/services/probes/ and a place in a group service.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { v5 as uuidV5 } from 'uuid';
import { fixture, lastJson, moveToTarget, snapshot, tempDir } from './helpers.js';

type Results = Record<string, Record<string, any>>;

const app = fixture('packages');
const work = tempDir('packages');
const out = path.join(work, 'snapshot');
const resultsFile = path.join(work, 'results.json');
const hostRequire = createRequire(import.meta.url);

/** Every package the fixture uses (clsx and mime-types ride along with classnames and mime). */
const packages = [
  'async', 'bcryptjs', 'big.js', 'chalk', 'chance', 'classnames', 'cookie', 'csv-parse', 'date-fns', 'dayjs',
  'decimal.js', 'deepmerge', 'escape-html', 'eventemitter3', 'fast-deep-equal', 'fast-json-stable-stringify',
  'he', 'immer', 'immutable', 'joi', 'js-yaml', 'json5', 'lodash', 'lodash-es', 'mime', 'ms', 'mustache',
  'nanoid', 'object-hash', 'p-limit', 'papaparse', 'pluralize', 'query-string', 'rxjs', 'seedrandom',
  'slugify', 'superstruct', 'ulid', 'underscore', 'uuid', 'valibot', 'validator',
  // These need the evasive transform, Intl, Float64Array or an unfrozen package global.
  'marked', 'zod', 'moment', 'ajv', 'luxon', 'crypto-js', 'bignumber.js',
];

const UUID = (version: number) => new RegExp(`^[0-9a-f]{8}-[0-9a-f]{4}-${version}[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`);

let built: Results;
let restored: Results;
let target: string;
let buildTime: { from: number; to: number };

t.before(async () => {
  const from = Date.now();
  // NODE_ENV unset at build time; immer reads it (a recorded env read).
  const build = await snapshot(['build', 'build.mjs', '--out', out], { cwd: app, env: { PACKAGES_RESULTS_FILE: resultsFile, NODE_ENV: undefined }, timeoutMs: 120_000 });
  if (build.code !== 0) throw new Error(`build failed:\n${build.stderr}`);
  buildTime = { from, to: Date.now() };
  built = JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as Results;

  target = moveToTarget(out);
  // Another environment on the target: replay must not read it.
  const restore = await snapshot(['restore', 'snapshot', '--call', 'packages.describe'], { cwd: path.dirname(target), env: { NODE_ENV: 'production', TZ: 'Asia/Tokyo' } });
  if (restore.code !== 0) throw new Error(`restore failed:\n${restore.stderr}`);
  restored = lastJson(restore) as Results;
});

t.test('the build ran every package inside its services', async t => {
  t.same(Object.keys(built).sort(), [...packages].sort());
  const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
  t.same(Object.keys(manifest.services).sort(), ['core', 'evasive', 'formats', 'packages', 'schemas', 'text', 'time', 'utilities']);
  t.same(fs.readdirSync(path.dirname(target)), ['snapshot'], 'only the snapshot travelled to the target');
  const core = fs.readFileSync(path.join(target, 'core', 'archive.zip')).toString('latin1');
  for (const file of [/lodash-v[\d.]+\/lodash\.js/, /uuid-v[\d.]+\/dist-node\/v4\.js/, /date-fns-v[\d.]+\/format\.js/, /immer-v[\d.]+\/dist\/immer\.mjs/]) {
    t.match(core, file, `the core archive carries ${file.source}`);
  }
});

t.test('every package gives, after a restore elsewhere, exactly what it gave at build time', async t => {
  t.same(Object.keys(restored).sort(), Object.keys(built).sort());
  for (const name of packages) t.same(restored[name], built[name], name);
});

t.test('the results depend on the recorded clock', async t => {
  const within = (ms: number, what: string) => t.ok(ms >= buildTime.from && ms <= buildTime.to, `${what} (${ms}) was read during the build`);
  within(built['date-fns'].now, 'date-fns: Date.now()');
  within(built.lodash.now, 'lodash: _.now()');
  within(built.underscore.now, 'underscore: _.now()');
  within(built.dayjs.now, 'dayjs()');
  within(built.ulid.time, 'ulid: its timestamp');
  within(Number(built['big.js'].now), 'big.js: Big(Date.now())');
  within(parseInt(built.uuid.v7[0].replace(/-/g, '').slice(0, 12), 16), 'uuid v7: its timestamp');
  t.equal(built['date-fns'].formatted.slice(0, 10), new Date(built['date-fns'].now).toISOString().slice(0, 10), 'date-fns formats in UTC, on every host');
  t.match(built['date-fns'].distance, /^about 3 hours ago$/);
  t.equal(built['date-fns'].diff, 10);
  t.match(built.dayjs.fromNow, /^2 hours ago$/);
});

t.test('the results depend on recorded randomness', async t => {
  const { lodash, uuid, nanoid, ulid, chance, bcryptjs, seedrandom } = built;
  t.same([...lodash.shuffle].sort((a: number, b: number) => a - b), Array.from({ length: 20 }, (_, i) => i), 'lodash: _.shuffle is a permutation');
  t.notSame(lodash.shuffle, Array.from({ length: 20 }, (_, i) => i), 'lodash: _.shuffle shuffled');
  t.equal(new Set(lodash.sampleSize).size, 5);
  for (const id of uuid.v4) t.match(id, UUID(4));
  t.equal(new Set(uuid.v4).size, 3, 'uuid: three different v4s');
  t.match(uuid.v1, UUID(1));
  t.match(uuid.v6, UUID(6));
  for (const id of uuid.v7) t.match(id, UUID(7));
  t.equal(uuid.v5, uuidV5('hello', uuidV5.URL), 'uuid: v5 hashes as it does on the host');
  t.match(uuid.required, { v4: UUID(4), v7: UUID(7) }, 'uuid through require() from a CommonJS module');
  t.ok(uuid.required.exports.includes('v4'));
  t.match(nanoid, { ids: [/^[A-Za-z0-9_-]{21}$/, /^[A-Za-z0-9_-]{10}$/], hex: /^[0-9a-f]{12}$/, nonSecure: /^[A-Za-z0-9_-]{21}$/ });
  t.match(ulid.first, /^[0-9A-HJKMNP-TV-Z]{26}$/);
  t.equal(new Set(ulid.monotonic).size, 3);
  t.equal(chance.seeded, new (hostRequire('chance'))(42).word(), 'chance: a seeded generator gives what it gives on the host');
  t.match(chance.guid, UUID(5));
  const seeded = hostRequire('seedrandom')('hello');
  t.same(seedrandom.fixed, [seeded(), seeded()], 'seedrandom: a fixed seed gives what it gives on the host');
  t.notSame(seedrandom.auto, [seedrandom.fixed[0], seedrandom.fixed[1]]);
  t.match(bcryptjs, { salt: /^\$2b\$04\$/, ok: true, asyncOk: true });
  t.not(built['decimal.js'].random, built['decimal.js'].cryptoRandom);
});

t.test('timers: debounce, throttle, delay, intervals and concurrency limits fire as recorded', async t => {
  const { lodash, rxjs, underscore } = built;
  // Which calls the timers made; their order at build time depends on how late the host's timers
  // fired (a slow build re-arms throttle's trailing call past the debounce). Replay reproduces the
  // recorded order exactly: the restore test above compares it.
  const lodashCalls = lodash.calls.map((c: unknown[]) => JSON.stringify(c.slice(0, 2))).sort();
  t.same(lodashCalls, [['debounced', 3], ['delay', 'x'], ['throttled', 'a'], ['throttled', 'b']].map(c => JSON.stringify(c)));
  t.same(lodash.calls[0].slice(0, 2), ['throttled', 'a'], 'throttle calls at once (leading edge)');
  t.same(underscore.calls.map((c: unknown[]) => c[0]), [2]);
  t.same(built['lodash-es'].calls.map((c: unknown[]) => c[0]), [2]);
  t.same(rxjs.ticks.map((tick: number[]) => tick[0]), [0, 1, 2, 3]);
  t.ok(rxjs.ticks.every((tick: number[], i: number) => i === 0 || tick[1] >= rxjs.ticks[i - 1][1]), 'rxjs: interval ticks in time order');
  t.same(rxjs.debounced, [2, 3]);
  t.same(rxjs.merged, [1, 2, 3]);
  t.same([...built['p-limit'].order].sort((a: number, b: number) => a - b), [5, 10, 20, 30]);
  t.same([...built.async.order].sort((a: number, b: number) => a - b), [10, 20, 30]);
  t.same(built.async.series[1], 'immediate');
});

t.test('immer: its NODE_ENV read is replayed from the log, not read on the target', async t => {
  const { immer } = built;
  t.equal(immer.nodeEnv, null, 'NODE_ENV was unset at build time');
  t.match(immer.producerError, /returned a new value \*and\* modified its draft/, 'so immer used its verbose errors');
  t.equal(restored.immer.producerError, immer.producerError, 'and still does after a restore under NODE_ENV=production');
  t.match(immer, { frozen: true, assignError: 'TypeError', unchanged: true });
  t.same(immer.back, immer.next, 'inverse patches undo the change');
  // A documented difference (docs/environment.md, the override mistake): keys named like Object.prototype's methods
  // in a plain object's draft; a Map or a null-prototype object holds them as in Node.
  t.same(immer.reservedKeys, {
    plain: 'Error: [Immer] Object.defineProperty() cannot be used on an Immer draft',
    nullPrototype: '{"constructor":1,"toString":2}',
    map: '[["constructor",1],["toString",2]]',
  });
});

t.test('known limits, pinned so a change is noticed', async t => {
  // lodash's and underscore's default templates use `with`, which strict (SES) code refuses;
  // the `variable` option avoids it.
  t.equal(built.lodash.templateWith, 'SyntaxError');
  t.equal(built.lodash.template, 'hello fred!');
  t.equal(built.underscore.template, 'hi &lt;b&gt;');
});

t.test('deterministic results equal what the packages compute on the host', async t => {
  t.same(built.mime, { mime: ['application/json', 'html', built.mime.mime[2]], mimeTypes: ['application/json', 'html', 'text/markdown; charset=utf-8', built.mime.mimeTypes[3]] });
  t.match(built.cookie.parsed, { a: '1', b: 'two words', sid: UUID(4) });
  t.same(built['decimal.js'].sum, '0.3');
  t.same(built['big.js'].sum, '0.3');
  t.equal(built.ms.days, 172_800_000);
  t.equal(built.ms.long, '1 minute');
  t.match(built.chalk, { level: 0, plain: 'x', colored: /^\u001b\[31m\u001b\[1mat \d+\u001b\[22m\u001b\[39m$/ });
  t.equal(built.he.escaped, '&lt;a &quot;b&quot;&gt;');
  t.equal(built.slugify.strict, 'unicode-creme-brulee');
  t.same(built['js-yaml'].documents, [{ a: 1 }, { b: 2 }]);
  t.same(built.json5.parsed, { unquoted: 'single', trailing: [1, 2], hex: 255 });
  t.match(built.joi, { errors: [] });
  t.match(built.valibot, { success: true, issues: ['uuid', 'max_value'] });
  t.match(built.validator, { uuid: true, email: true, url: true, iso: true, ip: true });
  t.same(built['csv-parse'].records[0].a, 1);
  t.equal(built['object-hash'].stable, true);
  t.same(built.immutable.deep, { a: { b: [9, 2] } });
});

t.test('packages that need the evasive transform, Intl, float arrays or their own globals', async t => {
  t.match(built.marked.html, /<h1>Built \d{4}-.*<\/h1>\n<!-- a comment -->/, 'marked (its sources hold "<!--")');
  t.same(built.zod.issues, ['id', 'total', 'at'], 'zod (global configuration)');
  t.equal(built.zod.good, true);
  t.equal(built.luxon.zone, 'UTC', 'luxon (Intl, pinned to UTC)');
  t.same([built.ajv.valid, built.ajv.invalid], [true, false], 'ajv (compiled validators)');
  t.match(built['crypto-js'].salt, /^[0-9a-f]{32}$/, 'crypto-js (Float64Array, crypto randomness)');
  t.equal(built['bignumber.js'].sum, '0.3');
  for (const name of ['marked', 'zod', 'moment', 'ajv', 'luxon', 'crypto-js', 'bignumber.js']) t.same(restored[name], built[name], `${name} replays to the build's result`);
});
