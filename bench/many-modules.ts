/**
 * Figure (j): restore of a large service, whole cold processes. The
 * generated package of figure (g) at 800 ES modules of 4 KB (an entry
 * importing them all, `count()` answering 800), built once with
 * `snapshot build`, then, interleaved, `snapshot restore --call
 * <service>.count` against plain Node importing the same entry
 * (`import()` and `count()`, no library: the baseline) and `node -e 0`.
 * Wall time and CPU (user + system, GNU time) of each, medians.
 *
 * What it shows: a restore's cost per module (reading the archive, SES
 * evaluating each module's functor in its compartment) against Node
 * loading the same files from disk. No goal of the names this
 * figure; it is printed so that a regression on large services shows.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { makePackage } from './archive.js';
import { timeNode, type Sample } from './realistic.js';
import { cliPath, median, ms, ratio, repo, runNodeOk, table, tempDir } from './util.js';

const MODULES = 800;

export const measureManyModules = async ({ out, rounds }: { out: (text?: string) => void; rounds: number }): Promise<void> => {
  const entryFile = makePackage(MODULES);
  const packageDir = path.dirname(entryFile);
  const entryUrl = pathToFileURL(entryFile).href;
  const buildScript = path.join(packageDir, 'build.mjs');
  fs.writeFileSync(
    buildScript,
    `import { importService } from ${JSON.stringify(pathToFileURL(path.join(repo, 'dist', 'lib', 'index.js')).href)};\n` +
      `const service = await importService(${JSON.stringify(entryUrl)}, { name: 'many' });\n` +
      `if ((await service.count()) !== ${MODULES}) throw new Error('wrong count');\n`,
  );
  const snapshotDir = path.join(tempDir('many'), 'snapshot');
  await runNodeOk([cliPath, 'build', buildScript, '--out', snapshotDir]);

  const variants: Array<[string, string[]]> = [
    [`snapshot restore --call many.count`, [cliPath, 'restore', snapshotDir, '--call', 'many.count']],
    [`plain Node: import() of the same ${MODULES} modules, count()`, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(entryUrl)}); console.log(m.count());`]],
    ['node -e 0', ['-e', '0']],
  ];
  const samples = new Map<string, Sample[]>(variants.map(([name]) => [name, []]));
  // One warm-up round (the restore bundle's code cache, the page cache), then interleaved rounds, order rotating.
  for (let round = -1; round < rounds; round += 1) {
    for (let i = 0; i < variants.length; i += 1) {
      const [name, args] = variants[(i + Math.max(round, 0)) % variants.length];
      const sample = await timeNode(args);
      if (name !== 'node -e 0' && !sample.stdout.endsWith(String(MODULES))) throw new Error(`${name} printed ${JSON.stringify(sample.stdout)}, not ${MODULES}`);
      if (round >= 0) (samples.get(name) as Sample[]).push(sample);
    }
  }
  const wall = (name: string): number => median((samples.get(name) as Sample[]).map(s => s.ms));
  const cpu = (name: string): number => median((samples.get(name) as Sample[]).map(s => s.cpuMs ?? Number.NaN));
  const [restore, plain] = variants.map(([name]) => name);
  out(
    table([
      ['whole process', 'wall (median)', 'CPU (median)', 'restore / this, wall', 'restore / this, CPU'],
      ...variants.map(([name]) => [name, ms(wall(name)), ms(cpu(name)), name === restore ? '' : ratio(wall(restore) / wall(name)), name === restore ? '' : ratio(cpu(restore) / cpu(name))]),
    ]),
  );
  out(
    `    ${MODULES} generated ES modules of 4 KB (figure (g)'s package), archive ${fs.statSync(path.join(snapshotDir, 'many', 'archive.zip')).size} bytes; ` +
      `${rounds} interleaved rounds after 1 warm-up; every variant checked to print ${MODULES}. ` +
      `Beyond Node's own loading: ${ms(wall(restore) - wall(plain))} per restore, ${((1000 * (wall(restore) - wall(plain))) / MODULES).toFixed(0)} us per module.`,
  );
};
