// The replay log as data: golden bytes for every entry kind, and damage detection.
import t from 'tap';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  LogReader,
  LogWriter,
  Slot,
  Tagged,
  describeEntry,
  isSnapshotError,
  memorySink,
  packr,
  FORMAT_NAME,
  FORMAT_VERSION,
  type Entry,
  type LogHeader,
} from '../replay-log/index.js';
import { frameCrc } from '../replay-log/crc.js';

const header: LogHeader = { format: FORMAT_NAME, version: 1, service: 'golden', archiveSha256: 'ab'.repeat(32), libraryVersion: '0.0.0-test' };

/** One entry of every kind, with values of every wire type. */
const everyKind: Entry[] = [
  { kind: 'start' },
  { kind: 'now', value: 1795000000123 },
  { kind: 'perf', value: 12.5 },
  { kind: 'seed', seed: Uint8Array.from({ length: 16 }, (_, i) => i) },
  { kind: 'random', bytes: Uint8Array.of(9, 8, 7) },
  { kind: 'sys', op: 'fs.readFileSync', args: ['/etc/x', 'utf8'], outcome: { type: 'return', value: 'text' } },
  { kind: 'sys', op: 'fetch', args: [{ url: 'http://h/', method: 'GET', headers: [], body: null }], outcome: { type: 'async', promise: 1 } },
  { kind: 'sys', op: 'fs.statSync', args: ['/nope'], outcome: { type: 'throw', value: new Tagged('error', { name: 'Error', message: 'ENOENT', props: { code: 'ENOENT' } }) } },
  { kind: 'settle', promise: 1, ok: true, value: { status: 200, body: Uint8Array.of(1, 2), when: new Date(0), big: new Tagged('bigint', '12345678901234567890'), neg: new Tagged('-0', 0) } },
  { kind: 'call', target: 3, method: 'init', args: [new Slot('host', 1, 'function log'), [1, 'two', null, undefined, true]], answer: 7 },
  { kind: 'call', target: 4, method: null, args: [new Tagged('map', [['k', 1]]), new Set([1, 2])], answer: 8 },
  { kind: 'send', target: new Slot('host', 1, 'function log'), method: null, args: ['hi'], outcome: { type: 'return', value: undefined } },
  { kind: 'timer', timer: 2 },
  { kind: 'ret', answer: 7, ok: true, value: new Slot('guest', 5, 'function handler') },
  { kind: 'ret', answer: 8, ok: false, value: new Tagged('error', { name: 'TypeError', message: 'bad' }) },
  { kind: 'sys', op: 'fs.readFileSync', args: ['/etc/y', 'utf8'], outcome: { type: 'return', value: 'é'.repeat(40) } },
  { kind: 'sys', op: 'env.get', args: ['HOME'], outcome: { type: 'return', value: { nested: [1, -1, 300, -70000, 2 ** 40, 0.5], buf: Buffer.from('bytes') } } },
];

const write = (entries: Entry[], seal = true): Uint8Array => {
  const sink = memorySink();
  const writer = new LogWriter(sink, header);
  for (const [i, entry] of entries.entries()) {
    writer.entry(entry);
    if (i % 5 === 4) writer.flush(); // several frames
  }
  if (seal) writer.seal();
  else writer.abandon();
  return sink.bytes();
};

const goldenFile = fileURLToPath(new URL('./golden/every-kind.log.hex', import.meta.url));

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (error) {
    return isSnapshotError(error) ? error.code : `not a SnapshotError: ${String(error)}`;
  }
  return undefined;
};

t.test('every entry kind encodes to the golden bytes and decodes back', async t => {
  const bytes = write(everyKind);
  const hex = Buffer.from(bytes).toString('hex');
  // After a deliberate format change: UPDATE_GOLDEN=1 npx tap test/replay-log.test.ts, and bump FORMAT_VERSION.
  if (process.env.UPDATE_GOLDEN) fs.writeFileSync(goldenFile, `${hex.replace(/(.{64})/g, '$1\n')}\n`);
  const golden = fs.readFileSync(goldenFile, 'utf8').replace(/\s+/g, '');
  t.equal(hex, golden, 'bytes match test/golden/every-kind.log.hex (format change? bump FORMAT_VERSION)');
  const reader = LogReader.open(bytes, 'golden.log');
  t.same(reader.header, header);
  t.equal(reader.trailer?.events, everyKind.length);
  const decoded = [...reader.entries()].map(e => e.entry);
  t.equal(decoded.length, everyKind.length);
  for (const [i, entry] of decoded.entries()) {
    t.same(entry, everyKind[i], `entry ${i} (${entry.kind}) round-trips`);
    t.equal(describeEntry(entry), describeEntry(everyKind[i]), `entry ${i} describes the same`);
  }
  t.ok(decoded[9].kind === 'call' && decoded[9].args[0] instanceof Slot, 'slots decode as Slot');
  t.ok(decoded[8].kind === 'settle' && (decoded[8].value as { when: unknown }).when instanceof Date, 'dates decode as Date');
});

t.test('the fast kinds cost 9 bytes (now, perf) and a frame costs 9', async t => {
  const sink = memorySink();
  const writer = new LogWriter(sink, header);
  const before = writer.bytesWritten;
  for (let i = 0; i < 1000; i += 1) writer.now(1795000000000 + i);
  writer.flush();
  t.equal(writer.bytesWritten - before, 1000 * 9 + 9);
});

t.test('sys entries of every size decode back: a long length prefix, a growing frame buffer, one too large to encode in place', async t => {
  // The writer encodes a sys entry straight into its frame buffer, guessing a
  // one-byte length; these sizes take two and three bytes, grow the buffer
  // while encoding, and cross the size at which an entry gets a frame of its own.
  const sizes = [0, 100, 118, 119, 120, 127, 128, 200, 16_000, 16_400, 60_000, 65_400, 65_600, 70_000, 200_000];
  const entries: Entry[] = [];
  for (const [i, size] of sizes.entries()) {
    entries.push({ kind: 'sys', op: 'fs.readFileSync', args: [`/f${i}`], outcome: { type: 'return', value: 'x'.repeat(size) } });
    entries.push({ kind: 'sys', op: 'fs.readFileSync', args: [`/b${i}`], outcome: { type: 'return', value: Buffer.alloc(size, i) } });
    entries.push({ kind: 'now', value: i });
  }
  const sink = memorySink();
  const writer = new LogWriter(sink, header);
  for (const entry of entries) writer.entry(entry);
  writer.seal();
  const decoded = [...LogReader.open(sink.bytes(), 'sizes.log').entries()];
  t.equal(decoded.length, entries.length);
  for (const [i, { entry, size }] of decoded.entries()) {
    t.same(entry, entries[i], `entry ${i} round-trips`);
    if (entry.kind === 'sys' && entry.outcome.type === 'return' && typeof entry.outcome.value === 'string') {
      const n = entry.outcome.value.length;
      t.ok(size > n && size <= n + 20, `entry ${i}: ${size} bytes for a string of ${n}`);
    }
  }
});

t.test('format version 2: a short string met again is defined once, then referred to; version 1 logs still read', async t => {
  const v2: LogHeader = { ...header, version: FORMAT_VERSION };
  const read = (n: number): Entry => ({ kind: 'sys', op: 'env.get', args: ['HOME'], outcome: { type: 'return', value: '/home/user' } });
  const entries: Entry[] = [read(0), read(1), read(2), read(3), { kind: 'ret', answer: 1, ok: true, value: '/home/user' }];
  const sink = memorySink();
  const writer = new LogWriter(sink, v2);
  for (const entry of entries) writer.entry(entry);
  writer.seal();
  const reader = LogReader.open(sink.bytes(), 'v2.log');
  t.equal(reader.header.version, FORMAT_VERSION);
  const decoded = [...reader.entries()];
  t.same(
    decoded.map(e => e.entry),
    entries,
    'every entry decodes back',
  );
  const sizes = decoded.map(e => e.size);
  t.equal(sizes[0], sizes[1], 'the first two carry the text');
  t.ok(sizes[2] < sizes[1] - 5 && sizes[3] === sizes[2], `later ones refer to it (${sizes.join(', ')} bytes)`);
  t.equal(reader.trailer?.events, entries.length, 'definitions are not events');
  const v1 = write(entries);
  t.equal(LogReader.open(v1, 'v1.log').header.version, 1, 'a version 1 header writes (and reads) version 1');
  t.ok(v1.byteLength > sink.bytes().byteLength, 'without the dictionary');
});

t.test('format version 2: string references that do not resolve are LOG_CORRUPT; other versions are LOG_VERSION_UNSUPPORTED', async t => {
  const frame = (type: number, payload: Uint8Array): Buffer => {
    const head = Buffer.alloc(9);
    head[0] = type;
    head.writeUInt32LE(payload.byteLength, 1);
    head.writeUInt32LE(frameCrc(type, payload) >>> 0, 5);
    return Buffer.concat([head, payload]);
  };
  const log = (version: number, entries: number[], events: number): Buffer =>
    Buffer.concat([Buffer.from('MSNPLOG\n', 'latin1'), frame(1, packr.pack({ ...header, version })), frame(2, Uint8Array.from(entries)), frame(3, packr.pack({ events }))]);
  const text = (tag: number, s: string): number[] => [tag, s.length, ...Buffer.from(s, 'latin1')];
  const op = text(0x12, 'env.get');
  const definition = text(0x13, '/home/user');
  // sys #0: msgpack [["HOME"], 0, <string #0>]
  const sysRef = [0x11, 0, 11, 0x93, 0x91, 0xa4, ...Buffer.from('HOME'), 0x00, 0xd4, 0x54, 0x00];
  const readAll = (bytes: Uint8Array) => () => [...LogReader.open(bytes, 'ref.log').entries()].map(e => e.entry);
  const good = readAll(log(2, [...op, ...definition, ...sysRef], 1))();
  t.same(good, [{ kind: 'sys', op: 'env.get', args: ['HOME'], outcome: { type: 'return', value: '/home/user' } }], 'a defined reference reads');
  t.equal(codeOf(readAll(log(2, [...op, ...sysRef], 1))), 'LOG_CORRUPT', 'a reference before its definition');
  t.equal(codeOf(readAll(log(2, [...op, ...definition, ...sysRef.slice(0, -1), 0x01], 1))), 'LOG_CORRUPT', 'a reference past the strings defined');
  t.equal(codeOf(readAll(log(1, [...op, ...definition, ...sysRef], 1))), 'LOG_CORRUPT', 'a string definition in a version 1 log');
  t.equal(codeOf(readAll(log(1, [...op, ...sysRef], 1))), 'LOG_CORRUPT', 'a reference in a version 1 log');
  // ret: msgpack ["ret", 1, true, <string #0>]
  const retRef = [0x10, 10, 0x94, 0xa3, ...Buffer.from('ret'), 0x01, 0xc3, 0xd4, 0x54, 0x00];
  t.equal(codeOf(readAll(log(2, [...definition, ...retRef], 1))), 'LOG_CORRUPT', 'a reference outside a sys entry');
  t.equal(codeOf(readAll(log(3, [...op, ...definition, ...sysRef], 1))), 'LOG_VERSION_UNSUPPORTED', 'a version from the future');
  // msgpackr's extensions are global: the transport's (loaded with the library) must not take the reference's type.
  await import('../lib/transport-codec.js');
  t.same(readAll(log(2, [...op, ...definition, ...sysRef], 1))(), good, 'references still read with the transport codec loaded');
});

t.test('a truncated log is refused with LOG_TRUNCATED and the offset', async t => {
  const bytes = write(everyKind);
  for (const cut of [3, 8, 12, 40, bytes.byteLength - 20, bytes.byteLength - 1]) {
    let error: unknown;
    try {
      LogReader.open(bytes.subarray(0, cut), 'cut.log');
    } catch (e) {
      error = e;
    }
    t.ok(isSnapshotError(error), `cut at ${cut}: typed error`);
    if (isSnapshotError(error)) {
      t.equal(error.code, 'LOG_TRUNCATED', `cut at ${cut}`);
      t.match(error.message, /cut\.log: .* at byte \d+/);
    }
  }
  // Cut exactly at a frame boundary: frames all check out, but the closing frame is missing.
  const unsealed = write(everyKind, false);
  t.equal(codeOf(() => LogReader.open(unsealed, 'unsealed.log')), 'LOG_TRUNCATED');
  const open = LogReader.open(unsealed, 'unsealed.log', { allowUnsealed: true });
  t.equal(open.trailer, undefined, 'inspect can still read an unsealed log');
  t.equal([...open.entries()].length, everyKind.length, 'nothing already written is lost');
});

t.test('a flipped byte anywhere is refused with LOG_CORRUPT (or a version/format error in the header)', async t => {
  const bytes = write(everyKind);
  const codes = new Set<string | undefined>();
  for (let at = 0; at < bytes.byteLength; at += 1) {
    const damaged = Uint8Array.from(bytes);
    damaged[at] ^= 0x20;
    const code = codeOf(() => {
      const reader = LogReader.open(damaged, 'flipped.log');
      [...reader.entries()];
    });
    codes.add(code);
    if (code === undefined) t.fail(`flipping byte ${at} went unnoticed`);
  }
  t.ok(codes.has('LOG_CORRUPT'));
  t.notOk(codes.has(undefined), 'no flipped byte goes unnoticed');
  for (const code of codes) t.ok(code === 'LOG_CORRUPT' || code === 'LOG_TRUNCATED', `code ${String(code)} is a log error`);
});

t.test('an unknown format version is refused clearly', async t => {
  const sink = memorySink();
  new LogWriter(sink, { ...header, version: 99 }).seal();
  let error: unknown;
  try {
    LogReader.open(sink.bytes(), 'future.log');
  } catch (e) {
    error = e;
  }
  t.ok(isSnapshotError(error) && error.code === 'LOG_VERSION_UNSUPPORTED');
  t.match((error as Error).message, /version 99 is not supported .* reads versions 1 and 2\b.* written by membrane-snapshot 0\.0\.0-test/);
});

t.test('not a log at all', async t => {
  t.equal(codeOf(() => LogReader.open(Buffer.from('{"json": true}'), 'x.json')), 'LOG_CORRUPT');
  t.equal(codeOf(() => LogReader.open(packr.pack([1, 2, 3]), 'x.bin')), 'LOG_CORRUPT');
});
