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
  plugins: [leaveOut],
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
  metafile: true,
});

const [output] = Object.values(result.metafile.outputs);
// The externals are loaded where they are used (import() became require()): a static import of
// anything but a builtin would load at start.
const statics = output.imports.filter(i => !isBuiltin(i.path) && !(i.kind === 'require-call' && external.some(e => i.path === e || (e.endsWith('/*') && i.path.startsWith(e.slice(0, -1))))));
if (statics.length > 0) {
  fs.rmSync(outfile, { force: true });
  throw new Error(`the restore bundle would import ${statics.map(i => i.path).join(', ')} at load time: import them dynamically where they are used, or leave their module out`);
}
const inputs = Object.keys(result.metafile.inputs).length;
process.stdout.write(`bundled ${inputs} modules into ${path.relative(root, outfile)} (${(output.bytes / 1024).toFixed(0)} KiB)\n`);
