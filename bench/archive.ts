/**
 * Figure (g): archive writing. A generated package of N modules of 4 KB
 * (an entry importing them all), N = 100, 200, 400, 800:
 *
 * - the whole `archiveService` (crawl, parse, write), as a first build
 *   does, with the module analysis cache empty (module-source-cache.ts,
 *   emptied before each run through the cache itself, which then forgets
 *   its listing too: a directory removed behind its back left it naming the
 *   entries of the run before, and every module of a later "first build"
 *   cost a failed read), the writing of its new entries to the cache
 *   included: wall time, and the process's CPU time (user + system) over
 *   the same calls, which other work on the machine disturbs less; and as
 *   a rebuild of unchanged modules does, the cache filled and read from
 *   disk (as a later process reads it);
 * - writing the zip alone: our writer (compartments/zip.ts) against
 *   @endo/zip 1.1.0's own `ZipWriter#snapshot` on the same files, the
 *   baseline, captured before our writer is installed (up to 400 modules:
 *   at 800 it takes 10 to 30 s).
 *
 * Goal: the archive of 800 modules of 4 KB in <= 0.5 s, and linear (the
 * time per module does not grow with N), read on the first build (cold).
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ZipReader, ZipWriter } from '@endo/zip';
import { goal, median, ms, table, tempDir } from './util.js';

/** @endo/zip's own snapshot, captured when this module loads (before any archive installs ours). */
const endoSnapshot = ZipWriter.prototype.snapshot;

const MODULE_BYTES = 4096;

/** A package of `n` modules of about 4 KB each and an entry that imports them all. */
export const makePackage = (n: number): string => {
  const dir = tempDir(`archive-${n}`);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `bench-archive-${n}`, type: 'module', private: true }));
  fs.mkdirSync(path.join(dir, 'lib'));
  const imports: string[] = [];
  for (let i = 0; i < n; i += 1) {
    const head = `// module ${i}\nexport const name${i} = 'm${i}';\nexport const text${i} = '`;
    const tail = `';\n`;
    const filler = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(Math.ceil(MODULE_BYTES / 36)).slice(0, MODULE_BYTES - head.length - tail.length);
    fs.writeFileSync(path.join(dir, 'lib', `m${i}.js`), head + filler + tail);
    imports.push(`import { name${i} } from './lib/m${i}.js';`);
  }
  fs.writeFileSync(path.join(dir, 'entry.js'), `${imports.join('\n')}\nexport const count = () => ${n};\n`);
  return path.join(dir, 'entry.js');
};

type ArchiveService = (service: string, entry: string) => Promise<Uint8Array>;

export const measureArchive = async ({
  out,
  archiveService,
  reps,
  cacheDir,
  cacheFlushed,
  rereadCache,
  emptyCache,
}: {
  out: (text?: string) => void;
  archiveService: ArchiveService;
  reps: number;
  cacheDir: string | undefined;
  /** Resolves once the cache's entries are written. */
  cacheFlushed: () => Promise<void>;
  /** Forgets what the cache read, so that the next archive reads it from disk. */
  rereadCache: () => Promise<void>;
  /** Empties the module analysis cache (after the writes under way), listing included. */
  emptyCache: () => Promise<void>;
}): Promise<void> => {
  const rows: string[][] = [['modules', 'archive bytes', 'first build', 'its CPU', 'per module', 'rebuild (cached)', 'zip write: ours', '@endo/zip (baseline)', 'baseline / ours']];
  let at800 = Number.NaN;
  let cachedAt800 = Number.NaN;
  const perModule: number[] = [];
  // The generated modules are new text: their analyses are in no cache, but each run of the same package would
  // find those of the run before. Emptied before every cold run.
  for (const n of [100, 200, 400, 800]) {
    const entry = pathToFileURL(makePackage(n)).href;
    const whole: number[] = [];
    const cpu: number[] = [];
    const cached: number[] = [];
    let archive: Uint8Array = new Uint8Array(0);
    for (let rep = 0; rep <= reps; rep += 1) {
      await emptyCache();
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      archive = await archiveService(`archive-${n}`, entry);
      // The analyses it made written to the cache (one pack file), part of what a first build costs.
      await cacheFlushed();
      const t1 = performance.now();
      const used = process.cpuUsage(c0);
      if (rep > 0) {
        whole.push(t1 - t0);
        cpu.push((used.user + used.system) / 1000);
      }
    }
    for (let rep = 0; rep < reps; rep += 1) {
      // A rebuild is a later process: it reads the cache's packs from disk.
      await rereadCache();
      const t0 = performance.now();
      const again = await archiveService(`archive-${n}`, entry);
      cached.push(performance.now() - t0);
      if (!Buffer.from(again).equals(Buffer.from(archive))) throw new Error(`${n} modules: the archive made from the cache differs from the first build's`);
    }
    // The zip alone, from the files of that very archive.
    const reader = new ZipReader(archive);
    const files = [...reader.files.keys()].map(name => ({ name, content: reader.read(name) }));
    const fill = (): ZipWriter => {
      const writer = new ZipWriter({ date: undefined as unknown as Date });
      for (const f of files) writer.write(f.name, f.content);
      return writer;
    };
    const ours: number[] = [];
    for (let rep = 0; rep < reps; rep += 1) {
      const writer = fill();
      const t0 = performance.now();
      const bytes = writer.snapshot(); // installed: our writer
      ours.push(performance.now() - t0);
      if (!Buffer.from(bytes).equals(Buffer.from(archive))) throw new Error(`${n} modules: rewriting the archive's files gave other bytes`);
    }
    // The baseline is quadratic: one run, and not at 800 modules (10 to 30 s).
    let baseline = Number.NaN;
    if (n <= 400) {
      const writer = fill();
      const t0 = performance.now();
      const theirs = endoSnapshot.call(writer);
      baseline = performance.now() - t0;
      if (!Buffer.from(theirs).equals(Buffer.from(archive))) throw new Error(`${n} modules: @endo/zip wrote other bytes than ours`);
    }
    const m = median(whole);
    if (n === 800) {
      at800 = m;
      cachedAt800 = median(cached);
    }
    perModule.push(m / n);
    rows.push([
      String(n),
      String(archive.byteLength),
      ms(m),
      ms(median(cpu)),
      `${((m / n) * 1000).toFixed(0)} us`,
      ms(median(cached)),
      ms(median(ours)),
      Number.isNaN(baseline) ? 'not run (quadratic)' : ms(baseline),
      Number.isNaN(baseline) ? '-' : `${(baseline / median(ours)).toFixed(0)}x`,
    ]);
  }
  out(table(rows));
  out(
    `    archiveService: first build, the module analysis cache empty, its new entries written to the cache included: median of ${reps} after 1 warm-up (its CPU: user + system of the whole process, GC and libuv threads included, the figure to read when the machine is busy); ` +
      `rebuild: the same package again, every module's analysis in the cache (${cacheDir ? 'node_modules/.cache/membrane-snapshot' : 'no cache directory: not cached'}, read from disk as a new process does), median of ${reps}, its archive checked identical; ` +
      `zip write: our writer median of ${reps}, @endo/zip one run; both write identical bytes (checked).`,
  );
  const growth = perModule[perModule.length - 1] / perModule[0];
  out(
    table([
      ['goal', 'figure', ''],
      ['archive of 800 modules of 4 KB <= 0.5 s (first build)', ms(at800), goal(at800 <= 500)],
      ['  the same, a rebuild (module analyses cached)', ms(cachedAt800), goal(cachedAt800 <= 500)],
      ['linear: time per module at 800 / at 100 (<= 1.5)', growth.toFixed(2), goal(growth <= 1.5)],
    ]),
  );
};
