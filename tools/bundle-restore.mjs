/**
 * Bundle what `snapshot restore` loads (dist/lib/restore-entry.js: lockdown,
 * restore, the live host, and the ses, compartment-mapper and msgpackr code
 * they use) into one file, dist/lib/restore-entry.bundle.cjs. Run after tsc
 * (`npm run build`). Node's ESM loader then has one file to read instead of
 * about 180 modules to resolve, read and compile, which was most of a small
 * restore's time. The bundle is a function body (CommonJS shape, strict)
 * that lib/restore-bundle.cts compiles with V8's code cache; it has
 * require() (from its own location) but no import(). The CLI uses it
 * only while it is newer than restore-entry.js (tsc rewrites every module,
 * so a later tsc makes it stale), and never for NATS (see lib/cli.cts).
 *
 * The bundle evaluates the same modules in the same order as the modules
 * themselves (esbuild keeps ESM evaluation order; dynamic imports become
 * lazily initialised wrappers), so lockdown still runs before anything
 * that hardens. What a restore never runs is left out:
 * - archiving (build time only): our archive modules are replaced by a
 *   module that throws, and compartment-mapper's archive writer and parsers
 *   stay external;
 * - the NATS client (an optional dependency): our NATS modules are replaced
 *   by a module that throws;
 * - msgpackr's native accelerator: finding its prebuilt binary loads
 *   detect-libc, which loads child_process and reads the ELF header of the
 *   node binary; on the logs a restore reads that costs more than the
 *   accelerator saves (msgpackr then decodes in JS, as it does when the
 *   binary is absent);
 * - @hono/node-server stays external (required when a service is served
 *   over HTTP).
 * The run fails if the bundle would statically import anything but a Node
 * builtin, so a new static import cannot slip build-time code (or a missing
 * optional package) into every restore.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isBuiltin } from 'node:module';
import { build } from 'esbuild';
import { parse } from 'acorn';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const entry = path.join(dist, 'lib', 'restore-entry.js');
const outfile = path.join(dist, 'lib', 'restore-entry.bundle.cjs');

/** Modules of ours a restore never evaluates, by path under dist/. */
const leftOut = new Map([
  ['compartments/typescript.js', 'archiving'],
  ['compartments/evasion.js', 'archiving'],
  ['compartments/zip.js', 'archiving'],
  ['lib/transport-nats.js', 'NATS'],
  ['lib/push.js', 'NATS'],
]);
/** Packages a restore does without (see above); msgpackr requires its accelerator inside a try. */
const leftOutPackages = new Map([['msgpackr-extract', 'msgpackr decodes in JS']]);

/** Packages imported only dynamically, on paths a restore rarely or never takes. */
const external = [
  '@endo/compartment-mapper/archive-lite.js',
  '@endo/compartment-mapper/archive-parsers.js',
  '@endo/compartment-mapper/node-modules.js',
  '@endo/compartment-mapper/node-powers.js',
  '@endo/evasive-transform',
  '@hono/node-server',
  '@nats-io/*',
];

const leaveOut = {
  name: 'leave-out',
  setup(b) {
    b.onResolve({ filter: /^msgpackr-extract$/ }, args => ({ path: args.path, namespace: 'left-out', pluginData: leftOutPackages.get(args.path) }));
    b.onResolve({ filter: /^\.\.?\// }, args => {
      const rel = path.relative(dist, path.resolve(args.resolveDir, args.path)).split(path.sep).join('/');
      const why = leftOut.get(rel);
      return why ? { path: rel, namespace: 'left-out', pluginData: why } : undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'left-out' }, args => ({
      contents: `throw new Error(${JSON.stringify(`membrane-snapshot: ${args.path} (${args.pluginData}) is not part of the restore bundle; use the modules (dist/lib/index.js)`)});`,
      loader: 'js',
    }));
  },
};

/**
 * @endo/zip's CRC-32 is pako's, in JavaScript (about 90 MB/s here): compartment-mapper's parseArchive checks
 * every file of an archive with it (40 ms of restoring a service of 800 modules, 4 MB). In the bundle it is
 * Node's zlib.crc32 (Node >= 20.15, which the library requires), the same function of the same arguments:
 * CRC-32 of bytes[index, index + length), continuing from `crc`, unsigned. The check fails if the module no
 * longer exports what it replaces, or if the bundle no longer has it.
 */
let crcReplaced = false;
const nativeCrc = {
  name: 'native-crc32',
  setup(b) {
    b.onLoad({ filter: /[\\/]@endo[\\/]zip[\\/]src[\\/]crc32\.js$/ }, args => {
      const original = fs.readFileSync(args.path, 'utf8');
      if (!/export function crc32\(bytes, length = bytes\.length, index = 0, crc = 0\)/.test(original)) throw new Error(`${args.path}: @endo/zip's crc32 is not the one tools/bundle-restore.mjs replaces: check its arguments`);
      crcReplaced = true;
      return {
        contents:
          "import zlib from 'node:zlib';\n" +
          'export function crc32(bytes, length = bytes.length, index = 0, crc = 0) {\n' +
          // zlib.crc32 of no bytes answers 0 whatever it continues from; pako's answers `crc`.
          '  if (length <= 0) return crc >>> 0;\n' +
          '  return zlib.crc32(index === 0 && length === bytes.length ? bytes : bytes.subarray(index, index + length), crc >>> 0);\n' +
          '}\n',
        loader: 'js',
      };
    });
  },
};

/**
 * compartment-mapper checks an archive's compartment map (parseArchive, assertFileCompartmentMap) by
 * trying each kind a module may be (file, compartment, error) and collecting the failures; every
 * module of an archive fails at least one kind, and each failure is an SES assertion error, whose
 * stack is captured and formatted (SES reads it as it sanitizes the error) and its message quoted:
 * about 0.1 ms per module, 80 ms of restoring a service of 800 modules. In the bundle the check
 * stops at the first kind the module is: the checks are pure, a map they accept is accepted, and one
 * they refuse gets the same error (every kind is then tried, as before). The run fails if the module
 * no longer has the four checks this plugin expects.
 */
let kindsShortened = false;
const firstMatchingKind = {
  name: 'first-matching-kind',
  setup(b) {
    b.onLoad({ filter: /[\\/]@endo[\\/]compartment-mapper[\\/]src[\\/]compartment-map\.js$/ }, args => {
      const original = fs.readFileSync(args.path, 'utf8');
      const check = /(\btry \{\s*assert(?:Compartment|File|Exit|Error)ModuleConfiguration\(allegedModule, keypath, url\);)(\s*\} catch \(error\) \{\s*errors\.push\()/g;
      const found = original.match(check)?.length ?? 0;
      if (found !== 4) throw new Error(`${args.path}: assertModuleConfiguration is not the one tools/bundle-restore.mjs shortens (${found} of its 4 kind checks found)`);
      kindsShortened = true;
      return { contents: original.replace(check, '$1 return;$2'), loader: 'js' };
    });
  },
};

/**
 * SES evaluates each module of a service through an evaluator made for it (ses/src/make-evaluate.js),
 * which binds the global object's constants (its non-writable, non-configurable data properties:
 * fixed-globals.ts makes 41 of a service's 111 globals so) as `const`s; ses/src/scope-constants.js
 * finds them by testing every name of the global object, once per module: 0.1 ms a module, 80 ms of
 * restoring a service of 800 modules. In the bundle the global object's names are kept with the
 * list, which is made again when they change; while they are the same, only the names that were not
 * constants are tested again (a constant stays one with the same value: ECMA-262's invariants of a
 * non-configurable, non-writable property of an ordinary object). The evaluators bind what SES's
 * would: a first version, which listed again only when the number of properties changed, missed a
 * constant that appeared without it changing (a global redefined, or one deleted and another added),
 * which was then read through the scopes, where assigning it throws V8's "Cannot assign to read only
 * property" instead of "Assignment to constant variable": a restore diverged from its build, which
 * runs SES's own module (found by the adversarial review). The run fails if the module no longer has
 * the function this plugin replaces.
 */
let constantsListedOnce = false;
const globalConstantsOnce = {
  name: 'global-constants-once',
  setup(b) {
    b.onLoad({ filter: /[\\/]ses[\\/]src[\\/]scope-constants\.js$/ }, args => {
      const original = fs.readFileSync(args.path, 'utf8');
      const names = '  const globalObjectNames = getOwnPropertyNames(globalObject);\n';
      const test = `      !arrayIncludes(moduleLexicalNames, name) &&
      isValidIdentifierName(name) &&
      isImmutableDataProperty(globalObject, name),`;
      const imports = '  setHas,\n} from \'./commons.js\';';
      if (![names, test, imports].every(text => original.split(text).length === 2)) throw new Error(`${args.path}: getScopeConstants is not the one tools/bundle-restore.mjs lists once: check the global-constants-once plugin`);
      constantsListedOnce = true;
      const contents = original
        .replace(imports, '  setHas,\n  WeakMap,\n  weakmapGet,\n  weakmapSet,\n} from \'./commons.js\';')
        .replace(
          names,
          '  const globalObjectNames = globalObjectConstantsOf(globalObject);\n',
        )
        .replace(test, '      !arrayIncludes(moduleLexicalNames, name),')
        .replace(
          'export const getScopeConstants =',
          `/**
 * Per global object: its own names when last listed, which of them were constants, and which others could become
 * constants (membrane-snapshot's bundle). The list is the one SES would make while the names are the same ones in the
 * same order (none added or deleted: a constant stays one) and none of the others has become a constant since.
 */
const listedConstants = new WeakMap();
const globalObjectConstantsOf = globalObject => {
  const names = getOwnPropertyNames(globalObject);
  const listed = weakmapGet(listedConstants, globalObject);
  if (listed !== undefined && listed.names.length === names.length) {
    let same = true;
    for (let i = 0; same && i < names.length; i += 1) same = listed.names[i] === names[i];
    for (let i = 0; same && i < listed.others.length; i += 1) same = !isImmutableDataProperty(globalObject, listed.others[i]);
    if (same) return listed.constants;
  }
  const candidates = arrayFilter(names, name => isValidIdentifierName(name));
  const constants = arrayFilter(candidates, name => isImmutableDataProperty(globalObject, name));
  const others = arrayFilter(candidates, name => !arrayIncludes(constants, name));
  weakmapSet(listedConstants, globalObject, { names, constants, others });
  return constants;
};

export const getScopeConstants =`,
        );
      return { contents, loader: 'js' };
    });
  },
};

if (!fs.existsSync(entry)) throw new Error(`${entry} is missing: run tsc first`);
// Code caches of an earlier bundle (lib/restore-bundle.cts names them after a hash of the bundle).
for (const name of fs.readdirSync(path.dirname(outfile))) if (name.startsWith(`${path.basename(outfile)}.`) && name.endsWith('.cache')) fs.rmSync(path.join(path.dirname(outfile), name), { force: true });
const result = await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  external,
  plugins: [leaveOut, nativeCrc, firstMatchingKind, globalConstantsOnce],
  // The modules read their own location (version.ts, docs.ts, ...): the bundle's, which sits beside them in dist/lib.
  define: { 'import.meta.url': '__bundleUrl' },
  // Node 20 gives a vm.Script no working import(): the bundle's dynamic imports of externals
  // (@hono/node-server when a service serves HTTP) become require() calls, made when reached.
  supported: { 'dynamic-import': false },
  banner: { js: "const __bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  legalComments: 'none',
  // Keep every function's and class's own name: SES's Error, RegExp, Date... are services' intrinsics,
  // and a renamed one (Error4) changed what services computed after a CLI restore.
  keepNames: true,
  logLevel: 'warning',
  // The left-out modules (leaveOut) export nothing, so a name imported from one is undefined in the bundle, as
  // intended (a restore never reaches the code that reads it); esbuild's warning for each read as a bug to users.
  logOverride: { 'import-is-undefined': 'silent' },
  metafile: true,
});

if (!crcReplaced) {
  fs.rmSync(outfile, { force: true });
  throw new Error("the restore bundle no longer holds @endo/zip's src/crc32.js: check the native-crc32 plugin of tools/bundle-restore.mjs");
}
if (!constantsListedOnce) {
  fs.rmSync(outfile, { force: true });
  throw new Error("the restore bundle no longer holds SES's src/scope-constants.js: check the global-constants-once plugin of tools/bundle-restore.mjs");
}
if (!kindsShortened) {
  fs.rmSync(outfile, { force: true });
  throw new Error("the restore bundle no longer holds compartment-mapper's src/compartment-map.js: check the first-matching-kind plugin of tools/bundle-restore.mjs");
}

const [output] = Object.values(result.metafile.outputs);
// The externals are loaded where they are used (import() became require()): a static import of
// anything but a builtin would load at start.
const statics = output.imports.filter(i => !isBuiltin(i.path) && !(i.kind === 'require-call' && external.some(e => i.path === e || (e.endsWith('/*') && i.path.startsWith(e.slice(0, -1))))));
if (statics.length > 0) {
  fs.rmSync(outfile, { force: true });
  throw new Error(`the restore bundle would import ${statics.map(i => i.path).join(', ')} at load time: import them dynamically where they are used, or leave their module out`);
}

/**
 * Two of esbuild's helpers cost a restore about 3 ms (bench d's phases, A/B runs), so the bundle is rewritten
 * where they do nothing a plain property lookup would not:
 * - `keepNames` wraps every function in `__name(fn, "name")`, which redefines its `name`; V8 then
 *   gives the function its own shape, and hardening (a walk over every function a service can
 *   reach) is slower on each. Where the name it sets is the one JavaScript gives the function
 *   anyway (`var f = __name(() => {}, "f")`, `function f() {} __name(f, "f")`, `class C {
 *   static { __name(this, "C") } }`), the wrapper is dropped; where esbuild renamed the binding
 *   (Error4, path12) or the function is not named by its binding, it stays.
 * - `__toESM(require("node:fs"), 1)` copies every export of a builtin into a new object of getters,
 *   once per importing module (fs nine times). A builtin's interop object is now an object whose
 *   prototype is the module, with its `default`: the same values read by the same names.
 */
const rewriteHelpers = source => {
  if (!source.includes('var __name = (') || !source.includes('var __toESM = (')) throw new Error("esbuild's __name or __toESM helper is not where tools/bundle-restore.mjs expects it: check rewriteHelpers against this esbuild");
  const cuts = [];
  const isName = (node, name) => node?.type === 'CallExpression' && node.callee.type === 'Identifier' && node.callee.name === '__name' && node.arguments.length === 2 && node.arguments[1].type === 'Literal' && node.arguments[1].value === name;
  const anonymousFunction = fn => (fn.type === 'ArrowFunctionExpression' || fn.type === 'FunctionExpression') && fn.id === null;
  const unwrapped = new Set();
  const unwrap = (call, inner) => {
    dropped++;
    unwrapped.add(call);
    cuts.push([call.start, inner.start], [inner.end, call.end]);
  };
  const staticName = cls => cls.body.body.some(m => m.static && !m.computed && (m.key?.name === 'name' || m.key?.value === 'name'));
  const dropNameBlock = (cls, name) => {
    if (name === undefined || staticName(cls)) return;
    for (const member of cls.body.body) {
      const [only] = member.type === 'StaticBlock' && member.body.length === 1 ? member.body : [];
      if (only?.type === 'ExpressionStatement' && isName(only.expression, name) && only.expression.arguments[0].type === 'ThisExpression') {
        dropped++;
        cuts.push([member.start, member.end]);
      }
    }
  };
  let wrappers = 0;
  let dropped = 0;
  let renamed = 0;
  let builtins = 0;
  const visit = node => {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) return node.forEach(visit);
    if (typeof node.type !== 'string') return;
    if (isName(node, node.arguments?.[1]?.value)) wrappers++;
    // A binding's initializer, or `=` to a plain identifier, names an anonymous function or class (ECMA-262 NamedEvaluation).
    const [binding, value] = node.type === 'VariableDeclarator' ? [node.id, node.init] : node.type === 'AssignmentExpression' && node.operator === '=' ? [node.left, node.right] : [];
    if (binding?.type === 'Identifier' && isName(value, binding.name)) {
      const fn = value.arguments[0];
      if (anonymousFunction(fn)) unwrap(value, fn);
    }
    if (binding?.type === 'Identifier' && value?.type === 'ClassExpression' && value.id === null) dropNameBlock(value, binding.name);
    if ((node.type === 'ClassDeclaration' || node.type === 'ClassExpression') && node.id !== null) dropNameBlock(node, node.id.name);
    // Anywhere else (a renamed binding, a property of another key, an argument), an object literal's
    // property names the function as __name would, when it is made: `({ "get": () => 10 }).get`
    // (not `__proto__`, which an object literal takes as its prototype).
    const fn = node.arguments?.[0];
    if (isName(node, node.arguments?.[1]?.value) && node.arguments[1].value !== '__proto__' && !unwrapped.has(node) && anonymousFunction(fn)) {
      const key = JSON.stringify(node.arguments[1].value);
      renamed++;
      cuts.push([node.start, fn.start, `({ ${key}: `], [fn.end, node.end, ` })[${key}]`]);
    }
    if (Array.isArray(node.body) && (node.type === 'Program' || node.type === 'BlockStatement' || node.type === 'StaticBlock')) {
      const declared = new Set(node.body.filter(s => s.type === 'FunctionDeclaration').map(s => s.id.name));
      for (const statement of node.body) {
        const call = statement.type === 'ExpressionStatement' ? statement.expression : undefined;
        const target = call?.arguments?.[0];
        if (target?.type === 'Identifier' && declared.has(target.name) && isName(call, target.name)) {
          dropped++;
          cuts.push([statement.start, statement.end]);
        }
      }
    }
    if (node.type === 'CallExpression' && node.callee.type === 'Identifier' && node.callee.name === '__toESM' && node.arguments.length === 2) {
      const [required, mode] = node.arguments;
      const isBuiltinRequire = required.type === 'CallExpression' && required.callee.type === 'Identifier' && required.callee.name === 'require' && required.arguments.length === 1 && required.arguments[0].type === 'Literal' && typeof required.arguments[0].value === 'string' && isBuiltin(required.arguments[0].value);
      if (isBuiltinRequire && mode.type === 'Literal' && mode.value === 1) {
        builtins++;
        cuts.push([node.callee.start, node.callee.end, '__builtinESM'], [required.end, mode.end]);
      }
    }
    for (const key of Object.keys(node)) if (key !== 'type' && key !== 'start' && key !== 'end') visit(node[key]);
  };
  visit(parse(source, { ecmaVersion: 'latest', sourceType: 'script', allowReturnOutsideFunction: true }));
  cuts.sort((a, b) => a[0] - b[0]);
  let out = '';
  let at = 0;
  for (const [start, end, text = ''] of cuts) {
    if (start < at) throw new Error(`tools/bundle-restore.mjs: overlapping rewrites at ${start}`);
    out += source.slice(at, start) + text;
    at = end;
  }
  out += source.slice(at);
  out = out.replace('var __name = (', 'var __builtinESM = (mod) => __create(mod, { default: { value: mod, enumerable: true } });\nvar __name = (');
  parse(out, { ecmaVersion: 'latest', sourceType: 'script', allowReturnOutsideFunction: true });
  return { out, wrappers, dropped, renamed, builtins };
};
const rewritten = rewriteHelpers(fs.readFileSync(outfile, 'utf8'));
fs.writeFileSync(outfile, rewritten.out);

const inputs = Object.keys(result.metafile.inputs).length;
process.stdout.write(`bundled ${inputs} modules into ${path.relative(root, outfile)} (${(Buffer.byteLength(rewritten.out) / 1024).toFixed(0)} KiB; ${rewritten.dropped} of ${rewritten.wrappers} __name wrappers dropped, ${rewritten.renamed} named by an object literal, ${rewritten.builtins} builtin imports without copies)\n`);
