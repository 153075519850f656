/**
 * What a service may reach on its host: the origins it may `fetch`, the
 * paths it may read and write with `fs`. A build declares it with
 * `importService(spec, { reach })`; the manifest keeps it; the host side of
 * every fetch and fs syscall checks it, at build time and when live (replay
 * reaches nothing: the log answers). A capability the policy leaves out
 * stays open; one it names (even with an empty list) is limited to what it
 * lists. A refusal is a REACH_DENIED error thrown to the service.
 *
 * Paths are compared after resolving symbolic links and `..` the way the
 * operating system does (component by component, from the real directory),
 * so neither a link inside an allowed directory nor `allowed/link/..` leads
 * out of it. A path that does not exist yet is checked through its nearest
 * existing ancestor.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SnapshotError } from '../replay-log/index.js';
import { checkOptionKeys } from '../replay-log/errors.js';

/** A service's reach policy. Absent fields leave that capability open. */
export interface ReachPolicy {
  /**
   * Where `fetch` may go: `host` (any port), `host:port`, `*.example.com`, or
   * an origin `https://host[:port]` (that scheme only). `data:` URLs reach
   * nothing and are always allowed.
   */
  readonly fetch?: readonly string[];
  /** Files and directories (with everything below them) the service may read. Absolute in the manifest. */
  readonly read?: readonly string[];
  /** Files and directories (with everything below them) the service may create, change or remove. */
  readonly write?: readonly string[];
}

/** Normalise a policy from a build script: paths made absolute against `base`. Throws TypeError when malformed. */
export const reachPolicy = (options: ReachPolicy | undefined, base: string): ReachPolicy | undefined => {
  if (options === undefined) return undefined;
  if (typeof options !== 'object' || options === null) throw new TypeError('reach takes { fetch?, read?, write? }');
  checkOptionKeys(options, ['fetch', 'read', 'write'], 'reach');
  const list = (value: unknown, what: string): string[] | undefined => {
    if (value === undefined) return undefined;
    if (!Array.isArray(value) || !value.every(v => typeof v === 'string' && v.length > 0)) throw new TypeError(`reach.${what} takes an array of non-empty strings`);
    return value as string[];
  };
  const out: { fetch?: string[]; read?: string[]; write?: string[] } = {};
  const fetchList = list(options.fetch, 'fetch');
  if (fetchList) out.fetch = fetchList.map(parseOrigin).map(o => o.text);
  const read = list(options.read, 'read');
  if (read) out.read = read.map(p => path.resolve(base, p));
  const write = list(options.write, 'write');
  if (write) out.write = write.map(p => path.resolve(base, p));
  return Object.freeze(out);
};

interface Origin {
  readonly text: string;
  readonly protocol?: string;
  readonly host: RegExp;
  readonly port?: string;
}

const defaultPorts: Record<string, string> = { 'http:': '80', 'https:': '443' };

const parseOrigin = (entry: string): Origin => {
  let protocol: string | undefined;
  let rest = entry.trim().toLowerCase();
  const scheme = /^([a-z][a-z0-9+.-]*:)\/\//.exec(rest);
  if (scheme) {
    protocol = scheme[1];
    rest = rest.slice(scheme[0].length).replace(/\/.*$/, '');
  }
  const bracket = /^(\[[^\]]+\])(?::(\d+))?$/.exec(rest);
  const plain = /^([^:/\s]+)(?::(\d+))?$/.exec(rest);
  const match = bracket ?? plain;
  if (!match) throw new TypeError(`reach.fetch: "${entry}" is not a host, host:port or origin`);
  const [, host, explicitPort] = match;
  const port = explicitPort ?? (protocol ? defaultPorts[protocol] : undefined);
  const hostRe = new RegExp(`^${host.split('*').map(p => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^.]*(?:\\.[^.]*)*')}$`);
  const text = `${protocol ? `${protocol}//` : ''}${host}${explicitPort ? `:${explicitPort}` : ''}`;
  return { text, protocol, host: hostRe, port };
};

/** At most this many links in one path, as Linux's MAXSYMLINKS (past it the OS's own call fails with ELOOP). */
const maxLinks = 40;

/** Where a path leads: its real path, and the first descriptor link (descriptorLinks) it goes through, if any. */
interface Lead {
  readonly real: string;
  readonly through?: string;
}

/**
 * Whether `absolute` leads where it says, `lexical` (`..` and `.` removed), in a few system calls that
 * throw nothing on a path that does not exist (an fs error costs more than the call): no link on the way
 * changes where it goes. A path that exists: its real path is `lexical`. One that does not (a file about
 * to be written): written without `..`, its nearest existing ancestor's real path is itself, and the first
 * part below that is nothing at all (not a link to nothing, whose target a write would create).
 */
const unchanged = (absolute: string, lexical: string): boolean => {
  try {
    if (fs.existsSync(absolute)) return fs.realpathSync.native(absolute) === lexical;
    if (absolute.split(path.sep).includes('..')) return false;
    let missing = lexical;
    let parent = path.dirname(missing);
    while (parent !== missing && !fs.existsSync(parent)) {
      missing = parent;
      parent = path.dirname(missing);
    }
    return fs.lstatSync(missing, { throwIfNoEntry: false }) === undefined && fs.realpathSync.native(parent) === parent;
  } catch {
    return false; // the walk says how far it leads
  }
};

/**
 * Where the path `p` leads as the OS resolves it: component by component
 * from the root, each link's target put in its place, `..` taken from the
 * real directory it is in (so `link/..` is the link target's parent, not
 * the link's). A part that does not exist (yet) ends the walk: nothing
 * below it can be a link. Stops at the first descriptor link on the way
 * (/dev/fd, /proc/self/fd...), which leads wherever the host's descriptor
 * does. Most paths take two to four system calls (unchanged) and no walk.
 */
const lead = (p: string, cwd: string = process.cwd(), follow = true): Lead => {
  const absolute = path.isAbsolute(p) ? p : `${cwd}${path.sep}${p}`;
  // The last part itself (unlink, rename, rm, lstat act on a link, not where it leads): its directory resolved,
  // its own name kept. Not for a trailing `/`, `.` or `..`, which the system follows.
  const last = path.basename(absolute);
  if (!follow && last !== '' && last !== '.' && last !== '..' && !absolute.endsWith(path.sep)) {
    const parent = lead(path.dirname(absolute), cwd);
    return { real: path.join(parent.real, last), ...(parent.through === undefined ? {} : { through: parent.through }) };
  }
  const lexical = path.resolve(absolute);
  if (unchanged(absolute, lexical)) return { real: lexical };
  const linux = process.platform === 'linux';
  const parts = absolute.split(path.sep).filter(part => part.length > 0);
  const root = path.parse(absolute).root || path.sep;
  let current = root;
  let links = 0;
  while (parts.length > 0) {
    const part = parts.shift() as string;
    if (part === '.') continue;
    if (part === '..') {
      current = path.dirname(current);
      continue;
    }
    const next = path.join(current, part);
    if (linux && descriptorLinks.test(next)) return { real: path.join(next, ...parts), through: next };
    let target: string | undefined;
    try {
      if (fs.lstatSync(next).isSymbolicLink()) target = fs.readlinkSync(next);
    } catch {
      // It does not exist (yet), or cannot be read: nothing below it can be a link.
      return { real: path.join(next, ...parts) };
    }
    if (target === undefined) {
      current = next;
      continue;
    }
    links += 1;
    if (links > maxLinks) return { real: path.join(next, ...parts) };
    parts.unshift(...target.split(path.sep).filter(part => part.length > 0));
    if (path.isAbsolute(target)) current = path.parse(target).root || path.sep;
  }
  return { real: current };
};

/** The real path of `p` as the OS would resolve it, following links component by component (see lead). */
export const realPath = (p: string, cwd: string = process.cwd()): string => lead(p, cwd).real;

/**
 * What under /proc opens the inside of a process: its environment (the
 * seal key, the app key), its memory (written, the host's code) and its
 * descriptors. Any process's: the CLI's parent has the same environment.
 */
const processInternals = /^\/proc\/\d+(?:\/task\/\d+)?\/(?:environ|mem|fd|fdinfo|map_files|pagemap)(?:\/|$)/;
/** The names of a process's descriptors and internals as written: /dev/stdin, stdout, stderr, /dev/fd, /proc/self, /proc/thread-self. */
const descriptorLinks = /^\/(?:dev\/(?:stdin|stdout|stderr|fd)|proc\/(?:self|thread-self|\d+)(?:\/task\/\d+)?\/(?:environ|mem|fd|fdinfo|map_files|pagemap))(?:\/|$)/;

/** The library's own key and credentials files on this host (keepFromServices), by real path. */
const libraryFiles = new Set<string>();

/**
 * Keep `file` out of every service's reach, whatever its policy: a file of
 * the library's own that holds a key or credentials (the seal key file, the
 * signing key, the NATS credentials). Without a policy a service could read
 * it (its path is on the host's command line).
 */
export const keepFromServices = (file: string): void => {
  libraryFiles.add(realPath(file));
};

/** Snapshot directories a build or restore of this process holds (keepWritesFromServices), by real path. */
const snapshotDirs = new Set<string>();

/**
 * Keep `dir` (a snapshot directory, or a build's work directory beside it)
 * out of every service's writes, whatever its policy: the last good
 * snapshot survives a failed rebuild only if no service of that build can
 * write into it, delete it, or move it away (an rm, rename or cp of a
 * directory above it included). Reads stay as the policy says.
 */
export const keepWritesFromServices = (dir: string): void => {
  snapshotDirs.add(realPath(dir));
};

/**
 * Where an interrupted build leaves a snapshot directory's old copy and its work (`<dir>.old-<pid>`,
 * `<dir>.building-<pid>`), which the next build puts back in place or removes (lib/interrupted.ts): no
 * service makes or changes them either, or one could plant a snapshot of its own there that a later build
 * would take for the last good one.
 */
const leftoverOf = (real: string): string | undefined => {
  for (const dir of snapshotDirs) {
    const relative = path.relative(path.dirname(dir), real);
    const first = relative.split(path.sep)[0];
    if (!relative.startsWith('..') && first.startsWith(`${path.basename(dir)}.`) && /\.(?:old|building)-\d+$/.test(first)) return path.join(path.dirname(dir), first);
  }
  return undefined;
};

/**
 * Operations that delete, move, overwrite or close off a whole tree: refused on a directory that holds a
 * snapshot directory too (chmod: a mode of 0 on a directory above the last good snapshot makes it
 * unreachable, found by the adversarial review).
 */
const treeOps = /\(fs\.(?:rm|rmdir|rename|cp|chmod)\)$/;

/**
 * The library's build caches (build-cache.ts), wherever a node_modules tree holds them: what a later build
 * archives comes from there, so a service that could write there could choose another service's code for
 * that build, its sources unchanged (found by the adversarial review).
 */
const buildCacheDir = /(?:^|[\\/])node_modules[\\/]\.cache[\\/]membrane-snapshot(?=$|[\\/])/;
/** The build caches this process uses (keepBuildCacheFromServices), by real path. */
const buildCaches = new Set<string>();

/**
 * Keep the build cache `dir` out of every service's writes, whatever its
 * policy. Any path inside a `node_modules/.cache/membrane-snapshot` is
 * refused anyway; this also refuses an rm, rename, cp or chmod of a
 * directory above `dir` (moved away or removed and its packs planted,
 * copied into).
 */
export const keepBuildCacheFromServices = (dir: string): void => {
  buildCaches.add(realPath(dir));
};

const cacheRefusal = (dir: string, holds: boolean): string =>
  `it ${holds ? 'holds' : 'is inside'} ${dir}, a build cache of membrane-snapshot (what later builds archive), which no service writes to, whatever its policy`;

/** Why a write by `op` to the path whose real path is `real` reaches into a snapshot directory or a build cache, or undefined. */
const intoSnapshot = (real: string, op: string): string | undefined => {
  const cache = buildCacheDir.exec(real);
  if (cache) return cacheRefusal(real.slice(0, cache.index + cache[0].length), false);
  // A tree above it: moved, copied into, removed (and put back as a link elsewhere): found by the adversarial review.
  if (treeOps.test(op)) for (const dir of buildCaches) if (within(dir, real)) return cacheRefusal(dir, true);
  if (snapshotDirs.size === 0) return undefined;
  for (const dir of snapshotDirs) {
    if (within(real, dir) || (treeOps.test(op) && within(dir, real))) {
      return `it ${within(real, dir) ? 'is inside' : 'holds'} ${dir}, a snapshot directory of this process, which no service writes to, whatever its policy`;
    }
  }
  const leftover = leftoverOf(real);
  if (leftover !== undefined) return `it is ${leftover}, where an interrupted build of this process's snapshot leaves its work, which no service writes to, whatever its policy`;
  return undefined;
};

/** Whether the absolute path `p` is /proc or /dev or below them (where the links into a process are: /proc/self, /dev/fd, /dev/stdin). */
const underProcOrDev = (p: string): boolean => p === '/proc' || p.startsWith('/proc/') || p === '/dev' || p.startsWith('/dev/');

/**
 * Why the path `text`, which leads to `where` (lead), is out of reach
 * whatever the policy, or undefined: it leads, links followed the way the
 * OS follows them, into a process's environment, memory or descriptors
 * (Linux), or to one of the library's own key files. Every path is
 * resolved, not only those written under /proc or /dev: a link to `/` or
 * to /proc, or /proc/self/cwd/.., leads there from anywhere (found by the
 * adversarial review).
 */
const neverReachable = (text: string, where: Lead): string | undefined => {
  const linux = process.platform === 'linux';
  if (!linux && libraryFiles.size === 0) return undefined;
  const lexical = path.resolve(text);
  // Named, not only resolved: a descriptor's link (/dev/stdout, /dev/fd/1, /proc/self/fd/1) resolves to the
  // file the host's descriptor is open on, a file like any other (found by the adversarial review: a service
  // truncated and rewrote the build's redirected standard output through it).
  if (linux && (where.through !== undefined || processInternals.test(where.real) || descriptorLinks.test(lexical))) {
    return "the host process's own environment, memory and descriptors (/proc/<pid>/environ, mem, fd...) are never within a service's reach, whatever its policy";
  }
  if (libraryFiles.has(where.real) || libraryFiles.has(lexical)) {
    return "it holds a key of the library's own (the seal key, the signing key or the NATS credentials), never within a service's reach, whatever its policy";
  }
  return undefined;
};

/**
 * Why `op` on the directory whose real path is `real` reaches one of the library's key files inside it, or
 * undefined: a copy or a move of a directory that holds one (its contents would then be read under another
 * name, found by the adversarial review), or its removal.
 */
const holdsLibraryFile = (real: string, op: string): string | undefined => {
  if (!treeOps.test(op)) return undefined;
  for (const file of libraryFiles) {
    if (within(file, real) && file !== real) return `it holds ${file}, a key of the library's own (the seal key, the signing key or the NATS credentials), never within a service's reach, whatever its policy`;
  }
  return undefined;
};

/**
 * Why a link a service makes to `target` (fs.symlink; as it is written,
 * relative to the link's directory), or a copy it makes of `target`
 * (fs.cp, which copies the links inside it as they are), is refused
 * whatever the policy, or undefined: what is under /proc or /dev, and the
 * library's key files. Every path is checked where it leads anyway
 * (neverReachable); refusing the link says so where it is made.
 */
const linkTargetRefusal = (target: string, from: string): string | undefined => {
  const lexical = path.resolve(from, target);
  // From the link's real directory, `..` and links in the target taken as the system takes them (found by the
  // adversarial review: ../../proc/self/environ from a directory reached through a link).
  const real = path.isAbsolute(target) ? lead(target).real : lead(`${realPath(from)}${path.sep}${target}`).real;
  if ((process.platform === 'linux' && (underProcOrDev(lexical) || underProcOrDev(real))) || libraryFiles.has(lexical) || libraryFiles.has(real)) {
    return 'links into /proc or /dev, and to the library\'s own key files, are never within a service\'s reach, whatever its policy';
  }
  return undefined;
};

const within = (target: string, root: string): boolean => target === root || target.startsWith(root.endsWith(path.sep) ? root : root + path.sep);

/** The checks a service's endowments make before reaching the host. */
export interface Reach {
  readonly policy: ReachPolicy | undefined;
  /** Throws REACH_DENIED unless `url` may be fetched. */
  checkFetch(url: string): void;
  /**
   * Throws REACH_DENIED unless `target` (a path, URL or Buffer; a descriptor number is refused under a policy) may be
   * read (`write` false) or written. `follow` false: the operation acts on the last part itself, a link included
   * (unlink, rename, rm, lstat, readlink), so that part is checked where it is, not where it leads.
   */
  checkPath(target: unknown, write: boolean, op: string, follow?: boolean): void;
  /** Throws REACH_DENIED for a link to `target` made at `link` (fs.symlink), or a copy of `target` (fs.cp, `link` undefined), into /proc, /dev or a key file of the library's, whatever the policy. */
  checkLinkTarget(target: unknown, link: unknown, op: string): void;
  /**
   * Throws REACH_DENIED unless every file and directory of the tree `source` may be read, links inside it
   * followed, and the path its copy takes under `target` written (checkPath for each): what fs.cp with
   * `dereference: true` reads and writes, where the checks of its two paths alone see neither the links
   * inside the source nor those inside an existing target. A directory met again through a link is not
   * walked twice. Without a `target`, only the reads are checked (a recursive readdir).
   */
  checkTree(source: unknown, target: unknown | undefined, op: string): void;
  /**
   * Throws REACH_DENIED when moving or copying the tree `source` to `target`
   * (fs.rename, fs.cp) would put one of its directories where no service
   * writes whatever its policy (checkPath as a write for each, links inside
   * the source not followed): a directory staged elsewhere, holding
   * `node_modules/.cache/membrane-snapshot/...` below it, copied or moved
   * over a project, plants a build cache as a write into it would (found by
   * the adversarial review), at build as at restore.
   */
  checkTreeInto(source: unknown, target: unknown, op: string): void;
}

/** The path a string, file URL or bytes name, or undefined (a descriptor, something fs refuses, or what uncheckable says). */
const pathText = (target: unknown): string | undefined => {
  if (typeof target === 'string') return target;
  if (target instanceof URL) return target.protocol === 'file:' ? decodeURIComponent(target.pathname) : undefined;
  if (target instanceof Uint8Array) {
    const text = Buffer.from(target.buffer, target.byteOffset, target.byteLength).toString();
    return uncheckable(target) === undefined ? text : undefined;
  }
  return undefined;
};

/**
 * Why fs would take `target` for a path that no check can read the way the kernel does, or undefined:
 * bytes that are not UTF-8 (a check reads them decoded, U+FFFD in place of each bad byte, and the kernel
 * takes them as they are: another name), or an object shaped like a URL that is no URL (Node's fs reads
 * its hostname and pathname; the service's fs makes such objects strings before they cross, so one here
 * came another way). Found by the adversarial review, both of them.
 */
const uncheckable = (target: unknown): string | undefined => {
  if (target instanceof Uint8Array) {
    const bytes = Buffer.from(target.buffer, target.byteOffset, target.byteLength);
    return Buffer.from(bytes.toString()).equals(bytes) ? undefined : 'a path of bytes that are not UTF-8';
  }
  if (typeof target === 'object' && target !== null && !(target instanceof URL)) {
    const like = target as { href?: unknown; protocol?: unknown; auth?: unknown; path?: unknown };
    if (like.href && like.protocol && like.auth === undefined && like.path === undefined) return 'an object shaped like a URL that is no URL';
  }
  return undefined;
};

export const makeReach = (service: string, policy: ReachPolicy | undefined): Reach => {
  const origins = policy?.fetch?.map(parseOrigin);
  const deny = (kind: 'fetch' | 'read' | 'write', what: string, allowed: readonly string[], how: string): never => {
    throw new SnapshotError(
      'REACH_DENIED',
      `service "${service}" tried to ${what}, outside its reach policy (${kind}: ${allowed.length ? allowed.join(', ') : 'nothing'}). ` +
        `If it should, add ${how} to importService(spec, { reach: { ${kind}: [...] } }) in the build script and rebuild.`,
      { details: { service, kind, target: what, allowed: [...allowed] } },
    );
  };
  const reach: Reach = Object.freeze({
    policy,
    checkFetch(url: string): void {
      if (!origins || !policy?.fetch) return;
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        return; // fetch itself rejects it
      }
      if (parsed.protocol === 'data:') return;
      const port = parsed.port || defaultPorts[parsed.protocol] || '';
      const hostname = parsed.hostname;
      const ok = origins.some(o => (!o.protocol || o.protocol === parsed.protocol) && o.host.test(hostname) && (!o.port || o.port === port));
      if (!ok) deny('fetch', `fetch ${parsed.origin}${parsed.pathname}`, policy.fetch, `'${hostname}:${port}'`);
    },
    checkLinkTarget(target: unknown, link: unknown, op: string): void {
      const text = pathText(target);
      const linkText = pathText(link);
      const from = linkText === undefined ? process.cwd() : path.dirname(path.resolve(linkText));
      const odd = uncheckable(target);
      if (text === undefined && odd === undefined) return; // fs refuses it itself
      const refusal = odd !== undefined ? `${odd} cannot be checked as the system would read it` : (text as string).includes('\0') ? undefined : linkTargetRefusal(text as string, from);
      if (refusal !== undefined) {
        throw new SnapshotError('REACH_DENIED', `service "${service}" tried to ${op} ${text ?? odd}: ${refusal}.`, { details: { service, kind: 'write', target: `${op} ${text ?? odd}`, allowed: [...(policy?.write ?? [])] } });
      }
    },
    checkPath(target: unknown, write: boolean, op: string, follow = true): void {
      const allowed = write ? policy?.write : policy?.read;
      const kind = write ? 'write' : 'read';
      const text = pathText(target);
      const odd = uncheckable(target);
      if (odd !== undefined) {
        throw new SnapshotError('REACH_DENIED', `service "${service}" tried to ${op} ${odd}, which no check can read as the system would: refused, whatever its policy. Name files with strings (or UTF-8 bytes, or file: URLs).`, {
          details: { service, kind, target: `${op} ${odd}`, allowed: [...(allowed ?? [])] },
        });
      }
      // Policy or not: the host process's environment, memory and descriptors (/proc/self/environ...), the library's key files.
      const where = text !== undefined && !text.includes('\0') ? lead(text, process.cwd(), follow) : undefined;
      const never = text !== undefined && where !== undefined ? (neverReachable(text, where) ?? holdsLibraryFile(where.real, op) ?? (write ? intoSnapshot(where.real, op) : undefined)) : undefined;
      if (never !== undefined) {
        throw new SnapshotError('REACH_DENIED', `service "${service}" tried to ${op} ${text}: ${never}.`, {
          details: { service, kind, target: `${op} ${text}`, allowed: [...(allowed ?? [])] },
        });
      }
      if (!allowed) return;
      if (text === undefined) return deny(kind, `${op} ${typeof target === 'number' ? `descriptor ${target}` : String(target)} (only paths can be checked)`, allowed, 'the path');
      if (text.includes('\0')) return deny(kind, `${op} a path with a NUL byte`, allowed, 'the path');
      const real = (where as Lead).real;
      // A relative path is shown with where it leads (process.loadEnvFile() reads '.env' of the working directory).
      const shown = real !== path.resolve(text) ? `${text} (really ${real})` : path.isAbsolute(text) ? text : `${text} (${real})`;
      if (!allowed.some(root => within(real, realPath(root)))) deny(kind, `${op} ${shown}`, allowed, `'${path.dirname(real)}'`);
    },
    checkTree(source: unknown, target: unknown, op: string): void {
      const from = pathText(source);
      const to = target === undefined ? undefined : pathText(target);
      if (from === undefined || (target !== undefined && to === undefined)) return;
      /** Directories on the walk's current branch, by device and inode: a link back up is not walked again. */
      const branch = new Set<string>();
      const visit = (file: string, copy: string | undefined): void => {
        reach.checkPath(file, false, op);
        if (copy !== undefined) reach.checkPath(copy, true, op);
        let stat: fs.Stats;
        try {
          stat = fs.statSync(file);
        } catch {
          return; // fs.cp fails on it itself
        }
        if (!stat.isDirectory()) return;
        const key = `${stat.dev}:${stat.ino}`;
        if (branch.has(key)) return;
        branch.add(key);
        let names: string[];
        try {
          names = fs.readdirSync(file);
        } catch {
          names = [];
        }
        for (const name of names) visit(path.join(file, name), copy === undefined ? undefined : path.join(copy, name));
        branch.delete(key);
      };
      visit(from, to);
    },
    checkTreeInto(source: unknown, target: unknown, op: string): void {
      const from = pathText(source);
      const to = pathText(target);
      if (from === undefined || to === undefined) return;
      const visit = (dir: string, copy: string): void => {
        let entries: fs.Dirent[];
        try {
          if (!fs.lstatSync(dir).isDirectory()) return;
          entries = fs.readdirSync(dir, { withFileTypes: true });
        } catch {
          return; // fs fails on it itself
        }
        reach.checkPath(copy, true, op);
        for (const entry of entries) if (entry.isDirectory()) visit(path.join(dir, entry.name), path.join(copy, entry.name));
      };
      visit(from, to);
    },
  });
  return reach;
};
