/**
 * `node:fs` inside a service: the sync, callback and promise APIs, each call
 * a syscall named after the operation (`fs.readFileSync`). Sync calls return
 * synchronously; callback and promise calls are async syscalls whose result
 * is a delivery. Results cross as data: `Stats` and `Dirent` are rebuilt
 * inside from plain records; file descriptors are virtual numbers mapped to
 * real ones on the host, so a descriptor from the build is dead (STALE_HANDLE)
 * after restore instead of silently meaning another file. `fs.promises.open`
 * hands out its FileHandle as a reference, which dies the same way.
 *
 * The host side of every call that names a path checks the service's reach
 * policy first (compartments/reach.ts): `pathRoles` says which arguments
 * are read and which are written.
 */
import hostFs from 'node:fs';
import hostPath from 'node:path';
import hostTimers from 'node:timers';
import { types } from 'node:util';
import { fileURLToPath } from 'node:url';
import { SnapshotError } from '../replay-log/index.js';
import type { Membrane } from '../membrane/index.js';
import { makeReach, type Reach } from './reach.js';
import { makeSecretMatcher, type SecretMatcher } from './secrets.js';
import { makeFileStreams, type StreamFs, type StreamModule } from './fs-streams.js';
import { abortError, invalidArgType, invalidArgValue, nodeError, outOfRange, validateFunction, validateInt32, validateInteger } from './node-style-errors.js';
import { likeHost, likeHostAll, likeHostPrototype } from './host-shape.js';

/** A descriptor no process has open (past every RLIMIT_NOFILE): a host call on it fails with EBADF, Node's own error for its syscall. */
const BAD_FD = 2 ** 31 - 1;


/** Calls go through `apply`, not spread: under lockdown V8 runs a spread call through the (frozen) array iterator, about 0.5 us a call. */
const { apply } = Reflect;
const { defineProperty } = Object;

type Fn = (...args: unknown[]) => unknown;

/**
 * How this Node's readSync and read check their `position` (lib/fs.js, lib/internal/fs/utils.js validatePosition),
 * asked once of the host's readSync, on a descriptor no process has open:
 * - `checkedFirst`: Node 24 checks it before it returns 0 for a read of length 0 (Node 20 and 22 return 0 first,
 *   whatever the position): readSync(BAD_FD, buffer, 0, 0, 'x') throws ERR_INVALID_ARG_TYPE there, and reads
 *   nothing anywhere;
 * - `fromMinusOne`: Node 22 and later take a bigint position from -1n to 2n ** 63n - 1n - length (`>= -1 && <= ...`
 *   in its RangeError), Node 20 any 64-bit one: -2n is refused at once there, and reaches the descriptor (EBADF)
 *   on Node 20.
 */
let positionRules: { checkedFirst: boolean; fromMinusOne: boolean } | undefined;
const readPositionRules = (): { checkedFirst: boolean; fromMinusOne: boolean } => {
  if (positionRules === undefined) {
    const refusal = (position: unknown, length: number): unknown => {
      try {
        hostFs.readSync(BAD_FD, Buffer.alloc(1), 0, length, position as number);
        return undefined;
      } catch (error) {
        return (error as { code?: unknown }).code;
      }
    };
    positionRules = { checkedFirst: refusal('x', 0) === 'ERR_INVALID_ARG_TYPE', fromMinusOne: refusal(-2n, 1) === 'ERR_OUT_OF_RANGE' };
  }
  return positionRules;
};

/** Node's validatePosition for a read of `length` bytes: an integer from -1, or a bigint in this Node's range (readPositionRules). */
const validatePosition = (position: unknown, length: number, fromMinusOne: boolean): void => {
  if (typeof position === 'number') validateInteger(position, 'position', -1);
  else if (typeof position === 'bigint') {
    const [min, max] = fromMinusOne ? [-1n, 2n ** 63n - 1n - BigInt(length)] : [-(2n ** 63n), 2n ** 63n - 1n];
    if (!(position >= min && position <= max)) throw outOfRange('position', `>= ${min} && <= ${max}`, position);
  } else throw invalidArgType('position', 'of type bigint or integer', position);
};

/**
 * Does this Node check fs.symlink's `type` before anything else? Node 24 does, in symlink, symlinkSync and
 * promises.symlink: `validateOneOf(type, 'type', ['dir', 'file', 'junction', null, undefined])`, before the paths,
 * and in the callback form only when a callback is given (without one, the type is taken as the callback); Node
 * 20 and 22 take the last argument as the callback, and a type that is no string as null. Asked once of the
 * host's callback form, with a function as type and a string as callback: Node 24 refuses the type
 * (ERR_INVALID_ARG_VALUE), the others the callback (ERR_INVALID_ARG_TYPE), both before any path is looked at.
 */
let symlinkTypeChecked: boolean | undefined;
const symlinkTypeFirst = (): boolean => {
  if (symlinkTypeChecked === undefined) {
    try {
      (hostFs.symlink as unknown as (...args: unknown[]) => void)('', '', () => undefined, 'a sample');
      symlinkTypeChecked = false;
    } catch (error) {
      symlinkTypeChecked = (error as { code?: unknown }).code === 'ERR_INVALID_ARG_VALUE';
    }
  }
  return symlinkTypeChecked;
};

/** Node 24's check of a symlink type (validateOneOf). */
const validateSymlinkType = (type: unknown): void => {
  if (!['dir', 'file', 'junction', null, undefined].includes(type as string)) throw invalidArgValue('type', type, "must be one of: 'dir', 'file', 'junction', null, undefined");
};

/** Operations whose arguments and results are plain data. */
const plainOps = [
  'readFile',
  'writeFile',
  'appendFile',
  'access',
  'mkdir',
  'mkdtemp',
  'rm',
  'rmdir',
  'unlink',
  'rename',
  'copyFile',
  'realpath',
  'readlink',
  'symlink',
  'link',
  'chmod',
  'chown',
  'lchown',
  'truncate',
  'utimes',
  'lutimes',
  'cp',
] as const;

/**
 * Which path arguments of an operation are read (`r`) or written (`w`), checked where they lead; in capitals,
 * where the operation acts on the last part itself, a link included (unlink, rename, rm, lstat, readlink:
 * checked at the link, not its target, found by the adversarial review); `wW` both (fs.cp replaces a link
 * at its destination with a file, and copies a directory into where a link leads).
 */
const pathRoles: Record<string, readonly ('r' | 'w' | 'R' | 'W' | 'wW' | '-')[]> = {
  readFile: ['r'],
  access: ['r'],
  realpath: ['r'],
  readlink: ['R'],
  stat: ['r'],
  lstat: ['R'],
  readdir: ['r'],
  exists: ['r'],
  writeFile: ['w'],
  appendFile: ['w'],
  mkdir: ['w'],
  mkdtemp: ['w'],
  rm: ['W'],
  rmdir: ['W'],
  unlink: ['W'],
  chmod: ['w'],
  truncate: ['w'],
  utimes: ['w'],
  rename: ['W', 'W'],
  copyFile: ['r', 'w'],
  cp: ['r', 'wW'],
  symlink: ['-', 'W'],
  // A hard link: of the path itself (Linux does not follow a link there), a new name that is written. The file
  // linked is written too: its new name writes it (a snapshot's manifest, linked into a directory a service may
  // write, was rewritten through the link: found by the adversarial review). Linux's protected_hardlinks asks as
  // much of a user who does not own the file.
  link: ['W', 'W'],
  chown: ['w'],
  lchown: ['W'],
  lutimes: ['W'],
};

/**
 * Where Node's callback API finds each operation's callback (lib/fs.js):
 * [arguments it requires, the callback's position]. When nothing is at that
 * position, an optional argument before it that is a function is the
 * callback (`fs.stat(p, cb)`); for readFile, writeFile and appendFile any
 * value there is (`callback || options`: `fs.readFile(p, 'x')` names 'x' in
 * its error). Arguments after the callback are ignored, as Node ignores them.
 */
const callbackAt: Record<string, readonly [required: number, position: number]> = {
  readFile: [1, 2],
  writeFile: [2, 3],
  appendFile: [2, 3],
  access: [1, 2],
  mkdir: [1, 2],
  mkdtemp: [1, 2],
  rm: [1, 2],
  rmdir: [1, 2],
  unlink: [1, 1],
  rename: [2, 2],
  copyFile: [2, 3],
  realpath: [1, 2],
  readlink: [1, 2],
  symlink: [2, 3],
  chmod: [2, 2],
  truncate: [1, 2],
  utimes: [3, 3],
  link: [2, 2],
  chown: [3, 3],
  lchown: [3, 3],
  lutimes: [3, 3],
  cp: [2, 3],
  stat: [1, 2],
  lstat: [1, 2],
  readdir: [1, 2],
};
const callbackOrOptions = new Set(['readFile', 'writeFile', 'appendFile', 'symlink']);

/**
 * The callback of a callback-API call of `op`, as Node finds it, and the arguments before it. Two rules in
 * lib/fs.js: readFile, writeFile, appendFile and symlink take `callback || options` (what is at the callback's
 * place when set, else what is before it); the others take a function at the optional argument's place as
 * the callback (`typeof options === 'function'`), whatever follows it, else what is at the callback's place.
 */
const splitCallback = (op: string, args: readonly unknown[]): { callback: unknown; rest: unknown[] } => {
  const [required, position] = callbackAt[op] ?? [1, args.length - 1];
  const optional = position - 1 >= required ? position - 1 : undefined;
  if (optional !== undefined && !callbackOrOptions.has(op) && typeof args[optional] === 'function') return { callback: args[optional], rest: args.slice(0, optional) };
  if (args[position] !== undefined && (!callbackOrOptions.has(op) || args[position])) return { callback: args[position], rest: args.slice(0, position) };
  if (optional !== undefined && callbackOrOptions.has(op) && args[optional]) return { callback: args[optional], rest: args.slice(0, optional) };
  return { callback: undefined, rest: args.slice(0, position) };
};

/** Operations that take a descriptor in place of their path. */
const descriptorOps = new Set(['readFile', 'writeFile', 'appendFile', 'truncate']);

/** Does opening with `flags` write? (`r` and `rs` only read; `r+` both.) */
const opensForWrite = (flags: unknown): boolean => {
  if (flags === undefined || flags === null) return false;
  if (typeof flags === 'number') return (flags & (hostFs.constants.O_WRONLY | hostFs.constants.O_RDWR | hostFs.constants.O_CREAT | hostFs.constants.O_TRUNC | hostFs.constants.O_APPEND)) !== 0;
  return !/^r?s?$/.test(String(flags).replace('b', ''));
};

/** Does opening with `flags` read? (Everything but `w`, `wx`, `a`, `ax` and O_WRONLY.) */
const opensForRead = (flags: unknown): boolean => {
  if (flags === undefined || flags === null) return true;
  if (typeof flags === 'number') return (flags & hostFs.constants.O_WRONLY) === 0;
  const text = String(flags);
  return text.includes('r') || text.includes('+');
};

interface StatsRecord {
  [key: string]: number | bigint | string | boolean;
  kind: string;
}

/** Node's Stats fields, in Node's order (Object.keys and JSON.stringify of a Stats list them so). */
const statFields = ['dev', 'mode', 'nlink', 'uid', 'gid', 'rdev', 'blksize', 'ino', 'size', 'blocks', 'atimeMs', 'mtimeMs', 'ctimeMs', 'birthtimeMs'] as const;
/** BigIntStats has these too, in nanoseconds. */
const nsFields = ['atimeNs', 'mtimeNs', 'ctimeNs', 'birthtimeNs'] as const;

const kindOf = (s: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): string =>
  s.isFile() ? 'file' : s.isDirectory() ? 'directory' : s.isSymbolicLink() ? 'symlink' : s.isFIFO() ? 'fifo' : s.isSocket() ? 'socket' : s.isCharacterDevice() ? 'char' : s.isBlockDevice() ? 'block' : 'unknown';

/**
 * What the log keeps of a Stats (undefined stays undefined: `throwIfNoEntry: false`).
 * A BigIntStats (`{ bigint: true }`) keeps its bigints and nanosecond fields.
 */
const statsRecord = (s: hostFs.Stats | hostFs.BigIntStats | undefined): StatsRecord | undefined => {
  if (s === undefined) return undefined;
  const r: StatsRecord = { kind: kindOf(s as hostFs.Stats) };
  if (typeof s.size === 'bigint') {
    r.bigint = true;
    for (const f of [...statFields, ...nsFields]) r[f] = (s as hostFs.BigIntStats)[f];
  } else for (const f of statFields) r[f] = Number((s as hostFs.Stats)[f]);
  return r;
};

class KindMethods {
  readonly #kind: string;
  constructor(kind: string) {
    this.#kind = kind;
  }
  isFile(): boolean {
    return this.#kind === 'file';
  }
  isDirectory(): boolean {
    return this.#kind === 'directory';
  }
  isSymbolicLink(): boolean {
    return this.#kind === 'symlink';
  }
  isFIFO(): boolean {
    return this.#kind === 'fifo';
  }
  isSocket(): boolean {
    return this.#kind === 'socket';
  }
  isCharacterDevice(): boolean {
    return this.#kind === 'char';
  }
  isBlockDevice(): boolean {
    return this.#kind === 'block';
  }
}

/**
 * A Date from a time in ms (number or bigint) as Node makes one (lib/internal/fs/utils.js dateFromMs: rounded),
 * with the service's Date.prototype when it is given (`stats.mtime.constructor === Date` inside the service).
 */
const dateFromMs = (ms: unknown, prototype: object | undefined): Date => {
  const date = new Date(Math.round(Number(ms)));
  if (prototype) Object.setPrototypeOf(date, prototype);
  return date;
};

/** The four Dates of a Stats, each from its `...Ms` field. */
const dateFields = ['atime', 'mtime', 'ctime', 'birthtime'] as const;

/**
 * How this Node gives a Stats its Dates, asked of the host's own Stats class (no Stats is made, nothing is read):
 * - Node 20: as own data properties, set by the constructor (lib/internal/fs/utils.js, Stats);
 * - Node 22 and later: as accessors on Stats.prototype and BigIntStats.prototype (`lazyDateFields`, enumerable and
 *   configurable), whose getter, when first read, makes the Date from the `...Ms` field as it is then and defines it
 *   on the Stats itself, and whose setter defines the value given there. The own property they define differs by
 *   line: Node 22's getter assigns it through the setter, `ObjectDefineProperty(this, 'atime', { value, writable:
 *   true })`, neither enumerable nor configurable; Node 24's `setOwnProperty` makes one enumerable and configurable.
 *   So the shape of each is taken from the host's getter and setter, run on a sample object inheriting the host's
 *   Stats.prototype (the getter reads only its `atimeMs`).
 * null when the Dates are own properties from the start.
 */
const lazyDates = ((): { got: PropertyDescriptor; set: PropertyDescriptor } | null => {
  const accessor = Object.getOwnPropertyDescriptor(hostFs.Stats.prototype, 'atime');
  if (typeof accessor?.get !== 'function') return null;
  const shapeOf = (make: (sample: Record<string, unknown>) => void): PropertyDescriptor => {
    const sample = Object.create(hostFs.Stats.prototype) as Record<string, unknown>;
    sample.atimeMs = 0;
    make(sample);
    const { writable, enumerable, configurable } = Object.getOwnPropertyDescriptor(sample, 'atime') ?? {};
    return { writable, enumerable, configurable };
  };
  return { got: shapeOf(sample => void sample.atime), set: shapeOf(sample => void (sample.atime = 0)) };
})();

/**
 * Node 22 and later: `fs.Stats` is the Stats class wrapped by util.deprecate (lib/fs.js: `Stats: deprecate(Stats,
 * 'fs.Stats constructor is deprecated.', 'DEP0180')`), which warns when called; the Stats that fs makes are of the
 * class itself (their `constructor` is named Stats). Seen on the host's: its prototype's constructor is another
 * function. endowments.ts wraps the service's fs.Stats with the service's own util.deprecate then.
 */
export const statsConstructorDeprecated: { message: string; code: string } | null =
  hostFs.Stats.prototype.constructor !== hostFs.Stats ? { message: 'fs.Stats constructor is deprecated.', code: 'DEP0180' } : null;

/** The Date.prototype each Stats's Dates get (the service's), for the accessors of `lazyDates` that make them later. */
const statsDatePrototypes = new WeakMap<object, object | undefined>();

/**
 * A Stats's fields from its record, in Node's order: `fields`, then, where this Node sets them at once
 * (`lazyDates`), the four Dates (rounded as Node's).
 */
const fillStats = (stats: Record<string, unknown>, record: StatsRecord, fields: readonly string[], datePrototype: object | undefined): void => {
  for (const f of fields) stats[f] = record[f];
  if (lazyDates) {
    statsDatePrototypes.set(stats, datePrototype);
    return;
  }
  for (const f of dateFields) stats[f] = dateFromMs(record[`${f}Ms`], datePrototype);
};

/** The first argument reviveStats gives the Stats classes: a Stats made from a record, not Node's arguments. */
const FROM_RECORD = Symbol('a Stats from its record');

/** The kind of file a Stats's `mode` says, as Node's isFile()... read it (lib/internal/fs/utils.js, _checkModeProperty). */
const kindOfMode = (mode: unknown): string => {
  const { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK } = hostFs.constants;
  const kinds: Record<number, string> = { [S_IFREG]: 'file', [S_IFDIR]: 'directory', [S_IFLNK]: 'symlink', [S_IFIFO]: 'fifo', [S_IFSOCK]: 'socket', [S_IFCHR]: 'char', [S_IFBLK]: 'block' };
  return kinds[(mode as number) & S_IFMT] ?? 'unknown';
};

/**
 * fs.Stats as a service sees it: Node's fields in Node's order, its Dates rounded as Node's. Made from a record
 * (reviveStats), or by the service with Node's arguments (`new fs.Stats(dev, mode, ..., birthtimeMs)`, each field
 * as given, the kind from `mode`), as Node's constructor takes them.
 */
class Stats extends KindMethods {
  [key: string]: unknown;
  constructor(...args: unknown[]) {
    const record: StatsRecord = args[0] === FROM_RECORD ? (args[1] as StatsRecord) : { kind: kindOfMode(args[1]) };
    if (args[0] !== FROM_RECORD) statFields.forEach((field, i) => (record[field] = args[i] as number));
    super(record.kind);
    fillStats(this, record, statFields, args[0] === FROM_RECORD ? (args[2] as object | undefined) : undefined);
  }
}

/** fs.BigIntStats: bigint fields, the nanosecond ones too. */
class BigIntStats extends KindMethods {
  [key: string]: unknown;
  constructor(from: typeof FROM_RECORD, record: StatsRecord, datePrototype?: object) {
    super(record.kind);
    fillStats(this, record, [...statFields, ...nsFields], datePrototype);
  }
}

if (lazyDates) {
  // Node's `lazyDateFields`, shared by Stats.prototype and BigIntStats.prototype as Node shares them: the getter
  // makes the Date from the `...Ms` field as it is when read, and both define the own property as the host's do.
  for (const field of dateFields) {
    const msField = `${field}Ms`;
    const accessors = {
      get(this: Record<string, unknown>): unknown {
        defineProperty(this, field, { ...lazyDates.got, value: dateFromMs(this[msField], statsDatePrototypes.get(this)) });
        return this[field];
      },
      set(this: Record<string, unknown>, value: unknown): void {
        defineProperty(this, field, { ...lazyDates.set, value });
      },
    };
    for (const prototype of [Stats.prototype, BigIntStats.prototype]) defineProperty(prototype, field, { get: accessors.get, set: accessors.set, enumerable: true, configurable: true });
  }
}

const reviveStats = (record: unknown, datePrototype: object | undefined): Stats | BigIntStats | undefined =>
  record === undefined ? undefined : (record as StatsRecord).bigint === true ? new BigIntStats(FROM_RECORD, record as StatsRecord, datePrototype) : new Stats(FROM_RECORD, record, datePrototype);

/**
 * Does this Node's Dirent have `path` (the same as `parentPath`)? Node 20 and 22 do; Node 24 removed it
 * (lib/internal/fs/utils.js, Dirent's constructor). Asked of a Dirent the host makes.
 */
const direntHasPath = Object.hasOwn(new (hostFs.Dirent as unknown as new (name: string, type: number, path: string) => object)('sample', (hostFs.constants as { UV_DIRENT_FILE?: number }).UV_DIRENT_FILE ?? 1, '/'), 'path');

class Dirent extends KindMethods {
  readonly name: string;
  readonly parentPath: string;
  /** Own where this Node's Dirent has it (direntHasPath): declared only, or every Dirent would get one. */
  declare readonly path: string;
  constructor(record: { name: string; kind: string; parentPath: string }) {
    super(record.kind);
    this.name = record.name;
    this.parentPath = record.parentPath;
    if (direntHasPath) (this as { path: string }).path = record.parentPath;
  }
  // Dirent's own, as Node's (Node's Stats inherit theirs from StatsBase, as KindMethods here, except isFile).
  isFile(): boolean {
    return super.isFile();
  }
  isDirectory(): boolean {
    return super.isDirectory();
  }
  isSymbolicLink(): boolean {
    return super.isSymbolicLink();
  }
  isFIFO(): boolean {
    return super.isFIFO();
  }
  isSocket(): boolean {
    return super.isSocket();
  }
  isCharacterDevice(): boolean {
    return super.isCharacterDevice();
  }
  isBlockDevice(): boolean {
    return super.isBlockDevice();
  }
}
// Stats.prototype has its own isFile, as Node's (an anonymous function there, as the others of StatsBase).
const kindIsFile = KindMethods.prototype.isFile;
Object.defineProperty(Stats.prototype, 'isFile', {
  value: function (this: Stats) {
    return Reflect.apply(kindIsFile, this, []);
  },
  writable: true,
  enumerable: false,
  configurable: true,
});
likeHostPrototype(KindMethods.prototype, Object.getPrototypeOf(hostFs.Stats.prototype) as object);
likeHostPrototype(Stats.prototype, hostFs.Stats.prototype);
likeHostPrototype(BigIntStats.prototype, hostFs.Stats.prototype);
likeHostPrototype(Dirent.prototype, hostFs.Dirent.prototype);
// Named after the host's class itself (Stats, 14), not after the fs.Stats that wraps it from Node 22 on ('deprecated').
harden(likeHost(Stats, hostFs.Stats.prototype.constructor));
harden(BigIntStats);
harden(likeHost(Dirent, hostFs.Dirent));

/**
 * Does this Node's `dir.read()` (no argument) reject when the Dir is closed? Node 22 and later do: read() with no
 * argument is `this.#readPromisified()`, whose ERR_DIR_CLOSED rejects (lib/internal/fs/dir.js); Node 20 runs
 * `this[kDirReadImpl](true)`, which throws it at once (read(undefined) still throws on every line). Asked once, when
 * a closed Dir is first read, of a host Dir made on a handle of this module's that opens nothing (Node's Dir
 * only calls its close(), then its read() refuses); a Dir that cannot be made so answers as Node 20's.
 */
let closedDirRejects: boolean | undefined;
const closedDirReadRejects = (): boolean => {
  if (closedDirRejects === undefined) {
    closedDirRejects = false;
    try {
      const sample = Reflect.construct(hostFs.Dir, [{ read: () => null, close: () => undefined }, '/', undefined]) as hostFs.Dir;
      sample.closeSync();
      const answer = (sample.read as () => unknown)();
      if (answer instanceof Promise) {
        closedDirRejects = true;
        answer.catch(() => undefined);
      }
    } catch {
      // Thrown at once, as Node 20's.
    }
  }
  return closedDirRejects;
};

/**
 * fs.Dir as a service sees it (fs.opendir, opendirSync, promises.opendir):
 * the directory's entries (Dirents) as listed when it was opened, one
 * listing recorded as readdir records it, handed out one by one by
 * read() / readSync() and its async iterator (which closes it at the end).
 * Reads are answered on the next tick (Node reads in batches, and answers
 * buffered entries so). After close, Node's ERR_DIR_CLOSED.
 */
class Dir {
  readonly #path: string;
  readonly #entries: unknown[];
  /** The next entry to hand out (an index: shift() moves the rest of a large listing each read). */
  #next = 0;
  readonly #nextTick: (callback: () => void) => void;
  #closed = false;
  constructor(path: string, entries: unknown[], nextTick: (callback: () => void) => void) {
    this.#path = path;
    this.#entries = entries;
    this.#nextTick = nextTick;
  }
  get path(): string {
    return this.#path;
  }
  /** Reads asked and not yet answered: Node refuses synchronous work on the handle meanwhile. */
  #pending = 0;
  #checkOpen(): void {
    if (this.#closed) throw nodeError(Error, 'ERR_DIR_CLOSED', 'Directory handle was closed');
  }
  #checkIdle(): void {
    if (this.#pending > 0) throw nodeError(Error, 'ERR_DIR_CONCURRENT_OPERATION', 'Cannot do synchronous work on directory handle with concurrent asynchronous operations');
  }
  readSync(): unknown {
    this.#checkOpen();
    this.#checkIdle();
    return this.#take();
  }
  #take(): unknown {
    return this.#next < this.#entries.length ? this.#entries[this.#next++] : null;
  }
  read(callback?: unknown): Promise<unknown> | undefined {
    // A closed handle: Node 20 throws at once, whichever form; Node 22 and later reject read() (closedDirReadRejects).
    if (arguments.length === 0 && closedDirReadRejects()) return new Promise((resolve, reject) => this.read((error: unknown, entry: unknown) => (error ? reject(error) : resolve(entry))));
    this.#checkOpen();
    if (callback === undefined) return new Promise((resolve, reject) => this.read((error: unknown, entry: unknown) => (error ? reject(error) : resolve(entry))));
    validateFunction(callback, 'callback');
    this.#pending += 1;
    this.#nextTick(() => {
      this.#pending -= 1;
      let outcome: unknown[];
      try {
        this.#checkOpen();
        outcome = [null, this.#take()];
      } catch (error) {
        outcome = [error];
      }
      apply(callback, undefined, outcome);
    });
    return undefined;
  }
  closeSync(): void {
    this.#checkOpen();
    this.#checkIdle();
    this.#closed = true;
    this.#entries.length = 0;
  }
  close(callback?: unknown): Promise<void> | undefined {
    if (callback === undefined) return new Promise((resolve, reject) => this.close((error: unknown) => (error ? reject(error) : resolve())));
    validateFunction(callback, 'callback');
    let outcome: unknown[];
    try {
      this.closeSync();
      outcome = [null];
    } catch (error) {
      outcome = [error];
    }
    this.#nextTick(() => apply(callback, undefined, outcome));
    return undefined;
  }
  async *entries(): AsyncGenerator<unknown, void, unknown> {
    try {
      for (;;) {
        const entry = await (this.read() as Promise<unknown>);
        if (entry === null) break;
        yield entry;
      }
    } finally {
      if (!this.#closed) this.closeSync();
    }
  }
  [Symbol.asyncIterator](): AsyncGenerator<unknown, void, unknown> {
    return this.entries();
  }
}
harden(Dir);

const direntRecords = (entries: unknown): unknown =>
  Array.isArray(entries) && entries.length > 0 && entries[0] instanceof hostFs.Dirent
    ? (entries as hostFs.Dirent[]).map(d => ({ name: d.name, kind: kindOf(d as unknown as hostFs.Stats), parentPath: (d as { parentPath?: string }).parentPath ?? '' }))
    : entries;

const reviveDirents = (entries: unknown): unknown =>
  Array.isArray(entries) && entries.length > 0 && typeof entries[0] === 'object' && entries[0] !== null && 'kind' in entries[0]
    ? entries.map(e => new Dirent(e as { name: string; kind: string; parentPath: string }))
    : entries;

/**
 * The operations whose promise form takes a `signal`, and where: the position of the options that hold it
 * (Node's lib/internal/fs/promises.js). Only there: an aborted signal anywhere else is ignored by Node, which
 * then opens the file later (found by the adversarial review).
 */
const signalAt: Record<string, number> = { readFile: 1, writeFile: 2, appendFile: 2 };

/** Node's isCustomIterable: what promises.writeFile writes chunk by chunk (an iterable or async iterable, no string or bytes). */
const isCustomIterable = (value: unknown): boolean =>
  typeof value === 'object' && value !== null && !ArrayBuffer.isView(value) && (typeof (value as { [Symbol.iterator]?: unknown })[Symbol.iterator] === 'function' || typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function');

/** The bytes an iterable yields, each chunk as Node's writeFileHandle takes it: bytes as they are, anything else through Buffer.from with the options' encoding. */
const collected = async (data: unknown, options: unknown): Promise<Buffer> => {
  const encoding = (typeof options === 'string' ? options : typeof options === 'object' && options !== null ? (options as { encoding?: unknown }).encoding : undefined) ?? 'utf8';
  const chunks: Buffer[] = [];
  for await (const chunk of data as AsyncIterable<unknown>) {
    chunks.push(ArrayBuffer.isView(chunk) ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) : Buffer.from(chunk as string, encoding as BufferEncoding));
  }
  return Buffer.concat(chunks);
};

/** The key under which fs.cp's options carry to the host the entries the service's filter left out (skipping). */
const cpLeftOut = 'membraneSnapshotLeftOut';

/** fs.cp's options on the host: the entries the service's filter left out (cpLeftOut) become the host's own filter. */
const skipping = (options: unknown): hostFs.CopyOptions | undefined => {
  if (typeof options !== 'object' || options === null || !Array.isArray((options as Record<string, unknown>)[cpLeftOut])) return options as hostFs.CopyOptions | undefined;
  const { [cpLeftOut]: leftOut, filter: _filter, ...rest } = options as Record<string, unknown>;
  const skipped = new Set(leftOut as unknown[]);
  return { ...rest, filter: (source: string) => !skipped.has(source) };
};

/** Paths may be URLs (`new URL('./data.json', import.meta.url)`); they cross as strings. */
const pathArg = (value: unknown): unknown => (value instanceof URL || isUrlLike(value) ? fileURLToPath(value as URL) : value);

/**
 * Node's isURL (lib/internal/url.js): what fs takes for a URL, a URL or any object shaped like one (an
 * href and a protocol, no auth, no path), whose hostname and pathname fileURLToPath then reads. Made a
 * string here, in the service's turn, as Node makes it: an object shaped like a URL crossed to the host
 * as an object no check read as a path (found by the adversarial review).
 */
const isUrlLike = (value: unknown): boolean =>
  typeof value === 'object' && value !== null && !ArrayBuffer.isView(value) && Boolean((value as { href?: unknown }).href && (value as { protocol?: unknown }).protocol && (value as { auth?: unknown }).auth === undefined && (value as { path?: unknown }).path === undefined);

export const makeFs = (
  membrane: Membrane,
  reach: Reach = makeReach(membrane.name, undefined),
  secrets: SecretMatcher = makeSecretMatcher(),
  streams?: { readonly stream: () => StreamModule; readonly Buffer: typeof Buffer; readonly nextTick: (callback: () => void) => void },
  /** Where an error a callback of the service throws goes (Node: an uncaught exception); default: rethrown in a microtask. */
  onUncaught: (error: unknown, where: string) => void = error => queueMicrotask(() => {
    throw error;
  }),
  /** Where writes to descriptors 1 and 2 go (the service's process.stdout and stderr); without it, EBADF as for any descriptor it does not hold. */
  standardWrite?: (fd: 1 | 2, text: string) => void,
): { fs: Record<string, unknown>; promises: Record<string, unknown> } => {
  /** Call the service's callback as Node's fs calls it: what it throws is an uncaught exception, not a rejection. */
  const callBack = (where: string, callback: Fn, ...args: unknown[]): void => {
    try {
      apply(callback, undefined, args);
    } catch (error) {
      onUncaught(error, `${where} callback`);
    }
  };
  /** Descriptors (virtual numbers) opened on secret files: what is read from them is sealed. */
  const secretFds = new Set<number>();
  /** The contents of a secret file, marked so that the log keeps them sealed. */
  /** Is what `op` reads from `target` secret? */
  const readsSecret = (op: string, target: unknown): boolean =>
    op === 'readFile' && (typeof target === 'number' ? secretFds.has(target) : secrets.isSecretFile(target));
  /** `value`, the contents `op` read from `target`, marked so that the log keeps them sealed when `secret`. */
  const markRead = (target: unknown, value: unknown, secret: boolean): unknown => (secret ? secrets.mark(value, true, `the contents of ${String(target)}`) : value);
  /** Check the path arguments of `op` against the reach policy (host side, live only). */
  const guard = (op: string, args: readonly unknown[]): void => {
    const roles = pathRoles[op] ?? [];
    // A descriptor was checked when it was opened (descriptorArgs maps it).
    if (descriptorOps.has(op) && typeof args[0] === 'number') return;
    for (let i = 0; i < roles.length; i += 1) {
      for (const role of roles[i] === '-' ? [] : roles[i]) {
        const write = role === 'w' || role === 'W';
        reach.checkPath(args[i], write, `${write ? 'write' : 'read'} (fs.${op})`, role === 'r' || role === 'w');
      }
    }
    // A link into /proc or /dev (or a copy of a tree holding such links) would lead there from a path the checks do not resolve.
    if (op === 'symlink') reach.checkLinkTarget(args[0], args[1], 'link to (fs.symlink)');
    if (op === 'cp') reach.checkLinkTarget(args[0], undefined, 'copy (fs.cp)');
    // Links followed (Node's `stat` in place of `lstat`, on both sides): the files of the tree must be checked one by one.
    if (op === 'cp' && typeof args[2] === 'object' && args[2] !== null && (args[2] as { dereference?: unknown }).dereference) reach.checkTree(args[0], args[1], 'copy, links followed (fs.cp)');
    // Where each directory of a tree moved or copied lands is a write there (a build cache planted so, found by the adversarial review).
    else if (op === 'cp' || op === 'rename') reach.checkTreeInto(args[0], args[1], `write (fs.${op})`);
    // Node's recursive readdir goes into the directories links lead to (found by the adversarial review): each is checked.
    if (op === 'readdir' && typeof args[1] === 'object' && args[1] !== null && (args[1] as { recursive?: unknown }).recursive) reach.checkTree(args[0], undefined, 'list, recursively (fs.readdir)');
    // A copy or a new name of a secret file is as secret (its contents are read later under that name).
    if (op === 'copyFile' || op === 'cp' || op === 'rename' || op === 'link') secrets.deriveFile(args[0], args[1]);
  };
  const guardOpen = (op: string, target: unknown, flags: unknown): void => {
    if (opensForRead(flags)) reach.checkPath(target, false, `open (fs.${op})`);
    if (opensForWrite(flags)) reach.checkPath(target, true, `open for writing (fs.${op})`);
  };

  /**
   * The file a descriptor is open on must still be the one at the path it was opened on, for a change
   * checked as a write to that path (fchmod, futimes, ftruncate, a FileHandle's chmod, chown, utimes):
   * a service that moved the path's directory away and put another file there would pass the check and
   * change a file the check never saw (found by the adversarial review).
   */
  const sameFileStill = (op: string, handle: unknown, path: unknown, opened: { dev: number; ino: number }, named: () => { dev: number; ino: number }): void => {
    let now: { dev: number; ino: number } | undefined;
    try {
      now = named();
    } catch {
      now = undefined;
    }
    if (now === undefined || now.dev !== opened.dev || now.ino !== opened.ino) {
      throw new SnapshotError(
        'REACH_DENIED',
        `service "${membrane.name}" tried to ${op} ${String(handle)}, opened on ${String(path)}, which now names another file (or none): refused, as the change would land on a file no check saw. Open the file again and change it through the new descriptor.`,
        { details: { service: membrane.name, kind: 'write', target: `${op} ${String(path)}`, allowed: [] } },
      );
    }
  };

  const fds = new Map<number, number>();
  /** The path each live descriptor was opened on: what fchmod, futimes and ftruncate change is checked as a write to it. */
  const fdPaths = new Map<number, unknown>();
  let nextFd = 1000;

  /** Descriptors the service opened in a replayed turn (before this process went live): open in its state, not on this host. */
  const replayedFds = new Set<number>();

  /**
   * The host descriptor of a service's one. One it opened before restore is
   * STALE_HANDLE (it died with the build); any other it does not hold (never
   * opened, closed, 0 to 2, a host's own) is BAD_FD, on which the host's own
   * call fails with Node's EBADF for its syscall, as Node's does. A value
   * that is no descriptor (not an integer from 0 to 2^31-1) goes as it is,
   * for the host call to refuse as Node does.
   */
  const realFd = (fd: unknown): number => {
    // Not a descriptor at all ('x', 1.5, -1): the host's own call refuses it with Node's error for it.
    if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0 || fd > BAD_FD) return fd as number;
    const real = fds.get(fd);
    if (real !== undefined) return real;
    if (!replayedFds.has(fd as number)) return BAD_FD;
    throw new SnapshotError(
      'STALE_HANDLE',
      `service "${membrane.name}" used file descriptor ${String(fd)}, which is not open here: descriptors opened at build time die with the build. Open the file again after restore.`,
      { details: { service: membrane.name, fd } },
    );
  };

  /**
   * `readFile(fd)`, `writeFile(fd)`...: a descriptor argument is a virtual
   * number; it becomes the real one here. Any other number (0, 1, 2, or a
   * descriptor of the host's own) is refused as Node refuses a closed one,
   * so a service never reaches a descriptor it did not open.
   */
  const descriptorArgs = (op: string, args: unknown[]): unknown[] => {
    if (!descriptorOps.has(op) || typeof args[0] !== 'number') return args;
    return [realFd(args[0]), ...args.slice(1)];
  };

  const call = (op: string, args: unknown[], perform: Fn): unknown => membrane.syscall(op, args, perform);
  /**
   * The host's fs.promises[name], looked up when first called: the first read of fs.promises loads
   * Node's fs/promises and readline modules (about a millisecond), which a restore whose service
   * never awaits a file does without.
   */
  const hostPromise =
    (name: string): Fn =>
    (...args: unknown[]) =>
      apply((hostFs.promises as unknown as Record<string, Fn>)[name], hostFs.promises, args);

  const fs: Record<string, unknown> = {};
  const promises: Record<string, unknown> = {};

  /** `fn` named as Node names the function it stands for, and as long (when given: the host's, where reading it loads nothing). */
  const named = (fn: Fn, name: string, length?: number): Fn => {
    defineProperty(fn, 'name', { value: name, configurable: true });
    if (length !== undefined) defineProperty(fn, 'length', { value: length, configurable: true });
    return fn;
  };

  /**
   * Resolves after `trips` more trips round the host's event loop (its check phase, where the service's
   * immediates run: they are the host's setImmediate too).
   */
  const afterTrips = (trips: number): Promise<void> =>
    trips <= 0 ? Promise.resolve() : new Promise<void>(resolve => hostTimers.setImmediate(() => resolve(afterTrips(trips - 1))));

  /**
   * The trips round the event loop Node's asynchronous `name` takes beyond the first: readFile opens,
   * stats, reads and closes the file on the thread pool, a step a trip (lib/fs.js ReadFileContext,
   * lib/internal/fs/promises.js readFileHandle); writeFile and appendFile open, write and close; rm
   * lstats the path to check its options, then again, then unlinks it (lib/internal/fs/rimraf.js). A
   * service's immediate queued with the call so runs before its answer, as in Node, where it always does
   * (found by the fidelity review: the answer came first, which no run of Node gives). The others take
   * one trip here (cp and the callback realpath take more in Node, a step per file or path part).
   * `byDescriptor`: given a descriptor, there is no open and no close.
   */
  const tripsOf = (name: string, byDescriptor: boolean): number => {
    const steps = name === 'readFile' ? 4 : name === 'writeFile' || name === 'appendFile' || name === 'rm' ? 3 : 1;
    return Math.max(0, steps - (byDescriptor ? 2 : 0) - 1);
  };

  const addAll = (name: string, host: { sync: Fn; promise: Fn }, toRecord: (v: unknown) => unknown = v => v, revive: (v: unknown) => unknown = v => v, prepare: (args: unknown[]) => unknown[] = args => args) => {
    const hostSync = (hostFs as unknown as Record<string, Fn>)[`${name}Sync`];
    const hostCallback = (hostFs as unknown as Record<string, Fn>)[name];
    fs[`${name}Sync`] = named((...args: unknown[]) =>
      revive(
        call(`fs.${name}Sync`, prepare(args), (...a) => {
          guard(name, a);
          // Asked once: nothing of the service runs while a sync read does.
          const secret = readsSecret(name, a[0]);
          return markRead(a[0], toRecord(apply(host.sync, host, descriptorArgs(name, a))), secret);
        }),
      ), `${name}Sync`, hostSync.length);
    /**
     * An asynchronous call `op`, performed by `perform` on the host, answered in a later turn: after
     * `trips` more trips round the event loop, as many as Node's takes beyond the first (tripsOf).
     */
    const asynchronous =
      (op: string, perform: (a: unknown[]) => Promise<unknown>, trips: (a: unknown[]) => number = () => 0) =>
      (...args: unknown[]): Promise<unknown> =>
        (
          call(op, prepare(args), (...a) => {
            guard(name, a);
            // Asked when the read begins and again when it ends: the service runs meanwhile, and may
            // remove the link it read through, or point it at a secret file.
            const secretBefore = readsSecret(name, a[0]);
            return perform(a).then(async v => {
              const record = markRead(a[0], toRecord(v), secretBefore || readsSecret(name, a[0]));
              await afterTrips(trips(a));
              return record;
            });
          }) as Promise<unknown>
        ).then(revive);
    // The promises API takes no descriptor (a number is Node's own argument error, with that number in it).
    // Performed with the host's sync call, in the same turn as the checks of guard: with Node's promise call
    // the file is opened later on the thread pool, and a service that moved a directory in between had its
    // checked path lead elsewhere (the last good snapshot's manifest, found by the adversarial review). Node's
    // promise call only where it fails before it opens anything: a number in place of a path (Node's own
    // argument error). A signal given to an operation that takes none is ignored, as Node ignores it (a service
    // gave one to send an operation to the thread pool, found by the adversarial review). Data to write that is neither a string nor bytes is
    // collected first (promises.writeFile below), or refused by the sync call as Node's callback API does.
    const performed = asynchronous(
      `fs.promises.${name}`,
      a => (typeof a[0] === 'number' ? (apply(host.promise, host, a) as Promise<unknown>) : new Promise(resolve => resolve(apply(host.sync, host, a)))),
      () => tripsOf(name, false),
    );
    // readFile, writeFile and appendFile take a `signal` (signalAt), checked here, on the service's side, where
    // it is the service's own AbortSignal (on the host's it is a reference, whose `aborted` getter a data read
    // does not run: an aborted signal was ignored and the file read or written, found by the fidelity review).
    // As Node's checkAborted (`signal?.aborted`, whatever the signal is): an aborted one is Node's AbortError (its
    // reason the cause) before anything is opened; one aborted while the operation is on its way rejects it too,
    // as Node's does between its steps.
    const promised = (...args: unknown[]): Promise<unknown> => {
      const at = signalAt[name];
      const options = at === undefined ? undefined : args[at];
      const signal = typeof options === 'object' && options !== null ? (options as { signal?: { aborted?: unknown; reason?: unknown } | null }).signal : undefined;
      if (signal === undefined || signal === null) return performed(...args);
      if (signal.aborted) return Promise.reject(abortError(signal.reason));
      return performed(...args).then(value => {
        if (signal.aborted) throw abortError(signal.reason);
        return value;
      });
    };
    // The callback API does (fs.readFile(fd, cb)): the host's sync call on the real descriptor, answered as
    // any asynchronous call is, in a later turn.
    const byDescriptor = asynchronous(`fs.${name}`, a => new Promise(resolve => resolve(apply(host.sync, host, descriptorArgs(name, a)))), () => tripsOf(name, true));
    // Node's promises.writeFile and appendFile write what an iterable or async iterable yields (a Readable,
    // a generator): collected here, in the service's turns, and written in one checked call.
    promises[name] = named(
      name === 'writeFile' || name === 'appendFile'
        ? (...args: unknown[]) => (isCustomIterable(args[1]) ? collected(args[1], args[2]).then(data => promised(args[0], data, ...args.slice(2))) : promised(...args))
        : promised,
      name,
    );
    fs[name] = named((...args: unknown[]) => {
      const { callback, rest } = splitCallback(name, args);
      validateFunction(callback, 'cb');
      const settled = apply(descriptorOps.has(name) && typeof rest[0] === 'number' ? byDescriptor : promised, undefined, rest) as Promise<unknown>;
      settled.then(
        value => callBack(`fs.${name}`, callback as Fn, null, value),
        error => callBack(`fs.${name}`, callback as Fn, error),
      );
    }, name, hostCallback.length);
  };

  const preparePaths = (args: unknown[]) => args.map((a, i) => (i < 2 ? pathArg(a) : a));
  // Every one of these has its fs.promises twin on the Nodes this library supports (20.15 and later).
  for (const name of plainOps) {
    const sync = (hostFs as unknown as Record<string, Fn>)[`${name}Sync`];
    if (name === 'cp') {
      // The entries the service's filter left out (cpFiltered) cross as a list; the host's cp skips them.
      addAll(name, { sync: (...a: unknown[]) => hostFs.cpSync(a[0] as string, a[1] as string, skipping(a[2]) as hostFs.CopySyncOptions | undefined), promise: (...a: unknown[]) => hostFs.promises.cp(a[0] as string, a[1] as string, skipping(a[2])) }, undefined, undefined, preparePaths);
    } else if (typeof sync === 'function') addAll(name, { sync: sync.bind(hostFs), promise: hostPromise(name) }, undefined, undefined, preparePaths);
  }
  if (symlinkTypeFirst()) {
    // Node 24's symlink, symlinkSync and promises.symlink (lib/fs.js, lib/internal/fs/promises.js): the type first.
    const [callbackSymlink, syncSymlink, promisedSymlink] = [fs.symlink, fs.symlinkSync, promises.symlink] as Fn[];
    fs.symlinkSync = named((...args: unknown[]) => (validateSymlinkType(args[2]), apply(syncSymlink, undefined, args)), 'symlinkSync', 3);
    promises.symlink = named((...args: unknown[]) => {
      try {
        validateSymlinkType(args[2]);
      } catch (error) {
        return Promise.reject(error);
      }
      return apply(promisedSymlink, undefined, args);
    }, 'symlink', 3);
    // symlink(target, path, type, callback): with no callback the type is it (makeCallback(type)); with one, the type
    // is checked, and the callback is not (one that is no function is never called, the link made all the same).
    fs.symlink = named((target: unknown, path: unknown, type: unknown, callback: unknown) => {
      if (callback === undefined) {
        validateFunction(type, 'cb');
        [type, callback] = [undefined, type];
      } else validateSymlinkType(type);
      return apply(callbackSymlink, undefined, [target, path, type, typeof callback === 'function' ? callback : () => {}]);
    }, 'symlink', 4);
  } else {
    // Node 20's and 22's symlink (lib/fs.js): the callback is the last argument, whatever comes before it
    // (`makeCallback(arguments[arguments.length - 1])`: symlink(target, path) names the path in its error), and a
    // type that is no string is null.
    const callbackSymlink = fs.symlink as Fn;
    fs.symlink = named((...args: unknown[]) => {
      const callback = args[args.length - 1];
      validateFunction(callback, 'cb');
      return apply(callbackSymlink, undefined, [args[0], args[1], typeof args[2] === 'string' ? args[2] : null, callback]);
    }, 'symlink', 4);
  }
  for (const name of ['stat', 'lstat'] as const) {
    addAll(
      name,
      { sync: hostFs[`${name}Sync`] as Fn, promise: hostPromise(name) },
      v => statsRecord(v as hostFs.Stats | hostFs.BigIntStats | undefined),
      record => reviveStats(record, membrane.guestDatePrototype),
      preparePaths,
    );
  }
  addAll('readdir', { sync: hostFs.readdirSync as Fn, promise: hostPromise('readdir') }, direntRecords, reviveDirents, preparePaths);

  /**
   * fs.cp with a `filter`: the filter is the service's, called in the service's turn as Node calls it: for
   * the top path, then (`recursive`) for each entry of a directory it let in, depth first, in directory
   * order, with source and destination joined as Node joins them. fs.cp and fs.promises.cp await each
   * answer; from fs.cpSync a Promise is Node's ERR_INVALID_RETURN_VALUE. The walk reads the tree with the
   * service's own (checked, recorded) lstat, or stat when following links, and opendir; the host's cp then
   * copies all but the entries left out (cpLeftOut). Unlike Node, every filter call comes before the first
   * copy, and a filter that throws leaves nothing copied.
   */
  const cpWalk = function* (src: string, dest: string, options: { recursive?: unknown; dereference?: unknown }): Generator<[string, string], void, unknown> {
    const include = yield [src, dest];
    if (!include || !options.recursive) return;
    let names: string[];
    try {
      const stat = (options.dereference ? fs.statSync : fs.lstatSync) as (p: string) => { isDirectory(): boolean };
      if (!stat(src).isDirectory()) return;
      // opendir, as Node's cp reads a directory: in the order the directory holds its entries (readdir sorts them).
      const dir = (fs.opendirSync as (p: string) => { readSync(): { name: string } | null; closeSync(): void })(src);
      names = [];
      try {
        for (let entry = dir.readSync(); entry !== null; entry = dir.readSync()) names.push(entry.name);
      } finally {
        dir.closeSync();
      }
    } catch {
      return; // the host's cp fails on it with Node's own error
    }
    for (const name of names) yield* cpWalk(hostPath.join(src, name), hostPath.join(dest, name), options);
  };
  /** The arguments of an fs.cp call whose `filter` is the service's, or undefined (no filter, or paths fs.cp refuses itself). */
  const filteredCp = (args: readonly unknown[]): { src: string; dest: string; options: Record<string, unknown>; filter: Fn } | undefined => {
    const [src, dest, options] = [pathArg(args[0]), pathArg(args[1]), args[2]];
    if (typeof options !== 'object' || options === null || typeof src !== 'string' || typeof dest !== 'string') return undefined;
    const filter = (options as { filter?: unknown }).filter;
    return typeof filter === 'function' ? { src, dest, options: { ...options }, filter: filter as Fn } : undefined;
  };
  /** The options the host's cp gets: the service's, its filter replaced by the list of what it left out. */
  const leavingOut = (options: Record<string, unknown>, leftOut: string[]): Record<string, unknown> => ({ ...options, filter: undefined, [cpLeftOut]: leftOut });
  const hostCpSync = fs.cpSync as Fn;
  fs.cpSync = named((...args: unknown[]) => {
    const filtered = filteredCp(args);
    if (!filtered) return apply(hostCpSync, undefined, args);
    const leftOut: string[] = [];
    const walk = cpWalk(filtered.src, filtered.dest, filtered.options);
    for (let step = walk.next(); !step.done; ) {
      const include = apply(filtered.filter, undefined, step.value);
      if (types.isPromise(include)) throw nodeError(TypeError, 'ERR_INVALID_RETURN_VALUE', `Expected boolean to be returned from the "filter" function but got an instance of Promise.`);
      if (!include) leftOut.push(step.value[0]);
      step = walk.next(include);
    }
    return apply(hostCpSync, undefined, [filtered.src, filtered.dest, leavingOut(filtered.options, leftOut)]);
  }, 'cpSync', hostFs.cpSync.length);
  /** Call the filter on each path of the walk, awaiting each answer: the paths it left out. */
  const leftOutAsync = async (filtered: NonNullable<ReturnType<typeof filteredCp>>): Promise<string[]> => {
    const leftOut: string[] = [];
    const walk = cpWalk(filtered.src, filtered.dest, filtered.options);
    for (let step = walk.next(); !step.done; ) {
      const include = await apply(filtered.filter, undefined, step.value);
      if (!include) leftOut.push(step.value[0]);
      step = walk.next(include);
    }
    return leftOut;
  };
  const hostCpPromise = promises.cp as Fn;
  promises.cp = named(async (...args: unknown[]) => {
    const filtered = filteredCp(args);
    if (!filtered) return apply(hostCpPromise, undefined, args);
    return apply(hostCpPromise, undefined, [filtered.src, filtered.dest, leavingOut(filtered.options, await leftOutAsync(filtered))]);
  }, 'cp');
  const hostCpCallback = fs.cp as Fn;
  fs.cp = named((...args: unknown[]) => {
    const { callback, rest } = splitCallback('cp', args);
    const filtered = filteredCp(rest);
    if (!filtered) return apply(hostCpCallback, undefined, args);
    validateFunction(callback, 'cb');
    leftOutAsync(filtered).then(
      leftOut => apply(hostCpCallback, undefined, [filtered.src, filtered.dest, leavingOut(filtered.options, leftOut), callback]),
      error => callBack('fs.cp', callback, error),
    );
  }, 'cp', hostFs.cp.length);

  fs.existsSync = (path: unknown) => {
    let p: unknown;
    try {
      p = pathArg(path);
    } catch {
      return false; // as Node's: a path it cannot take is a file that does not exist
    }
    return call('fs.existsSync', [p], p => {
      guard('exists', [p]);
      return hostFs.existsSync(p as string);
    });
  };
  // As Node's: the callback is checked, and util.promisify(fs.exists) resolves with the boolean (its promisify.custom).
  const exists = function exists(path: unknown, callback: Fn) {
    validateFunction(callback, 'cb');
    let checking: Promise<unknown>;
    try {
      checking = (promises.access as Fn)(path) as Promise<unknown>;
    } catch {
      callback(false);
      return;
    }
    checking.then(
      () => callBack('fs.exists', callback, true),
      () => callBack('fs.exists', callback, false),
    );
  };
  const callbackExists = exists; // named apart: the function below is named exists too, as Node's
  const promisified = function exists(path: unknown) {
    return new Promise(resolve => callbackExists(path, resolve));
  };
  // Marked as its own promisified form, as util.promisify marks it (the service's util finds it so once frozen).
  for (const target of [exists, promisified]) {
    Object.defineProperty(target, Symbol.for('nodejs.util.promisify.custom'), { value: promisified, writable: false, enumerable: false, configurable: true });
  }
  fs.exists = exists;

  // Descriptors: virtual numbers inside, real ones on the host (live only).
  fs.openSync = (path: unknown, flags?: unknown, mode?: unknown) => {
    const fd = nextFd++;
    call('fs.openSync', [pathArg(path), flags, mode, fd], (p, f, m) => {
      guardOpen('openSync', p, f);
      if (secrets.isSecretFile(p)) secretFds.add(fd);
      fds.set(fd, hostFs.openSync(p as string, f as string, m as number));
      fdPaths.set(fd, p);
    });
    // Opened in a replayed turn: the service holds it, this host does not (realFd).
    if (!fds.has(fd)) replayedFds.add(fd);
    return fd;
  };
  fs.closeSync = (fd: unknown) => {
    call('fs.closeSync', [fd], () => {
      hostFs.closeSync(realFd(fd));
      fds.delete(fd as number);
      fdPaths.delete(fd as number);
      secretFds.delete(fd as number);
    });
    replayedFds.delete(fd as number);
  };
  // Node's readSync (lib/fs.js), its checks in its order with its errors, before anything is recorded;
  // then the bytes are read on the host into a buffer of the length asked, and copied in at the offset.
  fs.readSync = function readSync(fd: unknown, buffer: unknown, offsetOrOptions?: unknown, length?: unknown, position?: unknown): number {
    validateInt32(fd, 'fd', 0);
    if (!ArrayBuffer.isView(buffer)) throw invalidArgType('buffer', 'an instance of Buffer, TypedArray, or DataView', buffer);
    let offset = offsetOrOptions;
    if (arguments.length <= 3 || typeof offsetOrOptions === 'object') {
      if (offsetOrOptions !== undefined && (typeof offsetOrOptions !== 'object' || Array.isArray(offsetOrOptions))) throw invalidArgType('options', 'of type object', offsetOrOptions);
      const options = (offsetOrOptions ?? {}) as { offset?: unknown; length?: unknown; position?: unknown };
      // As Node's destructuring with defaults: each read once, in this order.
      offset = options.offset;
      if (offset === undefined) offset = 0;
      length = options.length;
      if (length === undefined) length = buffer.byteLength - (offset as number);
      position = options.position;
      if (position === undefined) position = null;
    }
    if (offset === undefined) offset = 0;
    else validateInteger(offset, 'offset', 0);
    const len = (length as number) | 0;
    const rules = readPositionRules();
    let from = position;
    if (from === null || from === undefined) from = -1;
    else if (rules.checkedFirst) validatePosition(from, len, rules.fromMinusOne);
    if (len === 0) return 0;
    if (buffer.byteLength === 0) throw invalidArgValue('buffer', buffer, 'is empty and cannot be written');
    const at = offset as number;
    if (len < 0) throw outOfRange('length', '>= 0', len);
    if (at + len > buffer.byteLength) throw outOfRange('length', `<= ${buffer.byteLength - at}`, len);
    if (from !== -1 && !rules.checkedFirst) validatePosition(from, len, rules.fromMinusOne);
    // Recorded as before: null for the current position.
    const { bytesRead, bytes } = call('fs.readSync', [fd, len, position ?? null], () => {
      const tmp = Buffer.alloc(len);
      const n = hostFs.readSync(realFd(fd), tmp, 0, len, from as number | bigint);
      return { bytesRead: n, bytes: secrets.mark(tmp.subarray(0, n), secretFds.has(fd as number), `bytes read from ${String(fd)}`) };
    }) as { bytesRead: number; bytes: Uint8Array };
    new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength).set(bytes, at);
    return bytesRead;
  };
  // Descriptors 1 and 2 are the service's standard output and error (pino's sonic-boom writes to
  // process.stdout.fd): what is written there goes where its process.stdout.write goes, recorded as it is.
  const writeStandard = (fd: 1 | 2, data: unknown, rest: unknown[]): number => {
    let bytes: Buffer;
    if (ArrayBuffer.isView(data)) {
      const offset = typeof rest[0] === 'number' ? rest[0] : 0;
      const length = typeof rest[1] === 'number' ? rest[1] : data.byteLength - offset;
      if (offset < 0 || length < 0 || offset + length > data.byteLength) throw outOfRange('length', `<= ${data.byteLength - offset}`, length);
      bytes = Buffer.from(data.buffer, data.byteOffset + offset, length);
    } else if (typeof data === 'string') bytes = Buffer.from(data, (typeof rest[1] === 'string' ? rest[1] : 'utf8') as BufferEncoding);
    else throw invalidArgType('buffer', 'of type string or an instance of Buffer, TypedArray, or DataView', data);
    (standardWrite as (fd: 1 | 2, text: string) => void)(fd, bytes.toString('utf8'));
    return bytes.byteLength;
  };
  fs.writeSync = (fd: unknown, data: unknown, ...rest: unknown[]) =>
    standardWrite && (fd === 1 || fd === 2)
      ? writeStandard(fd, data, rest)
      : call('fs.writeSync', [fd, data, ...rest], (_fd, d, ...r) => hostFs.writeSync(realFd(fd), d as string, ...(r as [])));
  fs.fstatSync = (fd: unknown, options?: unknown) =>
    reviveStats(
      call('fs.fstatSync', [fd, options], () => statsRecord(hostFs.fstatSync(realFd(fd), options as hostFs.StatOptions & { bigint: false }))),
      membrane.guestDatePrototype,
    );

  // The other descriptor calls Node has (graceful-fs, write-file-atomic and proper-lockfile use them).
  // fchmod, futimes and ftruncate change the file whatever the descriptor was opened for: checked as writes to its path.
  const onDescriptor = (name: string, length: number, changes: boolean, perform: (real: number, ...rest: unknown[]) => unknown) =>
    named((fd: unknown, ...rest: unknown[]) => {
      validateInt32(fd, 'fd', 0);
      return call(`fs.${name}Sync`, [fd, ...rest], (...a: unknown[]) => {
        const real = realFd(fd);
        if (changes) {
          const path = fdPaths.get(fd as number);
          reach.checkPath(path, true, `write (fs.${name})`);
          sameFileStill(`fs.${name}`, fd, path, hostFs.fstatSync(real), () => hostFs.statSync(path as string));
        }
        return perform(real, ...a.slice(1));
      });
    }, `${name}Sync`, length);
  fs.fsyncSync = onDescriptor('fsync', 1, false, real => hostFs.fsyncSync(real));
  fs.fdatasyncSync = onDescriptor('fdatasync', 1, false, real => hostFs.fdatasyncSync(real));
  fs.ftruncateSync = onDescriptor('ftruncate', 1, true, (real, len) => hostFs.ftruncateSync(real, len as number | undefined));
  fs.futimesSync = onDescriptor('futimes', 3, true, (real, atime, mtime) => hostFs.futimesSync(real, atime as number, mtime as number));
  fs.fchmodSync = onDescriptor('fchmod', 2, true, (real, mode) => hostFs.fchmodSync(real, mode as number));

  // Their callback forms, as Node's: the callback checked first; an argument error (ERR_*) thrown at once, as
  // Node's checks throw; otherwise the call made now (recorded as its Sync twin) and the callback called with
  // its outcome in a later turn, as a callback of Node's thread pool is (after the microtasks queued before).
  const inLaterTurn = (op: string): Promise<unknown> => call(`fs.${op}.callback`, [], () => Promise.resolve(null)) as Promise<unknown>;
  /**
   * A callback form: `split` finds the callback and the call's arguments where Node's lib/fs.js finds them
   * (arguments after the callback ignored), `run` makes the call (its Sync twin) and gives the callback's
   * arguments after the error.
   */
  const callbackForm = (name: string, length: number, split: (args: unknown[]) => [callback: unknown, args: unknown[]], run: (args: unknown[]) => unknown[]) =>
    named((...given: unknown[]) => {
      const [callback, args] = split(given);
      validateFunction(callback, 'cb');
      let outcome: unknown[];
      try {
        outcome = [null, ...run(args)];
      } catch (error) {
        if (typeof (error as { code?: unknown })?.code === 'string' && (error as { code: string }).code.startsWith('ERR_')) throw error;
        outcome = [error];
      }
      void inLaterTurn(name).then(() => callBack(`fs.${name}`, callback as Fn, ...outcome));
    }, name, length);
  /** The callback at `at`, the arguments before it. */
  const at = (position: number) => (args: unknown[]): [unknown, unknown[]] => [args[position], args.slice(0, position)];
  /** The callback at `at`, or one place earlier when the optional argument there is a function (fs.fstat(fd, cb)). */
  const atOrBefore = (position: number) => (args: unknown[]): [unknown, unknown[]] =>
    typeof args[position - 1] === 'function' ? [args[position - 1], args.slice(0, position - 1)] : at(position)(args);
  const sync = (name: string) => fs[`${name}Sync`] as Fn;
  // open(path[, flags[, mode]], cb): Node takes the second argument when there are fewer than three, else the
  // third when it is a function, else the fourth.
  fs.open = callbackForm('open', 4, args => (args.length < 3 ? at(1)(args) : atOrBefore(3)(args)), args => [apply(sync('open'), undefined, args)]);
  // close(fd[, cb]): no callback is Node's default one.
  fs.close = callbackForm('close', 1, args => [args[1] === undefined ? () => {} : args[1], args.slice(0, 1)], args => (apply(sync('close'), undefined, args), []));
  fs.fstat = callbackForm('fstat', 1, atOrBefore(2), args => [apply(sync('fstat'), undefined, args)]);
  // read(fd, buffer, offset, length, position, cb) with more than four arguments; read(fd, buffer, options, cb),
  // read(fd, bufferOrOptions, cb), read(fd, cb) with four or fewer (Node's lib/fs.js read).
  fs.read = callbackForm(
    'read',
    6,
    args => (args.length > 4 ? at(5)(args) : [args[args.length - 1], args.slice(0, -1)]),
    args => {
      let [fd, buffer, ...rest] = args;
      if (!ArrayBuffer.isView(buffer)) {
        const options = (buffer ?? {}) as { buffer?: unknown; offset?: unknown; length?: unknown; position?: unknown };
        buffer = options.buffer ?? Buffer.alloc(16384);
        rest = [{ offset: options.offset, length: options.length, position: options.position }];
      }
      return [apply(sync('read'), undefined, [fd, buffer, ...rest]), buffer];
    },
  );
  // write(fd, buffer[, offset[, length[, position]]], cb): the first of cb, position, length, offset that is set
  // (Node: `callback || position || length || offset`); write(fd, string[, position[, encoding]], cb): the
  // fifth argument when it is a function, else the third when it is one, else the fourth.
  fs.write = callbackForm(
    'write',
    6,
    args => {
      if (ArrayBuffer.isView(args[1])) {
        for (const position of [5, 4, 3, 2]) if (args[position]) return at(position)(args);
        return at(2)(args);
      }
      if (typeof args[4] === 'function') return at(4)(args);
      return typeof args[2] === 'function' ? at(2)(args) : at(3)(args);
    },
    args => [apply(sync('write'), undefined, args), args[1]],
  );
  fs.fsync = callbackForm('fsync', 2, at(1), args => (apply(sync('fsync'), undefined, args), []));
  fs.fdatasync = callbackForm('fdatasync', 2, at(1), args => (apply(sync('fdatasync'), undefined, args), []));
  fs.ftruncate = callbackForm('ftruncate', 1, atOrBefore(2), args => (apply(sync('ftruncate'), undefined, args), []));
  fs.futimes = callbackForm('futimes', 4, at(3), args => (apply(sync('futimes'), undefined, args), []));
  fs.fchmod = callbackForm('fchmod', 3, at(2), args => (apply(sync('fchmod'), undefined, args), []));

  // FileHandles cross as references: usable at build time, dead after restore.
  promises.open = (path: unknown, flags?: unknown, mode?: unknown) =>
    call('fs.promises.open', [pathArg(path), flags, mode], (p, f, m) => {
      guardOpen('promises.open', p, f);
      // A FileHandle's reads cross as results of calls on a reference, which the log keeps as they are.
      if (secrets.isSecretFile(p)) {
        return Promise.reject(
          new TypeError(`fs.promises.open on ${String(p)}, a secret file, is not supported inside a service (what its FileHandle read would be logged unsealed): read it with fs.promises.readFile, fs.readFileSync or fs.createReadStream, which seal it`),
        );
      }
      return openChecked(p, f, m).then(handle => guardedHandle(handle, p));
    });
  /**
   * fs.promises.open, the file opened in the turn its path was checked: Node's promise call opens it later on
   * the thread pool, where a path the service moved meanwhile leads elsewhere (see promised in addAll). The
   * descriptor opened now is opened again as a FileHandle through /proc/self/fd (the same open file, whatever
   * the path names by then; creating, exclusive and truncating flags already applied), then closed. Without
   * /proc (not Linux), Node's call as it is: the window stays open there (docs/trust.md).
   */
  const openChecked = (p: unknown, f: unknown, m: unknown): Promise<hostFs.promises.FileHandle> => {
    if (!hostFs.existsSync('/proc/self/fd')) return hostFs.promises.open(p as string, f as string, m as number);
    let fd: number;
    try {
      fd = hostFs.openSync(p as string, f as string, m as number);
    } catch (error) {
      return Promise.reject(error);
    }
    // The flags the kernel keeps for the open file (/proc/self/fdinfo, octal), less those that act only when opening.
    const { O_CREAT, O_EXCL, O_TRUNC } = hostFs.constants;
    const kept = Number.parseInt(/flags:\s*([0-7]+)/.exec(hostFs.readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1'))?.[1] ?? '0', 8);
    return hostFs.promises.open(`/proc/self/fd/${fd}`, kept & ~(O_CREAT | O_EXCL | O_TRUNC)).finally(() => hostFs.closeSync(fd));
  };
  /**
   * A FileHandle as the service gets it (by reference): Node's, its chmod, chown and utimes (which change a
   * file whatever it was opened for) first checked as writes to its path, and that the path still names it.
   */
  const guardedHandle = (handle: hostFs.promises.FileHandle, path: unknown): object => {
    const changes = new Set<PropertyKey>(['chmod', 'chown', 'utimes']);
    return new Proxy(handle, {
      get(target, key) {
        const value = Reflect.get(target, key, target) as unknown;
        if (typeof value !== 'function') return value;
        if (!changes.has(key)) return (...args: unknown[]) => apply(value as Fn, target, args);
        // Checked in one turn, nothing awaited (the service could move the path between the steps of an
        // asynchronous check, found by the adversarial review); the change then goes to the descriptor.
        return (...args: unknown[]) => {
          try {
            reach.checkPath(path, true, `${String(key)} (a FileHandle)`);
            sameFileStill(`${String(key)} (a FileHandle)`, `FileHandle ${target.fd}`, path, hostFs.fstatSync(target.fd), () => hostFs.statSync(path as string));
          } catch (error) {
            return Promise.reject(error);
          }
          return apply(value as Fn, target, args);
        };
      },
    });
  };

  const unsupported = (name: string) => () => {
    throw new TypeError(`fs.${name} is not supported inside a service yet: use fs.promises.readFile / writeFile, or open a FileHandle with fs.promises.open`);
  };
  for (const name of ['watch', 'watchFile', 'unwatchFile']) fs[name] = unsupported(name);
  // opendir: Node's own, read to its end on the host in one call (its entries in the order the OS gives them,
  // its errors Node's: opendirSync's name no path), then handed out one by one by a Dir.
  const tick = streams?.nextTick ?? ((callback: () => void) => queueMicrotask(callback));
  const dirPath = (path: unknown): string => {
    const p = pathArg(path);
    return typeof p === 'string' ? p : p instanceof Uint8Array ? Buffer.from(p).toString() : String(p);
  };
  const readWhole = (dir: hostFs.Dir): unknown => {
    const entries: hostFs.Dirent[] = [];
    try {
      for (let entry = dir.readSync(); entry !== null; entry = dir.readSync()) entries.push(entry);
    } finally {
      dir.closeSync();
    }
    return direntRecords(entries);
  };
  const openDir = (path: unknown, options: unknown): Dir => {
    const entries = call('fs.opendirSync', [pathArg(path), options], (p, o) => {
      guard('readdir', [p, o]);
      return readWhole(hostFs.opendirSync(p as string, o as hostFs.OpenDirOptions));
    });
    return new Dir(dirPath(path), reviveDirents(entries) as unknown[], tick);
  };
  const openDirLater = (path: unknown, options: unknown): Promise<Dir> =>
    (
      call('fs.promises.opendir', [pathArg(path), options], (p, o) => {
        guard('readdir', [p, o]);
        // Opened and read in this turn, as the checks were (see promised in addAll); its error as Node's
        // asynchronous opendir words it, the path named (the synchronous one names none).
        return new Promise(resolve => {
          try {
            resolve(readWhole(hostFs.opendirSync(p as string, o as hostFs.OpenDirOptions)));
          } catch (error) {
            const e = error as { syscall?: unknown; path?: unknown; message?: unknown; stack?: unknown };
            if (e && e.syscall === 'opendir' && e.path === undefined && typeof e.message === 'string') {
              const before = e.message;
              e.message = `${before} '${String(p)}'`;
              e.path = p;
              if (typeof e.stack === 'string') e.stack = e.stack.replace(before, e.message as string);
            }
            throw error;
          }
        });
      }) as Promise<unknown>
    ).then(entries => new Dir(dirPath(path), reviveDirents(entries) as unknown[], tick));
  fs.opendirSync = named((path: unknown, options?: unknown) => openDir(path, options), 'opendirSync', 2);
  fs.opendir = named((...args: unknown[]) => {
    const [callback, rest] = atOrBefore(2)(args);
    validateFunction(callback, 'cb');
    openDirLater(rest[0], rest[1]).then(
      dir => callBack('fs.opendir', callback as Fn, null, dir),
      (error: unknown) => callBack('fs.opendir', callback as Fn, error),
    );
  }, 'opendir', 3);
  promises.opendir = named((path: unknown, options?: unknown) => openDirLater(path, options), 'opendir', 3);
  fs.Dir = Dir;
  // fs.realpathSync.native and fs.realpath.native: Node's (realpath(3), its errors), recorded; anonymous in Node too.
  const nativeRealpath = named(
    (path: unknown, options?: unknown) =>
      call('fs.realpathSync.native', [pathArg(path), options], (p, o) => {
        guard('realpath', [p]);
        return hostFs.realpathSync.native(p as string, o as BufferEncoding);
      }),
    '',
    2,
  );
  (fs.realpathSync as Fn & { native?: Fn }).native = nativeRealpath;
  (fs.realpath as Fn & { native?: Fn }).native = named(callbackForm('realpath.native', 3, atOrBefore(2), args => [apply(nativeRealpath, undefined, args)]), '');
  if (streams) {
    // Node's file streams, on the calls above (fs-streams.ts); ReadStream and WriteStream are getters, as in Node.
    // On the functions as made here: the module object is the service's to patch (graceful-fs), its streams stay ours.
    const files = makeFileStreams(Object.freeze({ ...fs }) as unknown as StreamFs, streams.stream, pathArg, streams.Buffer, streams.nextTick);
    fs.createReadStream = files.createReadStream;
    fs.createWriteStream = files.createWriteStream;
    for (const name of ['ReadStream', 'WriteStream'] as const) Object.defineProperty(fs, name, { get: () => files[name], enumerable: true, configurable: true });
  } else {
    for (const name of ['createReadStream', 'createWriteStream']) fs[name] = unsupported(name);
  }

  fs.constants = hostFs.constants;
  // The access modes Node also puts on fs itself (fs.accessSync(path, fs.R_OK)): undefined, the check was F_OK's.
  for (const mode of ['F_OK', 'R_OK', 'W_OK', 'X_OK'] as const) fs[mode] = hostFs.constants[mode];
  fs.promises = promises;
  promises.constants = hostFs.constants;
  fs.Stats = Stats;
  fs.Dirent = Dirent;
  // The module objects are the service's own, and stay open to it as Node's are (graceful-fs defines a symbol on
  // fs and wraps fs.close as it loads); what they hold is hardened (fs.constants, the Stats classes are shared).
  // Not fs.promises: Node's loads a module as it is first read (2.4 ms of every restore), for the names and lengths
  // of its functions (docs/environment.md).
  likeHostAll(fs, hostFs, 0);
  hardenMembers(fs, promises);
  hardenMembers(promises);
  return { fs, promises };
};

/**
 * Harden every value of `object`'s own properties (an accessor's functions, without calling them), not the
 * object, nor `open` (an object of its own there, fs.promises on fs, hardened likewise).
 */
const hardenMembers = (object: object, open?: object): void => {
  for (const descriptor of Object.values(Object.getOwnPropertyDescriptors(object))) {
    if ('value' in descriptor) {
      if (descriptor.value !== open) harden(descriptor.value);
    } else {
      if (descriptor.get) harden(descriptor.get);
      if (descriptor.set) harden(descriptor.set);
    }
  }
};
