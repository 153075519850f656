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
import { createRequire } from 'node:module';
import { init, parse } from 'es-module-lexer';
import type { ParserTable } from './parser-table.js';

/** es-module-lexer's WebAssembly start: await it once before parsing. */
export const esmLexerReady: Promise<void> = init;

/** Where an explicitly exported name comes from: declared here, or imported (`'*'`: a namespace). */
type Target = { kind: 'local'; local: string } | { kind: 'import'; file: string | null; name: string };

interface ModuleFacts {
  /** The names the module exports itself (declared, or re-exported by name). */
  exports: Map<string, Target>;
  /** Files of its `export * from` targets, in order; null where one is not a relative file. */
  stars: Array<string | null>;
}

const relativeFile = (specifier: string, from: string): string | null => {
  if (!specifier.startsWith('./') && !specifier.startsWith('../')) return null;
  const file = path.resolve(path.dirname(from), specifier);
  return fs.statSync(file, { throwIfNoEntry: false })?.isFile() ? file : null;
};

const lexed = (source: string) => {
  try {
    return parse(source);
  } catch {
    return undefined;
  }
};

const identifier = '[A-Za-z_$][\\w$]*';
const clauseEntry = new RegExp(`^\\s*(${identifier})(?:\\s+as\\s+(${identifier}))?\\s*$`);

/** The `{ a, b as c }` entries of a clause: [imported or local name, exported or local alias]. */
const entriesOf = (list: string): Array<[string, string]> | undefined => {
  const out: Array<[string, string]> = [];
  for (const part of list.split(',')) {
    if (part.trim() === '') continue;
    const names = clauseEntry.exec(part);
    if (!names) return undefined;
    out.push([names[1], names[2] ?? names[1]]);
  }
  return out;
};

const UNKNOWN = Symbol('unknown');
const AMBIGUOUS = Symbol('ambiguous');
/** A binding: the module that declares it, its local name there, and a name it is exported under there. */
interface Binding {
  file: string;
  binding: string;
  exportName: string;
}
type Resolution = Binding | null | typeof UNKNOWN | typeof AMBIGUOUS;

/** Reads a file's bytes (undefined if it cannot be read); the archive's own read of it is then spared (archive-powers.ts). */
export type ReadAhead = (file: string) => Uint8Array | undefined;

const readFromDisk: ReadAhead = file => {
  try {
    return fs.readFileSync(file);
  } catch {
    return undefined;
  }
};

/** Facts about modules read from disk, and Node's ResolveExport over them, for one archive. */
const makeFacts = (readAhead: ReadAhead = readFromDisk) => {
  const cache = new Map<string, ModuleFacts | undefined>();
  // A barrel's text, kept from mayHaveStars for facts (other files are read once and not kept).
  const barrelSources = new Map<string, string>();
  const sourceOf = (file: string): string | undefined => {
    const kept = barrelSources.get(file);
    if (kept !== undefined) {
      barrelSources.delete(file);
      return kept;
    }
    const bytes = readAhead(file);
    return bytes === undefined ? undefined : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  };
  const read = (file: string): ModuleFacts | undefined => {
    const source = sourceOf(file);
    if (source === undefined) return undefined;
    const parsed = lexed(source);
    if (!parsed) return undefined;
    const [imports, exported, , hasModuleSyntax] = parsed;
    // A CommonJS module (or one with no import or export): its names are not known here.
    if (!hasModuleSyntax) return undefined;
    const bindings = new Map<string, { file: string | null; name: string }>();
    const stars: Array<string | null> = [];
    const statements: Array<{ ss: number; se: number; file: string | null; text: string }> = [];
    for (const entry of imports) {
      if (entry.t !== 1 || entry.n === undefined) continue;
      const target = relativeFile(entry.n, file);
      const text = source.slice(entry.ss, entry.s - 1);
      statements.push({ ss: entry.ss, se: entry.se, file: target, text });
      if (/^export\s*\*\s*from\s*$/.test(text)) stars.push(target);
      const clause = /^import\s*([^]*?)\s*from\s*$/.exec(text);
      if (!clause) continue;
      let rest = clause[1];
      const fallback = new RegExp(`^(${identifier})\\s*(?:,\\s*|$)`).exec(rest);
      if (fallback) {
        bindings.set(fallback[1], { file: target, name: 'default' });
        rest = rest.slice(fallback[0].length);
      }
      const namespace = new RegExp(`^\\*\\s*as\\s+(${identifier})`).exec(rest);
      if (namespace) bindings.set(namespace[1], { file: target, name: '*' });
      const named = /^\{([^}]*)\}/.exec(rest);
      for (const [name, local] of (named && entriesOf(named[1])) ?? []) bindings.set(local, { file: target, name });
    }
    const exports = new Map<string, Target>();
    for (const entry of exported) {
      if (entry.ln !== undefined) {
        const imported = bindings.get(entry.ln);
        exports.set(entry.n, imported ? { kind: 'import', ...imported } : { kind: 'local', local: entry.ln });
        continue;
      }
      const statement = statements.find(st => st.ss <= entry.s && entry.s < st.se);
      if (!statement) {
        exports.set(entry.n, { kind: 'local', local: entry.n });
        continue;
      }
      if (/^export\s*\*\s*as\b/.test(statement.text)) {
        exports.set(entry.n, { kind: 'import', file: statement.file, name: '*' });
        continue;
      }
      const named = /^export\s*\{([^}]*)\}/.exec(statement.text);
      const found = named && entriesOf(named[1])?.find(([, alias]) => alias === entry.n);
      exports.set(entry.n, found ? { kind: 'import', file: statement.file, name: found[0] } : { kind: 'import', file: null, name: entry.n });
    }
    return { exports, stars };
  };
  /** Whether a file may be a barrel (its text has `export *`): read once, no lexing. */
  const starCache = new Map<string, boolean>();
  const mayHaveStars = (file: string): boolean => {
    let answer = starCache.get(file);
    if (answer === undefined) {
      const source = sourceOf(file);
      answer = source !== undefined && /\bexport\s*\*/.test(source);
      if (answer && !cache.has(file)) barrelSources.set(file, source as string);
      starCache.set(file, answer);
    }
    return answer;
  };
  const facts = (file: string): ModuleFacts | undefined => {
    if (!cache.has(file)) {
      let result: ModuleFacts | undefined;
      try {
        result = read(file);
      } catch {
        result = undefined;
      }
      cache.set(file, result);
    }
    return cache.get(file);
  };

  /** ECMA-262 ResolveExport (16.2.1.6.3), on what the lexer tells of each module. */
  const resolve = (file: string, name: string, resolveSet = new Set<string>()): Resolution => {
    const key = `${file}\0${name}`;
    if (resolveSet.has(key)) return null;
    resolveSet.add(key);
    const module = facts(file);
    if (!module) return UNKNOWN;
    const target = module.exports.get(name);
    if (target) {
      if (target.kind === 'local') return { file, binding: target.local, exportName: name };
      if (target.file === null) return UNKNOWN;
      if (target.name === '*') return { file: target.file, binding: '*', exportName: '*' };
      return resolve(target.file, target.name, resolveSet);
    }
    if (name === 'default') return null;
    let found: Binding | null = null;
    for (const star of module.stars) {
      if (star === null) return UNKNOWN;
      const resolution = resolve(star, name, resolveSet);
      if (resolution === UNKNOWN || resolution === AMBIGUOUS) return resolution;
      if (resolution === null) continue;
      if (found === null) found = resolution;
      else if (found.file !== resolution.file || found.binding !== resolution.binding) return AMBIGUOUS;
    }
    return found;
  };

  /** Every name a module's `export *` targets offer (their own and, recursively, their stars'). */
  const starNames = (file: string, seen = new Set<string>()): Set<string> => {
    const names = new Set<string>();
    const module = facts(file);
    if (!module || seen.has(file)) return names;
    seen.add(file);
    for (const star of module.stars) {
      if (star === null) continue;
      const starFacts = facts(star);
      for (const name of starFacts?.exports.keys() ?? []) if (name !== 'default') names.add(name);
      for (const name of starNames(star, seen)) names.add(name);
    }
    return names;
  };
  /**
   * The names the modules an `export *` of `file` may reach export by name
   * (its own and, recursively, those of its `export *` targets), and
   * whether one of those modules is unknown (not lexed, or a target that
   * is not a relative file). `resolve(file, name)` can be non-null only if
   * the set has `name` or one is unknown: a quick test before it.
   */
  const offerCache = new Map<string, { names: Set<string>; opaque: boolean }>();
  const offers = (file: string): { names: Set<string>; opaque: boolean } => {
    let answer = offerCache.get(file);
    if (answer === undefined) {
      answer = { names: new Set(), opaque: false };
      const seen = new Set<string>();
      const pending = [file];
      while (pending.length > 0) {
        const next = pending.pop() as string;
        if (seen.has(next)) continue;
        seen.add(next);
        const module = facts(next);
        if (!module) {
          answer.opaque = true;
          continue;
        }
        for (const name of module.exports.keys()) answer.names.add(name);
        for (const star of module.stars) {
          if (star === null) answer.opaque = true;
          else pending.push(star);
        }
      }
      offerCache.set(file, answer);
    }
    return answer;
  };
  /** Whether `resolve(file, name)` is not null (the same answer, without resolving where `offers` rules it out). */
  const offered = (file: string, name: string): boolean => {
    const { names, opaque } = offers(file);
    return (opaque || names.has(name)) && resolve(file, name) !== null;
  };
  return { facts, resolve, starNames, mayHaveStars, offered };
};
type Facts = ReturnType<typeof makeFacts>;

const namedFrom = /^(import|export)\s*\{([^}]*)\}\s*from\s*$/;

const specifierOf = (from: string, target: string): string => {
  const relative = path.relative(path.dirname(from), target).split(path.sep).join('/');
  return relative.startsWith('../') ? relative : `./${relative}`;
};

const usable = (resolution: Resolution, from: string): resolution is Binding =>
  typeof resolution === 'object' && resolution !== null && resolution.binding !== '*' && !specifierOf(from, resolution.file).includes('node_modules');

/**
 * The source with each named import or re-export that goes through
 * `export *` redirected, and, in a barrel, an explicit re-export for each
 * name its `export *` targets offer more than once for the same binding
 * (ECMA-262 exports it; SES counts it ambiguous and drops it: date-fns's
 * longFormatters). Unchanged when there is neither.
 */
export const linkStarExports = (source: string, file: string, facts: Facts = makeFacts()): string => {
  if (!source.includes('import') && !source.includes('export')) return source;
  // Lex only a module that imports from a possible barrel, or that has two `export *` itself.
  const importsFromBarrel = [...source.matchAll(/\bfrom\s*(['"])(\.{1,2}\/[^'"\n]+)\1/g)].some(match => {
    const target = relativeFile(match[2], file);
    return target !== null && facts.mayHaveStars(target);
  });
  if (!importsFromBarrel && (source.match(/\bexport\s*\*/g) ?? []).length < 2) return source;
  const parsed = lexed(source);
  if (!parsed) return source;
  const quote = JSON.stringify;
  const edits: Array<{ start: number; end: number; text: string }> = [];
  for (const entry of parsed[0]) {
    if (entry.t !== 1 || entry.n === undefined) continue;
    const barrel = relativeFile(entry.n, file);
    if (barrel === null) continue;
    const barrelFacts = facts.facts(barrel);
    if (!barrelFacts || barrelFacts.stars.length === 0) continue;
    // The statement up to its specifier's opening quote: `import { a, b as c } from `.
    const clause = namedFrom.exec(source.slice(entry.ss, entry.s - 1));
    if (!clause) continue;
    const [, keyword, list] = clause;
    const entries = entriesOf(list);
    if (!entries) continue;
    const groups = new Map<string, string[]>();
    const kept: string[] = [];
    for (const [name, alias] of entries) {
      const spelled = name === alias ? name : `${name} as ${alias}`;
      const resolution = name === 'default' || barrelFacts.exports.has(name) ? null : facts.resolve(barrel, name);
      if (!usable(resolution, file)) {
        kept.push(spelled);
        continue;
      }
      const target = specifierOf(file, resolution.file);
      const redirected = resolution.exportName === alias ? alias : `${resolution.exportName} as ${alias}`;
      groups.set(target, [...(groups.get(target) ?? []), redirected]);
    }
    if (groups.size === 0) continue;
    const parts = [`import ${quote(entry.n)};`];
    for (const [target, names] of groups) parts.push(`${keyword} { ${names.join(', ')} } from ${quote(target)};`);
    if (kept.length > 0) parts.push(`${keyword} { ${kept.join(', ')} } from ${quote(entry.n)};`);
    const newlines = source.slice(entry.ss, entry.se).split('\n').length - 1;
    edits.push({ start: entry.ss, end: entry.se, text: parts.join(' ') + '\n'.repeat(newlines) });
  }
  let out = '';
  let at = 0;
  for (const edit of edits.sort((a, b) => a.start - b.start)) {
    // A statement's own `;` (outside what the lexer spans) stays: an empty statement.
    out += source.slice(at, edit.start) + edit.text;
    at = edit.end;
  }
  out += source.slice(at);

  // This module as a barrel: names offered twice for one binding get an explicit re-export.
  const own = facts.facts(file);
  if (own && own.stars.length > 1) {
    const additions: string[] = [];
    for (const name of facts.starNames(file)) {
      if (own.exports.has(name)) continue;
      // Names times stars: a barrel of 250 `export *` (date-fns) asks 62,500 times, mostly ruled out by `offered`.
      const offering = own.stars.filter(star => star !== null && facts.offered(star, name)).length;
      if (offering < 2) continue;
      const resolution = facts.resolve(file, name);
      if (!usable(resolution, file)) continue;
      const spelled = resolution.exportName === name ? name : `${resolution.exportName} as ${name}`;
      additions.push(`export { ${spelled} } from ${quote(specifierOf(file, resolution.file))};`);
    }
    if (additions.length > 0) out += `\n${additions.join(' ')}\n`;
  }
  return out;
};


const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * The same parsers, the `mjs` one linking `export *` names as Node does
 * (one fact cache per archive). Modules it looks into are read with
 * `readAhead` (by default, from disk).
 */
export const withNodeStarExports = <T extends ParserTable>(parsers: T, readAhead?: ReadAhead): T => {
  const mjs = parsers.mjs;
  if (!mjs) return parsers;
  const facts = makeFacts(readAhead);
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

const STRING_NAME = '__membraneSnapshotStringName';
/** Where a module may use a string as an import or export name (a quote inside `{...}` or after `* as`). */
const mayUseStringNames = /\b(?:import|export)\s*(?:type\s+)?(?:\*\s*as\s*["']|\{[^}]*["'])/;

interface BabelNode {
  type: string;
  start: number;
  end: number;
  value?: unknown;
  specifiers?: Array<{ type: string; imported?: BabelNode; local?: BabelNode; exported?: BabelNode }>;
  source?: BabelNode | null;
}

/**
 * The source with each string used as an import or export name (ES2022's
 * arbitrary module namespace names: `export { a as 'hello world' }`,
 * `import { 'a b' as c }`, `export * as 'ns' from`) replaced by an
 * identifier of ours, and what each stands for; undefined when there is
 * none, or the source does not parse (its own parser reports that).
 */
const renameStringNames = (source: string, typescript: boolean): { source: string; names: Map<string, string> } | undefined => {
  let program: { body: BabelNode[] };
  try {
    const babel = createRequire(import.meta.url)('@babel/parser') as { parse: (text: string, options: object) => { program: { body: BabelNode[] } } };
    program = babel.parse(source, { sourceType: 'module', errorRecovery: false, plugins: typescript ? ['typescript'] : [] }).program;
  } catch {
    return undefined;
  }
  const strings: BabelNode[] = [];
  for (const statement of program.body) {
    if (statement.type !== 'ImportDeclaration' && statement.type !== 'ExportNamedDeclaration' && statement.type !== 'ExportAllDeclaration') continue;
    for (const specifier of statement.specifiers ?? []) {
      for (const node of [specifier.imported, specifier.exported, statement.source ? specifier.local : undefined]) {
        if (node?.type === 'StringLiteral' && typeof node.value === 'string') strings.push(node);
      }
    }
    const exported = (statement as { exported?: BabelNode | null }).exported;
    if (exported?.type === 'StringLiteral' && typeof exported.value === 'string') strings.push(exported);
  }
  if (strings.length === 0) return undefined;
  const names = new Map<string, string>();
  const placeholders = new Map<string, string>();
  let out = source;
  // `export { 'a b' } from` has one string as both its local and its exported name: one node each, one place.
  const byStart = new Map(strings.map(node => [node.start, node]));
  for (const node of [...byStart.values()].sort((a, b) => b.start - a.start)) {
    const value = node.value as string;
    let placeholder = placeholders.get(value);
    if (placeholder === undefined) {
      placeholder = `${STRING_NAME}${placeholders.size}__`;
      placeholders.set(value, placeholder);
      names.set(placeholder, value);
    }
    out = out.slice(0, node.start) + placeholder + out.slice(node.end);
  }
  return { source: out, names };
};

/** `value` with each of our identifiers put back: as strings, as keys, and quoted in the module's program text. */
const withNamesBack = (value: unknown, names: ReadonlyMap<string, string>): unknown => {
  if (typeof value === 'string') {
    if (names.has(value)) return names.get(value);
    if (!value.includes(STRING_NAME)) return value;
    return value.replace(new RegExp(`(["'])(${STRING_NAME}\\d+__)\\1`, 'g'), (whole, _quote, name: string) => (names.has(name) ? JSON.stringify(names.get(name)) : whole));
  }
  if (Array.isArray(value)) return value.map(item => withNamesBack(item, names));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[names.get(key) ?? key] = withNamesBack(item, names);
    return out;
  }
  return value;
};

type Parser = ParserTable[string];

/** The same parsers, each ES module one (`mjs`, `ts-mjs`) with the `parse` that `wrap` makes of it. */
const withEsmParsers = <T extends ParserTable>(parsers: T, wrap: (base: Parser, language: string) => Parser['parse']): T => {
  const out: ParserTable = { ...parsers };
  for (const language of ['mjs', 'ts-mjs']) {
    const base = parsers[language];
    if (base) out[language] = { ...base, parse: wrap(base, language) };
  }
  return out as T;
};

/**
 * The same parsers, the `mjs` one reading strings used as import and export
 * names (ES2022) as Node does. @endo/module-source 1.x reads such a name as
 * an identifier's, so that it became the export "undefined" (`export { a as
 * 'hello world' }` made `ns['hello world']` undefined, silently; found by
 * the fidelity review, in the async-function package that get-intrinsic
 * loads, and Node 20.19's `export { f as 'module.exports' }`). Each is
 * replaced by an identifier of ours before the module is transformed, and
 * put back, as the string it was, in the record the archive keeps.
 */
export const withStringExportNames = <T extends ParserTable>(parsers: T): T =>
  withEsmParsers(parsers, (base, language) => (...args: never[]) => {
    const [bytes, ...rest] = args as unknown as [Uint8Array, ...unknown[]];
    const source = decoder.decode(bytes);
    if (!mayUseStringNames.test(source) || source.includes(STRING_NAME)) return base.parse(...args);
    const renamed = renameStringNames(source, language === 'ts-mjs');
    if (renamed === undefined) return base.parse(...args);
    const parsed = base.parse(...([encoder.encode(renamed.source), ...rest] as unknown as never[])) as { parser: string; bytes: Uint8Array; record: object };
    if (parsed.parser !== 'pre-mjs-json') {
      throw new Error(`${String(rest[1])}: a module that uses strings as import or export names is archived as pre-mjs-json, not ${parsed.parser}`);
    }
    const record = withNamesBack(JSON.parse(decoder.decode(parsed.bytes)), renamed.names);
    const live = Object.assign(Object.create(Object.getPrototypeOf(parsed.record) as object | null) as object, withNamesBack({ ...parsed.record }, renamed.names));
    return { ...parsed, bytes: encoder.encode(JSON.stringify(record)), record: live };
  });

/**
 * `X=$c͏_X;`: @endo/module-source's assignment of an exported `var` from the variable it declares in its place,
 * right after the declaration or after the comments between it and its export (`var X = class {}; //#endregion`,
 * as rolldown emits: found by the new-user trial, where every class of hono kept the name `$c͏_X`).
 */
const exportedVarAssignment = /(?<![\p{ID_Continue}$\u200c\u200d.])([\p{ID_Start}$_][\p{ID_Continue}$\u200c\u200d]*)=\$c\u034f_\1;/gu;

/**
 * The functor text with the name Node gives each function or class an
 * exported `var` is initialised with. @endo/module-source compiles
 * `export var X = class {}` (and `var X = ...; export { X }`, what bundlers
 * emit, and a default in `export var { x = () => {} } = o`) into
 * `var $c͏_X = class {}; X = $c͏_X;`, so the class was named `$c͏_X`
 * (`X.name`, `new X().constructor.name`, util.inspect, stacks) where Node
 * names it `X` (found by the fidelity hunt: hono's Hono and Context,
 * immer's Immer, intl-messageformat's error classes). Before each such
 * assignment, a function still named `$c͏_X` is renamed `X`, as
 * module-source itself names its hoisted functions
 * (`Object.defineProperty(f, 'name', ...)`); a named class or function, or
 * one with a `name` of its own, keeps it. On the same line: the module's
 * lines do not move. The intrinsic Object is reached as `({}).constructor`:
 * a module may declare an `Object` of its own (typebox exports one, and
 * failed to load with the name `Object` here).
 */
export const nameExportedVars = (program: string): string =>
  program.includes('=$c\u034f_')
    ? program.replace(exportedVarAssignment, (assignment, name: string) => {
        const local = `$c\u034f_${name}`;
        // ({}).constructor, not Object: a module may declare its own `Object` (typebox exports one).
        return `;typeof ${local}==="function"&&({}).constructor.getOwnPropertyDescriptor(${local},"name")?.value===${JSON.stringify(local)}&&({}).constructor.defineProperty(${local},"name",{value:${JSON.stringify(name)}});${assignment}`;
      })
    : program;

interface BabelRange {
  type: string;
  start: number;
  end: number;
}
interface BabelDeclaration extends BabelRange {
  kind: string;
  declarations: Array<BabelRange & { id: BabelRange & { name?: string } }>;
}
type BabelParse = (text: string, options: object) => { comments?: BabelRange[]; program: { body: Array<BabelRange & { expression?: { body?: { callee?: { body?: { body?: BabelRange[] } } } } }> } };

/** @babel/parser as @endo/module-source has it, loaded on first use (a build that archives ES modules has loaded it). */
let babelParse: BabelParse | undefined;
const parseScript = (text: string) => {
  babelParse ??= (createRequire(createRequire(import.meta.url).resolve('@endo/module-source'))('@babel/parser') as { parse: BabelParse }).parse;
  return babelParse(text, { sourceType: 'script', allowReturnOutsideFunction: true });
};

/**
 * A declarator that follows another, as the functor prints a `var` list: on the same line as module-source keeps
 * the module's lines (`, $c͏_b=`, what minifiers emit), or on a line of its own, maybe after a comment.
 */
const laterDeclarator = /,(?:\s|\/\*[\s\S]*?\*\/|\/\/[^\n]*\n)*(?:[\p{ID_Start}$_][\p{ID_Continue}$\u200c\u200d]*=|[{[])/u;

/** The names a declarator's pattern binds (`{ h: $c͏_h, i: $c͏_i = h }`, `[a, ...b]`). */
interface BabelPattern {
  type: string;
  name?: string;
  left?: BabelPattern;
  argument?: BabelPattern;
  value?: BabelPattern;
  properties?: BabelPattern[];
  elements?: Array<BabelPattern | null>;
}
const boundNames = (pattern: BabelPattern | null | undefined): string[] => {
  if (!pattern) return [];
  switch (pattern.type) {
    case 'Identifier':
      return [pattern.name ?? ''];
    case 'AssignmentPattern':
      return boundNames(pattern.left);
    case 'RestElement':
      return boundNames(pattern.argument);
    case 'ObjectProperty':
      return boundNames(pattern.value);
    case 'ObjectPattern':
      return (pattern.properties ?? []).flatMap(boundNames);
    case 'ArrayPattern':
      return (pattern.elements ?? []).flatMap(boundNames);
    default:
      return [];
  }
};

/**
 * The functor text with each top-level `var` statement that declares an
 * exported name among several split into one statement per declarator,
 * each exported one assigned as soon as it is declared. module-source
 * assigns an exported `var` (`x = $c͏_x`) only after the whole statement,
 * so in `export var a = f, b = a` (minifiers join var statements so) `b`
 * read `a` before it was assigned: `undefined`, where Node gives `f`
 * (found while fixing nameExportedVars). The split is made in place: the
 * comma between two declarators becomes `;a=$c͏_a;var `, and no line moves.
 * A destructuring default that reads another name of its own pattern is
 * left as it is. Returns `program` itself when nothing changes.
 */
export const splitExportedVarLists = (program: string): string => {
  if (!program.includes('$c\u034f_') || !laterDeclarator.test(program)) return program;
  let body: BabelRange[] | undefined;
  let comments: BabelRange[] = [];
  try {
    const parsed = parseScript(program);
    body = parsed.program.body[0]?.expression?.body?.callee?.body?.body;
    comments = parsed.comments ?? [];
  } catch {
    return program;
  }
  // The comma between two declarators: the first one outside a comment (`a = 1 /* , */, b = a`).
  const commaBetween = (from: number, to: number): number => {
    for (let at = program.indexOf(',', from); at >= 0 && at < to; at = program.indexOf(',', at + 1)) {
      if (!comments.some(c => c.start <= at && at < c.end)) return at;
    }
    return -1;
  };
  const edits: Array<{ at: number; end: number; text: string }> = [];
  for (const statement of body ?? []) {
    if (statement.type !== 'VariableDeclaration') continue;
    const { declarations, kind } = statement as BabelDeclaration;
    if (declarations.length < 2) continue;
    const exported = declarations.map(d => boundNames(d.id).filter(name => name.startsWith('$c\u034f_')));
    if (!exported.some(names => names.length > 0)) continue;
    // Only where module-source assigns each exported name after the statement (`x=$c͏_x;`): a declaration without
    // an initialiser (`export var A, B;`, esbuild's namespaces) initialises its binding with `$h͏_live.A($c͏_A)`,
    // which an assignment before it would meet uninitialised, and no declarator there reads another.
    const after = program.slice(statement.end, statement.end + 64 * exported.flat().length + 64);
    if (!exported.flat().every(local => after.includes(`${local.slice('$c\u034f_'.length)}=${local};`))) continue;
    for (let i = 0; i + 1 < declarations.length; i += 1) {
      const comma = commaBetween(declarations[i].end, declarations[i + 1].start);
      if (comma < 0) return program;
      const assigned = exported[i].map(local => `${local.slice('$c\u034f_'.length)}=${local};`).join('');
      edits.push({ at: comma, end: comma + 1, text: `;${assigned}${kind} ` });
    }
  }
  let out = program;
  for (const { at, end, text } of edits.reverse()) out = out.slice(0, at) + text + out.slice(end);
  return out;
};

/**
 * The same parsers, the ES module ones (`mjs`, `ts-mjs`) giving records
 * whose functor names the functions of exported `var`s as Node does
 * (nameExportedVars) and declares them as Node does
 * (splitExportedVarLists), in the record compartment-mapper links and in
 * the bytes the archive keeps. Throws what the parser throws.
 */
export const withExportedVarNames = <T extends ParserTable>(parsers: T): T =>
  withEsmParsers(parsers, base => (...args: never[]) => {
    const parsed = base.parse(...args) as { parser: string; bytes: Uint8Array; record: { __syncModuleProgram__?: unknown } };
    const program = parsed.record?.__syncModuleProgram__;
    if (parsed.parser !== 'pre-mjs-json' || typeof program !== 'string') return parsed;
    const named = nameExportedVars(splitExportedVarLists(program));
    if (named === program) return parsed;
    const record = { ...(JSON.parse(decoder.decode(parsed.bytes)) as object), __syncModuleProgram__: named };
    const live = Object.assign(Object.create(Object.getPrototypeOf(parsed.record) as object | null) as object, { ...parsed.record, __syncModuleProgram__: named });
    return { ...parsed, bytes: encoder.encode(JSON.stringify(record)), record: live };
  });
