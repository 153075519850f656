// A rebuild does not analyse again the ES modules it analysed before: the
// analysis (compartment-mapper's mjs parse, a Babel pass) is cached by the
// sha256 of the module's text (compartments/module-source-cache.ts), in the
// pack files of build-cache.ts, and Babel is not even loaded when every
// analysis is cached (compartments/archive-parsers.ts). The cache is what
// the rebuild archives; a damaged entry or pack is analysed again.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { decodePack, encodePack } from '../compartments/build-cache.js';
import { moduleSourceCacheDir } from '../compartments/module-source-cache.js';
import { lastJson, moveToTarget, node, projectFrom, repo, snapshot } from './helpers.js';

const packsOf = (dir: string): string[] => (fs.existsSync(dir) ? fs.readdirSync(dir).filter(file => file.endsWith('.pack')).sort() : []);
/** The entry `key` as the cache reads it (the last pack in name order that has it wins), and the packs that have it. */
const lookUp = (dir: string, key: string, except?: string): { value?: string; packs: string[] } => {
  let value: string | undefined;
  const packs: string[] = [];
  for (const file of packsOf(dir)) {
    if (file === except) continue;
    let found: Buffer | undefined;
    try {
      found = decodePack(fs.readFileSync(path.join(dir, file)))?.get(key);
    } catch {
      continue; // merged away by a build running beside this test
    }
    if (found) {
      value = found.toString('utf8');
      packs.push(file);
    }
  }
  return { value, packs };
};
/** Remove `key` from every pack (other builds run beside this test: each pack is rewritten whole, then renamed). */
const drop = (dir: string, key: string): void => {
  for (const file of lookUp(dir, key).packs) {
    const full = path.join(dir, file);
    try {
      const kept = [...(decodePack(fs.readFileSync(full)) ?? [])].filter(([name]) => name !== key);
      fs.writeFileSync(`${full}.test.tmp`, encodePack(kept));
      fs.renameSync(`${full}.test.tmp`, full);
    } catch {
      // merged away meanwhile: the merged pack is looked at below
    }
  }
};
/** A pack named to be read after any a build writes (names begin with the time in base 36). */
const plant = (dir: string, name: string, bytes: Buffer): string => {
  const file = path.join(dir, `zzzzzzzzz-${name}.pack`);
  fs.writeFileSync(file, bytes, { mode: 0o600 });
  return file;
};

/**
 * Run `snapshot build <script>` in `project` into `<project>/<name>`, and say what each of its processes (the
 * CLI may start another, and the build script runs in one of its own) loaded: Babel's and esbuild's modules
 * (require.cache at exit), and swc's glue (typescript.ts evaluates it in a realm of its own, from the file's
 * text: its read is watched). A --require preload writes one file per process.
 */
const watchedBuild = async (t: Test, project: string, script: string, name: string) => {
  const probe = path.join(project, 'load-probe.cjs');
  fs.writeFileSync(
    probe,
    [
      "const fs = require('fs'); const read = fs.readFileSync; const seen = [];",
      "fs.readFileSync = function (file, ...rest) { if (String(file).endsWith('/@swc/wasm-typescript/wasm.js')) seen.push(String(file)); return read.call(this, file, ...rest); };",
      "process.on('exit', () => fs.writeFileSync(`${process.env.LOAD_PROBE_OUT}.${process.pid}`, JSON.stringify([...Object.keys(require.cache).filter(f => /[/]@babel[/]|[/]esbuild[/]/.test(f)), ...seen])));",
      '',
    ].join('\n'),
  );
  const probeDir = path.join(project, `${name}.loaded`);
  fs.mkdirSync(probeDir);
  const out = path.join(project, name);
  const run = await snapshot(['build', script, '--out', out], { cwd: project, env: { NODE_OPTIONS: `--require ${probe}`, LOAD_PROBE_OUT: path.join(probeDir, 'loaded') } });
  t.equal(run.code, 0, run.stderr);
  const files = fs.readdirSync(probeDir);
  t.ok(files.length > 0, 'the probe ran in the build');
  const loaded = files.flatMap(file => JSON.parse(fs.readFileSync(path.join(probeDir, file), 'utf8')) as string[]);
  const count = (part: string): number => loaded.filter(file => file.includes(part)).length;
  return { out, printed: lastJson(run), babel: count('/@babel/'), esbuild: count('/esbuild/'), swc: count('wasm-typescript') };
};

t.test('the analysis of an ES module is cached by its text, read by the next build, and made again when damaged', async t => {
  const dir = moduleSourceCacheDir;
  if (!dir) {
    t.fail('no cache directory: the library is not in a node_modules tree');
    return;
  }
  const project = projectFrom('cache');
  const key = createHash('sha256').update(fs.readFileSync(path.join(project, 'word.js'))).digest('hex');
  for (let tries = 0; tries < 5 && lookUp(dir, key).value !== undefined; tries += 1) drop(dir, key);
  t.equal(lookUp(dir, key).value, undefined, 'the entry is not in the cache before the first build');
  const build = (name: string) => watchedBuild(t, project, 'build.mjs', name);

  const first = await build('first');
  t.equal(first.printed, 'original');
  t.ok(first.babel > 0, 'the first build loaded Babel to analyse the module');
  const cached = lookUp(dir, key);
  t.ok(cached.value, 'the first build cached the analysis under the sha256 of the text');
  t.equal((fs.statSync(path.join(dir, cached.packs[0] as string)).mode & 0o777).toString(8), '600', 'readable by its owner only');
  const analysis = cached.value as string;
  t.match(JSON.parse(analysis), { imports: [], exports: ['word'], __syncModuleProgram__: /original/ });

  const again = await build('again');
  t.equal(again.babel, 0, 'a rebuild that finds every analysis in the cache loads no Babel (compartments/archive-parsers.ts)');
  t.same(fs.readFileSync(path.join(again.out, 'word', 'archive.zip')), fs.readFileSync(path.join(first.out, 'word', 'archive.zip')), 'a rebuild from the cache archives the same bytes');

  // What the cache holds is what a rebuild archives: an entry changed on purpose shows through.
  const planted = plant(dir, 'planted', encodePack([[key, Buffer.from(analysis.replace("'original'", "'from the cache'"))]]));
  const fromCache = await build('planted');
  t.equal(fromCache.printed, 'from the cache', 'the rebuild took the analysis from the cache');
  const restored = await snapshot(['restore', moveToTarget(fromCache.out), '--call', 'word.word']);
  t.equal(lastJson(restored), 'from the cache', 'and archived it');
  fs.rmSync(planted, { force: true });

  // A damaged entry (cut short) is not used: the module is analysed again and the entry written again.
  const damaged = plant(dir, 'damaged-entry', encodePack([[key, Buffer.from(analysis.slice(0, 40))]]));
  const repaired = await build('repaired');
  t.equal(repaired.printed, 'original', 'a damaged entry is analysed again');
  t.equal(lookUp(dir, key, path.basename(damaged)).value, analysis, 'and written again');
  fs.rmSync(damaged, { force: true });

  // A damaged pack (its CRC-32 wrong) is not read, and is removed.
  const pack = encodePack([[key, Buffer.from(analysis.replace("'original'", "'from a damaged pack'"))]]);
  pack[pack.length - 1] ^= 1;
  const broken = plant(dir, 'damaged-pack', pack);
  const unharmed = await build('unharmed');
  t.equal(unharmed.printed, 'original', 'a damaged pack is not read');
  t.notOk(fs.existsSync(broken), 'and is removed');
});

t.test('a TypeScript module is cached as JavaScript is: an unchanged rebuild strips no types and loads neither swc nor Babel', async t => {
  const project = projectFrom('cache');
  // Text no earlier build has seen (the caches live as long as node_modules), with types and an enum.
  const token = `${process.pid}-${Date.now()}`;
  fs.writeFileSync(path.join(project, 'word.ts'), `enum Kind { Plain = 'plain' }\nexport const word = (): string => \`typed ${token} \${Kind.Plain}\`;\n`);
  fs.writeFileSync(path.join(project, 'build-ts.mjs'), "import { importService } from 'membrane-snapshot';\nconst svc = await importService('./word.ts', { name: 'word' });\nconsole.log(JSON.stringify(await svc.word()));\n");
  const build = (name: string) => watchedBuild(t, project, 'build-ts.mjs', name);
  const first = await build('ts-first');
  t.equal(first.printed, `typed ${token} plain`);
  t.ok(first.swc > 0, 'the first build stripped the types (swc)');
  t.ok(first.esbuild > 0, 'compiled the enum (esbuild)');
  t.ok(first.babel > 0, 'and analysed the module (Babel)');
  const again = await build('ts-again');
  t.equal(again.printed, first.printed);
  t.equal(again.swc, 0, 'the rebuild loads no type stripper');
  t.equal(again.esbuild, 0, 'no compiler');
  t.equal(again.babel, 0, 'nor Babel');
  t.same(fs.readFileSync(path.join(again.out, 'word', 'archive.zip')), fs.readFileSync(path.join(first.out, 'word', 'archive.zip')), 'and archives the same bytes');
});

t.test('a build script run under a require hook that compiles ES modules (node --import tsx) analyses a new module', async t => {
  // Node's require of an ES module goes through tsx's hook there, which would give a copy of Babel's users wired
  // otherwise: the parsers are then loaded at once, by import (compartments/archive-parsers.ts).
  const project = projectFrom('cache');
  const token = `${process.pid}-${Date.now()}`;
  fs.writeFileSync(path.join(project, 'fresh.js'), `// eval( in a comment, rewritten for SES\nexport const word = () => 'fresh ${token}';\n`);
  fs.writeFileSync(
    path.join(project, 'build-hooked.mjs'),
    "import { importService } from 'membrane-snapshot';\nconst svc = await importService(new URL('./fresh.js', import.meta.url).href, { name: 'fresh' });\nconsole.log(JSON.stringify(await svc.word()));\n",
  );
  // The build run in process (buildSnapshot), by a script Node runs with tsx's hooks (resolved from the repository).
  const driver = path.join(project, 'drive.mjs');
  fs.writeFileSync(
    driver,
    "import { buildSnapshot } from 'membrane-snapshot';\nawait buildSnapshot({ script: new URL('./build-hooked.mjs', import.meta.url).pathname, out: new URL('./hooked', import.meta.url).pathname });\n",
  );
  const run = await node(['--import', 'tsx', driver], { cwd: repo });
  t.equal(run.code, 0, run.stderr);
  t.equal(lastJson(run), `fresh ${token}`, 'the module was analysed (no cache entry had it) and runs');
});
