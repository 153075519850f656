/**
 * An ES module that archive-parsers.ts requires (`require(esm)`) to learn
 * whether this process's `require` loads ES modules as Node does, as a
 * module namespace, or through a require hook that compiles them to
 * CommonJS (tsx's, under `node --import tsx`), which gives a copy of
 * compartment-mapper's parser whose Babel imports are wired otherwise and
 * fail.
 */
export const probe = true;
