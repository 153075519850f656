// Math.random inside a service: a generator seeded from one recorded seed
// (compartments/clock.ts) whose values hold 52 random bits, as V8's do,
// at build time, while a restore replays and once it is live; a log made
// before format version 3 (32 bits a value) still replays as it was made.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { LogReader, LogWriter, memorySink, type Entry } from '../replay-log/index.js';
import { fixture, lastJson, moveToTarget, snapshot, tempDir } from './helpers.js';

/** sfc32 as clock.ts runs it, written again here: 12 steps after seeding, then one (32 bits) or two (52 bits) a value. */
const generator = (seed: Uint8Array, bits: 32 | 52): (() => number) => {
  const view = new DataView(seed.buffer, seed.byteOffset, seed.byteLength);
  let [a, b, c, d] = [0, 4, 8, 12].map(at => view.getUint32(at, true) | 0);
  if ((a | b | c | d) === 0) d = 1;
  const step = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (((c << 21) | (c >>> 11)) + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i += 1) step();
  return bits === 52 ? () => ((step() >>> 6) * 2 ** 26 + (step() >>> 6)) / 2 ** 52 : () => step() / 2 ** 32;
};

t.test('Math.random in a service holds 52 random bits a value, as in Node, at build time, in the replay and live', async t => {
  const { lowBits } = await import(fixture('misc', 'services', 'dice.js'));
  t.ok(lowBits(200) > 190, 'plain Node: the low bits of Math.random() * 2 ** 52 vary');

  const dir = path.join(tempDir('random'), 'snapshot');
  const built = await snapshot(['build', 'build-dice.mjs', '--out', dir], { cwd: fixture('misc') });
  t.equal(built.code, 0, built.stderr);
  const printed = lastJson(built) as { draws: number[]; lowBits: number };
  t.ok(printed.lowBits > 190, `at build time too (${printed.lowBits} of 200 different; 1 when a value held 32 bits)`);
  const logFile = path.join(dir, 'dice', 'replay.log');
  const reader = LogReader.open(fs.readFileSync(logFile), logFile);
  const seed = [...reader.entries()].map(({ entry }) => entry).find((entry): entry is Extract<Entry, { kind: 'seed' }> => entry.kind === 'seed');
  if (!seed) throw new Error('the log has no seed');
  const next = generator(seed.seed, 52);
  t.same(printed.draws, Array.from({ length: 5 }, next), "the values are the generator's, from the recorded seed");

  const restored = await snapshot(['restore', moveToTarget(dir), '--call', 'dice.lowBits', '--args', '[200]']);
  t.equal(restored.code, 0, restored.stderr);
  t.ok((lastJson(restored) as number) > 190, 'live after the replay, reseeded: 52 bits too');

  // The same log as a build before format version 3 made it: its header says version 2, and what the first call
  // returned is what that generator gave (32 bits a value). It replays without diverging.
  const sink = memorySink();
  const writer = new LogWriter(sink, { ...reader.header, version: 2 });
  const old = generator(seed.seed, 32);
  const drawn = (entry: Entry): boolean => entry.kind === 'ret' && JSON.stringify(entry.value) === JSON.stringify(printed.draws);
  const entries = [...reader.entries()].map(({ entry }) => entry);
  t.equal(entries.filter(drawn).length, 1, "the log holds the draws call's answer");
  // Then lowBits(200): with 32 bits a value, the low 20 bits of each are 0, one value in all.
  const counted = (entry: Entry): boolean => entry.kind === 'ret' && entry.value === printed.lowBits;
  t.equal(entries.filter(counted).length, 1, "and the lowBits call's");
  for (const entry of entries) writer.entry(drawn(entry) ? { ...entry, value: Array.from({ length: 5 }, old) } : counted(entry) ? { ...entry, value: 1 } : entry);
  writer.seal();
  const log = sink.bytes();
  fs.writeFileSync(logFile, log);
  const manifestFile = path.join(dir, 'manifest.json');
  const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { services: Record<string, Record<string, unknown>> };
  Object.assign(manifest.services.dice, { logSha256: createHash('sha256').update(log).digest('hex'), logBytes: log.byteLength });
  fs.writeFileSync(manifestFile, JSON.stringify(manifest));
  const replayedOld = await snapshot(['restore', moveToTarget(dir), '--call', 'dice.lowBits', '--args', '[200]']);
  t.equal(replayedOld.code, 0, `a version 2 log replays with the generator it was made with: ${replayedOld.stderr}`);
});
