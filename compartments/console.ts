/**
 * `console` inside a service. Each call is a syscall carrying the formatted
 * text: printed (to stderr, prefixed with the service's name) at build time
 * and when live, absorbed silently on replay, and checked like any other
 * syscall, so a service that logs something different on replay diverges.
 */
import { Console as HostConsole } from 'node:console';
import type { Membrane } from '../membrane/index.js';
import { nodeError } from './node-style-errors.js';
import { escapeControls } from '../replay-log/errors.js';
import { likeHostAll } from './host-shape.js';

type Printer = (text: string) => void;

/** The service's own util functions a console formats with (guest-util.ts), read when first used. */
export interface ConsoleUtil {
  readonly format: (...args: unknown[]) => string;
  readonly formatWithOptions: (options: object, ...args: unknown[]) => string;
  readonly inspect: (value: unknown, options?: object) => string;
}

/**
 * How a console turns a call into text: `format` for log and the others, `dir`
 * as Node's dir (util.inspect with customInspect off, the console's inspect
 * options, then the call's), `table` as Node's table (lib/internal/cli_table.js,
 * rendered by a Console of Node's writing into a string).
 */
interface Formatters {
  readonly format: (...args: unknown[]) => string;
  readonly dir: (object: unknown, options: unknown) => string;
  readonly table: (data: unknown, properties: unknown) => string;
}

/** Formatters with a Console's `inspectOptions` (none for the global console), over the service's util. */
const formatters = (util: () => ConsoleUtil, inspectOptions?: object): Formatters => {
  let tableConsole: HostConsole | undefined;
  let captured = '';
  return {
    format: (...args) => (inspectOptions ? util().formatWithOptions(inspectOptions, ...args) : util().format(...args)),
    dir: (object, options) => util().inspect(object, { customInspect: false, ...inspectOptions, ...(typeof options === 'object' && options !== null ? options : {}) }),
    table: (data, properties) => {
      tableConsole ??= new HostConsole({
        stdout: { write: (text: string) => ((captured += text), true) } as unknown as NodeJS.WritableStream,
        ignoreErrors: false,
        colorMode: false,
        ...(inspectOptions ? { inspectOptions } : {}),
      });
      captured = '';
      const table = tableConsole.table as (...args: unknown[]) => void;
      Reflect.apply(table, tableConsole, properties === undefined ? [data] : [data, properties]);
      // Node writes the table and a newline: the newline is the console's own.
      const text = captured.endsWith('\n') ? captured.slice(0, -1) : captured;
      captured = '';
      return text;
    },
  };
};

/**
 * Print a service's line on stderr: every line of it prefixed with the
 * service's name, carriage returns and escape sequences made visible (a
 * service must not be able to print a line that looks like the library's,
 * nor rewrite the terminal: every control character but newline and tab
 * is shown escaped).
 */
export const defaultPrinter =
  (service: string): Printer =>
  (text: string) => {
    // Every control character but the newline and tab, C1 included (\b erased the prefix on a terminal, \u009b is a CSI).
    const safe = escapeControls(text);
    process.stderr.write(`${safe.split('\n').map(line => `[${service}] ${line}`).join('\n')}\n`);
  };

/**
 * Whether the host's console.assert joins only a string first argument to
 * 'Assertion failed: ' and passes any other on as an argument of its own
 * (Node 22 and later, lib/internal/console/constructor.js: `if (args.length
 * && typeof args[0] === 'string') ... else ArrayPrototypeUnshift(args,
 * 'Assertion failed')`: `assert(false, Symbol())` warns the Symbol) or
 * joins any first argument as a template literal does (Node 20: a Symbol
 * throws, an object reads `[object Object]`). Asked of the host's own
 * assert, with a `this` whose warn keeps what it is given.
 */
const assertKeepsNonStrings = ((): boolean => {
  let warned: unknown[] = [];
  const probe = { warn: (...args: unknown[]) => (warned = args) };
  Reflect.apply(HostConsole.prototype.assert, probe, [false, 5]);
  return warned.length === 2 && warned[1] === 5;
})();

/** What console.assert(false, ...args) hands to warn, as the host's assert does (assertKeepsNonStrings). */
const assertFailure = (args: unknown[]): unknown[] => {
  if (args.length === 0) return ['Assertion failed'];
  if (assertKeepsNonStrings && typeof args[0] !== 'string') return ['Assertion failed', ...args];
  // A template literal, as Node's: on Node 20 a Symbol throws.
  return [`Assertion failed: ${args[0] as string}`, ...args.slice(1)];
};

/**
 * The methods of a console, as Node's (lib/internal/console/constructor.js),
 * over `emit(level, text)`: `text` formatted by `format` (the service's own
 * util.format) and indented by group(), without its trailing newline.
 */
const consoleMethods = (
  emit: (level: string, text: string) => void,
  perfNow: () => number,
  text: Formatters,
  groupIndentation = 2,
  self?: () => Record<string, unknown> | undefined,
): Record<string, (...args: never[]) => unknown> => {
  let indent = '';
  const indented = (line: string) => indent + line.split('\n').join(`\n${indent}`);
  const say = (level: string, args: unknown[]) => emit(level, indented(text.format(...args)));
  /**
   * Node's composite methods (group, count, table, time*, assert, trace) call `this.log`, `this.warn` or
   * `this.error` (lib/internal/console/constructor.js): one the service replaced on its console gets Node's
   * arguments; true when it did.
   */
  const via = (name: 'log' | 'warn' | 'error', args: unknown[]): boolean => {
    const target = self?.();
    const method = target?.[name];
    if (target === undefined || typeof method !== 'function' || method === methods[name]) return false;
    Reflect.apply(method, target, args);
    return true;
  };
  const timers = new Map<string, number>();
  const counts = new Map<string, number>();
  const methods = {
    log: (...args: unknown[]) => say('log', args),
    info: (...args: unknown[]) => say('info', args),
    debug: (...args: unknown[]) => say('debug', args),
    warn: (...args: unknown[]) => say('warn', args),
    error: (...args: unknown[]) => say('error', args),
    trace: (...args: unknown[]) => {
      if (!via('error', [`Trace: ${text.format(...args)}`])) say('trace', args);
    },
    dir: (...args: unknown[]) => emit('log', indented(text.dir(args[0], args[1]))),
    table: (...args: unknown[]) => {
      // Node's logs what is no object as it is (this.log(tabularData)).
      if ((args[0] === null || typeof args[0] !== 'object') && via('log', [args[0]])) return;
      const table = text.table(args[0], args[1]);
      if (!via('log', [table])) emit('log', indented(table));
    },
    // As the host's (assertFailure): the message Node's assert hands to warn.
    assert: (...all: unknown[]) => {
      const [ok, ...args] = all;
      if (ok) return;
      const failed = assertFailure(args);
      if (!via('warn', failed)) say('warn', failed);
    },
    group: (...args: unknown[]) => {
      if (args.length && !via('log', args)) say('log', args);
      indent += ' '.repeat(groupIndentation);
    },
    groupCollapsed: (...args: unknown[]) => methods.group(...args),
    dirxml: (...args: unknown[]) => say('log', args),
    // A service's output is no terminal (its process.stdout has no isTTY): Node's clear() does nothing there.
    clear: () => {},

    groupEnd: () => {
      indent = indent.slice(groupIndentation);
    },
    // Labels are text, as Node's (`${label}`): count(1) and count('1') count together.
    count: (given: unknown = 'default') => {
      const label = `${given as string}`;
      const n = (counts.get(label) ?? 0) + 1;
      counts.set(label, n);
      if (!via('log', [`${label}: ${n}`])) say('log', [`${label}: ${n}`]);
    },
    countReset: (label: unknown = 'default') => counts.delete(`${label as string}`),
    time: (label: unknown = 'default') => {
      timers.set(`${label as string}`, perfNow());
    },
    timeEnd: (given: unknown = 'default') => {
      const label = `${given as string}`;
      const start = timers.get(label);
      if (start === undefined) return;
      timers.delete(label);
      const took = `${(perfNow() - start).toFixed(3)}ms`;
      if (!via('log', ['%s: %s', label, took])) say('log', [`${label}: ${took}`]);
    },
    timeLog: (given: unknown = 'default', ...args: unknown[]) => {
      const label = `${given as string}`;
      const start = timers.get(label);
      if (start === undefined) return;
      const took = `${(perfNow() - start).toFixed(3)}ms`;
      if (!via('log', ['%s: %s', label, took, ...args])) say('log', [`${label}: ${took}`, ...args]);
    },
  };
  return methods;
};

/**
 * What the global console has beside Node's Console methods (V8's): for an
 * inspector only, so nothing happens without an inspector session, as in
 * Node; createTask(name).run(f) calls f (async stack tagging).
 */
const v8Methods = () => ({
  profile: () => {},
  profileEnd: () => {},
  timeStamp: () => {},
  context: (_name?: unknown) => inspectorContext(),
  createTask: (...args: unknown[]) => {
    if (typeof args[0] !== 'string' || args[0] === '') throw new Error('First argument must be a non-empty string.');
    return {
      run: (...call: unknown[]) => {
        if (typeof call[0] !== 'function') throw new Error('First argument must be a function.');
        return Reflect.apply(call[0], undefined, []);
      },
    };
  },
});

/**
 * The methods of a console.context(name), in the host's order: V8's own
 * (src/inspector/v8-console.cc), whose order its versions change (Node 24's
 * V8 lists timeLog after time, Node 20's and 22's after profileEnd). Read
 * from a context of the host's console, which reaches only an inspector.
 */
const inspectorContextNames: readonly string[] = (() => {
  const context = (console as unknown as { context?: (name?: string) => object }).context;
  const names = typeof context === 'function' ? Object.keys(Reflect.apply(context, console, [])) : [];
  return names.length > 0
    ? names
    : ['dir', 'dirXml', 'table', 'groupEnd', 'clear', 'count', 'countReset', 'profile', 'profileEnd', 'timeLog', 'debug', 'error', 'info', 'log', 'warn', 'trace', 'group', 'groupCollapsed', 'assert', 'time', 'timeEnd', 'timeStamp'];
})();

/** What V8's console.context(name) answers: a console whose methods reach an inspector only (none here: they do nothing, as in Node without one). */
const inspectorContext = (): Record<string, () => void> => Object.fromEntries(inspectorContextNames.map(name => [name, Object.defineProperty(() => {}, 'name', { value: name })]));

/** The levels Node's Console writes to its stderr stream. */
const toStderr = new Set(['warn', 'error', 'trace']);

/**
 * Node's `console.Console`: a console writing to the streams it is given
 * (`new Console(stdout[, stderr])` or `new Console({ stdout, stderr })`;
 * stderr defaults to stdout), each call one `write` of its text and a
 * newline, as Node's; unless `ignoreErrors` is false, what the stream
 * throws or emits as an error is ignored. Callable without `new`, as
 * Node's. A stream without `write` is Node's ERR_CONSOLE_WRITABLE_STREAM.
 */
const makeConsoleClass = (perfNow: () => number, util: () => ConsoleUtil) => {
  type Writable = { write: (text: string, callback?: () => void) => unknown };
  const writable = (stream: unknown): stream is Writable => typeof stream === 'object' && stream !== null && typeof (stream as { write?: unknown }).write === 'function';
  type Listening = Writable & { once: (event: string, listener: () => void) => unknown; removeListener: (event: string, listener: () => void) => unknown };
  const noop = () => {};
  function Console(this: Record<string, unknown>, stdoutOrOptions?: unknown, stderrArg?: unknown, ignoreErrorsArg?: unknown): unknown {
    if (!new.target) return Reflect.construct(Console, [stdoutOrOptions, stderrArg, ignoreErrorsArg]);
    const options = writable(stdoutOrOptions)
      ? { stdout: stdoutOrOptions, stderr: stderrArg, ignoreErrors: ignoreErrorsArg }
      : ((stdoutOrOptions ?? {}) as { stdout?: unknown; stderr?: unknown; ignoreErrors?: unknown; inspectOptions?: unknown; groupIndentation?: unknown; colorMode?: unknown });
    // Node's inspectOptions (its colors, when colorMode is true) and groupIndentation (lib/internal/console/constructor.js).
    const given = options as { inspectOptions?: unknown; groupIndentation?: unknown; colorMode?: unknown };
    let inspectOptions = typeof given.inspectOptions === 'object' && given.inspectOptions !== null ? { ...(given.inspectOptions as object) } : undefined;
    if (given.colorMode === true) inspectOptions = { ...inspectOptions, colors: true };
    const groupIndentation = typeof given.groupIndentation === 'number' ? given.groupIndentation : 2;
    const { stdout } = options;
    const stderr = options.stderr ?? stdout;
    for (const [name, stream] of [['stdout', stdout], ['stderr', stderr]] as const) {
      if (!writable(stream)) throw nodeError(TypeError, 'ERR_CONSOLE_WRITABLE_STREAM', `Console expects a writable stream instance for ${name}`);
    }
    const ignoreErrors = options.ignoreErrors !== false;
    // As Node's kWriteToConsole: unless told not to, errors of the stream (thrown by write, or emitted) are ignored.
    const write = (stream: Listening, text: string): void => {
      // A stream that is no EventEmitter (the service's process.stdout) is written to as it is.
      if (!ignoreErrors || typeof stream.once !== 'function' || typeof stream.removeListener !== 'function') {
        stream.write(text);
        return;
      }
      stream.once('error', noop);
      try {
        stream.write(text, noop as never);
      } catch {
        // ignored, as Node's ignoreErrors does (it rethrows only a stack overflow)
      } finally {
        stream.removeListener('error', noop);
      }
    };
    const methods = consoleMethods(
      (level, text) => write((toStderr.has(level) ? stderr : stdout) as Listening, `${level === 'trace' ? 'Trace: ' : ''}${text}\n`),
      perfNow,
      formatters(util, inspectOptions),
      groupIndentation,
      () => this as unknown as Record<string, unknown>,
    );
    for (const [name, method] of Object.entries(methods)) {
      // With the lengths of Node's Console methods (dir(object, options) is 2), where the global console's are 0.
      const length = (HostConsole.prototype as unknown as Record<string, { length?: unknown } | undefined>)[name]?.length;
      if (typeof length === 'number') Object.defineProperty(method, 'length', { value: length, configurable: true });
      Object.defineProperty(this, name, { value: method, writable: true, enumerable: true, configurable: true });
    }
    return this;
  }
  return Console;
};

/**
 * The service's console. `util` gives its own util (format, formatWithOptions, inspect: its own inspect
 * defaults). The object is the service's own, as Node's is the process's: its methods can be replaced
 * (`console.warn = () => {}` silences a package, as in Node; found by helper-93), and each method itself
 * is hardened.
 */
export const makeConsole = (membrane: Membrane, perfNow: () => number, print: Printer, util: () => ConsoleUtil): Record<string, unknown> => {
  const emit = (level: string, text: string) => {
    membrane.syscall(`console.${level}`, [text], t => print(level === 'log' || level === 'info' ? (t as string) : `${level}: ${t as string}`));
  };
  let guest: Record<string, unknown> | undefined;
  guest = likeHostAll({ ...consoleMethods(emit, perfNow, formatters(util), 2, () => guest), ...v8Methods(), Console: makeConsoleClass(perfNow, util) }, console);
  for (const value of Object.values(guest)) harden(value);
  return guest;
};
