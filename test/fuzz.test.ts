// Fuzz: damaged logs and archives end in a typed SnapshotError or a restore,
// never a raw exception, a hang or runaway memory. Each run draws a fresh seed
// (printed; FUZZ_SEED=<n> replays one) and stops at a count or a time budget.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import {
  FORMAT_NAME,
  FORMAT_VERSION,
  LogReader,
  LogWriter,
  Slot,
  Tagged,
  describeEntry,
  dumpLogFile,
  isSnapshotError,
  memorySink,
  packr,
  type Entry,
  type LogHeader,
} from '../replay-log/index.js';
import { ZipReader } from '@endo/zip';
import { writeStoredZip } from '../compartments/zip.js';
import { fixture, moveToTarget, snapshot, tempDir } from './helpers.js';

const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
t.comment(`FUZZ_SEED=${seed}`);

/** mulberry32: a small seeded generator, so a failure replays with its seed. */
const rng = (() => {
  let a = seed >>> 0;
  return (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
})();
const int = (n: number): number => Math.floor(rng() * n);
const pick = <T>(items: readonly T[]): T => items[int(items.length)];

const work = tempDir('fuzz');
const LOG_CODES = new Set(['LOG_CORRUPT', 'LOG_TRUNCATED', 'LOG_VERSION_UNSUPPORTED']);

// ---- frames: parse a valid log, rebuild one with recomputed CRCs -------------

interface Frame {
  type: number;
  payload: Uint8Array;
}

const splitFrames = (bytes: Uint8Array): Frame[] => {
  const frames: Frame[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let pos = 8; pos < bytes.byteLength; ) {
    const length = view.getUint32(pos + 1, true);
    frames.push({ type: bytes[pos], payload: bytes.subarray(pos + 9, pos + 9 + length) });
    pos += 9 + length;
  }
  return frames;
};

const crc = (type: number, payload: Uint8Array): number =>
  (zlib as unknown as { crc32(d: Uint8Array, v?: number): number }).crc32(payload, (zlib as unknown as { crc32(d: Uint8Array): number }).crc32(Uint8Array.of(type)));

const joinFrames = (frames: Frame[]): Uint8Array => {
  const parts: Uint8Array[] = [Buffer.from('MSNPLOG\n', 'latin1')];
  for (const { type, payload } of frames) {
    const head = Buffer.alloc(9);
    head[0] = type;
    head.writeUInt32LE(payload.byteLength, 1);
    head.writeUInt32LE(crc(type, payload) >>> 0, 5);
    parts.push(head, payload);
  }
  return Buffer.concat(parts);
};

/** Entries of a frame payload, as [start, end) byte ranges (structure only). */
const entryRanges = (payload: Uint8Array): Array<[number, number]> => {
  const out: Array<[number, number]> = [];
  const varuint = (at: number): [number, number] => {
    let value = 0;
    let shift = 0;
    let pos = at;
    for (;;) {
      if (pos >= payload.byteLength || shift > 28) throw new RangeError('not an entry');
      const byte = payload[pos++];
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return [value, pos];
      shift += 7;
    }
  };
  for (let pos = 0; pos < payload.byteLength; ) {
    const tag = payload[pos];
    let end: number;
    if (tag === 1 || tag === 2) end = pos + 9;
    else if (tag === 3) end = pos + 17;
    else if (tag === 0x11) {
      const [, after] = varuint(pos + 1);
      const [n, start] = varuint(after);
      end = start + n;
    } else {
      const [n, start] = varuint(pos + 1);
      end = start + n;
    }
    if (end > payload.byteLength) throw new RangeError('not an entry');
    out.push([pos, end]);
    pos = end;
  }
  return out;
};

const varuintBytes = (value: number): number[] => {
  const out: number[] = [];
  let n = value;
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
};

// ---- random values --------------------------------------------------------------

const randomValue = (depth = 0): unknown => {
  switch (int(depth > 2 ? 9 : 14)) {
    case 0:
      return int(2 ** 32) - 2 ** 31;
    case 1:
      return pick([NaN, Infinity, -Infinity, -0, 1e300, 0.5, 2 ** 53 + 2, -1]);
    case 2:
      return pick(['', 'start', 'call', 'settle', 'timer', 'send', 'ret', 'x'.repeat(int(300)), '\ud800']);
    case 3:
      return pick([true, false, null, undefined]);
    case 4:
      return Buffer.from(Array.from({ length: int(20) }, () => int(256)));
    case 5:
      return new Slot(pick(['guest', 'host'] as const), pick([0, 1, 2, 7, 2 ** 31]), pick(['', 'function f']));
    case 6:
      return rng() < 0.5
        ? new Tagged(pick(['bigint', '-0', 'map', 'error', 'symbol', 'utf16', 'sparse', 'array', 'boxed', 'object', 'view', 'ref'] as const), randomValue(depth + 1))
        : pick([
            () => new Tagged('sparse', [pick([3, 2 ** 32, -1]), [int(5)], [randomValue(depth + 1)]]),
            () => new Tagged('array', [pick([3, 2 ** 32, -1]), [int(5)], [randomValue(depth + 1)], pick([{ k: 1 }, [['__proto__', 2]], 7])]),
            () => new Tagged('boxed', pick([5, 's', true, new Tagged('bigint', '12'), {}, null])),
            () => new Tagged('view', [pick(['Uint16Array', 'DataView', 'Nope']), new ArrayBuffer(int(8)), int(4), int(6)]),
            () => new Tagged('ref', pick([0, 1, 99, -1])),
            () => new Tagged('object', [[pick(['__proto__', 'k', 1]), randomValue(depth + 1)]]),
            () => new Tagged('utf16', pick([Uint16Array.of(0xd800), 'x'])),
          ])();
    case 7:
      return new Date(pick([0, NaN, 8.64e15, 1e20]));
    case 8:
      return int(8);
    case 9:
      return Array.from({ length: int(5) }, () => randomValue(depth + 1));
    case 10:
      return Object.fromEntries(Array.from({ length: int(4) }, () => [pick(['name', 'message', 'events', '__proto__', 'k']), randomValue(depth + 1)]));
    case 11:
      return new Set([randomValue(depth + 1)]);
    case 12:
      return new Tagged('error', { name: randomValue(depth + 1), message: randomValue(depth + 1) } as never);
    default:
      return new Uint16Array(int(4));
  }
};

/** A tuple shaped like an entry, with fields of random types (sometimes right, often wrong). */
const randomTuple = (): unknown[] => {
  const kind = pick(['start', 'call', 'settle', 'timer', 'send', 'ret', 'nope']);
  const length = pick([1, 2, 4, 5, 6, int(8)]);
  return [kind, ...Array.from({ length: length - 1 }, () => (rng() < 0.5 ? int(4) : randomValue()))];
};

const pack = (value: unknown): Uint8Array => {
  try {
    return packr.pack(value);
  } catch {
    return packr.pack(null);
  }
};

/** One random entry of the right frame type: msgpack or fast kinds, sometimes structurally off. */
const randomEntryBytes = (): Uint8Array => {
  switch (int(6)) {
    case 0: {
      const body = pack(randomTuple());
      return Uint8Array.from([0x10, ...varuintBytes(body.byteLength), ...body]);
    }
    case 1: {
      const body = pack(rng() < 0.5 ? [randomValue(), int(4), randomValue()] : randomValue());
      return Uint8Array.from([0x11, ...varuintBytes(int(3)), ...varuintBytes(body.byteLength), ...body]);
    }
    case 2: {
      const b = Buffer.alloc(9);
      b[0] = pick([1, 2]);
      b.writeDoubleLE(pick([NaN, Infinity, 1e300, -1, 1.7e12, 8.64e15 + 1]), 1);
      return b;
    }
    case 3:
      return Uint8Array.from([pick([0x04, 0x12]), ...varuintBytes(int(6)), ...Array.from({ length: int(6) }, () => int(256))]);
    case 4:
      return Uint8Array.from(Array.from({ length: 1 + int(12) }, () => int(256)));
    default: {
      const body = pack(randomValue());
      return Uint8Array.from([0x10, ...varuintBytes(body.byteLength), ...body]);
    }
  }
};

/** Re-count the events of `frames` and rewrite the closing frame to agree (so the damage reaches the decoder). */
const fixTrailer = (frames: Frame[]): Frame[] => {
  let events = 0;
  for (const f of frames) {
    if (f.type !== 2) continue;
    try {
      for (const [s] of entryRanges(f.payload)) if (f.payload[s] !== 0x12) events += 1;
    } catch {
      // not structurally sound: the reader will say so
    }
  }
  return frames.map(f => (f.type === 3 ? { type: 3, payload: packr.pack({ events }) } : f));
};

// ---- mutators -------------------------------------------------------------------------

type Mutator = (bytes: Uint8Array) => Uint8Array;

const mutators: Record<string, Mutator> = {
  bitFlips: bytes => {
    const out = Uint8Array.from(bytes);
    for (let i = 1 + int(8); i > 0; i -= 1) out[int(out.length)] ^= 1 << int(8);
    return out;
  },
  truncate: bytes => bytes.subarray(0, int(bytes.byteLength)),
  payloadFlipRecrc: bytes => {
    const frames = splitFrames(bytes).map(f => ({ ...f, payload: Uint8Array.from(f.payload) }));
    const f = pick(frames);
    if (f.payload.byteLength) f.payload[int(f.payload.byteLength)] ^= 1 << int(8);
    return joinFrames(frames);
  },
  swapFrames: bytes => {
    const frames = splitFrames(bytes);
    const i = int(frames.length);
    const j = int(frames.length);
    [frames[i], frames[j]] = [frames[j], frames[i]];
    return joinFrames(rng() < 0.5 ? fixTrailer(frames) : frames);
  },
  removeFrame: bytes => {
    const frames = splitFrames(bytes);
    frames.splice(int(frames.length), 1);
    return joinFrames(rng() < 0.5 ? fixTrailer(frames) : frames);
  },
  duplicateFrame: bytes => {
    const frames = splitFrames(bytes);
    const i = int(frames.length);
    frames.splice(i, 0, frames[i]);
    return joinFrames(rng() < 0.5 ? fixTrailer(frames) : frames);
  },
  swapEntries: bytes => {
    // Entries moved within a frame: the CRC and the count hold, the meaning does not.
    const frames = splitFrames(bytes);
    const entryFrames = frames.filter(f => f.type === 2);
    if (!entryFrames.length) return bytes;
    const f = pick(entryFrames);
    const ranges = entryRanges(f.payload);
    const pieces = ranges.map(([s, e]) => f.payload.subarray(s, e));
    const i = int(pieces.length);
    const j = int(pieces.length);
    [pieces[i], pieces[j]] = [pieces[j], pieces[i]];
    if (rng() < 0.3) pieces.splice(int(pieces.length), 1);
    f.payload = Buffer.concat(pieces);
    return joinFrames(fixTrailer(frames));
  },
  randomEntry: bytes => {
    const frames = splitFrames(bytes);
    const entryFrames = frames.filter(f => f.type === 2);
    if (!entryFrames.length) return bytes;
    const f = pick(entryFrames);
    const ranges = entryRanges(f.payload);
    const at = ranges.length ? pick(ranges)[int(2)] : 0;
    const inserted = randomEntryBytes();
    if (rng() < 0.5 && ranges.length) {
      const [s, e] = pick(ranges);
      f.payload = Buffer.concat([f.payload.subarray(0, s), inserted, f.payload.subarray(e)]);
    } else {
      f.payload = Buffer.concat([f.payload.subarray(0, at), inserted, f.payload.subarray(at)]);
    }
    return joinFrames(fixTrailer(frames));
  },
  trailerOrHeader: bytes => {
    const frames = splitFrames(bytes);
    const type = pick([1, 3]);
    const value = pick([() => randomValue(), () => ({ events: randomValue() }), () => ({}), () => ({ events: 3, extra: 1 })])();
    const payload = rng() < 0.2 ? new Uint8Array(0) : pack(value);
    const i = frames.findIndex(f => f.type === type);
    if (i >= 0) frames[i] = { type, payload };
    else frames.push({ type, payload });
    return joinFrames(frames);
  },
  frameLength: bytes => {
    const out = Buffer.from(bytes);
    const offsets: number[] = [];
    for (let pos = 8; pos + 9 <= out.length; pos += 9 + out.readUInt32LE(pos + 1)) offsets.push(pos);
    const at = pick(offsets);
    out.writeUInt32LE(pick([0xffffffff, 0x7fffffff, 2 ** 30 + 1, 0, int(2 ** 32)]), at + 1);
    return out;
  },
};

/** Apply a mutator; one that needs structure the input has lost leaves it as it is. */
const mutate = (name: string, bytes: Uint8Array): Uint8Array => {
  try {
    return mutators[name](bytes);
  } catch {
    return bytes;
  }
};

// ---- base logs ------------------------------------------------------------------------

const header: LogHeader = { format: FORMAT_NAME, version: FORMAT_VERSION, service: 'fuzz', archiveSha256: 'ab'.repeat(32), libraryVersion: '0.0.0-fuzz' };

const syntheticLog = (): Uint8Array => {
  const entries: Entry[] = [
    { kind: 'start' },
    { kind: 'seed', seed: Uint8Array.from({ length: 16 }, (_, i) => i) },
    { kind: 'now', value: 1795000000123 },
    { kind: 'sys', op: 'fetch', args: [{ url: 'http://h/' }], outcome: { type: 'async', promise: 1 } },
    { kind: 'ret', answer: 0, ok: true, value: { get: new Slot('guest', 0, 'function get') } },
    { kind: 'settle', promise: 1, ok: true, value: { status: 200, big: new Tagged('bigint', '123'), m: new Tagged('map', [['k', 1]]) } },
    { kind: 'perf', value: 12.5 },
    { kind: 'call', target: 0, method: null, args: [new Slot('host', 1, 'function log'), [1, 'two']], answer: 1 },
    { kind: 'send', target: new Slot('host', 1, 'function log'), method: null, args: ['hi'], outcome: { type: 'return', value: undefined } },
    { kind: 'random', bytes: Uint8Array.of(9, 8, 7) },
    { kind: 'sys', op: 'fs.statSync', args: ['/nope'], outcome: { type: 'throw', value: new Tagged('error', { name: 'Error', message: 'ENOENT', props: { code: 'ENOENT' } }) } },
    { kind: 'ret', answer: 1, ok: false, value: new Tagged('error', { name: 'TypeError', message: 'bad' }) },
    { kind: 'timer', timer: 2 },
    { kind: 'sys', op: 'fetch', args: [{ url: 'http://h/2' }], outcome: { type: 'return', value: new Set([1]) } },
    // Kept entries and repeats of them (format version 2).
    { kind: 'sys', op: 'env.get', args: ['HOME'], outcome: { type: 'return', value: '/root' } },
    { kind: 'sys', op: 'env.get', args: ['HOME'], outcome: { type: 'return', value: '/root' } },
    { kind: 'sys', op: 'env.get', args: ['HOME'], outcome: { type: 'return', value: '/home' } },
    { kind: 'sys', op: 'env.get', args: ['HOME'], outcome: { type: 'return', value: '/home' } },
  ];
  const sink = memorySink();
  const writer = new LogWriter(sink, header);
  for (const [i, entry] of entries.entries()) {
    writer.entry(entry);
    if (i % 3 === 2) writer.flush();
  }
  writer.seal();
  return sink.bytes();
};

/** Open and read a log as restore and inspect do; return the error code, or 'ok'. */
const readOutcome = (bytes: Uint8Array, allowUnsealed: boolean): string => {
  try {
    const reader = LogReader.open(bytes, 'fuzz.log', { allowUnsealed });
    for (const { entry } of reader.entries()) describeEntry(entry, true);
    return 'ok';
  } catch (error) {
    if (isSnapshotError(error)) return error.code;
    throw error;
  }
};

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

t.test('the log reader: every mutated log is read or refused with a typed error', async t => {
  const bases = [syntheticLog()];
  const budgetMs = 10_000;
  const started = performance.now();
  const counts: Record<string, Record<string, number>> = {};
  const names = Object.keys(mutators);
  let n = 0;
  const streamFile = path.join(work, 'stream.log');
  while (n < 6000 && performance.now() - started < budgetMs) {
    const name = names[n % names.length];
    const base = pick(bases);
    let input = mutate(name, base);
    if (rng() < 0.2) input = mutate(pick(names), input); // sometimes two kinds of damage at once
    const caseStarted = performance.now();
    let outcome: string;
    try {
      outcome = readOutcome(input, rng() < 0.5);
      if (n % 10 === 0) {
        // inspect's streaming path reads from disk, one frame at a time
        fs.writeFileSync(streamFile, input);
        try {
          dumpLogFile(streamFile, () => {});
        } catch (error) {
          if (!isSnapshotError(error)) throw error;
        }
      }
    } catch (error) {
      fs.writeFileSync(path.join(work, `crash-${n}.log`), input);
      t.fail(`${name} #${n} (FUZZ_SEED=${seed}): raw ${String((error as Error)?.stack ?? error)}`);
      break;
    }
    const caseMs = performance.now() - caseStarted;
    if (caseMs > 2000) t.fail(`${name} #${n} (FUZZ_SEED=${seed}) took ${caseMs.toFixed(0)} ms`);
    if (outcome !== 'ok' && !LOG_CODES.has(outcome)) t.fail(`${name} #${n}: unexpected code ${outcome}`);
    (counts[name] ??= {})[outcome] = (counts[name]?.[outcome] ?? 0) + 1;
    n += 1;
  }
  t.comment(`${n} mutated logs in ${(performance.now() - started).toFixed(0)} ms: ${JSON.stringify(counts)}`);
  t.ok(n >= 1000, `at least a thousand mutated logs were read (${n})`);
  t.ok(process.memoryUsage().rss < 1024 * 1024 * 1024, 'memory stayed bounded (rss < 1 GiB)');
  for (const name of names) t.ok(counts[name], `mutator ${name} ran`);
  const refused = Object.values(counts).reduce((sum, c) => sum + Object.entries(c).filter(([k]) => k !== 'ok').reduce((s, [, v]) => s + v, 0), 0);
  t.ok(refused > n / 2, 'most damage is refused');
});

// ---- replay and archives: a real service, restored in-process ------------------------

interface Snapshot {
  dir: string;
  manifest: { services: Record<string, { archiveSha256: string; logSha256: string; logBytes: number; archiveBytes: number }> };
  log: Uint8Array;
  archive: Uint8Array;
}

const buildBase = async (): Promise<Snapshot> => {
  const dir = path.join(work, 'base');
  const built = await snapshot(['build', 'build-counter.mjs', '--out', dir], { cwd: fixture('misc') });
  if (built.code !== 0) throw new Error(built.stderr);
  return {
    dir,
    manifest: JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')),
    log: fs.readFileSync(path.join(dir, 'counter', 'replay.log')),
    archive: fs.readFileSync(path.join(dir, 'counter', 'archive.zip')),
  };
};

/** Write a snapshot whose manifest (and log header) agree with the given files, as an attacker would. */
const writeCase = (base: Snapshot, dir: string, files: { log?: Uint8Array; archive?: Uint8Array }): void => {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'counter'), { recursive: true });
  const archive = files.archive ?? base.archive;
  let log = files.log ?? base.log;
  if (files.archive) {
    // The log names its archive: rewrite its header for the new one.
    const reader = LogReader.open(base.log, 'base.log');
    const sink = memorySink();
    const writer = new LogWriter(sink, { ...reader.header, archiveSha256: sha256(archive) });
    for (const { entry } of reader.entries()) writer.entry(entry);
    writer.seal();
    log = sink.bytes();
  }
  const manifest = structuredClone(base.manifest);
  Object.assign(manifest.services.counter, { archiveSha256: sha256(archive), logSha256: sha256(log), logBytes: log.byteLength, archiveBytes: archive.byteLength });
  fs.writeFileSync(path.join(dir, 'counter', 'archive.zip'), archive);
  fs.writeFileSync(path.join(dir, 'counter', 'replay.log'), log);
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
};

const archiveMutators: Record<string, Mutator> = {
  bitFlips: mutators.bitFlips,
  truncate: mutators.truncate,
  /** Damage the zip's structure: local headers, central directory, end record. */
  zipFields: bytes => {
    const out = Uint8Array.from(bytes);
    const signatures = [0x04034b50, 0x02014b50, 0x06054b50];
    const view = new DataView(out.buffer);
    const offsets: number[] = [];
    for (let i = 0; i + 4 <= out.length; i += 1) if (signatures.includes(view.getUint32(i, true))) offsets.push(i);
    const at = pick(offsets) + int(46);
    if (at < out.length) out[at] = int(256);
    return out;
  },
  /** A stored entry's bytes changed: its CRC no longer matches. */
  content: bytes => {
    const out = Uint8Array.from(bytes);
    out[Math.floor(out.length / 4) + int(Math.floor(out.length / 2))] ^= 0x20;
    return out;
  },
};

t.test('replay and archives: mutated snapshots (hashes recomputed) restore or fail with a typed error', async t => {
  const base = await buildBase();
  const { restoreSnapshot } = await import('../lib/index.js');
  const dir = path.join(work, 'case');
  const outcomes: Record<string, Record<string, number>> = {};
  const samples: Array<{ what: string; code: string; log?: Uint8Array; archive?: Uint8Array }> = [];
  const tryRestore = async (what: string, files: { log?: Uint8Array; archive?: Uint8Array }): Promise<boolean> => {
    writeCase(base, dir, files);
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<'hang'>(resolve => (timer = setTimeout(() => resolve('hang'), 10_000)));
    let outcome: string;
    try {
      const result = await Promise.race([restoreSnapshot({ dir }).then(() => 'restored'), hang]);
      outcome = result;
    } catch (error) {
      if (!isSnapshotError(error)) {
        const file = path.join(work, `raw-${Object.keys(samples).length}-${what}`);
        fs.cpSync(dir, file, { recursive: true });
        t.fail(`${what} (FUZZ_SEED=${seed}): raw ${String((error as Error)?.stack ?? error)} (kept in ${file})`);
        return false;
      }
      outcome = error.code;
      const kind = files.log ? 'log' : 'archive';
      if (samples.filter(x => (x.log ? 'log' : 'archive') === kind).length < 10 && LOG_CODES.has(outcome) === Boolean(files.log)) samples.push({ what, code: outcome, ...files });
    } finally {
      clearTimeout(timer);
    }
    if (outcome === 'hang') {
      t.fail(`${what} (FUZZ_SEED=${seed}): restore neither finished nor failed in 10 s`);
      return false;
    }
    (outcomes[what] ??= {})[outcome] = (outcomes[what]?.[outcome] ?? 0) + 1;
    return true;
  };

  t.ok(await tryRestore('unchanged', {}), 'the base snapshot restores');
  t.same(outcomes.unchanged, { restored: 1 });

  const started = performance.now();
  const names = Object.keys(mutators);
  let n = 0;
  while (performance.now() - started < 12_000 && n < 2000) {
    const name = names[n % names.length];
    if (!(await tryRestore(`log:${name}`, { log: mutate(name, base.log) }))) break;
    n += 1;
  }
  const archiveNames = Object.keys(archiveMutators);
  let m = 0;
  const archiveStarted = performance.now();
  while (performance.now() - archiveStarted < 8_000 && m < 500) {
    const name = archiveNames[m % archiveNames.length];
    let archive: Uint8Array;
    try {
      archive = archiveMutators[name](base.archive);
    } catch {
      archive = base.archive;
    }
    if (!(await tryRestore(`archive:${name}`, { archive }))) break;
    m += 1;
  }
  // Manifests: a field of a service record replaced by a random JSON value, or removed.
  const { inspectPath } = await import('../lib/index.js');
  const jsonValues = [null, -1, 0.5, 2 ** 60, '', 'x', '../../etc/passwd', [], [1], {}, { functions: 1 }, true];
  let k = 0;
  const manifestStarted = performance.now();
  while (performance.now() - manifestStarted < 5_000 && k < 300) {
    writeCase(base, dir, {});
    const manifestFile = path.join(dir, 'manifest.json');
    const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
    const record = manifest.services.counter;
    const field = pick([...Object.keys(record), 'name', 'services']);
    if (field === 'services') manifest.services = pick(jsonValues);
    else if (rng() < 0.2) delete record[field];
    else record[field] = pick(jsonValues);
    fs.writeFileSync(manifestFile, JSON.stringify(manifest));
    for (const what of ['restore', 'inspect'] as const) {
      let outcome = what === 'inspect' ? 'inspected' : 'restored';
      try {
        if (what === 'restore') await restoreSnapshot({ dir });
        else inspectPath(dir);
      } catch (error) {
        if (!isSnapshotError(error)) {
          t.fail(`manifest ${field} = ${JSON.stringify(record[field])} (FUZZ_SEED=${seed}): ${what} threw raw ${String((error as Error)?.stack ?? error)}`);
          break;
        }
        outcome = error.code;
      }
      (outcomes[`manifest:${what}`] ??= {})[outcome] = (outcomes[`manifest:${what}`]?.[outcome] ?? 0) + 1;
    }
    k += 1;
  }
  t.ok(k >= 30, `at least thirty damaged manifests were read (${k})`);

  t.comment(`${n} mutated logs, ${m} mutated archives and ${k} damaged manifests restored in-process in ${(performance.now() - started).toFixed(0)} ms: ${JSON.stringify(outcomes)}`);
  t.ok(n >= 100, `at least a hundred mutated logs were replayed (${n})`);
  t.ok(m >= 30, `at least thirty mutated archives were loaded (${m})`);
  t.ok(process.memoryUsage().rss < 1024 * 1024 * 1024, 'memory stayed bounded (rss < 1 GiB)');
  const archiveCodes = new Set(Object.entries(outcomes).filter(([k]) => k.startsWith('archive:')).flatMap(([, v]) => Object.keys(v)));
  // INTEGRITY_MISMATCH: a module's bytes changed, against the sha512 its compartment map records (load.ts checks
  // that before compartment-mapper reads the zip and its CRCs).
  for (const code of archiveCodes) t.ok(['restored', 'SERVICE_LOAD_FAILED', 'SNAPSHOT_INVALID', 'REPLAY_DIVERGED', 'MODULE_NOT_GRANTED', 'INTEGRITY_MISMATCH'].includes(code), `archive damage ends as ${code}`);

  // A sample through the real CLI: the same typed line and exit code 1, never "unexpected error".
  const cliSamples = [...samples.filter(s => s.log).slice(0, 2), ...samples.filter(s => s.archive).slice(0, 1)];
  t.ok(cliSamples.length === 3, `failing samples for the CLI (${cliSamples.length})`);
  for (const sample of cliSamples) {
    const caseDir = path.join(work, `cli-${cliSamples.indexOf(sample)}`);
    writeCase(base, caseDir, sample);
    const target = moveToTarget(caseDir);
    const restored = await snapshot(['restore', target, '--call', 'counter.bump']);
    t.equal(restored.code, 1, `restore of ${sample.what} exits 1`);
    t.match(restored.stderr, new RegExp(`^snapshot: ${sample.code}: `, 'm'), `restore of ${sample.what} says ${sample.code}`);
    t.notMatch(restored.stderr, /unexpected error/);
    if (sample.log) {
      const inspected = await snapshot(['inspect', path.join(target, 'counter', 'replay.log')]);
      t.notMatch(inspected.stderr, /unexpected error/, `inspect of ${sample.what} gives a typed error or a timeline`);
      if (inspected.code !== 0) {
        t.equal(inspected.code, 1);
        t.match(inspected.stderr, /^snapshot: (LOG_CORRUPT|LOG_TRUNCATED|LOG_VERSION_UNSUPPORTED): /m);
      }
    }
  }
});

type ArchiveMap = {
  entry: { compartment: string; module: string };
  compartments: Record<string, { location: string; modules: Record<string, { location?: string; sha512?: string } & Record<string, unknown>> }>;
};

/** The base snapshot's archive as files, its compartment map's file, and the map parsed. */
const archiveFiles = (base: Snapshot): { files: Array<{ name: string; content: Uint8Array }>; mapFile: { name: string; content: Uint8Array }; map: ArchiveMap } => {
  const files = [...new ZipReader(base.archive).files.values()].map(file => ({ name: file.name, content: file.content }));
  const mapFile = files.find(file => file.name === 'compartment-map.json');
  if (!mapFile) throw new Error('the archive has no compartment map');
  return { files, mapFile, map: JSON.parse(new TextDecoder().decode(mapFile.content)) as ArchiveMap };
};

/** What restoring `dir` in this process throws (undefined when it restores). */
const restoreError = async (dir: string): Promise<unknown> => {
  const { restoreSnapshot } = await import('../lib/index.js');
  return restoreSnapshot({ dir }).then(
    () => undefined,
    (e: unknown) => e,
  );
};

t.test('a module whose descriptor lost its sha512 is refused, its bytes changed or not, whatever the zip layout', async t => {
  const base = await buildBase();
  const { files, map } = archiveFiles(base);
  const [compartment, modules] = Object.entries(map.compartments).find(([, c]) => Object.values(c.modules ?? {}).some(m => m.location?.endsWith('counter.js'))) ?? [];
  const module = Object.values(modules?.modules ?? {}).find(m => m.location?.endsWith('counter.js'));
  if (!compartment || !module?.location) throw new Error('no counter.js module in the map');
  delete module.sha512;
  const moduleName = `${compartment}/${module.location}`;
  const altered = files.map(file => {
    if (file.name === 'compartment-map.json') return { name: file.name, content: new TextEncoder().encode(JSON.stringify(map)) };
    if (file.name === moduleName) return { name: file.name, content: new TextEncoder().encode(new TextDecoder().decode(file.content).replace('count += 1', 'count += 1000')) };
    return file;
  });
  // The same files with a zip comment after the end record: a layout no build writes, which load.ts leaves to
  // compartment-mapper's own check (computeSha512).
  const ours = writeStoredZip(altered);
  const comment = Buffer.from('a comment');
  const commented = Buffer.concat([ours, comment]);
  commented.writeUInt16LE(comment.length, ours.length - 2);
  const layouts = [['the layout a build writes', ours], ['a zip with a comment', commented]] as const;
  for (const [what, archive] of layouts) {
    const dir = path.join(work, `unhashed-${what.length}`);
    writeCase(base, dir, { archive });
    const error = await restoreError(dir);
    t.match(error, { code: 'INTEGRITY_MISMATCH', message: /module .*counter\.js of package .* has no sha512 in its archive's compartment map, which every archive a build writes has: the archive was altered after the build/ }, `${what}: refused`);
  }
  const verified = await snapshot(['verify', moveToTarget(path.join(work, `unhashed-${layouts[1][0].length}`))]);
  t.equal(verified.code, 1, 'verify refuses it too');
  t.match(verified.stdout + verified.stderr, /INTEGRITY_MISMATCH/);
});

t.test("a compartment map whose links lead nowhere is refused before the service runs, not taken for a divergence", async t => {
  const base = await buildBase();
  const { files, mapFile, map: original } = archiveFiles(base);
  const root = original.entry.compartment;
  const cases: Array<[string, (map: ArchiveMap) => void, RegExp]> = [
    ['an entry compartment not in the map', map => (map.entry.compartment = 'nowhere'), /names "nowhere" as the entry's compartment/],
    ['an entry compartment named hasOwnProperty', map => (map.entry.compartment = 'hasOwnProperty'), /names "hasOwnProperty" as the entry's compartment/],
    ['an entry module not in its compartment', map => (map.entry.module = './gone.js'), /names "\.\/gone\.js" as the entry module/],
    ["a compartment's location not its name", map => (map.compartments[root].location = 'elsewhere'), /gives compartment ".+" the location "elsewhere"/],
    ['a link to a compartment not in the map', map => (map.compartments[root].modules['./linked.js'] = { compartment: 'nowhere', module: './x.js' }), /links module "\.\/linked\.js" .* to "\.\/x\.js" of "nowhere"/],
    ['a link to a module its compartment does not hold', map => (map.compartments[root].modules['./linked.js'] = { compartment: root, module: './gone.js' }), /links module "\.\/linked\.js" .* to "\.\/gone\.js"/],
  ];
  for (const [what, change, says] of cases) {
    const map = structuredClone(original);
    change(map);
    const dir = path.join(work, `links-${cases.findIndex(c => c[0] === what)}`);
    writeCase(base, dir, { archive: writeStoredZip(files.map(file => (file === mapFile ? { name: file.name, content: new TextEncoder().encode(JSON.stringify(map)) } : file))) });
    const error = await restoreError(dir);
    t.match(error, { code: 'SERVICE_LOAD_FAILED', message: says }, `${what}: refused, saying what`);
    t.match(error, { message: /which no build writes: the archive was altered after the build/ });
  }
});

t.test('an archive that holds a file name twice (also once behind a byte-order mark) is refused, whichever copy comes first', async t => {
  const base = await buildBase();
  const { restoreSnapshot } = await import('../lib/index.js');
  const reader = new ZipReader(base.archive);
  const files = [...reader.files.values()].map(file => ({ name: file.name, content: file.content }));
  const map = files.find(file => file.name === 'compartment-map.json');
  if (!map) throw new Error('the archive has no compartment map');
  // A map that names another compartment as the entry: read by whichever reader takes that copy.
  const forged = { name: 'compartment-map.json', content: new TextEncoder().encode(JSON.stringify({ ...JSON.parse(new TextDecoder().decode(map.content)), entry: { compartment: 'elsewhere', module: './x.js' } })) };
  const rest = files.filter(file => file !== map);
  const cases: Array<[string, typeof files]> = [
    ['the name twice', [forged, ...files]],
    ['the forged copy first, the real one behind a byte-order mark', [forged, ...rest, { ...map, name: '\uFEFFcompartment-map.json' }]],
    ['the real copy first, the forged one behind a byte-order mark', [...files, { ...forged, name: '\uFEFFcompartment-map.json' }]],
    ['a module twice, once behind a byte-order mark', [...files, { ...rest[rest.length - 1], name: `\uFEFF${rest[rest.length - 1].name}` }]],
  ];
  for (const [what, entries] of cases) {
    const dir = path.join(work, `twice-${cases.findIndex(c => c[0] === what)}`);
    writeCase(base, dir, { archive: writeStoredZip(entries) });
    const error = await restoreSnapshot({ dir }).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.match(error, { code: 'SNAPSHOT_INVALID', message: /^service "counter": its archive holds two files named ".+", which no build writes: the archive was altered after the build/ }, `${what}: refused, saying what happened`);
  }
  const verified = await snapshot(['verify', moveToTarget(path.join(work, 'twice-1'))]);
  t.equal(verified.code, 1, 'verify refuses it too');
  t.match(verified.stdout + verified.stderr, /SNAPSHOT_INVALID/);
});

/**
 * `second` placed behind `first` so that @endo/zip's reader reads `second`'s files under their names: the end
 * record gives `first`'s central directory offset, and a size that leaves a gap before the end record, which that
 * reader takes for bytes put in front of the zip and shifts every offset by (to `second`). Both are stored zips of
 * ours without comments.
 */
const behindFirst = (first: Uint8Array, second: Uint8Array): Uint8Array => {
  const parts = (bytes: Uint8Array) => {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const end = bytes.length - 22;
    const size = view.getUint32(end + 12, true);
    const offset = view.getUint32(end + 16, true);
    return { files: bytes.subarray(0, offset), directory: bytes.subarray(offset, offset + size), end: bytes.subarray(end), offset };
  };
  const a = parts(first);
  const b = parts(second);
  const at = Math.max(a.offset, b.offset); // both central directories at this offset, each from its own start
  const firstPart = Buffer.concat([a.files, Buffer.alloc(at - a.offset), a.directory]);
  const secondPart = Buffer.concat([b.files, Buffer.alloc(at - b.offset), b.directory]);
  const shift = firstPart.length;
  // @endo/zip's BufferReader counts its offset twice in its bounds checks: room behind the second zip.
  const total = shift + secondPart.length + shift + 22;
  const end = Buffer.from(b.end);
  end.writeUInt32LE(total - 22 - at - shift, 12);
  end.writeUInt32LE(at, 16);
  return new Uint8Array(Buffer.concat([firstPart, secondPart, Buffer.alloc(shift), end]));
};

t.test('an archive rewritten (its hashes in the manifest recomputed) with a module changed, a file added or its map damaged is refused before anything runs', async t => {
  const base = await buildBase();
  const { restoreSnapshot } = await import('../lib/index.js');
  const files = [...new ZipReader(base.archive).files.values()].map(file => ({ name: file.name, content: file.content }));
  const module = files.find(file => file.name.endsWith('.js'));
  if (!module) throw new Error('the archive has no module');
  const changed = files.map(file => (file === module ? { ...file, content: new TextEncoder().encode(`${new TextDecoder().decode(file.content)}\n// changed\n`) } : file));
  const integrity = /^INTEGRITY_MISMATCH: service "counter": module \S+\.js of package \S+ in its archive does not match the sha512 its compartment map records: the archive was altered after the build/;
  // The map with one file module changed: its location to a file the archive lacks, or its parser to none there is.
  const mapFile = files.find(file => file.name === 'compartment-map.json') as (typeof files)[number];
  const withModule = (change: (descriptor: Record<string, unknown>) => void): typeof files => {
    const map = JSON.parse(new TextDecoder().decode(mapFile.content)) as { compartments: Record<string, { modules: Record<string, Record<string, unknown>> }> };
    const descriptor = Object.values(map.compartments)
      .flatMap(compartment => Object.values(compartment.modules))
      .find(candidate => typeof candidate.location === 'string' && module.name.endsWith(candidate.location));
    if (!descriptor) throw new Error('no module descriptor names the module');
    change(descriptor);
    return files.map(file => (file === mapFile ? { ...file, content: new TextEncoder().encode(JSON.stringify(map)) } : file));
  };
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['a module changed', writeStoredZip(changed), integrity],
    ['a file no module uses', writeStoredZip([...files, { name: 'extra/x.js', content: new TextEncoder().encode('globalThis.x = 1;') }]), /^SERVICE_LOAD_FAILED: service "counter": its archive does not load: Archive contains extraneous files: \["extra\/x\.js"\]/],
    // Found by the adversarial review: a second zip after the real one, its central directory placed so that
    // @endo/zip's reader takes the real one for bytes put in front of it; it read the changed module, where a
    // reader taking the offsets as written read the real one (and its sha512 matched).
    ['a second zip behind the first, holding the module changed', behindFirst(writeStoredZip(files), writeStoredZip(changed)), integrity],
    // Before the service runs, not as a divergence of its replay (found by the adversarial review).
    ['a module whose file the archive lacks', writeStoredZip(withModule(descriptor => (descriptor.location = 'services/missing.js'))), /^SERVICE_LOAD_FAILED: service "counter": its archive does not load: .*Cannot find file \S+\/services\/missing\.js/],
    ['a module with a parser there is none of', writeStoredZip(withModule(descriptor => (descriptor.parser = 'nope'))), /^SERVICE_LOAD_FAILED: service "counter": its archive does not load: .*unknown parser \("nope"\)/],
  ];
  for (const [what, archive, expected] of cases) {
    const dir = path.join(work, `rewritten-${cases.findIndex(c => c[0] === what)}`);
    writeCase(base, dir, { archive });
    const error = (await restoreSnapshot({ dir }).then(
      () => undefined,
      (e: unknown) => e,
    )) as { code?: string; message?: string } | undefined;
    t.match(`${error?.code}: ${error?.message}`, expected, `${what}: refused, saying what happened`);
  }
  // The compartment map's bytes changed and its CRC-32 not: compartment-mapper's reader refuses it (in the CLI, with
  // the restore bundle's CRC-32, zlib's in place of @endo/zip's: tools/bundle-restore.mjs).
  const damaged = writeStoredZip(files);
  const mapAt = Buffer.from(damaged).indexOf('"compartments"');
  damaged[mapAt + 1] = 'C'.charCodeAt(0);
  const crcCase = path.join(work, 'rewritten-crc');
  writeCase(base, crcCase, { archive: damaged });
  const refused = await snapshot(['restore', crcCase]);
  t.equal(refused.code, 1, 'a compartment map whose CRC-32 does not match: refused');
  t.match(refused.stderr, /^snapshot: SERVICE_LOAD_FAILED: service "counter": its archive does not load: .*CRC-32 checksum mismatch/m, 'saying so');
  const unchanged = path.join(work, 'rewritten-same');
  writeCase(base, unchanged, { archive: writeStoredZip(files) });
  const restored = await restoreSnapshot({ dir: unchanged });
  t.match(await (restored.services.get('counter')?.exports.bump as () => Promise<unknown>)(), { count: 4 }, 'the same files rewritten restore, with the state the build left');
});

t.test("a log whose call answers a number from those of a restored service's live calls (2^48 on) is refused", async t => {
  // Such a logged answer settled the live call given that number (found by the adversarial review): refused as damage.
  const base = await buildBase();
  const { restoreSnapshot } = await import('../lib/index.js');
  const reader = LogReader.open(base.log, 'base.log');
  const sink = memorySink();
  const writer = new LogWriter(sink, reader.header);
  let renumbered = 0;
  for (const { entry } of reader.entries()) {
    if ((entry.kind === 'call' || entry.kind === 'ret') && entry.answer === 1) {
      writer.entry({ ...entry, answer: 2 ** 48 });
      renumbered += 1;
    } else writer.entry(entry);
  }
  writer.seal();
  t.equal(renumbered, 2, 'the call of answer 1 and its ret renumbered');
  const dir = path.join(work, 'live-answer');
  writeCase(base, dir, { log: sink.bytes() });
  const error = await restoreSnapshot({ dir }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.match(error, { code: 'LOG_CORRUPT' }, 'refused as a damaged log');
});
