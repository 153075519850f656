/**
 * CommonJS at archive time: the named exports of a module as Node finds
 * them, and the modules its computed requires may reach.
 *
 * When ESM imports CommonJS, Node offers as named exports exactly the names
 * that `cjs-module-lexer` detects in the module's source (plus `default`,
 * which is `module.exports`), and re-exports those of a module assigned
 * with `module.exports = require('./other')`; a source the lexer cannot
 * read has no named exports (Node's lib/internal/modules/esm/translators.js,
 * `cjsPreparseModuleExports`). compartment-mapper finds its names with
 * `@endo/cjs-module-analyzer`, which sees more (every key of an object
 * literal assigned to `module.exports`, say): a service could then import a
 * name that is a SyntaxError in Node, and `Object.keys(namespace)` differed.
 *
 * At archive time, every module parsed to `pre-cjs-json` (JavaScript and
 * TypeScript alike) gets the lexer's `exports` and `reexports` in its
 * record. The lexer is Node's own (nodejs/cjs-module-lexer, the 1.x line
 * that Node 20 bundles), in its pure-JavaScript build; a restore does not
 * load it. cjs.ts then publishes only these names.
 *
 * A CommonJS file's hashbang line (`#!/usr/bin/env node`) becomes a line
 * comment: Node's loader skips it, and inside the functor compartment-mapper
 * wraps the source in, it would be a SyntaxError.
 */
import fs from 'node:fs';
import path from 'node:path';
import url from 'node:url';
import { createRequire } from 'node:module';
import { MODULE_EXPORTS, NODE_FUNCTOR_HEAD, REQUIRE_LINK, requireCandidates } from './cjs.js';
import { commonJsOfTypeScript } from './typescript.js';
import { readDirEntries } from './node-resolution.js';
import { afterParse, type ParserTable } from './parser-table.js';

let addsModuleExports: boolean | undefined;
/**
 * Does this Node give a CommonJS module's namespace a name 'module.exports' (its module.exports, as `default`)?
 * Node 23 and later do, whatever the module's source (lib/internal/modules/esm/translators.js,
 * createCJSModuleWrap: `wrapperNames` gets 'module.exports', and `this.setExport('module.exports', exports)`
 * once the module has run, also where the lexer found a name so); Node 20 and 22 do not (22 only for an addon,
 * which a service cannot load). Asked once of a sample the host makes: cjs-namespace-probe.mts imports a
 * CommonJS module and lists its namespace's names, required here (require(esm)). A Node that cannot require an
 * ES module (20.15 to 20.18, 22 before 22.12, without --experimental-require-module) has no such name either.
 *
 * Decided when the archive is made and recorded in each record (`moduleExports`), as the lexer's names are: the
 * namespace is part of what the build recorded (a service's namespace crosses the membrane when it loads), so a
 * snapshot restored on another line links its modules as they were built.
 */
export const hostAddsModuleExports = (): boolean => {
  if (addsModuleExports === undefined) {
    addsModuleExports = false;
    if ((process.features as { require_module?: boolean }).require_module) {
      const probe = createRequire(import.meta.url)('./cjs-namespace-probe.mjs') as { names: string[]; sameAsDefault: boolean };
      addsModuleExports = probe.names.includes(MODULE_EXPORTS) && probe.sameAsDefault;
    }
  }
  return addsModuleExports;
};

type Lexer = { parse(source: string, name?: string): { exports: string[]; reexports: string[] } };
let lexer: Lexer | undefined;
const lex = (source: string): { exports: string[]; reexports: string[] } => {
  lexer ??= createRequire(import.meta.url)('cjs-module-lexer') as Lexer;
  try {
    return lexer.parse(source);
  } catch {
    return { exports: [], reexports: [] };
  }
};

/** Whether the package.json nearest above `file` says `"type": "module"` (as Node reads it; an unreadable one: no). */
const isInModulePackage = (file: string): boolean => {
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    try {
      return (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { type?: unknown }).type === 'module';
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return false;
    }
    if (path.dirname(dir) === dir) return false;
  }
};

/**
 * `specifier` resolved from `from` as Node's `require` resolves it, then,
 * for a relative one Node does not find, as tsx resolves TypeScript: the
 * `.ts`/`.cts` source of a `.js`/`.cjs` name, or the name with `.ts`, `.cts`
 * or `/index.ts` added. Undefined when neither finds a file.
 */
const resolveRequire = (specifier: string, from: string): string | undefined => {
  try {
    return createRequire(from).resolve(specifier);
  } catch {
    if (!specifier.startsWith('./') && !specifier.startsWith('../')) return undefined;
  }
  const base = path.resolve(path.dirname(from), specifier);
  const candidates = /\.c?js$/.test(base) ? [base.replace(/js$/, 'ts')] : [`${base}.ts`, `${base}.cts`, path.join(base, 'index.ts')];
  return candidates.find(candidate => fs.statSync(candidate, { throwIfNoEntry: false })?.isFile());
};

/**
 * The names a re-exported module adds (Node's `cjsPreparseModuleExports`):
 * its lexer names and, recursively, those of its own re-exports; only
 * CommonJS files (`.js`, `.cjs` or an unknown extension) count, and a
 * specifier Node cannot resolve from `from` (or a builtin) adds nothing.
 * A TypeScript file that runs as CommonJS (`.cts`, or `.ts` outside a
 * `"type": "module"` package), which tsx resolves and compiles, counts with
 * the names of its compiled JavaScript (typescript.ts).
 */
const reexportedNames = (specifier: string, from: string, seen: Set<string>, into: Set<string>): void => {
  const file = resolveRequire(specifier, from);
  if (file === undefined || !path.isAbsolute(file) || seen.has(file)) return;
  const ext = path.extname(file);
  if (ext === '.mjs' || ext === '.json' || ext === '.node' || ext === '.mts') return;
  const typescript = ext === '.cts' || ext === '.ts';
  if (ext === '.ts' && isInModulePackage(file)) return;
  seen.add(file);
  let source: string;
  try {
    source = fs.readFileSync(file, 'utf8');
    if (typescript) source = commonJsOfTypeScript(source, file);
  } catch {
    return;
  }
  const found = lex(source);
  for (const name of found.exports) into.add(name);
  for (const next of found.reexports) reexportedNames(next, file, seen, into);
};

/**
 * Computed requires (`require('./prism-' + lang)`, `require(pathToLanguage)`,
 * and calls of a copy of `require`: `aliasedRequire('./locale/' + name)`):
 * an archive holds only the modules its import graph reaches, so the files
 * such a require may name are added to the module's imports, as bundlers
 * do with a "context" (webpack's require.context): with a literal relative
 * prefix (`'./locale/' + name`, `` `./locale/${name}` ``), the files of
 * that directory (and below, when the prefix ends with `/`) whose names
 * start with the rest of it (`.js`, `.cjs`, and `.json` when the name has
 * a file prefix or the call says `.json`); otherwise the code
 * files of the module's own directory (`.js`, `.cjs`: a JSON file beside
 * it, such as credentials, is not taken along); never outside the module's
 * package, symbolic links resolved, nor a linked file. At most
 * MAX_CONTEXT_FILES per module. They are linked, not run: each runs when
 * it is first required, as in Node; one that does not load fails only
 * then (compartment-mapper defers CommonJS import errors).
 */
const MAX_CONTEXT_FILES = 2000;
const CONTEXT_EXTENSIONS = new Set(['.js', '.cjs', '.json']);
/** Without a literal prefix, only code: data files beside a module (credentials.json) are not taken along. */
const CODE_EXTENSIONS = new Set(['.js', '.cjs']);
const literalRequire = /^\s*(['"])[^'"\\\n]*\1\s*\)/;
const templateRequire = /^\s*`[^`$\\]*`\s*\)/;
const computedPrefix = /^\s*(?:(['"])((?:\.\.?\/)[^'"\\\n]*)\1\s*\+|`((?:\.\.?\/)[^`$\\]*)\$\{)/;

const contextFiles = (dir: string, filePrefix: string, recursive: boolean, into: Set<string>, extensions: ReadonlySet<string>): void => {
  for (const entry of readDirEntries(dir)) {
    if (into.size >= MAX_CONTEXT_FILES) return;
    if (!entry.name.startsWith(filePrefix)) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (recursive && entry.name !== 'node_modules') contextFiles(full, '', true, into, extensions);
    } else if (entry.isFile() && extensions.has(path.extname(entry.name))) into.add(full);
  }
};

/** `aliasedRequire = require;`, `var req = require,`: names `require` is copied to (moment loads its locales so). */
const requireAlias = /(?<![\w$.])([A-Za-z_$][\w$]*)\s*=\s*require\s*(?=[;,)}\n]|$)/gm;

/** Calls of `require`, and of the names it is copied to. */
const requireCalls = (source: string): RegExp => {
  const names = new Set(['require']);
  for (const match of source.matchAll(requireAlias)) names.add(match[1]);
  const alternatives = [...names].map(name => name.replace(/\$/g, '\\$')).join('|');
  return new RegExp(`(?<![\\w$.])(?:${alternatives})\\s*\\(`, 'g');
};

/** Relative specifiers of the files the computed requires of `source` (at `file`) may reach. */
const computedRequireTargets = (source: string, file: string, packageRoot: string): string[] => {
  const files = new Set<string>();
  const here = path.dirname(file);
  // Never outside the module's own package (a prefix such as '../../../etc/' reaches nothing), symbolic links resolved.
  const real = (dir: string): string | undefined => {
    try {
      return fs.realpathSync(dir);
    } catch {
      return undefined;
    }
  };
  const root = real(packageRoot);
  const inside = (dir: string): boolean => {
    const resolved = real(dir);
    if (root === undefined || resolved === undefined) return false;
    const relative = path.relative(root, resolved);
    return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
  };
  for (const match of source.matchAll(requireCalls(source))) {
    const rest = source.slice(match.index + match[0].length, match.index + match[0].length + 300);
    if (literalRequire.test(rest) || templateRequire.test(rest)) continue;
    const prefix = computedPrefix.exec(rest);
    if (prefix) {
      const literal = prefix[2] ?? prefix[3];
      const slash = literal.lastIndexOf('/');
      const dir = path.resolve(here, literal.slice(0, slash + 1));
      const filePrefix = literal.slice(slash + 1);
      // Data files only where the name says so: a file prefix ('./data-' + x) or '.json' in the call.
      const call = rest.slice(0, rest.indexOf(')') + 1 || 200);
      const extensions = filePrefix !== '' || call.includes('.json') ? CONTEXT_EXTENSIONS : CODE_EXTENSIONS;
      if (inside(dir)) contextFiles(dir, filePrefix, literal.endsWith('/'), files, extensions);
    } else if (inside(here)) contextFiles(here, '', false, files, CODE_EXTENSIONS);
  }
  files.delete(file);
  return [...files].sort().map(target => {
    const relative = path.relative(here, target).split(path.sep).join('/');
    return relative.startsWith('../') ? relative : `./${relative}`;
  });
};

/** `require.resolve('./x')` with a literal name and no options: the name. */
const literalResolve = /(?<![\w$.])require\.resolve\s*\(\s*(['"])([^'"\\\n]+)\1\s*\)/g;

/**
 * What Node's require.resolve answers, from `file` in the package at
 * `root`, for each literal name of `source` (`require.resolve('./x')`):
 * the package-relative file (`./lib/x.js`) for a relative name Node finds
 * inside the package, null for a name Node finds nowhere (it throws
 * MODULE_NOT_FOUND then). A package name Node finds, or a file outside the
 * package, is left out: cjs.ts answers those as before.
 */
const literalResolutions = (source: string, file: string, root: string): Record<string, string | null> => {
  const resolves: Record<string, string | null> = {};
  const nodeRequire = createRequire(file);
  for (const [, , name] of source.matchAll(literalResolve)) {
    if (Object.prototype.hasOwnProperty.call(resolves, name)) continue;
    let found: string;
    try {
      found = nodeRequire.resolve(name);
    } catch {
      resolves[name] = null;
      continue;
    }
    if (!name.startsWith('./') && !name.startsWith('../')) continue;
    const relative = path.relative(root, found).split(path.sep).join('/');
    if (path.isAbsolute(found) && !relative.startsWith('../') && !path.isAbsolute(relative)) resolves[name] = `./${relative}`;
  }
  return resolves;
};

/**
 * What Node's require throws for a specifier it refuses as it resolves it,
 * as cjs.ts throws it again: its class's name (`Error`, `TypeError`), its
 * code and its message, which names the build-time files (as `__filename`
 * does), and the `path` Node gives some (the package.json).
 */
export interface NodeRefusal {
  name: string;
  code: string;
  message: string;
  path?: string;
}

/**
 * Node's error for `specifier` required from `file`, when Node's resolution
 * refuses it for a reason other than a module it looks for and does not
 * find: a subpath a package's "exports" does not offer or excludes with null
 * (ERR_PACKAGE_PATH_NOT_EXPORTED), a `#name` its "imports" does not define
 * (ERR_PACKAGE_IMPORT_NOT_DEFINED), an invalid target
 * (ERR_INVALID_PACKAGE_TARGET), or a target the exports name that is not
 * there (MODULE_NOT_FOUND without a require stack). Undefined when Node
 * resolves it, or fails as cjs.ts's own MODULE_NOT_FOUND does (with the
 * require stack, which depends on who requires the module at run time).
 */
const nodeRefusal = (nodeRequire: NodeJS.Require, specifier: string): NodeRefusal | undefined => {
  try {
    nodeRequire.resolve(specifier);
    return undefined;
  } catch (error) {
    const { name, code, message, path: file, requireStack } = error as { name?: unknown; code?: unknown; message?: unknown; path?: unknown; requireStack?: unknown };
    if (typeof code !== 'string' || typeof message !== 'string' || typeof name !== 'string') return undefined;
    if (code === 'MODULE_NOT_FOUND' && requireStack !== undefined) return undefined;
    return { name, code, message, ...(typeof file === 'string' ? { path: file } : {}) };
  }
};

/** Is this file an ES module to Node: `.mjs`, or `.js` under a package.json whose type is "module"? */
const isEsmFile = (file: string): boolean => {
  if (!path.isAbsolute(file)) return false; // a builtin
  if (file.endsWith('.mjs')) return true;
  return file.endsWith('.js') && isInModulePackage(file);
};

const decoder = new TextDecoder();
const encoder = new TextEncoder();
/** How compartment-mapper's archive parser wraps a CommonJS source (parse-archive-cjs.js). */
const functorHead = "(function (require, exports, module, __filename, __dirname) { 'use strict'; ";
const functorTail = ' //*/\n})\n';


interface PreCjsResult {
  parser: string;
  bytes: Uint8Array;
  record: { imports: readonly string[]; exports: readonly string[]; reexports: readonly string[]; [key: string]: unknown };
}

const withLexerExports = (result: PreCjsResult, location: unknown, packageLocation: unknown, requireLinks?: ReadonlyMap<string, ReadonlySet<string>>): PreCjsResult => {
  if (result?.parser !== 'pre-cjs-json') return result;
  const pre = JSON.parse(decoder.decode(result.bytes)) as { source: string; imports: string[]; exports: string[]; reexports: string[] };
  if (!pre.source.startsWith(functorHead) || !pre.source.endsWith(functorTail)) return result;
  const found = lex(pre.source.slice(functorHead.length, -functorTail.length));
  const source = pre.source.slice(functorHead.length, -functorTail.length);
  // A hashbang line (`#!/usr/bin/env node`, a bin file's first) is allowed only at the very start of a script or
  // module, so inside the functor it is a SyntaxError; Node's CommonJS loader skips it. A comment in its place keeps
  // every line, and so the line numbers of stacks, where they are in the file.
  pre.source = `${NODE_FUNCTOR_HEAD}${source.startsWith('#!') ? `//${source.slice(2)}` : source}${functorTail}`;
  const names = new Set(found.exports);
  let imports = pre.imports;
  // Each relative require's file, as Node resolves it ('./lib/counter' -> './lib/counter.js', package-relative):
  // require.resolve names it, and require.cache keeps the module under it (cjs.ts).
  const files: Record<string, string> = {};
  const esm: string[] = [];
  const targets: Record<string, string> = {};
  let resolves: Record<string, string | null> = {};
  // The literal names (required or resolved) Node's resolution refuses: cjs.ts throws Node's error for them.
  const refusals: Record<string, NodeRefusal> = {};
  if (typeof location === 'string' && location.startsWith('file:')) {
    const file = url.fileURLToPath(location);
    for (const specifier of found.reexports) reexportedNames(specifier, file, new Set([file]), names);
    const root = typeof packageLocation === 'string' && packageLocation.startsWith('file:') ? url.fileURLToPath(packageLocation) : path.dirname(file);
    const extra = computedRequireTargets(source, file, root).filter(specifier => !imports.includes(specifier));
    if (extra.length > 0) imports = [...imports, ...extra];
    resolves = literalResolutions(source, file, root);
    const nodeRequire = createRequire(file);
    for (const specifier of new Set([...imports, ...Object.keys(resolves)])) {
      if (specifier.startsWith('./') || specifier.startsWith('../')) continue;
      const refusal = nodeRefusal(nodeRequire, specifier);
      if (refusal !== undefined) refusals[specifier] = refusal;
    }
    for (const specifier of imports) {
      // A require Node resolves to an ES module (Node 20.19's require(esm)) returns its namespace, not its default.
      try {
        if (isEsmFile(nodeRequire.resolve(specifier))) esm.push(specifier);
      } catch {
        // not found, or a builtin: not an ES module
      }
      if (!specifier.startsWith('./') && !specifier.startsWith('../')) continue;
      let resolved: string;
      try {
        resolved = nodeRequire.resolve(specifier);
      } catch {
        continue; // Node would not find it either: require fails then.
      }
      const relative = path.relative(root, resolved).split(path.sep).join('/');
      if (relative.startsWith('../') || path.isAbsolute(relative)) continue;
      files[specifier] = `./${relative}`;
      // A file Node finds where compartment-mapper does not look (a directory's package.json `main`, or index.js
      // when that main is missing): imported by its own name, and required through it (cjs.ts).
      const here = path.dirname(file);
      if (!requireCandidates(specifier).some(candidate => path.resolve(here, candidate) === resolved)) {
        const target = path.relative(here, resolved).split(path.sep).join('/');
        targets[specifier] = target.startsWith('../') ? target : `./${target}`;
      }
    }
    for (const target of Object.values(targets)) if (!imports.includes(target)) imports = [...imports, target];
  }
  // A dual package's require target, where its compartment links one (node-resolution.ts): the module imports it.
  const links = typeof packageLocation === 'string' ? requireLinks?.get(packageLocation.endsWith('/') ? packageLocation : `${packageLocation}/`) : undefined;
  if (links !== undefined) {
    const linked = (specifier: string): string => (links.has(specifier) ? `${specifier}${REQUIRE_LINK}` : specifier);
    imports = imports.map(linked);
    esm.splice(0, esm.length, ...esm.map(linked));
  }
  names.add('default');
  // On Node 23 and later, 'module.exports' too (hostAddsModuleExports; cjs.ts gives it module.exports).
  const moduleExports = hostAddsModuleExports();
  if (moduleExports) names.add(MODULE_EXPORTS);
  // Re-exported names are plain named exports here: their values are read from module.exports, as Node reads them.
  // Sorted: a module namespace lists its names in code-unit order (ECMA-262, [[OwnPropertyKeys]]).
  const exports = [...names].sort();
  return {
    ...result,
    // `preparse`: the re-exports as written, which Node's ESM loader preparses (cjs.ts: their module.parent).
    // `resolves`: what Node's require.resolve answers for the literal names the source gives it.
    // `refusals`: Node's errors for the literal names its resolution refuses (nodeRefusal).
    bytes: encoder.encode(
      JSON.stringify({
        ...pre,
        imports,
        exports,
        reexports: [],
        files,
        preparse: found.reexports,
        ...(esm.length > 0 ? { esm } : {}),
        ...(Object.keys(resolves).length > 0 ? { resolves } : {}),
        ...(Object.keys(targets).length > 0 ? { targets } : {}),
        ...(Object.keys(refusals).length > 0 ? { refusals } : {}),
        ...(moduleExports ? { moduleExports } : {}),
      }),
    ),
    record: Object.freeze({ ...result.record, imports: Object.freeze(imports), exports: Object.freeze(exports), reexports: Object.freeze([]) }),
  };
};


/**
 * The same parsers, each CommonJS result carrying Node's named exports, and
 * importing the `require` links of its package (`requireLinks`, by package
 * location; filled by node-resolution.ts's applyNodeResolution before any
 * module is parsed).
 */
export const withNodeCjsExports = <T extends ParserTable>(parsers: T, requireLinks?: ReadonlyMap<string, ReadonlySet<string>>): T =>
  afterParse(parsers, (result, [, , location, packageLocation]) => withLexerExports(result as PreCjsResult, location, packageLocation, requireLinks));
