/**
 * A linear zip writer for service archives.
 *
 * compartment-mapper writes archives with @endo/zip, whose BufferWriter
 * (1.1.0) reallocates and copies the whole buffer on every write, header
 * fields included, so writing an archive is quadratic in its size: 800
 * modules of 4 KB took 10.5 s. compartment-mapper takes no writer option,
 * so `installLinearZipWriter()` replaces `ZipWriter#snapshot` of the very
 * @endo/zip module compartment-mapper imports with `writeStoredZip`, which
 * sizes the archive first and writes it into one buffer. The bytes are
 * identical to @endo/zip's (test/archive.test.ts checks it), so archive
 * hashes do not change.
 *
 * The format, as @endo/zip writes it (all integers little-endian; STORE,
 * no compression; DOS date 0 unless a file has a date; no extra fields):
 *
 *   local header   "PK\3\4" u16 10 (version needed) u16 0 (flags)
 *                  u16 0 (STORE) u32 dos-date u32 crc32 u32 size u32 size
 *                  u16 name-length u16 0 (extra) name content
 *   central header "PK\1\2" u8 30 (version) u8 3 (made by: Unix)
 *                  the 24 bytes after the local signature, again
 *                  u16 0 (extra) u16 comment-length u16 0 (disk)
 *                  u16 0 (internal attributes) u32 ((mode & 0o777) |
 *                  0o100000) << 16 u32 local-header-offset name comment
 *   end record     "PK\5\6" u16 0 u16 0 u16 count u16 count
 *                  u32 central-size u32 central-offset u16 comment-length
 *                  comment
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import zlib from 'node:zlib';
import { CENTRAL, CENTRAL_FIXED, END, END_FIXED, LOCAL, LOCAL_FIXED } from './zip-read.js';

/** One file of an archive. */
export interface ZipFile {
  /** Path inside the archive ("/" separated; "\" is turned into "/"). */
  readonly name: string;
  readonly content: Uint8Array;
  /** Unix permission bits (default 0o644). */
  readonly mode?: number;
  /** Modification time (default: none, written as 0). */
  readonly date?: Date;
  readonly comment?: string;
}

const crc32 = (zlib as unknown as { crc32: (data: Uint8Array) => number }).crc32;
const encoder = new TextEncoder();

const dosDateTime = (date: Date | undefined): number =>
  date === undefined || date === null
    ? 0
    : ((((date.getUTCFullYear() - 1980) & 0x7f) << 25) |
        ((date.getUTCMonth() + 1) << 21) |
        (date.getUTCDate() << 16) |
        (date.getUTCHours() << 11) |
        (date.getUTCMinutes() << 5) |
        (date.getUTCSeconds() >> 1)) >>>
      0;

/**
 * Write `files` as a stored (uncompressed) zip, in order, into one buffer
 * sized up front: time and memory linear in the archive's size. Throws a
 * RangeError past what a zip without zip64 holds (65,535 files, 4 GiB).
 */
export const writeStoredZip = (files: readonly ZipFile[], comment = ''): Uint8Array => {
  if (files.length > 0xffff) throw new RangeError(`a zip archive holds at most 65535 files, not ${files.length}`);
  const names = files.map(file => encoder.encode(file.name.replace(/\\/g, '/')));
  const comments = files.map(file => encoder.encode(file.comment ?? ''));
  const archiveComment = encoder.encode(comment);
  let localSize = 0;
  let centralSize = 0;
  for (let i = 0; i < files.length; i += 1) {
    localSize += LOCAL_FIXED + names[i].byteLength + files[i].content.byteLength;
    centralSize += CENTRAL_FIXED + names[i].byteLength + comments[i].byteLength;
  }
  const total = localSize + centralSize + END_FIXED + archiveComment.byteLength;
  if (localSize > 0xffffffff || centralSize > 0xffffffff) throw new RangeError(`a zip archive without zip64 holds at most 4 GiB, not ${total} bytes`);
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  const offsets: number[] = [];
  let pos = 0;
  for (let i = 0; i < files.length; i += 1) {
    const { content, date } = files[i];
    const name = names[i];
    offsets.push(pos);
    view.setUint32(pos, LOCAL, true);
    view.setUint16(pos + 4, 10, true);
    view.setUint16(pos + 6, 0, true);
    view.setUint16(pos + 8, 0, true);
    view.setUint32(pos + 10, dosDateTime(date), true);
    view.setUint32(pos + 14, crc32(content), true);
    view.setUint32(pos + 18, content.byteLength, true);
    view.setUint32(pos + 22, content.byteLength, true);
    view.setUint16(pos + 26, name.byteLength, true);
    view.setUint16(pos + 28, 0, true);
    bytes.set(name, pos + LOCAL_FIXED);
    bytes.set(content, pos + LOCAL_FIXED + name.byteLength);
    pos += LOCAL_FIXED + name.byteLength + content.byteLength;
  }
  const centralStart = pos;
  for (let i = 0; i < files.length; i += 1) {
    const name = names[i];
    const local = offsets[i];
    view.setUint32(pos, CENTRAL, true);
    view.setUint8(pos + 4, 30);
    view.setUint8(pos + 5, 3);
    bytes.copyWithin(pos + 6, local + 4, local + 28);
    view.setUint16(pos + 30, 0, true);
    view.setUint16(pos + 32, comments[i].byteLength, true);
    view.setUint16(pos + 34, 0, true);
    view.setUint16(pos + 36, 0, true);
    view.setUint32(pos + 38, ((((files[i].mode ?? 0o644) & 0o777) | 0o100000) << 16) >>> 0, true);
    view.setUint32(pos + 42, local, true);
    bytes.set(name, pos + CENTRAL_FIXED);
    bytes.set(comments[i], pos + CENTRAL_FIXED + name.byteLength);
    pos += CENTRAL_FIXED + name.byteLength + comments[i].byteLength;
  }
  view.setUint32(pos, END, true);
  view.setUint16(pos + 4, 0, true);
  view.setUint16(pos + 6, 0, true);
  view.setUint16(pos + 8, files.length, true);
  view.setUint16(pos + 10, files.length, true);
  view.setUint32(pos + 12, pos - centralStart, true);
  view.setUint32(pos + 16, centralStart, true);
  view.setUint16(pos + 20, archiveComment.byteLength, true);
  bytes.set(archiveComment, pos + END_FIXED);
  return bytes;
};

interface EndoZipWriter {
  files: Map<string, ZipFile>;
  snapshot(): Uint8Array;
}
type EndoZipModule = { ZipWriter: { prototype: EndoZipWriter } };

let installed: Promise<EndoZipModule> | undefined;

/**
 * Make compartment-mapper's archives use `writeStoredZip`: replace
 * `ZipWriter#snapshot` in the @endo/zip that compartment-mapper's archive
 * writer resolves (found from its own location, so a nested copy is the
 * one patched). Idempotent; resolves to that module.
 */
export const installLinearZipWriter = (): Promise<EndoZipModule> =>
  (installed ??= (async () => {
    const archiveWriter = createRequire(import.meta.url).resolve('@endo/compartment-mapper/archive-lite.js');
    const zipIndex = createRequire(archiveWriter).resolve('@endo/zip');
    const zip = (await import(pathToFileURL(zipIndex).href)) as EndoZipModule;
    Object.defineProperty(zip.ZipWriter.prototype, 'snapshot', {
      value: function snapshot(this: EndoZipWriter): Uint8Array {
        return writeStoredZip([...this.files.values()]);
      },
      writable: true,
      enumerable: false,
      configurable: true,
    });
    return zip;
  })());
