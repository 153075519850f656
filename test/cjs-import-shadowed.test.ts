// A CommonJS module's import(x) is rewritten at build as require[Symbol.for(CJS_IMPORT)](x) (evasion.ts): where the
// module binds a require or a Symbol of its own around the call (function (require) {...}, what browserify and
// AMD wrappers give, a parameter named require, a local Symbol), the rewrite must still reach the module's require,
// as import() in Node does not depend on either name. Found by the adversarial review (h9adv): such an import()
// threw "require[Symbol.for(...)] is not a function" in a service.
import t from 'tap';
import { evade } from '../compartments/evasion.js';
import { CJS_IMPORT } from '../compartments/cjs.js';

/** Runs `source` as a CommonJS module whose require's import answers `imported:<specifier>`; its exports. */
const run = (source: string): Record<string, unknown> => {
  const code = evade(source, 'script', 'shadowed.cjs');
  const require = Object.assign(() => 'required', { [Symbol.for(CJS_IMPORT)]: (specifier: string) => `imported:${specifier}` });
  const module = { exports: {} as Record<string, unknown> };
  new Function('exports', 'require', 'module', code)(module.exports, require, module);
  return module.exports;
};

t.test('a parameter named require', async t => {
  const exports = run(`function load(require) { return [require('x'), import('./a.js')]; }\nexports.out = load(s => 'own:' + s);`);
  t.same(exports.out, ['own:x', 'imported:./a.js']);
});

t.test('an arrow parameter, a block binding and a module-level Symbol', async t => {
  const exports = run(
    `var Symbol = { for: () => 'mine' };\nconst viaArrow = (require) => import('./b.js');\nfunction viaBlock() { const require = 1; return [require, import('./c.js')]; }\nexports.out = [viaArrow(), viaBlock(), Symbol.for('k')];`,
  );
  t.same(exports.out, ['imported:./b.js', [1, 'imported:./c.js'], 'mine']);
});

t.test('the unshadowed case is as before', async t => {
  const exports = run(`exports.out = import('./d.js');`);
  t.same(exports.out, 'imported:./d.js');
});
