// Large payloads in the log: written without intermediate copies (their
// own frame, straight from the caller's memory) in exactly msgpackr's
// encoding, read back equal, and opened in place of the file's buffer.
import t from 'tap';
import { LogReader, LogWriter, memorySink, packr, FORMAT_NAME, type Entry, type LogHeader } from '../replay-log/index.js';
import { EXTERNAL_BYTES, MsgWriter } from '../replay-log/msg-writer.js';

const header: LogHeader = { format: FORMAT_NAME, version: 1, service: 'large', archiveSha256: 'cd'.repeat(32), libraryVersion: '0.0.0-test' };

const describe = (value: unknown): string =>
  ArrayBuffer.isView(value) ? `${value.constructor.name}(${value.byteLength})` : Array.isArray(value) ? 'array' : typeof value === 'object' ? 'object' : typeof value;

const bytesOf = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 131 + seed) & 0xff);

t.test('typed arrays encode as msgpackr encodes them, small and large, whole or in parts', async t => {
  const writer = new MsgWriter();
  const samples: unknown[] = [];
  for (const n of [0, 3, 254, 255, 65534, 65535, EXTERNAL_BYTES + 3]) {
    const u8 = bytesOf(n, n);
    samples.push(u8, new Uint8ClampedArray(u8), new Int8Array(u8.buffer));
    samples.push(new Float64Array(new Float64Array(Math.floor(n / 8)).map((_, i) => i / 3)), new BigInt64Array(Math.floor(n / 8)).fill(-5n));
    samples.push(Buffer.from(u8), { body: u8.subarray(1), rest: [u8.subarray(0, 2), 'x'] });
  }
  for (const value of samples) {
    const expected = Buffer.from(packr.pack(value));
    const whole = Buffer.from(writer.encode(value));
    const encoded = writer.encodeParts(value);
    const { parts, byteLength } = encoded instanceof Uint8Array ? { parts: [encoded], byteLength: encoded.byteLength } : encoded;
    const joined = Buffer.concat(parts.map(p => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
    t.equal(byteLength, joined.byteLength);
    t.ok(joined.equals(whole), `encodeParts joined is encode: ${describe(value)}`);
    // Typed arrays are msgpackr's very bytes; maps and Buffers may use longer headers than msgpackr's, read the same.
    if (ArrayBuffer.isView(value) && !Buffer.isBuffer(value)) t.ok(whole.equals(expected), `msgpackr's bytes: ${describe(value)}`);
    t.same(packr.unpack(whole), packr.unpack(expected), `reads back as msgpackr's encoding does: ${describe(value)}`);
  }
});

t.test('a large binary value is a part of its own that views the caller memory (no copy)', async t => {
  const body = bytesOf(EXTERNAL_BYTES * 2, 7);
  const encoded = new MsgWriter().encodeParts([[{ url: 'http://x/' }], 0, { status: 200, body }]);
  const parts = encoded instanceof Uint8Array ? [encoded] : encoded.parts;
  const viewing = parts.filter(p => p.buffer === body.buffer);
  t.equal(viewing.length, 1);
  t.equal(viewing[0].byteLength, body.byteLength);
});

const write = (entries: Entry[]): Uint8Array => {
  const sink = memorySink();
  const writer = new LogWriter(sink, header);
  for (const entry of entries) writer.entry(entry);
  writer.seal();
  return sink.bytes();
};

t.test('logs with large entries among small ones read back equal, also when opened in place', async t => {
  const big = bytesOf(3 * EXTERNAL_BYTES + 11, 3);
  const entries: Entry[] = [
    { kind: 'start' },
    { kind: 'now', value: 1 },
    { kind: 'sys', op: 'fetch', args: [{ url: 'http://h/', method: 'GET', headers: [], body: null }], outcome: { type: 'async', promise: 1 } },
    { kind: 'ret', answer: 0, ok: true, value: 'small' },
    { kind: 'settle', promise: 1, ok: true, value: { status: 200, body: big } },
    { kind: 'sys', op: 'fs.readFileSync', args: ['/big'], outcome: { type: 'return', value: Buffer.from(big) } },
    { kind: 'perf', value: 2.5 },
    { kind: 'sys', op: 'env.get', args: ['HOME'], outcome: { type: 'return', value: 'x'.repeat(EXTERNAL_BYTES + 1) } },
    { kind: 'ret', answer: 1, ok: true, value: [1, 2, 3] },
  ];
  const bytes = write(entries);
  const copied = [...LogReader.open(bytes, 'large.log').entries()].map(e => e.entry);
  t.same(copied, entries, 'read back equal');
  const file = Buffer.from(bytes); // a file's buffer the reader may reuse
  const inPlace = LogReader.open(file, 'large.log', { reuseBuffer: true });
  t.ok(file.equals(Buffer.from(bytes)), 'the file buffer is untouched until the body is asked for (it can still be hashed)');
  t.equal(inPlace.body.buffer, file.buffer, 'the body lives in the file buffer');
  t.same([...inPlace.entries()].map(e => e.entry), entries, 'read back equal in place');
  t.equal(inPlace.trailer?.events, entries.length);
});

