/**
 * replay-log: the replay log as data. Entry types, the msgpack codec, the
 * framed file format with checksums, a streaming writer, a verifying reader
 * and a readable dump. Usable on its own: tools read logs without loading
 * any service.
 */
export { SnapshotError, isSnapshotError, describeError } from './errors.js';
export type { SnapshotErrorCode } from './errors.js';
export { Slot, Tagged, wireEqual, wireDifference, describeWire, codeUnits, fromCodeUnits, viewConstructors, isWellFormed, isRecordKey, objectWire, objectEntries, primitiveWire, isDOMException, boxedValue, branded, isArrayIndex, NOT_PRIMITIVE, UNIQUE_SYMBOL } from './wire.js';
export type { Side, TagName, ErrorRecord } from './wire.js';
export { isDelivery } from './entries.js';
export type {
  Entry,
  EntryKind,
  DeliveryEntry,
  SyscallEntry,
  StartEntry,
  CallEntry,
  SettleEntry,
  TimerEntry,
  SysEntry,
  SendEntry,
  RetEntry,
  Outcome,
  Wire,
  LogHeader,
  LogTrailer,
} from './entries.js';
export { packr } from './codec.js';
export { Secret, secret, isSecret, revealSecret, makeSealer, bindSealer, parseSealKey, sealKeyId, SEAL_KEY_BYTES } from './seal.js';
export type { Sealer, SealKey } from './seal.js';
export { MAX_FRAME_BYTES, FORMAT_NAME, FORMAT_VERSION, LIVE_ANSWERS_FROM, TAG_NOW, TAG_PERF, TAG_SEED, TAG_RANDOM, TAG_MSG, SEED_BYTES } from './format.js';
export { LogWriter, fileSink, memorySink } from './writer.js';
export type { LogSink } from './writer.js';
export { LogReader, LogCursor, cursorEntries } from './reader.js';
export type { CursorSource, CursorShared } from './reader.js';
export { walkLog, readLogFile, memorySource } from './frames.js';
export type { ByteSource, LogItem } from './frames.js';
export { describeEntry, dumpLog, dumpLogFile } from './describe.js';
