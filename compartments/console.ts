/**
 * `console` inside a service. Each call is a syscall carrying the formatted
 * text: printed (to stderr, prefixed with the service's name) at build time
 * and when live, absorbed silently on replay, and checked like any other
 * syscall, so a service that logs something different on replay diverges.
 */
import type { Membrane } from '../membrane/index.js';

type Printer = (text: string) => void;

/**
 * Print a service's line on stderr: every line of it prefixed with the
 * service's name, carriage returns and escape sequences made visible (a
 * service must not be able to print a line that looks like the library's,
 * nor rewrite the terminal).
 */
export const defaultPrinter =
  (service: string): Printer =>
  (text: string) => {
    const safe = text.replace(/\r/g, '\\r').replace(/\x1b/g, '\\x1b');
    process.stderr.write(`${safe.split('\n').map(line => `[${service}] ${line}`).join('\n')}\n`);
  };

/** `format` is the service's own util.format (its own inspect options). */
export const makeConsole = (membrane: Membrane, perfNow: () => number, print: Printer, format: (...args: unknown[]) => string): Record<string, unknown> => {
  let indent = '';
  const emit = (level: string, args: unknown[]) => {
    const text = indent + format(...args).split('\n').join(`\n${indent}`);
    membrane.syscall(`console.${level}`, [text], t => print(level === 'log' || level === 'info' ? (t as string) : `${level}: ${t as string}`));
  };
  const timers = new Map<string, number>();
  const counts = new Map<string, number>();
  const guestConsole = {
    log: (...args: unknown[]) => emit('log', args),
    info: (...args: unknown[]) => emit('info', args),
    debug: (...args: unknown[]) => emit('debug', args),
    warn: (...args: unknown[]) => emit('warn', args),
    error: (...args: unknown[]) => emit('error', args),
    trace: (...args: unknown[]) => emit('trace', args),
    dir: (value: unknown) => emit('log', [value]),
    table: (value: unknown) => emit('log', [value]),
    // As Node's: the first argument joins 'Assertion failed: ' as text, and the rest format against it (%s...).
    assert: (ok: unknown, ...args: unknown[]) => {
      if (ok) return;
      // A template literal, as Node's: a Symbol throws.
      emit('warn', args.length === 0 ? ['Assertion failed'] : [`Assertion failed: ${args[0] as string}`, ...args.slice(1)]);
    },
    group: (...args: unknown[]) => {
      if (args.length) emit('log', args);
      indent += '  ';
    },
    groupEnd: () => {
      indent = indent.slice(2);
    },
    count: (label = 'default') => {
      const n = (counts.get(label) ?? 0) + 1;
      counts.set(label, n);
      emit('log', [`${label}: ${n}`]);
    },
    countReset: (label = 'default') => counts.delete(label),
    time: (label = 'default') => {
      timers.set(label, perfNow());
    },
    timeEnd: (label = 'default') => {
      const start = timers.get(label);
      if (start === undefined) return;
      timers.delete(label);
      emit('log', [`${label}: ${(perfNow() - start).toFixed(3)}ms`]);
    },
    timeLog: (label = 'default', ...args: unknown[]) => {
      const start = timers.get(label);
      if (start !== undefined) emit('log', [`${label}: ${(perfNow() - start).toFixed(3)}ms`, ...args]);
    },
  };
  return harden({ ...guestConsole, groupCollapsed: guestConsole.group });
};
