/**
 * The floor of figure (d), in a cold process: the same service started
 * from the same archive in the same compartments and membrane, live (a
 * journal with no log and no writer), given the build script's calls with
 * every outside wait removed (floor-io.ts). Module evaluation, plus the
 * service's own work, plus membrane crossings: what a restore cannot avoid.
 * What a restore adds is reading, hashing and checking the log.
 *
 *   node <bundle of this file> <snapshot-dir> <catalog|kitchen>
 *
 * run.ts bundles this file with esbuild (the compiled library stays
 * external) and runs it with plain node, as the `snapshot` CLI runs, so
 * that floor and restore start alike: tsx's loader thread and source maps
 * would slow one start-up more than the other. Times the work after
 * start-up, from reading the manifest, like restoreSnapshot() does. Prints
 * one JSON line: { "ms": number }.
 */
import '../dist/lib/index.js';
import fs from 'node:fs';
import path from 'node:path';
import { readManifest } from '../dist/lib/index.js';
import { Journal, Membrane } from '../dist/membrane/index.js';
import { loadService, makeEndowments, type Endowments } from '../dist/compartments/index.js';
import { installInstantTimers, installStubFetch } from './floor-io.js';
import { floorSpecs } from './floor-specs.js';

const quiet = (): void => {};

const floor = async (dir: string, fixture: string): Promise<{ ms: number }> => {
  const spec = floorSpecs[fixture];
  if (!spec) throw new Error(`no floor spec for "${fixture}"`);
  installStubFetch(spec.api());
  installInstantTimers();
  const started = performance.now();
  const manifest = readManifest(dir).services[spec.service];
  const archive = fs.readFileSync(path.join(dir, manifest.archive));
  const loaded = await loadService({ service: spec.service, archive, entryRoot: manifest.entryRoot, granted: Object.keys(manifest.granted) });
  const journal = new Journal({ service: spec.service });
  let endowments: Endowments | undefined;
  const membrane = new Membrane({
    name: spec.service,
    journal,
    start: () => loaded.evaluate((endowments as Endowments).globals, (endowments as Endowments).modules),
  });
  endowments = makeEndowments(membrane, { print: quiet });
  const exports = await membrane.startService();
  for (const [method, args] of spec.deliveries('http://api.invalid')) {
    await (exports[method] as (...a: unknown[]) => Promise<unknown>)(...args);
  }
  await membrane.turns.whenIdle();
  return { ms: performance.now() - started };
};

const [dir, fixture] = process.argv.slice(2);
try {
  if (!dir || !fixture) throw new Error('usage: floor-child <snapshot-dir> <fixture>');
  const result = await floor(dir, fixture);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
} catch (error) {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
}
