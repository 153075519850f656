/**
 * Figure (h): memory with a large payload. The service
 * (fixtures/payload/svc.js) fetches one body at init and keeps its bytes;
 * its build script serves 50 MiB, or 1 KiB for the baseline snapshot.
 * Peak RSS (GNU time) of whole processes, medians of interleaved runs:
 *
 *   restore cost per payload byte = (restore peak with 50 MiB - with 1 KiB) / 50 MiB
 *   build cost per payload byte   = the same for `snapshot build`
 *   plain Node                    = (node plain.mjs <50 MiB file> - node -e 0) / 50 MiB
 *
 * Goal: restore <= 2x the payload.
 */
import fs from 'node:fs';
import path from 'node:path';
import { timeNode, type Sample } from './realistic.js';
import { benchDir, cliPath, goal, median, ratio, table, tempDir } from './util.js';

const fixtureDir = path.join(benchDir, 'fixtures', 'payload');
const PAYLOAD = 50 * 1024 * 1024;
const SMALL = 1024;

const mib = (kib: number): string => `${(kib / 1024).toFixed(0)} MiB`;

export const measureMemory = async ({ out, rounds }: { out: (text?: string) => void; rounds: number }): Promise<void> => {
  if (!fs.existsSync('/usr/bin/time')) throw new Error('figure (h) needs GNU time (/usr/bin/time) for peak RSS');
  const work = tempDir('payload');
  const dirs = { big: path.join(work, 'big'), small: path.join(work, 'small') };
  const file = path.join(work, 'payload.bin');
  const builds = { big: [] as number[], small: [] as number[] };
  const restores = { big: [] as number[], small: [] as number[] };
  const plain: number[] = [];
  const empty: number[] = [];
  const rss = (s: Sample): number => s.maxRssKiB ?? Number.NaN;
  for (let round = 0; round < rounds; round += 1) {
    for (const [which, bytes] of [['big', PAYLOAD], ['small', SMALL]] as const) {
      process.env.PAYLOAD_BYTES = String(bytes);
      builds[which].push(rss(await timeNode([cliPath, 'build', path.join(fixtureDir, 'build.mjs'), '--out', dirs[which]])));
    }
    delete process.env.PAYLOAD_BYTES;
    if (round === 0) fs.writeFileSync(file, Buffer.alloc(PAYLOAD, 'x'));
    for (const which of ['big', 'small'] as const) {
      const s = await timeNode([cliPath, 'restore', dirs[which], '--call', 'payload.size']);
      if (s.stdout !== String(which === 'big' ? PAYLOAD : SMALL)) throw new Error(`restore of the ${which} payload printed ${s.stdout}`);
      restores[which].push(rss(s));
    }
    plain.push(rss(await timeNode([path.join(fixtureDir, 'plain.mjs'), file])));
    empty.push(rss(await timeNode(['-e', '0'])));
  }
  const perByte = (big: number[], small: number[]) => ((median(big) - median(small)) * 1024) / PAYLOAD;
  const restore = perByte(restores.big, restores.small);
  const build = perByte(builds.big, builds.small);
  const floor = perByte(plain, empty);
  out(
    table([
      ['whole process', 'peak RSS, 50 MiB', 'peak RSS, 1 KiB', 'extra / payload', ''],
      ['snapshot restore --call payload.size', mib(median(restores.big)), mib(median(restores.small)), ratio(restore), `goal <= 2x: ${goal(restore <= 2)}`],
      ['snapshot build', mib(median(builds.big)), mib(median(builds.small)), ratio(build), ''],
      ['plain Node: the bytes read from a local file (vs node -e 0)', mib(median(plain)), mib(median(empty)), ratio(floor), ''],
    ]),
  );
  out(`    medians of ${rounds} interleaved rounds; the payload is kept as bytes by the service (and by plain Node).`);
};
