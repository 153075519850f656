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
  dumpLog,
  wireDifference,
  isSnapshotError,
  memorySink,
  packr,
  FORMAT_NAME,
  FORMAT_VERSION,
  type Entry,
  type LogHeader,
} from '../replay-log/index.js';

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

/** A log of `entries` under `to` (the version 1 header by default), a frame flushed every `flushEvery` entries, sealed or abandoned. */
const write = (entries: Entry[], { seal = true, to = header, flushEvery = 5 }: { seal?: boolean; to?: LogHeader; flushEvery?: number } = {}): Uint8Array => {
  const sink = memorySink();
  const writer = new LogWriter(sink, to);
  for (const [i, entry] of entries.entries()) {
    writer.entry(entry);
    if (i % flushEvery === flushEvery - 1) writer.flush(); // several frames
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
  const decoded = [...LogReader.open(write(entries, { flushEvery: Infinity }), 'sizes.log').entries()];
  t.equal(decoded.length, entries.length);
  for (const [i, { entry, size }] of decoded.entries()) {
    t.same(entry, entries[i], `entry ${i} round-trips`);
    if (entry.kind === 'sys' && entry.outcome.type === 'return' && typeof entry.outcome.value === 'string') {
      const n = entry.outcome.value.length;
      t.ok(size > n && size <= n + 20, `entry ${i}: ${size} bytes for a string of ${n}`);
    }
  }
});

t.test('strings of every header size and encoding decode back, in arguments and answers', async t => {
  // msgpack's fixstr (< 32 bytes), str8 (< 256) and str32 headers, each with ASCII text, with text that
  // turns multibyte partway (the writer's ASCII loop stops and starts over), and all-multibyte text
  // whose UTF-8 outgrows the header its length in characters suggests.
  const lengths = [0, 1, 10, 11, 31, 32, 33, 85, 86, 127, 128, 254, 255, 256, 257, 1000, 70_000];
  const texts: string[] = [];
  for (const n of lengths) {
    texts.push('a'.repeat(n));
    if (n > 0) {
      texts.push(`${'p'.repeat(n - 1)}é`, `é${'q'.repeat(n - 1)}`, '€'.repeat(n), `${'r'.repeat(Math.max(0, n - 2))}😀`);
    }
  }
  const entries: Entry[] = texts.map(text => ({ kind: 'sys', op: 'env.get', args: [text], outcome: { type: 'return', value: `${text}!` } }));
  const decoded = [...LogReader.open(write(entries), 'strings.log').entries()];
  t.equal(decoded.length, entries.length);
  let mismatches = 0;
  for (const [i, { entry, size }] of decoded.entries()) {
    if (JSON.stringify(entry) !== JSON.stringify(entries[i])) {
      mismatches += 1;
      t.same(entry, entries[i], `entry ${i} (a string of ${texts[i].length}) round-trips`);
    }
    const text = texts[i];
    // ASCII up to 255 characters takes a one- or two-byte header (str8, not str32).
    if (/^a*$/.test(text) && text.length < 255) t.ok(size <= 2 * text.length + 12, `entry ${i}: ${size} bytes for two ASCII strings of ${text.length}`);
  }
  t.equal(mismatches, 0, `all ${entries.length} entries round-trip`);
});

t.test('wireDifference names where two entries first differ, for a divergence whose two renderings read the same', async t => {
  const answer = (stack: string): Entry => ({ kind: 'ret', answer: 3, ok: false, value: new Tagged('error', { name: 'TypeError', message: 'm', stack }) }) as unknown as Entry;
  const recorded = answer('TypeError: m\n    at file:///build/host/membrane.js:1:1');
  const replayed = answer('TypeError: m');
  t.equal(describeEntry(recorded, true), describeEntry(replayed, true), 'the renderings read the same');
  t.same(wireDifference(recorded, replayed), { path: '.value.payload.stack', expected: JSON.stringify('TypeError: m\n    at file:///build/host/membrane.js:1:1'), actual: JSON.stringify('TypeError: m') });
  t.equal(wireDifference(recorded, answer('TypeError: m\n    at file:///build/host/membrane.js:1:1')), undefined, 'equal entries: no difference');
  t.same(wireDifference([1, [2, 3]], [1, [2, 4]]), { path: '[1][1]', expected: '3', actual: '4' }, 'inside arrays');
  t.same(wireDifference({ a: 1 }, { a: 1, b: 2 }), { path: '', expected: '{a: 1}', actual: '{a: 1, b: 2}' }, 'another set of keys: the objects themselves');
  t.same(wireDifference(new Slot('guest', 1), new Slot('guest', 2)), { path: '', expected: '<service ref #1>', actual: '<service ref #2>' }, 'another reference');
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
  const unsealed = write(everyKind, { seal: false });
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

t.test('a repeated read is written as a back-reference to the entry it repeats, and decodes as that entry', async t => {
  const v2: LogHeader = { ...header, version: FORMAT_VERSION };
  const env = (key: string, value: string | undefined): Entry => ({ kind: 'sys', op: 'env.get', args: [key], outcome: { type: 'return', value } });
  const exists = (path: string, value: boolean): Entry => ({ kind: 'sys', op: 'fs.existsSync', args: [path], outcome: { type: 'return', value } });
  const entries: Entry[] = [{ kind: 'start' }];
  for (let i = 0; i < 3000; i += 1) {
    entries.push(env('NODE_ENV', 'production'), env('UNSET', undefined));
    // The answer changes twice: each change is a new entry, which later repeats name.
    entries.push(exists('/tmp/lock', i >= 1000 && i < 2000));
    if (i % 700 === 0) entries.push({ kind: 'now', value: 1795000000000 + i });
  }
  const bytes = write(entries, { to: v2, flushEvery: 1000 });
  const decoded = [...LogReader.open(bytes, 'repeats.log').entries()];
  t.equal(decoded.length, entries.length);
  t.same(
    decoded.map(d => d.entry),
    entries,
    'every entry decodes as written',
  );
  const sizes = decoded.filter(d => d.entry.kind === 'sys').map(d => d.size);
  const full = sizes.filter(n => n > 4);
  t.equal(full.length, 5, 'five full entries: NODE_ENV, UNSET, and /tmp/lock false, true, false again');
  t.ok(
    sizes.every(n => n > 4 || n <= 3),
    'the other 8,995 are repeats of 2 or 3 bytes',
  );
  t.ok(bytes.byteLength < 9000 * 3 + 200, `${bytes.byteLength} bytes for 9,000 reads`);
  const timeline = dumpLog(LogReader.open(bytes, 'repeats.log')).split('\n');
  t.match(timeline.find(line => /^\s+5 @/.test(line)), /2B {3}env\.get\("NODE_ENV"\) -> "production" \(repeats 1\)$/, 'inspect says which entry a repeat repeats');
  t.match(timeline.find(line => /^\s+1 @/.test(line)), /env\.get\("NODE_ENV"\) -> "production"$/);

  // What is not kept is written whole every time.
  const notKept: Entry[] = [
    { kind: 'sys', op: 'fs.readFileSync', args: ['/etc/x', 'utf8'], outcome: { type: 'return', value: 'text' } }, // two arguments
    { kind: 'sys', op: 'fs.statSync', args: ['/nope'], outcome: { type: 'throw', value: 'ENOENT' } }, // thrown
    { kind: 'sys', op: 'env.keys', args: ['x'], outcome: { type: 'return', value: ['A', 'B'] } }, // an object
    { kind: 'sys', op: 'env.get', args: ['LONG'], outcome: { type: 'return', value: 'v'.repeat(1025) } }, // longer than KEPT_MAX_CHARS
    { kind: 'sys', op: 'env.get', args: ['k'.repeat(1025)], outcome: { type: 'return', value: 'v' } },
    { kind: 'sys', op: 'env.get', args: [new Tagged('sealed', Uint8Array.of(1, 2, 3))], outcome: { type: 'return', value: 'v' } },
    { kind: 'sys', op: 'env.get', args: ['NEG'], outcome: { type: 'return', value: new Tagged('-0', 0) } },
  ];
  const again = [...LogReader.open(write([...notKept, ...notKept, ...notKept], { to: v2, flushEvery: Infinity }), 'whole.log').entries()];
  t.same(
    again.map(d => d.entry),
    [...notKept, ...notKept, ...notKept],
  );
  for (let i = 0; i < notKept.length; i += 1) t.equal(again[i + notKept.length].size, again[i].size, `entry ${i} is written whole again`);

  // A version 1 log (an older writer) never holds them; this library still reads it.
  const v1 = [...LogReader.open(write(Array.from({ length: 10 }, () => env('NODE_ENV', 'production')), { flushEvery: Infinity }), 'v1.log').entries()];
  t.equal(v1.length, 10);
  t.equal(new Set(v1.map(d => d.size)).size, 1, 'version 1: every read written whole');
});

t.test('at most MAX_KEPT (1,024) reads are kept at once; a new one past that is written whole', async t => {
  const v2: LogHeader = { ...header, version: FORMAT_VERSION };
  const entries: Entry[] = [];
  for (let round = 0; round < 2; round += 1) {
    for (let i = 0; i < 1100; i += 1) entries.push({ kind: 'sys', op: 'fs.existsSync', args: [`/f/${i}`], outcome: { type: 'return', value: i % 2 === 0 } });
  }
  const decoded = [...LogReader.open(write(entries, { to: v2, flushEvery: Infinity }), 'many.log').entries()];
  t.same(
    decoded.map(d => d.entry),
    entries,
  );
  const second = decoded.slice(1100).map(d => d.size);
  t.ok(
    second.slice(0, 1024).every(n => n <= 3),
    'the first 1,024 repeat',
  );
  t.ok(
    second.slice(1024).every(n => n > 4),
    'the 76 past the bound are whole',
  );

  // A long run of new reads pauses the lookups (each could only miss); repeats come back after it.
  const run: Entry[] = [];
  const existsEntry = (p: string, value: boolean): Entry => ({ kind: 'sys', op: 'fs.existsSync', args: [p], outcome: { type: 'return', value } });
  for (let i = 0; i < 1024; i += 1) run.push(existsEntry(`/kept/${i}`, true));
  for (let i = 0; i < 4096 + 65536 + 10; i += 1) run.push(existsEntry(`/new/${i}`, false));
  for (let i = 0; i < 10; i += 1) run.push(existsEntry(`/kept/${i}`, true));
  const decoded2 = [...LogReader.open(write(run, { to: v2, flushEvery: Infinity }), 'run.log').entries()];
  t.equal(decoded2.length, run.length);
  t.ok(
    decoded2.every((d, i) => d.entry.kind === 'sys' && d.entry.args[0] === (run[i] as { args: string[] }).args[0] && d.entry.outcome.type === 'return' && d.entry.outcome.value === (run[i] as { outcome: { value: boolean } }).outcome.value),
    'every entry decodes as written',
  );
  t.ok(
    decoded2.slice(-10).every(d => d.size <= 3),
    'after the pause, repeats are back-references again',
  );
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
  t.match((error as Error).message, /version 99 is not supported .* reads versions 1, 2 and 3\b.* written by membrane-snapshot 0\.0\.0-test/);
});

t.test('an object or error whose keys are not a record or a list of string and utf16 keys is LOG_CORRUPT', async t => {
  const thrown = (value: unknown): Entry => ({ kind: 'sys', op: 'env.get', args: ['A'], outcome: { type: 'throw', value } as Entry extends { outcome: infer O } ? O : never });
  const bad = [
    new Tagged('error', { name: 'E', message: 'm', props: new Uint16Array([1]) }),
    new Tagged('error', { name: 'E', message: 'm', props: new Date(0) }),
    new Tagged('error', { name: 'E', message: 'm', props: [['a', 1]] }),
    new Tagged('object', [[1, 'number key']]),
    new Tagged('object', [[new Tagged('utf16', [0xd800]), 'utf16 key whose payload is no Uint16Array']]),
    new Tagged('object', [[new Tagged('bigint', '1'), 'bigint key']]),
  ];
  for (const value of bad) t.equal(codeOf(() => [...LogReader.open(write([thrown(value)]), 'bad.log').entries()]), 'LOG_CORRUPT', describeEntry(thrown(value)));
  const good = [
    new Tagged('error', { name: 'E', message: 'm', props: { code: 'X' } }),
    new Tagged('error', { name: 'E', message: 'm', props: new Tagged('object', [[new Tagged('utf16', new Uint16Array([0xd800])), 1]]) }),
    new Tagged('object', [['__proto__', 1], [new Tagged('utf16', new Uint16Array([0xdc00])), 2]]),
  ];
  for (const value of good) t.equal(codeOf(() => [...LogReader.open(write([thrown(value)]), 'good.log').entries()]), undefined, describeEntry(thrown(value)));
});

t.test('not a log at all', async t => {
  t.equal(codeOf(() => LogReader.open(Buffer.from('{"json": true}'), 'x.json')), 'LOG_CORRUPT');
  t.equal(codeOf(() => LogReader.open(packr.pack([1, 2, 3]), 'x.bin')), 'LOG_CORRUPT');
});
