/**
 * Reading the files of a stored zip (the format zip.ts writes) without the
 * archiving code: what a restore needs of an archive before
 * compartment-mapper reads it (load.ts: its compartment map's entry, and
 * each module checked against the sha512 the map records).
 */

export const LOCAL = 0x04034b50;
export const CENTRAL = 0x02014b50;
export const END = 0x06054b50;
export const LOCAL_FIXED = 30;
export const CENTRAL_FIXED = 46;
export const END_FIXED = 22;

/** Names decoded as @endo/zip decodes them (a leading byte-order mark dropped, bad UTF-8 as U+FFFD), so both readers agree. */
const decoder = new TextDecoder();

interface CentralEntry {
  /** The name, decoded. */
  readonly name: string;
  /** Offset of the central directory record. */
  readonly at: number;
}

/**
 * The records of a stored zip's central directory, or undefined when the
 * bytes are no zip of ours (no end record, a record out of bounds).
 */
type CentralDirectory = { view: DataView; end: number; start: number; entries: CentralEntry[] } | undefined;

/** Each archive's directory, read once: a restore asks it for repeated names, then for the compartment map. */
const directories = new WeakMap<Uint8Array, CentralDirectory>();

const centralDirectory = (bytes: Uint8Array): CentralDirectory => {
  if (directories.has(bytes)) return directories.get(bytes);
  const directory = readCentralDirectory(bytes);
  directories.set(bytes, directory);
  return directory;
};

const readCentralDirectory = (bytes: Uint8Array): CentralDirectory => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The end record is the last 22 bytes, before an archive comment of at most 65,535 bytes.
  let end = bytes.byteLength - END_FIXED;
  const lowest = Math.max(0, end - 0xffff);
  while (end >= lowest && !(view.getUint32(end, true) === END && end + END_FIXED + view.getUint16(end + 20, true) === bytes.byteLength)) end -= 1;
  if (end < lowest) return undefined;
  const count = view.getUint16(end + 10, true);
  const start = view.getUint32(end + 16, true);
  // The directory ends where the end record starts. @endo/zip's reader (compartment-mapper's) takes a gap between
  // them for bytes put in front of the zip and shifts every offset by it: both readers would then read other
  // files under the same names (found by the adversarial review), so such a zip is none of ours.
  if (start + view.getUint32(end + 12, true) !== end) return undefined;
  let pos = start;
  const entries: CentralEntry[] = [];
  for (let i = 0; i < count; i += 1) {
    if (pos + CENTRAL_FIXED > end || view.getUint32(pos, true) !== CENTRAL) return undefined;
    const nameLength = view.getUint16(pos + 28, true);
    if (pos + CENTRAL_FIXED + nameLength > end) return undefined;
    entries.push({ name: decoder.decode(bytes.subarray(pos + CENTRAL_FIXED, pos + CENTRAL_FIXED + nameLength)), at: pos });
    pos += CENTRAL_FIXED + nameLength + view.getUint16(pos + 30, true) + view.getUint16(pos + 32, true);
  }
  // Its records fill it exactly (@endo/zip's reader reads records for as long as their signature follows).
  if (pos !== end) return undefined;
  return { view, end, start, entries };
};

/**
 * The content of the file `name` in a zip that `writeStoredZip` (zip.ts)
 * wrote, found through the central directory, without reading the other
 * files or checking any CRC; undefined when the archive has no such file
 * or is not one of ours (compressed, zip64, cut short, the name twice,
 * names compared as @endo/zip decodes them). Every offset and
 * size is checked against the archive's bounds, so damaged bytes give
 * undefined (or a RangeError), never bytes from outside the archive; what
 * it returns is only as trustworthy as the archive, and a loader still
 * reads the archive whole through @endo/zip's ZipReader, which checks it.
 */
export const readStoredZipFile = (bytes: Uint8Array, name: string): Uint8Array | undefined => {
  const directory = centralDirectory(bytes);
  if (directory === undefined) return undefined;
  const { view, end, entries } = directory;
  const matches = entries.filter(entry => entry.name === name);
  // Named twice: none of ours (@endo/zip's reader would take the last, this one the first; found by the adversarial
  // reviews, the second time with a copy of the name behind a byte-order mark, which @endo/zip's decoding drops).
  if (matches.length !== 1) return undefined;
  const { at } = matches[0];
  if (view.getUint16(at + 10, true) !== 0) return undefined; // not STORE
  const size = view.getUint32(at + 20, true);
  const local = view.getUint32(at + 42, true);
  if (local + LOCAL_FIXED > end || view.getUint32(local, true) !== LOCAL) return undefined;
  const start = local + LOCAL_FIXED + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
  if (start + size > end) return undefined;
  return bytes.subarray(start, start + size);
};

/** A file of a stored zip: its content (a view of the zip's bytes) and the CRC-32 its central directory records. */
export interface StoredZipFile {
  readonly content: Uint8Array;
  readonly crc32: number;
}

/**
 * Every file of a zip laid out exactly as `writeStoredZip` (zip.ts) writes
 * one, by name (no CRC checked: each file's recorded one is given), or
 * undefined for any other zip. The layout: the files stored (STORE, its
 * two sizes equal), end to end from byte 0 in the order of the central
 * directory, without extra fields, each local name the bytes of its
 * central one; the central directory right after the last file, its
 * records filling it; the end record last, with no archive comment; no
 * name twice. In such a zip @endo/zip's reader, with which
 * compartment-mapper loads the modules, finds under each name the very
 * bytes returned here (load.ts checks them against the compartment map's
 * sha512s for it); any other zip is left to compartment-mapper's own check.
 */
export const storedZipFiles = (bytes: Uint8Array): Map<string, StoredZipFile> | undefined => {
  const directory = centralDirectory(bytes);
  if (directory === undefined || directory.end !== bytes.byteLength - END_FIXED) return undefined;
  const { view, start: directoryStart, entries } = directory;
  const files = new Map<string, StoredZipFile>();
  let expected = 0;
  for (const { name, at } of entries) {
    const size = view.getUint32(at + 20, true);
    const nameLength = view.getUint16(at + 28, true);
    if (files.has(name) || view.getUint16(at + 10, true) !== 0 || view.getUint32(at + 24, true) !== size || view.getUint16(at + 30, true) !== 0) return undefined;
    const local = view.getUint32(at + 42, true);
    if (local !== expected || local + LOCAL_FIXED + nameLength > directoryStart || view.getUint32(local, true) !== LOCAL) return undefined;
    if (view.getUint16(local + 8, true) !== 0 || view.getUint32(local + 18, true) !== size || view.getUint32(local + 22, true) !== size) return undefined;
    if (view.getUint16(local + 26, true) !== nameLength || view.getUint16(local + 28, true) !== 0) return undefined;
    for (let i = 0; i < nameLength; i += 1) if (bytes[local + LOCAL_FIXED + i] !== bytes[at + CENTRAL_FIXED + i]) return undefined;
    const contentStart = local + LOCAL_FIXED + nameLength;
    if (contentStart + size > directoryStart) return undefined;
    files.set(name, { content: bytes.subarray(contentStart, contentStart + size), crc32: view.getUint32(at + 16, true) });
    expected = contentStart + size;
  }
  return expected === directoryStart ? files : undefined;
};

/**
 * A file name that appears more than once in a zip's central directory,
 * the names decoded as @endo/zip decodes them, or undefined. Our writer
 * never repeats a name; @endo/zip's reader keeps the last copy silently.
 */
export const repeatedZipName = (bytes: Uint8Array): string | undefined => {
  const seen = new Set<string>();
  for (const { name } of centralDirectory(bytes)?.entries ?? []) {
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return undefined;
};
