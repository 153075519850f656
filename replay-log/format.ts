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
 *            | 0x13 op:varuint was:varuint n:varuint byte[n]
 *                                                sys, kept (version 2): as 0x11, and later
 *                                                0x14 entries may repeat it; its one argument
 *                                                is a string and its outcome a returned
 *                                                primitive. was = 0, or 1 + the event index
 *                                                of the kept entry of the same op and
 *                                                argument that it replaces (a new outcome)
 *            | 0x14 of:varuint                    repeat (version 2): a sys event identical to
 *                                                the kept event `of` (op, argument, outcome)
 *
 * The fast kinds skip msgpack so that replaying a million clock reads costs
 * a tag compare and a float load each. A repeated read (the same
 * `process.env` key or `existsSync` path, answered the same) costs a tag and
 * a back-reference: a service reading `NODE_ENV` in a hot path records 2 to
 * 4 bytes per read, not an encoded entry. At most MAX_KEPT entries are kept
 * at a time (the reader holds them decoded), each of at most KEPT_MAX_BYTES. A frame is written whenever the
 * service ends a turn (or the buffer fills), so a build that dies loses at
 * most the turn in progress; the reader verifies every frame before replay
 * starts, and tells a truncated file (LOG_TRUNCATED) from a damaged one
 * (LOG_CORRUPT) by the offset where it stopped making sense.
 */

export const MAGIC = Uint8Array.from(Buffer.from('MSNPLOG\n', 'latin1'));
export const FORMAT_NAME = 'membrane-snapshot/replay-log';
/**
 * Answer numbers of calls (call and ret entries) stay below 2^48: no build
 * makes that many calls, and a restored service numbers the calls made to
 * it while it replays from there on (membrane.ts), so that no answer a log
 * replays can settle one of them. A log with a larger one is refused.
 */
export const LIVE_ANSWERS_FROM = 2 ** 48;
/**
 * The version written. Version 2 added kept and repeat entries (0x13,
 * 0x14); version 3 copies a call's arguments as one clone: an object an
 * earlier argument holds is the tag `argref` (its pre-order number counted
 * from the first argument's first object), where version 2 copied it again;
 * and a service's Math.random, generated from the seed entry (clock.ts),
 * gives 52 random bits a value where versions 1 and 2 gave 32.
 */
export const FORMAT_VERSION = 3;
/** The versions read: version 1 is version 2 without kept and repeat entries, version 2 is version 3 without argref. */
export const READ_VERSIONS: readonly number[] = [1, 2, 3];

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
export const TAG_SYS_KEPT = 0x13;
export const TAG_REPEAT = 0x14;

/** Kept sys entries alive at once (a reader holds each decoded). */
export const MAX_KEPT = 1024;
/** The largest encoded kept entry, in bytes (its tuple: an argument and a value of at most KEPT_MAX_CHARS each). */
export const KEPT_MAX_BYTES = 8192;
/** The longest argument or returned string a writer keeps, in UTF-16 code units. */
export const KEPT_MAX_CHARS = 1024;

export const SEED_BYTES = 16;
