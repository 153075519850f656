// Each kind of damage named in issue 11 (items 9 to 11), as a class: the reader,
// restore and inspect answer with a typed error, and inspect streams whatever
// is whole before the damage, in bounded memory.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import { FORMAT_NAME, FORMAT_VERSION, LogReader, LogWriter, fileSink, isSnapshotError, memorySink, packr, Slot, Tagged, type Entry, type LogHeader } from '../replay-log/index.js';
import { cliPath, fixture, moveToTarget, snapshot, tempDir, withoutTapHooks } from './helpers.js';

const work = tempDir('damaged');
const header: LogHeader = { format: FORMAT_NAME, version: 1, service: 'damaged', archiveSha256: 'ab'.repeat(32), libraryVersion: '0.0.0-test' };
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** A log with one frame per `perFrame` entries. */
const write = (entries: Entry[], perFrame = 2, seal = true, head: LogHeader = header): Buffer => {
  const sink = memorySink();
  const writer = new LogWriter(sink, head);
  for (const [i, entry] of entries.entries()) {
    writer.entry(entry);
    if (i % perFrame === perFrame - 1) writer.flush();
  }
  if (seal) writer.seal();
  else writer.abandon();
  return Buffer.from(sink.bytes());
};

/** Frame offsets of a log (file offsets of each frame's type byte). */
const frameOffsets = (bytes: Buffer): number[] => {
  const out: number[] = [];
  for (let pos = 8; pos < bytes.length; pos += 9 + bytes.readUInt32LE(pos + 1)) out.push(pos);
  return out;
};

/** Replace frame #i's payload (type kept unless given), with a valid CRC. */
const withFrame = (bytes: Buffer, i: number, payload: Uint8Array, type?: number): Buffer => {
  const offsets = frameOffsets(bytes);
  const at = offsets[i];
  const end = at + 9 + bytes.readUInt32LE(at + 1);
  const head = Buffer.alloc(9);
  head[0] = type ?? bytes[at];
  head.writeUInt32LE(payload.byteLength, 1);
  head.writeUInt32LE(frameCrc(head[0], payload), 5);
  return Buffer.concat([bytes.subarray(0, at), head, payload, bytes.subarray(end)]);
};

/** The frame checksum the writer uses: CRC-32 (zlib.crc32) of the type byte, then the payload. */
const zlibCrc = (zlib as unknown as { crc32(data: Uint8Array, value?: number): number }).crc32;
const frameCrc = (type: number, payload: Uint8Array): number => zlibCrc(payload, zlibCrc(Uint8Array.of(type))) >>> 0;

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    return isSnapshotError(error) ? error.code : `raw: ${String(error)}`;
  }
  return 'ok';
};
const readAll = (bytes: Uint8Array) => () => [...LogReader.open(bytes, 'damaged.log').entries()];

const base: Entry[] = [
  { kind: 'start' },
  { kind: 'now', value: 1795000000000 },
  { kind: 'sys', op: 'fetch', args: ['http://h/'], outcome: { type: 'async', promise: 1 } },
  { kind: 'ret', answer: 0, ok: true, value: { get: new Slot('guest', 0, 'function get') } },
  { kind: 'settle', promise: 1, ok: true, value: 'body' },
  { kind: 'now', value: 1795000000001 },
];

t.test('entries of the wrong shape are LOG_CORRUPT, whatever field is wrong', async t => {
  const msgEntry = (tuple: unknown[]): Buffer => {
    const body = packr.pack(tuple);
    return Buffer.concat([Buffer.from([0x10, body.byteLength]), body]);
  };
  const startEntry = msgEntry(['start']);
  const cases: Record<string, Buffer> = {
    'a now of NaN': Buffer.concat([startEntry, Buffer.from([0x01]), Buffer.from(new Float64Array([NaN]).buffer)]),
    'a now past the range of Date': Buffer.concat([startEntry, Buffer.from([0x01]), Buffer.from(new Float64Array([1e300]).buffer)]),
    'a performance.now() of Infinity': Buffer.concat([startEntry, Buffer.from([0x02]), Buffer.from(new Float64Array([Infinity]).buffer)]),
    'call args that are not a list (values.map)': Buffer.concat([startEntry, msgEntry(['call', 0, 'f', 'not a list', 1])]),
    'a call on a negative target': Buffer.concat([startEntry, msgEntry(['call', -1, 'f', [], 1])]),
    'a settle whose ok is not a boolean': Buffer.concat([startEntry, msgEntry(['settle', 1, 'yes', 1])]),
    'a settle of promise 1.5': Buffer.concat([startEntry, msgEntry(['settle', 1.5, true, 1])]),
    'a send to a guest slot': Buffer.concat([startEntry, msgEntry(['send', new Slot('guest', 1), null, [], 0, 1])]),
    'an outcome code of 7': Buffer.concat([startEntry, msgEntry(['send', new Slot('host', 1), null, [], 7, 1])]),
    'a timer id that is a string': Buffer.concat([startEntry, msgEntry(['timer', 'x'])]),
    'a tuple with an extra field': Buffer.concat([startEntry, msgEntry(['ret', 0, true, 1, 'extra'])]),
    'a second start': Buffer.concat([startEntry, startEntry]),
    'a log that does not open with start': msgEntry(['timer', 1]),
    'a bigint that is not digits': Buffer.concat([startEntry, msgEntry(['ret', 0, true, new Tagged('bigint', '12x')])]),
    'a map that is not a list of pairs': Buffer.concat([startEntry, msgEntry(['ret', 0, true, new Tagged('map', 'k')])]),
    'an error without a message': Buffer.concat([startEntry, msgEntry(['ret', 0, false, new Tagged('error', { name: 'Error' })])]),
    'a slot with a fractional id': Buffer.concat([startEntry, msgEntry(['ret', 0, true, new Slot('guest', 0.5)])]),
    'a sys op used before its name is defined': Buffer.concat([startEntry, Buffer.from([0x11, 0x05, 0x01, 0xc0])]),
    'an unknown entry tag': Buffer.concat([startEntry, Buffer.from([0x7f])]),
    'a length that runs past its frame': Buffer.concat([startEntry, Buffer.from([0x04, 0x40, 1, 2])]),
  };
  for (const [what, payload] of Object.entries(cases)) {
    let bytes = write(base.slice(0, 1), 1);
    // Replace the single entries frame, and make the closing count agree with the damaged one.
    bytes = withFrame(bytes, 1, payload);
    const events = what === 'a log that does not open with start' ? 1 : 2;
    bytes = withFrame(bytes, 2, packr.pack({ events }));
    t.equal(codeOf(readAll(bytes)), 'LOG_CORRUPT', what);
  }
});

t.test('kept and repeat entries that no writer produces are LOG_CORRUPT', async t => {
  const v2: LogHeader = { ...header, version: FORMAT_VERSION };
  const startEntry = (() => {
    const body = packr.pack(['start']);
    return Buffer.concat([Buffer.from([0x10, body.byteLength]), body]);
  })();
  const opName = Buffer.concat([Buffer.from([0x12, 7]), Buffer.from('env.get')]);
  /** A kept entry (0x13) of op 0 replacing `was`, with this tuple. */
  const kept = (was: number, tuple: unknown[]): Buffer => {
    const body = packr.pack(tuple);
    const length = body.byteLength < 0x80 ? [body.byteLength] : [(body.byteLength & 0x7f) | 0x80, body.byteLength >> 7];
    return Buffer.concat([Buffer.from([0x13, 0, was, ...length]), body]);
  };
  const good = kept(0, [['HOME'], 0, '/root']);
  const cases: Record<string, [Buffer, number, LogHeader?]> = {
    'a repeat of an entry that is not kept (the start)': [Buffer.concat([startEntry, opName, good, Buffer.from([0x14, 0])]), 3],
    'a repeat of a later entry': [Buffer.concat([startEntry, Buffer.from([0x14, 2]), opName, good]), 3],
    'a kept entry in a version 1 log': [Buffer.concat([startEntry, opName, good]), 2, header],
    'a repeat in a version 1 log': [Buffer.concat([startEntry, opName, good, Buffer.from([0x14, 1])]), 3, header],
    'a kept entry replacing one that is not kept': [Buffer.concat([startEntry, opName, kept(1, [['HOME'], 0, '/root'])]), 2],
    'a kept entry replacing one already replaced': [Buffer.concat([startEntry, opName, good, kept(2, [['HOME'], 0, '/x']), kept(2, [['HOME'], 0, '/y'])]), 4],
    'a kept entry replacing one of another argument': [Buffer.concat([startEntry, opName, good, kept(2, [['PATH'], 0, '/bin'])]), 3],
    'a kept entry with two arguments': [Buffer.concat([startEntry, opName, kept(0, [['a', 'b'], 0, 'v'])]), 2],
    'a kept entry that threw': [Buffer.concat([startEntry, opName, kept(0, [['a'], 1, 'v'])]), 2],
    'a kept entry returning an object': [Buffer.concat([startEntry, opName, kept(0, [['a'], 0, { v: 1 }])]), 2],
    'a kept entry larger than KEPT_MAX_BYTES': [Buffer.concat([startEntry, opName, kept(0, [['a'], 0, 'v'.repeat(9000)])]), 2],
    'more than MAX_KEPT kept entries at once': [Buffer.concat([startEntry, opName, ...Array.from({ length: 1025 }, (_, i) => kept(0, [[`k${i}`], 0, true]))]), 1026],
  };
  t.equal(codeOf(readAll(withFrame(withFrame(write(base.slice(0, 1), 1, true, v2), 1, Buffer.concat([startEntry, opName, good, Buffer.from([0x14, 1])])), 2, packr.pack({ events: 3 })))), 'ok', 'the well-formed version reads');
  for (const [what, [payload, events, head]] of Object.entries(cases)) {
    let bytes = write(base.slice(0, 1), 1, true, head ?? v2);
    bytes = withFrame(bytes, 1, payload);
    bytes = withFrame(bytes, 2, packr.pack({ events }));
    t.equal(codeOf(readAll(bytes)), 'LOG_CORRUPT', what);
  }
});

t.test('syscalls may come before the start delivery (the values of a granted module are read then)', async t => {
  const bytes = write([{ kind: 'sys', op: 'module:greeter.version', args: [], outcome: { type: 'return', value: '1.0' } }, ...base]);
  t.equal(codeOf(readAll(bytes)), 'ok');
  t.same([...LogReader.open(bytes, 'x').entries()].map(e => e.entry.kind).slice(0, 2), ['sys', 'start']);
});

t.test('frames and the closing frame: damage that keeps valid checksums is still LOG_CORRUPT', async t => {
  const good = write(base);
  t.equal(codeOf(readAll(good)), 'ok', 'the undamaged log reads');
  const offsets = frameOffsets(good);
  const frames = offsets.map((at, i) => good.subarray(at, offsets[i + 1] ?? good.length));
  const [magic, headerFrame, e1, e2, e3, end] = [good.subarray(0, 8), ...frames];
  const join = (...parts: Buffer[]) => Buffer.concat(parts);
  t.equal(codeOf(readAll(join(magic, headerFrame, e3, e2, e1, end))), 'LOG_CORRUPT', 'frames swapped so that a delivery (settle) comes before start');
  t.equal(codeOf(readAll(join(magic, headerFrame, e1, e2, e1, end))), 'LOG_CORRUPT', 'a frame swapped for a copy of the first: a second start');
  // Later frames swapped keep a readable log; replay then diverges or finds the settle
  // of an unknown promise (the restore test below, and the fuzz test).
  t.equal(codeOf(readAll(join(magic, headerFrame, e1, e3, e2, end))), 'ok', 'later frames swapped still read');
  t.equal(codeOf(readAll(join(magic, headerFrame, e1, e3, end))), 'LOG_CORRUPT', 'a frame removed: the closing count differs');
  t.equal(codeOf(readAll(join(magic, headerFrame, e1, e2, e2, e3, end))), 'LOG_CORRUPT', 'a frame repeated');
  t.equal(codeOf(readAll(join(magic, e1, headerFrame, e2, e3, end))), 'LOG_CORRUPT', 'entries before the header');
  t.equal(codeOf(readAll(withFrame(good, 4, new Uint8Array(0)))), 'LOG_CORRUPT', 'an empty closing frame');
  t.equal(codeOf(readAll(withFrame(good, 4, packr.pack({ events: 99 })))), 'LOG_CORRUPT', 'a closing frame that miscounts');
  t.equal(codeOf(readAll(withFrame(good, 4, packr.pack({ events: 'six' })))), 'LOG_CORRUPT', 'a closing frame with a count that is not a number');
  t.equal(codeOf(readAll(withFrame(good, 4, packr.pack([6])))), 'LOG_CORRUPT', 'a closing frame that is not a record');
  t.equal(codeOf(readAll(withFrame(good, 2, new Uint8Array(0)))), 'LOG_CORRUPT', 'an empty entries frame');
  t.equal(codeOf(readAll(withFrame(good, 0, packr.pack({ format: FORMAT_NAME, version: 1 })))), 'LOG_CORRUPT', 'a header without its fields');
  for (const length of [0xffffffff, 0x7fffffff, 2 ** 30 + 1]) {
    const huge = Buffer.from(good);
    huge.writeUInt32LE(length, offsets[2] + 1);
    const error = (() => {
      try {
        readAll(huge)();
      } catch (e) {
        return e;
      }
    })();
    t.ok(isSnapshotError(error) && error.code === 'LOG_CORRUPT', `a frame length of ${length} is damage, not truncation`);
    t.match((error as Error).message, new RegExp(`a frame length of ${length} bytes .* at byte ${offsets[2]}`));
  }
  const cut = good.subarray(0, offsets[3] + 12);
  t.equal(codeOf(readAll(cut)), 'LOG_TRUNCATED', 'a file cut inside a frame is a truncation');
});

t.test('a writer whose sink failed never writes or seals again (a half-written frame is never sealed as good)', async t => {
  const written: Uint8Array[] = [];
  let fail = false;
  const sink = {
    write(bytes: Uint8Array) {
      if (fail) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
      written.push(Buffer.from(bytes));
    },
    close() {},
  };
  const writer = new LogWriter(sink, header);
  writer.entry({ kind: 'start' });
  writer.flush();
  const good = written.length;
  fail = true;
  writer.now(1);
  t.throws(() => writer.flush(), { code: 'ENOSPC' });
  fail = false; // the disk has room again: the log must still not be sealed
  writer.now(2);
  t.throws(() => writer.flush(), { code: 'ENOSPC' }, 'the failure is latched');
  t.throws(() => writer.seal(), { code: 'ENOSPC' }, 'and sealing refuses');
  t.doesNotThrow(() => writer.abandon(), 'abandoning closes what there is');
  t.equal(written.length, good, 'nothing written after the failure');
  t.equal(codeOf(() => LogReader.open(Buffer.concat(written), 'x', { allowUnsealed: true })), 'ok', 'what was written before is a readable log');
});

const runInspect = (file: string, nodeArgs: string[] = []): Promise<{ code: number | null; lines: number; head: string; tail: string; stderr: string }> =>
  new Promise((resolve, reject) => {
    // Count the output instead of keeping it: it may be hundreds of megabytes.
    const child = spawn(...withoutTapHooks(process.execPath, [...nodeArgs, cliPath, 'inspect', file]), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
    let lines = 0;
    let head = '';
    let tail = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      for (let i = chunk.indexOf('\n'); i !== -1; i = chunk.indexOf('\n', i + 1)) lines += 1;
      if (head.length < 4096) head += chunk.slice(0, 4096);
      tail = (tail + chunk).slice(-4096);
    });
    child.stderr.on('data', d => (stderr += d));
    child.on('error', reject);
    child.on('close', code => resolve({ code, lines, head, tail, stderr }));
  });

t.test('inspect streams: a long log in bounded memory', async t => {
  // 200k clock reads: the whole-file dump this replaces needed about 160 MB for
  // them and died under this heap limit; streamed, it needs a few MB.
  const file = path.join(work, 'long.log');
  const events = 200_000;
  const writer = new LogWriter(fileSink(file), header);
  writer.entry({ kind: 'start' });
  for (let i = 1; i < events; i += 1) writer.now(1795000000000 + i);
  writer.seal();
  const run = await runInspect(file, ['--max-old-space-size=64']);
  t.equal(run.code, 0, run.stderr);
  t.equal(run.lines, events + 7, 'one line per event, the header, status and totals');
  t.match(run.tail, new RegExp(`sealed, ${events} events, ${fs.statSync(file).size} bytes\\n  totals by kind:\\n    start +1 entries +9 bytes\\n    now +${events - 1} entries +${(events - 1) * 9} bytes\\n$`));
});

t.test('inspect shows every whole frame before the damage, then says where and why it stops', async t => {
  const entries: Entry[] = [];
  entries.push({ kind: 'start' });
  for (let i = 1; i < 40; i += 1) entries.push({ kind: 'now', value: 1795000000000 + i });
  const good = write(entries, 10, true);
  const offsets = frameOffsets(good);
  // Cut in the middle of the last entries frame (events 30..39).
  const cutFile = path.join(work, 'cut.log');
  fs.writeFileSync(cutFile, good.subarray(0, offsets[4] + 20));
  let run = await runInspect(cutFile);
  t.equal(run.code, 1);
  t.match(run.head, /service damaged, format v1/);
  t.match(run.head, /^ {5}29 @ +\d+ +9B {3}Date\.now\(\) -> 1795000000029 /m, 'the last event of the last whole frame is shown');
  t.notMatch(run.head, /^ {5}30 @/m, 'nothing from the cut frame');
  t.match(run.tail, new RegExp(`STOPS at byte ${offsets[4]} after 30 whole events: LOG_TRUNCATED\\n  totals by kind:\\n    start +1 entries`));
  t.match(run.stderr, new RegExp(`^snapshot: LOG_TRUNCATED: .*cut\\.log: a frame of \\d+ bytes runs past the end of the file .* at byte ${offsets[4]}\\.`, 'm'));
  t.notMatch(run.stderr, /unexpected error|\n\s+at /);

  // A damaged frame in the middle: the frames before it are shown, then LOG_CORRUPT.
  const flipped = Buffer.from(good);
  flipped[offsets[3] + 30] ^= 0x40;
  const flippedFile = path.join(work, 'flipped.log');
  fs.writeFileSync(flippedFile, flipped);
  run = await runInspect(flippedFile);
  t.equal(run.code, 1);
  t.match(run.head, /^ {5}19 @/m);
  t.notMatch(run.head, /^ {5}20 @/m);
  t.match(run.tail, new RegExp(`STOPS at byte ${offsets[3]} after 20 whole events: LOG_CORRUPT`));
  t.match(run.stderr, new RegExp(`^snapshot: LOG_CORRUPT: .*checksum mismatch in a frame at byte ${offsets[3]}`, 'm'));

  // An unsealed log cut at a frame boundary (a build that failed) reads whole, exit 0.
  const unsealedFile = path.join(work, 'unsealed.log');
  fs.writeFileSync(unsealedFile, write(entries, 10, false));
  run = await runInspect(unsealedFile);
  t.equal(run.code, 0, run.stderr);
  t.match(run.tail, /NOT SEALED: the build did not finish; \d+ bytes are readable\n  totals by kind:/);
});

t.test('inspect piped into a reader that stops early (| head) exits quietly', async t => {
  const file = path.join(work, 'head.log');
  const writer = new LogWriter(fileSink(file), header);
  writer.entry({ kind: 'start' });
  for (let i = 1; i < 50_000; i += 1) writer.now(1795000000000 + i);
  writer.seal();
  const run = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(...withoutTapHooks(process.execPath, [cliPath, 'inspect', file]), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
    let stderr = '';
    child.stdout.once('data', () => child.stdout.destroy());
    child.stderr.on('data', d => (stderr += d));
    child.on('error', reject);
    child.on('close', code => resolve({ code, stderr }));
  });
  t.equal(run.code, 0);
  t.equal(run.stderr, '', 'no EPIPE stack');
});

t.test('restore: a log that settles a promise the service never made is LOG_CORRUPT, not a raw error', async t => {
  const out = path.join(work, 'counter');
  const built = await snapshot(['build', 'build-counter.mjs', '--out', out], { cwd: fixture('misc') });
  t.equal(built.code, 0, built.stderr);
  const target = moveToTarget(out);
  const logFile = path.join(target, 'counter', 'replay.log');
  const reader = LogReader.open(fs.readFileSync(logFile), logFile);
  // Rewrite the log (as someone who also rewrites the manifest's hash would) with a stray settle.
  const writer = new LogWriter(fileSink(logFile), reader.header);
  for (const { entry } of reader.entries()) {
    if (entry.kind === 'call') writer.entry({ kind: 'settle', promise: 5, ok: true, value: null });
    writer.entry(entry);
    writer.flush();
  }
  writer.seal();
  const manifestFile = path.join(target, 'manifest.json');
  const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
  manifest.services.counter.logSha256 = sha256(fs.readFileSync(logFile));
  manifest.services.counter.logBytes = fs.statSync(logFile).size;
  manifest.services.counter.events = LogReader.open(fs.readFileSync(logFile), logFile).trailer?.events; // its event count too
  fs.writeFileSync(manifestFile, JSON.stringify(manifest));
  let run = await snapshot(['restore', target, '--call', 'counter.bump']);
  t.equal(run.code, 1);
  t.match(run.stderr, /^snapshot: LOG_CORRUPT: service "counter": the log settles promise #5 at event \d+, but the service waits on no such promise\./m);
  t.notMatch(run.stderr, /unexpected error/);
  const verified = await snapshot(['verify', target]);
  t.equal(verified.code, 1);
  t.match(verified.stdout, /FAIL\s+counter: LOG_CORRUPT: /);

  // Damage the hash check cannot see (the manifest rewritten too): the reader's checks answer.
  const good = fs.readFileSync(path.join(out, 'counter', 'replay.log'));
  const damages: Array<[string, Buffer, RegExp]> = [
    ['a flipped byte', (() => { const b = Buffer.from(good); b[b.length - 30] ^= 0xff; return b; })(), /^snapshot: LOG_CORRUPT: .*replay\.log: checksum mismatch in a frame at byte \d+/m],
    ['a cut', good.subarray(0, good.length - 7), /^snapshot: LOG_TRUNCATED: .*replay\.log: .* at byte \d+/m],
  ];
  for (const [what, bytes, expected] of damages) {
    fs.writeFileSync(logFile, bytes);
    manifest.services.counter.logSha256 = sha256(bytes);
    manifest.services.counter.logBytes = bytes.byteLength;
    fs.writeFileSync(manifestFile, JSON.stringify(manifest));
    run = await snapshot(['restore', target, '--call', 'counter.bump']);
    t.equal(run.code, 1, what);
    t.match(run.stderr, expected, what);
  }
});
