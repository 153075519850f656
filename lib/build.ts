/**
 * `snapshot build`: run a build script, then seal every service it imported.
 *
 * A build is all or nothing: it writes into a work directory beside the
 * output and replaces the output only once every log is sealed and the
 * manifest written (BuildSession.replace), so a build that fails, runs out
 * of disk or is killed leaves the previous snapshot exactly as it was.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SnapshotError, isSnapshotError } from '../replay-log/index.js';
import { block, causeLines, readCheckedOptions } from '../replay-log/errors.js';
import { beginSession, endSession, type BuildSession } from './session.js';
import type { Manifest } from './manifest.js';
import { appNameOf } from './runtime.js';
import { loadSigningKey } from './signing.js';
import { loadSealer } from './seal-key.js';
import { settledBeforeExit } from './before-exit.js';
import { hostAnswerCall, isHostAnswer } from '../membrane/index.js';

export interface BuildOptions {
  /** The build script (.js, .mjs, .ts, .mts). */
  readonly script: string;
  /** The snapshot directory to write. Default: `snapshot`. */
  readonly out?: string;
  /** How long to wait for services to become quiescent after the script ends, in ms. Default 30000. */
  readonly timeoutMs?: number;
  readonly print?: (text: string) => void;
  /** An ed25519 private key (PEM file) to sign the manifest with (manifest.sig). */
  readonly sign?: string;
  /** A file holding the seal key (32 bytes, base64). Default: the SNAPSHOT_SEAL_KEY environment variable. */
  readonly sealKeyFile?: string;
  /**
   * Before replacing the output, wait until the process has nothing left to
   * do (Node's `beforeExit`), so that work the script did not await (a timer,
   * an unawaited async function) that calls importService or rejects fails
   * the build instead of being lost. For a process that runs nothing else
   * (the CLI); a program with servers or intervals of its own must leave it
   * off (default: false).
   */
  readonly awaitScript?: boolean;
}

export interface BuildResult {
  readonly dir: string;
  readonly manifest: Manifest;
  /** Wall time of the build, in ms. */
  readonly ms: number;
}

let tsxRegistered = false;

/** The builds of each script made in this process so far, by real path: how many, and the modules the last one imported services from. */
const scriptBuilds = new Map<string, { builds: number; callers: ReadonlySet<string> }>();

/**
 * For a build that imported no service: the modules that imported services
 * in an earlier build in this process other than this script (a helper it
 * imports is not evaluated again), as a sentence; '' when there are none.
 */
const evaluatedImporters = (key: string): string => {
  const script = pathToFileURL(key).href;
  const modules = new Set<string>();
  for (const [built, { callers }] of scriptBuilds) {
    for (const caller of callers) if (caller !== pathToFileURL(built).href && caller !== script) modules.add(fileURLToPath(caller));
  }
  return modules.size === 0
    ? ''
    : ` Or it imports them from a module that an earlier build in this process evaluated already (${[...modules].join(', ')}): Node evaluates a module once per process, so its importService calls do not run again. Build in a new process (\`snapshot build\`, or a child process).`;
};

/**
 * The URL a build imports its script by. Node evaluates a module once per
 * URL (its real path): a second build of the same script in one process (a
 * test suite, a watch loop) would find it evaluated already and import no
 * service. Each later build adds a query (`?membrane-snapshot-build=2`),
 * which relative imports, `import.meta.filename` and
 * `fileURLToPath(import.meta.url)` ignore; the first keeps the plain URL, as
 * `node script.mjs` has it. The modules the script imports are not
 * evaluated again, so a later build is refused (USAGE) when the last one
 * imported services from another module than the script: their
 * importService calls would not run again, and the snapshot would lack
 * those services without a word.
 */
const scriptUrl = (script: string): { url: string; key: string } => {
  const key = fs.realpathSync(script);
  const before = scriptBuilds.get(key);
  const href = pathToFileURL(key).href;
  if (before === undefined) return { url: href, key };
  const others = [...before.callers].filter(caller => caller !== href);
  if (others.length > 0) {
    throw new SnapshotError(
      'USAGE',
      `the build script ${script} was built in this process already, and its services were imported from ${others.map(c => fileURLToPath(c)).join(', ')} as well as from the script: ` +
        'Node evaluates a module once per process, so those importService calls would not run again and the snapshot would lack their services. ' +
        'Build it in a new process (`snapshot build`, or a child process), or call importService from the build script itself.',
      { details: { script, modules: others } },
    );
  }
  return { url: `${href}?membrane-snapshot-build=${before.builds + 1}`, key };
};

/** TypeScript build scripts run through tsx's loader. */
const ensureTypeScript = async (script: string): Promise<void> => {
  if (tsxRegistered || !/\.[cm]?ts$/.test(script)) return;
  const { register } = await import('tsx/esm/api');
  register();
  tsxRegistered = true;
};

/** Errors that mean the disk (or a quota, or a file-size limit) refused our writes. */
const diskFullCodes = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);

const errnoOf = (error: unknown): string | undefined => {
  for (let e = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && diskFullCodes.has(code)) return code;
  }
  return undefined;
};

const describeFailure = (error: unknown): string => {
  const errno = errnoOf(error);
  if (errno) {
    const what = errno === 'EFBIG' ? 'a file grew past the file-size limit (ulimit -f)' : errno === 'EDQUOT' ? 'the disk quota is exhausted' : 'the disk is full';
    return `${errno}: ${what} while writing the snapshot (${error instanceof Error ? error.message : String(error)}). Free space or raise the limit, then build again.`;
  }
  if (isSnapshotError(error)) return `${error.code}: ${error.message}`;
  return [error instanceof Error ? (error.stack ?? error.message) : String(error), ...causeLines(error)].join('\n');
};

/**
 * Which unhandled rejections belong to the build script (and fail the
 * build): our own typed errors (an importService that failed or came too
 * late, a call on a service that failed), and errors thrown by the
 * script's own code (its file is on their stack). A service's own
 * forgotten rejection is reported by SES and does not fail the build.
 */
const isScriptRejection = (reason: unknown, script: string): boolean => {
  // A service's failed answer to a call the script made and never awaited: the script's rejection.
  if (isSnapshotError(reason) || isHostAnswer(reason)) return true;
  const stack = reason instanceof Error ? String(reason.stack ?? '') : '';
  return stack.includes(script) || stack.includes(pathToFileURL(script).href);
};

/**
 * Run a build script and write the snapshot. Throws USAGE when the script
 * does not exist or `out` is not a snapshot directory, BUILD_FAILED when
 * the script throws, leaves a rejection unhandled, imports nothing, imports
 * after sealing, or the disk refuses a write (the previous snapshot in `out`
 * is kept in every case), NOT_QUIESCENT when a service stays busy past
 * `timeoutMs`.
 */
export const buildSnapshot = async (given: BuildOptions): Promise<BuildResult> => {
  const started = performance.now();
  // Read once: what is checked is what is used.
  const options = readCheckedOptions(
    given,
    { script: 'string', out: 'string', timeoutMs: 'ms', print: 'function', sign: 'string', sealKeyFile: 'string', awaitScript: 'boolean' },
    'buildSnapshot()',
    ['script'],
  );
  const script = path.resolve(options.script);
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(script);
  } catch {
    stat = undefined;
  }
  if (!stat?.isFile()) {
    throw new SnapshotError('USAGE', `the build script ${script} ${stat ? 'is not a file' : 'does not exist'}. Give the path of a .js, .mjs, .ts or .mts file that calls importService().`, {
      details: { script },
    });
  }
  // Keys first: a bad key fails before anything is run or written.
  const signer = options.sign === undefined ? undefined : loadSigningKey(options.sign);
  const sealer = loadSealer(options.sealKeyFile);
  const out = options.out ?? 'snapshot';
  // Refused before anything runs when a later build of this script would miss services (scriptUrl).
  const { url, key } = scriptUrl(script);
  const session = beginSession(out, options.print, { signer, sealer });
  scriptBuilds.set(key, { builds: (scriptBuilds.get(key)?.builds ?? 0) + 1, callers: session.callers });
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown, promise: Promise<unknown>): void => {
    if (isScriptRejection(reason, script)) rejections.push(reason); // reported as the build's failure
    else process.stderr.write(`snapshot: a service left a promise rejection unhandled: ${block(describeFailure(reason))}\n`);
    // Reported: handled now, so that SES's own report of what is still unhandled at exit (SES_UNHANDLED_REJECTION)
    // does not say it again.
    promise.catch(() => {});
  };
  process.on('unhandledRejection', onRejection);
  const failed = (error: unknown, phase: string): SnapshotError => {
    const keep = errnoOf(error) === undefined; // on a full disk, give the space back
    const progress = session.discard({ keep });
    if (isSnapshotError(error) && (error.code === 'BUILD_FAILED' || error.code === 'NOT_QUIESCENT')) return error;
    // A TypeError from the script while an importService promise was never awaited: the usual missing await.
    const notAwaited = error instanceof TypeError ? [...new Set(session.unawaited.values())] : [];
    // An ES module build script in a package without "type": "module": Node loads it as CommonJS, and its own
    // error (ERR_REQUIRE_CYCLE_MODULE for a .ts script) does not say so.
    const esm =
      ['ERR_REQUIRE_CYCLE_MODULE', 'ERR_REQUIRE_ESM'].includes(String((error as { code?: unknown } | null)?.code)) && /\.[jt]sx?$/.test(script)
        ? `\n${script} is an ES module (import/export) in a package without "type": "module", so Node loads it as CommonJS: add "type": "module" to the package.json beside it, or name it ${/\.tsx?$/.test(script) ? '.mts' : '.mjs'}.`
        : '';
    const hint = notAwaited.length
      ? `\nimportService() returns a promise, and the build script did not await the one for ${notAwaited.map(s => JSON.stringify(s)).join(', ')}: write \`const svc = await importService(...)\`.`
      : esm;
    const reason = describeFailure(error) + hint;
    const kept = fs.existsSync(session.outDir) ? ` ${session.outDir} is unchanged.` : '';
    return new SnapshotError(
      'BUILD_FAILED',
      `the build script ${script} failed; no snapshot was sealed.${kept}\n${reason}${progress.length ? `\nRecorded so far:\n${progress.map(p => `  ${p}`).join('\n')}` : ''}`,
      { cause: error, details: { script, progress, phase } },
    );
  };
  try {
    try {
      await ensureTypeScript(script);
      await (options.awaitScript ? importScript(script, url) : import(url));
    } catch (error) {
      throw failed(error, 'script');
    }
    let manifest: Manifest;
    try {
      manifest = await session.seal(options.timeoutMs ?? 30_000, appNameOf(script), evaluatedImporters(key));
      await settleRejections();
      if (rejections.length) throw unawaited(rejections[0]);
      if (options.awaitScript) await scriptDone(session, rejections, options.timeoutMs ?? 30_000);
    } catch (error) {
      throw failed(error, 'seal');
    }
    try {
      session.replace();
      session.clearPartial();
    } catch (error) {
      throw failed(error, 'replace');
    }
    return { dir: session.outDir, manifest, ms: performance.now() - started };
  } finally {
    process.off('unhandledRejection', onRejection);
    endSession(session);
  }
};

/**
 * Run the build script (its module, top-level awaits included), failing
 * with BUILD_FAILED if the process runs out of work while it is still
 * pending: its top-level await then waits for a promise nothing is left to
 * settle (a service call whose promise never settles, an event that never
 * comes). Node itself would exit with code 13 and a warning; the CLI exited
 * 0, printing nothing and writing no snapshot. For a process that runs
 * nothing else (the CLI, `awaitScript`).
 */
const importScript = (script: string, url: string): Promise<unknown> =>
  settledBeforeExit(
    import(url),
    () =>
      new SnapshotError(
        'BUILD_FAILED',
        `the build script ${script} never finished: its top-level await waits for a promise that nothing is left to settle (no timer, request or service call is pending). Make sure every promise it awaits settles (a service call that returns one that never does, an event that never comes).`,
        { details: { script } },
      ),
  );

/**
 * A rejection the build script left unhandled: when it is a service's
 * failed answer to a call the script made, USAGE saying which call and that
 * nothing awaited it (the usual cause: a missing `await`).
 */
const unawaited = (reason: unknown): unknown => {
  const call = hostAnswerCall(reason);
  if (call === undefined) return reason;
  return new SnapshotError('USAGE', `${call} failed, and the build script did not await it: await every call of a service (await svc.method()), or catch its error. It failed with ${describeFailure(reason)}`, { cause: reason });
};

/** Let Node report rejections left unhandled by the last turn (it does so after the microtask queue drains). */
const settleRejections = (): Promise<void> => new Promise(resolve => setImmediate(resolve));

/**
 * Resolve when the process has nothing left to do, after sealing: work the
 * script did not await has then run. Throws the first unhandled rejection
 * of the script, USAGE for an importService that came too late, and
 * BUILD_FAILED when the script still keeps the process busy `timeoutMs`
 * (ms) later (a server or an interval it never closes).
 */
const scriptDone = async (session: BuildSession, rejections: unknown[], timeoutMs: number): Promise<void> => {
  let timer: NodeJS.Timeout | undefined;
  const finished = await new Promise<boolean>(resolve => {
    process.once('beforeExit', () => resolve(true));
    timer = setTimeout(() => resolve(false), timeoutMs).unref(); // unref: it must not itself keep the process busy
  });
  clearTimeout(timer);
  await settleRejections();
  if (rejections.length) throw unawaited(rejections[0]);
  if (session.late.length) {
    throw new SnapshotError('USAGE', `importService(${JSON.stringify(session.late[0])}) came after the snapshot was sealed; await it from the top level of the build script.`);
  }
  if (!finished) {
    const active = process.getActiveResourcesInfo().filter(r => r !== 'TTYWrap');
    const busy = describeBusy();
    throw new SnapshotError(
      'BUILD_FAILED',
      `the build script still kept the process busy ${timeoutMs} ms after every service was idle and sealed (${busy.join(', ') || `active: ${active.join(', ') || 'unknown'}`}), so it may still call importService. ` +
        'A build script must finish: close the servers and intervals it opens (server.close(), clearInterval, or unref() them) and await its work.',
      { details: { active, busy } },
    );
  }
};

/**
 * What keeps the process busy, as a build script's author knows it: its
 * servers (with their addresses), connections, and timers; not the
 * process's own stdio (Node's PipeWrap or TTYWrap for stdout and stderr).
 */
const describeBusy = (): string[] => {
  const out: string[] = [];
  const handles = (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles?.() ?? [];
  for (const handle of handles) {
    if (handle === process.stdout || handle === process.stderr || handle === process.stdin) continue;
    if (handle instanceof net.Server) {
      const address = handle.address();
      out.push(`a server listening on ${typeof address === 'string' ? address : address ? `${address.address}:${address.port}` : 'an unknown address'}`);
    } else if (handle instanceof net.Socket) {
      out.push(handle.remoteAddress ? `a connection with ${handle.remoteAddress}:${handle.remotePort}` : 'a socket');
    } else {
      out.push(`a ${(handle as { constructor?: { name?: string } })?.constructor?.name ?? 'handle'}`);
    }
  }
  const timers = process.getActiveResourcesInfo().filter(r => r === 'Timeout').length;
  if (timers) out.push(`${timers} timer${timers === 1 ? '' : 's'} (setTimeout or setInterval)`);
  return out;
};
