// An exported var statement that declares several is split so each exported name is assigned as soon as it is
// declared (esm-archive.ts splitExportedVarLists), whatever the module's layout: on one line (what minifiers emit),
// after a comment that holds a comma, and for a name a destructuring pattern binds. Found by the adversarial
// review (h9adv): only a list printed with a newline right after each comma was split.
import t from 'tap';
import '../compartments/lockdown.js';
import { ModuleSource } from '@endo/module-source';
import { nameExportedVars, splitExportedVarLists } from '../compartments/esm-archive.js';

/** The module's namespace, loaded from the record the build archives (pre-mjs-json, rewritten as the build does). */
const load = async (source: string): Promise<Record<string, unknown>> => {
  const record = JSON.parse(JSON.stringify(new ModuleSource(source))) as Record<string, unknown>;
  record.__syncModuleProgram__ = nameExportedVars(splitExportedVarLists(record.__syncModuleProgram__ as string));
  const compartment = new Compartment({ __options__: true, modules: { './m.js': { source: record } } } as never);
  return (await compartment.import('./m.js')).namespace as Record<string, unknown>;
};

t.test('one line, as minifiers print it', async t => {
  const ns = await load('export var a = function () {}, b = a, c = b.name;\n');
  t.same([ns.b === ns.a, ns.c], [true, 'a']);
});

t.test('var x = ..., y = x; export { x }: a later declarator that is not exported', async t => {
  const ns = await load('var x = { k: 1 }, y = x.k;\nexport { x, y };\n');
  t.same(ns.y, 1);
});

t.test('a comma in a comment between two declarators', async t => {
  const ns = await load('export var a = 1 /* , */, b = a;\nexport var c = 2, // one, two\n  d = c;\n');
  t.same([ns.b, ns.d], [1, 2]);
});

t.test('a name a destructuring pattern binds, read by a later declarator', async t => {
  const ns = await load('export var { h, k: [m] } = { h: 5, k: [6] }, j = h + m;\n');
  t.same(ns.j, 11);
});

t.test('the multi-line shape still splits', async t => {
  const ns = await load('export var first = () => 1,\n  second = first;\n');
  t.same([ns.second === ns.first, (ns.first as () => number).name], [true, 'first']);
});
