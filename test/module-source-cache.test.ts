// A rebuild does not analyse again the ES modules it analysed before: the
// analysis (compartment-mapper's mjs parse, a Babel pass) is cached by the
// sha256 of the module's text (compartments/module-source-cache.ts). The
// cache is what the rebuild archives; a damaged entry is analysed again.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { moduleSourceCacheDir } from '../compartments/module-source-cache.js';
import { lastJson, moveToTarget, projectFrom, snapshot } from './helpers.js';

t.test('the analysis of an ES module is cached by its text, read by the next build, and made again when damaged', async t => {
  if (!moduleSourceCacheDir) {
    t.fail('no cache directory: the library is not in a node_modules tree');
    return;
  }
  const project = projectFrom('cache');
  const entry = path.join(moduleSourceCacheDir, createHash('sha256').update(fs.readFileSync(path.join(project, 'word.js'))).digest('hex'));
  fs.rmSync(entry, { force: true });
  const build = async (name: string) => {
    const out = path.join(project, name);
    const run = await snapshot(['build', 'build.mjs', '--out', out], { cwd: project });
    t.equal(run.code, 0, run.stderr);
    return { out, printed: lastJson(run) };
  };

  const first = await build('first');
  t.equal(first.printed, 'original');
  t.ok(fs.existsSync(entry), 'the first build cached the analysis under the sha256 of the text');
  t.equal((fs.statSync(entry).mode & 0o777).toString(8), '600', 'readable by its owner only');
  const analysis = fs.readFileSync(entry, 'utf8');
  t.match(JSON.parse(analysis), { imports: [], exports: ['word'], __syncModuleProgram__: /original/ });

  const again = await build('again');
  t.same(fs.readFileSync(path.join(again.out, 'word', 'archive.zip')), fs.readFileSync(path.join(first.out, 'word', 'archive.zip')), 'a rebuild from the cache archives the same bytes');

  // What the cache holds is what a rebuild archives: an entry changed on purpose shows through.
  fs.writeFileSync(entry, analysis.replace("'original'", "'from the cache'"));
  const planted = await build('planted');
  t.equal(planted.printed, 'from the cache', 'the rebuild took the analysis from the cache');
  const restored = await snapshot(['restore', moveToTarget(planted.out), '--call', 'word.word']);
  t.equal(lastJson(restored), 'from the cache', 'and archived it');

  // A damaged entry (cut short) is not used: the module is analysed again and the entry made whole.
  fs.writeFileSync(entry, analysis.slice(0, 40));
  const repaired = await build('repaired');
  t.equal(repaired.printed, 'original', 'a damaged entry is analysed again');
  t.equal(fs.readFileSync(entry, 'utf8'), analysis, 'and written again');
});
