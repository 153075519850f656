// Archive writing: our linear zip writer writes exactly the bytes
// @endo/zip's writer does, and compartment-mapper's archives go through it;
// the evasive rewrite runs only where SES would refuse the text, and is
// cached.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ZipReader, ZipWriter } from '@endo/zip';
import { installLinearZipWriter, writeStoredZip, type ZipFile } from '../compartments/zip.js';
import { readStoredZipFile, repeatedZipName } from '../compartments/zip-read.js';
import { decodePack, encodePack } from '../compartments/build-cache.js';
import { evade, evasionCacheDir, evasionCacheKey, wouldReject } from '../compartments/evasion.js';
import { esmLexerReady, linkStarExports } from '../compartments/esm-archive.js';
import { node, projectFrom, repo, snapshot, tempDir } from './helpers.js';

/** Files of every shape the zip format has a field for. */
const fileSets = (): Array<[string, ZipFile[]]> => {
  const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
  const many: ZipFile[] = [];
  for (let i = 0; i < 300; i += 1) {
    many.push({
      name: `pkg-v1.0.${i % 7}/src/${i % 3 ? 'módulo' : 'dir\\sub'}${i}.js`,
      content: bytes((i * 97) % 5000, i),
      mode: i % 4 ? 0o644 : 0o755,
      date: i % 5 ? undefined : new Date(Date.UTC(1999 + (i % 30), i % 12, 1 + (i % 28), i % 24, i % 60, i % 60)),
      comment: i % 11 ? '' : `comment ${i} ✓`,
    });
  }
  return [
    ['no files', []],
    ['one empty file', [{ name: 'empty', content: new Uint8Array(0) }]],
    ['one file', [{ name: 'compartment-map.json', content: new TextEncoder().encode('{"tags":[]}') }]],
    ['300 files: unicode and backslashed names, modes, dates, comments', many],
  ];
};

const endoBytes = (files: readonly ZipFile[], snapshot: () => Uint8Array, writer: ZipWriter): Uint8Array => {
  for (const file of files) writer.write(file.name, file.content, { mode: file.mode, date: file.date, comment: file.comment });
  return snapshot.call(writer);
};

t.test("writeStoredZip writes the bytes @endo/zip's writer writes, and ZipReader reads them back", async t => {
  const original = ZipWriter.prototype.snapshot; // captured before any install
  for (const [label, files] of fileSets()) {
    const ours = writeStoredZip(files);
    const theirs = endoBytes(files, original, new ZipWriter({ date: undefined as unknown as Date }));
    t.ok(Buffer.from(ours).equals(Buffer.from(theirs)), `${label}: identical bytes (${ours.byteLength})`);
    const reader = new ZipReader(ours);
    t.equal(reader.files.size, new Set(files.map(f => f.name.replace(/\\/g, '/'))).size, `${label}: every file listed`);
    for (const file of files) t.same(reader.read(file.name.replace(/\\/g, '/')), file.content, `${label}: ${file.name} reads back`);
  }
});

t.test('readStoredZipFile finds a file of an archive writeStoredZip wrote, and nothing else', async t => {
  for (const [label, files] of fileSets()) {
    for (const comment of ['', 'an archive comment ✓']) {
      const archive = writeStoredZip(files, comment);
      const misread = files.filter(file => !Buffer.from(readStoredZipFile(archive, file.name.replace(/\\/g, '/')) ?? []).equals(Buffer.from(file.content)));
      t.same(misread.map(file => file.name), [], `${label}${comment && ', commented'}: every file reads back`);
      t.equal(readStoredZipFile(archive, 'absent.js'), undefined, `${label}${comment && ', commented'}: no such file`);
      t.equal(readStoredZipFile(archive.subarray(0, archive.byteLength - 1), files[0]?.name ?? 'x'), undefined, `${label}${comment && ', commented'}: cut short`);
      if (files.length > 0) t.equal(readStoredZipFile(writeStoredZip([...files, files[0]], comment), files[0].name.replace(/\\/g, '/')), undefined, `${label}${comment && ', commented'}: a name twice`);
      t.equal(repeatedZipName(archive), undefined, `${label}${comment && ', commented'}: no name repeats`);
      if (files.length > 0) {
        // @endo/zip decodes names with TextDecoder, which drops a leading byte-order mark: the same name to it.
        const name = files[0].name.replace(/\\/g, '/');
        const behindMark = writeStoredZip([...files, { ...files[0], name: `\uFEFF${files[0].name}` }], comment);
        if (!comment) t.equal(new ZipReader(behindMark).files.size, files.length, `${label}: @endo/zip reads the two as one name`);
        t.equal(readStoredZipFile(behindMark, name), undefined, `${label}${comment && ', commented'}: a name twice, once behind a byte-order mark`);
        t.equal(repeatedZipName(behindMark), name, `${label}${comment && ', commented'}: the repeated name is found`);
      }
    }
  }
});

t.test("installLinearZipWriter makes compartment-mapper's @endo/zip write with writeStoredZip", async t => {
  const zip = await installLinearZipWriter();
  t.equal(await installLinearZipWriter(), zip, 'installed once');
  const files = fileSets()[3][1];
  const writer = new (zip.ZipWriter as unknown as typeof ZipWriter)({ date: undefined as unknown as Date });
  for (const file of files) writer.write(file.name, file.content, { mode: file.mode, date: file.date, comment: file.comment });
  t.ok(Buffer.from(writer.snapshot()).equals(Buffer.from(writeStoredZip(files))), 'the patched snapshot writes the same archive');
  t.ok(zip.ZipWriter.prototype.snapshot.toString().includes('writeStoredZip'), 'the module compartment-mapper uses is the one patched');
});

t.test('writeStoredZip refuses more files than a zip without zip64 holds', async t => {
  const files = Array.from({ length: 0x10000 }, (_, i) => ({ name: String(i), content: new Uint8Array(0) }));
  t.throws(() => writeStoredZip(files), RangeError);
});

t.test('the evasive rewrite runs only on text SES refuses, and is cached by content', async t => {
  const clean = 'export const answer = 42; // imports nothing\n';
  t.notOk(wouldReject(clean));
  t.equal(evade(clean, 'module', 'file:///clean.js'), clean, 'text SES accepts is returned as it is');

  const refused = `export const banner = '<!-- ${Date.now()} -->';\n// load it later with import('./x.js')\nexport const pattern = /-->/;\n`;
  t.ok(wouldReject(refused));
  const rewritten = evade(refused, 'module', 'file:///refused.js');
  t.notOk(wouldReject(rewritten), 'the rewrite passes SES');
  t.not(rewritten, refused);

  if (!evasionCacheDir) {
    t.fail('no cache directory: the library is not in a node_modules tree');
    return;
  }
  const key = evasionCacheKey(refused, 'module');
  const cached = (): { file: string; value: string } | undefined => {
    if (!fs.existsSync(evasionCacheDir)) return undefined;
    for (const file of fs.readdirSync(evasionCacheDir).filter(name => name.endsWith('.pack'))) {
      try {
        const value = decodePack(fs.readFileSync(path.join(evasionCacheDir, file)))?.get(key);
        if (value) return { file: path.join(evasionCacheDir, file), value: value.toString('utf8') };
      } catch {
        // merged away by a build beside this test
      }
    }
    return undefined;
  };
  // Written in the background (build-cache.ts), in a pack: there within moments.
  for (const started = Date.now(); !cached() && Date.now() - started < 10_000; ) await new Promise(resolve => setTimeout(resolve, 20));
  const entry = cached();
  t.equal(entry?.value, rewritten, 'the rewrite is cached under the sha256 of its input');
  t.equal((fs.statSync(entry?.file ?? '').mode & 0o777).toString(8), '600');
  // The cache is what a rewrite in another process returns.
  const planted = path.join(evasionCacheDir, `zzzzzzzzz-evasion-${process.pid}.pack`);
  fs.writeFileSync(planted, encodePack([[key, Buffer.from('export const fromCache = true;\n')]]), { mode: 0o600 });
  const evasion = pathToFileURL(path.join(repo, 'dist', 'compartments', 'evasion.js')).href;
  const other = await node(['--input-type=module', '-e', `const { evade } = await import(${JSON.stringify(evasion)}); process.stdout.write(evade(${JSON.stringify(refused)}, 'module', 'file:///refused.js'));`]);
  fs.rmSync(planted, { force: true });
  t.equal(other.stdout, 'export const fromCache = true;\n', 'a rewrite in another process reads the cache');
  t.not(evasionCacheKey(refused, 'script'), evasionCacheKey(refused, 'module'), 'the source type is part of the key');
});

t.test("a computed require's files come from its own package only, never from outside it", async t => {
  const project = projectFrom('context');
  // A link inside the package to a directory outside it (a hostile package can ship one).
  const outside = tempDir('outside');
  fs.writeFileSync(path.join(outside, 'outside.js'), "module.exports = 'read through a link';");
  fs.symlinkSync(outside, path.join(project, 'node_modules', 'ctx', 'linked'));
  const build = await snapshot(['build', 'build.mjs', '--out', 'snapshot'], { cwd: project });
  t.equal(build.code, 0, build.stderr);
  t.same(
    JSON.parse(build.stdout.trim().split('\n').pop() as string),
    ['helper loaded', 'MODULE_NOT_FOUND', 'MODULE_NOT_FOUND', 'MODULE_NOT_FOUND'],
    'the sibling loads; a file outside the package, one behind a link out of it, and a data file named by a variable are not found, as no archive holds them',
  );
  const archives = fs.readdirSync(path.join(project, 'snapshot'), { recursive: true, encoding: 'utf8' }).filter(name => name.endsWith('.zip'));
  t.ok(archives.length > 0, 'the service has an archive');
  for (const archive of archives) {
    const names = [...new ZipReader(fs.readFileSync(path.join(project, 'snapshot', archive))).files.keys()];
    t.ok(names.some(name => name.endsWith('ctx-v1.0.0/helper.js')), `${archive} holds the package's own file`);
    t.notOk(names.some(name => name.includes('secret-note') || name.includes('outside.js')), `${archive} holds nothing from outside the package`);
    t.notOk(names.some(name => name.includes('beside.json')), `${archive} holds no data file a variable name could reach`);
  }
});

t.test('a barrel whose `export *` targets offer one binding twice re-exports it by name, also through nested `export *`, and not where a target is unknown', async t => {
  await esmLexerReady;
  const dir = tempDir('barrels');
  const write = (name: string, text: string): string => {
    fs.writeFileSync(path.join(dir, name), text);
    return path.join(dir, name);
  };
  write('common.js', 'export const shared = 1;\n');
  write('a.js', "export { shared } from './common.js';\nexport const onlyA = 2;\n");
  write('b.js', "export { shared } from './common.js';\n");
  write('deep.js', "export * from './common.js';\n");
  write('c.js', 'export const other = 3;\n');
  write('opaque.js', "export * from 'some-package';\n");
  const plain = "export * from './a.js';\nexport * from './b.js';\nexport * from './c.js';\n";
  t.equal(linkStarExports(plain, write('plain.js', plain)), `${plain}\nexport { shared } from "./common.js";\n`, 'two targets offering the same binding');
  const nested = "export * from './a.js';\nexport * from './deep.js';\n";
  t.equal(linkStarExports(nested, write('nested.js', nested)), `${nested}\nexport { shared } from "./common.js";\n`, 'one of them through a nested export *');
  const unknown = "export * from './a.js';\nexport * from './b.js';\nexport * from './opaque.js';\n";
  t.equal(linkStarExports(unknown, write('unknown.js', unknown)), unknown, 'a target whose names are unknown: left as it is');
});
