/**
 * `export *` through an import cycle, linked as Node links it.
 *
 * Node resolves a name that a module gets through `export * from` when it
 * links the module graph, before anything runs (ECMA-262 ResolveExport). SES
 * wires a module's `export *` names only once all its imports have run, so
 * a module that imports such a name from a barrel still being linked
 * higher up a cycle (`indexed.mjs` imports `IntersectEvaluated` from
 * `intersect/index.mjs`, whose `export *` leads back to it:
 * @sinclair/typebox) failed with "does not provide an export named".
 *
 * At archive time, an ES module's `import { a, b as c } from './barrel.js'`
 * (and `export { a } from './barrel.js'`) whose names the barrel only
 * re-exports with `export *` is rewritten to import each name from the
 * module that declares it, after importing the barrel itself for its
 * effects, so modules still run in Node's order where there is no cycle:
 *
 *     import './barrel.js'; import { a } from './a.js'; import { b as c } from './b.js';
 *
 * Only relative specifiers of files inside the same package, only names
 * resolved to exactly one module (an ambiguous name, or a barrel that
 * cannot be read, is left as it was), and the statement keeps its line
 * count. Modules are read with es-module-lexer (the lexer Vite uses), so
 * TypeScript barrels are left alone. SES issue to report: "`export *`
 * names are wired after the module's imports have executed, so an importer
 * inside an import cycle does not see them (module-instance.js, imports())".
 */
import fs from 'node:fs';
import path from 'node:path';
import url from 'node:url';
import { init, parse } from 'es-module-lexer';

/** es-module-lexer's WebAssembly start: await it once before parsing. */
export const esmLexerReady: Promise<void> = init;

interface ModuleFacts {
  /** Names the module exports itself (declared or re-exported by name). */
  own: Set<string>;
  /** Files of its `export * from` targets, in order; null where one is not a relative file. */
  stars: Array<string | null>;
}

const relativeFile = (specifier: string, from: string): string | null => {
  if (!specifier.startsWith('./') && !specifier.startsWith('../')) return null;
  const file = path.resolve(path.dirname(from), specifier);
  return fs.existsSync(file) && fs.statSync(file).isFile() ? file : null;
};

const lexed = (source: string) => {
  try {
    return parse(source);
  } catch {
    return undefined;
  }
};

const UNKNOWN = Symbol('unknown');
type Provider = string | null | typeof UNKNOWN;

/** Facts about modules read from disk during one archive. */
const makeFacts = () => {
  const cache = new Map<string, ModuleFacts | undefined>();
  const facts = (file: string): ModuleFacts | undefined => {
    if (cache.has(file)) return cache.get(file);
    let result: ModuleFacts | undefined;
    try {
      const source = fs.readFileSync(file, 'utf8');
      const parsed = lexed(source);
      if (parsed) {
        const [imports, exports] = parsed;
        const stars: Array<string | null> = [];
        for (const entry of imports) {
          if (entry.t !== 1 || entry.n === undefined) continue;
          if (/^export\s*\*\s*from\b/.test(source.slice(entry.ss, entry.se))) stars.push(relativeFile(entry.n, file));
        }
        result = { own: new Set(exports.map(e => e.n)), stars };
      }
    } catch {
      result = undefined;
    }
    cache.set(file, result);
    return result;
  };
  /** The file that declares `name` for `file`, following `export *` (Node's ResolveExport); null: none; UNKNOWN: cannot tell. */
  const provider = (file: string, name: string, seen = new Set<string>()): Provider => {
    if (seen.has(file)) return null;
    seen.add(file);
    const module = facts(file);
    if (!module) return UNKNOWN;
    if (module.own.has(name)) return file;
    let found: string | null = null;
    for (const star of module.stars) {
      if (star === null) return UNKNOWN;
      const next = provider(star, name, seen);
      if (next === UNKNOWN) return UNKNOWN;
      if (next === null) continue;
      if (found !== null && found !== next) return UNKNOWN; // ambiguous: Node leaves it out
      found = next;
    }
    return found;
  };
  return { facts, provider };
};

const clauseEntry = /^\s*([A-Za-z_$][\w$]*)(?:\s+as\s+([A-Za-z_$][\w$]*))?\s*$/;
const namedFrom = /^(import|export)\s*\{([^}]*)\}\s*from\s*$/;

const specifierOf = (from: string, target: string): string => {
  const relative = path.relative(path.dirname(from), target).split(path.sep).join('/');
  return relative.startsWith('../') ? relative : `./${relative}`;
};

/** The source with each named import or re-export that goes through `export *` redirected; unchanged when there is none. */
export const linkStarExports = (source: string, file: string, facts = makeFacts()): string => {
  if (!source.includes('import') && !source.includes('export')) return source;
  const parsed = lexed(source);
  if (!parsed) return source;
  const edits: Array<{ start: number; end: number; text: string }> = [];
  for (const entry of parsed[0]) {
    if (entry.t !== 1 || entry.n === undefined) continue;
    const barrel = relativeFile(entry.n, file);
    if (barrel === null) continue;
    const barrelFacts = facts.facts(barrel);
    if (!barrelFacts || barrelFacts.stars.length === 0) continue;
    // The statement up to its specifier's opening quote: `import { a, b as c } from `.
    const head = source.slice(entry.ss, entry.s - 1);
    const clause = namedFrom.exec(head);
    if (!clause) continue;
    const [, keyword, list] = clause;
    const groups = new Map<string, string[]>();
    const kept: string[] = [];
    let redirected = false;
    for (const part of list.split(',')) {
      if (part.trim() === '') continue;
      const names = clauseEntry.exec(part);
      if (!names) {
        kept.push(part.trim());
        continue;
      }
      const found: Provider = names[1] === 'default' ? UNKNOWN : facts.provider(barrel, names[1]);
      if (typeof found !== 'string' || found === barrel || specifierOf(file, found).includes('node_modules')) {
        kept.push(part.trim());
        continue;
      }
      redirected = true;
      const target = specifierOf(file, found);
      groups.set(target, [...(groups.get(target) ?? []), part.trim()]);
    }
    if (!redirected) continue;
    const quote = JSON.stringify;
    const statement = source.slice(entry.ss, entry.se);
    const parts = [`import ${quote(entry.n)};`];
    for (const [target, names] of groups) parts.push(`${keyword} { ${names.join(', ')} } from ${quote(target)};`);
    if (kept.length > 0) parts.push(`${keyword} { ${kept.join(', ')} } from ${quote(entry.n)};`);
    const newlines = statement.split('\n').length - 1;
    edits.push({ start: entry.ss, end: entry.se, text: parts.join(' ') + '\n'.repeat(newlines) });
  }
  if (edits.length === 0) return source;
  let out = '';
  let at = 0;
  for (const edit of edits.sort((a, b) => a.start - b.start)) {
    out += source.slice(at, edit.start) + edit.text;
    at = edit.end;
    // A statement's own `;` (outside what the lexer spans) stays: an empty statement.
  }
  return out + source.slice(at);
};

type ParserTable = Record<string, { parse: (...args: never[]) => unknown }>;

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** The same parsers, the `mjs` one linking `export *` names as Node does (one fact cache per archive). */
export const withNodeStarExports = <T extends ParserTable>(parsers: T): T => {
  const mjs = parsers.mjs;
  if (!mjs) return parsers;
  const facts = makeFacts();
  const parse = (...args: never[]) => {
    const [bytes, specifier, location, ...rest] = args as unknown as [Uint8Array, string, string, ...unknown[]];
    if (typeof location === 'string' && location.startsWith('file:')) {
      const source = decoder.decode(bytes);
      const linked = linkStarExports(source, url.fileURLToPath(location), facts);
      if (linked !== source) return mjs.parse(...([encoder.encode(linked), specifier, location, ...rest] as unknown as never[]));
    }
    return mjs.parse(...args);
  };
  return { ...parsers, mjs: { ...mjs, parse } };
};
