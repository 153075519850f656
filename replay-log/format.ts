/**
 * The replay log file format, version 1.
 *
 *   file    := magic frame*
 *   magic   := "MSNPLOG\n"                      8 bytes
 *   frame   := type:u8 length:u32le crc:u32le payload[length]
 *              crc is CRC-32 of the type byte followed by the payload;
 *              length is at most MAX_FRAME_BYTES (1 GiB): a larger one is
 *              damage, not a frame cut short
 *   type    := 1 header   payload = msgpack LogHeader (the first frame, once)
 *            | 2 entries  payload = entry+       (entries never span frames)
 *            | 3 end      payload = msgpack LogTrailer (a sealed log ends here;
 *                                                its event count is checked)
 *
 *   entry   := 0x01 f64le                        now: Date.now() / new Date()
 *            | 0x02 f64le                        perf: performance.now()
 *            | 0x03 byte[16]                     seed: Math.random generator seed
 *            | 0x04 n:varuint byte[n]            random: crypto randomness
 *            | 0x10 n:varuint byte[n]            start, call, settle, timer, send, ret:
 *                                                a msgpack tuple (codec.ts)
 *            | 0x11 op:varuint n:varuint byte[n] sys: msgpack [args, outcome, value],
 *                                                op indexes the log's op names
 *            | 0x12 n:varuint utf8[n]            defines the next op name (not an event;
 *                                                it precedes the first sys that uses it)
 *
 * The fast kinds skip msgpack so that replaying a million clock reads costs
 * a tag compare and a float load each. A frame is written whenever the
 * service ends a turn (or the buffer fills), so a build that dies loses at
 * most the turn in progress; the reader verifies every frame before replay
 * starts, and tells a truncated file (LOG_TRUNCATED) from a damaged one
 * (LOG_CORRUPT) by the offset where it stopped making sense.
 */

export const MAGIC = Uint8Array.from(Buffer.from('MSNPLOG\n', 'latin1'));
export const FORMAT_NAME = 'membrane-snapshot/replay-log';
export const FORMAT_VERSION = 1;

export const FRAME_HEADER = 1;
export const FRAME_ENTRIES = 2;
export const FRAME_END = 3;
export const FRAME_OVERHEAD = 9;
/** The largest frame payload a reader accepts, in bytes (1 GiB). */
export const MAX_FRAME_BYTES = 2 ** 30;
/** The range of a recorded `Date.now()`, in ms (what `new Date(ms)` accepts). */
export const MAX_TIME_MS = 8.64e15;

export const TAG_NOW = 0x01;
export const TAG_PERF = 0x02;
export const TAG_SEED = 0x03;
export const TAG_RANDOM = 0x04;
export const TAG_MSG = 0x10;
export const TAG_SYS = 0x11;
export const TAG_OPNAME = 0x12;

export const SEED_BYTES = 16;
